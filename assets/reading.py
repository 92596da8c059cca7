"""Read a received workbook into typed values, each keeping its cell (SPEC §3).

Values come from python-calamine. Number formats, which calamine drops, are
read only for the small sheets that hold percent items. Only type problems are
reported here; required cells, enums, ranges and cross-field rules are the
validation suites' job, so blanks stay None and enum text stays text.
"""
from __future__ import annotations

import datetime as dt
import functools
import html
import io
import logging
import re
import struct
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import python_calamine as pc
from defusedxml.ElementTree import iterparse
from isal.isal_zlib import crc32, decompressobj
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import coordinate_to_tuple

from assets.model import ParsedWorkbook, Problem, display
from assets.safety import inspect_container, whole_file
from expectations.schema import Field, Schema, Sheet, load_schema

log = logging.getLogger(__name__)

HEADER_SEARCH_ROWS = 10
NUMERIC_TYPES = {"integer", "count", "amount", "percent", "number"}
WHOLE_TYPES = {"integer", "count"}
TEXT_TYPES = {"text", "enum", "code"}  # read as str (or blank)
YESNO = {"是": True, "否": False, "Y": True, "N": False, "YES": True, "NO": False,
         "√": True, "×": False, "✓": True, "✗": False, "✔": True, "✘": False,
         "TRUE": True, "FALSE": False, "1": True, "0": False}
EXCEL_EPOCH = dt.date(1899, 12, 30)
MAX_SERIAL = 2958465  # 9999-12-31
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(\s+\d{1,2}:\d{2}(:\d{2})?)?")
_WHITESPACE = re.compile(r"\s+")


def read_workbook(path: Path, file_name: str, schema: Schema | None = None,
                  kind: str | None = None) -> ParsedWorkbook:
    """Never raises for a bad file: whatever is wrong becomes a Problem."""
    schema = schema or load_schema()
    if kind is None:
        kind = "satisfaction" if schema.satisfaction.extra["name_marker"] in file_name else "submission"
    problem = inspect_container(Path(path), file_name, schema.limits, schema.file_types)
    if problem:
        return ParsedWorkbook(file_name=file_name, kind=kind, problems=[problem])
    parsed = ParsedWorkbook(file_name=file_name, kind=kind)
    try:
        with _Reader(Path(path), file_name, schema, parsed) as reader:
            reader.read()
    except pc.PasswordError:
        return ParsedWorkbook(file_name=file_name, kind=kind, problems=[whole_file("encrypted")])
    except Exception:  # a parser choking on hostile bytes is the file's fault, not ours
        log.warning("cannot parse %s", file_name, exc_info=True)
        return ParsedWorkbook(file_name=file_name, kind=kind, problems=[whole_file("corrupt")])
    return parsed


# --- values ----------------------------------------------------------------

def _key(text: Any) -> str:
    """Header / item key: width-folded, no white space at all, upper case."""
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", str(text))).upper()


def _number_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-").strip()
    return text.replace(",", "") if _THOUSANDS.fullmatch(text) else text


def convert(raw: Any, field: Field, percent_cell: bool = False) -> tuple[Any, bool]:
    """(value, readable) for one cell under the field's type; blank is (None, True)."""
    if raw is None or raw == "" or (isinstance(raw, str) and not raw.strip()):
        return None, True
    kind = field.type
    if kind in NUMERIC_TYPES:
        value = _to_number(raw, kind == "percent")
        if value is None:
            return None, False
        if percent_cell and kind == "percent" and not isinstance(raw, str):
            value = round(value * 100, 10)  # 0.958 shown as 95.8% means 95.8
        if kind in WHOLE_TYPES and not value.is_integer():
            return None, False
        return value, True
    if kind == "yesno":
        if isinstance(raw, bool):
            return raw, True
        if isinstance(raw, (int, float)):
            return (bool(raw), True) if raw in (0, 1) else (None, False)
        if isinstance(raw, str):
            value = YESNO.get(_key(raw))
            return value, value is not None
        return None, False
    if kind == "date":
        value = _to_date(raw)
        return value, value is not None
    if kind == "code":
        return _key_text(raw), True
    return (raw.strip() if isinstance(raw, str) else display(raw)), True


