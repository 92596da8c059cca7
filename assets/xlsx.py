"""Shared openpyxl helpers for every workbook people read: receipts, scores, packages.

Text that came from a county is never executable: a string starting with
=, +, - or @ is stored as a string cell with Excel's quote prefix.
"""
from __future__ import annotations

import datetime as dt
import io
import itertools
import math
import numbers
import re
import zipfile
from collections.abc import Iterable, Sequence
from copy import copy
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
TITLE_FONT = Font(bold=True, size=14)
THIN = Side(style="thin", color="BFBFBF")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="top")
HEADER_ALIGNMENT = Alignment(horizontal="center", vertical="center", wrap_text=True)
# a table's header cells
HEADER = {"font": HEADER_FONT, "fill": HEADER_FILL, "border": BORDER, "alignment": HEADER_ALIGNMENT}
SCORE_FORMAT = "0.00"
DATE_FORMAT = "yyyy-mm-dd"
FORMULA_STARTS = ("=", "+", "-", "@")
PAGE_FOOTER = "第 &P 页，共 &N 页"  # centred on every printed page


MAX_TEXT = 32_767  # Excel's limit for one cell


def cell_text(value: str) -> str:
    """Text as a cell can hold it: control characters Excel refuses are dropped."""
    return ILLEGAL_CHARACTERS_RE.sub("", value)[:MAX_TEXT]


