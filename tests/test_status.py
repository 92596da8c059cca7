"""Reporting status per unit and the Data Docs pages, from hand-made ledger entries and a real GX run."""
from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import great_expectations as gx
import pandas as pd
import pytest

from assets.datadocs import write_datadocs, write_submission_report, write_validation_report
from assets.intake import Outcome
from assets.registry import Registry, Unit
from assets.status import reporting_status, status_markdown, status_table

REGISTRY = Registry([Unit("630202", "乐都区"), Unit("630203", "平安区"), Unit("630222", "民和回族土族自治县"),
                     Unit("HDGYYQ", "海东工业园区")])


def _out(n: int, status: str, unit: str | None, received: str, *, year: int | None = 2024,
         kind: str = "submission", name: str | None = None) -> Outcome:
    return Outcome(record_id=f"r{n}", status=status, kind=kind, original_name=name or f"文件{n}.xlsx",
                   sha256=f"{n:064x}", received_at=received, unit_code=unit, unit_name=None, year=year,
                   errors=0 if status == "accepted" else 2, warnings=0, receipt=f"receipts/{unit}/{n}.json")


LEDGER = [
    # 乐都区: rejected, then accepted late on 31 March UTC (= 1 April in Beijing), then a rejected file.
    _out(1, "rejected", "630202", "2024-03-30T02:00:00+00:00"),
    _out(2, "accepted", "630202", "2024-03-31T17:30:00.250000+00:00", name="乐都区2024.xlsx"),
    _out(3, "rejected", "630202", "2024-04-03T01:00:00+00:00", name="乐都区2024修改.xls"),
    # a byte-identical copy: not a new submission
    _out(4, "duplicate", "630202", "2024-04-05T01:00:00+00:00", name="乐都区2024副本.xlsx"),
    # 平安区: two rejected files only
    _out(5, "rejected", "630203", "2024-02-01T00:00:00+00:00"),
    _out(6, "rejected", "630203", "2024-02-02T00:00:00+00:00", name="平安|区.xlsx"),
    # 民和: accepted for another year only; a satisfaction file and an unknown file carry no unit
    _out(7, "accepted", "630222", "2024-03-01T00:00:00+00:00", year=2023),
    _out(8, "accepted", None, "2024-03-01T00:00:00+00:00", kind="satisfaction"),
    _out(9, "rejected", None, "2024-03-01T00:00:00+00:00", kind="unknown", year=None),
    # 工业园区: accepted in time (23:59 Beijing on the deadline day)
    _out(10, "accepted", "HDGYYQ", "2024-03-31T15:59:00+00:00"),
]


def test_every_registry_unit_gets_its_state_latest_file_and_count():
    df = reporting_status(LEDGER, REGISTRY, 2024).set_index("单位代码")
    assert list(df.index) == ["630202", "630203", "630222", "HDGYYQ"]
    assert df["状态"].to_dict() == {"630202": "已受理", "630203": "已退回", "630222": "未报送", "HDGYYQ": "已受理"}
    assert df["文件数"].to_dict() == {"630202": 3, "630203": 2, "630222": 0, "HDGYYQ": 1}
    # The latest file of 乐都区 is the rejected correction, not the duplicate copy.
    assert df.loc["630202", "最近文件"] == "乐都区2024修改.xls"
    assert df.loc["630202", "最近文件结果"] == "已退回"
    assert df.loc["630202", "最近接收时间"] == "2024-04-03 09:00:00"  # UTC+8
    assert df.loc["630203", "最近文件"] == "平安|区.xlsx"
    assert df.loc["630222", ["最近文件", "最近文件结果", "最近接收时间"]].tolist() == ["", "", ""]
    assert df.loc["630202", "单位名称"] == "乐都区"
    assert "截止前受理" not in df.columns


def test_deadline_is_a_beijing_calendar_day():
    df = reporting_status(LEDGER, REGISTRY, 2024, deadline=dt.date(2024, 3, 31)).set_index("单位代码")
    # 乐都区 was accepted at 01:30 on 1 April Beijing time: late. 工业园区 at 23:59 on 31 March: in time.
    assert df["截止前受理"].to_dict() == {"630202": "否", "630203": "否", "630222": "否", "HDGYYQ": "是"}
    df = reporting_status(LEDGER, REGISTRY, 2024, deadline=dt.date(2024, 4, 1)).set_index("单位代码")
    assert df.loc["630202", "截止前受理"] == "是"


def test_year_without_files_lists_every_unit_as_missing():
    df = reporting_status(LEDGER, REGISTRY, 2025)
    assert df["状态"].tolist() == ["未报送"] * 4
    assert df["文件数"].tolist() == [0] * 4


def test_markdown_summarises_and_escapes_pipes():
    md = status_markdown(reporting_status(LEDGER, REGISTRY, 2024))
    lines = md.splitlines()
    assert lines[0] == "共 4 个单位：已受理 2，已退回 1，未报送 1"
    assert lines[2].startswith("| 单位代码 | 单位名称 | 状态 | 文件数 |")
    row = next(line for line in lines if line.startswith("| 630203 "))
    assert "平安\\|区.xlsx" in row
    # every table row has the header's number of cells
    assert {len(re.split(r"(?<!\\)\|", line)) for line in lines[2:]} == {len(lines[2].split("|"))}


