"""回头看 (SPEC §6): re-inspection of units already named as demonstration units.

For each named unit: an outcome from this year's scores (and the naming year's
baseline when the pipeline has it), a reproducible case sample for on-site
review, and one workbook per unit for the assessors.
"""
from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Protection
from openpyxl.utils import column_index_from_string, get_column_letter

from assets.model import SubmissionRecord, YearResults, display, records
from assets.scoring import VETO_TYPES, round_score, veto_events
from assets.workers import pool_size, process_pool, state
from assets.archive import write_atomic
from assets.xlsx import (BORDER, DATE_FORMAT, SCORE_FORMAT, TITLE_FONT, WRAP, QuickBook, SheetXml, column_styles,
                         save_workbook, table_cells, write_table)
from expectations.schema import load_schema

_SCHEMA = load_schema()

# Sheets and columns the SPEC §6 definitions refer to. Looking them up in the
# schema here makes a renamed column fail at import, not in a package.
CASES_SHEET = "执法案件台账"
EVENTS_SHEET = "负面清单"
EVIDENCE_SHEET = "佐证材料"
_cases = _SCHEMA.sheets[CASES_SHEET]
DEPARTMENT = _cases.field("执法部门").name
MAJOR = _cases.field("是否重大执法决定").name
REVIEWED = _cases.field("是否法制审核").name
CLOSED_ON = _cases.field("结案日期").name
PUBLISHED = _cases.field("是否公示").name
APPEAL = _cases.field("复议诉讼结果").name
CORRECTED = "纠错"
assert CORRECTED in _cases.field(APPEAL).values
CASE_HEADERS = list(_cases.headers)
EVENT_HEADERS = list(_SCHEMA.sheets[EVENTS_SHEET].headers)
_events = _SCHEMA.sheets[EVENTS_SHEET]
EVENT_TYPE = _events.field("事件类型").name
EVENT_DATE = _events.field("发生日期").name
EVENT_TEXT = _events.field("事件描述").name
EVIDENCE_CODE = _SCHEMA.sheets[EVIDENCE_SHEET].field("指标编号").name

NAMED = ("省级示范", "全国示范")
REVOKE, RECTIFY, WATCH, KEEP = "建议撤销命名", "限期整改", "重点关注", "保持命名"
PROVISIONAL_MARK = "暂定"
RANDOM_REASON = "随机抽取（分层）"
FLAG_REASONS = ("重大执法决定未经法制审核", "已结案未公示", "复议诉讼结果为纠错")
SHEETS = ("概况", "指标对比", "整改清单", "案卷抽查", "佐证材料核查", "负面事件")
INDEX_FILE = "回头看汇总.xlsx"
PACKAGE_SUFFIX = "回头看检查包.xlsx"
INDEX_COLUMNS = ["单位代码", "单位名称", "示范命名情况", "命名年度", "基线总分", "本年总分", "变化",
                 "结论", "暂定", "原因", "检查包文件"]
SAMPLE_RULE = ("抽样规则：抽取n件，n = min(50, max(10, ⌈案件总数×5%⌉))，案件不超过10件时全部抽取。"
               "问题案件（重大执法决定未经法制审核、已结案未公示、复议诉讼结果为纠错）优先："
               "少于n件时全部抽取，其余从无问题案件中随机抽取；达到n件时只从问题案件中随机抽取n件。"
               "随机抽取按执法部门案件数比例分层（最大余额法分配），随机种子由单位代码、年度和报送文件"
               "SHA-256确定，同一输入结果相同。")


@dataclass
class LookbackOutcome:
    outcome: str
    reasons: list[str] = field(default_factory=list)
    provisional: bool = False
    baseline_total: float | None = None
    current_total: float = 0.0
    change: float | None = None

    @property
    def label(self) -> str:
        return f"{self.outcome}（{PROVISIONAL_MARK}）" if self.provisional else self.outcome


def _t(x) -> str:
    return f"{round_score(x):.2f}"


