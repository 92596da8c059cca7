"""回头看 (SPEC §6): outcomes, case sampling and the package workbook."""
from __future__ import annotations

import datetime as dt
import time

import numpy as np
import openpyxl
import pandas as pd
import pytest

from assets import lookback as lb
from assets.model import ParsedWorkbook, SubmissionRecord, YearResults

# SPEC §4 category points; J (satisfaction) is not a core category.
POINTS = {"A": 100, "B": 80, "C": 100, "D": 100, "E": 180, "F": 60, "G": 160, "H": 80, "I": 40, "J": 100}
CORE = list("ABCDEFGHI")
CASE_COLUMNS = ["案件编号", "执法部门", "执法领域", "案件类型", "立案日期", "结案日期", "是否重大执法决定",
                "是否法制审核", "是否全过程记录", "是否公示", "罚没金额（元）", "复议诉讼结果"]
EVENT_COLUMNS = ["序号", "事件描述", "发生日期", "事件类型", "认定文件"]
# Three indicators are enough for the package sheets.
INDICATORS = [("A1", "法治专题讲座每年至少2次", "A", 20), ("A2", "学法用法考试不少于5次", "A", 20),
              ("J1", "群众满意度测评", "J", 100)]


def unit(code, name=None, *, total=None, share=0.95, low=None, veto=False, provisional=False,
         naming="省级示范", naming_year=2022, submission=None):
    """A unit spec: every category at `share` of its points except those in `low`."""
    scores = {c: p * share for c, p in POINTS.items()}
    scores.update(low or {})
    return dict(code=code, name=name or f"单位{code}", scores=scores,
                total=sum(scores.values()) if total is None else total, veto=veto, provisional=provisional,
                naming=naming, naming_year=naming_year, submission=submission or f"sub-{code}")


def results(year, units, indicator_scores=None):
    u = pd.DataFrame([{
        "unit_code": x["code"], "unit_name": x["name"], "submission_id": x["submission"],
        "source_file": f"{x['code']}.xlsx", "total": x["total"], "provisional": x["provisional"],
        "status": "暂定" if x["provisional"] else "正式", "grade": "", "veto": x["veto"], "eligible": False,
        "recommendation": "", "rank": pd.NA, "satisfaction": np.nan, "naming": x["naming"],
        "naming_year": x["naming_year"], "reasons": ""} for x in units])
    u["naming_year"] = u["naming_year"].astype("Int64")
    cats = pd.DataFrame([{"unit_code": x["code"], "category": c, "category_name": f"{c}类名称",
                          "points": POINTS[c], "score": s, "share": s / POINTS[c]}
                         for x in units for c, s in x["scores"].items()])
    scores = indicator_scores or {}
    inds = pd.DataFrame([{
        "unit_code": x["code"], "indicator": i, "name": n, "category": c, "points": p, "value": None,
        "target": None, "score": scores.get((x["code"], i), p),
        "status": "待测评" if pd.isna(scores.get((x["code"], i), p)) else "",
        "reason": "考试仅3次，目标5次" if i == "A2" else "", "source": ""}
        for x in units for i, n, c, p in INDICATORS])
    return YearResults(year=year, units=u, categories=cats, indicators=inds, submissions=pd.DataFrame())


def cases(departments: dict[str, int], flagged: dict[str, int] | None = None) -> pd.DataFrame:
    """Clean cases per department; `flagged` sets the first k rows to a flag kind."""
    depts = [d for d, k in departments.items() for _ in range(k)]
    n = len(depts)
    df = pd.DataFrame({
        "案件编号": [f"AJ{i:06d}" for i in range(n)], "执法部门": depts, "执法领域": "其他",
        "案件类型": "行政处罚", "立案日期": dt.date(2024, 3, 1), "结案日期": dt.date(2024, 4, 1),
        "是否重大执法决定": False, "是否法制审核": True, "是否全过程记录": True, "是否公示": True,
        "罚没金额（元）": 100.0, "复议诉讼结果": "无", "_row": np.arange(2, n + 2)})
    df = df.astype({"结案日期": object, "是否重大执法决定": object, "是否法制审核": object, "是否公示": object})
    start = 0
    for kind, k in (flagged or {}).items():
        rows = df.index[start:start + k]
        if kind == "major":
            df.loc[rows, ["是否重大执法决定", "是否法制审核"]] = [True, False]
        elif kind == "unpublished":
            df.loc[rows, "是否公示"] = False
        elif kind == "corrected":
            df.loc[rows, "复议诉讼结果"] = "纠错"
        elif kind == "pending_unpublished":  # not closed: not flagged
            df.loc[rows, "是否公示"] = False
            df.loc[rows, "结案日期"] = None
        start += k
    return df


# --- outcomes -----------------------------------------------------------------