def set_value(cell, value: Any) -> None:
    """Write a value so that county text can never become a formula."""
    if isinstance(value, float) and value != value:  # NaN
        value = None
    if isinstance(value, str):
        value = cell_text(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        cell.value = value
        cell.data_type = "s"
        cell.quotePrefix = True
        return
    cell.value = value
    if isinstance(value, (dt.date, dt.datetime)):
        cell.number_format = DATE_FORMAT


BORDERED_ROWS = 10_000  # past this, per-cell borders cost more than they help on screen


_WIDE = re.compile("[\u2e81-\U0010ffff]")  # CJK and beyond: two units wide


def text_width(value: Any) -> float:
    """Approximate Excel column width of a value (a CJK character is two units)."""
    text = f"{value:,.2f}" if isinstance(value, float) else str(value) if value is not None else ""
    if text.isascii():  # most cells: numbers and codes
        return 1.1 * len(text)
    wide = len(_WIDE.findall(text))
    return 2 * wide + 1.1 * (len(text) - wide)


def write_table(
    ws: Worksheet,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    start_row: int = 1,
    widths: dict[str, float] | None = None,
    number_formats: dict[str, str] | None = None,
    landscape: bool = True,
    wrap: Sequence[str] = (),
    bulk: list[BulkRows] | None = None,
) -> int:
    """Header row + data rows, frozen header, filter, borders, print setup.

    Column widths follow the content (within bounds; long text wraps) unless
    given; the `wrap` columns always wrap. Returns the last row written. With
    `bulk`, the data rows are not put into cells: they are appended to `bulk` for
    `save_workbook` to write straight into the sheet's XML, styled as the cells
    would be (so a caller that styles cells afterwards does not pass it).
    """
    # Setting a style on a cell hashes the style objects every time; a table
    # has a handful of distinct cell styles, so each is built once and copied.
    header_style = None
    for j, h in enumerate(headers, 1):
        c = ws.cell(row=start_row, column=j, value=h)
        if header_style is not None:
            c._style = copy(header_style)
            continue
        for attr, value in HEADER.items():
            setattr(c, attr, value)
        header_style = c._style
    ws.row_dimensions[start_row].height = 32
    rows = list(rows)
    col_widths, styles = _table_layout(ws, headers, rows, widths, number_formats, wrap)
    if bulk is not None:
        bulk.append(BulkRows(ws, start_row + 1, rows, styles))
    else:
        _put_cells(ws, start_row + 1, rows, styles)
    r = start_row + len(rows)
    last_col = get_column_letter(max(len(headers), 1))
    ws.freeze_panes = f"A{start_row + 1}"  # a string: a Cell here would be an empty cell in the first bulk row
    ws.auto_filter.ref = f"A{start_row}:{last_col}{max(r, start_row)}"
    for j, width in enumerate(col_widths, 1):
        ws.column_dimensions[get_column_letter(j)].width = width
    setup_print(ws, f"A1:{last_col}{max(r, start_row)}", title_rows=f"{start_row}:{start_row}",
                landscape=landscape)
    return r


def _table_layout(ws: Worksheet, headers: Sequence[str], rows: list[Sequence[Any]], widths: dict[str, float] | None,
                  number_formats: dict[str, str] | None, wrap: Sequence[str], made: dict | None = None
                  ) -> tuple[list[float], list[dict[str, int | None]]]:
    """A table's column widths and its columns' cell styles (see _column_styles)."""
    formats = {headers.index(k) + 1: v for k, v in (number_formats or {}).items() if k in headers}
    col_widths, wanted = table_widths(headers, rows, widths or {})
    bordered = len(rows) <= BORDERED_ROWS
    # text wider than its column wraps rather than running over its neighbours (tables meant for reading)
    wrapped = {j for j, (h, w, need) in enumerate(zip(headers, col_widths, wanted), 1)
               if (need > w and bordered) or h in wrap}
    return col_widths, _column_styles(ws, max([len(headers), *map(len, rows)]), formats, bordered, wrapped, made)


def _put_cells(ws: Worksheet, first_row: int, rows: Sequence[Sequence[Any]],
               styles: list[dict[str, int | None]]) -> None:
    """Rows into cells from `first_row` on, each cell styled as its column and kind of value say."""
    made = ws.parent._cell_styles
    for r, row in enumerate(rows, first_row):
        for j, v in enumerate(row, 1):
            c = ws.cell(row=r, column=j)
            set_value(c, v)
            style = styles[j - 1][_kind(c.value)]
            if style is not None:
                c._style = copy(made[style])


def write_cells(ws: Worksheet, first_row: int, rows: Sequence[Sequence[Any]]) -> None:
    """Rows of a small table below a header of the caller's, bordered and wrapped."""
    width = max(map(len, rows), default=0)
    _put_cells(ws, first_row, rows, _column_styles(ws, width, {}, True, set(range(1, width + 1))))


def table_widths(headers: Sequence[str], rows: list[Sequence[Any]],
            given: dict[str, float]) -> tuple[list[float], list[float]]:
    """(column widths, widths the content would need): given widths, else the widest of the
    header (wrapped on two lines) and the first 200 rows, within 8–40."""
    seen = [min(14.0, text_width(h) / 2 + 2) for h in headers]
    for row in rows[:200]:
        for j, v in enumerate(row[:len(seen)]):
            seen[j] = max(seen[j], text_width(v) + 2)
    return [given.get(h, min(40.0, max(8.0, w))) for h, w in zip(headers, seen)], seen


def _kind(value: Any) -> str:
    """Which of its column's cell styles a value takes, as set_value stores it (see _column_styles)."""
    if value is None or (isinstance(value, str) and not value):
        return "blank"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (dt.date, dt.datetime)):
        return "date"
    if isinstance(value, str):
        return "formula" if value.startswith(FORMULA_STARTS) else "text"
    if isinstance(value, numbers.Number):  # numpy's too
        return "number"
    return "text"


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
    ws.oddFooter.center.text = PAGE_FOOTER


# openpyxl's cell objects and their XML cost ~20 µs a cell; a score workbook
# for 3,000 units has over 1.5 million, and 300 回头看 packages some 430,000.
# So a table's rows are written as XML text, each cell with the style its
# column and kind of value would have had (past 10,000 rows, no borders).