def _key_text(raw: Any) -> str:
    text = raw if isinstance(raw, str) else display(raw)
    return unicodedata.normalize("NFKC", text).strip()


def _to_number(raw: Any, percent: bool) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    if not isinstance(raw, str):
        return None
    text = _number_text(raw)
    if percent and text.endswith("%"):
        text = text[:-1].strip()
    return float(text) if _NUMBER.fullmatch(text) else None


def _to_date(raw: Any) -> dt.date | None:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = unicodedata.normalize("NFKC", raw).strip()
        m = _DATE.fullmatch(text)
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
        raw = float(text) if _NUMBER.fullmatch(text) else None
    if isinstance(raw, (int, float)) and 1 <= raw <= MAX_SERIAL:
        return EXCEL_EPOCH + dt.timedelta(days=int(raw))
    return None


def convert_column(values: Sequence, field: Field, percent: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised `convert` of one column (calamine's values): (values as object array, unreadable mask).

    Text, and numbers or dates with blanks only beside them, take a fast path; otherwise each
    distinct value is converted once.
    """
    n, kind = len(values), field.type
    none = np.zeros(n, dtype=bool)  # no cell unreadable, or none blank
    types = set(map(type, values))
    numeric_or_date = kind in NUMERIC_TYPES or kind == "date"
    solid = {type(v) for v in values if v != ""} if str in types and numeric_or_date else types
    if not solid:
        return np.full(n, None, dtype=object), none
    if solid == {str} and kind == "text":
        return np.array([v.strip() or None for v in values], dtype=object), none
    if solid == {str} and kind == "code":  # mostly distinct values (case numbers)
        return np.array([_key_text(v) or None for v in values], dtype=object), none
    if solid <= {float, int} and kind in NUMERIC_TYPES and (percent is None or not percent.any()):
        cells = np.array(values, dtype=object)
        blank = cells == "" if str in types else none
        numbers = np.where(blank, np.nan, cells).astype(float)
        bad = (np.mod(numbers, 1) != 0) & ~blank if kind in WHOLE_TYPES else none
        return np.where(blank | bad, None, numbers).astype(object), bad
    if solid == {dt.date} and kind == "date":
        cells = np.array(values, dtype=object)
        return (np.where(cells == "", None, cells) if str in types else cells), none
    if bool in types and kind != "yesno":
        # True == 1 for hashing: keep booleans apart from numbers before looking values up.
        values = [str(v).upper() if isinstance(v, bool) else v for v in values]
    pairs = {v: convert(v, field) if v == v else (None, True) for v in set(values)}  # NaN: blank
    out = np.array([pairs[v][0] for v in values], dtype=object)
    bad = none if all(ok for _, ok in pairs.values()) else np.array([not pairs[v][1] for v in values], dtype=bool)
    if percent is not None and percent.any():
        bad = bad.copy()
        for i in np.flatnonzero(percent):
            out[i], ok = convert(values[i], field, percent_cell=True)
            bad[i] = not ok
    return out, bad


_LITERAL = re.compile(r'"[^"]*"|\\.')  # "text" and \x in a number format are shown as they are


def shows_percent(number_format: str) -> bool:
    """Whether a number format shows numbers times 100 with a % sign. A % in quotes or after a
    backslash (0.0"%", 0.0\\%) is only text: such a cell holds the number it shows."""
    return "%" in _LITERAL.sub("", number_format)


# --- the workbook ----------------------------------------------------------

@dataclass
class _Grid:
    """A sheet's used range; `top`/`left` are its 0-based offsets in the sheet."""

    name: str
    rows: list[list]
    top: int
    left: int

    def a1(self, r: int, c: int) -> str:
        return _a1(self.top + r, self.left + c)


def _a1(row: int, col: int) -> str:
    """A1 reference of a 0-based (row, column) of the sheet."""
    return f"{get_column_letter(col + 1)}{row + 1}"


class _Reader:
    def __init__(self, path: Path, file_name: str, schema: Schema, parsed: ParsedWorkbook):
        self.path, self.schema, self.parsed = path, schema, parsed
        self.fmt = Path(file_name).suffix.lower().lstrip(".")
        self.book = pc.CalamineWorkbook.from_path(str(path))
        self.formats = _Formats(path, self.fmt)

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.book.close()
        self.formats.close()

    def read(self) -> None:
        names = self.book.sheet_names
        if self.parsed.kind == "satisfaction":
            sheet = self.schema.satisfaction
            actual = next((n for n in names if self.book.get_sheet_by_name(n).height), None)
            if actual is None:
                self._error(None, None, None, "文件中没有任何数据。请填写满意度测评结果后重新报送。")
                return
            self._read_sheet(sheet, actual)
            return
        for name in names:
            if name not in self.schema.sheets and name not in self.schema.template_sheets:
                self._warn(name, None, None, f"工作表“{name}”不在模板中，已忽略")
        for sheet in self.schema.sheets.values():
            if sheet.name in names:
                self._read_sheet(sheet, sheet.name)
            else:
                self._error(sheet.name, None, None, f"缺少工作表“{sheet.name}”。请使用模板{self.schema.template_version}"
                            "版，不要删除或重命名工作表。")

    def _read_sheet(self, sheet: Sheet, actual: str) -> None:
        self.parsed.sheet_names[sheet.name] = actual
        calamine_sheet = self.book.get_sheet_by_name(actual)
        limit = self.schema.limits["max_rows_per_sheet"]
        if calamine_sheet.height > limit:
            self._error(actual, None, calamine_sheet.height,
                        f"工作表“{actual}”有{calamine_sheet.height}行，超过上限{limit}行。"
                        "请删除多余的空行或无关数据后重新报送。")
            return
        top, left = calamine_sheet.start or (0, 0)
        grid = _Grid(actual, calamine_sheet.to_python(), top, left)
        percent = (self.formats.percent_cells(actual)
                   if any(f.type == "percent" for f in sheet.fields) and not sheet.size_driver else set())
        if sheet.layout == "table":
            self._read_table(sheet, grid, percent)
        else:
            self._read_keyed(sheet, grid, percent)
        for ref, error in self.formats.cells_without_value(actual):
            if error:
                self._error(actual, ref, error, f"单元格显示错误值“{error}”。请修正公式或改为正确的数值后重新报送。")
            else:
                self._error(actual, ref, None, "该单元格是公式，但文件中没有保存计算结果。请在Excel/WPS中打开文件、"
                            "确认公式已计算后保存（或把公式改为数值）再报送。")
            self.parsed.unreadable.add((sheet.name, ref))

    def _header(self, grid: _Grid, wanted: tuple[str, ...]) -> tuple[int, dict[str, int]]:
        """The row (among the first few) holding most expected headers, and their columns."""
        keys = {_key(h): h for h in wanted}
        best_row, best = 0, {}
        for r, row in enumerate(grid.rows[:HEADER_SEARCH_ROWS]):
            found: dict[str, int] = {}
            for c, v in enumerate(row):
                h = keys.get(_key(v)) if isinstance(v, str) else None
                if h and h not in found:
                    found[h] = c
            if len(found) > len(best):
                best_row, best = r, found
        for h in wanted:
            if h not in best:
                self._error(grid.name, None, None, f"工作表“{grid.name}”缺少表头“{h}”。请使用模板中的表头，"
                            "不要修改、删除表头或插入合并单元格。")
        return best_row, best

    def _read_keyed(self, sheet: Sheet, grid: _Grid, percent: set[tuple[int, int]]) -> None:
        """封面 and 年度数据: one row per item, found by its key (项目 / 编号)."""
        header, cols = self._header(grid, (sheet.key_header, sheet.value_header))
        if len(cols) < 2:
            return
        is_cover = sheet.layout == "keyvalue"
        values, cells = (self.parsed.cover, self.parsed.cover_cells) if is_cover else \
            (self.parsed.items, self.parsed.item_cells)
        fields = {_key(f.name): f for f in sheet.fields}
        kc, vc = cols[sheet.key_header], cols[sheet.value_header]
        for r in range(header + 1, len(grid.rows)):
            row = grid.rows[r]
            if row[kc] == "":
                continue
            f = fields.get(_key(display(row[kc])))
            if f is None:
                if not is_cover:
                    self._warn(grid.name, grid.a1(r, kc), row[kc], f"编号“{display(row[kc])}”不在模板中，该行已忽略")
                continue
            if f.name in cells:
                self._error(grid.name, grid.a1(r, kc), row[kc], f"“{f.name}”重复出现（另见{cells[f.name]}）。"
                            "请只保留一行。")
                continue
            cell = grid.a1(r, vc)
            cells[f.name] = cell
            value, ok = convert(row[vc], f, (grid.top + r, grid.left + vc) in percent)
            values[f.name] = value
            if not ok:
                self._unreadable(sheet, grid, cell, row[vc], f)
        for f in sheet.fields:
            if f.name not in cells:
                what = "项目" if is_cover else "数据项"
                label = f.name if is_cover else f"{f.name}（{f.label}）"
                self._error(grid.name, None, None, f"工作表“{grid.name}”缺少{what}“{label}”所在的行。"
                            "请使用模板，不要删除行。")

    def _read_table(self, sheet: Sheet, grid: _Grid, percent: set[tuple[int, int]]) -> None:
        header, cols = self._header(grid, sheet.headers)
        key = sheet.name
        self.parsed.columns[key] = {h: get_column_letter(grid.left + c + 1) for h, c in cols.items()}
        columns, kept = _filled_columns(grid.rows[header + 1:], len(grid.rows[0]) if grid.rows else 0)
        rows = grid.top + header + 2 + kept
        frame: dict[str, Any] = {}
        for f in sheet.fields:
            c = cols.get(f.name)
            if c is None:
                frame[f.name] = np.full(len(rows), None, dtype=object)
                continue
            pct = None
            if percent:
                pct = np.array([(r - 1, grid.left + c) in percent for r in rows], dtype=bool)
            out, bad = convert_column(columns[c], f, pct)
            if f.default is not None:
                out[(out == None) & ~bad] = f.default  # noqa: E711 (element-wise)
            for i in np.flatnonzero(bad):
                self._unreadable(sheet, grid, f"{get_column_letter(grid.left + c + 1)}{rows[i]}", columns[c][i], f)
            frame[f.name] = _typed(out, f)
        frame["_row"] = rows.astype("int64")
        self.parsed.tables.put(key, frame)

    def _unreadable(self, sheet: Sheet, grid: _Grid, cell: str, raw: Any, f: Field) -> None:
        label = f"{f.name}（{f.label}）" if f.label else f.name
        shown = str(raw).upper() if isinstance(raw, bool) else display(raw)
        self._error(grid.name, cell, raw, f"无法识别“{shown}”：{label}应填写{f.expectation()}。")
        self.parsed.unreadable.add((sheet.name, cell))

    def _error(self, sheet, cell, value, message) -> None:
        self.parsed.problems.append(Problem(sheet, cell, value, message))

    def _warn(self, sheet, cell, value, message) -> None:
        self.parsed.problems.append(Problem(sheet, cell, value, message, severity="warning"))


def _filled_columns(body: list[list], width: int) -> tuple[list[tuple], np.ndarray]:
    """The columns of `body` without its blank rows, and the positions of the rows kept. A row is
    blank only where every column is, so one column without a blank (the case number's) settles it
    without a look at the rows. Columns as tuples: zip builds them faster than numpy a grid."""
    columns = list(zip(*body))
    kept = np.arange(len(body))
    if columns and all("" in col for col in columns):
        filled = ~np.logical_and.reduce([np.array(col, dtype=object) == "" for col in columns])
        if not filled.all():
            kept = kept[filled]
            columns = list(zip(*(body[i] for i in kept)))
    return columns or [()] * width, kept


def _typed(values: np.ndarray, f: Field) -> np.ndarray | pa.Array:
    """Numbers as float64 (NaN when blank); text as Arrow text, as pandas keeps it, unless all blank;
    everything else stays Python objects."""
    if f.type in NUMERIC_TYPES:
        return np.where(values == None, np.nan, values).astype("float64")  # noqa: E711
    if f.type in TEXT_TYPES and (values != None).any():  # noqa: E711
        return pa.array(values, type=pa.large_string())
    return values


# --- what calamine does not tell: number formats and formulas -------------

class _Formats:
    """Percent-formatted cells, error cells and formulas without a cached value, per sheet:
    calamine reads a percent as its fraction and the others as blank.

    Coordinates are 0-based (row, column) in the sheet; error and formula cells are A1.
    """

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self._ods: dict[str, _Marks] = {}

    @functools.cached_property
    def xlsx(self) -> _XlsxParts:
        return _XlsxParts(self.path)

    @functools.cached_property
    def _xls(self) -> dict[str, _Marks]:
        return _xls_marks(self.path)  # xlrd reads the whole file anyway: every sheet at once

    @functools.cached_property
    def _ods_content(self) -> bytes:
        with open(self.path, "rb") as fh, zipfile.ZipFile(fh) as z:
            return _member(fh, z, "content.xml")

    def close(self) -> None:
        if "xlsx" in self.__dict__:  # opened
            self.xlsx.close()

    def percent_cells(self, sheet: str) -> set[tuple[int, int]]:
        if self.fmt in ("xlsx", "xlsm"):
            return self.xlsx.percent_cells(sheet)
        return self._sheet_marks(sheet).percent

    def cells_without_value(self, sheet: str) -> list[tuple[str, str | None]]:
        """(A1, error text, or None for a formula without a value)."""
        if self.fmt in ("xlsx", "xlsm"):
            return self.xlsx.cells_without_value(sheet)
        if self.fmt == "ods" and b'value-type="error"' not in self._ods_content:  # spares the XML parse
            return []
        return self._sheet_marks(sheet).errors

    def _sheet_marks(self, sheet: str) -> _Marks:
        if self.fmt == "xls":
            return self._xls.get(sheet) or _Marks()
        if self.fmt == "ods":
            if sheet not in self._ods:
                self._ods[sheet] = _ods_marks(self._ods_content, sheet)
            return self._ods[sheet]
        return _Marks()


class _Marks:
    def __init__(self):
        self.percent: set[tuple[int, int]] = set()
        self.errors: list[tuple[str, str | None]] = []


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _XlsxParts:
    """Just enough of the OOXML package: sheet paths and percent styles.

    openpyxl would parse the shared strings of the whole case table first; this
    reads styles.xml and the one sheet only.
    """

    _PERCENT_BUILTIN = {9, 10}
    _CELL_TAG = re.compile(rb"<(?:\w+:)?c\s([^>]*)>")
    # attribute values quoted either way, as XML allows
    _STYLE = re.compile(rb"""\bs=["'](\d+)["']""")
    _REF = re.compile(rb"""\br=["']([A-Z]+\d+)["']""")
    _NUM_FMT = re.compile(rb"""<(?:\w+:)?numFmt\s((?:[^>"']|"[^"]*"|'[^']*')*)>""")  # its attributes
    _ATTR = re.compile(rb"""(\w+)=(?:"([^"]*)"|'([^']*)')""")
    _CELL_XFS = re.compile(rb"<(?:\w+:)?cellXfs\b[^>]*>(.*?)</(?:\w+:)?cellXfs>", re.S)
    _XF = re.compile(rb"""<(?:\w+:)?xf\b(?:[^>]*?\bnumFmtId=["'](\d+)["'])?[^>]*>""")

    def __init__(self, path: Path):
        self.file = open(path, "rb")
        self.zip = zipfile.ZipFile(self.file)
        self._names = set(self.zip.namelist())
        self._parts: dict[str, bytes] = {}
        rels = {}
        for _, el in iterparse(io.BytesIO(self.part("xl/_rels/workbook.xml.rels"))):
            if _local(el.tag) == "Relationship":
                target = el.get("Target", "")
                rels[el.get("Id")] = target.lstrip("/") if target.startswith("/") else "xl/" + target
        self.sheets = {}
        for _, el in iterparse(io.BytesIO(self.part("xl/workbook.xml"))):
            if _local(el.tag) == "sheet":
                rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
                self.sheets[el.get("name")] = rels.get(rid)
        self._percent_styles: set[str] | None = None

    def close(self) -> None:
        self.zip.close()
        self.file.close()  # a ZipFile given an open file leaves it open

    def part(self, name: str) -> bytes:
        """A part's bytes, read once."""
        if name not in self._parts:
            self._parts[name] = _member(self.file, self.zip, name)
        return self._parts[name]

    @property
    def percent_styles(self) -> set[str]:
        """Indexes (as in a cell's s="...") of the cell styles showing numbers as percent."""
        if self._percent_styles is None:
            xml = self.part("xl/styles.xml") if "xl/styles.xml" in self._names else b""
            formats = {}
            for tag in self._NUM_FMT.findall(xml):
                attrs = {name: double or single for name, double, single in self._ATTR.findall(tag)}
                if attrs.get(b"numFmtId", b"").isdigit():
                    formats[int(attrs[b"numFmtId"])] = html.unescape(attrs.get(b"formatCode", b"").decode("utf-8"))
            xfs = self._CELL_XFS.search(xml)
            ids = [int(m[1] or 0) for m in self._XF.finditer(xfs[1])] if xfs else []
            self._percent_styles = {str(i) for i, fid in enumerate(ids)
                                    if fid in self._PERCENT_BUILTIN or shows_percent(formats.get(fid, ""))}
        return self._percent_styles

    def _cells(self, sheet: str):
        """(A1, element) for every <c> of the sheet."""
        part = self.sheets.get(sheet)
        if part is None or part not in self._names:
            return
        for _, el in iterparse(io.BytesIO(self.part(part))):
            if _local(el.tag) == "c":
                yield el.get("r"), el
                el.clear()

    def percent_cells(self, sheet: str) -> set[tuple[int, int]]:
        styles = self.percent_styles
        part = self.sheets.get(sheet)
        if not styles or part not in self._names:
            return set()
        # A regex over the start tags is much faster than an XML parse of the sheet.
        out = set()
        for attrs in self._CELL_TAG.findall(self.part(part)):
            style, ref = self._STYLE.search(attrs), self._REF.search(attrs)
            if style and ref and style[1].decode() in styles:
                r, c = coordinate_to_tuple(ref[1].decode())
                out.add((r - 1, c - 1))
        return out

    def cells_without_value(self, sheet: str) -> list[tuple[str, str | None]]:
        """(A1, error text or None) of error cells and of formulas without a cached
        value: calamine reads both as blank, which must not pass silently."""
        part = self.sheets.get(sheet)
        if part is None or part not in self._names:
            return []
        if not _may_hold_formulas_or_errors(self.part(part)):  # spares the XML parse
            return []
        out = []
        for ref, el in self._cells(sheet):
            children = {_local(ch.tag): ch.text for ch in el}
            if el.get("t") == "e":
                out.append((ref, children.get("v") or "#N/A"))
            elif "f" in children and not children.get("v"):
                out.append((ref, None))
        return out


def _member(fh, z: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes from `z`, the zip open on `fh`. Deflated members are inflated by ISA-L,
    which zipfile cannot use (a 1,000-case sheet: 0.93 ms with zlib, 0.19 ms with ISA-L), and
    checked as zipfile checks them (size and CRC)."""
    info = z.getinfo(name)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return z.read(info)
    fh.seek(info.header_offset)
    local = fh.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header: {info.filename}")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    fh.seek(info.header_offset + 30 + name_length + extra_length)
    data = decompressobj(-15).decompress(fh.read(info.compress_size), info.file_size + 1)
    if len(data) != info.file_size or crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"bad member: {info.filename}")
    return data


_F, _E, _LT, _COLON = b"fe<:"
_QUOTES = tuple(b"\"'")  # XML quotes an attribute either way


def _may_hold_formulas_or_errors(xml: bytes) -> bool:
    """Whether the sheet XML has a formula element (<f>, <x:f …>) or an error cell (t="e", t='e').

    One vectorised pass over the bytes (a case table's XML is megabytes); a
    rare false hit costs only the exact look.
    """
    a = np.frombuffer(xml, np.uint8)
    before_f = a[:-1][a[1:] == _F]
    if np.isin(before_f, (_LT, _COLON)).any():
        return True
    e = np.flatnonzero(a[1:-1] == _E) + 1
    return bool((np.isin(a[e - 1], _QUOTES) & (a[e + 1] == a[e - 1])).any())


def _xls_marks(path: Path) -> dict[str, _Marks]:
    import xlrd

    book = xlrd.open_workbook(str(path), formatting_info=True, on_demand=True)
    try:
        percent_xfs = {i for i, xf in enumerate(book.xf_list)
                       if shows_percent(getattr(book.format_map.get(xf.format_key), "format_str", ""))}
        out = {}
        for name in book.sheet_names():
            ws, marks = book.sheet_by_name(name), _Marks()
            for r in range(ws.nrows):
                for c, kind in enumerate(ws.row_types(r)):
                    if kind == xlrd.XL_CELL_NUMBER and ws.cell_xf_index(r, c) in percent_xfs:
                        marks.percent.add((r, c))
                    elif kind == xlrd.XL_CELL_ERROR:
                        marks.errors.append((_a1(r, c), xlrd.error_text_from_code.get(ws.cell_value(r, c), "#N/A")))
            out[name] = marks
            book.unload_sheet(name)
        return out
    finally:
        book.release_resources()


def _ods_marks(content: bytes, sheet: str) -> _Marks:
    """One streaming pass over content.xml up to the end of `sheet`'s table. A cell's row and
    column count repeated rows and cells; an error cell is one typed "error" by LibreOffice
    (its office type says string)."""
    marks = _Marks()
    with io.BytesIO(content) as fh:
        in_table, r, c, rows_rep, row_percent, row_errors = False, 0, 0, 1, [], []
        for event, el in iterparse(fh, events=("start", "end")):
            tag = _local(el.tag)
            if tag == "table":
                if event == "start":
                    in_table = _attr(el, "name") == sheet
                elif in_table:
                    break
                continue
            if not in_table:
                if event == "end" and tag == "table-row":
                    el.clear()
                continue
            if tag == "table-row":
                if event == "start":
                    c, row_percent, row_errors, rows_rep = 0, [], [], int(_attr(el, "number-rows-repeated") or 1)
                else:
                    # columns first: a blank row repeated a million times costs nothing
                    marks.percent.update((r + k, col) for col in row_percent for k in range(rows_rep))
                    marks.errors.extend((_a1(r + k, col), text) for col, text in row_errors for k in range(rows_rep))
                    r += rows_rep
                    el.clear()
            elif tag in ("table-cell", "covered-table-cell") and event == "end":
                repeat = int(_attr(el, "number-columns-repeated") or 1)
                types = {v for k, v in el.attrib.items() if _local(k) == "value-type"}
                if "percentage" in types:
                    row_percent.extend(range(c, c + repeat))
                elif "error" in types:
                    text = "".join(el.itertext()).strip() or "#N/A"
                    row_errors.extend((col, text) for col in range(c, c + repeat))
                c += repeat
    return marks


def _attr(el, name: str) -> str | None:
    return next((v for k, v in el.attrib.items() if _local(k) == name), None)
