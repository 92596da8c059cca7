"""A whole demo data set (registry + inbox) at any scale, for demos and benchmarks.

Units are the Haidong registry first, then synthetic county-level units. Every
choice (format, naming, which files are broken and how) is drawn from one seed,
so the same arguments always give the same files.
"""
from __future__ import annotations

import csv
import multiprocessing
import random
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from assets.archive import is_ignored
from assets.demo import satisfaction_sheets, submission_sheets, write_workbook
from assets.registry import HEADER, Unit, load_registry
from expectations.schema import load_schema

NAMINGS = ("省级示范", "全国示范")
NAMED_EVERY = 10            # every 10th unit (the 2nd, 12th, …) was named in an earlier year: 回头看
SYNTHETIC_CODE_BASE = 800000  # synthetic codes 8xxxxx never meet real 63xxxx codes
# Ways a county breaks a file; each makes exactly one validation error.
INVALID_KINDS = ("unreadable_number", "enum_out_of_list", "broken_rule")


@dataclass(frozen=True)
class DemoFile:
    """One generated inbox file and the outcome the pipeline must give it."""

    path: Path
    unit_code: str | None   # None for the satisfaction file
    expected: str           # accepted | rejected
    invalid_kind: str | None = None


@dataclass(frozen=True)
class _Job:
    path: Path
    fmt: str
    unit: Unit
    year: int
    cases: int
    seed: int
    naming: str
    naming_year: int | None
    invalid_kind: str | None


def demo_units(n: int) -> list[Unit]:
    """The default registry's units, then synthetic ones up to n (示例县0008, …)."""
    units = load_registry().units[:n]
    return units + [Unit(str(SYNTHETIC_CODE_BASE + i), f"示例县{i:04d}") for i in range(len(units) + 1, n + 1)]


def write_registry(units: list[Unit], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows([u.code, u.name, ";".join(u.aliases), ";".join(u.former_codes)] for u in units)
    return path


def write_inbox(inbox: Path, units: list[Unit], *, cases: int, year: int = 2024, seed: int = 0,
                formats: tuple[str, ...] = ("xlsx",), invalid: int = 0, satisfaction: bool = False,
                processes: int = 2, progress: Callable[[int, int], None] | None = None) -> list[DemoFile]:
    """One submission per unit (and the survey file when asked) into `inbox`."""
    rng = random.Random(seed)
    broken = dict(zip(sorted(rng.sample(range(len(units)), min(invalid, len(units)))), INVALID_KINDS * len(units)))
    jobs = []
    for i, unit in enumerate(units):
        fmt = formats[i % len(formats)]
        named = i % NAMED_EVERY == 1
        jobs.append(_Job(inbox / f"{unit.code}_{unit.name}_{year}年度报送.{fmt}", fmt, unit, year, cases, seed,
                         rng.choice(NAMINGS) if named else "未命名",
                         year - rng.randint(1, 3) if named else None, broken.get(i)))
    files = [DemoFile(j.path, j.unit.code, "rejected" if j.invalid_kind else "accepted", j.invalid_kind)
             for j in jobs]
    inbox.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("fork").Pool(processes) if processes > 1 else nullcontext() as pool:
        written = pool.imap_unordered(_write_submission, jobs, chunksize=4) if pool else map(_write_submission, jobs)
        for done, _ in enumerate(written, 1):
            if progress:
                progress(done, len(jobs))
    if satisfaction:
        rows = [(u.code, u.name, year, round(rng.uniform(75, 99), 1)) for u in units]
        path = write_workbook(satisfaction_sheets(rows), inbox / f"{year}年度群众满意度测评结果.xlsx")
        files.append(DemoFile(path, None, "accepted"))
    return files


def write_demo_set(out: Path, n_units: int, **options) -> list[DemoFile]:
    """out/units.csv (the registry to process with) and out/inbox/."""
    units = demo_units(n_units)
    write_registry(units, out / "units.csv")
    return write_inbox(out / "inbox", units, **options)


def seed_inbox(root: Path) -> list[DemoFile]:
    """Sample files for a first `make run`: only on a fresh root, never over real work."""
    if (root / ".dagster").exists():
        return []
    inbox = root / "inbox"
    if inbox.exists() and any(not is_ignored(p.name) for p in inbox.iterdir()):
        return []
    return write_inbox(inbox, load_registry().units, cases=30, formats=("xlsx", "xls", "ods"),
                       satisfaction=True, processes=1)


def _write_submission(job: _Job) -> Path:
    sheets = submission_sheets(job.unit.code, job.unit.name, job.year, cases=job.cases, seed=job.seed,
                               naming=job.naming, naming_year=job.naming_year)
    if job.invalid_kind:
        _break(sheets, job.invalid_kind)
    return write_workbook(sheets, job.path, job.fmt)


def _break(sheets: dict[str, list[list]], kind: str) -> None:
    """Introduce one mistake a clerk really makes, located from the schema."""
    schema = load_schema()
    items = schema.items_sheet
    rows = sheets[items.name]
    code_col, value_col = items.headers.index(items.extra["code_header"]), items.headers.index(items.value_header)
    row_of = {r[code_col]: r for r in rows[1:]}
    if kind == "unreadable_number":
        field = next(f for f in items.fields if f.type == "count")
        row_of[field.name][value_col] = "约十次"
    elif kind == "broken_rule":
        rule = items.extra["not_greater_than"][0]
        row_of[rule["left"]][value_col] = sum(row_of[r][value_col] for r in rule["right"]) + 1
    else:
        sheet = next(s for s in schema.table_sheets if s.size_driver)
        col = next(i for i, f in enumerate(sheet.fields) if f.type == "enum" and f.required)
        sheets[sheet.name][1][col] = "不在下拉列表中的领域"


def tty_progress(label: str) -> Callable[[int, int], None] | None:
    """A one-line counter on an interactive terminal; silent in logs and tests."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        print(f"\r{label} {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return show
