"""The score workbook read back cell by cell against numbers worked out by hand from SPEC §4."""
from __future__ import annotations

import datetime as dt

import pytest
from openpyxl import load_workbook

from assets.demo import Cell, submission_sheets, write_workbook
from assets.reading import read_workbook
from assets.model import SubmissionRecord
from assets.score_workbook import workbook_name, write_score_workbook
from assets.scoring import score_submission
from test_scoring import REGISTRY, SYSTEM, YEAR, D, doc, make_record, results, table

FILE = "乐都区2024年报送.xlsx"
SAT_SOURCE = "海东市2024年满意度测评.xlsx!满意度测评结果!D3"

# Hand computation (SPEC §4 table) for 乐都区:
#   A1 count(2), P 20, D01 = 1            → 20 × 1/2            = 10.00
#   A2 count(5), P 20, D02 = 3            → 20 × 3/5            = 12.00
#   A4 rate_at_least(100), P 20, 95.8 %   → 20 × 95.8/100       = 19.16
#   G1 rate_at_least(95), P 20, 90/100    → 20 × 90/95          = 18.947… → 18.95
#   G3 rate_below(30), P 20, 9/20 = 45 %  → 20 × (60 − 45)/30   = 10.00
#   G5 rate_at_least(90), P 15, 2/3       → 15 × 66.67/90       = 11.111… → 11.11
#   C1 3 of 4 reviewed                    → 25 × 3/4            = 18.75
#   C2 3 of 4 filed                       → 18.75
#   C3 2 of 4 filed within 30 days        → 12.50
#   J1 satisfaction 87.345                → 87.345              → 87.35 (half up)
#   all other indicators full.
# Categories: A 100 − 10 − 8 − 0.84 = 81.16; C 100 − 25 = 75.00;
#   G 160 − 20/19 − 10 − 35/9 = 145.058… → 145.06; J 87.35.
# Total 81.16 + 80 + 75 + 100 + 180 + 60 + 145.0585 + 80 + 40 + 87.345 = 928.5635 → 928.56, 优秀,
# ≥ 850, every A–I ≥ 60 %, measured, no veto → 可推荐示范, rank 1.
EXPECTED_OVERVIEW = [1, "630202", "乐都区", 928.56, "优秀", "可推荐示范", "正式",
                     81.16, 80, 75, 100, 180, 60, 145.06, 80, 40, 87.35]
EXPECTED_DETAIL = {  # indicator: (数值, 目标, 分值, 得分, 来源)
    "A1": ("1次", "≥2次", 20, 10, f"{FILE}!年度数据!C2"),
    "A2": ("3次", "≥5次", 20, 12, f"{FILE}!年度数据!C3"),
    "A4": ("95.8%", "≥100%", 20, 19.16, f"{FILE}!年度数据!C5"),
    "A5": ("是", "是", 20, 20, f"{FILE}!年度数据!C6"),
    "C1": ("3/4 (75.00%)", "100%", 25, 18.75, f"{FILE}!规范性文件!4行"),
    "C3": ("2/4 (50.00%)", "100%", 25, 12.5, f"{FILE}!规范性文件!4行"),
    "G1": ("90/100 (90.00%)", "≥95%", 20, 18.95, f"{FILE}!年度数据!C21,C20"),
    "G3": ("9/20 (45.00%)", "<30%", 20, 10, f"{FILE}!年度数据!C26,C24"),
    "G5": ("2/3 (66.67%)", "≥90%", 15, 11.11, f"{FILE}!年度数据!C29,C28"),
    "J1": ("87.345分", "满分100", 100, 87.35, SAT_SOURCE),
}


@pytest.fixture(scope="module")
def workbook(tmp_path_factory):
    docs = table("规范性文件", [
        doc("1号", D(YEAR, 3, 1), D(YEAR, 3, 31)),
        doc("2号", D(YEAR, 3, 1), D(YEAR, 4, 1)),
        doc("3号", D(YEAR, 3, 1), None, reviewed=False),
        doc("4号", D(YEAR, 3, 1), D(YEAR, 3, 2)),
    ])
    items = {"D01": 1.0, "D02": 3.0, "D04": 95.8, "D19": 100.0, "D20": 90.0, "D23": 20.0,
             "D25": 9.0, "D26": 0.0, "D27": 3.0, "D28": 2.0}
    records = [
        make_record(items=items, tables={"规范性文件": docs}, file_name=FILE, sid="ledu-2",
                    received_at="2025-01-20T09:00:00+00:00"),
        make_record(file_name="乐都区初稿.xlsx", filled_on=D(YEAR + 1, 1, 2), sid="ledu-1",
                    received_at="2025-01-25T09:00:00+00:00"),
        make_record("630203", file_name="=平安区.xlsx", events=["拒不履行法院生效裁判"], sid="pingan"),
        make_record("630225", status="rejected", sid="xunhua"),
        make_record("630224", sid="hualong"),
    ]
    res = results(records, {"630202": (87.345, SAT_SOURCE), "630203": (95.0, SAT_SOURCE)})
    files = [{"original_name": r.original_name, "sha256": r.sha256, "kind": "submission"} for r in records]
    path = write_score_workbook(res, SYSTEM, tmp_path_factory.mktemp("exports") / workbook_name(YEAR), files)
    return load_workbook(path), records


def test_sheets(workbook):
    wb, _ = workbook
    assert wb.sheetnames == ["总览", "一级指标", "三级明细", "数据质量", "说明"]


