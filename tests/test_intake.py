"""What intake keeps for later stages, and how a later stage gets what was not kept."""
from __future__ import annotations

import datetime as dt
import pickle
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from assets import archive, intake, scoring, workers, yearly
from assets.demo import submission_sheets, write_workbook
from assets.indicators import load_indicators
from assets.model import PickledFrames
from assets.reading import read_workbook
from assets.registry import load_registry
from assets.workers import INTAKE_MODULES, shared_counters, warm_up
from assets.scoring import veto_types
from expectations.schema import load_schema
from factory import record_syncs

CASES = next(t.name for t in load_schema().table_sheets if t.size_driver)


def test_whole_workbook_kept_for_lookback_only_and_read_again_from_the_archive_otherwise(tmp_path):
    paths = archive.Paths(tmp_path).ensure()
    write_workbook(submission_sheets("630202", "乐都区", 2024, cases=25, seed=1, naming="省级示范", naming_year=2022),
                   paths.inbox / "乐都区.xlsx")
    write_workbook(submission_sheets("630203", "平安区", 2024, cases=25, seed=2), paths.inbox / "平安区.xlsx")
    archive.take_ready_files(paths, archive.scan_inbox(paths.inbox, {})[1])
    registry, system = load_registry(None), load_indicators()
    outcomes = {o.unit_code: o for chunk in intake.process_pending(paths, registry, system) for o in chunk}
    assert {o.status for o in outcomes.values()} == {"accepted"}

    named, other = outcomes["630202"], outcomes["630203"]
    assert (paths.submissions / f"{named.record_id}.pkl").exists()  # 回头看 samples its cases
    assert not (paths.submissions / f"{other.record_id}.pkl").exists()

    fresh = read_workbook(paths.object(other.sha256), other.original_name)
    again = intake.load_parsed(paths, other)
    assert again.cover == fresh.cover and again.tables.keys() == fresh.tables.keys()
    for name, frame in fresh.tables.items():
        pd.testing.assert_frame_equal(again.tables[name], frame)

    # A stage that asks for the whole workbook gets it, case table included, from either source.
    by_id = {o.record_id: o for o in outcomes.values()}
    records = {o.unit_code: intake.whole_record(paths, by_id, o.record_id) for o in outcomes.values()}
    assert {code: len(r.parsed.tables[CASES]) for code, r in records.items()} == {"630202": 25, "630203": 25}
    # Scoring gets the slim view, without the case table, for both.
    slim = {r.unit_code: r for r in intake.submission_records(paths, outcomes.values(), 2024, system)}
    assert all(CASES not in r.parsed.tables and r.coverage for r in slim.values())
    # Its other tables read back equal to a fresh read.
    view = slim["630203"].parsed.tables
    assert sorted(view) == sorted(k for k in fresh.tables if k != CASES) and len(view) == len(fresh.tables) - 1
    for name in view:
        pd.testing.assert_frame_equal(view[name], fresh.tables[name])


def test_a_scoring_view_stored_with_pickled_frames_still_loads(tmp_path):
    """Views stored before tables were kept as columns hold each small table as its own pickle."""
    paths = archive.Paths(tmp_path).ensure()
    write_workbook(submission_sheets("630203", "平安区", 2024, cases=5, seed=2), paths.inbox / "平安区.xlsx")
    archive.take_ready_files(paths, archive.scan_inbox(paths.inbox, {})[1])
    system = load_indicators()
    [out] = [o for chunk in intake.process_pending(paths, load_registry(None), system) for o in chunk]
    view = paths.root / "store" / "scoring" / f"{out.record_id}.pkl"
    key, coverage, slim, *rest = pickle.loads(view.read_bytes())
    old = PickledFrames.__new__(PickledFrames)
    old.__setstate__({name: pickle.dumps(slim.tables[name]) for name in slim.tables})
    view.write_bytes(pickle.dumps((key, coverage, replace(slim, tables=old), *rest)))

    [record] = intake.submission_records(paths, [out], 2024, system)
    assert isinstance(record.parsed.tables, PickledFrames) and record.coverage == coverage
    assert sorted(record.parsed.tables) == sorted(slim.tables)
    for name in slim.tables:
        pd.testing.assert_frame_equal(record.parsed.tables[name], slim.tables[name])
    assert veto_types(record.parsed) == veto_types(slim) == []


