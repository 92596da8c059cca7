"""GX validation of parsed workbooks: every rule kind fails where SPEC §3/§5 say and passes at its edges."""
from __future__ import annotations

import ast
import datetime as dt
import pickle
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from assets.model import ParsedWorkbook
from assets.registry import PROJECT_DIR, load_registry
from assets.validation import validate_batch
from expectations.schema import load_schema
from expectations.suites import sheet_suites

SCHEMA = load_schema()
REGISTRY = load_registry()
CODES = {"A1", "A2", "C1", "J1"}
YEAR = 2024
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _value(f, i: int):
    """A valid value for a field of the baseline (record i, 0-based)."""
    if f.values_from:
        return "A1"
    if f.values:
        return f.values[0]
    return {"text": f"{f.name}{i + 1}", "code": f"{f.name}{i + 1}", "integer": float(i + 1),
            "count": 10.0, "amount": 100.0, "percent": 95.0, "number": 90.0, "yesno": True,
            "date": dt.date(YEAR, 3, 5)}[f.type]


def baseline(cases: int = 2, unit=("630202", "乐都区")) -> ParsedWorkbook:
    """A valid submission laid out like the template: cover B2.., items C2.., tables from row 2."""
    cover = {"单位名称": unit[1], "单位代码": unit[0], "报送年度": float(YEAR), "填报人": "王晓燕",
             "联系电话": "0972-8612345", "填报日期": dt.date(YEAR + 1, 1, 10), "模板版本": "2024.1",
             "示范命名情况": "未命名", "命名年度": None}
    items = SCHEMA.items_sheet
    p = ParsedWorkbook(file_name="乐都区.xlsx", kind="submission",
                       sheet_names={name: name for name in SCHEMA.sheets},
                       cover=cover,
                       cover_cells={f.name: f"B{i + 2}" for i, f in enumerate(SCHEMA.cover_sheet.fields)},
                       items={f.name: _value(f, 0) for f in items.fields},
                       item_cells={f.name: f"C{i + 2}" for i, f in enumerate(items.fields)})
    p.items["D12"] = dt.date(YEAR, 6, 30)
    for sheet in SCHEMA.table_sheets:
        n = cases if sheet.size_driver else 2
        p.tables[sheet.name] = _table(sheet, n)
        p.columns[sheet.name] = {f.name: LETTERS[j] for j, f in enumerate(sheet.fields)}
    return p


def _table(sheet, n: int) -> pd.DataFrame:
    rows = [{"_row": i + 2, **{f.name: _value(f, i) for f in sheet.fields}} for i in range(n)]
    return pd.DataFrame(rows, columns=["_row", *(f.name for f in sheet.fields)])


def satisfaction(rows) -> ParsedWorkbook:
    sheet = SCHEMA.satisfaction
    frame = pd.DataFrame([{"_row": i + 2, **dict(zip([f.name for f in sheet.fields], r))} for i, r in enumerate(rows)])
    return ParsedWorkbook(file_name="满意度.xlsx", kind="satisfaction", sheet_names={sheet.name: "Sheet1"},
                          tables={sheet.name: frame},
                          columns={sheet.name: {f.name: LETTERS[j] for j, f in enumerate(sheet.fields)}})


def check(*books: ParsedWorkbook) -> dict:
    return validate_batch({f"s{i}": b for i, b in enumerate(books)}, REGISTRY, CODES).problems


def only(p: ParsedWorkbook):
    """The single problem GX finds in one workbook."""
    found = check(p)["s0"]
    assert len(found) == 1, [(x.sheet, x.cell, x.message) for x in found]
    return found[0]


def set_cell(p: ParsedWorkbook, sheet: str, column: str, row: int, value) -> None:
    p.tables[sheet].loc[p.tables[sheet]["_row"] == row, column] = value


def test_baseline_is_valid_and_summarised():
    report = validate_batch({"s0": baseline()}, REGISTRY, CODES)
    assert report.problems == {"s0": []}
    assert report.per_submission["s0"] == dict.fromkeys(SCHEMA.sheets, 0)
    cover = next(c for c in report.checks if c["suite"] == "封面")
    assert cover["success"] and cover["rows"] == 1 and cover["expectations"] == len(cover["results"])
    required = [r for r in cover["results"] if r["rule"] == "required"]
    # 命名年度 is required only for named units: evaluated on no row of an unnamed one.
    assert {r["field"]: r["evaluated"] for r in required}["命名年度"] == 0
    assert all(r["unexpected"] == 0 for c in report.checks for r in c["results"])


