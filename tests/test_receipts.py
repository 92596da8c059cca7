"""Receipts (SPEC §7.1): paths, JSON, the workbook people read, hostile names and values."""
from __future__ import annotations

import json
import zipfile

import pytest
from openpyxl import load_workbook

from assets.receipts import receipt_message, write_receipt

FORMULA = "=cmd|' /C calc'!A0"


def receipt(**changes) -> dict:
    base = {
        "status": "rejected", "original_name": "乐都区2024年报送.xlsx", "sha256": "ab" * 32,
        "received_at": "2024-11-28T09:30:00+00:00", "unit_code": "630202", "unit_name": "乐都区",
        "year": 2024, "kind": "submission",
        "errors": [{"sheet": "年度数据", "cell": "C7", "value": "abc", "message": "应填非负整数"},
                   {"sheet": "封面", "cell": "B4", "value": None, "message": "报送年度必填"}],
        "warnings": [{"sheet": "附表", "cell": None, "value": None, "message": "多余的工作表已忽略"}],
    }
    return base | changes


def summary(ws) -> dict:
    return {ws.cell(row=r, column=1).value: ws.cell(row=r, column=2).value for r in range(3, 11)}


def table(ws) -> list[list]:
    start = next(r for r in range(1, ws.max_row + 1) if ws.cell(row=r, column=1).value == "序号")
    assert [c.value for c in ws[start]] == ["序号", "类别", "工作表", "单元格", "填写的值", "问题说明"]
    return [[c.value for c in row] for row in ws.iter_rows(min_row=start + 1)]


def test_paths_and_json(tmp_path):
    r = receipt()
    json_path, xlsx_path = write_receipt(r, tmp_path)
    assert json_path == tmp_path / "630202" / "20241128T093000Z_乐都区2024年报送.xlsx.json"
    assert xlsx_path == tmp_path / "630202" / "20241128T093000Z_乐都区2024年报送.xlsx.xlsx"
    text = json_path.read_text(encoding="utf-8")
    assert "乐都区" in text and "\n  " in text  # UTF-8, not \u escapes; indented
    assert json.loads(text) == r
    assert sorted(p.name for p in json_path.parent.iterdir()) == sorted([json_path.name, xlsx_path.name])


def test_time_in_any_zone_names_the_utc_second(tmp_path):
    json_path, _ = write_receipt(receipt(received_at="2024-11-28T17:30:00.250+08:00"), tmp_path)
    assert json_path.name.startswith("20241128T093000Z_")


def test_unknown_unit_folder(tmp_path):
    r = receipt(unit_code=None, unit_name=None, year=None, kind="unknown",
                errors=[{"sheet": None, "cell": None, "value": None, "message": "无法打开文件"}], warnings=[])
    json_path, xlsx_path = write_receipt(r, tmp_path)
    assert json_path.parent == tmp_path / "unknown"
    ws = load_workbook(xlsx_path).active
    assert summary(ws)["单位"].startswith("未能识别") and summary(ws)["年度"] == "未能识别"


@pytest.mark.parametrize("status,errors", [("accepted", [{"sheet": "封面", "cell": "B2", "value": "x",
                                                          "message": "m"}]),
                                            ("rejected", []), ("ok", [])])
def test_status_must_match_errors(tmp_path, status, errors):
    with pytest.raises(ValueError):
        write_receipt(receipt(status=status, errors=errors), tmp_path)
    assert not any(tmp_path.rglob("*.json"))


def test_rejected_workbook(tmp_path):
    _, xlsx_path = write_receipt(receipt(), tmp_path)
    wb = load_workbook(xlsx_path)
    ws = wb.active
    assert ws["A1"].value == "海东市法治政府建设示范创建 报送回执"
    s = summary(ws)
    assert s["文件名"] == "乐都区2024年报送.xlsx"
    assert s["单位"] == "乐都区（630202）"
    assert s["年度"] == "2024年"
    assert s["接收时间"] == "2024-11-28 17:30:00（北京时间）"
    assert s["结果"] == "退回（需修改后重新报送）"
    assert s["问题数"] == "错误 2 条，提示 1 条"
    assert table(ws) == [[1, "错误", "年度数据", "C7", "abc", "应填非负整数"],
                         [2, "错误", "封面", "B4", None, "报送年度必填"],
                         [3, "提示", "附表", None, None, "多余的工作表已忽略"]]
    assert int(ws.page_setup.paperSize) == 9  # A4
    assert ws.print_area == "'回执'!$A$1:$F$14" and ws.print_title_rows == "$11:$11"
    # The table reads like every other table of the project: frozen, filtered, bordered, wrapped.
    assert (ws.freeze_panes, ws.auto_filter.ref, ws.row_dimensions[11].height) == ("A12", "A11:F14", 32)
    assert ws["A11"].font.b and ws["A11"].fill.fgColor.rgb.endswith("1F4E78")
    assert ws["A12"].border.left.style == "thin" and ws["F14"].alignment.wrap_text
    assert ws["B7"].font.color.rgb.endswith("C00000")  # 退回 in red
    assert [ws.column_dimensions[c].width for c in "ABCDEF"] == [10, 8, 14, 10, 24, 60]
    assert ws.oddFooter.center.text == "第 &P 页，共 &N 页"


