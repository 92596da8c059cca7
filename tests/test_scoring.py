"""Scoring rules, year results and the indicator config, checked against SPEC §4 by hand."""
from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest
import yaml

from assets.indicators import DEFAULT_INDICATORS_FILE, IndicatorConfigError, load_indicators
from assets.model import ParsedWorkbook, Problem, SubmissionRecord
from assets.registry import load_registry
from assets.scoring import (compute_year_results, coverage_counts, exact_sum, load_year_results, pending_rows,
                            preview_total, round_score, save_year_results, score_submission)
from expectations.schema import SCHEMA_FILE, load_schema, read_yaml

YEAR = 2024
SCHEMA = load_schema()
SYSTEM = load_indicators()
REGISTRY = load_registry()
D = dt.date

# Values that earn full points on every 年度数据 rule (SPEC §4).
FULL_ITEMS = {
    "D01": 2.0, "D02": 5.0, "D03": 1.0, "D04": 100.0, "D05": True, "D06": True, "D07": True,
    "D08": 95.0, "D09": 1.0, "D10": True, "D11": True, "D12": D(YEAR, 6, 30), "D13": 1.0,
    "D14": True, "D15": True, "D16": 10.0, "D17": 2.0, "D18": 3.0, "D19": 100.0, "D20": 96.0,
    "D21": 5.0, "D22": 15.0, "D23": 20.0, "D24": 4.0, "D25": 2.0, "D26": 0.0, "D27": 10.0,
    "D28": 10.0, "D29": 1.0, "D30": 10.0, "D31": 10.0, "D32": 10.0, "D33": 2.0, "D34": 2.0,
    "D35": 1.0, "D36": 10.0, "D37": 10.0, "D38": 10.0, "D39": 10.0, "D40": 5.0, "D41": 5.0,
    "D42": 10.0, "D43": 10.0, "D44": 100.0, "D45": 5.0,
}


def table(sheet: str, rows: list[dict]) -> pd.DataFrame:
    cols = list(SCHEMA.sheets[sheet].headers)
    frame = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols, dtype=object)
    frame["_row"] = range(2, len(rows) + 2)
    return frame


def doc(no: str, issued: dt.date, filed: dt.date | None, reviewed: bool = True) -> dict:
    return {"文号": no, "文件名称": "文件", "制发日期": issued, "报备日期": filed,
            "是否经合法性审核": reviewed, "是否向社会公布": True}


def decision(area: str = "生态环境保护", **flags) -> dict:
    row = {"决策事项名称": "决策", "所属领域": area, "是否列入年度目录": True, "决策日期": D(YEAR, 5, 1)}
    return row | {k: flags.get(k, True) for k in ("公众参与", "专家论证", "风险评估", "合法性审查", "集体讨论决定")}


def case(no: str, closed: dt.date | None = D(YEAR, 3, 1), **flags) -> dict:
    row = {"案件编号": no, "执法部门": "市场监管局", "执法领域": "食品药品", "案件类型": "行政处罚",
           "立案日期": D(YEAR, 2, 1), "结案日期": closed, "罚没金额（元）": 0.0, "复议诉讼结果": "无"}
    return row | {k: flags.get(k, True) for k in ("是否重大执法决定", "是否法制审核", "是否全过程记录", "是否公示")}


def full_tables() -> dict[str, pd.DataFrame]:
    return {
        "规范性文件": table("规范性文件", [doc("东政〔2024〕1号", D(YEAR, 3, 1), D(YEAR, 3, 20))]),
        "重大行政决策": table("重大行政决策", [decision(), decision("其他")]),
        "执法案件台账": table("执法案件台账", [case("A1"), case("A2")]),
        "负面清单": table("负面清单", []),
        "佐证材料": table("佐证材料", []),
    }


