"""Scoring (SPEC §4): rule kinds, per-submission scores, year results and their persistence.

Scores are computed exactly with Fraction; floats leave this module only as
values of the result frames, and rounding (half up, two decimals) happens only
where a score is shown.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache, reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assets.indicators import ITEMS_SHEET, Indicator, IndicatorSystem, condition_text, resolve_date
from assets.model import ParsedWorkbook, SubmissionRecord, YearResults, display, rows_of, stacked
from assets.registry import Registry
from expectations.schema import load_schema

NOT_APPLICABLE, PENDING = "不适用", "待测评"
COUNTING, SUPERSEDED, RETURNED = "计分", "已被替代", "退回"
FINAL, PROVISIONAL = "正式", "暂定"
RECOMMENDED, REFUSED, NOT_YET = "可推荐示范", "不予推荐", "暂不推荐"
EVENTS_SHEET = "负面清单"
_EVENTS = load_schema().sheets[EVENTS_SHEET]
EVENT_TYPE = _EVENTS.field("事件类型").name
VETO_TYPES = tuple(_EVENTS.extra["veto_types"])
NAMING, NAMING_YEAR = "示范命名情况", "命名年度"

INDICATOR_COLUMNS = ["unit_code", "indicator", "name", "category", "points", "value", "target",
                     "score", "status", "reason", "source"]
UNIT_COLUMNS = ["unit_code", "unit_name", "submission_id", "source_file", "total", "provisional",
                "status", "grade", "veto", "eligible", "recommendation", "rank", "satisfaction",
                "naming", "naming_year", "reasons"]
CATEGORY_COLUMNS = ["unit_code", "category", "category_name", "points", "score", "share"]
SUBMISSION_COLUMNS = ["submission_id", "unit_code", "unit_name", "status", "filled_on", "received_at",
                      "sha256", "original_name", "errors", "warnings", "problems"]
MAX_PROBLEMS_SHOWN = 20


def exact(x: Any) -> Fraction:
    """A read value as the decimal the clerk typed (0.1 stays 1/10, not the binary float)."""
    return Fraction(repr(float(x))) if isinstance(x, float) else Fraction(x)


def exact_sum(values: Iterable[Fraction]) -> Fraction:
    """The exact sum, added over the common denominator: summing a unit's indicators one
    Fraction at a time made a year of 3,000 units take 1.19-1.34 s to score, against 1.04-1.14 s."""
    values = list(values)
    common = math.lcm(*(v.denominator for v in values)) if values else 1
    return Fraction(sum(v.numerator * (common // v.denominator) for v in values), common)


def round_score(x: Any) -> float | None:
    """Two decimals, half up, for display and writing; None for a missing score (None, NaN, pd.NA).
    A float is looked at directly: pd.isna costs a microsecond a call, 200,000 calls a score workbook."""
    if x is None or (x != x if type(x) is float else pd.isna(x)):
        return None
    return _half_up(x)


@lru_cache(maxsize=1 << 16, typed=True)  # a Fraction and an equal float may round differently
def _half_up(x: Fraction | float) -> float:
    # Cached: a year's score workbook rounds the same few hundred scores some 200,000 times.
    d = Decimal(x.numerator) / Decimal(x.denominator) if isinstance(x, Fraction) else Decimal(repr(float(x)))
    return float(d.quantize(Decimal("0.01"), ROUND_HALF_UP))


def _pct(rate: Fraction) -> str:
    return f"{round_score(rate):.2f}%"


# --- rows of a table sheet -------------------------------------------------

def row_mask(frame: pd.DataFrame, cond: dict) -> pd.Series:
    """Which rows meet a config condition; a row lacking what it needs does not."""
    if "all_of" in cond:
        return reduce(lambda a, b: a & b, (row_mask(frame, c) for c in cond["all_of"]))
    if "all" in cond:
        return pd.Series(True, index=frame.index)
    if "column" in cond:
        return frame[cond["column"]].eq(cond["equals"]).fillna(False).astype(bool)
    if "any_value" in cond:
        return frame[cond["any_value"]].notna()
    if "column_in" in cond:
        return frame[cond["column_in"]].isin(cond["values"])
    days = (pd.to_datetime(frame[cond["to"]], errors="coerce")
            - pd.to_datetime(frame[cond["days_from"]], errors="coerce")).dt.days
    return days.le(cond["at_most"]).fillna(False).astype(bool)


def _columns(cond: dict) -> list[str]:
    if "all_of" in cond:
        return [c for sub in cond["all_of"] for c in _columns(sub)]
    return [cond[k] for k in ("column", "any_value", "column_in", "days_from", "to") if k in cond]


def coverage_counts(records: list[ParsedWorkbook], system: IndicatorSystem) -> list[dict[str, tuple[int, int]]]:
    """Per workbook: coverage indicator -> (rows meeting the condition, qualifying rows).

    One vectorised pass per sheet over the rows of all records together: pandas
    costs per call, not per row, so thousands of small tables are cheap this way.
    """
    out: list[dict[str, tuple[int, int]]] = [{} for _ in records]
    rules = [i for i in system.indicators if i.rule == "coverage"]
    for sheet in dict.fromkeys(i.sheet for i in rules):
        mine = [i for i in rules if i.sheet == sheet]
        cols = list(dict.fromkeys(c for i in mine for c in _columns(i.condition) + _columns(i.among)))
        rows, sizes = stacked([r.tables for r in records], sheet, cols)
        owner = np.repeat(np.arange(len(records)), sizes)  # each row's workbook
        for ind in mine:
            among = row_mask(rows, ind.among).to_numpy(dtype=bool)
            meets = among & row_mask(rows, ind.condition).to_numpy(dtype=bool)
            den = np.bincount(owner, weights=among, minlength=len(records))
            num = np.bincount(owner, weights=meets, minlength=len(records))
            for k in range(len(records)):
                out[k][ind.code] = (int(num[k]), int(den[k]))
    return out


# --- one indicator ---------------------------------------------------------

class _Context:
    """What the rules of one submission read."""

    def __init__(self, record: SubmissionRecord, coverage: dict[str, tuple[int, int]],
                 satisfaction: float | None, satisfaction_source: str | None):
        self.parsed = record.parsed
        self.coverage = coverage
        self.year = record.year
        self.file = record.original_name
        self.satisfaction = satisfaction
        self.satisfaction_source = satisfaction_source or ""
        self.items_fields = {f.name: f for f in load_schema().sheets[ITEMS_SHEET].fields}

    def item(self, code: str) -> Any:
        return self.parsed.items.get(code)

    def source(self, codes: tuple[str, ...]) -> str:
        cells = ",".join(self.parsed.item_cells.get(c, c) for c in codes)
        return f"{self.file}!{self.parsed.sheet_label(ITEMS_SHEET)}!{cells}"

    def rate(self, codes: tuple[str, ...]) -> tuple[Fraction | None, str]:
        """(rate in %, display text); the rate is None when its denominator is 0."""
        if len(codes) == 1:
            v = exact(self.item(codes[0]) or 0)
            return v, f"{display(float(v))}%"
        num, den = (exact(self.item(c) or 0) for c in codes)
        text = f"{display(float(num))}/{display(float(den))}"
        if den == 0:
            return None, text
        rate = num / den * 100
        return rate, f"{text} ({_pct(rate)})"


def _score(ind: Indicator, ctx: _Context) -> dict:
    """One indicator's row: value, target, exact score, status, reason, source."""
    P = exact(ind.points)
    row = {"status": "", "reason": ""}
    if ind.rule == "coverage":
        num, den = ctx.coverage[ind.code]
        row["source"] = f"{ctx.file}!{ctx.parsed.sheet_label(ind.sheet)}!{den}行"
        row["target"] = "100%"
        if den == 0:
            return {**row, "value": NOT_APPLICABLE, "exact": P, "status": NOT_APPLICABLE}
        rate = Fraction(num, den) * 100
        row["value"] = f"{num}/{den} ({_pct(rate)})"
        row["exact"] = P * min(1, rate / 100)
        if num < den:
            scope = "全部记录" if "all" in ind.among else f"{condition_text(ind.among)}的记录"
            row["reason"] = f"{scope}共{den}行，其中{den - num}行不满足：{condition_text(ind.condition)}"
        return row

    if ind.rule == "satisfaction":
        row["target"] = "满分100"
        if ctx.satisfaction is None:
            return {**row, "value": PENDING, "exact": None, "status": PENDING, "source": ""}
        s = exact(ctx.satisfaction)
        row.update(value=f"{display(float(s))}分", exact=P * s / 100, source=ctx.satisfaction_source)
        if s < 100:
            row["reason"] = f"群众满意度测评得分{display(float(s))}分"
        return row

    field = ctx.items_fields[ind.items[0]]
    row["source"] = ctx.source(ind.items + ind.other)
    label = f"{field.label}（{ind.items[0]}）" if not ind.is_ratio else "比率"
    if ind.rule == "count":
        v, T = exact(ctx.item(ind.items[0]) or 0), exact(ind.target)
        row.update(value=f"{display(float(v))}{field.unit}", target=f"≥{display(float(T))}{field.unit}",
                   exact=P * min(1, v / T))
        if v < T:
            row["reason"] = f"{label}为{row['value']}，未达到{display(float(T))}{field.unit}，按比例计分"
        return row
    if ind.rule == "flag":
        yes = ctx.item(ind.items[0]) is True
        row.update(value="是" if yes else "否", target="是", exact=P if yes else Fraction(0))
        if not yes:
            row["reason"] = f"{label}为“否”"
        return row
    if ind.rule == "on_or_before":
        given, deadline = ctx.item(ind.items[0]), resolve_date(ind.date, ctx.year)
        ok = given is not None and given <= deadline
        row.update(value=display(given) or (field.blank_means or "未填"), target=f"不晚于{deadline.isoformat()}",
                   exact=P if ok else Fraction(0))
        if given is None:
            row["reason"] = f"{label}未填（{field.blank_means or '未填'}）"
        elif not ok:
            row["reason"] = f"{label}{display(given)}晚于{deadline.isoformat()}"
        return row

    rate, row["value"] = ctx.rate(ind.items)
    if ind.rule == "greater_than":
        other, other_text = ctx.rate(ind.other)
        row["target"] = f">{other_text}"
        if rate is None or other is None:
            return {**row, "exact": P, "status": NOT_APPLICABLE}
        row["exact"] = P if rate > other else Fraction(0)
        if rate <= other:
            row["reason"] = f"{label}{_pct(rate)}未高于{other_text}"
        return row
    T = exact(ind.target)
    if ind.rule == "rate_at_least":
        row["target"] = f"≥{display(float(T))}%"
        if rate is None:
            return {**row, "exact": P, "status": NOT_APPLICABLE}
        row["exact"] = P * min(1, rate / T)
        if rate < T:
            row["reason"] = f"{label}{_pct(rate)}，低于{display(float(T))}%，按比例计分"
        return row
    # rate_below
    row["target"] = f"<{display(float(T))}%"
    if rate is None:
        return {**row, "exact": P, "status": NOT_APPLICABLE}
    row["exact"] = P if rate < T else Fraction(0) if rate >= 2 * T else P * (2 * T - rate) / T
    if rate > T:
        row["reason"] = (f"{label}{_pct(rate)}，未低于{display(float(T))}%"
                         f"（达到{display(float(2 * T))}%不得分，其间按比例计分）")
    return row


