"""The assessors' score workbook for one year (SPEC §8)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.formatting.rule import CellIsRule, FormulaRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from assets.indicators import IndicatorSystem
from assets.model import YearResults, records
from assets.scoring import PENDING, round_score
from assets.xlsx import (BORDER, HEADER_FILL, HEADER_FONT, SCORE_FORMAT, TITLE_FONT, BulkRows, save_workbook,
                         setup_print, write_cells, write_table)

OVERVIEW_HEADERS = ["排名", "单位代码", "单位名称", "总分", "等次", "可推荐示范", "状态"]
DETAIL_HEADERS = ["单位代码", "单位名称", "指标编号", "指标名称", "数值", "目标", "分值", "得分", "说明", "来源"]
GRADE_FILLS = {"优秀": "C6EFCE", "良好": "DDEBF7", "合格": "FFF2CC", "不合格": "FFC7CE"}
DEDUCTION_FILL = PatternFill("solid", fgColor="FFC7CE", bgColor="FFC7CE")
MUTED_FILL = PatternFill("solid", fgColor="EDEDED", bgColor="EDEDED")
GOOD_FILL = PatternFill("solid", fgColor="C6EFCE", bgColor="C6EFCE")
PERCENT_FORMAT = "0.00%"


def workbook_name(year: int) -> str:
    return f"海东市{year}年法治政府建设示范创建评分.xlsx"


def _score(x: Any) -> float | str | None:
    """A score as written: a number rounded half up, or 待测评 while unmeasured."""
    score = round_score(x)
    return PENDING if score is None else score


def _fill(color: str) -> PatternFill:
    return PatternFill("solid", fgColor=color, bgColor=color)


def _title(ws, text: str) -> None:
    ws.oddHeader.center.text = text
    ws.oddHeader.center.size = 12


def _category_header(c) -> str:
    return f"{c.code} {c.name}（{c.points}）"


def _ordered_units(results: YearResults) -> pd.DataFrame:
    u = results.units.copy()
    u["_rank"] = u["rank"].astype("Float64").fillna(float("inf"))
    return u.sort_values(["_rank", "total", "unit_code"], ascending=[True, False, True]).drop(columns="_rank")


def _overview(wb: Workbook, results: YearResults, system: IndicatorSystem, units: pd.DataFrame,
              bulk: list[BulkRows]) -> None:
    ws = wb.active
    ws.title = "总览"
    _title(ws, f"海东市{results.year}年法治政府建设示范创建评分总览")
    # each unit's category scores in the order of the units and of the system, looked up at once
    cats = (results.categories.pivot(index="unit_code", columns="category", values="score")
            .loc[units["unit_code"], [c.code for c in system.categories]].to_numpy(dtype=object))
    cat_headers = [_category_header(c) for c in system.categories]
    headers = OVERVIEW_HEADERS + cat_headers + ["满意度得分", "一票否决", "未推荐原因", "计分文件"]
    rows = [[None if pd.isna(u.rank) else int(u.rank), u.unit_code, u.unit_name, _score(u.total), u.grade,
             u.recommendation, u.status, *map(_score, scores),
             _score(u.satisfaction), "是" if u.veto else "否", u.reasons, u.source_file]
            for u, scores in zip(records(units), cats)]
    formats = {h: SCORE_FORMAT for h in ["总分", *cat_headers, "满意度得分"]}
    last = write_table(ws, headers, rows, number_formats=formats,
                       widths={"单位名称": 22, "可推荐示范": 26, "未推荐原因": 36, "计分文件": 30}, bulk=bulk)
    if not rows:
        return
    grade_range = f"E2:E{last}"
    for grade, color in GRADE_FILLS.items():
        ws.conditional_formatting.add(grade_range, CellIsRule(operator="equal", formula=[f'"{grade}"'],
                                                              fill=_fill(color)))
    ws.conditional_formatting.add(f"F2:F{last}", CellIsRule(operator="equal", formula=['"可推荐示范"'],
                                                            fill=GOOD_FILL, font=Font(bold=True)))
    ws.conditional_formatting.add(f"G2:G{last}", CellIsRule(operator="equal", formula=['"暂定"'],
                                                            fill=MUTED_FILL))
    chart = BarChart()
    chart.type = "bar"
    chart.title = f"{results.year}年各单位总分"
    chart.y_axis.title = "总分"
    chart.legend = None
    chart.add_data(Reference(ws, min_col=4, min_row=1, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=3, min_row=2, max_row=last))
    chart.x_axis.scaling.orientation = "maxMin"  # first-ranked unit on top
    chart.height = max(7.5, 0.6 * len(rows) + 3)
    chart.width = 18
    ws.add_chart(chart, f"{get_column_letter(len(headers) + 2)}2")


def _categories(wb: Workbook, results: YearResults, system: IndicatorSystem, units: pd.DataFrame,
                bulk: list[BulkRows]) -> None:
    ws = wb.create_sheet("一级指标")
    _title(ws, f"海东市{results.year}年一级指标得分")
    min_share = system.recommendation.min_category_share / 100
    core = set(system.core_categories)
    listed = pd.DataFrame([(c.code, c.name, c.points, i) for i, c in enumerate(system.categories)],
                          columns=["category", "category_name", "points", "_category_order"])
    table = (results.categories[["unit_code", "category", "score", "share"]].merge(units[["unit_code", "unit_name"]].assign(_unit_order=range(len(units))),
                                      on="unit_code", validate="many_to_one")
             .merge(listed, on="category", validate="many_to_one")
             .sort_values(["_unit_order", "_category_order"]))
    rows = [[r.unit_code, r.unit_name, r.category, r.category_name, r.points, _score(r.score),
             None if pd.isna(r.share) else r.share,
             "—" if r.category not in core or pd.isna(r.score) else "是" if r.score >= min_share * r.points else "否"]
            for r in records(table)]
    threshold = f"不低于{system.recommendation.min_category_share}%"
    headers = ["单位代码", "单位名称", "类别", "类别名称", "分值", "得分", "得分率", threshold]
    last = write_table(ws, headers, rows, number_formats={"分值": "0", "得分": SCORE_FORMAT, "得分率": PERCENT_FORMAT},
                       widths={"单位名称": 22, "类别名称": 22}, landscape=False, bulk=bulk)
    if rows:
        ws.conditional_formatting.add(f"A2:H{last}", FormulaRule(formula=['$H2="否"'], fill=DEDUCTION_FILL))


def _details(wb: Workbook, results: YearResults, units: pd.DataFrame, bulk: list[BulkRows]) -> None:
    ws = wb.create_sheet("三级明细")
    _title(ws, f"海东市{results.year}年三级指标得分明细")
    names = dict(zip(units["unit_code"], units["unit_name"]))
    order = {code: i for i, code in enumerate(units["unit_code"])}
    ind = results.indicators.assign(_order=results.indicators["unit_code"].map(order))
    ind = ind.sort_values("_order", kind="stable")
    rows = [[r.unit_code, names[r.unit_code], r.indicator, r.name, r.value, r.target, r.points,
             _score(r.score), r.reason or r.status, r.source, r.category, r.status]
            for r in records(ind)]
    headers = DETAIL_HEADERS + ["类别", "状态"]
    last = write_table(ws, headers, rows, number_formats={"分值": "0.##", "得分": SCORE_FORMAT},
                       widths={"单位名称": 20, "指标名称": 26, "数值": 16, "说明": 40, "来源": 36}, bulk=bulk)
    if rows:
        ws.conditional_formatting.add(f"A2:L{last}", FormulaRule(formula=["AND(ISNUMBER($H2),$H2<$G2)"],
                                                                 fill=DEDUCTION_FILL))


def _quality(wb: Workbook, results: YearResults, bulk: list[BulkRows]) -> None:
    ws = wb.create_sheet("数据质量")
    _title(ws, f"海东市{results.year}年报送文件校验情况")
    headers = ["文件名", "单位代码", "单位名称", "填报日期", "接收时间", "状态", "错误数", "提示数", "问题摘要", "SHA-256"]
    rows = [[s.original_name, s.unit_code, s.unit_name, s.filled_on, s.received_at, s.status, s.errors,
             s.warnings, s.problems, s.sha256] for s in records(results.submissions)]
    last = write_table(ws, headers, rows, widths={"文件名": 30, "单位名称": 20, "接收时间": 22,
                                                  "问题摘要": 50, "SHA-256": 24}, wrap=["问题摘要"], bulk=bulk)
    if rows:
        ws.conditional_formatting.add(f"A2:J{last}", FormulaRule(formula=['$F2="退回"'], fill=DEDUCTION_FILL))
        ws.conditional_formatting.add(f"A2:J{last}", FormulaRule(formula=['$F2="已被替代"'], fill=MUTED_FILL))


def _block(ws, row: int, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """A titled table on the 说明 sheet; returns the next free row."""
    ws.cell(row=row, column=1, value=title).font = Font(bold=True, size=12)
    for j, h in enumerate(headers, 1):
        c = ws.cell(row=row + 1, column=j, value=h)
        c.font, c.fill, c.border = HEADER_FONT, HEADER_FILL, BORDER
    write_cells(ws, row + 2, rows)
    return row + len(rows) + 3


def _method(wb: Workbook, results: YearResults, system: IndicatorSystem, input_files: list[dict]) -> None:
    ws = wb.create_sheet("说明")
    _title(ws, f"海东市{results.year}年法治政府建设示范创建评分说明")
    rec = system.recommendation
    ws["A1"] = f"海东市{results.year}年法治政府建设示范创建评分说明"
    ws["A1"].font = TITLE_FONT
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    facts = [
        ("指标体系版本", system.version),
        ("结果计算时间", results.generated_at),
        ("本表生成时间", now),
        ("计分方法", "各三级指标按下表规则计分，得分精确计算，显示时四舍五入保留两位小数。比率的分母为0时为“不适用”，"
                     "按满分计。单位总分为全部三级指标得分之和。群众满意度测评结果送达前，满意度指标为“待测评”，"
                     "总分为暂定，暂不具备推荐资格。"),
        ("计分报送", "同一单位同一年度，取已受理报送中填报日期最新的一份计分（填报日期相同取最后收到的），"
                     "其余为“已被替代”；未通过校验的文件为“退回”，不计分。"),
        ("等次", system.grade_text),
        ("推荐条件", system.recommendation_text),
        ("一票否决", "负面清单中存在一票否决类事件的，不予推荐。" if rec.no_veto else "不适用"),
        ("来源说明", "三级明细“来源”列为 文件名!工作表!单元格；明细表类指标为 文件名!工作表!参与计算的行数。"),
    ]
    row = _block(ws, 3, "评分方法", ["项目", "内容"], facts)
    for i in range(5, 5 + len(facts)):
        ws.merge_cells(start_row=i, start_column=2, end_row=i, end_column=5)
    row = _block(ws, row, "一级指标", ["类别", "名称", "分值"],
                 [(c.code, c.name, c.points) for c in system.categories])
    row = _block(ws, row, "三级指标及计分规则", ["编号", "一级指标", "三级指标", "分值", "计分规则"],
                 system.instruction_rows())
    files = [(f.get("original_name"), f.get("kind", ""), f.get("unit_code") or "", f.get("received_at", ""),
              f.get("status", ""), f.get("sha256")) for f in input_files]
    last = _block(ws, row, "输入文件", ["文件名", "类型", "单位代码", "接收时间", "状态", "SHA-256"], files) - 2
    for letter, width in zip("ABCDEF", (16, 22, 28, 20, 70, 66)):
        ws.column_dimensions[letter].width = width
    for r in ws.iter_rows(min_row=5, max_row=4 + len(facts), min_col=2, max_col=2):
        r[0].alignment = Alignment(wrap_text=True, vertical="top")
    setup_print(ws, f"A1:F{last}", landscape=True)


def write_score_workbook(results: YearResults, system: IndicatorSystem, path: str | Path,
                         input_files: list[dict]) -> Path:
    """Write the year's score workbook; `input_files` are dicts with original_name, sha256
    (and optionally kind, unit_code, received_at, status) of every file behind the results."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    units = _ordered_units(results)
    wb = Workbook()
    bulk: list[BulkRows] = []
    _overview(wb, results, system, units, bulk)
    _categories(wb, results, system, units, bulk)
    _details(wb, results, units, bulk)
    _quality(wb, results, bulk)
    _method(wb, results, system, input_files)
    return save_workbook(wb, path, bulk)