def test_accepted_and_duplicate_workbooks(tmp_path):
    _, accepted = write_receipt(receipt(status="accepted", errors=[]), tmp_path)
    ws = load_workbook(accepted).active
    assert summary(ws)["结果"] == "已受理"
    assert table(ws) == [[1, "提示", "附表", None, None, "多余的工作表已忽略"]]
    dup = receipt(status="duplicate", errors=[], warnings=[], original_name="副本.xlsx",
                  received_at="2024-11-29T01:00:00+00:00",
                  duplicate_of={"original_name": "乐都区2024年报送.xlsx",
                                "received_at": "2024-11-28T09:30:00+00:00", "status": "accepted"})
    json_path, xlsx_path = write_receipt(dup, tmp_path)
    assert json.loads(json_path.read_text(encoding="utf-8"))["duplicate_of"]["original_name"] == "乐都区2024年报送.xlsx"
    s = summary(load_workbook(xlsx_path).active)
    assert s["结果"] == "重复文件（已收到相同文件，无需重复报送）"
    assert "乐都区2024年报送.xlsx" in s["首次收到"] and "2024-11-28 17:30:00" in s["首次收到"]


@pytest.mark.parametrize("original,expected", [
    ("../../x.xlsx", "x.xlsx"),
    ("..\\..\\windows\\报表.xls", "报表.xls"),
    ("/etc/passwd", "passwd"),
    ("..", "file"),
    (".hidden.ods", "hidden.ods"),
    ("a\x00b\nc\x1f\u202egpj.xlsx", "abcgpj.xlsx"),  # control and bidi-override characters dropped
    ("报表🎉😀.xlsx", "报表🎉😀.xlsx"),
    ('a<b>c:"d|e?f*.xlsx', "a_b_c__d_e_f_.xlsx"),
])
def test_odd_names_stay_inside(tmp_path, original, expected):
    json_path, xlsx_path = write_receipt(receipt(original_name=original), tmp_path)
    assert json_path.name == f"20241128T093000Z_{expected}.json"
    for p in (json_path, xlsx_path):
        assert p.resolve().parent == (tmp_path / "630202").resolve()
    assert json.loads(json_path.read_text(encoding="utf-8"))["original_name"] == original
    # The workbook shows the name as sent, minus characters a cell cannot hold.
    shown = "ab\nc\u202egpj.xlsx" if "\x00" in original else original
    assert summary(load_workbook(xlsx_path).active)["文件名"] == shown


def test_long_chinese_name_is_bounded_and_keeps_extension(tmp_path):
    original = "海东市" + "法治政府建设示范创建" * 30 + ".xlsx"
    json_path, _ = write_receipt(receipt(original_name=original), tmp_path)
    name = json_path.name.removeprefix("20241128T093000Z_").removesuffix(".json")
    assert name.endswith(".xlsx") and name.startswith("海东市法治政府")
    assert 110 <= len(name.encode("utf-8")) <= 120
    name.encode("utf-8").decode("utf-8")  # not cut inside a character


def test_formula_looking_values_stay_text(tmp_path):
    r = receipt(original_name=FORMULA + ".xlsx", unit_name="+乐都区",
                errors=[{"sheet": "年度数据", "cell": "C7", "value": FORMULA, "message": "应填非负整数"},
                        {"sheet": "封面", "cell": "B2", "value": "@SUM(A1)", "message": "-1"}])
    json_path, xlsx_path = write_receipt(r, tmp_path)
    with zipfile.ZipFile(xlsx_path) as z:
        sheet_xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    ws = load_workbook(xlsx_path).active
    assert summary(ws)["文件名"] == FORMULA + ".xlsx"
    rows = table(ws)
    assert (rows[0][4], rows[1][4], rows[1][5]) == (FORMULA, "@SUM(A1)", "-1")
    assert all(ws.cell(row=r, column=5).data_type == "s" for r in range(ws.max_row - 2, ws.max_row + 1)
               if ws.cell(row=r, column=5).value)
    assert ws["B3"].quotePrefix and ws["E12"].quotePrefix and ws["E13"].quotePrefix
    assert not ws["B5"].quotePrefix
    assert json.loads(json_path.read_text(encoding="utf-8"))["errors"][0]["value"] == FORMULA


def test_same_second_same_name_keeps_both_and_rewrite_is_idempotent(tmp_path):
    first, _ = write_receipt(receipt(), tmp_path)
    again, _ = write_receipt(receipt(), tmp_path)  # re-run after a crash: same receipt, same place
    other, _ = write_receipt(receipt(sha256="cd" * 32), tmp_path)  # different bytes, same second and name
    assert again == first
    assert other != first and other.name == "20241128T093000Z-2_乐都区2024年报送.xlsx.json"
    assert json.loads(first.read_text(encoding="utf-8"))["sha256"] == "ab" * 32
    assert json.loads(other.read_text(encoding="utf-8"))["sha256"] == "cd" * 32
    assert len(list((tmp_path / "630202").glob("*.xlsx.xlsx"))) == 2


def test_a_receipt_left_torn_by_a_crash_of_the_machine_is_written_again_in_its_place(tmp_path):
    first, _ = write_receipt(receipt(), tmp_path)
    first.write_bytes(b'{"status": "rej')  # written, renamed, never synced: the crash kept half
    again, _ = write_receipt(receipt(), tmp_path)
    assert again == first and json.loads(again.read_text(encoding="utf-8"))["sha256"] == "ab" * 32


def test_messages():
    rejected = receipt_message(receipt())
    assert rejected.startswith("乐都区2024年度报送的《乐都区2024年报送.xlsx》")
    assert "被退回" in rejected and "错误2条" in rejected and "提示1条" in rejected
    assert "年度数据!C7" in rejected and "abc" in rejected and "应填非负整数" in rejected
    accepted = receipt_message(receipt(status="accepted", errors=[], warnings=[]))
    assert accepted.endswith("已受理。")
    dup = receipt_message(receipt(status="duplicate", errors=[], warnings=[], duplicate_of={
        "original_name": "首次.xlsx", "received_at": "2024-11-27T00:00:00+00:00"}))
    assert "重复文件" in dup and "《首次.xlsx》" in dup and "2024-11-27 08:00:00" in dup
    assert "\n" not in rejected + accepted + dup