def _score_rows(record: SubmissionRecord, system: IndicatorSystem, coverage: dict[str, tuple[int, int]],
                satisfaction: float | None, satisfaction_source: str | None) -> list[dict]:
    """One row per indicator; rows scored at intake are taken as they are, except the
    satisfaction indicators, whose result comes later."""
    ctx = _Context(record, coverage, satisfaction, satisfaction_source)
    known = record.scored
    return [known[k] if known is not None and i.rule != "satisfaction" else
            {"unit_code": record.unit_code, "indicator": i.code, "name": i.name, "category": i.category,
             "points": i.points, **_score(i, ctx)} for k, i in enumerate(system.indicators)]


def _indicator_columns(rows: list[dict]) -> dict[str, list]:
    # column by column: from a year's hundred thousand row dicts pandas builds a frame slower
    columns = {c: [r.get(c) for r in rows] for c in INDICATOR_COLUMNS}
    columns["score"] = [float("nan") if r["exact"] is None else float(r["exact"]) for r in rows]
    return columns


def _indicator_frame(columns: dict[str, list]) -> pd.DataFrame:
    return pd.DataFrame(columns, columns=INDICATOR_COLUMNS).astype({"points": float, "score": float})


def score_submission(record: SubmissionRecord, system: IndicatorSystem, satisfaction: float | None,
                     satisfaction_source: str | None) -> pd.DataFrame:
    """One row per indicator (columns INDICATOR_COLUMNS); score NaN while 待测评."""
    coverage = record.coverage or coverage_counts([record.parsed], system)[0]
    return _indicator_frame(_indicator_columns(_score_rows(record, system, coverage, satisfaction,
                                                           satisfaction_source)))


