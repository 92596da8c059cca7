"""Realistic demo workbooks (SPEC §3, §5) in every accepted file type.

Used by the tests and by `fazhi demo`: the content follows the schema, so a
new column or item in schema.yaml shows up here without code changes.
"""
from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from expectations.schema import Field, Schema, Sheet, load_schema, read_yaml

INDICATORS_FILE = Path(__file__).resolve().parents[1] / "config" / "indicators.yaml"
PERCENT_FORMAT = "0.0%"
DATE_FORMAT = "yyyy-mm-dd"

# Plausible text for the free-text columns; other text columns get "<name><n>".
TEXT_POOLS = {
    "执法部门": ["市场监督管理局", "生态环境局", "自然资源局", "应急管理局", "交通运输局", "卫生健康局",
             "综合行政执法局"],
    "决策事项名称": ["城区供热价格调整", "老旧小区改造实施方案", "湟水河流域生态保护规划", "义务教育学校布局调整",
               "农村饮水安全巩固提升工程", "城市停车收费标准调整"],
    "文件名称": ["关于进一步优化营商环境的若干措施", "城市生活垃圾分类管理办法", "农村集体经济组织管理办法",
             "政府投资项目管理办法", "行政规范性文件管理规定"],
    "事件描述": ["行政机关未按期履行法院生效判决", "违法强制拆除引发群体性上访"],
    "材料名称": ["会议纪要", "培训通知及签到表", "公开网页截图", "工作方案"],
}


@dataclass(frozen=True)
class Cell:
    """A value with the number format it is shown with (percent, date)."""

    value: Any
    number_format: str | None = None


@lru_cache(maxsize=4)
def indicator_codes(path: Path = INDICATORS_FILE) -> tuple[str, ...]:
    """Indicator codes from the indicator system, or A1..A5 while it is absent."""
    if path.exists():
        raw = read_yaml(path) or {}
        codes = [str(i["code"]) for i in raw.get("indicators", []) if "code" in i]
        if codes:
            return tuple(codes)
    return tuple(f"A{i}" for i in range(1, 6))


def submission_sheets(unit_code: str = "630202", unit_name: str = "乐都区", year: int = 2024,
                      cases: int = 20, seed: int = 0, naming: str = "未命名",
                      naming_year: int | None = None, filled_on: dt.date | None = None,
                      schema: Schema | None = None) -> dict[str, list[list]]:
    """A valid, complete submission as rows per sheet (first row = headers)."""
    schema = schema or load_schema()
    rng = random.Random(f"{unit_code}-{year}-{seed}")
    filled_on = filled_on or dt.date(year + 1, 1, 15)
    cover = {
        "单位名称": unit_name, "单位代码": unit_code, "报送年度": year, "填报人": "王晓燕",
        "联系电话": "0972-8612345", "填报日期": Cell(filled_on, DATE_FORMAT),
        "模板版本": schema.template_version, "示范命名情况": naming, "命名年度": naming_year,
    }
    sheets: dict[str, list[list]] = {}
    for sheet in schema.sheets.values():
        if sheet.layout == "keyvalue":
            sheets[sheet.name] = [list(sheet.headers)] + [[f.name, cover.get(f.name)] for f in sheet.fields]
        elif sheet.layout == "items":
            sheets[sheet.name] = _items_rows(sheet, year, rng)
        else:
            count = cases if sheet.size_driver else rng.randint(3, 8)
            if sheet.extra.get("veto_types"):  # a clean unit has no veto events
                count = 0
            sheets[sheet.name] = [list(sheet.headers)] + _table_rows(sheet, count, year, unit_code, rng)
    return sheets


def satisfaction_sheets(rows: list[tuple[str, str, int, float]], schema: Schema | None = None
                        ) -> dict[str, list[list]]:
    """The survey office's workbook (SPEC §5): one sheet, one row per unit."""
    sheet = (schema or load_schema()).satisfaction
    return {sheet.name: [list(sheet.headers)] + [list(r) for r in rows]}