def test_overview_cell_by_cell(workbook):
    wb, _ = workbook
    ws = wb["总览"]
    header = [c.value for c in ws[1]]
    assert header[:7] == ["排名", "单位代码", "单位名称", "总分", "等次", "可推荐示范", "状态"]
    assert header[7] == "A 党的领导与法治能力（100）"
    assert [c.value for c in ws[2]][:17] == EXPECTED_OVERVIEW
    assert ws["D2"].number_format == "0.00" and isinstance(ws["D2"].value, float)
    # 平安区: 900 + 95 = 995 but vetoed; 化隆县: 900, no satisfaction yet.
    assert [c.value for c in ws[3]][:7] == [None, "630203", "平安区", 995, "优秀", "不予推荐", "正式"]
    assert [c.value for c in ws[4]][:7][:5] == [None, "630224", "化隆回族自治县", 900, "优秀"]
    assert ws["G4"].value == "暂定" and ws["Q4"].value == "待测评"
    assert ws.max_row == 4  # the rejected 循化 file is not ranked
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:")
    assert ws.print_area and ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1
    assert len(ws._charts) == 1
    assert len(ws.conditional_formatting) >= 3


def test_county_text_is_never_a_formula(workbook):
    wb, _ = workbook
    ws = wb["总览"]
    cell = next(c for c in ws[3] if c.value == "=平安区.xlsx")
    assert cell.data_type == "s"


def test_details_cell_by_cell(workbook):
    wb, _ = workbook
    ws = wb["三级明细"]
    header = [c.value for c in ws[1]]
    assert header[:10] == ["单位代码", "单位名称", "指标编号", "指标名称", "数值", "目标", "分值", "得分", "说明", "来源"]
    rows = {r[2].value: r for r in ws.iter_rows(min_row=2) if r[0].value == "630202"}
    assert len(rows) == 43
    for code, (value, target, points, score, source) in EXPECTED_DETAIL.items():
        r = rows[code]
        assert [c.value for c in r[:10]] == ["630202", "乐都区", code, r[3].value, value, target, points, score,
                                             r[8].value, source], code
        assert r[7].number_format == "0.00"
        assert bool(r[8].value) == (score < points), code  # a reason exactly when points were lost
    # The total is the exact sum (928.56); the shown scores, each rounded, add up to 928.57.
    assert sum(rows[c][7].value for c in rows) == pytest.approx(928.57, abs=1e-9)
    pending = next(r for r in ws.iter_rows(min_row=2) if r[0].value == "630224" and r[2].value == "J1")
    assert pending[7].value == "待测评" and pending[8].value == "待测评"
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref and ws.print_area
    assert len(ws.conditional_formatting) == 1


def test_categories_sheet(workbook):
    wb, _ = workbook
    ws = wb["一级指标"]
    rows = {(r[0].value, r[2].value): [c.value for c in r] for r in ws.iter_rows(min_row=2)}
    assert rows[("630202", "G")][4:8] == [160, 145.06, pytest.approx(145.0585 / 160, abs=1e-5), "是"]
    assert rows[("630202", "J")][5] == 87.35
    assert rows[("630224", "J")][5] == "待测评"


def test_quality_sheet(workbook):
    wb, records = workbook
    ws = wb["数据质量"]
    assert [c.value for c in ws[1]][:6] == ["文件名", "单位代码", "单位名称", "填报日期", "接收时间", "状态"]
    status = {r[0].value: r[5].value for r in ws.iter_rows(min_row=2)}
    assert status[FILE] == "计分" and status["乐都区初稿.xlsx"] == "已被替代"
    assert status["循化撒拉族自治县2024.xlsx"] == "退回"
    shas = {r[9].value for r in ws.iter_rows(min_row=2)}
    assert shas == {r.sha256 for r in records}


def test_method_sheet(workbook):
    wb, records = workbook
    text = "\n".join(str(c.value) for row in wb["说明"].iter_rows() for c in row if c.value is not None)
    assert "指标体系版本\n2024.1" in text
    for code, _cat, name, _p, rule in SYSTEM.instruction_rows():
        assert code in text and name in text and rule in text
    assert "优秀：总分≥900" in text and "总分≥850" in text
    for r in records:
        assert r.original_name in text and r.sha256 in text


@pytest.mark.parametrize("ext", ["xlsx", "xls", "ods"])
def test_end_to_end_through_real_files(tmp_path, ext):
    sheets = submission_sheets("630202", "乐都区", YEAR, cases=40, seed=3)
    items = sheets["年度数据"]
    for r in items[1:]:
        if r[0] == "D01":
            r[2] = 1
        if r[0] == "D04":
            r[2] = Cell(0.958, "0.0%")  # a percent-formatted cell
    path = write_workbook(sheets, tmp_path / f"ledu.{ext}")
    name = f"乐都区2024.{ext}"
    parsed = read_workbook(path, name)
    assert not parsed.errors, parsed.errors
    record = SubmissionRecord("x", "0" * 64, name, "2025-01-15T00:00:00+00:00", "accepted", "630202",
                              "乐都区", YEAR, dt.date(YEAR + 1, 1, 15), parsed)
    frame = score_submission(record, SYSTEM, None, None).set_index("indicator")
    assert frame.loc["A1", "score"] == 10 and frame.loc["A1", "source"] == f"{name}!年度数据!C2"
    assert frame.loc["A4", "score"] == pytest.approx(19.16)
    # E6 counted straight from the generated rows.
    head, *cases = sheets["执法案件台账"]
    col = head.index("是否全过程记录")
    yes = sum(1 for c in cases if c[col] in ("是", True))
    assert frame.loc["E6", "score"] == pytest.approx(30 * yes / len(cases))
    assert frame.loc["E6", "value"].startswith(f"{yes}/{len(cases)} ")
    assert REGISTRY.by_code("630202").name == "乐都区"