@dataclass
class BulkRows:
    """Rows of a table kept out of openpyxl's cells (see write_table)."""
    ws: Worksheet
    first_row: int
    rows: list[Sequence[Any]]
    styles: list[dict[str, int | None]]  # per column: kind of value -> cellXfs index, as _cell_xml takes


def _column_styles(ws: Worksheet, width: int, formats: dict[int, str], bordered: bool,
                   wrapped: set[int], made: dict[tuple, int | None] | None = None) -> list[dict[str, int | None]]:
    """The workbook's style index (None: no style) for each column and kind of value (see _kind):
    borders, wrapping and number formats. write_table's cells and bulk rows both take them;
    in bulk rows an unstyled blank is no cell at all. `made` keeps the styles made for the
    workbook across calls; columns mostly share their styles, so each is made once."""
    made = {} if made is None else made

    def style_id(value: Any, wrap: bool, number_format: str | None) -> int | None:
        kind = _kind(value)
        key = (kind, bordered, wrap, number_format if kind == "number" else None)
        if key not in made:
            attrs: dict[str, Any] = {"border": BORDER} if bordered else {}
            if wrap:
                attrs["alignment"] = WRAP
            if key[3]:
                attrs["number_format"] = number_format
            made[key] = _style_id(ws, value, **attrs)
        return made[key]

    samples = {"blank": None, "bool": True, "number": 0, "date": dt.date(2000, 1, 1), "text": "x", "formula": "="}
    return [{kind: style_id(v, j in wrapped, formats.get(j)) for kind, v in samples.items()}
            for j in range(1, width + 1)]


def _style_id(ws: Worksheet, value: Any, **attrs: Any) -> int | None:
    """The workbook's index of the style of a cell holding `value` (as set_value stores it), with
    `attrs` (font, fill, border, alignment, protection, number_format); None: no style at all."""
    probe = Cell(ws)  # detached: only registers its style
    set_value(probe, value)
    for attr, v in attrs.items():
        setattr(probe, attr, v)
    return ws.parent._cell_styles.add(probe._style) if probe.has_style else None


def _rows_xml(block: BulkRows, rows_at_once: int = 1000) -> Iterable[str]:
    """<row> elements with the values as set_value would store them, written a column at a time
    (a column holds one kind of value) for `rows_at_once` rows."""
    for top in range(0, len(block.rows), rows_at_once):
        rows = block.rows[top:top + rows_at_once]
        first = block.first_row + top
        columns = list(zip(*rows))
        if len(columns) != len(block.styles) or any(len(row) != len(columns) for row in rows):
            cells = [[_cell_xml(f"{get_column_letter(j)}{r}", v, block.styles[j - 1]) for j, v in enumerate(row, 1)]
                     for r, row in enumerate(rows, first)]  # ragged rows: cell by cell
        else:
            cells = zip(*(_column_xml(get_column_letter(j), values, styles, first)
                          for j, (values, styles) in enumerate(zip(columns, block.styles), 1)))
        for r, row in enumerate(cells, first):
            yield f'<row r="{r}">{"".join(row)}</row>'


def _column_xml(letter: str, values: Sequence[Any], styles: dict[str, int | None], first_row: int) -> list[str]:
    """Each cell's XML of one column from `first_row` down."""
    kinds = set(map(type, values))
    if kinds == {float} and all(map(math.isfinite, values)):
        s = _s(styles.get("number"))
        return [f'<c r="{letter}{r}"{s}><v>{v:.16g}</v></c>' for r, v in enumerate(values, first_row)]
    if kinds == {str}:  # a text's XML after its reference is made once: names, codes and verdicts repeat
        tails = {v: _text_tail(v, styles) for v in set(values) if v}
        return [f'<c r="{letter}{r}"{tails[v]}' if v else _blank_xml(f"{letter}{r}", styles)
                for r, v in enumerate(values, first_row)]
    return [_cell_xml(f"{letter}{r}", v, styles) for r, v in enumerate(values, first_row)]


