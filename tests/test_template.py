"""The blank template: layout from the schema, input rules, protection, instructions (SPEC §3, §10)."""
from __future__ import annotations

import csv

import pytest
from openpyxl import load_workbook
from openpyxl.utils import range_boundaries

from assets.registry import load_registry
from assets.template import write_template
from expectations.schema import load_schema
from factory import needs_libreoffice, saved_by_libreoffice

SCHEMA = load_schema()
# Lists and names typed from SPEC §2–§3, not taken from the code under test.
SPEC_SHEETS = ["封面", "年度数据", "重大行政决策", "规范性文件", "执法案件台账", "负面清单", "佐证材料"]
SPEC_UNITS = ["乐都区", "平安区", "民和回族土族自治县", "互助土族自治县", "化隆回族自治县",
              "循化撒拉族自治县", "海东工业园区"]
SPEC_CODES = ["630202", "630203", "630222", "630223", "630224", "630225", "HDGYYQ"]
YES_NO = ["是", "否"]
INDICATOR_ROWS = [{"code": "A1", "category": "党的领导与法治能力", "name": "法治专题讲座每年至少2次",
                   "points": 20, "rule": "每年至少2次，按次数比例计分"},
                  ("J1", "群众满意度", "群众满意度测评", 100, "满意度得分×100/100")]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = write_template(tmp_path_factory.mktemp("tpl") / "模板.xlsx", instructions=INDICATOR_ROWS)
    return load_workbook(path)


def rule_at(ws, cell):
    found = [dv for dv in ws.data_validations.dataValidation if cell in dv.sqref]
    assert len(found) == 1, f"{ws.title}!{cell}: {len(found)} rules"
    return found[0]


def dropdown(wb, ws, cell) -> list[str]:
    dv = rule_at(ws, cell)
    assert dv.type == "list" and dv.showDropDown is not True  # True would hide the arrow
    if dv.formula1.startswith('"'):
        return dv.formula1.strip('"').split(",")
    sheet, ref = dv.formula1.rsplit("!", 1)
    min_col, min_row, max_col, max_row = range_boundaries(ref.replace("$", ""))
    src = wb[sheet.strip("'")]
    return [src.cell(row=r, column=min_col).value for r in range(min_row, max_row + 1)]


def column_of(ws, header) -> str:
    return next(c.column_letter for c in ws[1] if c.value == header)


def test_sheets_and_headers_follow_the_schema(template):
    visible = [ws.title for ws in template if ws.sheet_state == "visible"]
    assert visible == ["填报说明", *SPEC_SHEETS]
    assert [ws.sheet_state for ws in template if ws.title not in visible] == ["hidden"]
    assert [c.value for c in template["封面"][1]] == ["项目", "内容"]
    assert [c.value for c in template["年度数据"][1]] == ["编号", "数据项", "数值", "单位", "说明"]
    assert [c.value for c in template["执法案件台账"][1]] == [
        "案件编号", "执法部门", "执法领域", "案件类型", "立案日期", "结案日期", "是否重大执法决定",
        "是否法制审核", "是否全过程记录", "是否公示", "罚没金额（元）", "复议诉讼结果"]
    for sheet in SCHEMA.table_sheets:
        ws = template[sheet.name]
        assert [c.value for c in ws[1]] == list(sheet.headers)
        assert ws.freeze_panes == "A2"
        assert ws.max_row == 1  # blank: header only


def test_cover_and_items_are_prefilled(template):
    cover = template["封面"]
    assert [cover.cell(row=r, column=1).value for r in range(2, 11)] == [
        "单位名称", "单位代码", "报送年度", "填报人", "联系电话", "填报日期", "模板版本", "示范命名情况", "命名年度"]
    assert cover["B8"].value == "2024.1"
    assert all(cover.cell(row=r, column=2).value is None for r in range(2, 11) if r != 8)
    items = template["年度数据"]
    assert items.max_row == 46
    assert [items.cell(row=r, column=1).value for r in range(2, 47)] == [f"D{i:02d}" for i in range(1, 46)]
    assert (items["B2"].value, items["D2"].value) == ("法治专题讲座次数", "次")
    assert (items["B5"].value, items["D5"].value) == ("专题述法乡镇（街道）覆盖率", "%")
    assert items["B46"].value == "依托对口援建开展业务骨干培训人次"
    assert all(items.cell(row=r, column=3).value is None for r in range(2, 47))