def _items_rows(sheet: Sheet, year: int, rng: random.Random) -> list[list]:
    values = {f.name: _item_value(f, year, rng) for f in sheet.fields}
    # Lower left-hand sides until every "left ≤ sum(right)" rule holds;
    # values only shrink, so this terminates.
    changed = True
    while changed:
        changed = False
        for rule in sheet.extra.get("not_greater_than", []):
            bound = sum(values[r] for r in rule["right"])
            if values[rule["left"]] > bound:
                values[rule["left"]], changed = bound, True
    column = {"编号": lambda f: f.name, "数据项": lambda f: f.label, "单位": lambda f: f.unit,
              "说明": lambda f: ""}
    value_col = sheet.value_header
    rows = [list(sheet.headers)]
    for f in sheet.fields:
        v = values[f.name]
        if f.type == "percent":
            v = Cell(v / 100, PERCENT_FORMAT)
        elif f.type == "date":
            v = Cell(v, DATE_FORMAT)
        rows.append([v if h == value_col else column.get(h, lambda f: None)(f) for h in sheet.headers])
    return rows


def _item_value(f: Field, year: int, rng: random.Random) -> Any:
    if f.type == "percent":
        return round(rng.uniform(88, 100), 1)
    if f.type == "yesno":
        return "是" if rng.random() < 0.9 else "否"
    if f.type == "date":
        return dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
    return rng.randint(1, 40)


def _table_rows(sheet: Sheet, count: int, year: int, unit_code: str, rng: random.Random) -> list[list]:
    codes = indicator_codes()
    rows = []
    for i in range(1, count + 1):
        record: dict[str, Any] = {}
        for f in sheet.fields:
            record[f.name] = _table_value(f, i, record, year, unit_code, codes, rng)
        rows.append([record[f.name] for f in sheet.fields])
    return rows