def test_veto_revokes_and_names_every_veto_event():
    cur = results(2024, [unit("630202", veto=True, share=0.5)])
    events = pd.DataFrame({"序号": [1, 2, 3], "事件描述": ["甲事件", "乙事件", "丙事件"],
                           "发生日期": [dt.date(2024, 5, 1)] * 3,
                           "事件类型": ["拒不履行法院生效裁判", "其他", "被中央或省级督察通报法治问题"],
                           "认定文件": [None] * 3, "_row": [2, 3, 4]})
    out = lb.assess("630202", cur, None, CORE, events=events)
    assert out.outcome == "建议撤销命名"
    assert len(out.reasons) == 2
    assert "拒不履行法院生效裁判" in out.reasons[0] and "甲事件" in out.reasons[0]
    assert "被中央或省级督察通报法治问题" in out.reasons[1]
    assert not any("乙事件" in r for r in out.reasons)


def test_total_below_800_needs_rectification():
    cur = results(2024, [unit("630202", share=0.79)])  # 790 points, every category at 79%
    out = lb.assess("630202", cur, None, CORE)
    assert out.outcome == "限期整改"
    assert out.reasons == ["总分790.00分，低于800分"]
    assert out.current_total == pytest.approx(790)


def test_category_below_60_percent_with_total_above_800():
    # E at 100 of 180 (55.6% < 60%: 108 needed), the rest full: total 920.
    cur = results(2024, [unit("630202", share=1.0, low={"E": 100.0})])
    out = lb.assess("630202", cur, None, CORE)
    assert out.current_total == pytest.approx(920)
    assert out.outcome == "限期整改"
    assert len(out.reasons) == 1
    assert "E类" in out.reasons[0] and "100.00" in out.reasons[0] and "108.00" in out.reasons[0]


def test_every_reason_is_listed_when_several_apply():
    cur = results(2024, [unit("630202", share=0.8, low={"E": 50.0, "I": 20.0})])  # 800 - (144 - 50) - (32 - 20) = 694
    out = lb.assess("630202", cur, None, CORE)
    assert out.outcome == "限期整改"
    assert len(out.reasons) == 3
    assert out.reasons[0] == "总分694.00分，低于800分"
    assert any("E类" in r for r in out.reasons) and any("I类" in r for r in out.reasons)


def test_satisfaction_category_is_not_core():
    cur = results(2024, [unit("630202", share=1.0, low={"J": 0.0})])  # 900 points, J at 0%
    assert lb.assess("630202", cur, None, CORE).outcome == "保持命名"


@pytest.mark.parametrize("base_total, expected", [(900.3, "重点关注"), (900.29, "保持命名")])
def test_fall_of_exactly_50_is_watched_and_49_99_is_not(base_total, expected):
    # A total is a sum of scores: 850 + 0.1 + 0.2 is 850.3000000000001 in binary,
    # so 900.3 minus it is 49.9999999999999 although the fall is exactly 50.
    cur = results(2024, [unit("630202", total=850 + 0.1 + 0.2)])
    base = results(2022, [unit("630202", total=base_total)])
    out = lb.assess("630202", cur, base, CORE)
    assert out.outcome == expected
    assert out.baseline_total == pytest.approx(base_total)
    assert out.change == pytest.approx(850.3 - base_total)
    if expected == "重点关注":
        assert out.reasons == ["总分850.30分，较命名年度2022年基线900.30分下降50.00分，达到50分"]
    else:
        assert "-49.99" in out.reasons[-1]


def test_keep_without_baseline_says_so():
    cur = results(2024, [unit("630202")])
    for baseline in (None, results(2022, [unit("630203")])):  # absent, or the unit is not in it
        out = lb.assess("630202", cur, baseline, CORE)
        assert out.outcome == "保持命名"
        assert out.baseline_total is None and out.change is None
        assert "无基线" in out.reasons[-1] and "2022" in out.reasons[-1]


def test_provisional_total_is_used_and_marked():
    cur = results(2024, [unit("630202", share=1.0, low={"J": np.nan}, total=900.0, provisional=True)])
    out = lb.assess("630202", cur, None, CORE)
    assert out.provisional and out.current_total == 900.0
    assert out.label == "保持命名（暂定）"


def test_targets_are_units_named_before_the_year():
    cur = results(2024, [unit("1", naming="省级示范", naming_year=2023), unit("2", naming="全国示范", naming_year=2024),
                         unit("3", naming="未命名", naming_year=None), unit("4", naming="全国示范", naming_year=2020)])
    assert lb.lookback_targets(cur) == ["1", "4"]


# --- sampling -----------------------------------------------------------------

@pytest.mark.parametrize("n_cases, n", [(0, 0), (9, 9), (10, 10), (11, 10), (200, 10), (201, 11),
                                        (1000, 50), (5000, 50)])