# --- 封面 -------------------------------------------------------------------

def test_required_cover_item():
    p = baseline()
    p.cover["报送年度"] = None
    got = only(p)
    assert (got.sheet, got.cell, got.value) == ("封面", "B4", None)
    assert got.message == "必填项为空：请填写报送年度（整数，范围2000–2100）"


def test_year_range_edges():
    p = baseline()
    p.cover["报送年度"] = 1999.0
    got = only(p)
    assert (got.cell, got.value, got.message) == ("B4", 1999.0, "“报送年度”应为整数，范围2000–2100")
    # A year outside the range is not used to judge dates, so no date errors follow.
    for edge in (2000.0, 2100.0):
        p = baseline()
        p.cover["报送年度"] = edge
        assert all(x.sheet != "封面" for x in check(p)["s0"])


def test_phone_pattern():
    for good in ("13812345678", "0972-8612345", "09728612345"):
        p = baseline()
        p.cover["联系电话"] = good
        assert check(p)["s0"] == []
    p = baseline()
    p.cover["联系电话"] = "8612345"
    got = only(p)
    assert (got.cell, got.value) == ("B6", "8612345")
    assert got.message.startswith("“联系电话”填写有误：11位手机号")


def test_template_version_and_enum():
    p = baseline()
    p.cover["模板版本"] = "2023.1"
    got = only(p)
    assert (got.cell, got.value) == ("B8", "2023.1") and "2024.1" in got.message
    p = baseline()
    p.cover["示范命名情况"] = "市级示范"
    got = only(p)
    assert got.cell == "B9" and got.message == "“示范命名情况”应为以下之一：未命名、省级示范、全国示范"


def test_naming_year_required_unless_unnamed_and_not_after_year():
    p = baseline()
    p.cover["示范命名情况"] = "省级示范"
    got = only(p)
    assert (got.cell, got.message) == ("B10", "必填项为空：请填写命名年度（整数，范围2000–2100）")
    p.cover["命名年度"] = float(YEAR)  # the reporting year itself is allowed
    assert check(p)["s0"] == []
    p.cover["命名年度"] = float(YEAR + 1)
    got = only(p)
    assert (got.cell, got.value) == ("B10", 2025.0)
    assert got.message == "命名年度（B10）不应晚于报送年度（B4）"


def test_unit_code_and_name_against_registry():
    p = baseline()
    p.cover["单位代码"] = "632122"  # former code of 民和 …
    p.cover["单位名称"] = "民和县"   # … and its alias: the same unit
    assert check(p)["s0"] == []
    p.cover["单位代码"] = "999999"
    got = only(p)
    assert (got.cell, got.value) == ("B3", "999999") and "不在单位名录中" in got.message
    p = baseline()
    p.cover["单位名称"] = "海东市"
    got = only(p)
    assert (got.cell, got.value) == ("B2", "海东市") and "不在单位名录中" in got.message


def test_unit_code_and_name_of_different_units():
    p = baseline()
    p.cover["单位名称"] = "平安区"
    got = only(p)
    assert (got.sheet, got.cell, got.value) == ("封面", "B3", "630202")
    assert got.message == "单位代码（B3）对应“乐都区”，单位名称（B2）对应“平安区”，不是同一单位：请核对"


# --- 年度数据 -----------------------------------------------------------------

def item_cell(code: str) -> str:
    return f"C{[f.name for f in SCHEMA.items_sheet.fields].index(code) + 2}"


def test_every_item_required_except_optional():
    p = baseline()
    p.items["D45"] = None
    got = only(p)
    assert (got.sheet, got.cell) == ("年度数据", item_cell("D45"))
    assert got.message == "必填项为空：请填写依托对口援建开展业务骨干培训人次（非负整数）"
    p = baseline()
    p.items["D12"] = None  # blank = not published
    assert check(p)["s0"] == []