def _table_value(f: Field, i: int, record: dict, year: int, unit_code: str, codes: tuple[str, ...],
                 rng: random.Random) -> Any:
    optional = not f.required
    if f.type == "integer":
        return i
    if f.type == "code":
        return f"{unit_code}-{year}-{i:05d}"
    if f.type == "yesno":
        return "是" if rng.random() < 0.85 else "否"
    if f.type == "date":
        if f.not_before:
            start = record[f.not_before]
            return None if rng.random() < 0.15 else start + dt.timedelta(days=rng.randint(0, 40))
        return dt.date(year, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
    if f.type == "amount":
        return None if rng.random() < 0.2 else round(rng.choice([0, 200, 500, 1000, 5000, 20000]) *
                                                     rng.uniform(0.5, 3), 2)
    if f.values_from == "indicators":
        return codes[(i - 1) % len(codes)]
    if f.values:
        return None if optional and rng.random() < 0.5 else rng.choice(f.values)
    if f.unique:
        return f"东政发〔{year}〕{i}号"
    if f.name in TEXT_POOLS:
        return rng.choice(TEXT_POOLS[f.name])
    return None if optional else f"{f.name}{i}"


# --- writers ---------------------------------------------------------------

def write_workbook(sheets: dict[str, list[list]], path: str | Path, fmt: str | None = None) -> Path:
    """Write rows per sheet as .xlsx/.xlsm, .xls (BIFF8) or .ods."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    writer = {"xlsx": _write_xlsx, "xlsm": _write_xlsx, "xls": _write_xls, "ods": _write_ods}[fmt]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer(sheets, path, fmt)
    return path


def _write_xlsx(sheets: dict[str, list[list]], path: Path, fmt: str) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            out = []
            for v in row:
                if isinstance(v, Cell):
                    c = WriteOnlyCell(ws, value=v.value)
                    if v.number_format:
                        c.number_format = v.number_format
                    v = c
                out.append(v)
            ws.append(out)
    buf = io.BytesIO()
    wb.save(buf)
    data = buf.getvalue()
    if fmt == "xlsm":  # without a VBA part openpyxl labels the package .xlsx; Excel needs the macro type
        data = _retype_package(data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                               "application/vnd.ms-excel.sheet.macroEnabled.main+xml")
    path.write_bytes(data)


def _retype_package(data: bytes, old: str, new: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = src.read(info)
            if info.filename == "[Content_Types].xml":
                member = member.replace(old.encode(), new.encode())
            dst.writestr(info, member)
    return out.getvalue()


def _write_xls(sheets: dict[str, list[list]], path: Path, fmt: str) -> None:
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    styles: dict[str, Any] = {}

    def style(number_format: str):
        if number_format not in styles:
            styles[number_format] = xlwt.easyxf(num_format_str=number_format)
        return styles[number_format]

    for name, rows in sheets.items():
        ws = wb.add_sheet(name, cell_overwrite_ok=True)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                number_format = None
                if isinstance(v, Cell):
                    v, number_format = v.value, v.number_format
                if v is None:
                    continue
                if isinstance(v, (dt.date, dt.datetime)) and not number_format:
                    number_format = DATE_FORMAT
                if number_format:
                    ws.write(r, c, v, style(number_format))
                else:
                    ws.write(r, c, v)
    wb.save(str(path))


ODS_MIME = "application/vnd.oasis.opendocument.spreadsheet"
_ODS_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"'
    ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
    ' xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0"'
    ' xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"'
    ' office:version="1.2"><office:automatic-styles>'
    '<number:percentage-style style:name="Npct"><number:number number:decimal-places="1"'
    ' number:min-integer-digits="1"/><number:text>%</number:text></number:percentage-style>'
    '<number:date-style style:name="Ndate"><number:year number:style="long"/><number:text>-</number:text>'
    '<number:month number:style="long"/><number:text>-</number:text><number:day number:style="long"/>'
    '</number:date-style>'
    '<style:style style:name="cpct" style:family="table-cell" style:parent-style-name="Default"'
    ' style:data-style-name="Npct"/>'
    '<style:style style:name="cdate" style:family="table-cell" style:parent-style-name="Default"'
    ' style:data-style-name="Ndate"/>'
    '</office:automatic-styles><office:body><office:spreadsheet>'
)
_ODS_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
    ' manifest:version="1.2">'
    f'<manifest:file-entry manifest:full-path="/" manifest:version="1.2" manifest:media-type="{ODS_MIME}"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    '</manifest:manifest>'
)


def _ods_text(text: str) -> str:
    # ODF collapses white space inside text:p, so spaces and breaks are elements.
    out = escape(text).replace("\n", "<text:line-break/>").replace("\t", "<text:tab/>")
    return out.replace(" ", "<text:s/>")


def _shows_percent(number_format: str) -> bool:
    from assets.reading import shows_percent  # the reader's rule; its imports (pandas …) only when needed

    return shows_percent(number_format)


def _ods_cell(v: Any) -> str:
    number_format = None
    if isinstance(v, Cell):
        v, number_format = v.value, v.number_format
    if v is None or v == "":
        return "<table:table-cell/>"
    if isinstance(v, bool):
        word = "true" if v else "false"
        return (f'<table:table-cell office:value-type="boolean" office:boolean-value="{word}">'
                f'<text:p>{word.upper()}</text:p></table:table-cell>')
    if isinstance(v, (dt.date, dt.datetime)):
        iso = v.isoformat()
        return (f'<table:table-cell table:style-name="cdate" office:value-type="date"'
                f' office:date-value="{iso}"><text:p>{iso[:10]}</text:p></table:table-cell>')
    if isinstance(v, (int, float)):
        if number_format and _shows_percent(number_format):
            return (f'<table:table-cell table:style-name="cpct" office:value-type="percentage"'
                    f' office:value="{v!r}"><text:p>{v * 100:.1f}%</text:p></table:table-cell>')
        return (f'<table:table-cell office:value-type="float" office:value="{v!r}">'
                f'<text:p>{v}</text:p></table:table-cell>')
    return f'<table:table-cell office:value-type="string"><text:p>{_ods_text(str(v))}</text:p></table:table-cell>'


def _write_ods(sheets: dict[str, list[list]], path: Path, fmt: str) -> None:
    parts = [_ODS_HEAD]
    for name, rows in sheets.items():
        parts.append(f"<table:table table:name={quoteattr(name)}>")
        width = max((len(r) for r in rows), default=1)
        parts.append(f'<table:table-column table:number-columns-repeated="{width}"/>')
        for row in rows:
            parts.append("<table:table-row>" + "".join(map(_ods_cell, row)) + "</table:table-row>")
        if not rows:
            parts.append("<table:table-row><table:table-cell/></table:table-row>")
        parts.append("</table:table>")
    parts.append("</office:spreadsheet></office:body></office:document-content>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        # The mimetype must come first and stored, so tools can sniff the type.
        z.writestr(zipfile.ZipInfo("mimetype"), ODS_MIME, compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/manifest.xml", _ODS_MANIFEST)
        z.writestr("content.xml", "".join(parts))