def _unit(results: YearResults, unit_code: str) -> pd.Series | None:
    rows = results.units[results.units["unit_code"] == unit_code]
    return None if rows.empty else rows.iloc[0]


def named_before(naming, naming_year, year: int) -> bool:
    """Whether a submission of `year` that says it was named `naming` in `naming_year` is looked back at."""
    try:
        return naming in NAMED and int(naming_year) < year
    except (TypeError, ValueError):  # no year, or not a number
        return False


def lookback_targets(current: YearResults) -> list[str]:
    """Units whose counting submission says they were named before this year."""
    u = current.units
    hit = [named_before(n, y, current.year) for n, y in zip(u["naming"], u["naming_year"])]
    return sorted(u.loc[hit, "unit_code"].astype(str))


def assess(unit_code: str, current: YearResults, baseline: YearResults | None,
           core_categories: list[str], *, events: pd.DataFrame | None = None,
           min_total: float = 800, min_share: float = 0.6, max_fall: float = 50) -> LookbackOutcome:
    """SPEC §6 outcome, first match wins; `reasons` lists every reason of that rule.

    `events` is the unit's 负面清单 table, used to name the veto events.
    """
    unit = _unit(current, unit_code)
    total = float(unit["total"])
    base = _unit(baseline, unit_code) if baseline is not None else None
    base_total = None if base is None else float(base["total"])
    change = None if base_total is None else total - base_total
    out = LookbackOutcome("", [], bool(unit["provisional"]), base_total, total, change)

    if bool(unit["veto"]):
        vetoes = veto_events(events)
        out.outcome = REVOKE
        out.reasons = [f"一票否决事件：{e[EVENT_TYPE]}（{display(e[EVENT_DATE]) or '日期不详'}）：{e[EVENT_TEXT]}"
                       for _, e in vetoes.iterrows()] or ["存在一票否决事件（见负面事件表）"]
        return out

    cats = current.categories
    cats = cats[(cats["unit_code"] == unit_code) & cats["category"].isin(core_categories)]
    low = cats[cats["score"] < min_share * cats["points"]]
    rectify = [f"总分{_t(total)}分，低于{display(float(min_total))}分"] if total < min_total else []
    rectify += [f"{c.category}类“{c.category_name}”得分{_t(c.score)}分，低于该类分值{display(float(c.points))}分的"
                f"{display(min_share * 100)}%（{_t(min_share * c.points)}分）"
                for c in records(low, "category", "category_name", "score", "points")]
    if rectify:
        out.outcome, out.reasons = RECTIFY, rectify
        return out

    # Scores are exact floats; compare the fall at a fixed precision so that a
    # fall of exactly 50 is not lost to binary rounding.
    if change is not None and round(-change, 6) >= max_fall:
        out.outcome = WATCH
        out.reasons = [f"总分{_t(total)}分，较命名年度{baseline.year}年基线{_t(base_total)}分下降"
                       f"{_t(-change)}分，达到{display(float(max_fall))}分"]
        return out

    out.outcome = KEEP
    out.reasons = [
        "无一票否决事件",
        f"总分{_t(total)}分，不低于{display(float(min_total))}分",
        f"{'、'.join(core_categories)}各类得分均不低于其分值的{display(min_share * 100)}%",
        (f"无基线：命名年度{int(unit['naming_year'])}年的评分不在本系统中，无法判断总分降幅" if change is None
         else f"较命名年度{baseline.year}年基线{_t(base_total)}分变化{_t(change)}分，降幅未达"
              f"{display(float(max_fall))}分"),
    ]
    return out