def pending_rows(record: SubmissionRecord, system: IndicatorSystem) -> list[dict]:
    """The submission's indicator rows before its satisfaction result is known (kept as
    `SubmissionRecord.scored`, so a year of results does not score every submission again)."""
    coverage = record.coverage or coverage_counts([record.parsed], system)[0]
    return _score_rows(record, system, coverage, None, None)


def preview_total(rows: list[dict]) -> float:
    """The total of pending rows, rounded as shown."""
    return round_score(exact_sum(r["exact"] for r in rows if r["exact"] is not None))


def scoring_key(system: IndicatorSystem) -> str:
    """Changes with anything but the submission that its indicator rows and veto types depend on."""
    fields = load_schema().sheets[ITEMS_SHEET].fields
    return hashlib.sha256(repr((system.indicators, fields, list(VETO_TYPES))).encode()).hexdigest()


# --- a year ----------------------------------------------------------------

def counting_submissions(records: list[SubmissionRecord]) -> dict[str, SubmissionRecord]:
    """unit code -> the accepted submission that counts: latest 填报日期, then latest received."""
    best: dict[str, SubmissionRecord] = {}
    for r in records:
        if r.status != "accepted" or not r.unit_code:
            continue
        key = (r.filled_on or dt.date.min, r.received_at)
        cur = best.get(r.unit_code)
        if cur is None or key > (cur.filled_on or dt.date.min, cur.received_at):
            best[r.unit_code] = r
    return best