def test_veto_types_found_at_intake_come_with_the_scoring_view(tmp_path):
    paths = archive.Paths(tmp_path).ensure()
    events = load_schema().sheets["负面清单"]
    veto = events.extra["veto_types"][2]
    for code, name, listed in (("630202", "乐都区", ["其他", veto, veto]), ("630203", "平安区", [])):
        sheets = submission_sheets(code, name, 2024, cases=5, seed=1)
        sheets[events.name] += [[i, "事件经过", "2024-05-0" + str(i), kind, "通报文件"]
                                for i, kind in enumerate(listed, 1)]
        write_workbook(sheets, paths.inbox / f"{name}.xlsx")
    archive.take_ready_files(paths, archive.scan_inbox(paths.inbox, {})[1])
    system = load_indicators()
    outcomes = [o for chunk in intake.process_pending(paths, load_registry(None), system) for o in chunk]
    assert {o.status for o in outcomes} == {"accepted"}
    records = {r.unit_code: r for r in intake.submission_records(paths, outcomes, 2024, system)}
    assert records["630202"].vetoes == [veto] and records["630203"].vetoes == []
    for r in records.values():  # the same as the stored 负面清单 gives
        assert r.vetoes == veto_types(r.parsed)


def test_files_are_checked_in_as_few_chunks_as_the_batch_size_allows_evenly_filled(tmp_path):
    paths = archive.Paths(tmp_path).ensure()
    for k in range(5):
        write_workbook(submission_sheets(f"63020{k}", f"县{k}", 2024, cases=2, seed=k), paths.inbox / f"县{k}.xlsx")
    archive.take_ready_files(paths, archive.scan_inbox(paths.inbox, {})[1])
    chunks = list(intake.process_pending(paths, load_registry(None), load_indicators(), batch_size=4))
    assert [len(c) for c in chunks] == [2, 3]  # not 4 and a last file alone
    assert len({o.record_id for c in chunks for o in c}) == 5


def test_workers_take_a_chunks_files_one_at_a_time_each_file_once():
    recs = list(range(7))
    taken = shared_counters(2)
    first, second = intake._take_in_turn(recs, taken, 1), intake._take_in_turn(recs, taken, 1)
    got = {"first": [next(first), next(first)], "second": [next(second)]}
    got["first"] += list(first)  # the first worker takes the rest, the second finds none left
    got["second"] += list(second)
    assert got == {"first": [0, 1, 3, 4, 5, 6], "second": [2]}
    assert list(taken) == [0, 9]  # 7 taken, then one look past the end by each; the other chunk's untouched

    # what each worker checked comes back in the chunk's order
    parts = [Future(), Future()]
    parts[0].set_result([SimpleNamespace(record_id=r) for r in got["first"]])
    parts[1].set_result([SimpleNamespace(record_id=r) for r in got["second"]])
    assert [o.record_id for o in intake._in_order([SimpleNamespace(record_id=r) for r in recs], parts)] == recs


def test_files_checked_by_two_workers_come_back_once_each_in_order_of_arrival(tmp_path, monkeypatch):
    paths = archive.Paths(tmp_path).ensure()
    units = load_registry(None).units
    for k in range(34):
        u = units[k % len(units)]
        sheets = submission_sheets(u.code, u.name, 2024, cases=2, seed=k)
        if k in (5, 22):
            sheets["封面"][1][1] = "不存在的单位"  # neither a unit's name
            sheets["封面"][2][1] = "999999"        # nor its code: rejected
        write_workbook(sheets, paths.inbox / f"{k:02d}{u.name}.xlsx")
    archive.take_ready_files(paths, archive.scan_inbox(paths.inbox, {})[1])
    monkeypatch.setenv("FAZHI_WORKERS", "2")
    monkeypatch.setattr(workers, "_server_started", False)  # started below; later tests start without

    def not_here(*args):
        raise AssertionError("a chunk of 17 files was checked in the main process")
    monkeypatch.setattr(intake, "check_files", not_here)
    order = [r.record_id for r in intake.pending(paths)]
    chunks = list(intake.process_pending(paths, load_registry(None), load_indicators(), batch_size=17))

    assert [len(c) for c in chunks] == [17, 17]
    assert [o.record_id for c in chunks for o in c] == order
    rejected = sorted(o.original_name for c in chunks for o in c if o.status == "rejected")
    assert rejected == [f"05{units[5].name}.xlsx", f"22{units[22 % len(units)].name}.xlsx"]
    assert sorted(p.stem for p in paths.processed.glob("*.json")) == sorted(order)