def test_items_cost_a_few_expectations_whatever_their_number():
    """GX costs per expectation and batch: every item's required and range checks are three
    expectations on the long frame; only the relations between items are one each."""
    suites = {s.layout: s for s in sheet_suites(SCHEMA, frozenset(CODES)) if s.name == SCHEMA.items_sheet.name}
    assert len(suites["item_values"].suite.expectations) == 3
    relations = SCHEMA.items_sheet.extra
    assert len(suites["items"].suite.expectations) == \
        len(relations["not_greater_than"]) + len(relations["date_deadlines"])
    assert len(SCHEMA.items_sheet.fields) > 40


def test_several_item_problems_in_one_file_each_cite_their_cell():
    p = baseline()
    p.items.update(D01=None, D02=-3.0, D04=130.0, D05=None)
    got = check(p)["s0"]
    assert [(x.cell, x.value) for x in got] == [(item_cell("D01"), None), (item_cell("D02"), -3.0),
                                               (item_cell("D04"), 130.0), (item_cell("D05"), None)]
    assert got[0].message.startswith("必填项为空：请填写") and "（是或否）" in got[3].message
    assert got[2].message.startswith(f"“{SCHEMA.items_sheet.field('D04').label}”应为")


@pytest.mark.parametrize("code, bad, good", [("D01", -1.0, 0.0), ("D04", 100.5, 100.0), ("D08", -0.1, 0.0)])
def test_item_ranges(code, bad, good):
    p = baseline()
    p.items[code] = good
    assert check(p)["s0"] == []
    p.items[code] = bad
    got = only(p)
    assert (got.cell, got.value) == (item_cell(code), bad)
    assert got.message.startswith(f"“{SCHEMA.items_sheet.field(code).label}”应为")


def test_item_not_greater_than():
    p = baseline()
    p.items["D19"], p.items["D20"] = 7.0, 7.0
    assert check(p)["s0"] == []
    p.items["D20"] = 8.0
    got = only(p)
    assert (got.cell, got.value) == (item_cell("D20"), 8.0)
    assert got.message == f"调解成功件数（{item_cell('D20')}）不应大于受理矛盾纠纷件数（{item_cell('D19')}）"


def test_item_not_greater_than_sum():
    p = baseline()
    p.items.update(D21=3.0, D22=4.0, D23=7.0, D24=0.0, D25=0.0, D26=0.0)
    assert check(p)["s0"] == []
    p.items["D23"] = 8.0
    got = only(p)
    assert got.cell == item_cell("D23")
    assert got.message == (f"行政复议审结件数（{item_cell('D23')}）不应大于行政复议上年结转件数（{item_cell('D21')}）"
                           f"与行政复议新收件数（{item_cell('D22')}）之和")


def test_chain_d34_d33_d31():
    p = baseline()
    p.items.update(D31=5.0, D32=5.0, D33=6.0, D34=6.0)
    got = only(p)
    assert got.cell == item_cell("D33") and item_cell("D31") in got.message


def test_date_deadline():
    p = baseline()
    p.items["D12"] = dt.date(YEAR + 1, 3, 31)
    assert check(p)["s0"] == []
    p.items["D12"] = dt.date(YEAR + 1, 4, 1)
    got = only(p)
    assert (got.cell, got.value) == (item_cell("D12"), dt.date(2025, 4, 1))
    assert got.message == (f"行政执法事项目录公布日期（{item_cell('D12')}）不应晚于2025-03-31，"
                           f"即报送年度（封面!B4）的次年3月31日")


# --- row tables ----------------------------------------------------------------

def test_table_required_enum_and_optional_blank():
    p = baseline()
    set_cell(p, "重大行政决策", "所属领域", 3, "交通")
    set_cell(p, "执法案件台账", "执法部门", 2, None)
    set_cell(p, "执法案件台账", "结案日期", 3, None)          # pending case
    set_cell(p, "执法案件台账", "复议诉讼结果", 3, None)      # blank = 无
    found = check(p)["s0"]
    assert [(x.sheet, x.cell, x.value) for x in found] == [("重大行政决策", "C3", "交通"),
                                                          ("执法案件台账", "B2", None)]
    assert found[0].message.startswith("“所属领域”应为以下之一：生态环境保护、自然资源")
    assert found[1].message == "必填项为空：请填写执法部门（文字）"


