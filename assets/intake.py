"""Intake (SPEC §7): every archived file read, checked as a batch and receipted.

Every step is idempotent, so a crash at any point followed by a re-run loses
nothing and processes nothing twice: a record counts as processed only once
its outcome is written, after its receipt (the layout is in `assets.archive`).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from assets.archive import Paths, Received, received_records, synced_together, write_all_atomic, write_atomic
from assets.datadocs import write_datadocs, write_submission_report
from assets.lookback import named_before
from assets.model import ParsedWorkbook, Problem, SubmissionRecord, Tables, rows_of
from assets.reading import read_workbook
from assets.receipts import write_receipt
from assets.registry import Registry
from assets.scoring import (NAMING, NAMING_YEAR, UnitScores, coverage_counts, pending_rows, preview_total, scoring_key,
                            score_units, veto_types)
from assets.workers import INTAKE_MODULES, pool_size, process_pool, release_free_memory, shared_counters, state
from expectations.schema import Schema, load_schema

if TYPE_CHECKING:
    from assets.validation import ValidationReport


@dataclass(frozen=True)
class Outcome:
    record_id: str
    status: str                # accepted | rejected | duplicate
    kind: str                  # submission | satisfaction | unknown
    original_name: str
    sha256: str
    received_at: str
    unit_code: str | None
    unit_name: str | None
    year: int | None
    errors: int
    warnings: int
    receipt: str               # path of the JSON receipt, relative to the root
    filled_on: str | None = None
    duplicate_of: str | None = None
    rows: dict | None = None              # records per table sheet
    score_preview: float | None = None    # total without the satisfaction result

    def submitted_for(self, year: int) -> bool:
        """A unit's submission for `year`, accepted or rejected (a copy of one is not)."""
        return self.kind == "submission" and self.year == year and bool(self.unit_code) and self.status != "duplicate"

    @property
    def partition_key(self) -> str | None:
        if self.kind == "submission" and self.unit_code and self.year:
            return partition_key(self.year, self.unit_code)
        return None


def partition_key(year: int, unit_code: str) -> str:
    return f"{year}-{unit_code}"


def pending(paths: Paths) -> list[Received]:
    """Received records without an outcome; only those records are read (the sensor asks every second)."""
    done = {p.stem for p in paths.processed.glob("*.json")}
    return received_records(p for p in paths.received.glob("*.json") if p.stem not in done)


# path -> (inode, size, mtime) of the outcome file when read, and what it said
_read_outcomes: dict[str, tuple[tuple[int, int, int], Outcome]] = {}


def all_outcomes(paths: Paths) -> list[Outcome]:
    """Every outcome, in order of arrival.

    A run asks for them at each of its last steps (3,000 files: 0.14-0.45 s to read, 15 ms to list
    with their status). An outcome file is only ever written whole under a new name and renamed,
    so one seen before with the same inode, size and modification time still says the same.
    """
    outs = []
    with os.scandir(paths.processed) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".json"):
                continue
            st = entry.stat()
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            seen = _read_outcomes.get(entry.path)
            if seen is None or seen[0] != stamp:
                with open(entry.path, encoding="utf-8") as fh:
                    seen = stamp, Outcome(**json.load(fh))
                _read_outcomes[entry.path] = seen
            outs.append(seen[1])
    return sorted(outs, key=lambda o: (o.received_at, o.record_id))


# ---------------------------------------------------------------- processing

def _unit_and_year(parsed: ParsedWorkbook, registry: Registry) -> tuple[str | None, str | None, int | None]:
    unit = registry.by_code(parsed.cover.get("单位代码")) or registry.by_name(parsed.cover.get("单位名称"))
    year = parsed.cover.get("报送年度")
    year = int(year) if isinstance(year, (int, float)) and 2000 <= year <= 2100 and float(year).is_integer() else None
    return (unit.code, unit.name, year) if unit else (None, None, year)


def _satisfaction_year(parsed: ParsedWorkbook, schema: Schema) -> int | None:
    """The year of a survey file, when all its rows agree (it lists many units, so no unit)."""
    frame = parsed.tables.get(schema.satisfaction.name)
    if frame is None or frame.empty:
        return None
    years = {int(y) for y in frame["测评年度"].dropna() if float(y).is_integer()}
    return years.pop() if len(years) == 1 else None


