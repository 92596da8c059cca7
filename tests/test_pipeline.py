"""The real Dagster definitions on a temporary instance: sensor tick, batch run, partitions, checks."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import threading
import time

import dagster as dg
import pytest

from assets import archive, intake
from assets.demo import submission_sheets, write_workbook
from assets.registry import PROJECT_DIR
from pipelines.definitions import PIPELINE_JOB, make_definitions
from pipelines.resources import FazhiSettings
from pipelines.sensors import WATCH_SECONDS


@pytest.fixture
def instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


def _tick(defs, instance, root, cursor=None):
    sensor = defs.get_repository_def().get_sensor_def("inbox_sensor")
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                  resources={"fazhi": FazhiSettings(root=str(root))}, definitions=defs)
    result = sensor.evaluate_tick(ctx)
    return result, ctx.cursor


def test_definitions_load_and_sensor_runs_by_default(tmp_path):
    defs = make_definitions(FazhiSettings(root=str(tmp_path)))
    repo = defs.get_repository_def()
    assert PIPELINE_JOB in repo.job_names
    sensor = repo.get_sensor_def("inbox_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    checks = list(repo.asset_checks_defs_by_key)
    assert [c.name for c in checks] == ["great_expectations"]
    assert next(iter(repo.asset_checks_defs_by_key[checks[0]].check_specs)).blocking


def test_a_tick_loads_great_expectations_which_loading_the_definitions_does_not(tmp_path):
    """`fazhi process` loads the definitions and leaves Great Expectations to the workers; the code
    server loads it on its first tick, before the first file arrives (a fresh process, as each is)."""
    code = ("import sys, dagster as dg\n"
            "from pipelines.definitions import make_definitions\n"
            "from pipelines.resources import FazhiSettings\n"
            "defs = make_definitions(FazhiSettings(root=sys.argv[1]))\n"
            "print('great_expectations' in sys.modules)\n"
            "sensor = defs.get_repository_def().get_sensor_def('inbox_sensor')\n"
            "with dg.instance_for_test() as instance:\n"
            "    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs,\n"
            "        resources={'fazhi': FazhiSettings(root=sys.argv[1])}))\n"
            "print(result.skip_message is not None, 'great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "root")], cwd=PROJECT_DIR,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True"]


def test_a_tick_keeps_watching_the_inbox_and_receipts_a_file_dropped_during_it(tmp_path, instance):
    """Dagster starts a sensor tick at most every 5 s; a tick watches the inbox for most of that."""
    root = tmp_path / "root"
    paths = archive.Paths(root).ensure()
    defs = make_definitions(FazhiSettings(root=str(root)))
    sheets = submission_sheets("630202", "乐都区", 2024, cases=5, seed=7)
    importlib.import_module("assets.validation")  # as a code server's first tick did: the file lands while it watches
    drop = threading.Timer(1.5, lambda: write_workbook(sheets, paths.inbox / "乐都区2024.xlsx"))
    started = time.monotonic()
    drop.start()
    result, _ = _tick(defs, instance, root)
    drop.join()
    assert time.monotonic() - started >= WATCH_SECONDS
    assert [(o.original_name, o.status) for o in intake.all_outcomes(paths)] == [("乐都区2024.xlsx", "accepted")]
    assert (root / intake.all_outcomes(paths)[0].receipt).exists()
    assert len(result.run_requests) == 1 and result.run_requests[0].tags["fazhi/files"] == "1"
    assert not any(paths.inbox.iterdir())


def test_a_file_that_changes_more_often_than_the_stable_gap_stays_in_the_inbox(tmp_path, instance):
    """A tick looks every LOOK_EVERY (0.5 s); a file still written to every 0.8 s must not pass as
    unchanged between two of those looks: it is taken only when two looks STABLE_GAP (1 s) apart agree."""
    root = tmp_path / "root"
    paths = archive.Paths(root).ensure()
    defs = make_definitions(FazhiSettings(root=str(root)))
    importlib.import_module("assets.validation")
    slow = paths.inbox / "慢慢复制.xlsx"
    stop = threading.Event()

    def write_now_and_then():
        with open(slow, "ab") as fh:
            while not stop.is_set():
                fh.write(b"x" * 100)
                fh.flush()
                stop.wait(0.8)

    writer = threading.Thread(target=write_now_and_then)
    writer.start()
    try:
        for _ in range(2):
            _tick(defs, instance, root)
    finally:
        stop.set()
        writer.join()
    assert slow.exists() and not intake.pending(paths) and not intake.all_outcomes(paths)


def test_sensor_waits_for_stable_files_then_one_run_processes_the_batch(tmp_path, instance):
    root = tmp_path / "root"
    paths = archive.Paths(root).ensure()
    defs = make_definitions(FazhiSettings(root=str(root)))
    good = write_workbook(submission_sheets("630202", "乐都区", 2024, cases=15, seed=1), paths.inbox / "乐都区2024.xlsx")
    sheets = submission_sheets("630203", "平安区", 2024, cases=12, seed=2)
    sheets["封面"][3][1] = "二〇二四"  # 报送年度 unreadable
    write_workbook(sheets, paths.inbox / "平安区2024.xls")
    (paths.inbox / "~$乐都区2024.xlsx").write_bytes(b"lock")
    (paths.inbox / ".hidden.xlsx").write_bytes(b"hidden")

    # A file still being written is left alone: its size changes between the tick's two looks.
    growing = paths.inbox / "还在复制.xlsx"
    stop = threading.Event()

    def keep_writing():
        with open(growing, "ab") as fh:
            while not stop.is_set():
                fh.write(b"x" * 100)
                fh.flush()
                time.sleep(0.1)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        # One tick: files unchanged across its two looks leave the inbox, are
        # receipted at once (few files) and one run is requested.
        result, cursor = _tick(defs, instance, root)
    finally:
        stop.set()
        writer.join()
    assert len(result.run_requests) == 1
    assert sorted(p.name for p in paths.inbox.iterdir()) == [".hidden.xlsx", "~$乐都区2024.xlsx", "还在复制.xlsx"]
    assert not good.exists() and not intake.pending(paths)
    assert sorted(o.status for o in intake.all_outcomes(paths)) == ["accepted", "rejected"]
    assert not instance.get_dynamic_partitions("submissions")  # Dagster is told by the run
    growing.unlink()

    job = defs.resolve_job_def(PIPELINE_JOB)
    run = job.execute_in_process(instance=instance)
    assert run.success
    tags = instance.get_run_by_id(run.run_id).tags
    assert tags["fazhi/unit/630202"] == "1" and tags["fazhi/unit/630203"] == "1" and tags["fazhi/year"] == "2024"
    outs = {o.original_name: o for o in intake.all_outcomes(paths)}
    assert outs["乐都区2024.xlsx"].status == "accepted"
    assert outs["平安区2024.xls"].status == "rejected"

    # Every registry unit has a partition for 2024; only the two that sent files are materialised.
    keys = instance.get_dynamic_partitions("submissions")
    assert len(keys) == 7 and "2024-630225" in keys
    mats = instance.fetch_materializations(dg.AssetKey("submission"), limit=100).records
    assert sorted(m.partition_key for m in mats) == ["2024-630202"]  # rejected file has no unit-year
    meta = mats[0].asset_materialization.metadata
    assert meta["单位"].value == "630202 乐都区" and meta["各表记录数"].value["执法案件台账"] == 15
    assert 0 < meta["预评分（不含满意度）"].value <= 900
    check_key = dg.AssetCheckKey(dg.AssetKey("submission"), "great_expectations")
    execs = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=10)
    assert len(execs) == 1 and execs[0].partition == "2024-630202"

    report = (root / outs["平安区2024.xls"].receipt).with_suffix(".html").read_text(encoding="utf-8")
    assert "二〇二四" in report and "Great Expectations" in report
    status = instance.fetch_materializations(dg.AssetKey("reporting_status_table"), limit=1).records[0]
    summary = status.asset_materialization.metadata["2024年概况"].value
    # 平安区's file is rejected with an unreadable 报送年度, so it counts for no year
    assert "已受理 1，已退回 0，未报送 6" in summary, summary

    ranking = instance.fetch_materializations(dg.AssetKey("year_results"), limit=1).records[0]
    (row,) = ranking.asset_materialization.metadata["2024年结果"].value.records
    assert row.data["单位代码"] == "630202" and row.data["状态"] == "暂定" and row.data["排名"] == ""
    # Without a satisfaction result the preview is the provisional total the year results show.
    assert row.data["总分"] == meta["预评分（不含满意度）"].value

    receipt = json.loads((root / outs["平安区2024.xls"].receipt).read_text(encoding="utf-8"))
    assert receipt["status"] == "rejected"
    assert {"sheet": "封面", "cell": "B4", "value": "二〇二四"}.items() <= receipt["errors"][0].items()

    # Nothing pending: the next tick asks for no run and the score workbook exists.
    result, _ = _tick(defs, instance, root, cursor)
    assert not result.run_requests
    assert (root / "exports" / "2024" / "海东市2024年法治政府建设示范创建评分.xlsx").exists()


def test_while_a_run_is_active_a_few_files_get_receipts_at_once_and_the_run_is_owed(tmp_path, instance):
    root = tmp_path / "root"
    paths = archive.Paths(root).ensure()
    defs = make_definitions(FazhiSettings(root=str(root)))
    active = dg.DagsterRun(job_name=PIPELINE_JOB, run_id="x" * 8 + "-0000-0000-0000-000000000000",
                           status=dg.DagsterRunStatus.STARTED)
    instance.add_run(active)
    write_workbook(submission_sheets(seed=3), paths.inbox / "a.xlsx")
    (paths.inbox / "a.xlsx.done").write_text("")
    result, cursor = _tick(defs, instance, root)
    # archived (marker) and receipted at once, but no second run while the other is active
    assert not result.run_requests and not any(paths.inbox.iterdir()) and not intake.pending(paths)
    assert [o.status for o in intake.all_outcomes(paths)] == ["accepted"]
    assert (root / intake.all_outcomes(paths)[0].receipt).exists() and json.loads(cursor)["owed"]
    # While a run is checking files itself (it holds the intake lock), new files wait for it.
    write_workbook(submission_sheets(seed=4), paths.inbox / "b.xlsx")
    (paths.inbox / "b.xlsx.done").write_text("")
    with intake._exclusive(paths):
        result, cursor = _tick(defs, instance, root, cursor)
    assert not result.run_requests and len(intake.pending(paths)) == 1 and len(intake.all_outcomes(paths)) == 1
    instance.handle_run_event(active.run_id, dg.DagsterEvent(
        event_type_value="PIPELINE_SUCCESS", job_name=PIPELINE_JOB, message="done"))
    result, cursor = _tick(defs, instance, root, cursor)
    # the run now requested records both: the one receipted during the other run is still unreported
    assert len(result.run_requests) == 1 and [o.status for o in intake.all_outcomes(paths)] == ["accepted"] * 2
    assert [o.original_name for o in intake.unreported(paths)] == ["a.xlsx", "b.xlsx"]
