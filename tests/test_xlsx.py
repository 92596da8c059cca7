"""Long tables written as XML text read back exactly as openpyxl's own cells."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from openpyxl import Workbook, load_workbook
from python_calamine import CalamineWorkbook

from assets.xlsx import BORDERED_ROWS, save_workbook, write_table

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
