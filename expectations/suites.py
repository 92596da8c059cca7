"""Great Expectations suites built from the sheet schema (SPEC §3, §5).

One suite per sheet runs on one frame that holds every submission of a batch,
so GX's fixed cost per run is paid once per sheet, not once per file; 年度数据's
items are checked in long form (one row per item), so that cost is not paid
once per item either. Every
expectation's `meta["rule"]` indexes a `Rule`: the cell to cite and the words
that tell the clerk what to fix. Checks that compare a value with something
computed (the reporting year, a registry lookup, a sum of items) run on
derived columns, declared here as `Derived` and filled in by the caller.
"""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from expectations.on_first_use import load_on_first_use  # isort: skip

for _name in ("scipy.stats", "altair"):  # before Great Expectations imports them (see there)
    load_on_first_use(_name)

import great_expectations as gx  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.expectations.row_conditions import Column, Condition  # noqa: E402

from expectations.schema import Field, Schema, Sheet  # noqa: E402

SUBMISSION = "submission"  # submission id, on every frame
ROW = "_row"               # sheet row of a table record
INDEX = "_i"               # frame position: how GX names a failing row
YEAR = "_year"             # the submission's reporting year
YEAR_ITEM = "报送年度"      # the cover item that within_year and date_deadlines refer to
RECORDS = "记录数"          # the suite checking that required tables are not empty
# Columns of the 年度数据 frame in long form (one row per submission and item): each item's own
# bounds and duty sit beside its value, so three expectations check every item, not three per item
# (GX costs some 10 ms per expectation and batch, however few the rows).
NUMBER, LOW, HIGH, REQUIRED = "_number", "_low", "_high", "_required"

E = gx.expectations
logging.getLogger("great_expectations").setLevel(logging.WARNING)


class Where(Protocol):
    """One failing record as the clerk sees it; given to `Rule.message`."""

    sheet: str                 # sheet name in the file
    cell: str | None           # the cited cell

    def cell_of(self, name: str) -> str | None: ...   # another field of the same record
    def value(self, column: str) -> Any: ...          # a frame value of the record
    def cover_cell(self, name: str) -> str | None: ...  # "封面!B4"


@dataclass(frozen=True)
class Rule:
    """What one expectation enforces, in the clerk's terms."""

    id: str                    # short id for check metadata (required, range, enum, ...)
    sheet: str                 # schema sheet the problem belongs to
    field: str | None          # schema field whose cell is cited; None: the whole sheet
    message: Callable[[Where], str]


@dataclass(frozen=True)
class Derived:
    """A computed column a suite compares against.

    kind: year_of (year of a date), unit_by_code / unit_by_name (registry name
    of the unit, None when not found), total (sum of items, NaN if any is
    blank), deadline (date `params` = (years_after, month, day) after YEAR),
    records (number of records of the table named in `sources`), number (the
    source as a float when it is a number, else NaN), per_item (the value
    `params` gives for the item named in the source column).
    """

    column: str
    kind: str
    sources: tuple[str, ...]
    params: tuple = ()


@dataclass
class SheetSuite:
    name: str                  # schema sheet name, or RECORDS
    layout: str                # keyvalue | items | item_values | table | records
    suite: gx.ExpectationSuite
    rules: list[Rule]
    derived: list[Derived]
    satisfaction: bool = False  # runs on satisfaction files, not submissions

    @property
    def title(self) -> str:
        """How Data Docs name it: two suites check 年度数据, its items' values and their relations."""
        return {"item_values": f"{self.name}（各数据项）", "items": f"{self.name}（勾稽关系）"}.get(self.layout, self.name)


class _Builder:
    def __init__(self, sheet: str):
        self.sheet = sheet
        self.expectations: list = []
        self.rules: list[Rule] = []
        self.derived: dict[str, Derived] = {}

    def add(self, rule: Rule, expectation: type, **kwargs) -> None:
        kwargs["meta"] = {"rule": len(self.rules), "id": rule.id}
        self.expectations.append(expectation(**kwargs))
        self.rules.append(rule)

    def derive(self, d: Derived) -> str:
        self.derived.setdefault(d.column, d)
        return d.column