def test_sheet_label_is_the_name_in_the_file():
    p = baseline()
    p.sheet_names["执法案件台账"] = "执法案件台账 "
    set_cell(p, "执法案件台账", "案件类型", 2, "行政许可")
    assert only(p).sheet == "执法案件台账 "


def test_unique_within_one_submission_only():
    p = baseline(cases=3)
    set_cell(p, "执法案件台账", "案件编号", 4, "案件编号1")
    found = check(p)["s0"]
    assert [(x.cell, x.value) for x in found] == [("A2", "案件编号1"), ("A4", "案件编号1")]
    assert "重复" in found[0].message
    # The same numbers in two different submissions are fine.
    assert check(baseline(), baseline()) == {"s0": [], "s1": []}


def test_within_year_edges():
    p = baseline()
    set_cell(p, "重大行政决策", "决策日期", 2, dt.date(YEAR, 1, 1))
    set_cell(p, "重大行政决策", "决策日期", 3, dt.date(YEAR, 12, 31))
    assert check(p)["s0"] == []
    set_cell(p, "重大行政决策", "决策日期", 3, dt.date(YEAR + 1, 1, 1))
    got = only(p)
    assert (got.cell, got.value) == ("J3", dt.date(2025, 1, 1))
    assert got.message == "“决策日期”应在报送年度（2024年）内"


def test_not_before_edges():
    p = baseline()
    set_cell(p, "规范性文件", "报备日期", 2, dt.date(YEAR, 3, 5))   # same day as 制发日期
    set_cell(p, "规范性文件", "报备日期", 3, None)                   # not filed
    assert check(p)["s0"] == []
    set_cell(p, "规范性文件", "报备日期", 3, dt.date(YEAR, 3, 4))
    got = only(p)
    assert (got.sheet, got.cell, got.value) == ("规范性文件", "E3", dt.date(2024, 3, 4))
    assert got.message == "报备日期（E3）不应早于制发日期（D3）"


def test_negative_amount_and_unknown_indicator():
    p = baseline()
    set_cell(p, "执法案件台账", "罚没金额（元）", 2, -5.0)
    set_cell(p, "佐证材料", "指标编号", 3, "Z9")
    found = check(p)["s0"]
    assert [(x.sheet, x.cell, x.value) for x in found] == [("执法案件台账", "K2", -5.0), ("佐证材料", "A3", "Z9")]
    assert found[1].message == "“指标编号”应为指标体系中的编号之一：A1、A2、C1、J1"


def test_empty_tables():
    p = baseline()
    for name in ("执法案件台账", "负面清单"):
        p.tables[name] = p.tables[name].iloc[0:0]
    got = only(p)  # 负面清单 may be empty
    assert (got.sheet, got.cell, got.value) == ("执法案件台账", None, None)
    assert got.message == "“执法案件台账”中没有任何记录：请至少填写一条记录"


def test_missing_sheet_is_left_to_the_reader():
    p = baseline()
    del p.tables["执法案件台账"]
    del p.sheet_names["封面"]
    assert check(p)["s0"] == []


# --- batches, the reader's problems, ordering -----------------------------------

def test_only_the_bad_submission_of_three():
    good1, bad, good2 = baseline(), baseline(unit=("630203", "平安区")), baseline()
    bad.items["D20"] = 11.0
    set_cell(bad, "规范性文件", "文号", 3, None)
    report = validate_batch({"a": good1, "b": bad, "c": good2}, REGISTRY, CODES)
    assert report.problems["a"] == [] and report.problems["c"] == []
    assert [(x.sheet, x.cell) for x in report.problems["b"]] == [("年度数据", item_cell("D20")), ("规范性文件", "B3")]
    assert report.per_submission["b"]["年度数据"] == 1 and report.per_submission["b"]["规范性文件"] == 1
    assert report.per_submission["a"]["年度数据"] == 0