def test_dropdowns(template):
    wb, cover, items = template, template["封面"], template["年度数据"]
    assert dropdown(wb, cover, "B2") == SPEC_UNITS
    assert dropdown(wb, cover, "B3") == SPEC_CODES
    # Aliases and former codes are accepted too, so a typed one only warns.
    assert rule_at(cover, "B2").errorStyle == "warning"
    assert dropdown(wb, cover, "B9") == ["未命名", "省级示范", "全国示范"]
    assert dropdown(wb, items, "C6") == YES_NO  # D05
    assert dropdown(wb, items, "C16") == YES_NO  # D15
    decisions = wb["重大行政决策"]
    assert dropdown(wb, decisions, "C2") == [
        "生态环境保护", "自然资源", "教育培训", "食品安全", "公共卫生", "劳动保障", "城市管理",
        "金融服务", "网络安全", "民族团结进步", "其他"]
    for header in ["是否列入年度目录", "公众参与", "专家论证", "风险评估", "合法性审查", "集体讨论决定"]:
        assert dropdown(wb, decisions, column_of(decisions, header) + "20001") == YES_NO
    cases = wb["执法案件台账"]
    assert dropdown(wb, cases, "C2") == ["食品药品", "医疗保障", "公共卫生", "自然资源", "生态环境", "安全生产",
                                         "劳动保障", "城市管理", "交通运输", "金融服务", "教育培训", "其他"]
    assert dropdown(wb, cases, "D500") == ["行政处罚", "行政强制", "行政检查"]
    assert dropdown(wb, cases, "L2") == ["无", "维持", "纠错"]
    assert dropdown(wb, cases, "J20001") == YES_NO
    assert dropdown(wb, wb["负面清单"], "D2") == [
        "重大违法行政决策被追责", "因违法行政引发重大群体性事件", "拒不履行法院生效裁判",
        "被中央或省级督察通报法治问题", "其他"]
    assert dropdown(wb, wb["佐证材料"], "A2") == ["A1", "J1"]
    # The cheap range form: one rule object per column, not per cell.
    assert str(rule_at(cases, "C2").sqref) == "C2:C20001"
    assert all(dv.prompt and dv.error for ws in wb for dv in ws.data_validations.dataValidation)


def test_number_and_date_rules(template):
    cover, items, cases = template["封面"], template["年度数据"], template["执法案件台账"]
    year = rule_at(cover, "B4")
    assert (year.type, year.operator, year.formula1, year.formula2) == ("whole", "between", "2000", "2100")
    count = rule_at(items, "C2")  # D01 次
    assert (count.type, count.operator, count.formula1) == ("whole", "greaterThanOrEqual", "0")
    percent = rule_at(items, "C5")  # D04 %
    assert (percent.type, percent.formula1, percent.formula2) == ("decimal", "0", "100")
    assert items["C5"].number_format == "General"  # a plain 0–100 number, not a 0.0% cell
    assert "95" in percent.prompt
    assert rule_at(items, "C13").type == "date"  # D12
    assert items["C13"].number_format == "yyyy-mm-dd"
    assert cover["B7"].number_format == "yyyy-mm-dd" and rule_at(cover, "B7").type == "date"
    assert cover["B3"].number_format == "@"  # 单位代码 keeps leading zeros
    for col in "EF":  # 立案日期, 结案日期
        assert rule_at(cases, f"{col}2").type == "date"
        assert cases.column_dimensions[col].number_format == "yyyy-mm-dd"
    assert cases.column_dimensions["A"].number_format == "@"  # 案件编号
    fine = rule_at(cases, "K2")
    assert (fine.type, fine.operator, fine.formula1) == ("decimal", "greaterThanOrEqual", "0")
    ruled = {str(r) for dv in cover.data_validations.dataValidation for r in dv.sqref.ranges}
    assert ruled == {"B2", "B3", "B4", "B7", "B9", "B10"}  # free text (填报人, 电话) has none


def test_protection_locks_labels_only(template):
    for ws in template:
        assert ws.protection.sheet and not ws.protection.password
    cover, items = template["封面"], template["年度数据"]
    assert cover["A2"].protection.locked and cover["A1"].protection.locked
    assert cover["B8"].protection.locked  # 模板版本
    assert not any(cover[f"B{r}"].protection.locked for r in range(2, 11) if r != 8)
    assert not any(items[f"C{r}"].protection.locked for r in range(2, 47))
    assert all(items[f"{c}{r}"].protection.locked for r in range(1, 47) for c in "ABD")
    for sheet in SCHEMA.table_sheets:
        ws = template[sheet.name]
        assert all(c.protection.locked for c in ws[1])
        for c in ws[1]:
            assert ws.column_dimensions[c.column_letter].protection.locked is False
        p = ws.protection  # False = the action stays allowed
        assert not (p.sort or p.autoFilter or p.insertRows or p.deleteRows)
        assert ws.auto_filter.ref.endswith("20001")