def _cell_xml(ref: str, value: Any, styles: dict[str, int | None]) -> str:
    """One <c> with the value as set_value would store it. `styles` gives the cell style for each
    kind of value (blank, bool, number, date, text, formula); a blank without one is no cell at
    all, as openpyxl writes it; a date without one is written as its text."""
    kind = type(value)  # text and plain numbers first: isinstance against numbers.* is slow
    if kind is str:
        return _text_xml(ref, value, styles) if value else _blank_xml(ref, styles)
    if kind is float or kind is int:
        return _number_xml(ref, value, styles) if math.isfinite(value) else _blank_xml(ref, styles)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
        value = None  # NaN is a blank cell; openpyxl writes no value either
    if value is None:
        return _blank_xml(ref, styles)
    if isinstance(value, bool):
        return f'<c r="{ref}"{_s(styles.get("bool"))} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, numbers.Number):
        return _number_xml(ref, value, styles)
    if isinstance(value, (dt.date, dt.datetime)) and "date" in styles:
        return f'<c r="{ref}"{_s(styles["date"])}><v>{to_excel(value)}</v></c>'
    return _text_xml(ref, str(value), styles)


def _blank_xml(ref: str, styles: dict[str, int | None]) -> str:
    blank = styles.get("blank")
    return "" if blank is None else f'<c r="{ref}"{_s(blank)}/>'


def _number_xml(ref: str, value: Any, styles: dict[str, int | None]) -> str:
    return f'<c r="{ref}"{_s(styles.get("number"))}><v>{value:.16g}</v></c>'  # openpyxl's precision


def _text_xml(ref: str, value: str, styles: dict[str, int | None]) -> str:
    return f'<c r="{ref}"{_text_tail(value, styles)}'


def _text_tail(value: str, styles: dict[str, int | None]) -> str:
    """A text cell's XML after its reference."""
    text = cell_text(value)
    style = styles.get("formula" if text.startswith(FORMULA_STARTS) else "text")
    return f'{_s(style)} t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'


def _s(style_id: int | None) -> str:
    return f' s="{style_id}"' if style_id else ""


def save_workbook(wb: Workbook, path: str | Path, bulk: Sequence[BulkRows] = ()) -> Path:
    """Save atomically (a temporary file, then rename), splicing in the bulk rows."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    if bulk:
        _splice(tmp, bulk)
    tmp.replace(path)
    return path


def _splice(path: Path, bulk: Sequence[BulkRows]) -> None:
    parts = {block.ws.path.lstrip("/"): block for block in bulk}  # ws.path is set by wb.save
    spliced = path.with_name(path.name + ".bulk")
    # The fastest compression: for 3,000 units' score workbook, 0.6-1.0 s less, and 15.5 MB instead of 12.8.
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(spliced, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for item in src.infolist():
            block = parts.get(item.filename)
            if block is None:
                dst.writestr(item, src.read(item))
                continue
            xml = src.read(item).decode("utf-8").replace("<sheetData/>", "<sheetData></sheetData>", 1)
            head, tail = xml.split("</sheetData>", 1)
            head = re.sub(r'<dimension ref="([^"]+)"', lambda m: f'<dimension ref="{_extended(m[1], block)}"',
                          head, count=1)
            with dst.open(item.filename, "w", force_zip64=True) as out:
                out.write(head.encode("utf-8"))
                rows = _rows_xml(block)
                while piece := "".join(itertools.islice(rows, 1000)):  # a write per row costs a compress call
                    out.write(piece.encode("utf-8"))
                out.write(("</sheetData>" + tail).encode("utf-8"))
    spliced.replace(path)


def _extended(ref: str, block: BulkRows) -> str:
    """The sheet's used range grown to cover the bulk rows."""
    min_col, min_row, max_col, max_row = range_boundaries(ref if ":" in ref else f"{ref}:{ref}")
    max_col = max([max_col, *(len(r) for r in block.rows[:1])])
    max_row = max(max_row, block.first_row + len(block.rows) - 1)
    return f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col)}{max_row}"


