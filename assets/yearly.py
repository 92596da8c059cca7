"""Year results and exports, rebuilt only for the years whose inputs changed."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import pandas as pd

from assets.archive import Paths
from assets.intake import (Outcome, all_outcomes, satisfaction_results, score_units_in_worker, submission_records,
                           whole_record)
from assets.lookback import build_lookback_packages, lookback_targets
from assets.model import YearResults
from assets.registry import Registry
from assets.score_workbook import workbook_name, write_score_workbook
from assets.scoring import assemble_year, compute_year_results, load_year_results, save_year_results
from assets.workers import INTAKE_MODULES, pool_size, process_pool, server_started
from expectations.schema import Schema

FINGERPRINT = "fingerprint.txt"


def years_with_submissions(outcomes: list[Outcome]) -> list[int]:
    return sorted({o.year for o in outcomes if o.kind == "submission" and o.year and o.unit_code})


def feeds(o: Outcome, year: int) -> bool:
    """Whether a received file is an input of the year's results (survey files may be for any year)."""
    return o.status != "duplicate" and (o.kind == "satisfaction" or (o.kind == "submission" and o.year == year))


def fingerprint(year: int, outcomes: list[Outcome], config_digest: bytes) -> str:
    """Changes whenever anything that feeds the year's results changes."""
    h = hashlib.sha256(str(year).encode() + config_digest)
    for o in outcomes:
        if feeds(o, year):
            h.update(f"{o.record_id}|{o.status}|{o.kind}".encode())
    return h.hexdigest()


def stale_years(paths: Paths, outcomes: list[Outcome], config_files: list[Path | None]) -> dict[int, str]:
    """year -> new fingerprint, for every year whose stored results are out of date."""
    config_digest = hashlib.sha256(b"".join(Path(f).read_bytes() for f in config_files if f is not None)).digest()
    stale = {}
    for year in years_with_submissions(outcomes):
        fp = fingerprint(year, outcomes, config_digest)
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
            for o in outcomes if feeds(o, year)]


def refresh_year_results(paths: Paths, registry: Registry, schema: Schema, system,
                         config_files: list[Path | None]) -> list[YearResults]:
    """Recompute and store the results of every year whose inputs changed."""
    outcomes = all_outcomes(paths)
    stale = stale_years(paths, outcomes, config_files)
    satisfaction = satisfaction_results(paths, outcomes, schema, registry) if stale else {}
    updated = []
    for year, fp in stale.items():
        results = year_results(paths, outcomes, year, satisfaction.get(year, {}), system, registry)
        save_year_results(results, paths.results / str(year))
        mark_fresh(paths, year, fp)
        updated.append(results)
    return updated


MIN_POOL_SUBMISSIONS = 500  # below this, the parts cost more to send than they save


def year_results(paths: Paths, outcomes: list[Outcome], year: int, satisfaction: dict[str, tuple[float, str]],
                 system, registry: Registry) -> YearResults:
    """The year's results. When intake's workers are up, the units are scored in parts on every
    core (loading 3,000 stored submissions and scoring them took some 4 s on one), then ranked
    here together."""
    mine = [o for o in outcomes if o.submitted_for(year)]
    n = pool_size(len(mine), MIN_POOL_SUBMISSIONS) if server_started() else 1
    if n == 1:
        return compute_year_results(year, submission_records(paths, mine, year, system), satisfaction, system,
                                    registry)
    codes = sorted({o.unit_code for o in mine})  # each part: every submission of a run of units
    shares = [set(codes[len(codes) * k // n:len(codes) * (k + 1) // n]) for k in range(n)]
    with process_pool(n, INTAKE_MODULES, tuple, ((paths, year, satisfaction, system, registry),)) as pool:
        parts = list(pool.map(score_units_in_worker, [[o for o in mine if o.unit_code in s] for s in shares]))
    return assemble_year(year, parts, system)


def _changed_exports(paths: Paths, stamp_name: str) -> list[tuple[int, str]]:
    """Years whose results changed since this export was last written."""
    changed = []
    for d in sorted(paths.results.glob("*/" + FINGERPRINT)):
        year, fp = int(d.parent.name), d.read_text()
        stamp = paths.exports / str(year) / stamp_name
        if not stamp.exists() or stamp.read_text() != fp:
            changed.append((year, fp))
    return changed


def _stamp(paths: Paths, year: int, stamp_name: str, fp: str) -> None:
    folder = paths.exports / str(year)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / stamp_name).write_text(fp)


def publish_score_workbooks(paths: Paths, system) -> list[Path]:
    """Rewrite the score workbook of every year whose results changed."""
    outcomes = all_outcomes(paths)
    written = []
    for year, fp in _changed_exports(paths, ".score_workbook"):
        out = paths.exports / str(year) / workbook_name(year)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_score_workbook(load_year_results(paths.results / str(year)), system, out, input_files(outcomes, year))
        _stamp(paths, year, ".score_workbook", fp)
        written.append(out)
    return written


def publish_lookback(paths: Paths, system) -> pd.DataFrame:
    """Rewrite the 回头看 packages of every year whose results changed; returns their index."""
    outcomes = all_outcomes(paths)
    stored = {int(p.parent.name): p.parent for p in paths.results.glob("*/" + FINGERPRINT)}
    rows = []
    for year, fp in _changed_exports(paths, ".lookback"):
        current = load_year_results(stored[year])
        baselines = {y: load_year_results(d) for y, d in stored.items() if y < year}
        named = set(current.units.submission_id[current.units.unit_code.isin(lookback_targets(current))])
        # each of the named units' workbooks is loaded whole where its package is written
        record_of = functools.partial(whole_record, paths, {o.record_id: o for o in outcomes if o.record_id in named})
        rows.append(build_lookback_packages(current, baselines, record_of, paths.exports / str(year) / "回头看",
                                            list(system.recommendation.categories)))
        _stamp(paths, year, ".lookback", fp)
    return pd.concat(rows) if rows else pd.DataFrame()
