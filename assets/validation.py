"""Validation of a batch of parsed workbooks with the GX suites (SPEC §3, §5, §7.1).

All submissions of a batch are stacked into one frame per sheet and each suite
runs once; failing rows come back by frame position and are turned into
Problems citing the sheet and cell the clerk sees. Cells the reader already
reported as unreadable are never reported again.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# The suites first: they import Great Expectations without scipy.stats and altair (expectations/on_first_use.py).
from expectations.suites import (INDEX, ROW, SUBMISSION, YEAR, YEAR_ITEM, Derived, Rule, SheetSuite,  # isort: skip
                                 batch_definition, sheet_suites)

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.core import id_dict
from great_expectations.execution_engine import pandas_execution_engine

from assets.model import ParsedWorkbook, Problem, rows_of, stacked
from assets.registry import Registry
from expectations.schema import Schema, load_schema

log = logging.getLogger(__name__)

RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": [INDEX],
                 "return_unexpected_index_query": False}
_A1 = re.compile(r"^([A-Z]+)(\d+)$")


@dataclass
class ValidationReport:
    """What GX found in a batch.

    problems        submission id -> Problems found by GX (not the reader's),
                    in schema sheet order, then row, then column
    checks          one entry per suite run, for asset check metadata
    per_submission  submission id -> schema sheet -> number of errors
    gx_results      suite name -> the GX validation result, for Data Docs
    """

    problems: dict[str, list[Problem]]
    checks: list[dict]
    per_submission: dict[str, dict[str, int]]
    gx_results: dict = field(default_factory=dict)


def validate_batch(parsed: dict[str, ParsedWorkbook], registry: Registry, indicator_codes: set[str],
                   schema: Schema | None = None) -> ValidationReport:
    schema = schema or load_schema()
    order = {name: i for i, name in enumerate([*schema.sheets, schema.satisfaction.name])}
    found: dict[str, list[tuple]] = {sid: [] for sid in parsed}
    checks, gx_results = [], {}
    for s in sheet_suites(schema, frozenset(indicator_codes)):
        kind = "satisfaction" if s.satisfaction else "submission"
        books = {sid: p for sid, p in parsed.items() if p.kind == kind}
        if not books:
            continue
        frame = _frame(s, books, schema)
        _derive(frame, s.derived, registry)
        results = []
        if len(frame):
            run = batch_definition().get_batch(batch_parameters={"dataframe": frame})
            token = _configurations.set({})
            try:
                gx_results[s.title] = run.validate(s.suite, result_format=RESULT_FORMAT)
            finally:
                _configurations.reset(token)
            results = sorted(gx_results[s.title].results, key=lambda r: r.expectation_config.meta["rule"])
        summary = []
        for res in results:
            rule = s.rules[res.expectation_config.meta["rule"]]
            rows = [d[INDEX] for d in res.result.get("unexpected_index_list") or []]
            reported = 0
            for i in rows:
                sid = frame[SUBMISSION].iat[i]
                hit = _problem(rule, _Where(s, books[sid], frame, i, schema, rule), order)
                if hit:
                    found[sid].append(hit)
                    reported += 1
            summary.append(_result_summary(rule, res, reported))
        checks.append(_check_summary(s, kind, frame, books, summary))
    problems = {sid: [p for *_, p in sorted(hits, key=lambda h: h[:3])] for sid, hits in found.items()}
    return ValidationReport(problems, checks, _per_submission(parsed, schema, found), gx_results)


# Great Expectations 1.x builds an expectation's configuration afresh (a pydantic dict() and a
# JSON pass) each time it is read, about a hundred times per expectation per run: a third of the
# fixed cost of checking a batch (0.47-0.54 against 0.69-1.22 s for 5 files). Nothing changes an
# expectation while it is being validated, so during `run.validate` each is built once. The cache
# holds the expectation too, so that its id cannot be reused within the run.
_configurations: ContextVar[dict | None] = ContextVar("gx_configurations", default=None)
_BUILD_CONFIGURATION = gxe.Expectation.__dict__.get("configuration")


def _configuration_once(self: gxe.Expectation):
    built = _configurations.get()
    if built is None:
        return _BUILD_CONFIGURATION.fget(self)
    hit = built.get(id(self))
    if hit is None or hit[0] is not self:
        hit = built[id(self)] = (self, _BUILD_CONFIGURATION.fget(self))
    return hit[1]


if isinstance(_BUILD_CONFIGURATION, property):  # else a GX whose configuration this was not measured on
    gxe.Expectation.configuration = property(_configuration_once, doc=_BUILD_CONFIGURATION.__doc__)

# GX also fingerprints every batch frame under 1 GB (an md5 of pandas' hash of each row) for a batch
# marker that no check or receipt reads (Data Docs only listed it): a third of checking 200 files
# (1.24-1.48 s of CPU, 0.87-0.93 s without). The frames are built afresh for each batch, so the
# fingerprint would identify nothing anyone could look up either.
if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
    pandas_execution_engine.HASH_THRESHOLD = 0

# GX names every metric it computes (some 4,000 per batch) by an md5 of its arguments, made JSON-ready
# by a converter that tries twenty-odd types, numpy's among them, on each value before it reaches None:
# a fifth of the fixed cost of checking a batch (10 files: 0.94-1.02 s of CPU, 0.68-0.82 s without).
# The arguments are nearly always plain JSON values, converted here the same way; anything else still
# goes to GX's converter.
_GX_TO_JSON = getattr(id_dict, "convert_to_json_serializable", None)


def _plain_json(data: Any) -> Any:
    kind = type(data)
    if data is None or kind is str or kind is int or kind is bool:
        return data
    if kind is float:
        return None if math.isnan(data) else data
    if kind is dict:
        return {str(k): _plain_json(v) for k, v in data.items()}
    if kind is list or kind is tuple or kind is set:
        return [_plain_json(v) for v in data]
    return _GX_TO_JSON(data)


if _GX_TO_JSON is not None:
    id_dict.convert_to_json_serializable = _plain_json


class _Where:
    """One failing frame row seen from its workbook: sheet label and cells."""

    def __init__(self, s: SheetSuite, book: ParsedWorkbook, frame: pd.DataFrame, i: int, schema: Schema,
                 rule: Rule):
        self._s, self.book, self._frame, self._i, self._schema = s, book, frame, i, schema
        self.sheet = book.sheet_label(rule.sheet)
        self.cell = self.cell_of(rule.field) if rule.field else None

    def cell_of(self, name: str) -> str | None:
        book, layout = self.book, self._s.layout
        if layout == "keyvalue":
            return book.cover_cells.get(name)
        if layout == "items":
            return book.item_cells.get(name)
        if layout == "item_values":  # the cell of this row's item
            return book.item_cells.get(self._frame[self._schema.items_sheet.key_header].iat[self._i])
        letter = book.columns.get(self._s.name, {}).get(name)
        return f"{letter}{int(self._frame[ROW].iat[self._i])}" if letter else None

    def value(self, column: str) -> Any:
        return _plain(self._frame[column].iat[self._i])

    def cover_cell(self, name: str) -> str | None:
        cover = self._schema.cover_sheet.name
        cell = self.book.cover_cells.get(name)
        return f"{self.book.sheet_label(cover)}!{cell}" if cell else self.book.sheet_label(cover)


def _problem(rule: Rule, w: _Where, order: dict[str, int]) -> tuple | None:
    """(sort key…, Problem), or None when the cell is unknown or already reported."""
    if rule.field and w.cell is None:  # the reader reported the missing row or column
        return None
    if (rule.sheet, w.cell) in w.book.unreadable:
        return None
    value = w.value(rule.field) if rule.field else None
    m = _A1.match(w.cell or "")
    row, col = (int(m.group(2)), _column_number(m.group(1))) if m else (0, 0)
    return order[rule.sheet], row, col, Problem(w.sheet, w.cell, value, rule.message(w))


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _plain(v: Any) -> Any:
    """A frame value as a plain Python value (None for blank)."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if isinstance(v, np.generic) else v


def _year(book: ParsedWorkbook, schema: Schema) -> float:
    """The reporting year when it is a valid one, else NaN (dates are then not compared)."""
    f, v = schema.cover_sheet.field(YEAR_ITEM), book.cover.get(YEAR_ITEM)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
        return math.nan
    if (f.min is not None and v < f.min) or (f.max is not None and v > f.max):
        return math.nan
    return float(v)


def _frame(s: SheetSuite, books: dict[str, ParsedWorkbook], schema: Schema) -> pd.DataFrame:
    """Every workbook's records of one sheet, stacked, with submission and position."""
    sheet = schema.satisfaction if s.satisfaction else schema.sheets.get(s.name)
    if s.layout == "records":
        names = [d.column for d in s.derived]
        rows = [{SUBMISSION: sid, **{n: rows_of(p.tables, n) if n in p.tables else math.nan for n in names}}
                for sid, p in books.items()]
        frame = pd.DataFrame(rows, columns=[SUBMISSION, *names])
    elif s.layout == "item_values":
        key, value = sheet.key_header, sheet.value_header
        rows = [(sid, _year(p, schema), f.name, p.items.get(f.name))
                for sid, p in books.items() if s.name in p.sheet_names for f in sheet.fields]
        frame = pd.DataFrame(rows, columns=[SUBMISSION, YEAR, key, value])
    elif s.layout in ("keyvalue", "items"):
        values = "cover" if s.layout == "keyvalue" else "items"
        rows = [{**getattr(p, values), SUBMISSION: sid, YEAR: _year(p, schema)}
                for sid, p in books.items() if s.name in p.sheet_names]
        frame = pd.DataFrame(rows, columns=[SUBMISSION, YEAR, *(f.name for f in sheet.fields)])
    else:
        ids = [sid for sid, p in books.items() if s.name in p.tables]
        frame, sizes = stacked([books[sid].tables for sid in ids], s.name, [ROW, *(f.name for f in sheet.fields)])
        frame.insert(0, SUBMISSION, np.repeat(np.array(ids, dtype=object), sizes))
        frame.insert(1, YEAR, np.repeat(np.array([_year(books[sid], schema) for sid in ids], dtype=float), sizes))
    frame[INDEX] = np.arange(len(frame))
    return frame


def _derive(frame: pd.DataFrame, derived: list[Derived], registry: Registry) -> None:
    for d in derived:
        src = frame[d.sources[0]]
        if d.kind == "year_of":
            frame[d.column] = pd.to_datetime(src, errors="coerce").dt.year
        elif d.kind in ("unit_by_code", "unit_by_name"):
            lookup = registry.by_code if d.kind == "unit_by_code" else registry.by_name
            names = {v: (u.name if (u := lookup(v)) else None) for v in src.dropna().unique()}
            frame[d.column] = src.map(names)
        elif d.kind == "total":
            parts = frame[list(d.sources)].apply(pd.to_numeric, errors="coerce")
            frame[d.column] = parts.sum(axis=1, min_count=len(d.sources))
        elif d.kind == "per_item":
            frame[d.column] = src.map(dict(d.params))
        elif d.kind == "number":
            numbers = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan for v in src]
            frame[d.column] = np.array(numbers, dtype=float)
        elif d.kind == "deadline":
            years_after, month, day = d.params
            years = frame[YEAR]
            frame[d.column] = years.map({y: dt.date(int(y) + years_after, month, day)
                                         for y in years.dropna().unique()})


