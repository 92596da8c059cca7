"""Year results and exports, rebuilt only for the years whose inputs changed."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from assets.intake import Outcome, Paths, satisfaction_results, submission_records
from assets.registry import Registry
from expectations.schema import Schema

FINGERPRINT = "fingerprint.txt"


def years_with_submissions(outcomes: list[Outcome]) -> list[int]:
    return sorted({o.year for o in outcomes if o.kind == "submission" and o.year and o.unit_code})


def fingerprint(year: int, outcomes: list[Outcome], *config_files: Path | None) -> str:
    """Changes whenever anything that feeds the year's results changes."""
    h = hashlib.sha256(str(year).encode())
    for o in outcomes:
        if o.status != "duplicate" and (o.kind == "satisfaction" or o.year == year):
            h.update(f"{o.record_id}|{o.status}|{o.kind}".encode())
    for f in config_files:
        if f is not None:
            h.update(Path(f).read_bytes())
    return h.hexdigest()


def stale_years(paths: Paths, outcomes: list[Outcome], config_files: list[Path | None]) -> dict[int, str]:
    """year -> new fingerprint, for every year whose stored results are out of date."""
    stale = {}
    for year in years_with_submissions(outcomes):
        fp = fingerprint(year, outcomes, *config_files)
        stamp = paths.results / str(year) / FINGERPRINT
        if not stamp.exists() or stamp.read_text() != fp:
            stale[year] = fp
    return stale


def mark_fresh(paths: Paths, year: int, fp: str) -> None:
    stamp = paths.results / str(year) / FINGERPRINT
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fp)


def input_files(outcomes: list[Outcome], year: int) -> list[dict]:
    """The files behind a year's results, for the 说明 sheet."""
    return [{"original_name": o.original_name, "sha256": o.sha256, "received_at": o.received_at,
             "status": o.status, "kind": o.kind, "unit_code": o.unit_code}
            for o in outcomes
            if o.status != "duplicate" and ((o.kind == "submission" and o.year == year)
                                            or o.kind == "satisfaction")]


def records_and_satisfaction(paths: Paths, outcomes: list[Outcome], year: int, schema: Schema,
                             registry: Registry, system):
    records = submission_records(paths, outcomes, year, system)
    satisfaction = satisfaction_results(paths, outcomes, schema, registry).get(year, {})
    return records, satisfaction


def dump_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