def test_configurations_built_once_per_run_change_nothing(monkeypatch):
    """Each expectation's configuration is built once per validation run: the report, GX's results
    included, is the one GX gives when it builds them on every read, and outside a run they are
    built afresh (a changed expectation shows its change)."""
    import great_expectations.expectations as gxe

    import assets.validation as validation

    def books():
        good, bad = baseline(cases=5), baseline(cases=5, unit=("630203", "平安区"))
        bad.items["D20"] = 11.0
        set_cell(bad, "执法案件台账", "执法领域", 4, "不在清单")
        set_cell(bad, "规范性文件", "文号", 3, None)
        return {"a": good, "b": bad}

    def report():
        r = validate_batch(books(), REGISTRY, CODES)
        results = {k: v.describe_dict() for k, v in r.gx_results.items()}
        return r.problems, r.checks, results

    assert isinstance(gxe.Expectation.__dict__["configuration"], property)
    once = report()
    monkeypatch.setattr(gxe.Expectation, "configuration", validation._BUILD_CONFIGURATION)
    assert report() == once
    assert len(once[0]["b"]) == 3 and once[0]["a"] == []
    monkeypatch.undo()
    expectation = gxe.ExpectColumnValuesToNotBeNull(column="x", meta={"rule": 1})
    assert expectation.configuration.kwargs["column"] == "x"
    expectation.column = "y"
    assert expectation.configuration.kwargs["column"] == "y"


def test_metric_names_are_the_ones_gx_makes(monkeypatch):
    """Metric arguments take a short path to JSON when they are plain values: every metric name is
    the one GX's own converter gives, and so is a batch's report."""
    from great_expectations.core import id_dict

    import assets.validation as validation

    kwargs = id_dict.IDDict(column="执法领域", mostly=0.5, missing=float("nan"), row_condition=None, strict=True,
                            bound=3, value_set={"罚款"}, pair=("a", 1), nested={"k": [1, {"x": None}], 2: "二"},
                            day=dt.date(2024, 1, 1), numpy=np.int64(5), inner=id_dict.IDDict(a=1.5))
    assert id_dict.convert_to_json_serializable is validation._plain_json

    def books():
        bad = baseline(cases=5, unit=("630203", "平安区"))
        set_cell(bad, "执法案件台账", "执法领域", 4, "不在清单")
        return {"a": baseline(cases=5), "b": bad}

    def report():
        r = validate_batch(books(), REGISTRY, CODES)
        return r.problems, r.checks, {k: v.describe_dict() for k, v in r.gx_results.items()}

    short = kwargs.to_id(), report()
    monkeypatch.setattr(id_dict, "convert_to_json_serializable", validation._GX_TO_JSON)
    assert (kwargs.to_id(), report()) == short
    assert len(short[1][0]["b"]) == 1


def test_batches_are_not_fingerprinted():
    """GX would hash every row of each batch frame for a marker nothing reads (a third of the
    time a batch takes); the results say nothing of a fingerprint."""
    report = validate_batch({"a": baseline(cases=5)}, REGISTRY, CODES)
    markers = [r.meta["batch_markers"] for r in report.gx_results.values()]
    assert markers and all("ge_load_time" in m for m in markers)
    assert not any("pandas_data_fingerprint" in m for m in markers)


def test_unreadable_cells_are_not_reported_again():
    p = baseline()
    p.items["D03"] = None
    p.unreadable.add(("年度数据", item_cell("D03")))
    set_cell(p, "执法案件台账", "立案日期", 3, None)
    p.unreadable.add(("执法案件台账", "E3"))
    p.cover["填报日期"] = None
    p.unreadable.add(("封面", "B7"))
    report = validate_batch({"s0": p}, REGISTRY, CODES)
    assert report.problems["s0"] == []
    # GX still saw the blanks; the summary says they were not reported again.
    items = next(c for c in report.checks if c["suite"] == "年度数据")
    assert items["unexpected"] == 1 and items["reported"] == 0


def test_problems_sorted_by_sheet_row_column():
    p = baseline()
    set_cell(p, "执法案件台账", "案件类型", 3, "x")
    set_cell(p, "执法案件台账", "执法领域", 3, "x")
    set_cell(p, "执法案件台账", "案件类型", 2, "x")
    p.items["D02"] = -1.0
    p.cover["填报人"] = None
    found = check(p)["s0"]
    assert [(x.sheet, x.cell) for x in found] == [("封面", "B5"), ("年度数据", item_cell("D02")),
                                                 ("执法案件台账", "D2"), ("执法案件台账", "C3"),
                                                 ("执法案件台账", "D3")]