def _result_summary(rule: Rule, res, reported: int) -> dict:
    cfg = res.expectation_config
    kw = cfg.kwargs
    columns = kw.get("column_list") or [c for c in (kw.get("column"), kw.get("column_A"), kw.get("column_B")) if c]
    entry = {"rule": rule.id, "sheet": rule.sheet, "field": rule.field, "expectation": cfg.type,
             "columns": list(columns), "evaluated": res.result.get("element_count", 0),
             "unexpected": res.result.get("unexpected_count", 0), "reported": reported,
             "success": bool(res.success)}
    error = _exception(res.exception_info)
    if error:
        entry["error"] = error
        log.error("GX expectation %s on %s could not run: %s", cfg.type, columns, error)
    return entry


def _exception(info: dict | None) -> str | None:
    """GX's exception text, given flat or per metric."""
    if not info:
        return None
    infos = [info] if "raised_exception" in info else info.values()
    return "; ".join(str(i.get("exception_message")) for i in infos
                     if isinstance(i, dict) and i.get("raised_exception")) or None


def _check_summary(s: SheetSuite, kind: str, frame: pd.DataFrame, books: dict, results: list[dict]) -> dict:
    return {"suite": s.name, "kind": kind, "files": len(books), "rows": len(frame),
            "expectations": len(s.rules), "success": all(r["success"] for r in results),
            "unexpected": sum(r["unexpected"] for r in results),
            "reported": sum(r["reported"] for r in results), "results": results}


def _per_submission(parsed: dict[str, ParsedWorkbook], schema: Schema, found: dict[str, list[tuple]]
                    ) -> dict[str, dict[str, int]]:
    sheets = {"submission": list(schema.sheets), "satisfaction": [schema.satisfaction.name]}
    names = [*schema.sheets, schema.satisfaction.name]
    counts = {}
    for sid, p in parsed.items():
        c = dict.fromkeys(sheets.get(p.kind, []), 0)
        for order, *_ in found[sid]:
            c[names[order]] = c.get(names[order], 0) + 1
        counts[sid] = c
    return counts