def sample_size(n_cases: int) -> int:
    if n_cases <= 10:
        return n_cases
    return min(50, max(10, -(-n_cases // 20)))  # ceil(5%) in integers


def _apportion(counts: np.ndarray, k: int) -> np.ndarray:
    """Largest remainder; ties go to the larger stratum, then the first by name."""
    total = int(counts.sum())
    quota, remainder = np.divmod(counts.astype(np.int64) * k, total)
    left = k - int(quota.sum())
    order = np.lexsort((np.arange(len(counts)), -counts, -remainder))
    quota[order[:left]] += 1
    return quota


def _stratified(departments: pd.Series, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of k rows drawn without replacement, stratified by department."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    codes, _ = pd.factorize(departments.fillna("").astype(str), sort=True)
    counts = np.bincount(codes)
    quota = _apportion(counts, k)
    # A random key per row; within each department the rows with the smallest
    # keys are taken: one vectorised draw for any number of departments.
    order = np.lexsort((rng.random(len(codes)), codes))
    grouped = codes[order]
    rank = np.arange(len(order)) - np.concatenate(([0], np.cumsum(counts)[:-1]))[grouped]
    return np.sort(order[rank < quota[grouped]])


def _flag(series: pd.Series, value) -> np.ndarray:
    return series.eq(value).fillna(False).to_numpy(dtype=bool)


def _span(columns: dict[str, str] | None, headers: list[str]) -> tuple[str, str]:
    """First and last column letter of a record row as laid out in the file."""
    letters = sorted((columns or {}).values(), key=column_index_from_string)
    return (letters[0], letters[-1]) if letters else ("A", get_column_letter(len(headers)))


def sample_cases(cases: pd.DataFrame, seed_key: str, *, file_name: str = "",
                 sheet_name: str = CASES_SHEET, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """SPEC §6.4 case sample: flagged cases first, the rest a stratified random draw.

    `columns` maps schema column -> letter in the file (ParsedWorkbook.columns)
    so that 来源 spans the case row as the clerk laid it out.
    """
    if not cases["_row"].is_monotonic_increasing:  # as read, they are in order
        cases = cases.sort_values("_row", kind="stable")
    cases = cases.reset_index(drop=True)
    flags = np.column_stack([
        _flag(cases[MAJOR], True) & _flag(cases[REVIEWED], False),
        cases[CLOSED_ON].notna().to_numpy() & _flag(cases[PUBLISHED], False),
        _flag(cases[APPEAL], CORRECTED),
    ]) if len(cases) else np.zeros((0, len(FLAG_REASONS)), dtype=bool)
    flagged = flags.any(axis=1)
    n = sample_size(len(cases))
    seed = int.from_bytes(hashlib.sha256(seed_key.encode("utf-8")).digest(), "big")
    rng = np.random.Generator(np.random.PCG64(seed))
    flagged_pos = np.flatnonzero(flagged)
    if len(flagged_pos) >= n:
        taken = flagged_pos[_stratified(cases[DEPARTMENT].iloc[flagged_pos], n, rng)]
        drawn = np.empty(0, dtype=np.int64)
    else:
        taken = flagged_pos
        free = np.flatnonzero(~flagged)
        drawn = free[_stratified(cases[DEPARTMENT].iloc[free], n - len(taken), rng)]
    picked = np.concatenate((taken, drawn))
    sample = cases.iloc[picked].reset_index(drop=True)
    reasons = ["；".join(r for r, hit in zip(FLAG_REASONS, row) if hit) for row in flags[taken]]
    sample["抽取原因"] = reasons + [RANDOM_REASON] * len(drawn)
    first, last = _span(columns, CASE_HEADERS)
    rows = sample["_row"].astype(int).astype(str)
    sample["来源"] = f"{file_name}!{sheet_name}!{first}" + rows + f":{last}" + rows
    return sample


# --- workbooks ---------------------------------------------------------------

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def package_name(unit_name: str, unit_code: str) -> str:
    """File name of a unit's package, safe on Windows and POSIX (a '/' in a name is kept as '_')."""
    name = _UNSAFE.sub("_", str(unit_name or "")).strip(" .") or str(unit_code)
    return f"{name}{PACKAGE_SUFFIX}"


SCORED = ["indicator", "name", "points", "score", "status", "reason"]  # this year's, from the results
COMPARED = (*SCORED, "base", "change", "fell")  # and the baseline's score beside them


def _comparison(unit_code: str, current: YearResults, baseline: YearResults | None) -> pd.DataFrame:
    """Each indicator of the unit, with the columns COMPARED."""
    cur = current.indicators[current.indicators["unit_code"] == unit_code]
    table = cur[SCORED].reset_index(drop=True)
    if baseline is None:
        table["base"] = np.nan
    else:
        base = baseline.indicators[baseline.indicators["unit_code"] == unit_code]
        table = table.merge(base[["indicator", "score"]].rename(columns={"score": "base"}),
                            on="indicator", how="left")
    table["change"] = table["score"] - table["base"]
    table["fell"] = table["change"].round(6) < 0
    return table


SCORE_ROWS = ("基线总分", "本年总分", "变化")


@functools.cache
def _book() -> tuple[QuickBook, dict[str, dict[str, int | None]]]:
    """The packages' writer and the styles of their cells outside plain tables, made once per process."""
    book = QuickBook(len(SHEETS))
    fill_in = {"border": BORDER, "alignment": WRAP, "protection": Protection(locked=False)}
    return book, {"title": book.style(font=TITLE_FONT), "note": book.style(alignment=WRAP),
                  "fill_in": book.style(**fill_in), "fill_in_date": book.style(**fill_in, number_format=DATE_FORMAT)}


def _overview(book: QuickBook, named: dict, unit_row: pd.Series, outcome: LookbackOutcome, current: YearResults,
              baseline: YearResults | None, record: SubmissionRecord) -> SheetXml:
    naming_year = unit_row["naming_year"]
    rows = [
        ("单位代码", unit_row["unit_code"]),
        ("单位名称", unit_row["unit_name"]),
        ("示范命名情况", unit_row["naming"]),
        ("命名年度", None if pd.isna(naming_year) else int(naming_year)),
        ("检查年度", current.year),
        ("基线年度", baseline.year if outcome.baseline_total is not None else "无基线"),
        ("基线总分", round_score(outcome.baseline_total) if outcome.baseline_total is not None else "无基线"),
        ("本年总分", round_score(outcome.current_total)),
        ("总分状态", PROVISIONAL_MARK + "（群众满意度尚未测评）" if outcome.provisional else "正式"),
        ("变化", round_score(outcome.change) if outcome.change is not None else "无基线"),
        ("结论", outcome.label),
        *((f"原因{i}", r) for i, r in enumerate(outcome.reasons, 1)),
        ("评分依据文件", record.original_name),
        ("文件SHA-256", record.sha256),
    ]
    sheet = table_cells(book, SHEETS[0], ["项目", "内容"], rows, start_row=3, widths={"项目": 16, "内容": 90})
    # the values wrap, and the scores show two decimals
    text = column_styles(book, 2, {}, wrapped={2})[1]
    score = column_styles(book, 2, {2: SCORE_FORMAT}, wrapped={2})[1]
    keys = {r: key for r, (key, _) in enumerate(rows, 4)}
    sheet.cells = [(r, c, v, (score if keys[r] in SCORE_ROWS and isinstance(v, float) else text)
                    if c == 2 and r in keys else styles) for r, c, v, styles in sheet.cells]
    sheet.cells.append((1, 1, f"{unit_row['unit_name']}{current.year}年法治政府建设示范“回头看”检查包", named["title"]))
    sheet.landscape = False
    return sheet


def _indicator_sheet(book: QuickBook, table: pd.DataFrame) -> SheetXml:
    rows = ([r.indicator, r.name, r.points, round_score(r.base), round_score(r.score) if r.status != "待测评" else "待测评",
             round_score(r.change), "下降" if r.fell else ""] for r in records(table, *COMPARED))
    headers = ["指标编号", "指标名称", "分值", "基线得分", "本年得分", "变化", "下降标记"]
    return table_cells(book, SHEETS[1], headers, rows, widths={"指标名称": 36},
                       number_formats={k: SCORE_FORMAT for k in ("基线得分", "本年得分", "变化")})


def _problem(r, base_year: int | None) -> str:
    parts = []
    if r.score < r.points:
        parts.append(f"本年得分{_t(r.score)}分，满分{display(float(r.points))}分，扣{_t(r.points - r.score)}分"
                     + (f"：{r.reason}" if isinstance(r.reason, str) and r.reason else ""))
    if r.fell:
        parts.append(f"较{base_year}年基线{_t(r.base)}分下降{_t(-r.change)}分")
    return "；".join(parts) + "。请说明原因并提出整改措施。"


FILL_IN = ("整改措施", "责任单位", "整改时限")


def _rectification_sheet(book: QuickBook, named: dict, table: pd.DataFrame, base_year: int | None) -> SheetXml:
    todo = table[(table["score"] < table["points"]) | table["fell"]]
    headers = ["序号", "指标编号", "指标名称", "分值", "本年得分", "问题", *FILL_IN]
    rows = ([i, r.indicator, r.name, r.points, round_score(r.score), _problem(r, base_year), None, None, None]
            for i, r in enumerate(records(todo, *COMPARED), 1))
    widths = {"指标名称": 24, "问题": 50, "整改措施": 40, "责任单位": 18, "整改时限": 14}
    sheet = table_cells(book, SHEETS[2], headers, rows, widths=widths, number_formats={"本年得分": SCORE_FORMAT})
    # Every row wraps; the three columns to fill in stay editable in the protected sheet, the last takes a date.
    given = len(headers) - len(FILL_IN)
    data = [*column_styles(book, given, {5: SCORE_FORMAT}, wrapped=set(range(1, given + 1))),
            *[named["fill_in"]] * (len(FILL_IN) - 1), named["fill_in_date"]]
    sheet.cells = [(r, c, v, data[c - 1] if r > 1 else styles) for r, c, v, styles in sheet.cells]
    # Protected without a password: problem text stays intact, filters and resizing still work.
    sheet.protected = True
    return sheet


def _sample_sheet(book: QuickBook, named: dict, sample: pd.DataFrame, n_cases: int) -> SheetXml:
    headers = ["序号", *CASE_HEADERS, "抽取原因", "来源"]
    # The values exactly as iterrows gave them (it reads `.values` too; every row
    # holds the int `_row`, so no row is re-inferred), without a Series per row.
    at = sample.columns.get_indexer([*CASE_HEADERS, "抽取原因", "来源"])
    rows = ([i, *(display(v) if isinstance(v, bool) else v for v in r[at[:-2]]), r[at[-2]], r[at[-1]]]
            for i, r in enumerate(sample.values, 1))
    sheet = table_cells(book, SHEETS[3], headers, rows, start_row=4, widths={"执法部门": 18, "抽取原因": 30, "来源": 40},
                        number_formats={"罚没金额（元）": "#,##0.00"})
    n_random = int((sample["抽取原因"] == RANDOM_REASON).sum()) if len(sample) else 0
    sheet.cells += [(1, 1, SAMPLE_RULE, named["note"]),
                    (2, 1, f"本单位报送案件{n_cases}件，应抽取{sample_size(n_cases)}件，实抽{len(sample)}件："
                           f"问题案件{len(sample) - n_random}件，随机抽取{n_random}件。", {})]
    sheet.merged = [f"A1:{get_column_letter(len(headers))}1"]
    sheet.heights[1] = 60
    return sheet


def _evidence_sheet(book: QuickBook, unit_code: str, current: YearResults, record: SubmissionRecord) -> SheetXml:
    evidence = record.parsed.tables.get(EVIDENCE_SHEET)
    have = set() if evidence is None else set(evidence[EVIDENCE_CODE].dropna().astype(str).str.strip())
    cur = current.indicators[current.indicators["unit_code"] == unit_code]
    missing = cur[~cur["indicator"].astype(str).isin(have)]
    rows = ([indicator, name, points, "未提交佐证材料，请现场核实并补充"]
            for indicator, name, points in records(missing, "indicator", "name", "points"))
    return table_cells(book, SHEETS[4], ["指标编号", "指标名称", "分值", "核查意见"], rows,
                       widths={"指标名称": 36, "核查意见": 40})


def _events_sheet(book: QuickBook, record: SubmissionRecord) -> SheetXml:
    events = record.parsed.tables.get(EVENTS_SHEET)
    if events is None:
        events = pd.DataFrame(columns=[*EVENT_HEADERS, "_row"])
    events = events.assign(_veto=events[EVENT_TYPE].isin(VETO_TYPES)).sort_values(
        ["_veto", "_row"], ascending=[False, True], kind="stable")
    sheet = record.parsed.sheet_label(EVENTS_SHEET)
    first, last = _span(record.parsed.columns.get(EVENTS_SHEET), EVENT_HEADERS)
    at = events.columns.get_indexer([*EVENT_HEADERS, "_veto", "_row"])  # as in _sample_sheet
    rows = ([*r[at[:-2]], "是" if r[at[-2]] else "否（非一票否决类型）",
             f"{record.original_name}!{sheet}!{first}{int(r[at[-1]])}:{last}{int(r[at[-1]])}"]
            for r in events.values)
    return table_cells(book, SHEETS[5], [*EVENT_HEADERS, "一票否决", "来源"], rows,
                       widths={"事件描述": 40, "认定文件": 24, "来源": 40})


def write_lookback_package(out_dir: str | Path, unit_row: pd.Series, outcome: LookbackOutcome,
                           current: YearResults, baseline: YearResults | None,
                           record: SubmissionRecord, sample: pd.DataFrame) -> Path:
    """One unit's 回头看检查包 in `out_dir` (exports/<年度>/回头看/)."""
    code = str(unit_row["unit_code"])
    table = _comparison(code, current, baseline)
    base_year = baseline.year if outcome.baseline_total is not None else None
    cases = record.parsed.tables.get(CASES_SHEET)
    book, named = _book()
    sheets = [_overview(book, named, unit_row, outcome, current, baseline, record),
              _indicator_sheet(book, table),
              _rectification_sheet(book, named, table, base_year),
              _sample_sheet(book, named, sample, 0 if cases is None else len(cases)),
              _evidence_sheet(book, code, current, record),
              _events_sheet(book, record)]
    path = Path(out_dir) / package_name(unit_row["unit_name"], code)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, book.to_bytes(sheets))
    return path


def write_lookback_index(path: str | Path, rows: pd.DataFrame) -> Path:
    """回头看汇总.xlsx: one row per package of the year."""
    wb = Workbook()
    ws = wb.active
    ws.title = "回头看汇总"
    write_table(ws, INDEX_COLUMNS, rows[INDEX_COLUMNS].itertuples(index=False),
                widths={"单位名称": 20, "原因": 60, "检查包文件": 36},
                number_formats={k: SCORE_FORMAT for k in SCORE_ROWS})
    reasons_col = INDEX_COLUMNS.index("原因") + 1
    for row in ws.iter_rows(min_row=2, min_col=reasons_col, max_col=reasons_col):
        row[0].alignment = WRAP
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_workbook(wb, path)


def _named_only(results: YearResults, codes: list[str]) -> YearResults:
    """The rows of `codes` alone: all a package reads, and small enough to send to every worker."""
    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["unit_code"].isin(codes)]
    return replace(results, units=keep(results.units), categories=keep(results.categories),
                   indicators=keep(results.indicators), submissions=results.submissions.iloc[:0])


def _by_unit(results: YearResults, codes: list[str]) -> dict[str, YearResults]:
    """Each unit's own rows, split once rather than filtered out of the year's tables for every package."""
    frames = (results.units, results.categories, results.indicators)
    groups = [dict(tuple(f.groupby("unit_code", sort=False))) for f in frames]
    return {code: replace(results, units=groups[0].get(code, frames[0].iloc[:0]),
                          categories=groups[1].get(code, frames[1].iloc[:0]),
                          indicators=groups[2].get(code, frames[2].iloc[:0]))
            for code in codes}


class _Year:
    """What every package of the year reads, split by unit; a worker builds it once."""

    def __init__(self, current: YearResults, baselines: dict[int, YearResults], codes: list[str],
                 record_of: Callable[[str], SubmissionRecord], out_dir: Path, core_categories: list[str],
                 thresholds: dict):
        self.year = current.year
        self.current = _by_unit(current, codes)
        self.baselines = {y: _by_unit(b, codes) for y, b in baselines.items()}
        self.record_of, self.out_dir = record_of, out_dir
        self.core_categories, self.thresholds = core_categories, thresholds

    def package(self, code: str, submission_id: str) -> list:
        """Writes the unit's package; returns its row of the index."""
        current = self.current[code]
        unit = _unit(current, code)
        record = self.record_of(submission_id)
        parsed = record.parsed
        baseline = self.baselines.get(int(unit["naming_year"]), {}).get(code)
        outcome = assess(code, current, baseline, self.core_categories,
                         events=parsed.tables.get(EVENTS_SHEET), **self.thresholds)
        cases = parsed.tables.get(CASES_SHEET)
        if cases is None:
            cases = pd.DataFrame(columns=[*CASE_HEADERS, "_row"])
        sample = sample_cases(cases, f"{code}|{self.year}|{record.sha256}", file_name=record.original_name,
                              sheet_name=parsed.sheet_label(CASES_SHEET), columns=parsed.columns.get(CASES_SHEET))
        path = write_lookback_package(self.out_dir, unit, outcome, current, baseline, record, sample)
        return [code, unit["unit_name"], unit["naming"], int(unit["naming_year"]),
                round_score(outcome.baseline_total) if outcome.baseline_total is not None else "无基线",
                round_score(outcome.current_total),
                round_score(outcome.change) if outcome.change is not None else "无基线",
                outcome.outcome, "是" if outcome.provisional else "否", "；".join(outcome.reasons), path.name]


MIN_POOL_PACKAGES = 16  # below this, starting workers costs more than it saves


def _worker_package(job: tuple[str, str]) -> list:
    return state().package(*job)


def _write_packages(year_args: tuple, jobs: list[tuple[str, str]]) -> list[list]:
    """Index rows in job order; on every core when there are enough packages."""
    n = pool_size(len(jobs), MIN_POOL_PACKAGES)
    if n == 1:
        year = _Year(*year_args)
        return [year.package(*job) for job in jobs]
    pool = process_pool(n, [__name__], _Year, year_args)
    try:
        return list(pool.map(_worker_package, jobs, chunksize=max(1, min(4, len(jobs) // (8 * n)))))
    finally:
        # after a failure, packages not yet started are not written (as in one process)
        pool.shutdown(cancel_futures=True)


def build_lookback_packages(current: YearResults, baselines: dict[int, YearResults],
                            record_of: Callable[[str], SubmissionRecord], out_dir: str | Path,
                            core_categories: list[str], **thresholds) -> pd.DataFrame:
    """Every package of the year plus the index; packages of units no longer named are removed.

    `record_of(submission_id)` gives a submission with its whole parsed workbook (the case
    sample needs its case table); with worker processes each worker loads its own units'
    records, which would otherwise be loaded here and sent over. `thresholds` are passed to
    `assess` (min_total, min_share, max_fall).
    """
    out_dir = Path(out_dir)
    codes = lookback_targets(current)
    named = _named_only(current, codes)
    first = named.units.drop_duplicates("unit_code")
    submission = dict(zip(first["unit_code"], first["submission_id"]))
    jobs = [(code, submission[code]) for code in codes]
    # only the named units' rows cross to the workers, once per worker
    year_args = (named, {y: _named_only(b, codes) for y, b in baselines.items()}, codes, record_of, out_dir,
                 core_categories, thresholds)
    rows = _write_packages(year_args, jobs)
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    keep = set(index["检查包文件"])
    for old in out_dir.glob(f"*{PACKAGE_SUFFIX}"):
        if old.name not in keep:
            old.unlink()
    if rows:
        write_lookback_index(out_dir / INDEX_FILE, index)
    else:
        (out_dir / INDEX_FILE).unlink(missing_ok=True)
    return index
