"""Long tables written as XML text read back exactly as openpyxl's own cells."""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import numpy as np
import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Protection
from python_calamine import CalamineWorkbook

from assets.xlsx import BORDERED_ROWS, QuickBook, SheetXml, save_workbook, table_cells, write_table

HEADERS = ["代码", "名称", "得分", "日期", "是否", "备注"]


def rows(n: int) -> list[list]:
    kinds = [
        ["630202", "乐都区", 12.5, dt.date(2024, 3, 1), True, "=HYPERLINK(\"x\")"],
        ["630203", "平安<区>&", np.float64(0.1) + 0.2, dt.datetime(2024, 3, 1, 8, 30), False, ""],
        ["630222", None, np.int64(7), None, None, "-3 扣分"],
        ["630223", "互助\x01县", float("nan"), dt.date(1999, 12, 31), True, "@sum"],
        ["630224", "  前后空格  ", 928.5649999, None, False, "+1"],
    ]
    return [kinds[i % len(kinds)] for i in range(n)]


def write(path, n: int, bulk: list | None) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "明细"
    wb.create_sheet("后面的表")["A1"] = "不动"
    last = write_table(ws, HEADERS, rows(n), number_formats={"得分": "0.00"}, bulk=bulk)
    assert last == n + 1
    save_workbook(wb, path, bulk or ())


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("bulk")
    n = BORDERED_ROWS + 3
    write(d / "cells.xlsx", n, None)
    bulk: list = []
    write(d / "bulk.xlsx", n, bulk)
    assert len(bulk) == 1  # the long table did take the XML path
    return d / "cells.xlsx", d / "bulk.xlsx", n


def test_bulk_rows_equal_openpyxl_cells(pair):
    cells, bulk, n = pair
    a, b = load_workbook(cells)["明细"], load_workbook(bulk)["明细"]
    assert (a.max_row, a.max_column, a.dimensions) == (b.max_row, b.max_column, b.dimensions) == (n + 1, 6, f"A1:F{n + 1}")
    assert b.freeze_panes == "A2" and b.auto_filter.ref == f"A1:F{n + 1}"
    checked = 0
    for ra, rb in zip(a.iter_rows(min_row=2, max_row=12), b.iter_rows(min_row=2, max_row=12)):
        for ca, cb in zip(ra, rb):
            if ca.value is None:  # blank: openpyxl may keep an empty styled cell, the XML path none
                assert cb.value is None, ca.coordinate
                continue
            assert (cb.value, cb.number_format, cb.quotePrefix) == (ca.value, ca.number_format, ca.quotePrefix), \
                ca.coordinate
            checked += 1
    assert checked > 40
    assert b["F2"].value == "=HYPERLINK(\"x\")" and b["F2"].data_type != "f" and b["F2"].quotePrefix
    assert b["C2"].number_format == "0.00" and b["D2"].number_format == "yyyy-mm-dd"
    assert b["B5"].value == "互助县"  # a control character Excel refuses is dropped
    assert b[f"A{n + 1}"].value == a[f"A{n + 1}"].value
    assert load_workbook(bulk)["后面的表"]["A1"].value == "不动"


def test_bulk_rows_read_by_calamine(pair):
    _, bulk, n = pair
    sheet = CalamineWorkbook.from_path(str(bulk)).get_sheet_by_name("明细").to_python()
    assert len(sheet) == n + 1
    assert sheet[1][:3] == ["630202", "乐都区", 12.5]
    assert sheet[2][1] == "平安<区>&"