def test_a_year_scored_in_parts_on_the_workers_equals_the_year_scored_in_one_process(tmp_path, monkeypatch):
    paths = archive.Paths(tmp_path).ensure()
    registry, system = load_registry(None), load_indicators()
    units = registry.units[:6]
    for k, u in enumerate(units):
        write_workbook(submission_sheets(u.code, u.name, 2024, cases=4, seed=k, filled_on=dt.date(2025, 1, 10)),
                       paths.inbox / f"{u.name}.xlsx")
    # a unit's later file counts, its earlier one is superseded: both must stay in the same part
    write_workbook(submission_sheets(units[1].code, units[1].name, 2024, cases=6, seed=9, filled_on=dt.date(2025, 1, 20)),
                   paths.inbox / f"{units[1].name}第二次.xlsx")
    archive.take_ready_files(paths, archive.scan_inbox(paths.inbox, {})[1])
    outcomes = [o for chunk in intake.process_pending(paths, registry, system) for o in chunk]
    assert sum(o.status == "accepted" for o in outcomes) == 7

    parts = []
    monkeypatch.setattr(yearly, "assemble_year", lambda year, scored, system: parts.append(len(scored))
                        or scoring.assemble_year(year, scored, system))
    monkeypatch.setattr(yearly, "MIN_POOL_SUBMISSIONS", 2)
    monkeypatch.setenv("FAZHI_WORKERS", "2")
    alone = yearly.year_results(paths, outcomes, 2024, {}, system, registry)
    assert parts == []  # no workers running: one process, as a single dropped file's run has it
    warm_up(INTAKE_MODULES)
    shared = yearly.year_results(paths, outcomes, 2024, {}, system, registry)
    assert parts == [2]
    for table in ("units", "categories", "indicators", "submissions"):
        pd.testing.assert_frame_equal(getattr(shared, table), getattr(alone, table))
    assert sorted(shared.units["rank"].dropna()) == list(range(1, 1 + shared.units["eligible"].sum()))
    assert (shared.submissions["status"] == "已被替代").sum() == 1


def test_outcomes_mark_files_done_only_after_what_intake_wrote_for_them_is_synced(tmp_path, monkeypatch):
    paths = archive.Paths(tmp_path).ensure()
    for code, name in (("630202", "乐都区"), ("630203", "平安区")):
        write_workbook(submission_sheets(code, name, 2024, cases=5, seed=1), paths.inbox / f"{name}.xlsx")
    (paths.inbox / "平安区副本.xlsx").write_bytes((paths.inbox / "平安区.xlsx").read_bytes())
    archive.take_ready_files(paths, archive.scan_inbox(paths.inbox, {})[1])
    syncs, fsyncs = record_syncs(monkeypatch, lambda: (
        sorted(p.name for p in paths.receipts.rglob("*.json") if not p.name.endswith(".tmp")),
        sorted(p.name for p in paths.processed.iterdir())))
    outcomes = [o for chunk in intake.process_pending(paths, load_registry(None), load_indicators()) for o in chunk]

    assert sorted(o.status for o in outcomes) == ["accepted", "accepted", "duplicate"]
    checked, marked = syncs
    receipts = sorted(Path(o.receipt).name for o in outcomes if o.status != "duplicate")
    assert checked == (receipts, [])  # the checked files' receipts are written, nothing is marked done
    assert len(marked[0]) == 3 and len(marked[1]) == 3  # the copy's receipt too; then the outcomes,
    assert all(name.endswith(".tmp") for name in marked[1])  # under temporary names only
    assert sorted(p.name for p in paths.processed.iterdir()) == sorted(f"{o.record_id}.json" for o in outcomes)
    assert len(fsyncs) == 2  # the copy's receipt (xlsx and JSON), synced as it is written


def test_outcomes_read_again_only_when_their_file_changed(tmp_path, monkeypatch):
    paths = archive.Paths(tmp_path).ensure()
    first = intake.Outcome(record_id="r1", status="accepted", kind="submission", original_name="乐都区.xlsx",
                           sha256="0" * 64, received_at="2024-03-01T08:00:00+00:00", unit_code="630202",
                           unit_name="乐都区", year=2024, errors=0, warnings=0, receipt="receipts/630202/a.json")
    intake._write_outcomes(paths, [first])
    assert intake.all_outcomes(paths) == [first]

    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda file, *a, **k: opened.append(Path(file).name) or real_open(file, *a, **k))
    assert intake.all_outcomes(paths) == [first] and opened == []  # unchanged: not read again

    # the same record rewritten (as after a re-run), and a new one beside it
    again = replace(first, status="rejected", errors=2)
    second = replace(first, record_id="r2", received_at="2024-03-02T08:00:00+00:00")
    intake._write_outcomes(paths, [again, second])
    opened.clear()
    assert intake.all_outcomes(paths) == [again, second]
    assert sorted(opened) == ["r1.json", "r2.json"]