def make_record(unit_code: str = "630202", *, items: dict | None = None, tables: dict | None = None,
                events: list[str] = (), filled_on: dt.date = D(YEAR + 1, 1, 10),
                received_at: str = "2025-01-12T08:00:00+00:00", status: str = "accepted",
                file_name: str | None = None, naming: str = "未命名", naming_year: int | None = None,
                sid: str | None = None) -> SubmissionRecord:
    unit = REGISTRY.by_code(unit_code)
    tabs = full_tables() | (tables or {})
    if events:
        tabs["负面清单"] = table("负面清单", [{"事件描述": "事件", "发生日期": D(YEAR, 4, 1), "事件类型": t}
                                           for t in events])
    codes = [f.name for f in SCHEMA.sheets["年度数据"].fields]
    file_name = file_name or f"{unit.name}{YEAR}.xlsx"
    parsed = ParsedWorkbook(
        file_name=file_name, kind="submission",
        sheet_names={s: s for s in SCHEMA.sheets},
        cover={"单位名称": unit.name, "单位代码": unit_code, "报送年度": YEAR, "填报日期": filled_on,
               "示范命名情况": naming, "命名年度": naming_year},
        items=FULL_ITEMS | (items or {}),
        item_cells={c: f"C{i}" for i, c in enumerate(codes, 2)},
        tables=tabs,
        problems=[Problem("年度数据", "C3", "abc", "应填写非负整数")] if status != "accepted" else [],
    )
    return SubmissionRecord(
        submission_id=sid or f"{unit_code}-{received_at}", sha256=f"{abs(hash((unit_code, received_at))):064x}"[:64],
        original_name=file_name, received_at=received_at, status=status, unit_code=unit_code,
        unit_name=unit.name, year=YEAR, filled_on=filled_on, parsed=parsed,
        errors=0 if status == "accepted" else 1)


def row(record: SubmissionRecord, code: str, satisfaction: float | None = None) -> pd.Series:
    frame = score_submission(record, SYSTEM, satisfaction, "满意度.xlsx!Sheet1!D2" if satisfaction is not None else None)
    return frame.set_index("indicator").loc[code]


def score(code: str, **kw) -> float:
    return row(make_record(**kw), code)["score"]


# --- the config ------------------------------------------------------------

def test_exact_sum_is_the_sum_of_fractions():
    values = [Fraction(1, 10), Fraction(2, 10), Fraction(7, 3), Fraction(-5, 6), Fraction(4), Fraction(3, 1000)]
    assert exact_sum(values) == sum(values, Fraction(0)) == Fraction("5.803")
    assert exact_sum(v for v in values[:2]) == Fraction(3, 10)
    assert exact_sum([]) == 0


def test_default_config_matches_spec_totals():
    assert sum(c.points for c in SYSTEM.categories) == 1000
    assert {c.code: c.points for c in SYSTEM.categories} == {
        "A": 100, "B": 80, "C": 100, "D": 100, "E": 180, "F": 60, "G": 160, "H": 80, "I": 40, "J": 100}
    assert len(SYSTEM.codes) == 43 and {"A1", "G10", "J1"} <= SYSTEM.codes
    assert SYSTEM.core_categories == list("ABCDEFGHI")
    rows = SYSTEM.instruction_rows()
    assert rows[0][:4] == ("A1", "党的领导与法治能力", "法治专题讲座每年至少2次", 20)
    assert "D01" in rows[0][4] and "2次" in rows[0][4]