def veto_events(events: pd.DataFrame | None) -> pd.DataFrame:
    """The 负面清单 rows whose type is one of the veto types."""
    if events is None or events.empty:
        return pd.DataFrame(columns=[*_EVENTS.headers, "_row"])
    return events[events[EVENT_TYPE].isin(VETO_TYPES)]


def veto_types(parsed: ParsedWorkbook) -> list[str]:
    """The veto event types the workbook's 负面清单 lists, in order of first mention."""
    if not rows_of(parsed.tables, EVENTS_SHEET):  # most workbooks: no frame to build at intake
        return []
    return list(dict.fromkeys(veto_events(parsed.tables[EVENTS_SHEET])[EVENT_TYPE]))


def _problems_text(record: SubmissionRecord) -> str:
    shown = [f"{p.sheet or ''}!{p.cell or ''}：{p.message}" if p.sheet else p.message
             for p in record.parsed.problems[:MAX_PROBLEMS_SHOWN]]
    more = len(record.parsed.problems) - MAX_PROBLEMS_SHOWN
    return "\n".join(shown + ([f"……另有{more}条"] if more > 0 else []))


def compute_year_results(year: int, records: list[SubmissionRecord],
                         satisfaction: dict[str, tuple[float, str]], system: IndicatorSystem,
                         registry: Registry) -> YearResults:
    """Score each unit's counting submission; grade, recommend and rank (SPEC §4)."""
    return assemble_year(year, [score_units(records, satisfaction, system, registry)], system)


@dataclass
class UnitScores:
    """Some units of a year scored, not yet ranked: the rows of YearResults' tables, as columns or
    dicts (cheap to send between processes); each unit's row carries the key it is ranked by."""

    units: list[dict]
    categories: list[dict]
    indicators: dict[str, list]
    submissions: list[dict]


def score_units(records: list[SubmissionRecord], satisfaction: dict[str, tuple[float, str]],
                system: IndicatorSystem, registry: Registry) -> UnitScores:
    """Score the units of `records`, which hold every submission of each of them."""
    counting = counting_submissions(records)
    codes = sorted(counting)
    missing = [counting[c].parsed for c in codes if counting[c].coverage is None]
    counted = iter(coverage_counts(missing, system))
    coverage = [counting[c].coverage if counting[c].coverage is not None else next(counted) for c in codes]
    rec = system.recommendation
    units, categories, indicators = [], [], []
    for code, cov in zip(codes, coverage):
        r = counting[code]
        sat, sat_source = satisfaction.get(code, (None, None))
        rows = _score_rows(r, system, cov, sat, sat_source)
        indicators += rows
        by_category: dict[str, list[Fraction | None]] = {c.code: [] for c in system.categories}
        for x in rows:
            if x["category"] in by_category:
                by_category[x["category"]].append(x["exact"])
        cat_scores: dict[str, Fraction | None] = {}
        for c in system.categories:
            scores = by_category[c.code]
            cat_scores[c.code] = None if any(s is None for s in scores) else exact_sum(scores)
            s = cat_scores[c.code]
            categories.append({"unit_code": code, "category": c.code, "category_name": c.name,
                               "points": float(c.points), "score": float("nan") if s is None else float(s),
                               "share": float("nan") if s is None else float(s / exact(c.points))})
        total = exact_sum(x["exact"] for x in rows if x["exact"] is not None)
        vetoes = r.vetoes if r.vetoes is not None else veto_types(r.parsed)
        reasons = [f"一票否决：{t}" for t in vetoes] if rec.no_veto else []
        if total < exact(rec.min_total):
            reasons.append(f"总分未达{display(float(rec.min_total))}")
        for c in rec.categories:
            s = cat_scores[c]
            if s is not None and s * 100 < exact(rec.min_category_share) * exact(system.category(c).points):
                reasons.append(f"类别{c}低于{display(float(rec.min_category_share))}%")
        if rec.satisfaction_measured and sat is None:
            reasons.append("满意度待测评")
        veto = bool(vetoes) and rec.no_veto
        unit = registry.by_code(code)
        naming_year = r.parsed.cover.get(NAMING_YEAR)
        units.append({
            "unit_code": code, "unit_name": unit.name if unit else r.unit_name,
            "submission_id": r.submission_id, "source_file": r.original_name,
            "total": float(total), "provisional": sat is None, "status": PROVISIONAL if sat is None else FINAL,
            "grade": system.grade(total), "veto": veto, "eligible": not reasons,
            "recommendation": RECOMMENDED if not reasons else REFUSED if veto else NOT_YET,
            "rank": pd.NA, "satisfaction": float("nan") if sat is None else float(sat),
            "naming": r.parsed.cover.get(NAMING) or "", "reasons": "；".join(reasons),
            "naming_year": pd.NA if naming_year is None else int(naming_year),
            "_key": (-total, *(-(cat_scores[c] or 0) for c in rec.tie_break), code),
        })
    return UnitScores(units, categories, _indicator_columns(indicators), _submission_rows(records, counting, registry))