def test_table_metadata_is_accepted_by_dagster():
    columns, records = status_table(reporting_status(LEDGER, REGISTRY, 2024, deadline=dt.date(2024, 3, 31)))
    value = dg.MetadataValue.table([dg.TableRecord(r) for r in records],
                                   dg.TableSchema([dg.TableColumn(**c) for c in columns]))
    assert [c.name for c in value.schema.columns][-1] == "截止前受理"
    assert {c.name: c.type for c in value.schema.columns}["文件数"] == "int"
    first = value.records[0].data
    assert first["单位代码"] == "630202" and first["文件数"] == 3 and first["状态"] == "已受理"


# ------------------------------------------------------------------ Data Docs

class _Text(HTMLParser):
    """Visible text and links of a page, as a reader sees them."""

    def __init__(self):
        super().__init__()
        self.text, self.links, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")
        if tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _read(path: Path) -> _Text:
    page = _Text()
    page.feed(path.read_text(encoding="utf-8"))
    page.joined = " ".join(" ".join(page.text).split())
    return page


@pytest.fixture(scope="module")
def gx_result():
    """A real GX run over a stacked frame: 25 bad 执法领域 values from one submission, one blank."""
    ctx = gx.get_context(mode="ephemeral")
    batch = ctx.data_sources.add_pandas("p").add_dataframe_asset("cases").add_batch_definition_whole_dataframe("all")
    suite = gx.ExpectationSuite(name="执法案件台账")
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(column="执法领域", value_set=["食品药品", "其他"]))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="案件编号"))
    frame = pd.DataFrame({"submission": ["a"] * 100 + ["b"] * 100,
                          "案件编号": [f"C{i}" for i in range(199)] + [None],
                          "执法领域": ["食品药品"] * 175 + [f"坏值{i:02d}" for i in range(25)]})
    return batch.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["submission"]})


def test_validation_report_is_gx_data_docs_without_per_row_lists(gx_result, tmp_path):
    assert len(gx_result.results[0].result["unexpected_index_list"]) == 25
    page = _read(write_validation_report(gx_result, tmp_path / "执法案件台账.html"))
    assert "执法案件台账" in page.joined
    assert "执法领域" in page.joined and "案件编号" in page.joined
    assert "坏值00" in page.joined  # the sample of unexpected values is shown
    assert "坏值24" not in page.joined  # the full per-row list is not: GX samples the first 20
    # the same page from the JSON form of the result
    again = _read(write_validation_report(json.loads(json.dumps(gx_result.to_json_dict())), tmp_path / "j.html"))
    assert "坏值00" in again.joined and "坏值24" not in again.joined
    assert gx_result.results[0].result["unexpected_index_list"]  # the caller's result is untouched


def test_datadocs_index_links_each_suite_page(gx_result, tmp_path):
    index = write_datadocs({"执法案件台账": gx_result, "封面/年度": gx_result.to_json_dict()}, tmp_path / "batch1")
    page = _read(index)
    assert page.links == ["执法案件台账.html", "封面_年度.html"]
    assert all((index.parent / link).is_file() for link in page.links)
    # 2 expectations, both failing (one bad value set, one blank case number)
    assert "执法案件台账 未通过 2 2" in page.joined


def test_submission_report_lists_every_problem_and_never_runs_workbook_text(tmp_path):
    receipt = {"status": "rejected", "original_name": "乐都区<2024>.xlsx", "sha256": "ab" * 32,
               "received_at": "2024-03-31T17:30:00+00:00", "unit_code": "630202", "unit_name": "乐都区",
               "year": 2024, "kind": "submission",
               "errors": [{"sheet": "年度数据", "cell": "C7", "value": "<script>alert(1)</script>",
                           "message": "应填写不小于 0 的整数"},
                          {"sheet": "执法案件台账", "cell": "B12", "value": None, "message": "案件编号不能为空"}],
               "warnings": [{"sheet": "说明", "cell": None, "value": None, "message": "多余的工作表已忽略"}]}
    index = tmp_path / "receipts" / "_datadocs" / "b1" / "index.html"
    index.parent.mkdir(parents=True)
    index.write_text("x")
    path = write_submission_report(receipt, tmp_path / "receipts" / "630202" / "r.html", index)
    raw = path.read_text(encoding="utf-8")
    assert "<script>" not in raw
    page = _read(path)
    assert "已退回" in page.joined and "630202 乐都区" in page.joined
    assert "2024-04-01 01:30:00" in page.joined  # Beijing time
    assert "错误（须改正后重新报送）：2 处" in page.joined and "提示（请核实）：1 处" in page.joined
    assert "年度数据 C7 <script>alert(1)</script> 应填写不小于 0 的整数" in page.joined
    assert "乐都区<2024>.xlsx" in page.joined
    assert (path.parent / page.links[0]).resolve() == index.resolve()