# A receipt is made for every file received, so 3,000 of them in a national
# bulk load, and a 回头看 package for each of some 300 named units: openpyxl
# spends some 4 ms saving even an empty workbook, and ~20 µs a cell. The
# styles and fixed package parts are made by openpyxl once; each workbook then
# costs only the XML of its cells.

_NS = ('xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')
_WORKBOOK = "xl/workbook.xml"
_SHEET = re.compile(r"xl/worksheets/sheet\d+\.xml")


@dataclass
class SheetXml:
    """One sheet of a QuickBook workbook, laid out as write_table lays out its sheet."""
    title: str
    cells: list[tuple[int, int, Any, dict[str, int | None]]]  # row, column, value, styles (as _cell_xml takes)
    widths: list[float]
    last_row: int  # the print area is A1 to here
    header_row: int | None = None  # a table's header: frozen, filtered to last_row, printed on every page
    heights: dict[int, float] = field(default_factory=dict)
    merged: list[str] = field(default_factory=list)
    landscape: bool = True
    protected: bool = False  # locked cells stay as they are; filtering, sorting and resizing still work


class QuickBook:
    """Workbooks of `sheets` sheets written as XML text. Cell styles are registered on `ws`
    (see `style`, `table_cells`); the fixed parts, styles.xml among them, are saved by
    openpyxl once, and again only after a new style was registered."""

    def __init__(self, sheets: int):
        self.wb = Workbook()
        for _ in range(sheets - 1):
            self.wb.create_sheet()
        self.ws = self.wb.active
        self.sheets = sheets
        self.made: dict[tuple, int | None] = {}  # table styles made so far (see _column_styles)
        self.header = self.style(**HEADER)
        self._fixed = b""  # a zip of the parts that are the same in every workbook (see to_bytes)
        self._styles_saved = 0

    def style(self, **attrs: Any) -> dict[str, int | None]:
        """Style ids of a cell with `attrs` by kind of value (see _style_id): text that looks like
        a formula carries Excel's quote prefix."""
        plain = _style_id(self.ws, None, **attrs)
        quoted = _style_id(self.ws, "=", **attrs)
        return {"blank": plain, "bool": plain, "number": plain, "text": plain, "formula": quoted}

    def to_bytes(self, sheets: Sequence[SheetXml]) -> bytes:
        assert len(sheets) == self.sheets
        if len(self.wb._cell_styles) != self._styles_saved:
            saved = io.BytesIO()
            self.wb.save(saved)
            # The fixed parts, compressed once: compressing them again (the theme alone is 10 kB) took
            # 1.1 of the 1.7 ms a receipt's workbook cost. Each workbook is appended to a copy.
            fixed = io.BytesIO()
            with zipfile.ZipFile(saved) as src, zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as z:
                for n in src.namelist():
                    if n != _WORKBOOK and not _SHEET.fullmatch(n):
                        z.writestr(n, src.read(n))
            self._fixed = fixed.getvalue()
            self._styles_saved = len(self.wb._cell_styles)
        buf = io.BytesIO(self._fixed)
        with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as z:
            z.writestr(_WORKBOOK, _workbook_xml(sheets))
            for i, sheet in enumerate(sheets, 1):
                z.writestr(f"xl/worksheets/sheet{i}.xml", _sheet_xml(sheet))
        return buf.getvalue()