def test_instructions(template):
    ws = template["填报说明"]
    text = "\n".join(" | ".join(str(v) for v in row if v is not None) for row in ws.iter_rows(values_only=True))
    assert "模板版本 2024.1" in text
    for name in SPEC_SHEETS:
        assert name in text
    rows = [[str(v) if v is not None else "" for v in row] for row in ws.iter_rows(values_only=True)]
    by_item = {r[1]: r for r in rows if len(r) > 3 and r[1]}
    assert by_item["D12 行政执法事项目录公布日期"][3] == "可空（空表示未公布）"
    assert by_item["D01 法治专题讲座次数"][3] == "必填"
    assert "不要填0.95" in by_item["D04 专题述法乡镇（街道）覆盖率"][2]
    assert by_item["命名年度"][3].startswith("示范命名情况为未命名时可空")
    assert "不得晚于报送年度" in by_item["命名年度"][2]
    assert "不得重复" in by_item["文号"][2]
    assert "报送年度内" in by_item["制发日期"][2] and "不得早于制发日期" in by_item["报备日期"][2]
    assert by_item["罚没金额（元）"][3] == "可空（空按0计）"
    relations = [r[2] for r in rows if len(r) > 2 and r[1] == "数据关系"]
    assert any("D20" in t and "D19" in t and "不得大于" in t for t in relations)
    assert any(t.startswith("D23") and "D21" in t and "D22" in t for t in relations)
    assert any("D12" in t and "3月31日" in t for t in relations)
    assert any(t.startswith("一票否决") and "其他" not in t for t in relations)
    codes = [r for r in rows if r[0] in ("A1", "J1")]
    assert [r[:4] for r in codes] == [["A1", "党的领导与法治能力", "法治专题讲座每年至少2次", "20"],
                                      ["J1", "群众满意度", "群众满意度测评", "100"]]
    assert ws.print_area and int(ws.page_setup.paperSize) == 9  # A4


def test_without_indicator_rows_no_code_dropdown(tmp_path):
    wb = load_workbook(write_template(tmp_path / "t.xlsx"))
    assert not any("A2" in dv.sqref for dv in wb["佐证材料"].data_validations.dataValidation)
    assert "三、评分指标" not in [r[0] for r in wb["填报说明"].iter_rows(values_only=True)]


def test_registry_of_3000_units(tmp_path):
    units = tmp_path / "units.csv"
    with open(units, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["单位代码", "单位名称", "别名", "曾用代码"])
        w.writerows([f"{i:06d}", f"测试省第{i}号县", "", ""] for i in range(1, 3001))
    wb = load_workbook(write_template(tmp_path / "t.xlsx", registry=load_registry(units)))
    names = dropdown(wb, wb["封面"], "B2")
    assert len(names) == 3000 and names[0] == "测试省第1号县" and names[-1] == "测试省第3000号县"
    codes = dropdown(wb, wb["封面"], "B3")
    assert codes[:2] == ["000001", "000002"] and len(codes) == 3000  # leading zeros kept as text


@needs_libreoffice
def test_libreoffice_round_trip(tmp_path):
    src = write_template(tmp_path / "模板.xlsx", instructions=INDICATOR_ROWS)
    out = saved_by_libreoffice(tmp_path / "out", "xlsx", src)
    wb = load_workbook(out / "模板.xlsx")
    assert [ws.title for ws in wb if ws.sheet_state == "visible"] == ["填报说明", *SPEC_SHEETS]
    assert dropdown(wb, wb["封面"], "B2") == SPEC_UNITS
    assert dropdown(wb, wb["执法案件台账"], "L2") == ["无", "维持", "纠错"]
    assert dropdown(wb, wb["年度数据"], "C6") == YES_NO
    assert rule_at(wb["年度数据"], "C5").type == "decimal"
    assert all(ws.protection.sheet for ws in wb)
    assert not wb["年度数据"]["C2"].protection.locked and wb["年度数据"]["A2"].protection.locked


