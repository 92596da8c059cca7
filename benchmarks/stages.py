"""`fazhi process` with a stopwatch around each stage, to show where the time goes.

Wraps the stage functions where the pipeline looks them up (a handful of calls
per batch or per file, so the wrappers cost nothing measurable), runs the real
command in one process (FAZHI_WORKERS=1: work done by worker processes would
escape the stopwatch) and writes {stage: seconds} as JSON. The stages add up to
the pipeline's cost on one core, not its wall time on two.

    python benchmarks/stages.py OUT.json process --root DIR --units FILE
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from functools import wraps
from importlib import import_module
from pathlib import Path

STARTED = time.perf_counter()
os.environ["FAZHI_WORKERS"] = "1"

# stage -> functions (module, attribute[, only when called with this function])
# whose time counts for it; none of them calls another. Targets the pipeline
# no longer has, and stages never entered, are listed under "missing" rather
# than failing the run.
STAGES = {
    "archive (inbox → sha256 store)": [("assets.archive", "take_ready_files")],
    "read (calamine + typing)": [("assets.intake", "read_workbook")],
    "validate (GX suites)": [("assets.validation", "validate_batch")],
    "GX Data Docs": [("assets.intake", "write_datadocs")],
    "coverage counts, scoring view, score preview": [
        ("assets.intake", "coverage_counts"), ("assets.intake", "_save_scoring_view"), ("assets.intake", "_pending_rows")],
    "receipts + outcomes": [("assets.intake", "write_receipt_files"), ("assets.intake", "_write_outcomes")],
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
        for module, attr in targets:
            owner = import_module(module)
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part, None)
            if not hasattr(owner, name):
                missing.append(f"{module}.{attr}")
                continue
            setattr(owner, name, _timed(getattr(owner, name), stage, spent))
    return spent, missing


def _timed(fn, stage: str, spent: dict[str, float]):
    @wraps(fn)
    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[stage] += time.perf_counter() - t
    return timed


if __name__ == "__main__":
    spent, missing = instrument()
    from pipelines.cli import main

    code = main(sys.argv[2:])
    missing += [f"{stage} (never called)" for stage in STAGES if stage not in spent]
    total = time.perf_counter() - STARTED
    spent["other (imports, Dagster run and step overhead)"] = total - sum(spent.values())
    Path(sys.argv[1]).write_text(json.dumps({"total_s": total, "stages": spent, "missing": missing}, ensure_ascii=False, indent=1))
    sys.exit(code)