def table_cells(book: QuickBook, title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                start_row: int = 1, widths: dict[str, float] | None = None,
                number_formats: dict[str, str] | None = None, wrap: Sequence[str] = ()) -> SheetXml:
    """A sheet holding write_table's table, its header row at `start_row`."""
    rows = list(rows)
    col_widths, styles = _table_layout(book.ws, headers, rows, widths, number_formats, wrap, book.made)
    cells = [(start_row, j, h, book.header) for j, h in enumerate(headers, 1)]
    cells += [(r, j, v, styles[j - 1]) for r, row in enumerate(rows, start_row + 1) for j, v in enumerate(row, 1)]
    return SheetXml(title, cells, col_widths, start_row + len(rows), header_row=start_row, heights={start_row: 32})


def column_styles(book: QuickBook, width: int, formats: dict[int, str], *, wrapped: set[int]
                  ) -> list[dict[str, int | None]]:
    """Bordered cell styles of a table's `width` columns (see _column_styles)."""
    return _column_styles(book.ws, width, formats, True, wrapped, book.made)


def _sheet_xml(s: SheetXml) -> str:
    last_col = get_column_letter(len(s.widths))
    rows: dict[int, list[str]] = {}
    for r, c, value, styles in sorted(s.cells, key=itemgetter(0, 1)):
        rows.setdefault(r, []).append(_cell_xml(f"{get_column_letter(c)}{r}", value, styles))
    data = "".join(f'<row r="{r}"' + (f' ht="{s.heights[r]}" customHeight="1"' if r in s.heights else "")
                   + f'>{"".join(xs)}</row>' for r, xs in rows.items())
    cols = "".join(f'<col min="{j}" max="{j}" width="{w:.16g}" customWidth="1"/>'  # openpyxl's precision
                   for j, w in enumerate(s.widths, 1))
    h = s.header_row
    pane = (f'<pane ySplit="{h}" topLeftCell="A{h + 1}" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A1" sqref="A1"/>' if h else
            '<selection activeCell="A1" sqref="A1"/>')
    protection = ('<sheetProtection sheet="1" objects="0" scenarios="0" formatColumns="0" formatRows="0" '
                  'sort="0" autoFilter="0"/>' if s.protected else "")
    merged = (f'<mergeCells count="{len(s.merged)}">' + "".join(f'<mergeCell ref="{m}"/>' for m in s.merged)
              + "</mergeCells>" if s.merged else "")
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS}>'
            '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
            f'<dimension ref="A1:{last_col}{s.last_row}"/><sheetViews><sheetView workbookViewId="0">{pane}'
            '</sheetView></sheetViews>'
            f'<sheetFormatPr baseColWidth="8" defaultRowHeight="15"/><cols>{cols}</cols>'
            f'<sheetData>{data}</sheetData>{protection}'
            + (f'<autoFilter ref="A{h}:{last_col}{s.last_row}"/>' if h else "") + merged
            + '<printOptions horizontalCentered="1"/>'
            '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/>'
            f'<pageSetup orientation="{"landscape" if s.landscape else "portrait"}" paperSize="9" '
            'fitToHeight="0" fitToWidth="1"/>'
            f'<headerFooter><oddFooter>{escape("&C" + PAGE_FOOTER)}</oddFooter></headerFooter></worksheet>')


def _workbook_xml(sheets: Sequence[SheetXml]) -> str:
    names, defined = [], []
    for i, s in enumerate(sheets):
        names.append(f'<sheet name="{escape(s.title)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>')
        quoted = escape("'" + s.title.replace("'", "''") + "'")
        last = f"${get_column_letter(len(s.widths))}${s.last_row}"
        if s.header_row:
            defined += [f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
                        f'{quoted}!$A${s.header_row}:{last}</definedName>',
                        f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">'
                        f'{quoted}!${s.header_row}:${s.header_row}</definedName>']
        defined.append(f'<definedName name="_xlnm.Print_Area" localSheetId="{i}">{quoted}!$A$1:{last}</definedName>')
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook {_NS}><workbookPr/>'
            '<bookViews><workbookView activeTab="0"/></bookViews>'
            f'<sheets>{"".join(names)}</sheets><definedNames>{"".join(defined)}</definedNames>'
            '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>')
