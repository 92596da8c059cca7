"""Per-file work that intake hands to worker processes: reading a file, writing its receipt.

Kept apart from intake so that workers import calamine and openpyxl but never
Great Expectations, and start in a fraction of a second.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from assets.datadocs import write_submission_report
from assets.reading import read_workbook
from assets.receipts import write_receipt


def read_pickled(job: tuple[str, str]) -> bytes:
    """Read one archived file; pickled, since that is how it crosses processes and is stored."""
    path, name = job
    return pickle.dumps(read_workbook(Path(path), name), protocol=pickle.HIGHEST_PROTOCOL)


def write_receipt_files(job: tuple[dict, str, str | None]) -> str:
    """The receipt (JSON + xlsx) and a readable HTML check report beside it; returns the JSON path."""
    receipt, folder, datadocs = job
    json_path = write_receipt(receipt, Path(folder))[0]
    write_submission_report(receipt, json_path.with_suffix(".html"), Path(datadocs) if datadocs else None)
    return str(json_path)