def fill(template_path, sheets: dict[str, list[list]], out):
    """Type a submission into the template the way a clerk would: into the existing layout."""
    from assets.demo import Cell

    wb = load_workbook(template_path)
    for name, rows in sheets.items():
        ws = wb[name]
        headers = [c.value for c in ws[1]]
        keyed = ws.max_row > 1  # 封面/年度数据: one prefilled row per key in column A
        where = {ws.cell(row=r, column=1).value: r for r in range(2, ws.max_row + 1)}
        for i, row in enumerate(rows[1:], 2):
            record = dict(zip(rows[0], row))
            r = where[row[0]] if keyed else i
            for header, value in record.items():
                if keyed and header in (rows[0][0], "数据项", "单位", "说明"):
                    continue  # labels are already there
                cell = ws.cell(row=r, column=headers.index(header) + 1)
                if isinstance(value, Cell):
                    value, cell.number_format = value.value, value.number_format or "General"
                cell.value = value
    wb.save(out)
    return out


def test_filled_template_reads_without_errors(tmp_path):
    from assets.demo import submission_sheets
    from assets.reading import read_workbook

    blank = write_template(tmp_path / "blank.xlsx", instructions=INDICATOR_ROWS)
    path = fill(blank, submission_sheets(cases=30, naming="省级示范", naming_year=2022), tmp_path / "乐都区.xlsx")
    parsed = read_workbook(path, path.name)
    assert [p for p in parsed.problems if p.severity == "error"] == []
    assert parsed.cover["单位代码"] == "630202" and parsed.cover["报送年度"] == 2024
    assert parsed.cover["模板版本"] == "2024.1"
    assert len(parsed.items) == 45
    assert len(parsed.tables["执法案件台账"]) == 30


def _checked(path):
    from assets.demo import indicator_codes
    from assets.reading import read_workbook
    from assets.validation import validate_batch

    parsed = read_workbook(path, path.name)
    report = validate_batch({"t": parsed}, load_registry(), set(indicator_codes()))
    return parsed.problems + report.problems.get("t", [])


def test_filled_template_passes_validation(tmp_path):
    from assets.demo import submission_sheets

    blank = write_template(tmp_path / "blank.xlsx", instructions=INDICATOR_ROWS)
    path = fill(blank, submission_sheets(unit_code="630225", unit_name="循化撒拉族自治县", cases=50),
                tmp_path / "循化县.xlsx")
    assert [p for p in _checked(path) if p.severity == "error"] == []


@needs_libreoffice
@pytest.mark.parametrize("fmt", ["xlsx", "ods", "xls"])
def test_template_filled_and_saved_by_libreoffice_is_accepted_or_rejected_by_cell(tmp_path, fmt):
    from assets.demo import submission_sheets

    blank = write_template(tmp_path / "blank.xlsx", instructions=INDICATOR_ROWS)
    good = fill(blank, submission_sheets(cases=20, seed=4), tmp_path / "good.xlsx")
    sheets = submission_sheets(cases=20, seed=4)
    next(r for r in sheets["年度数据"] if r[0] == "D20")[2] = 10**6  # more mediated than received (D19)
    bad = fill(blank, sheets, tmp_path / "bad.xlsx")
    out = saved_by_libreoffice(tmp_path / "saved", fmt, good, bad)
    assert [p for p in _checked(out / f"good.{fmt}") if p.severity == "error"] == []
    errors = [p for p in _checked(out / f"bad.{fmt}") if p.severity == "error"]
    d20 = 2 + [r[0] for r in sheets["年度数据"][1:]].index("D20")  # its row in the template
    assert [(p.sheet, p.cell) for p in errors] == [("年度数据", f"C{d20}")]


def test_blank_template_gives_required_errors(tmp_path):
    problems = _checked(write_template(tmp_path / "blank.xlsx"))
    errors = {(p.sheet, p.cell) for p in problems if p.severity == "error"}
    # 封面: every item but the prefilled 模板版本 and 命名年度 (needed only once named).
    assert {c for s, c in errors if s == "封面"} == {"B2", "B3", "B4", "B5", "B6", "B7", "B9"}
    # 年度数据: every item but the optional D12 (row 13).
    assert {c for s, c in errors if s == "年度数据"} == {f"C{r}" for r in range(2, 47)} - {"C13"}
    assert all("必填" in p.message or "没有" in p.message for p in problems if p.severity == "error")


def test_filled_template_gives_no_warnings(tmp_path):
    from assets.demo import submission_sheets

    path = fill(write_template(tmp_path / "blank.xlsx"), submission_sheets(), tmp_path / "乐都区.xlsx")
    assert _checked(path) == []