def _refused(tmp_path: Path, edit) -> str:
    raw = yaml.safe_load(DEFAULT_INDICATORS_FILE.read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "indicators.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(IndicatorConfigError) as exc:
        load_indicators(path)
    return str(exc.value)


def _indicator(raw: dict, code: str) -> dict:
    return next(i for i in raw["indicators"] if i["code"] == code)


def test_config_refuses_points_not_adding_up(tmp_path):
    msg = _refused(tmp_path, lambda raw: _indicator(raw, "A1").update(points=25))
    assert "类别A分值100与其指标分值之和105不一致" in msg and "category A" in msg


def test_config_refuses_total_not_1000(tmp_path):
    def edit(raw):
        raw["categories"][0]["points"] = 105
        _indicator(raw, "A1")["points"] = 25
    msg = _refused(tmp_path, edit)
    assert "1005" in msg and "1000" in msg


def test_config_files_read_as_pyyaml_reads_them_and_broken_yaml_is_refused(tmp_path):
    for path in (DEFAULT_INDICATORS_FILE, SCHEMA_FILE):
        assert read_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8"))
    path = tmp_path / "indicators.yaml"
    path.write_text("categories: [{code: A, name: 甲\nindicators: []\n", encoding="utf-8")
    with pytest.raises(IndicatorConfigError) as exc:
        load_indicators(path)
    assert "格式错误" in str(exc.value) and str(path) in str(exc.value)


def test_config_refuses_unknown_rule_and_data(tmp_path):
    msg = _refused(tmp_path, lambda raw: _indicator(raw, "A1").update(rule="maximum"))
    assert "指标A1" in msg and "maximum" in msg
    msg = _refused(tmp_path, lambda raw: _indicator(raw, "A2").update(data="D99"))
    assert "D99" in msg and "schema.yaml" in msg
    msg = _refused(tmp_path, lambda raw: _indicator(raw, "C1")["condition"].update(column="是否审核"))
    assert "是否审核" in msg
    msg = _refused(tmp_path, lambda raw: _indicator(raw, "A5").update(data="D01"))  # flag on a count
    assert "A5" in msg


def test_config_refuses_duplicate_codes(tmp_path):
    msg = _refused(tmp_path, lambda raw: _indicator(raw, "A2").update(code="A1"))
    assert "重复" in msg and "A1" in msg


# --- rule kinds at their edges (P and T from the SPEC §4 table) --------------

def test_full_marks_everywhere():
    frame = score_submission(make_record(), SYSTEM, 100.0, "满意度.xlsx!Sheet1!D2")
    assert (frame["score"] == frame["points"]).all()
    assert (frame["reason"] == "").all()
    assert frame["score"].sum() == 1000


@pytest.mark.parametrize("d01, expected", [(2.0, 20), (1.0, 10), (0.0, 0), (5.0, 20)])
def test_count(d01, expected):  # A1: count(2), P 20
    assert score("A1", items={"D01": d01}) == expected


def test_count_value_source_and_reason():
    r = row(make_record(items={"D01": 1.0}), "A1")
    assert (r["value"], r["target"], r["status"]) == ("1次", "≥2次", "")
    assert r["source"] == "乐都区2024.xlsx!年度数据!C2"
    assert "未达到" in r["reason"]


def test_source_uses_the_actual_sheet_name():
    rec = make_record()
    rec.parsed.sheet_names["年度数据"] = "年度数据 "
    assert row(rec, "A1")["source"] == "乐都区2024.xlsx!年度数据 !C2"


def test_flag():  # A5: flag, P 20
    assert score("A5", items={"D05": True}) == 20
    r = row(make_record(items={"D05": False}), "A5")
    assert (r["score"], r["value"]) == (0, "否") and r["reason"]


def test_rate_at_least_direct_percent():  # A4: rate_at_least(100), P 20, D04 used as is
    r = row(make_record(items={"D04": 95.8}), "A4")
    assert r["value"] == "95.8%" and round_score(r["score"]) == 19.16


@pytest.mark.parametrize("num, den, expected", [
    (95.0, 100.0, 20),         # exactly at 95 %
    (19.0, 20.0, 20),          # 95 % again
    (100.0, 100.0, 20),
    (90.0, 100.0, 18.95),      # 20 × 90 / 95 = 18.947…
])
def test_rate_at_least_ratio(num, den, expected):  # G1: rate_at_least(95), P 20, D20/D19
    assert round_score(score("G1", items={"D20": num, "D19": den})) == expected


def test_rate_with_zero_denominator_is_not_applicable():
    r = row(make_record(items={"D19": 0.0, "D20": 0.0}), "G1")
    assert (r["score"], r["status"], r["reason"]) == (20, "不适用", "")
    for code, items in [("G3", {"D23": 0.0, "D24": 0.0, "D25": 0.0, "D26": 0.0}),  # rate_below
                        ("G2", {"D23": 0.0, "D24": 0.0, "D25": 0.0, "D26": 0.0}),  # greater_than
                        ("G4", {"D25": 0.0, "D26": 0.0})]:
        r = row(make_record(items=items), code)
        assert (r["score"], r["status"]) == (20, "不适用"), code


@pytest.mark.parametrize("d25, expected", [
    (29.0, 20),    # 29 % < 30 %
    (30.0, 20),    # at T: 20 × (60 − 30) / 30 = 20
    (45.0, 10),    # 20 × (60 − 45) / 30
    (59.0, 20 * 1 / 30),
    (60.0, 0),     # at 2T
    (70.0, 0),
])
def test_rate_below(d25, expected):  # G3: rate_below(30), P 20, D25/D23 with D23 = 100
    got = score("G3", items={"D23": 100.0, "D21": 50.0, "D22": 50.0, "D25": d25, "D26": 0.0})
    assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("published, expected, value", [
    (D(YEAR, 12, 31), 30, "2024-12-31"), (D(YEAR + 1, 1, 1), 0, "2025-01-01"), (None, 0, "未公布")])
def test_on_or_before(published, expected, value):  # E1: on_or_before(报送年度-12-31), P 30
    r = row(make_record(items={"D12": published}), "E1")
    assert (r["score"], r["value"]) == (expected, value)
    assert (r["reason"] == "") == (expected == 30)


@pytest.mark.parametrize("d24, expected", [(2.0, 0), (3.0, 20), (0.0, 0)])
def test_greater_than(d24, expected):  # G2: D24/D23 (D23 = 20) > D30 = 10 %
    assert score("G2", items={"D24": d24}) == expected


def test_coverage_counts_rows_and_missing_dates():  # C1–C3 coverage, P 25 each
    docs = table("规范性文件", [
        doc("1号", D(YEAR, 3, 1), D(YEAR, 3, 31)),                  # 30 days: meets C3
        doc("2号", D(YEAR, 3, 1), D(YEAR, 4, 1)),                   # 31 days
        doc("3号", D(YEAR, 3, 1), None, reviewed=False),            # not filed
        doc("4号", D(YEAR, 3, 1), D(YEAR, 3, 2)),
    ])
    rec = make_record(tables={"规范性文件": docs})
    c1, c2, c3 = (row(rec, c) for c in ("C1", "C2", "C3"))
    assert (c1["score"], c1["value"]) == (18.75, "3/4 (75.00%)")
    assert c2["score"] == 18.75
    assert (c3["score"], c3["value"]) == (12.5, "2/4 (50.00%)")
    assert c1["source"] == "乐都区2024.xlsx!规范性文件!4行"
    assert "1行" in c1["reason"]


def test_coverage_among_subsets():
    cases = table("执法案件台账", [
        case("1", 是否公示=False),                       # closed, not published
        case("2", closed=None, 是否公示=False),           # pending: not among E5
        case("3"),
        case("4", 是否重大执法决定=False, 是否法制审核=False),  # not major: not among E7
        case("5", 是否法制审核=False),
    ])
    decisions = table("重大行政决策", [decision(风险评估=False), decision("其他", 风险评估=False)])
    rec = make_record(tables={"执法案件台账": cases, "重大行政决策": decisions})
    assert row(rec, "E5")["value"] == "3/4 (75.00%)" and row(rec, "E5")["score"] == 22.5
    assert row(rec, "E6")["score"] == 30
    assert row(rec, "E7")["value"] == "3/4 (75.00%)"
    assert row(rec, "D4")["value"] == "0/1 (0.00%)" and row(rec, "D4")["score"] == 0


def test_coverage_counts_of_many_records_match_each_alone():
    """Counted together (rows stacked), records with a missing sheet or column and float or
    string columns count as they do one at a time."""
    cases = table("执法案件台账", [case("1", 是否公示=False), case("2", closed=None), case("3")])
    cases["罚没金额（元）"] = cases["罚没金额（元）"].astype(float)
    records = [make_record(tables={"执法案件台账": cases}).parsed,
               make_record(tables={"执法案件台账": cases.drop(columns=["是否公示"])}).parsed,
               make_record().parsed]
    del records[2].tables["规范性文件"]
    together = coverage_counts(records, SYSTEM)
    assert together == [coverage_counts([r], SYSTEM)[0] for r in records]
    assert together[0]["E5"] == (1, 2) and together[1]["E5"] == (0, 2)
    assert together[2]["C1"] == (0, 0)


def test_coverage_with_no_qualifying_row_is_not_applicable():
    rec = make_record(tables={"规范性文件": table("规范性文件", []),
                              "执法案件台账": table("执法案件台账", [case("1", 是否重大执法决定=False)])})
    for code, points in [("C1", 25), ("C3", 25), ("E7", 30)]:
        r = row(rec, code)
        assert (r["score"], r["status"], r["value"]) == (points, "不适用", "不适用")


def test_satisfaction():
    r = row(make_record(), "J1", 87.345)
    assert (round_score(r["score"]), r["value"], r["source"]) == (87.35, "87.345分", "满意度.xlsx!Sheet1!D2")
    r = row(make_record(), "J1")
    assert math.isnan(r["score"]) and (r["status"], r["value"]) == ("待测评", "待测评")


def test_round_half_up_on_exact_values():
    assert round_score(Fraction(2675, 1000)) == 2.68
    assert round_score(2.675) == 2.68       # the float 2.675 sits just below 2.675
    assert round_score(Fraction(40, 3)) == 13.33
    # Rounded once per value: the exact binary value of the float 2.675 is equal to that float,
    # yet rounds down, and neither answer is taken for the other.
    binary = Fraction(2.675)
    assert binary == 2.675 and round_score(binary) == 2.67 and round_score(2.675) == 2.68
    assert round_score(float("nan")) is None and round_score(None) is None


def test_grades():
    assert [SYSTEM.grade(Fraction(x)) for x in ("900", "899.99", "800", "600", "599.99")] == \
        ["优秀", "良好", "良好", "合格", "不合格"]


# --- year results -------------------------------------------------------------

def results(records, satisfaction=None):
    return compute_year_results(YEAR, records, satisfaction or {}, SYSTEM, REGISTRY)


def unit(res, code="630202") -> pd.Series:
    return res.units.set_index("unit_code").loc[code]


def test_rows_scored_at_intake_give_the_same_results_and_only_satisfaction_is_scored_again():
    recs = [make_record("630202", items={"D01": 1.0}), make_record("630203", events=["重大安全生产事故"])]
    satisfaction = {"630202": (87.5, "满意度.xlsx!Sheet1!D2")}
    fresh = results(recs, satisfaction)
    for r in recs:
        r.scored = pending_rows(r, SYSTEM)
    reused = results(recs, satisfaction)
    for name in ("units", "categories", "indicators"):
        pd.testing.assert_frame_equal(getattr(reused, name), getattr(fresh, name))
    # without a satisfaction result, the preview is the provisional total
    assert preview_total(recs[1].scored) == round_score(unit(fresh, "630203")["total"])
    # the stored rows are what is reused: a row changed there shows in the results
    first = next(i for i, ind in enumerate(SYSTEM.indicators) if ind.rule == "count")
    recs[0].scored[first] = {**recs[0].scored[first], "exact": Fraction(0)}
    assert unit(results(recs, satisfaction))["total"] < unit(reused)["total"]


def test_superseded_by_filled_on_then_received_at():
    recs = [
        make_record(filled_on=D(YEAR + 1, 1, 5), received_at="2025-01-20T00:00:00+00:00", sid="late-file-old-date"),
        make_record(filled_on=D(YEAR + 1, 1, 9), received_at="2025-01-10T00:00:00+00:00", sid="first"),
        make_record(filled_on=D(YEAR + 1, 1, 9), received_at="2025-01-11T00:00:00+00:00", sid="second"),
        make_record(filled_on=D(YEAR + 1, 1, 30), received_at="2025-01-31T00:00:00+00:00", sid="bad",
                    status="rejected"),
    ]
    res = results(recs)
    status = res.submissions.set_index("submission_id")["status"].to_dict()
    assert status == {"late-file-old-date": "已被替代", "first": "已被替代", "second": "计分", "bad": "退回"}
    assert unit(res)["submission_id"] == "second"
    assert "年度数据!C3" in res.submissions.set_index("submission_id").loc["bad", "problems"]


def test_satisfaction_arriving_later_flips_provisional():
    rec = make_record()
    before = unit(results([rec]))
    assert (before["status"], before["provisional"], before["eligible"]) == ("暂定", True, False)
    assert before["total"] == 900 and pd.isna(before["rank"])
    assert (before["recommendation"], before["reasons"]) == ("暂不推荐", "满意度待测评")
    after = unit(results([rec], {"630202": (90.0, "满意度.xlsx!Sheet1!D2")}))
    assert (after["status"], after["provisional"], after["eligible"]) == ("正式", False, True)
    assert (after["total"], after["rank"], after["recommendation"]) == (990, 1, "可推荐示范")
    assert after["grade"] == "优秀"


SAT = {c: (0.0, "满意度.xlsx!Sheet1!D2") for c in ("630202", "630203", "630222", "630223", "630224", "630225")}


def test_total_exactly_850_is_eligible_below_is_not():
    # 900 (A–I full) − A5 20 − E1 30 + satisfaction 0 = 850
    at = unit(results([make_record(items={"D05": False, "D12": None})], SAT))
    assert (at["total"], at["eligible"]) == (850, True)
    below = unit(results([make_record(items={"D05": False, "D12": None, "D09": 0.0})], SAT))
    assert (below["total"], below["eligible"], below["recommendation"], below["reasons"]) == (
        830, False, "暂不推荐", "总分未达850")


def test_category_below_60_percent():
    # I (40): I1 = 20 × 20 / 100 = 4, I2 = 20 → 24 = exactly 60 %
    at = unit(results([make_record(items={"D44": 20.0})], SAT))
    assert at["eligible"]
    below = unit(results([make_record(items={"D44": 19.95})], SAT))  # I1 3.99
    assert (below["eligible"], below["recommendation"], below["reasons"]) == (False, "暂不推荐", "类别I低于60%")
    assert below["total"] == pytest.approx(900 - 16.01)
    cats = results([make_record(items={"D17": 0.0, "D18": 0.0})], SAT).categories.set_index("category")
    assert (cats.loc["F", "score"], cats.loc["F", "share"]) == (0, 0)


def test_veto_refuses_whatever_the_score():
    res = results([make_record(events=["拒不履行法院生效裁判", "其他"])], {"630202": (100.0, "s")})
    u = unit(res)
    assert (u["total"], u["veto"], u["eligible"], u["recommendation"]) == (1000, True, False, "不予推荐")
    assert "拒不履行法院生效裁判" in u["reasons"] and pd.isna(u["rank"])
    other = unit(results([make_record(events=["其他"])], {"630202": (100.0, "s")}))
    assert (other["veto"], other["recommendation"]) == (False, "可推荐示范")


def test_ranking_ties_g_then_e_then_code():
    full = {c: (100.0, "s") for c in SAT}
    recs = [
        make_record("630225", items={"D05": False}),            # 980, G 160, E 180
        make_record("630203", items={"D24": 0.0}),              # 980, G 140, E 180
        make_record("630202", items={"D14": False}),            # 980, G 160, E 160
        make_record("630224", items={"D05": False}),            # 980, G 160, E 180
        make_record("630222", events=["拒不履行法院生效裁判"]),  # 1000, vetoed
        make_record("630223", items={"D01": 1.0}),              # 990
    ]
    res = results(recs, full)
    ranks = res.units.set_index("unit_code")["rank"]
    assert ranks.dropna().to_dict() == {"630223": 1, "630224": 2, "630225": 3, "630202": 4, "630203": 5}
    assert pd.isna(ranks["630222"]) and str(ranks.dtype) == "Int64"


def test_naming_columns_come_from_the_cover():
    res = results([make_record(naming="省级示范", naming_year=2022)])
    u = unit(res)
    assert (u["naming"], u["naming_year"]) == ("省级示范", 2022)


def test_results_round_trip(tmp_path):
    recs = [make_record(naming="省级示范", naming_year=2022), make_record("630203"),
            make_record("630203", status="rejected", received_at="2025-02-01T00:00:00+00:00")]
    res = results(recs, {"630202": (91.5, "满意度.xlsx!Sheet1!D2")})
    save_year_results(res, tmp_path / "2024")
    back = load_year_results(tmp_path / "2024")
    assert (back.year, back.generated_at, back.indicator_version) == (YEAR, res.generated_at, "2024.1")
    for name in ("units", "categories", "indicators", "submissions"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(res, name), check_dtype=True)
    assert load_year_results(tmp_path / "2023") is None
