"""The blank submission template (SPEC §3, §10), generated from the sheet schema and the registry.

Everything a clerk sees — sheets, headers, items, dropdowns, input rules and the
instructions — comes from `expectations/schema.yaml`, the unit registry and the
indicator rows the caller passes, so a schema edit is a template edit.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill, Protection
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from assets.registry import Registry, load_registry
from assets.xlsx import DATE_FORMAT, TITLE_FONT, WRAP, setup_print, write_table
from expectations.schema import Field, Schema, Sheet, load_schema

# the instructions sheet, and the hidden sheet holding the long dropdown lists
INSTRUCTIONS_SHEET, LISTS_SHEET = load_schema().template_sheets
TABLE_ROWS = 20000        # rows of a table sheet that carry input rules
TEXT_FORMAT = "@"         # keeps codes such as 630202 or 0012 as typed
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")
UNLOCKED = Protection(locked=False)
BOLD = Font(bold=True)
DATE_RANGE = ("DATE(2000,1,1)", "DATE(2100,12,31)")
INDICATOR_KEYS = ("code", "category", "name", "points", "rule")
# 年度数据 columns other than 编号/数值 that repeat a Field attribute.
ITEM_ATTRIBUTES = {"数据项": "label", "单位": "unit"}
TYPE_WIDTHS = {"text": 28, "code": 16, "date": 13, "yesno": 10, "enum": 18, "integer": 8,
               "count": 12, "amount": 14, "percent": 10, "number": 12}
PERCENT_HINT = "，如95%填95，不要填0.95（0.95会被视为0.95%）"
NUMBER_BOUNDS = {"count": (0, None), "amount": (0, None), "percent": (0, 100)}

GUIDE = [
    "一、填写方法",
    "1. 请使用每年下发的最新模板，不要修改工作表名称、表头、“编号”和“项目”列；表头已锁定（工作表保护无密码）。",
    "2. 在“{cover}”和“{items}”的黄色单元格中填写；各表格类工作表每行填写一条记录，可插入行、排序、筛选，空行会被忽略。",
    "3. 带下拉箭头的单元格请从下拉列表中选择（单位名称、单位代码、是/否及各类选项）；选中单元格时会提示填写要求。",
    "4. 百分比填0–100之间的数字，如95%填95；不要填0.95（0.95会被视为0.95%）。数值栏只填数字，不要带单位。",
    "5. 日期按2024-03-05格式填写；“次”“件”“人次”填不小于0的整数，没有请填0。",
    "6. 填好后保存为{file_types}文件报送，几秒钟内会收到回执；如被退回，请按回执列出的工作表、单元格逐条修改后重新报送整个文件。",
]


def write_template(path: str | Path, schema: Schema | None = None, registry: Registry | None = None,
                   instructions: Sequence[Mapping | Sequence] | None = None) -> Path:
    """Write the blank template; `instructions` are indicator rows (code, category, name, points, rule)."""
    schema = schema or load_schema()
    registry = registry or load_registry()
    indicators = [[r[k] for k in INDICATOR_KEYS] if isinstance(r, Mapping) else list(r)
                  for r in instructions or []]
    wb = Workbook()
    guide = wb.active
    guide.title = INSTRUCTIONS_SHEET
    sheets = {name: wb.create_sheet(name) for name in schema.sheets}
    lists = _Lists(wb.create_sheet(LISTS_SHEET), registry, [str(r[0]) for r in indicators])

    for sheet in schema.sheets.values():
        ws = sheets[sheet.name]
        {"keyvalue": _cover, "items": _items, "table": _table}[sheet.layout](ws, sheet, schema, lists)
        _protect(ws, table=sheet.layout == "table")
    _guide(guide, schema, indicators, bool(lists.indicator_codes))
    _protect(guide)
    lists.ws.sheet_state = "hidden"
    _protect(lists.ws)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# ------------------------------------------------------------ what to enter

def requirement(f: Field, indicators_listed: bool = True) -> str:
    """What a cell must hold, in Chinese: one text for dropdown prompts and the instructions."""
    if f.rule == "unit_name":
        text = "单位名录中的单位名称（从下拉列表选择，简称亦可）"
    elif f.rule == "unit_code":
        text = "单位名录中的单位代码（从下拉列表选择，曾用代码亦可）"
    elif f.values_from == "indicators":
        text = "评分指标编号" + ("（从下拉列表选择，见“填报说明”评分指标）" if indicators_listed else "")
    else:
        text = f.expectation()
        if f.type == "percent":
            text += PERCENT_HINT
        elif f.type == "count" and f.required:
            text += "，没有请填0"
    if f.unique:
        text += "，同一表内不得重复"
    if f.within_year:
        text += "，须在报送年度内"
    if f.not_before:
        text += f"，不得早于{f.not_before}"
    if f.not_after:
        text += f"，不得晚于{f.not_after}"
    return text


def obligation(f: Field) -> str:
    if f.required_unless:
        (key, value), = f.required_unless.items()
        return f"{key}为{value}时可空，否则必填"
    if f.required:
        return "必填"
    if f.blank_means:
        return f"可空（空表示{f.blank_means}）"
    if f.default is not None:
        return f"可空（空按{f.default}计）"
    return "可空"


# ------------------------------------------------------------ sheets

class _Lists:
    """The hidden sheet holding dropdown sources, one column per distinct list."""

    def __init__(self, ws: Worksheet, registry: Registry, indicator_codes: list[str]):
        self.ws = ws
        self.indicator_codes = indicator_codes
        self._columns = 0
        self._refs: dict[tuple[str, ...], str] = {}
        self.unit_names = self.ref("单位名称", [u.name for u in registry.units])
        self.unit_codes = self.ref("单位代码", [u.code for u in registry.units])

    def ref(self, header: str, values: Sequence[str]) -> str | None:
        key = tuple(values)
        if not key:
            return None
        if key not in self._refs:
            self._columns += 1
            col = self._columns
            letter = get_column_letter(col)
            self.ws.cell(row=1, column=col, value=header)
            for i, v in enumerate(key, 2):
                c = self.ws.cell(row=i, column=col, value=v)
                c.number_format = TEXT_FORMAT
            self._refs[key] = f"{quote_sheetname(LISTS_SHEET)}!${letter}$2:${letter}${len(key) + 1}"
        return self._refs[key]


def _validation(f: Field, lists: _Lists) -> DataValidation | None:
    """The Excel input rule for a field; unit dropdowns only warn, since aliases are accepted too."""
    strict = True
    if f.rule in ("unit_name", "unit_code"):
        source, strict = (lists.unit_names if f.rule == "unit_name" else lists.unit_codes), False
        if source is None:
            return None
        dv = DataValidation(type="list", formula1=source)
    elif f.values_from == "indicators":
        source = lists.ref("指标编号", lists.indicator_codes)
        if source is None:
            return None
        dv = DataValidation(type="list", formula1=source)
    elif f.type == "yesno":
        dv = DataValidation(type="list", formula1='"是,否"')
    elif f.values:
        dv = DataValidation(type="list", formula1=lists.ref(f.name, f.values))
    elif f.type == "date":
        dv = DataValidation(type="date", operator="between", formula1=DATE_RANGE[0], formula2=DATE_RANGE[1])
    elif f.type in ("integer", "count", "amount", "percent", "number"):
        low, high = NUMBER_BOUNDS.get(f.type, (f.min, f.max))
        low = -1e15 if low is None else low
        kind = "whole" if f.type in ("integer", "count") else "decimal"
        if high is None:
            dv = DataValidation(type=kind, operator="greaterThanOrEqual", formula1=f"{low:g}")
        else:
            dv = DataValidation(type=kind, operator="between", formula1=f"{low:g}", formula2=f"{high:g}")
    else:
        return None
    wanted = requirement(f)
    dv.allow_blank = True
    dv.showInputMessage = dv.showErrorMessage = True
    dv.promptTitle = "填写要求"
    dv.prompt = wanted[:255]
    dv.errorTitle = "填写内容不符合要求"
    dv.error = f"应填：{wanted}"[:220]
    dv.errorStyle = "stop" if strict else "warning"
    return dv


class _Rules:
    """Collects input rules of one sheet so identical rules share one validation object."""

    def __init__(self, ws: Worksheet, lists: _Lists):
        self.ws, self.lists = ws, lists
        self._by_key: dict[tuple, DataValidation] = {}

    def add(self, f: Field, ref: str) -> None:
        dv = _validation(f, self.lists)
        if dv is None:
            return
        key = (dv.type, dv.operator, dv.formula1, dv.formula2, dv.prompt, dv.errorStyle)
        if key not in self._by_key:
            self._by_key[key] = dv
            self.ws.add_data_validation(dv)
        self._by_key[key].add(ref)


def _input_cell(cell, f: Field) -> None:
    cell.protection = UNLOCKED
    cell.fill = INPUT_FILL
    cell.number_format = {"date": DATE_FORMAT, "code": TEXT_FORMAT}.get(f.type, "General")


def _cover(ws: Worksheet, sheet: Sheet, schema: Schema, lists: _Lists) -> None:
    # The version item is the one whose only allowed value is the template version: prefilled, locked.
    fixed = {f.name: f.values[0] for f in sheet.fields if f.values == (schema.template_version,)}
    write_table(ws, [sheet.key_header, sheet.value_header],
                [(f.name, fixed.get(f.name)) for f in sheet.fields],
                widths={sheet.key_header: 16, sheet.value_header: 40}, landscape=False)
    rules = _Rules(ws, lists)
    for row, f in enumerate(sheet.fields, 2):
        if f.name not in fixed:
            _input_cell(ws.cell(row=row, column=2), f)
            rules.add(f, f"B{row}")


def _items(ws: Worksheet, sheet: Sheet, schema: Schema, lists: _Lists) -> None:
    headers = list(sheet.headers)
    code_header, value_header = sheet.extra["code_header"], sheet.value_header

    def cell_text(f: Field, header: str) -> str | None:
        if header == code_header:
            return f.name
        if header in ITEM_ATTRIBUTES:
            return getattr(f, ITEM_ATTRIBUTES[header])
        return None if header == value_header else requirement(f)

    write_table(ws, headers, [[cell_text(f, h) for h in headers] for f in sheet.fields],
                widths={code_header: 8, "数据项": 48, value_header: 14, "单位": 8})
    value_col = get_column_letter(headers.index(value_header) + 1)
    notes = [get_column_letter(j) for j, h in enumerate(headers, 1)
             if h not in (code_header, value_header) and h not in ITEM_ATTRIBUTES]
    rules = _Rules(ws, lists)
    for row, f in enumerate(sheet.fields, 2):
        _input_cell(ws[f"{value_col}{row}"], f)
        rules.add(f, f"{value_col}{row}")
        for col in notes:  # prefilled hint the clerk may replace with a note
            ws[f"{col}{row}"].protection = UNLOCKED
    for col in notes:
        ws.column_dimensions[col].width = 40


def _table(ws: Worksheet, sheet: Sheet, schema: Schema, lists: _Lists) -> None:
    headers = list(sheet.headers)
    widths = {f.name: max(TYPE_WIDTHS.get(f.type, 12), 2.2 * len(f.name) + 4) for f in sheet.fields}
    write_table(ws, headers, [], widths=widths)
    last = TABLE_ROWS + 1
    rules = _Rules(ws, lists)
    for j, f in enumerate(sheet.fields, 1):
        letter = get_column_letter(j)
        # Column styles reach cells that do not exist yet, so 20,000 rows cost nothing.
        dim = ws.column_dimensions[letter]
        dim.protection = UNLOCKED
        dim.number_format = {"date": DATE_FORMAT, "code": TEXT_FORMAT}.get(f.type, "General")
        rules.add(f, f"{letter}2:{letter}{last}")
    ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{last}"
    ws.print_area = None  # print what was filled, not 20,000 empty rows


def _protect(ws: Worksheet, table: bool = False) -> None:
    """Protection without password: headers stay intact, nobody is locked out."""
    p = ws.protection
    p.sheet = True
    p.formatColumns = p.formatRows = False  # False = allowed
    if table:
        p.sort = p.autoFilter = p.insertRows = p.deleteRows = False


# ------------------------------------------------------------ instructions

def _guide(ws: Worksheet, schema: Schema, indicators: list[list], listed: bool) -> None:
    ws["A1"] = f"海东市法治政府建设示范创建 数据填报模板（模板版本 {schema.template_version}）"
    ws["A1"].font = TITLE_FONT
    row = 3
    names = {"file_types": "、".join(f".{t}" for t in schema.file_types),
             "cover": schema.cover_sheet.name, "items": schema.items_sheet.name}
    for line in GUIDE:
        ws.cell(row=row, column=1, value=line.format(**names)).font = BOLD if line.startswith("一") else Font()
        row += 1
    row += 1
    ws.cell(row=row, column=1, value="二、各工作表填写要求").font = BOLD
    first = row + 1
    end = write_table(ws, ["工作表", "项目", "填写要求", "是否必填"], _sheet_rules(schema, listed),
                      start_row=row + 1)
    if indicators:
        row = end + 2
        ws.cell(row=row, column=1, value="三、评分指标（供对照填报，分数由系统计算）").font = BOLD
        end = write_table(ws, ["编号", "一级指标", "三级指标", "分值", "评分规则"], indicators,
                          start_row=row + 1)
    for letter, width in zip("ABCDE", (16, 36, 70, 22, 50)):
        ws.column_dimensions[letter].width = width
    for cells in ws.iter_rows(min_row=first, max_row=end, min_col=2, max_col=5):
        for c in cells:
            c.alignment = WRAP
    # One sheet, several tables: no frozen pane or filter belongs to just one of them.
    ws.freeze_panes = None
    ws.auto_filter.ref = None
    ws.print_title_rows = None
    setup_print(ws, f"A1:E{end}", landscape=False)


def _sheet_rules(schema: Schema, listed: bool) -> list[tuple[str, str, str, str]]:
    rows = []
    for sheet in schema.sheets.values():
        if sheet.may_be_empty:
            rows.append((sheet.name, "（整表）", "没有记录时保留表头、不填内容即可", "可空表"))
        if sheet.layout == "table":
            rows.append((sheet.name, "（整表）", "每行一条记录，完全空白的行会被忽略", "—"))
        for f in sheet.fields:
            name = f"{f.name} {f.label}" if f.label else f.name
            rows.append((sheet.name, name, requirement(f, listed), obligation(f)))
        rows += [(sheet.name, "数据关系", text, "—") for text in _relations(sheet)]
    return rows


def _relations(sheet: Sheet) -> list[str]:
    """Cross-field rules of a sheet (schema `extra`), worded for clerks."""
    labels = {f.name: f"{f.name}（{f.label}）" if f.label else f.name for f in sheet.fields}
    out = [f"{labels[r['left']]}不得大于" + " + ".join(labels[x] for x in r["right"])
           for r in sheet.extra.get("not_greater_than", [])]
    out += [f"{labels[d['item']]}如填写，不得晚于（报送年度+{d['years_after']}）年{d['month']}月{d['day']}日"
            for d in sheet.extra.get("date_deadlines", [])]
    if "key_areas" in sheet.extra:
        out.append("重点领域：" + "、".join(sheet.extra["key_areas"]))
    if "veto_types" in sheet.extra:
        out.append("一票否决事项类型：" + "、".join(sheet.extra["veto_types"]))
    return out
