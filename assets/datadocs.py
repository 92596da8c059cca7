"""Data Docs: validation results as HTML pages kept beside the receipts.

One GX page per sheet suite per batch (GX's own renderer, no file-backed
context needed) plus a small Chinese index, and one self-contained page per
received file built from its receipt. Nothing here runs GX again.
"""
from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assets.model import BEIJING, TIME_FORMAT

# Per-row lists of a COMPLETE result: megabytes for a large batch, and the
# page shows the partial (first 20) lists anyway.
HEAVY = ("unexpected_list", "unexpected_index_list", "unexpected_index_query")
if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

STATUS_TEXT = {"accepted": "已受理", "rejected": "已退回", "duplicate": "重复文件"}
STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eee}.ok{color:#176f2c}.bad{color:#b3261e}dt{font-weight:bold}dd{margin:0 0 .4em 0}
"""


def write_validation_report(result: ExpectationSuiteValidationResult | Mapping[str, Any], path: Path) -> Path:
    """Render one suite's validation result (object or its JSON dict) with GX's Data Docs renderer."""
    # GX is imported here only: receipt pages are written in worker processes that never need it
    from great_expectations.render.renderer import ValidationResultsPageRenderer

    page = _page_view().render(ValidationResultsPageRenderer().render(_trimmed(result)))
    return _write(path, page)


@functools.cache
def _page_view():
    """One view per process: each view compiles its Jinja templates anew (~0.06 s a page)."""
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView()


def _trimmed(result: ExpectationSuiteValidationResult | Mapping[str, Any]) -> ExpectationSuiteValidationResult:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationSuiteValidationResultSchema,
        ExpectationValidationResult,
    )

    if isinstance(result, Mapping):
        data = dict(result)
        data["results"] = [{**r, "result": _light(r.get("result"))} for r in result["results"]]
        return ExpectationSuiteValidationResultSchema().load(data)
    results = [ExpectationValidationResult(success=r.success, expectation_config=r.expectation_config,
                                           result=_light(r.result), meta=r.meta, exception_info=r.exception_info)
               for r in result.results]
    return ExpectationSuiteValidationResult(
        success=result.success, results=results, suite_name=result.suite_name,
        suite_parameters=result.suite_parameters, statistics=result.statistics, meta=result.meta,
        batch_id=result.batch_id, id=result.id)


def _light(result: Mapping[str, Any] | None) -> dict:
    return {k: v for k, v in (result or {}).items() if k not in HEAVY}


def write_datadocs(results: Mapping[str, ExpectationSuiteValidationResult | Mapping[str, Any]],
                   folder: Path) -> Path:
    """One page per suite of a batch and a Chinese index linking them; returns the index."""
    rows = []
    for name, result in results.items():
        page = write_validation_report(result, folder / f"{_safe(name)}.html")
        success = result["success"] if isinstance(result, Mapping) else result.success
        stats = (result["statistics"] if isinstance(result, Mapping) else result.statistics) or {}
        rows.append([f'<a href="{escape(page.name)}">{escape(name)}</a>', _verdict(success),
                     stats.get("evaluated_expectations", ""), stats.get("unsuccessful_expectations", "")])
    body = _table(["校验规则集（工作表）", "结果", "规则数", "未通过规则数"], rows, raw=True)
    return _write(folder / "index.html", _page("本批次校验结果（Great Expectations）", body))


def write_submission_report(receipt: Mapping[str, Any], path: Path, datadocs_index: Path | None = None) -> Path:
    """A readable page for one received file, from its receipt (SPEC §7.1 keys)."""
    received = dt.datetime.fromisoformat(receipt["received_at"]).astimezone(BEIJING).strftime(TIME_FORMAT)
    facts = {"文件": receipt["original_name"], "结果": STATUS_TEXT.get(receipt["status"], receipt["status"]),
             "单位": " ".join(str(v) for v in (receipt.get("unit_code"), receipt.get("unit_name")) if v) or "未识别",
             "报送年度": receipt.get("year") or "未识别", "接收时间（北京时间）": received,
             "sha256": receipt["sha256"]}
    parts = ["<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts.items()) + "</dl>"]
    if receipt["status"] == "duplicate":
        first = receipt.get("duplicate_of") or {}
        parts.append(f"<p>与此前收到的文件 {escape(str(first.get('original_name', '')))} 内容完全相同，未再次处理。</p>")
    for title, key in (("错误（须改正后重新报送）", "errors"), ("提示（请核实）", "warnings")):
        problems = receipt.get(key) or []
        parts.append(f"<h2>{title}：{len(problems)} 处</h2>")
        if problems:
            parts.append(_table(["工作表", "单元格", "填写值", "说明"],
                                [[p.get("sheet"), p.get("cell"), p.get("value"), p.get("message")] for p in problems]))
    if datadocs_index is not None:
        link = os.path.relpath(datadocs_index, path.parent)
        parts.append(f'<p><a href="{escape(link)}">本批次全部校验规则及结果（Great Expectations Data Docs）</a></p>')
    return _write(path, _page(f"校验报告：{receipt['original_name']}", "\n".join(parts)))


def _verdict(success: bool) -> str:
    return '<span class="ok">通过</span>' if success else '<span class="bad">未通过</span>'


def _table(header: list[str], rows: list[list[Any]], raw: bool = False) -> str:
    cell = (lambda v: str(v)) if raw else (lambda v: escape("" if v is None else str(v)))
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>\n{body}\n</body></html>")


def _safe(name: str) -> str:
    return re.sub(r'[\\/:*?"<>|\s]+', "_", name).strip("._") or "suite"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