def test_sample_size(n_cases, n):
    assert lb.sample_size(n_cases) == n
    assert len(lb.sample_cases(cases({"局": n_cases}), "k")) == n


def test_more_flagged_than_n_draws_from_flagged_only():
    df = cases({"甲局": 600, "乙局": 400}, {"major": 30, "unpublished": 30, "corrected": 20})  # 80 flagged, n = 50
    s = lb.sample_cases(df, "k")
    assert len(s) == 50
    assert s["_row"].isin(df["_row"].iloc[:80]).all()
    assert not (s["抽取原因"] == "随机抽取（分层）").any()


def test_fewer_flagged_are_all_taken_first():
    df = cases({"甲局": 500, "乙局": 500}, {"major": 2, "unpublished": 2, "corrected": 3, "pending_unpublished": 5})
    df.loc[0, "是否公示"] = False  # case 0: major without review and closed unpublished
    s = lb.sample_cases(df, "k")
    assert len(s) == 50
    assert s["_row"].iloc[:7].tolist() == df["_row"].iloc[:7].tolist()
    assert s["抽取原因"].iloc[0] == "重大执法决定未经法制审核；已结案未公示"
    assert s["抽取原因"].iloc[2] == "已结案未公示"
    assert s["抽取原因"].iloc[6] == "复议诉讼结果为纠错"
    assert (s["抽取原因"].iloc[7:] == "随机抽取（分层）").all()
    assert not s["_row"].iloc[7:].isin(df["_row"].iloc[:7]).any()
    assert s["_row"].is_unique


def test_sample_is_reproducible_and_depends_on_the_key():
    df = cases({"甲局": 700, "乙局": 300})
    a, b = lb.sample_cases(df, "630202|2024|abc"), lb.sample_cases(df.sample(frac=1, random_state=1), "630202|2024|abc")
    pd.testing.assert_frame_equal(a, b)
    assert set(lb.sample_cases(df, "630202|2024|abd")["_row"]) != set(a["_row"])


def test_draw_is_proportional_to_department_sizes():
    s = lb.sample_cases(cases({"甲局": 600, "乙局": 300, "丙局": 100}), "k")
    counts = s["执法部门"].value_counts()
    assert abs(counts["甲局"] - 30) <= 1 and abs(counts["乙局"] - 15) <= 1 and abs(counts["丙局"] - 5) <= 1
    assert counts.sum() == 50


def test_remainder_tie_goes_to_the_first_department_by_name():
    # 20 cases, n = 10: quotas 3.5 / 3.5 / 3.0 -> the spare case goes to A局.
    counts = lb.sample_cases(cases({"B局": 7, "A局": 7, "C局": 6}), "k")["执法部门"].value_counts()
    assert counts.to_dict() == {"A局": 4, "B局": 3, "C局": 3}


def test_source_is_the_case_row_range():
    s = lb.sample_cases(cases({"局": 5}), "k", file_name="乐都区.xlsx")
    assert s["来源"].tolist() == [f"乐都区.xlsx!执法案件台账!A{r}:L{r}" for r in range(2, 7)]
    moved = lb.sample_cases(cases({"局": 1}), "k", file_name="f.xls", sheet_name="台账",
                            columns={c: L for c, L in zip(CASE_COLUMNS, "CDEFGHIJKLMN")})
    assert moved["来源"].tolist() == ["f.xls!台账!C2:N2"]


def test_fifty_thousand_cases_are_fast():
    df = cases({f"部门{i:03d}": 500 for i in range(100)}, {"unpublished": 20})
    t = time.perf_counter()
    s = lb.sample_cases(df, "k")
    assert time.perf_counter() - t < 1.0
    assert len(s) == 50 and (s["抽取原因"] == "已结案未公示").sum() == 20


# --- workbooks ----------------------------------------------------------------

HOSTILE = '=HYPERLINK("http://x","y")'


def record(code, name, case_frame):
    events = pd.DataFrame({"序号": [1, 2], "事件描述": ["拒不执行判决", "=cmd|' /C calc'!A0"],
                           "发生日期": [dt.date(2024, 6, 1)] * 2, "事件类型": ["拒不履行法院生效裁判", "其他"],
                           "认定文件": ["某文件", None], "_row": [2, 3]})
    evidence = pd.DataFrame({"指标编号": ["A1"], "材料名称": ["讲座通知"], "文件名或链接": ["a.pdf"], "_row": [2]})
    parsed = ParsedWorkbook(file_name=f"{name}.xlsx", kind="submission",
                            tables={"执法案件台账": case_frame, "负面清单": events, "佐证材料": evidence})
    return SubmissionRecord(submission_id=f"sub-{code}", sha256="ab" * 32, original_name=f"{name}.xlsx",
                            received_at="2025-01-10T00:00:00Z", status="accepted", unit_code=code,
                            unit_name=name, year=2024, filled_on=dt.date(2025, 1, 9), parsed=parsed)


