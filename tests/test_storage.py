"""The instance's SQLite event log (deploy/dagster.sqlite.yaml) stores and reads like Dagster's own."""

import os
import shutil
import subprocess
import sys
import uuid

import dagster as dg
import pytest

from assets.registry import PROJECT_DIR
from pipelines.storage import KEPT_ENGINES, SqliteEventLogKeepingEngines, log_materializations

PARTS = dg.DynamicPartitionsDefinition(name="parts")
SPEC = dg.AssetSpec("reported", partitions_def=PARTS)


@dg.asset
def reporter(context: dg.AssetExecutionContext) -> None:
    context.instance.add_dynamic_partitions(PARTS.name, ["a", "b"])
    for key in ("a", "b", "a"):
        context.log_event(dg.AssetMaterialization(asset_key=SPEC.key, partition=key, metadata={"文件": f"{key}.xlsx"}))


@dg.asset
def batch_reporter(context: dg.AssetExecutionContext) -> None:
    context.instance.add_dynamic_partitions(PARTS.name, ["a", "b"])
    log_materializations(context, [dg.AssetMaterialization(asset_key=SPEC.key, partition=key, metadata={"文件": f"{key}.xlsx"})
                                   for key in ("a", "b", "a")])


def _instance(home, monkeypatch) -> dg.DagsterInstance:
    home.mkdir(exist_ok=True)
    shutil.copy(PROJECT_DIR / "deploy" / "dagster.sqlite.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.get()


@pytest.fixture
def instance(tmp_path, monkeypatch):
    with _instance(tmp_path, monkeypatch) as inst:
        yield inst


def test_events_round_trip(instance, tmp_path):
    storage = instance.event_log_storage
    assert isinstance(storage, SqliteEventLogKeepingEngines)
    assert storage._base_dir == str(tmp_path / "storage")  # where Dagster's default keeps them
    job = dg.Definitions(assets=[SPEC, reporter]).resolve_implicit_global_asset_job_def()
    for _ in range(2):
        assert job.execute_in_process(instance=instance).success
    records = instance.fetch_materializations(SPEC.key, limit=10).records
    assert sorted(r.partition_key for r in records) == ["a", "a", "a", "a", "b", "b"]
    assert records[0].asset_materialization.metadata["文件"].value == "a.xlsx"
    assert instance.get_materialized_partitions(SPEC.key) == {"a", "b"}
    run = instance.get_runs(limit=1)[0]
    assert any(e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_SUCCESS
               for e in instance.all_logs(run.run_id))


def test_a_batch_of_materializations_is_stored_as_one_at_a_time(tmp_path, monkeypatch):
    """What the UI and the scoring read back is the same whether the events came one by one or
    as a batch, and the batch reaches the storage as one write."""
    seen = {}
    for reporting in (reporter, batch_reporter):
        with _instance(tmp_path / reporting.key.path[-1], monkeypatch) as inst:
            writes = []
            store = inst.event_log_storage.store_event_batch
            monkeypatch.setattr(inst.event_log_storage, "store_event_batch", lambda es: (writes.append(len(es)), store(es)))
            job = dg.Definitions(assets=[SPEC, reporting]).resolve_implicit_global_asset_job_def()
            for _ in range(2):
                assert job.execute_in_process(instance=inst).success
            records = inst.fetch_materializations(SPEC.key, limit=10, ascending=True).records
            latest = inst.get_asset_records([SPEC.key])[0].asset_entry.last_materialization_record
            run = inst.get_runs(limit=1)[0]
            seen[reporting] = (
                writes,
                [(r.partition_key, r.asset_materialization.metadata["文件"].value) for r in records],
                inst.get_materialized_partitions(SPEC.key),
                (latest.storage_id == records[-1].storage_id, latest.partition_key, latest.run_id == run.run_id),
                sum(e.dagster_event is not None and e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
                    and e.dagster_event.asset_key == SPEC.key for e in inst.all_logs(run.run_id)))
    assert seen[reporter][0] == [] and seen[batch_reporter][0] == [3, 3]
    assert seen[reporter][1:] == seen[batch_reporter][1:]
    assert seen[reporter][1] == [("a", "a.xlsx"), ("b", "b.xlsx"), ("a", "a.xlsx")] * 2
    assert seen[reporter][3:] == ((True, "a", True), 3)


def test_engines_kept_are_bounded(instance):
    storage = instance.event_log_storage
    for _ in range(KEPT_ENGINES + 5):
        assert storage.get_logs_for_run(str(uuid.uuid4())) == []
    assert len(storage._engines) == KEPT_ENGINES


def test_other_processes_write_while_connections_are_kept(instance, tmp_path):
    """A kept connection holds no lock: a second process (as the UI's runs or the daemon) writes
    to the same files meanwhile, and each sees the other's events."""
    job = dg.Definitions(assets=[SPEC, reporter]).resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance).success
    assert instance.event_log_storage._engines  # connections kept open from here on
    other = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(PROJECT_DIR)!r}); "
         "from tests.test_storage import SPEC, reporter; import dagster as dg\n"
         "with dg.DagsterInstance.get() as inst:\n"
         "    job = dg.Definitions(assets=[SPEC, reporter]).resolve_implicit_global_asset_job_def()\n"
         "    assert job.execute_in_process(instance=inst).success\n"
         "    print(len(inst.fetch_materializations(SPEC.key, limit=100).records))"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "DAGSTER_HOME": str(tmp_path)})
    assert other.returncode == 0, other.stderr
    assert other.stdout.split()[-1] == "6"  # its 3 and ours
    assert len(instance.fetch_materializations(SPEC.key, limit=100).records) == 6
    assert job.execute_in_process(instance=instance).success  # and we still write after it
    assert len(instance.get_runs()) == 3


def test_a_forked_child_opens_its_own_connections(instance):
    storage = instance.event_log_storage
    storage.get_logs_for_run(str(uuid.uuid4()))
    parents = dict(storage._engines)
    pid = os.fork()
    if pid == 0:  # the child: a new engine for the same file, the parent's left alone
        ok = storage.get_logs_for_run(next(iter(parents))) == [] and not set(storage._engines.values()) & set(parents.values())
        os._exit(0 if ok else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert dict(storage._engines) == parents


def test_dagster_migration_scripts_are_loaded_once_per_process(tmp_path, monkeypatch):
    """Creating an instance, then opening it again, loads alembic's scripts once; the instance
    it makes still records and reads runs."""
    from pipelines import storage

    built = []
    monkeypatch.setattr(storage, "_script_directories", {})
    monkeypatch.setattr(storage, "_BUILD_SCRIPT_DIRECTORY",
                        lambda cls, config, build=storage._BUILD_SCRIPT_DIRECTORY: built.append(1) or build(cls, config))
    with _instance(tmp_path, monkeypatch) as inst:
        assert dg.Definitions(assets=[SPEC, reporter]).resolve_implicit_global_asset_job_def().execute_in_process(
            instance=inst).success
    with _instance(tmp_path, monkeypatch) as inst:
        assert len(inst.get_runs()) == 1 and inst.get_materialized_partitions(SPEC.key) == {"a", "b"}
    assert built == [1]
