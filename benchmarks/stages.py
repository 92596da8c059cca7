"""`fazhi process` with a stopwatch around each stage, to show where the time goes.

Wraps the stage functions where the pipeline looks them up (a handful of calls
per batch or per file, so the wrappers cost nothing measurable), runs the real
command in-process and writes {stage: seconds} as JSON.

    python benchmarks/stages.py OUT.json process --root DIR --units FILE
"""
from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from functools import wraps
from importlib import import_module
from pathlib import Path

STARTED = time.perf_counter()

# stage -> functions (module, attribute[, only when called with this function])
# whose time counts for it; none of them calls another. Targets the pipeline
# no longer has, and stages never entered, are listed under "missing" rather
# than failing the run.
STAGES = {
    "archive (inbox → sha256 store)": [("assets.archive", "take_ready_files")],
    "read (calamine + typing; waiting on the worker pool)": [("assets.intake", "_Workers.map", "read_pickled")],
    "validate (GX suites)": [("assets.intake", "validate_batch")],
    "GX Data Docs": [("assets.intake", "write_datadocs")],
    "coverage counts, scoring view, score preview": [
        ("assets.intake", "coverage_counts"), ("assets.intake", "_save_scoring_view"), ("assets.intake", "_preview")],
    "receipts (waiting on the worker pool) + outcomes": [("assets.intake", "_Workers.map", "write_receipt_files"),
                                          ("assets.intake", "_write_outcome")],
    "Dagster events (partitions, materialisations, checks, tags)": [
        ("dagster", "AssetExecutionContext.log_event"), ("dagster", "DagsterInstance.add_dynamic_partitions"),
        ("dagster", "DagsterInstance.add_run_tags")],
    "reporting status": [("pipelines.assets", "reporting_status"), ("pipelines.assets", "status_table")],
    "year results (load, score, save)": [("assets.yearly", "refresh_year_results")],
    "score workbook": [("assets.yearly", "publish_score_workbooks")],
    "回头看 packages": [("assets.yearly", "publish_lookback")],
}


def instrument() -> tuple[dict[str, float], list[str]]:
    spent: dict[str, float] = defaultdict(float)
    missing = []
    for stage, targets in STAGES.items():
        for module, attr, *only in targets:
            owner = import_module(module)
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part, None)
            if not hasattr(owner, name):
                missing.append(f"{module}.{attr}")
                continue
            setattr(owner, name, _timed(getattr(owner, name), stage, spent, only[0] if only else None))
    return spent, missing


def _timed(fn, stage: str, spent: dict[str, float], only: str | None):
    @wraps(fn)
    def timed(*args, **kwargs):
        if only and not any(getattr(a, "__name__", "").lstrip("_") == only for a in args[:2]):
            return fn(*args, **kwargs)
        t = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        finally:
            spent[stage] += time.perf_counter() - t
        # Work handed to a pool costs the caller only while it waits for results.
        return _timed_results(result, stage, spent) if isinstance(result, Iterator) else result
    return timed


def _timed_results(results: Iterator, stage: str, spent: dict[str, float]) -> Iterator:
    while True:
        t = time.perf_counter()
        try:
            item = next(results)
        except StopIteration:
            return
        finally:
            spent[stage] += time.perf_counter() - t
        yield item


if __name__ == "__main__":
    spent, missing = instrument()
    from pipelines.cli import main

    code = main(sys.argv[2:])
    missing += [f"{stage} (never called)" for stage in STAGES if stage not in spent]
    total = time.perf_counter() - STARTED
    spent["other (imports, Dagster run and step overhead)"] = total - sum(spent.values())
    Path(sys.argv[1]).write_text(json.dumps({"total_s": total, "stages": spent, "missing": missing}, ensure_ascii=False, indent=1))
    sys.exit(code)