def process_pending(paths: Paths, registry: Registry, system, *,
                    schema: Schema | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    batch_size: int | None = None, block: bool = True) -> Iterator[list[Outcome]]:
    """Read, check and receipt every received file that has no outcome yet, a chunk at a time.

    Yields each chunk's outcomes once they are on disk. While the caller
    handles them (records them in Dagster, which costs a database write per
    event), the workers already check the next chunk. `system` is the indicator
    system: its codes check 佐证材料, and its coverage rules are counted here,
    while the full tables are in memory. With `block=False` it yields nothing
    when another process is already processing.
    """
    schema = schema or load_schema()
    # Each worker checks its half of a chunk as one GX batch: 3.3-3.8 ms per file in batches of
    # 400, 4.8-5.8 ms in batches of 200; a worker then holds some 500 MB of workbooks.
    batch_size = batch_size or int(os.environ.get("FAZHI_BATCH_SIZE", 800))
    with _exclusive(paths, block) as mine:
        if not mine:
            return
        todo = pending(paths)
        seen_sha = {o.sha256: o for o in all_outcomes(paths) if o.status != "duplicate"}
        claimed = set(seen_sha)  # bytes seen before or earlier in this batch
        # As few chunks as batch_size allows, evenly filled: 3,001 files make four of 750, not three of
        # 800 and one of 601; 801 files make two of some 400, not one of 800 and one checked alone.
        count = -(-len(todo) // batch_size)
        chunks = [todo[len(todo) * k // count:len(todo) * (k + 1) // count] for k in range(count)]
        with _Workers(len(chunks), len(todo), (registry, system, schema)) as workers:
            checking = _start_checking(paths, chunks[0], claimed, workers) if chunks else None
            for k, chunk in enumerate(chunks):
                fresh, copies, results = checking
                if k + 1 < len(chunks):  # queued behind this chunk
                    checking = _start_checking(paths, chunks[k + 1], claimed, workers)
                results = list(results)
                seen_sha.update((out.sha256, out) for out in results)
                repeated = [_duplicate(paths, rec, seen_sha[rec.sha256]) for rec in copies]
                _write_outcomes(paths, results + repeated)
                done = [seen_sha[r.sha256] for r in fresh] + repeated
                if progress:
                    progress(sum(map(len, chunks[:k + 1])), len(todo))
                yield done


@contextmanager
def _exclusive(paths: Paths, block: bool = True):
    """One processor at a time per root (the sensor, the UI's runs and the CLI may overlap)."""
    with open(paths.root / "store" / ".intake.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Workers:
    """Both cores for checking files when a batch is big enough to pay for the start-up.

    Every worker takes a chunk's files one at a time, the next one nobody has
    taken, and checks what it read as one batch (Great Expectations costs mostly
    per batch, not per row). A worker the machine slows down reads fewer files,
    instead of the other waiting for it at the end: with fixed halves of 150
    files, one came back 0.3-2.8 s after the other in half of six runs.
    """

    MIN_FILES = 16

    def __init__(self, chunks: int, files: int, context: tuple):
        n = pool_size(files, self.MIN_FILES)
        self.context, self.pool, self.n, self.started = context, None, n, 0
        if n > 1:
            self.pool = process_pool(n, INTAKE_MODULES, tuple, ((context, shared_counters(chunks)),))

    def check(self, root: Path, recs: list[Received]) -> Iterator[Outcome]:
        """Outcomes in order; with a pool the work is queued at once and runs while the caller goes on."""
        if self.pool is None or len(recs) < self.MIN_FILES:
            return _lazy(check_files, root, recs, *self.context)
        chunk, self.started = self.started, self.started + 1
        parts = [self.pool.submit(_check_in_worker, root, recs, chunk) for _ in range(self.n)]
        return _in_order(recs, parts)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown()


def _lazy(fn, *args) -> Iterator:
    yield from fn(*args)


def _in_order(recs: list[Received], parts: list) -> Iterator[Outcome]:
    """What each worker checked, back in the chunk's order."""
    done = {o.record_id: o for part in parts for o in part.result()}
    yield from (done[r.record_id] for r in recs)


def _check_in_worker(root: Path, recs: list[Received], chunk: int) -> list[Outcome]:
    context, taken = state()
    return check_files(root, _take_in_turn(recs, taken, chunk), *context)


def _take_in_turn(recs: list[Received], taken, chunk: int) -> Iterator[Received]:
    """The files of a chunk this worker takes, one at a time, until none is left; `taken[chunk]`
    is shared by the pool's workers and counts the chunk's files taken so far (and looks past its end)."""
    while True:
        with taken.get_lock():
            i = taken[chunk]
            taken[chunk] = i + 1
        if i >= len(recs):
            return
        yield recs[i]


def _start_checking(paths: Paths, chunk: list[Received], claimed: set[str], workers: _Workers):
    """Queue the checking of a chunk's new files; copies of bytes seen before are not read again."""
    fresh, copies = [], []
    for rec in chunk:
        (copies if rec.sha256 in claimed else fresh).append(rec)
        claimed.add(rec.sha256)
    return fresh, copies, workers.check(paths.root, fresh)


TRIM_EVERY = 10  # files read between two releases of freed memory: 0.3 ms per file, 1.7 ms if after each


def check_files(root: Path, recs: Iterable[Received], registry: Registry, system, schema: Schema) -> list[Outcome]:
    """Read a batch of archived files (a worker's are taken as it goes, see `_Workers`), check them
    as one batch, store what later stages need, write the receipts; the outcomes (with their receipt
    paths) are left for the caller to record."""
    paths = Paths(root)
    parsed, read = {}, []
    for r in recs:
        parsed[r.record_id] = read_workbook(paths.object(r.sha256), r.original_name)
        read.append(r)
        if len(read) % TRIM_EVERY == 0:
            release_free_memory()
    if not read:  # a worker that found its chunk's files all taken
        return []
    problems, report = check_batch(parsed, registry, system, schema)
    release_free_memory()
    datadocs = (write_datadocs(report.gx_results, paths.receipts / "_datadocs" / read[0].record_id)
                if report.gx_results else None)
    judged = [_judge(r, parsed[r.record_id], problems[r.record_id], registry, schema) for r in read]
    accepted = [o.record_id for _, o in judged if o.kind == "submission" and o.status == "accepted"]
    counts = dict(zip(accepted, coverage_counts([parsed[k] for k in accepted], system)))
    keys = _view_keys(system)
    outcomes = []
    with synced_together(root):  # before the caller writes the outcomes, which mark the files done
        for receipt, out in judged:
            book = parsed[out.record_id]
            if _kept_whole(out, book):
                write_atomic(paths.submissions / f"{out.record_id}.pkl",
                             pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL))
            if out.kind == "submission":
                rows = _pending_rows(out, book, counts[out.record_id], system) if out.record_id in counts else None
                _save_scoring_view(paths, out.record_id, replace(book, problems=problems[out.record_id]),
                                   counts.get(out.record_id), rows, keys, schema)
                if rows is not None:
                    out = replace(out, score_preview=preview_total(rows))
            json_path = write_receipt_files(paths, receipt, datadocs)
            outcomes.append(replace(out, receipt=str(json_path.relative_to(paths.root))))
    return outcomes


def _kept_whole(out: Outcome, book: ParsedWorkbook) -> bool:
    """Whether later stages will likely want the whole parsed workbook: a survey file, or a
    submission that 回头看 will sample cases from. Others are read again from the archive
    in the rare case they are needed (see `load_parsed`). Pickling every case table cost
    a tenth of a worker's time per file (4.5 of 45 ms) and more disk than the files themselves."""
    return out.kind == "satisfaction" or (out.kind == "submission" and named_before(
        book.cover.get(NAMING), book.cover.get(NAMING_YEAR), out.year))


def write_receipt_files(paths: Paths, receipt: dict, datadocs: Path | None) -> Path:
    """The receipt (JSON + xlsx) and a readable HTML check report beside it; returns the JSON path."""
    json_path = write_receipt(receipt, paths.receipts)[0]
    write_submission_report(receipt, json_path.with_suffix(".html"), datadocs)
    return json_path


def check_batch(parsed: dict[str, ParsedWorkbook], registry: Registry, system,
                schema: Schema) -> tuple[dict[str, list[Problem]], ValidationReport]:
    """Every file's problems (the reader's, then Great Expectations'), the batch checked as one."""
    # Imported here: Great Expectations takes seconds to import, and a process whose files are
    # checked by workers (they import it in the fork server) never needs it.
    from assets.validation import validate_batch

    report = validate_batch({k: p for k, p in parsed.items() if p.cover or p.tables},
                            registry, set(system.codes), schema)
    return {k: p.problems + report.problems.get(k, []) for k, p in parsed.items()}, report


def _receipt_problems(problems: Iterable[Problem], severity: str) -> list[dict]:
    return [p.to_json() for p in problems if p.severity == severity]


def _judge(rec: Received, parsed: ParsedWorkbook, problems: list[Problem],
           registry: Registry, schema: Schema) -> tuple[dict, Outcome]:
    """The receipt and the outcome of one file (the receipt path is filled in once written)."""
    errors = _receipt_problems(problems, "error")
    warnings = _receipt_problems(problems, "warning")
    status = "rejected" if errors else "accepted"
    if parsed.kind == "satisfaction":
        unit_code, unit_name = None, None
        year = _satisfaction_year(parsed, schema)
    else:
        unit_code, unit_name, year = _unit_and_year(parsed, registry)
    kind = parsed.kind if (parsed.cover or parsed.tables) else "unknown"
    receipt = {
        "status": status, "original_name": rec.original_name, "sha256": rec.sha256,
        "received_at": rec.received_at, "unit_code": unit_code, "unit_name": unit_name,
        "year": year, "kind": kind, "errors": errors, "warnings": warnings,
    }
    filled_on = parsed.cover.get("填报日期")
    out = Outcome(record_id=rec.record_id, status=status, kind=kind, original_name=rec.original_name,
                  sha256=rec.sha256, received_at=rec.received_at, unit_code=unit_code,
                  unit_name=unit_name, year=year, errors=len(errors), warnings=len(warnings), receipt="",
                  filled_on=filled_on.isoformat() if isinstance(filled_on, dt.date) else None,
                  rows={name: rows_of(parsed.tables, name) for name in parsed.tables})
    return receipt, out


def _pending_rows(o: Outcome, parsed: ParsedWorkbook, coverage: dict, system) -> list[dict]:
    """An accepted submission's indicator rows before the satisfaction result; their total is
    the preview shown to operators, never ranked."""
    record = SubmissionRecord(o.record_id, o.sha256, o.original_name, o.received_at, o.status, o.unit_code,
                              o.unit_name, o.year, None, parsed, coverage=coverage)
    return pending_rows(record, system)


# The scoring view of an accepted submission: its coverage counts, taken while
# the full tables are in memory, the workbook without its size-driving sheet,
# so that scoring a year of 3,000 units never holds every case table, and its
# indicator rows, so that they are not scored again.

def _view_keys(system) -> tuple[str, str]:
    """(key of the coverage rules, key of everything the indicator rows depend on): a view's counts,
    and separately its rows, are used only under the system they were made with."""
    rules = [(i.code, i.sheet, i.condition, i.among) for i in system.indicators if i.rule == "coverage"]
    return hashlib.sha256(repr(rules).encode()).hexdigest(), scoring_key(system)


def _save_scoring_view(paths: Paths, record_id: str, parsed: ParsedWorkbook, coverage: dict | None,
                       rows: list[dict] | None, keys: tuple[str, str], schema: Schema) -> None:
    big = {s.name for s in schema.table_sheets if s.size_driver}
    slim = replace(parsed, tables=parsed.tables.without(big) if coverage is not None else Tables())
    folder = paths.root / "store" / "scoring"
    folder.mkdir(exist_ok=True)
    vetoes = veto_types(parsed) if rows is not None else None
    write_atomic(folder / f"{record_id}.pkl",
                  pickle.dumps((keys[0], coverage, slim, keys[1], rows, vetoes),
                               protocol=pickle.HIGHEST_PROTOCOL))


def _duplicate(paths: Paths, rec: Received, first: Outcome) -> Outcome:
    """A copy's receipt is written; its outcome is left for the caller."""
    receipt = {
        "status": "duplicate", "original_name": rec.original_name, "sha256": rec.sha256,
        "received_at": rec.received_at, "unit_code": first.unit_code, "unit_name": first.unit_name,
        "year": first.year, "kind": first.kind,
        # `accepted` exactly when errors is empty (SPEC §7.1): a copy is not accepted again
        "errors": [{"sheet": None, "cell": None, "value": None,
                    "message": f"该文件与 {first.received_at[:19].replace('T', ' ')}（UTC）收到的"
                               f"“{first.original_name}”内容完全相同，属重复报送，本次不再处理；"
                               f"原文件的结果见其回执。"}],
        "warnings": [],
        "duplicate_of": {"original_name": first.original_name, "received_at": first.received_at,
                         "status": first.status},
    }
    json_path = write_receipt_files(paths, receipt, None)
    out = Outcome(record_id=rec.record_id, status="duplicate", kind=first.kind,
                  original_name=rec.original_name, sha256=rec.sha256, received_at=rec.received_at,
                  unit_code=first.unit_code, unit_name=first.unit_name, year=first.year,
                  errors=1, warnings=0, receipt=str(json_path.relative_to(paths.root)),
                  duplicate_of=first.record_id)
    return out


def _write_outcomes(paths: Paths, outs: list[Outcome]) -> None:
    write_all_atomic([(paths.processed / f"{out.record_id}.json", json.dumps(asdict(out), ensure_ascii=False).encode())
                      for out in outs], paths.root)


def unreported(paths: Paths) -> list[Outcome]:
    """Outcomes not yet shown to Dagster (a run killed after processing leaves some)."""
    log = paths.root / "store" / "reported.txt"
    done = set(log.read_text().split()) if log.exists() else set()
    return [o for o in all_outcomes(paths) if o.record_id not in done]


def mark_reported(paths: Paths, outcomes: Iterable[Outcome]) -> None:
    with open(paths.root / "store" / "reported.txt", "a") as fh:
        fh.writelines(f"{o.record_id}\n" for o in outcomes)
        fh.flush()
        os.fsync(fh.fileno())


# -------------------------------------------------------------- later stages

def load_parsed(paths: Paths, o: Outcome) -> ParsedWorkbook:
    """The parsed workbook kept at intake, else the archived bytes read again."""
    try:
        with open(paths.submissions / f"{o.record_id}.pkl", "rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        return read_workbook(paths.object(o.sha256), o.original_name)


def submission_records(paths: Paths, outcomes: Iterable[Outcome], year: int,
                       system=None) -> list[SubmissionRecord]:
    """Every accepted or rejected submission of a year.

    Records come with their scoring view (no case table, coverage counted)
    when it matches `system`'s coverage rules, and with their indicator rows
    when these were scored under the same indicator system; without `system`,
    or without a matching view, they come with the whole parsed workbook.
    """
    key, rows_key = _view_keys(system) if system is not None else (None, None)
    records = []
    for o in outcomes:
        if not o.submitted_for(year):
            continue
        parsed, coverage, scored, vetoes = None, None, None, None
        view = paths.root / "store" / "scoring" / f"{o.record_id}.pkl"
        if key is not None and view.exists():
            with open(view, "rb") as fh:
                view_key, coverage, parsed, *rows = pickle.load(fh)  # views written before rows: no rows
            if view_key != key and o.status == "accepted":
                parsed, coverage = None, None
            elif rows and rows[0] == rows_key:  # rows and veto types made under this system and schema
                scored, vetoes = rows[1], rows[2]
        records.append(SubmissionRecord(
            submission_id=o.record_id, sha256=o.sha256, original_name=o.original_name,
            received_at=o.received_at, status=o.status, unit_code=o.unit_code, unit_name=o.unit_name,
            year=o.year, filled_on=dt.date.fromisoformat(o.filled_on) if o.filled_on else None,
            parsed=parsed or load_parsed(paths, o), errors=o.errors, warnings=o.warnings,
            coverage=coverage, scored=scored, vetoes=vetoes))
    return records


def score_units_in_worker(outcomes: list[Outcome]) -> UnitScores:
    """In a worker of a year's scoring (see yearly.year_results): the units of `outcomes` scored."""
    paths, year, satisfaction, system, registry = state()
    return score_units(submission_records(paths, outcomes, year, system), satisfaction, system, registry)


def whole_record(paths: Paths, outcomes: Mapping[str, Outcome], record_id: str) -> SubmissionRecord:
    """One submission with its whole parsed workbook."""
    o = outcomes[record_id]
    return submission_records(paths, [o], o.year)[0]


def satisfaction_results(paths: Paths, outcomes: Iterable[Outcome], schema: Schema,
                         registry: Registry) -> dict[int, dict[str, tuple[float, str]]]:
    """year -> unit code -> (score, source cell); a later accepted survey file wins."""
    out: dict[int, dict[str, tuple[float, str]]] = {}
    sheet = schema.satisfaction.name
    for o in outcomes:
        if o.kind != "satisfaction" or o.status != "accepted":
            continue
        parsed = load_parsed(paths, o)
        frame = parsed.tables.get(sheet)
        if frame is None:
            continue
        for rec in frame.to_dict("records"):
            unit = registry.by_code(rec["单位代码"])
            if unit is None or rec["满意度得分"] is None:
                continue
            cell = parsed.cell_of(sheet, "满意度得分", int(rec["_row"]))
            source = f"{o.original_name}!{parsed.sheet_label(sheet)}!{cell}"
            out.setdefault(int(rec["测评年度"]), {})[unit.code] = (float(rec["满意度得分"]), source)
    return out
