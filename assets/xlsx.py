"""Shared openpyxl helpers for every workbook people read: receipts, scores, packages.

Text that came from a county is never executable: a string starting with
=, +, - or @ is stored as a string cell with Excel's quote prefix.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from copy import copy
from typing import Any

from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
TITLE_FONT = Font(bold=True, size=14)
THIN = Side(style="thin", color="BFBFBF")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="top")
SCORE_FORMAT = "0.00"
DATE_FORMAT = "yyyy-mm-dd"
FORMULA_STARTS = ("=", "+", "-", "@")


def set_value(cell, value: Any) -> None:
    """Write a value so that county text can never become a formula."""
    if isinstance(value, float) and value != value:  # NaN
        value = None
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        cell.value = value
        cell.data_type = "s"
        cell.quotePrefix = True
        return
    cell.value = value
    if isinstance(value, (dt.date, dt.datetime)):
        cell.number_format = DATE_FORMAT


BORDERED_ROWS = 10_000  # past this, per-cell borders cost more than they help on screen


def text_width(value: Any) -> float:
    """Approximate Excel column width of a value (a CJK character is two units)."""
    text = f"{value:,.2f}" if isinstance(value, float) else str(value) if value is not None else ""
    return sum(2 if ord(ch) > 0x2E80 else 1.1 for ch in text)


def write_table(
    ws: Worksheet,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    start_row: int = 1,
    widths: dict[str, float] | None = None,
    number_formats: dict[str, str] | None = None,
    landscape: bool = True,
) -> int:
    """Header row + data rows, frozen header, filter, borders, print setup.

    Column widths follow the content (within bounds; long text wraps) unless
    given. Returns the last row written.
    """
    for j, h in enumerate(headers, 1):
        c = ws.cell(row=start_row, column=j, value=h)
        c.font, c.fill, c.border = HEADER_FONT, HEADER_FILL, BORDER
        c.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.row_dimensions[start_row].height = 32
    formats = {headers.index(k) + 1: v for k, v in (number_formats or {}).items() if k in headers}
    rows = list(rows)
    col_widths, wanted = _widths(headers, rows, widths or {})
    bordered = len(rows) <= BORDERED_ROWS
    # text wider than its column wraps rather than running over its neighbours (tables meant for reading)
    wrapped = {j for j, (w, need) in enumerate(zip(col_widths, wanted), 1) if need > w and bordered}
    # Setting a style on a cell hashes the style objects every time; a table
    # has a handful of distinct cell styles, so each is built once and copied.
    styles: dict[tuple, Any] = {}
    r = start_row
    for r, row in enumerate(rows, start_row + 1):
        for j, v in enumerate(row, 1):
            c = ws.cell(row=r, column=j)
            set_value(c, v)
            key = (j, _kind(v))
            if key in styles:
                c._style = copy(styles[key])
                continue
            if bordered:
                c.border = BORDER
            if j in wrapped:
                c.alignment = WRAP
            if j in formats and key[1] == "number":
                c.number_format = formats[j]
            styles[key] = copy(c._style)
    last_col = get_column_letter(max(len(headers), 1))
    ws.freeze_panes = ws.cell(row=start_row + 1, column=1)
    ws.auto_filter.ref = f"A{start_row}:{last_col}{max(r, start_row)}"
    for j, width in enumerate(col_widths, 1):
        ws.column_dimensions[get_column_letter(j)].width = width
    setup_print(ws, f"A1:{last_col}{max(r, start_row)}", title_rows=f"{start_row}:{start_row}",
                landscape=landscape)
    return r


def _widths(headers: Sequence[str], rows: list[Sequence[Any]],
            given: dict[str, float]) -> tuple[list[float], list[float]]:
    """(column widths, widths the content would need): given widths, else the widest of the
    header (wrapped on two lines) and the first 200 rows, within 8–40."""
    seen = [min(14.0, text_width(h) / 2 + 2) for h in headers]
    for row in rows[:200]:
        for j, v in enumerate(row[:len(seen)]):
            seen[j] = max(seen[j], text_width(v) + 2)
    return [given.get(h, min(40.0, max(8.0, w))) for h, w in zip(headers, seen)], seen


def _kind(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return "date"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "formula"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return "other"


def setup_print(ws: Worksheet, area: str, *, title_rows: str | None = None, landscape: bool = True) -> None:
    ws.print_area = area
    if title_rows:
        ws.print_title_rows = title_rows
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