def title(f: Field) -> str:
    """The name a clerk knows a field by (a data item's 数据项 text)."""
    return f.label or f.name


def _text(text: str) -> Callable[[Where], str]:
    return lambda w: text


def _invalid(f: Field) -> str:
    return f"“{title(f)}”填写有误：{f.expect}" if f.expect else f"“{title(f)}”应为{f.expectation()}"


def _bounds(f: Field) -> tuple[float | None, float | None]:
    if f.type in ("count", "amount"):
        return (0 if f.min is None else f.min), f.max
    if f.type == "percent":
        return 0, 100
    return f.min, f.max


def _unless(sheet: Sheet, required_unless: dict | None) -> Condition | None:
    """Rows where the field is required: a valid answer other than the exempting one.

    A blank or invalid answer is reported on its own cell; guessing it would
    only add a second error.
    """
    if not required_unless:
        return None
    cond = None
    for name, value in required_unless.items():
        others = [v for v in sheet.field(name).values if v != value]
        c = Column(name).is_in(others) if others else Column(name).is_not_null() & (Column(name) != value)
        cond = c if cond is None else cond & c
    return cond


def _without_groups(pattern: str) -> str:
    # GX matches with str.contains, which warns about capturing groups.
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", pattern)


def _natural(code: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", code)]


def _required_text(f: Field) -> str:
    return f"必填项为空：请填写{title(f)}（{f.expectation()}）"


def _in_long_form(f: Field) -> set[str]:
    """The checks of a 年度数据 item made on the long frame (see NUMBER…)."""
    return {"range"} | ({"required"} if f.required and not f.required_unless else set())


def _field_checks(b: _Builder, sheet: Sheet, f: Field, indicator_codes: frozenset[str],
                  skip: set[str] = frozenset()) -> None:
    name, t = f.name, title(f)

    def rule(rid: str, message: Callable[[Where], str]) -> Rule:
        return Rule(rid, sheet.name, name, message)
    if f.required and "required" not in skip:
        b.add(rule("required", _text(_required_text(f))),
              E.ExpectColumnValuesToNotBeNull, column=name, row_condition=_unless(sheet, f.required_unless))
    lo, hi = _bounds(f)
    if (lo is not None or hi is not None) and "range" not in skip:
        b.add(rule("range", _text(_invalid(f))), E.ExpectColumnValuesToBeBetween,
              column=name, min_value=lo, max_value=hi)
    if f.values:
        b.add(rule("enum", _text(_invalid(f))), E.ExpectColumnValuesToBeInSet,
              column=name, value_set=list(f.values))
    if f.values_from == "indicators":
        codes = sorted(indicator_codes, key=_natural)
        b.add(rule("indicator", _text(f"“{t}”应为指标体系中的编号之一：{'、'.join(codes)}")),
              E.ExpectColumnValuesToBeInSet, column=name, value_set=codes)
    if f.pattern:
        b.add(rule("pattern", _text(_invalid(f))), E.ExpectColumnValuesToMatchRegex,
              column=name, regex=_without_groups(f.pattern))
    if f.unique:
        b.add(rule("unique", _text(f"“{t}”重复：同一工作表中每个{t}只能出现一次，请核对")),
              E.ExpectCompoundColumnsToBeUnique, column_list=[SUBMISSION, name],
              ignore_row_if="any_value_is_missing")
    if f.within_year:
        year = b.derive(Derived(f"{name}__year", "year_of", (name,)))
        b.add(rule("within_year", lambda w: f"“{t}”应在{YEAR_ITEM}（{w.value(YEAR):.0f}年）内"),
              E.ExpectColumnPairValuesToBeEqual, column_A=year, column_B=YEAR,
              ignore_row_if="either_value_is_missing")
    if f.not_before:
        before = title(sheet.field(f.not_before))
        b.add(rule("not_before", lambda w: f"{t}（{w.cell}）不应早于{before}（{w.cell_of(f.not_before)}）"),
              E.ExpectColumnPairValuesAToBeGreaterThanB, column_A=name, column_B=f.not_before,
              or_equal=True, ignore_row_if="either_value_is_missing")
    if f.not_after:
        after = title(sheet.field(f.not_after))
        b.add(rule("not_after", lambda w: f"{t}（{w.cell}）不应晚于{after}（{w.cell_of(f.not_after)}）"),
              E.ExpectColumnPairValuesAToBeGreaterThanB, column_A=f.not_after, column_B=name,
              or_equal=True, ignore_row_if="either_value_is_missing")
    if f.rule in ("unit_code", "unit_name"):
        unit = b.derive(Derived(f"{name}__unit", f"unit_by_{f.rule[5:]}", (name,)))
        what = "代码" if f.rule == "unit_code" else "名称或简称"
        b.add(rule(f.rule, _text(f"“{t}”不在单位名录中：请填写名录中的单位{what}")),
              E.ExpectColumnValuesToNotBeNull, column=unit, row_condition=Column(name).is_not_null())


def _unit_checks(b: _Builder, sheet: Sheet) -> None:
    """Code and name must name the same unit; a unit's row may not repeat."""
    by = {f.rule: f for f in sheet.fields if f.rule in ("unit_code", "unit_name")}
    code, name = by.get("unit_code"), by.get("unit_name")
    if code and name:
        cu, nu = f"{code.name}__unit", f"{name.name}__unit"
        b.add(Rule("unit_match", sheet.name, code.name,
                   lambda w: f"{title(code)}（{w.cell}）对应“{w.value(cu)}”，{title(name)}"
                             f"（{w.cell_of(name.name)}）对应“{w.value(nu)}”，不是同一单位：请核对"),
              E.ExpectColumnPairValuesToBeEqual, column_A=cu, column_B=nu,
              ignore_row_if="either_value_is_missing")
    if code and sheet.layout == "table":
        # A list of units (satisfaction results): one row per unit and year.
        years = [f for f in sheet.fields if f.type == "integer"]
        key = "与".join(title(f) for f in [code, *years])
        b.add(Rule("duplicate", sheet.name, code.name, _text(f"{key}重复：每个单位只应填写一行，请删除重复行")),
              E.ExpectCompoundColumnsToBeUnique,
              column_list=[SUBMISSION, f"{code.name}__unit", *(f.name for f in years)],
              ignore_row_if="any_value_is_missing")


def _item_values(b: _Builder, sheet: Sheet) -> None:
    """Required and range checks of every item at once, on the long frame."""
    key, value = sheet.key_header, sheet.value_header

    def per_item(column: str, of: Callable[[Field], Any]) -> str:
        return b.derive(Derived(column, "per_item", (key,), tuple((f.name, of(f)) for f in sheet.fields)))

    def item(w: Where) -> Field:
        return sheet.field(w.value(key))
    required = per_item(REQUIRED, lambda f: "required" in _in_long_form(f))
    low, high = per_item(LOW, lambda f: _bounds(f)[0]), per_item(HIGH, lambda f: _bounds(f)[1])
    number = b.derive(Derived(NUMBER, "number", (value,)))
    b.add(Rule("required", sheet.name, value, lambda w: _required_text(item(w))),
          E.ExpectColumnValuesToNotBeNull, column=value, row_condition=Column(required) == True)  # noqa: E712
    for column_a, column_b in ((number, low), (high, number)):
        b.add(Rule("range", sheet.name, value, lambda w: _invalid(item(w))),
              E.ExpectColumnPairValuesAToBeGreaterThanB, column_A=column_a, column_B=column_b,
              or_equal=True, ignore_row_if="either_value_is_missing")


def _item_relations(b: _Builder, sheet: Sheet) -> None:
    for r in sheet.extra.get("not_greater_than", []):
        left, right = sheet.field(r["left"]), [sheet.field(c) for c in r["right"]]
        column = right[0].name if len(right) == 1 else b.derive(
            Derived("+".join(f.name for f in right), "total", tuple(f.name for f in right)))

        def message(w: Where, left=left, right=right) -> str:
            parts = "与".join(f"{title(f)}（{w.cell_of(f.name)}）" for f in right)
            return f"{title(left)}（{w.cell}）不应大于{parts}{'之和' if len(right) > 1 else ''}"
        b.add(Rule("not_greater_than", sheet.name, left.name, message),
              E.ExpectColumnPairValuesAToBeGreaterThanB, column_A=column, column_B=left.name,
              or_equal=True, ignore_row_if="either_value_is_missing")
    for d in sheet.extra.get("date_deadlines", []):
        item, after = sheet.field(d["item"]), (d["years_after"], d["month"], d["day"])
        column = b.derive(Derived(f"{item.name}__deadline", "deadline", (item.name,), after))
        when = "次年" if after[0] == 1 else f"后第{after[0]}年"

        def message(w: Where, item=item, column=column, when=when, after=after) -> str:
            return (f"{title(item)}（{w.cell}）不应晚于{w.value(column)}，"
                    f"即{YEAR_ITEM}（{w.cover_cell(YEAR_ITEM)}）的{when}{after[1]}月{after[2]}日")
        b.add(Rule("deadline", sheet.name, item.name, message),
              E.ExpectColumnPairValuesAToBeGreaterThanB, column_A=column, column_B=item.name,
              or_equal=True, ignore_row_if="either_value_is_missing")


def _records(b: _Builder, sheets: list[Sheet]) -> None:
    for sheet in sheets:
        b.derive(Derived(sheet.name, "records", (sheet.name,)))
        b.add(Rule("not_empty", sheet.name, None, lambda w: f"“{w.sheet}”中没有任何记录：请至少填写一条记录"),
              E.ExpectColumnValuesToBeBetween, column=sheet.name, min_value=1)


@functools.cache
def batch_definition():
    """The one data asset every suite runs on, each run handing it its frame. An asset per suite cost
    0.15 s per process: GX's ephemeral context writes its whole configuration out as YAML
    each time an asset or batch definition is added."""
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx.data_sources.add_pandas("fazhi").add_dataframe_asset("报送").add_batch_definition_whole_dataframe("整批")


_CACHE: dict[tuple, list[SheetSuite]] = {}


def sheet_suites(schema: Schema, indicator_codes: frozenset[str]) -> list[SheetSuite]:
    """The suites for a schema, built once per process (GX objects are slow to make)."""
    key = (id(schema), indicator_codes)
    if key not in _CACHE:
        _CACHE[key] = _build(schema, indicator_codes, len(_CACHE))
    return _CACHE[key]


def _build(schema: Schema, indicator_codes: frozenset[str], n: int) -> list[SheetSuite]:
    plans: list[tuple[_Builder, str, bool]] = []
    for sheet in [*schema.sheets.values(), schema.satisfaction]:
        items = sheet.layout == "items"
        if items:
            values = _Builder(sheet.name)
            _item_values(values, sheet)
            plans.append((values, "item_values", False))
        b = _Builder(sheet.name)
        for f in sheet.fields:
            _field_checks(b, sheet, f, indicator_codes, _in_long_form(f) if items else set())
        _unit_checks(b, sheet)
        _item_relations(b, sheet)
        plans.append((b, sheet.layout, sheet is schema.satisfaction))
    required = [s for s in schema.table_sheets if not s.may_be_empty]
    for group, sat in ((required, False), ([schema.satisfaction], True)):
        b = _Builder(RECORDS)
        _records(b, group)
        plans.append((b, "records", sat))
    suites = []
    for i, (b, layout, sat) in enumerate(plans):
        name = f"{b.sheet}#{n}.{i}"
        suites.append(SheetSuite(b.sheet, layout, gx.ExpectationSuite(name=name, expectations=b.expectations),
                                 b.rules, list(b.derived.values()), sat))
    return suites