def assemble_year(year: int, parts: list[UnitScores], system: IndicatorSystem) -> YearResults:
    """The year's results from its units scored in parts (in unit code order): ranked across all."""
    units = [u for p in parts for u in p.units]
    for rank, u in enumerate(sorted((u for u in units if u["eligible"]), key=lambda u: u["_key"]), 1):
        u["rank"] = rank
    units_frame = pd.DataFrame([{k: v for k, v in u.items() if k != "_key"} for u in units],
                               columns=UNIT_COLUMNS)
    units_frame = units_frame.astype({"rank": "Int64", "naming_year": "Int64", "total": float,
                                      "satisfaction": float, "provisional": bool, "veto": bool,
                                      "eligible": bool})
    submissions = sorted((s for p in parts for s in p.submissions), key=lambda s: s["received_at"])
    return YearResults(
        year=year,
        units=units_frame,
        categories=pd.DataFrame([c for p in parts for c in p.categories], columns=CATEGORY_COLUMNS),
        indicators=_indicator_frame({c: [v for p in parts for v in p.indicators[c]] for c in INDICATOR_COLUMNS}),
        submissions=pd.DataFrame(submissions, columns=SUBMISSION_COLUMNS).astype({"errors": int, "warnings": int}),
        generated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        indicator_version=system.version,
    )


def _submission_rows(records: list[SubmissionRecord], counting: dict[str, SubmissionRecord],
                     registry: Registry) -> list[dict]:
    counted = {r.submission_id for r in counting.values()}
    rows = []
    for r in records:
        unit = registry.by_code(r.unit_code)
        rows.append({
            "submission_id": r.submission_id, "unit_code": r.unit_code,
            "unit_name": unit.name if unit else r.unit_name,
            "status": RETURNED if r.status != "accepted" else COUNTING if r.submission_id in counted else SUPERSEDED,
            "filled_on": r.filled_on, "received_at": r.received_at, "sha256": r.sha256,
            "original_name": r.original_name, "errors": r.errors, "warnings": r.warnings,
            "problems": _problems_text(r)})
    return rows


# --- persistence -----------------------------------------------------------

_FRAMES = ("units", "categories", "indicators", "submissions")
_META = "results.json"


def save_year_results(results: YearResults, directory: str | Path) -> None:
    """One Parquet file per frame plus results.json, written last so a half-written set is never read."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in _FRAMES:
        tmp = directory / f".{name}.parquet.tmp"
        getattr(results, name).to_parquet(tmp, index=False)
        tmp.replace(directory / f"{name}.parquet")
    meta = {"year": results.year, "generated_at": results.generated_at,
            "indicator_version": results.indicator_version}
    tmp = directory / f".{_META}.tmp"
    tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    tmp.replace(directory / _META)


def load_year_results(directory: str | Path) -> YearResults | None:
    """The results saved in `directory`, or None when there are none."""
    directory = Path(directory)
    if not (directory / _META).exists():
        return None
    meta = json.loads((directory / _META).read_text(encoding="utf-8"))
    frames = {name: pd.read_parquet(directory / f"{name}.parquet") for name in _FRAMES}
    return YearResults(year=int(meta["year"]), generated_at=meta["generated_at"],
                       indicator_version=meta["indicator_version"], **frames)