def test_string_dtype_and_nan_columns():
    """pandas 3 reads text as the str dtype and blanks as NaN; both must work."""
    p = baseline(cases=3)
    t = p.tables["执法案件台账"]
    t["执法部门"] = pd.array(["公安局", None, "交通局"], dtype="str")
    t["罚没金额（元）"] = [float("nan"), 1.0, None]
    found = check(p)["s0"]
    assert [(x.cell, x.value) for x in found] == [("B3", None)]


def test_values_of_the_wrong_type_surface_in_the_checks(caplog):
    """Text in a number column breaks the reader's contract: no crash, a failed check says so."""
    p = baseline(cases=3)
    t = p.tables["执法案件台账"]
    t["罚没金额（元）"] = t["罚没金额（元）"].astype(object)
    set_cell(p, "执法案件台账", "罚没金额（元）", 3, "abc")
    report = validate_batch({"s0": p}, REGISTRY, CODES)
    cases = next(c for c in report.checks if c["suite"] == "执法案件台账")
    broken = [r for r in cases["results"] if "error" in r]
    assert [(r["rule"], r["field"], r["success"]) for r in broken] == [("range", "罚没金额（元）", False)]
    assert not cases["success"] and "could not run" in caplog.text


# --- satisfaction files --------------------------------------------------------

def test_satisfaction_file():
    good = satisfaction([("630202", "乐都区", 2024.0, 100.0), ("632122", "民和县", 2024.0, 0.0),
                         ("630202", "乐都区", 2023.0, 90.0)])
    assert check(good) == {"s0": []}
    bad = satisfaction([("630202", "乐都区", 2024.0, 100.5), ("630203", "乐都区", 2024.0, 80.0),
                        ("630202", "乐都区", 2024.0, 90.0), ("999999", None, 1999.0, 80.0)])
    found = check(bad)["s0"]
    got = [(x.sheet, x.cell, x.value) for x in found]
    assert got == [("Sheet1", "A2", "630202"), ("Sheet1", "D2", 100.5), ("Sheet1", "A3", "630203"),
                   ("Sheet1", "A4", "630202"), ("Sheet1", "A5", "999999"), ("Sheet1", "B5", None),
                   ("Sheet1", "C5", 1999.0)]
    assert "重复" in found[0].message and "不是同一单位" in found[2].message
    empty = satisfaction([])
    empty.tables[SCHEMA.satisfaction.name] = pd.DataFrame(columns=["_row", *(f.name for f in SCHEMA.satisfaction.fields)])
    assert [(x.sheet, x.cell) for x in check(empty)["s0"]] == [("Sheet1", None)]


# --- scale ---------------------------------------------------------------------

def test_batch_of_300_submissions_with_200_cases():
    books = {f"s{i}": baseline(cases=200) for i in range(300)}
    bad = books["s123"]
    set_cell(bad, "执法案件台账", "立案日期", 150, dt.date(YEAR - 1, 12, 31))
    validate_batch({"w": baseline()}, REGISTRY, CODES)  # suites built once per process
    start = time.perf_counter()
    report = validate_batch(books, REGISTRY, CODES)
    print(f"\n300 submissions x 200 cases validated in {time.perf_counter() - start:.2f} s")
    assert {sid for sid, ps in report.problems.items() if ps} == {"s123"}
    assert [(x.cell, x.value) for x in report.problems["s123"]] == [("E150", dt.date(2023, 12, 31))]
    cases = next(c for c in report.checks if c["suite"] == "执法案件台账")
    assert cases["rows"] == 300 * 200


# --- end to end: generated file -> reader -> validation -------------------------