def test_short_bordered_table_through_the_xml_path_is_styled_as_cells(tmp_path):
    """Every table given `bulk` takes the XML path: borders, wrapped columns (too wide, or asked
    for), number formats and the quote prefix come out as openpyxl's own cells would have them."""
    def sheet(bulk: list | None):
        wb = Workbook()
        ws = wb.active
        ws.title = "明细"
        table = rows(7) + [["630225", "很长的单位名称" * 8, 1.0, None, None, "x"]]  # 名称 wraps
        last = write_table(ws, HEADERS, table, number_formats={"得分": "0.00"}, widths={"名称": 10},
                           wrap=["备注"], bulk=bulk)
        assert last == len(table) + 1
        path = tmp_path / f"{'bulk' if bulk is not None else 'cells'}.xlsx"
        save_workbook(wb, path, bulk or ())
        return load_workbook(path)["明细"]

    bulk: list = []
    a, b = sheet(None), sheet(bulk)
    assert len(bulk) == 1 and a.dimensions == b.dimensions
    def look(c):
        sides = [c.border.left, c.border.right, c.border.top, c.border.bottom]
        return (c.value, c.number_format if c.value is not None else "(a blank shows no number)",
                c.quotePrefix, c.alignment.wrap_text,
                [(s.style, s.color.rgb if s.color else None) for s in sides])

    styled = 0
    for ra, rb in zip(a.iter_rows(min_row=2), b.iter_rows(min_row=2)):
        for ca, cb in zip(ra, rb):
            assert look(cb) == look(ca), ca.coordinate
            styled += cb.border.left.style == "thin"
    assert styled == 8 * len(HEADERS)  # blanks too
    with zipfile.ZipFile(tmp_path / "bulk.xlsx") as z:  # each row once, in order, as Excel requires
        numbers = [int(n) for n in re.findall(rb'<row r="(\d+)"', z.read("xl/worksheets/sheet1.xml"))]
    assert numbers == list(range(1, 10))
    assert b["B3"].alignment.wrap_text and not b["A3"].alignment.wrap_text
    assert all(c.alignment.wrap_text for c in b["F"][1:]), "备注 wraps, blanks included"


def _cell_facts(ws):
    # an empty text is a cell without a value either way; openpyxl types it as text, the XML path does not
    return [[(c.value, c.number_format, c.border.left.style, c.alignment.wrap_text, c.font.b, c.fill.fgColor.rgb,
              c.quotePrefix, c.data_type if c.value is not None else None) for c in row] for row in ws.iter_rows()]


def _sheet_facts(ws):
    return (ws.dimensions, ws.freeze_panes, ws.auto_filter.ref, ws.print_area, ws.print_title_rows,
            ws.page_setup.orientation, {k: d.width for k, d in ws.column_dimensions.items()},
            {k: d.height for k, d in ws.row_dimensions.items() if d.height})


def test_a_quickbook_table_is_write_tables_table(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.title = "明细"
    write_table(ws, HEADERS, rows(12), start_row=3, number_formats={"得分": "0.00"}, landscape=False)
    wb.save(tmp_path / "cells.xlsx")
    book = QuickBook(1)
    sheet = table_cells(book, "明细", HEADERS, rows(12), start_row=3, number_formats={"得分": "0.00"})
    sheet.landscape = False
    (tmp_path / "xml.xlsx").write_bytes(book.to_bytes([sheet]))

    cells, xml = load_workbook(tmp_path / "cells.xlsx")["明细"], load_workbook(tmp_path / "xml.xlsx")["明细"]
    assert _cell_facts(xml) == _cell_facts(cells)
    assert _sheet_facts(xml) == _sheet_facts(cells)


def test_a_style_first_used_by_a_later_workbook_is_in_its_styles(tmp_path):
    book = QuickBook(2)
    plain = table_cells(book, "一", ["甲"], [["文字"]])
    first = book.to_bytes([plain, SheetXml("二", [], [8.0], 1)])
    money = table_cells(book, "一", ["金额"], [[1234.5]], number_formats={"金额": "#,##0.00"})
    protected = SheetXml("二", [(1, 1, "", book.style(protection=Protection(locked=False)))], [8.0], 1,
                         merged=["A1:C1"], protected=True)
    (tmp_path / "b.xlsx").write_bytes(book.to_bytes([money, protected]))

    wb = load_workbook(tmp_path / "b.xlsx")
    assert wb["一"]["A2"].number_format == "#,##0.00" and wb["一"]["A2"].border.left.style == "thin"
    assert wb["二"]["A1"].protection.locked is False and wb["二"].protection.sheet
    assert [str(r) for r in wb["二"].merged_cells.ranges] == ["A1:C1"] and wb["二"].freeze_panes is None
    assert len(zipfile.ZipFile(io.BytesIO(first)).read("xl/styles.xml")) < \
        len(zipfile.ZipFile(tmp_path / "b.xlsx").read("xl/styles.xml"))