def test_package_sheets_and_contents(tmp_path):
    code, name = "630202", "乐都/区"
    cur = results(2024, [unit(code, name)], {(code, "A2"): 12.0, (code, "J1"): np.nan})
    base = results(2022, [unit(code, name)])
    df = cases({HOSTILE: 20, "乙局": 10})
    rec = record(code, name, df)
    out = lb.assess(code, cur, base, CORE)
    sample = lb.sample_cases(df, "k", file_name=rec.original_name)
    path = lb.write_lookback_package(tmp_path, cur.units.iloc[0], out, cur, base, rec, sample)
    assert path.name == "乐都_区回头看检查包.xlsx"
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["概况", "指标对比", "整改清单", "案卷抽查", "佐证材料核查", "负面事件"]

    overview = {r[0]: r[1] for r in wb["概况"].iter_rows(min_row=4, values_only=True)}
    assert overview["结论"] == "保持命名" and overview["基线年度"] == 2022 and overview["命名年度"] == 2022

    comp = list(wb["指标对比"].iter_rows(min_row=2, values_only=True))
    assert comp[0] == ("A1", "法治专题讲座每年至少2次", 20, 20, 20, 0, None)
    assert comp[1] == ("A2", "学法用法考试不少于5次", 20, 20, 12, -8, "下降")
    assert comp[2][4] == "待测评"

    todo = list(wb["整改清单"].iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in todo] == ["A2"]
    assert "扣8.00分" in todo[0][5] and "考试仅3次" in todo[0][5] and "下降8.00分" in todo[0][5]
    fill = wb["整改清单"]["G2"]
    assert fill.protection.locked is False and fill.border.left.style == "thin"
    assert wb["整改清单"]["F2"].protection.locked is True and wb["整改清单"].protection.sheet

    ws = wb["案卷抽查"]
    assert "min(50" in ws["A1"].value
    header = [c.value for c in ws[4]]
    assert header[-2:] == ["抽取原因", "来源"]
    dept_cells = [r[header.index("执法部门")] for r in ws.iter_rows(min_row=5)]
    assert len(dept_cells) == 10
    hostile = [c for c in dept_cells if c.value == HOSTILE]
    assert hostile and all(c.data_type == "s" for c in hostile)

    assert [r[0] for r in wb["佐证材料核查"].iter_rows(min_row=2, values_only=True)] == ["A2", "J1"]
    events = list(wb["负面事件"].iter_rows(min_row=2))
    assert events[0][5].value == "是" and events[1][5].value.startswith("否")
    assert events[1][1].data_type == "s"
    for sheet in wb.worksheets:
        assert sheet.print_area and int(sheet.page_setup.paperSize) == 9  # A4


def test_build_packages_writes_index_and_drops_stale_packages(tmp_path):
    cur = results(2024, [unit("630202", "乐都区", naming_year=2022),
                         unit("630203", "平安区", share=0.7, naming="全国示范", naming_year=2023),
                         unit("630222", "民和回族土族自治县", naming="未命名", naming_year=None)])
    base = results(2022, [unit("630202", "乐都区", total=1000.0)])
    records = {f"sub-{c}": record(c, n, cases({"局": 30}, {"corrected": 1}))
               for c, n in [("630202", "乐都区"), ("630203", "平安区"), ("630222", "民和回族土族自治县")]}
    (tmp_path / "旧单位回头看检查包.xlsx").write_bytes(b"old")
    index = lb.build_lookback_packages(cur, {2022: base}, records.__getitem__, tmp_path, CORE)
    assert index["单位代码"].tolist() == ["630202", "630203"]
    # 乐都区: 950 now, 1000 at naming -> fell 50; 平安区: 700 < 800, no 2023 baseline.
    assert index["结论"].tolist() == ["重点关注", "限期整改"]
    assert index["基线总分"].tolist() == [1000.0, "无基线"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["乐都区回头看检查包.xlsx", "平安区回头看检查包.xlsx", "回头看汇总.xlsx"])
    ws = openpyxl.load_workbook(tmp_path / "回头看汇总.xlsx").active
    rows = list(ws.iter_rows(min_row=1, values_only=True))
    assert rows[0][0] == "单位代码" and rows[1][7] == "重点关注" and rows[2][10] == "平安区回头看检查包.xlsx"
    sample_ws = openpyxl.load_workbook(tmp_path / "乐都区回头看检查包.xlsx")["案卷抽查"]
    assert sample_ws.cell(row=5, column=sample_ws.max_column - 1).value == "复议诉讼结果为纠错"