@pytest.mark.parametrize("fmt", ["xlsx", "xls", "ods"])
def test_generated_file_read_and_validated(tmp_path, fmt):
    from assets.demo import indicator_codes, submission_sheets, write_workbook
    from assets.reading import read_workbook

    codes = set(indicator_codes())
    sheets = submission_sheets(cases=30)
    path = write_workbook(sheets, tmp_path / f"乐都区.{fmt}")
    parsed = read_workbook(path, path.name)
    assert parsed.errors == []
    assert validate_batch({"ok": parsed}, REGISTRY, codes).problems == {"ok": []}

    items = sheets["年度数据"]
    value_col = LETTERS[items[0].index("数值")]
    row_of = {r[0]: i + 1 for i, r in enumerate(items)}  # 编号 -> sheet row
    items[row_of["D20"] - 1][items[0].index("数值")] = items[row_of["D19"] - 1][items[0].index("数值")] + 1
    cases = sheets["执法案件台账"]
    opened, closed = cases[0].index("立案日期"), cases[0].index("结案日期")
    cases[3][closed] = cases[3][opened] - dt.timedelta(days=1)  # the third case, sheet row 4
    bad = write_workbook(sheets, tmp_path / f"bad.{fmt}")
    parsed = read_workbook(bad, bad.name)
    found = validate_batch({"bad": parsed}, REGISTRY, codes).problems["bad"]
    assert [(x.sheet, x.cell) for x in found] == [("年度数据", f"{value_col}{row_of['D20']}"),
                                                 ("执法案件台账", f"{LETTERS[closed]}4")]
    assert found[1].value == cases[3][closed]
    assert found[1].message == f"结案日期（{LETTERS[closed]}4）不应早于立案日期（{LETTERS[opened]}4）"


def test_generated_satisfaction_file(tmp_path):
    from assets.demo import satisfaction_sheets, write_workbook
    from assets.reading import read_workbook

    rows = [("630202", "乐都区", 2024, 91.5), ("632126", "互助县", 2024, 88.0), ("630202", "乐都区", 2024, 90.0)]
    path = write_workbook(satisfaction_sheets(rows), tmp_path / "2024年满意度测评结果.xlsx")
    parsed = read_workbook(path, path.name)
    assert parsed.kind == "satisfaction" and parsed.errors == []
    found = validate_batch({"sat": parsed}, REGISTRY, CODES).problems["sat"]
    assert [(x.cell, x.value) for x in found] == [("A2", "630202"), ("A4", "630202")]
    assert found[0].message == "单位代码与测评年度重复：每个单位只应填写一行，请删除重复行"


def test_great_expectations_is_imported_without_scipy_stats_and_altair_until_they_are_used():
    """A fresh process (as each worker's fork server) imports the validation without loading
    scipy.stats or altair; code that does use them still gets the real modules."""
    code = ("import sys, assets.validation\n"
            "print('scipy.stats._stats_py' in sys.modules, 'altair.vegalite' in sys.modules)\n"
            "from scipy import stats\n"
            "print(stats.entropy([0.5, 0.5], [0.5, 0.5]), 'scipy.stats._stats_py' in sys.modules)\n"
            "import altair as alt\n"
            "print(type(alt.Chart()).__name__, 'altair.vegalite' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "0.0", "True", "Chart", "True"]


def test_workers_check_without_sqlalchemy_and_find_the_same_problems(tmp_path):
    """The workers' fork server marks SQLAlchemy absent (assets/fork_server.py); Great
    Expectations still checks every kind of rule there as it does here."""
    p = baseline(cases=3)
    p.cover["联系电话"] = "12345"
    p.items["D01"] = -1.0
    set_cell(p, "重大行政决策", "所属领域", 3, "交通")
    set_cell(p, "规范性文件", "报备日期", 3, dt.date(YEAR, 3, 4))
    set_cell(p, "执法案件台账", "案件编号", 4, "案件编号1")
    set_cell(p, "执法案件台账", "立案日期", 3, dt.date(YEAR - 1, 12, 31))
    batch = {"s0": p, "s1": baseline()}
    here = {k: [(x.sheet, x.cell, x.message) for x in v] for k, v in check(*batch.values()).items()}
    assert len(here["s0"]) == 7 and here["s1"] == []
    (tmp_path / "batch.pkl").write_bytes(pickle.dumps(list(batch.values())))
    code = ("import assets.fork_server, pickle, sys\n"
            "from assets.registry import load_registry\n"
            "from assets.validation import validate_batch\n"
            f"books = pickle.loads(open({str(tmp_path / 'batch.pkl')!r}, 'rb').read())\n"
            f"found = validate_batch({{f's{{i}}': b for i, b in enumerate(books)}}, load_registry(), {CODES!r}).problems\n"
            "print(repr({k: [(x.sheet, x.cell, x.message) for x in v] for k, v in found.items()}))\n"
            "print(sys.modules['sqlalchemy'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found, modules = out.stdout.strip().splitlines()
    assert ast.literal_eval(found) == here
    assert modules == "None"
