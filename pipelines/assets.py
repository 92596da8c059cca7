"""Thin Dagster wrappers around the stages in `assets/`."""

import itertools
import json
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pandas as pd

from assets import intake, yearly
from assets.archive import Paths
from assets.indicators import load_indicators
from assets.model import records
from assets.registry import PROJECT_DIR
from assets.workers import worker_count
from assets.status import reporting_status, status_summary, status_table
from expectations.schema import load_schema
from pipelines.resources import FazhiSettings
from pipelines.storage import log_materializations

INDICATORS_FILE = PROJECT_DIR / "config" / "indicators.yaml"
SUBMISSIONS = dg.DynamicPartitionsDefinition(name="submissions")
CHECK_NAME = "great_expectations"
CHECK_EVENTS_MAX = 200  # files per chunk above which only rejected files get a check event

submission = dg.AssetSpec(
    "submission",
    partitions_def=SUBMISSIONS,
    group_name="intake",
    description="县区报送：每个分区是一个单位的一个年度（年度-单位代码）。每收到该单位的一份新文件即为该分区的一次物化，"
                "分区历史即该单位的报送文件历史；未报送的单位显示为缺失分区。",
    kinds={"excel"},
    owners=["team:市依法治市办"],
)


def _progress(done: int, total: int) -> None:
    if os.environ.get("FAZHI_PROGRESS"):
        print(f"\r已处理 {done}/{total} 个文件", end="" if done < total else "\n", file=sys.stderr, flush=True)


def _failing_cells(errors: list[dict]) -> dg.MetadataValue:
    """The first 50 errors (receipt form) as a list an operator can read."""
    return dg.MetadataValue.md("\n".join(
        f"- {e['sheet'] or ''}!{e['cell'] or ''}：{e['message']}（填写值：{e['value']}）" for e in errors[:50]) or "无")


def _check_metadata(out: intake.Outcome, paths: Paths) -> dict:
    receipt = json.loads((paths.root / out.receipt).read_text(encoding="utf-8"))
    return {
        "错误数": out.errors,
        "提示数": out.warnings,
        "文件": out.original_name,
        "回执": dg.MetadataValue.path(str(paths.root / out.receipt)),
        "校验报告": dg.MetadataValue.path(str((paths.root / out.receipt).with_suffix(".html"))),
        "未通过的单元格": _failing_cells(receipt["errors"]),
    }


@dg.asset(
    group_name="intake",
    description="处理收件箱中已归档、尚未处理的文件：读取全部工作表、用 Great Expectations 校验、为每个文件生成回执。",
    kinds={"python", "great_expectations"},
    owners=["team:市依法治市办"],
)
def intake_batch(context: dg.AssetExecutionContext, fazhi: FazhiSettings) -> dg.MaterializeResult:
    paths, registry = fazhi.paths, fazhi.registry()
    known = set(context.instance.get_dynamic_partitions(SUBMISSIONS.name))
    leftovers = intake.unreported(paths)  # processed by a run that died before telling Dagster
    handled = []
    for outcomes in itertools.chain([leftovers], intake.process_pending(
            paths, registry, load_indicators(), progress=_progress)):
        _report(context, outcomes, registry, known, paths)
        intake.mark_reported(paths, outcomes)
        handled += outcomes
    _tag_run(context, handled)
    counts = Counter(o.status for o in handled)
    return dg.MaterializeResult(metadata={
        "处理文件数": len(handled),
        "已受理": counts["accepted"], "已退回": counts["rejected"], "重复": counts["duplicate"],
        "涉及年度": ", ".join(sorted({str(o.year) for o in handled if o.partition_key})) or "无",
    })


def _report(context: dg.AssetExecutionContext, outcomes: list[intake.Outcome], registry,
            known: set[str], paths: Paths) -> None:
    """One materialisation per submission partition, and its check result.

    The materialisations of a chunk are written as one batch. A check evaluation
    costs database writes of its own (3–4 ms on SQLite), so a chunk of a national
    bulk load records one only for rejected files; accepted ones carry the verdict
    in their materialisation.
    """
    years = {o.year for o in outcomes if o.partition_key}
    new_keys = [k for k in (intake.partition_key(y, u.code) for y in sorted(years) for u in registry.units)
                if k not in known]
    if new_keys:  # every registry unit, so that units without a file show as missing
        context.instance.add_dynamic_partitions(SUBMISSIONS.name, new_keys)
        known.update(new_keys)
    every_check = len(outcomes) <= CHECK_EVENTS_MAX
    recorded = [o for o in outcomes if o.partition_key is not None and o.status != "duplicate"]
    log_materializations(context, [
        dg.AssetMaterialization(
            asset_key=submission.key, partition=out.partition_key,
            description=f"{out.unit_name} {out.year}年 报送文件 {out.original_name}",
            metadata={"单位": f"{out.unit_code} {out.unit_name}", "状态": "已受理" if out.status == "accepted" else "已退回",
                      "文件": out.original_name, "sha256": out.sha256, "接收时间": out.received_at,
                      "填报日期": out.filled_on or "", "错误数": out.errors, "提示数": out.warnings,
                      "各表记录数": dg.MetadataValue.json(out.rows or {}),
                      "dagster/row_count": sum((out.rows or {}).values()),
                      **({"预评分（不含满意度）": out.score_preview} if out.score_preview is not None else {})})
        for out in recorded])
    for out in recorded:
        if every_check or out.status == "rejected":
            context.log_event(dg.AssetCheckEvaluation(
                asset_key=submission.key, check_name=CHECK_NAME, passed=out.status == "accepted",
                partition=out.partition_key, blocking=True, metadata=_check_metadata(out, paths),
                description="校验通过" if out.status == "accepted" else f"发现 {out.errors} 处错误，文件已退回"))


def _tag_run(context: dg.AssetExecutionContext, outcomes: list[intake.Outcome]) -> None:
    """Tag the run with the units and years it handled, so operators can filter runs by county."""
    units = sorted({o.unit_code for o in outcomes if o.unit_code})
    years = sorted({str(o.year) for o in outcomes if o.year})
    tags = {"fazhi/year": ",".join(years)[:200]} if years else {}
    if len(units) == 1:
        tags["fazhi/unit"] = units[0]
    if len(units) <= 50:  # a tag per unit stays readable; a national batch just says how many
        tags.update({f"fazhi/unit/{u}": "1" for u in units})
    tags["fazhi/units"] = str(len(units))
    context.instance.add_run_tags(context.run_id, tags)


@dg.asset(
    deps=[intake_batch],
    group_name="intake",
    description="各单位报送情况（按年度）：名录中每个单位为 已受理 / 已退回 / 未报送，附最近文件及接收时间，便于截止前催报。",
    kinds={"pandas"},
    owners=["team:市依法治市办"],
)
def reporting_status_table(fazhi: FazhiSettings) -> dg.MaterializeResult:
    outcomes, registry, meta = intake.all_outcomes(fazhi.paths), fazhi.registry(), {}
    for year in sorted({o.year for o in outcomes if o.partition_key}):
        df = reporting_status(outcomes, registry, year)
        columns, records = status_table(df)
        meta[f"{year}年报送情况"] = dg.MetadataValue.table(
            [dg.TableRecord(r) for r in records], dg.TableSchema([dg.TableColumn(**c) for c in columns]))
        meta[f"{year}年概况"] = dg.MetadataValue.md(status_summary(df))
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    deps=[intake_batch, submission],
    group_name="scoring",
    description="年度结果：每个单位取计分报送（填报日期最新者），按指标体系计分、定等次、判断可推荐示范并排名；满意度到达后更新。",
    kinds={"pandas"},
    owners=["team:市依法治市办"],
)
def year_results(context: dg.AssetExecutionContext, fazhi: FazhiSettings) -> dg.MaterializeResult:
    updated = yearly.refresh_year_results(fazhi.paths, fazhi.registry(), load_schema(), load_indicators(),
                                          [INDICATORS_FILE, fazhi.units_path])
    rankings = {r.year: list(_ranking_rows(r)) for r in updated}
    return dg.MaterializeResult(metadata={
        "更新年度": ", ".join(map(str, rankings)) or "无变化",
        "排名预览": dg.MetadataValue.md("\n\n".join(_ranking_markdown(y, rows) for y, rows in rankings.items())
                                    or "无变化"),
        **{f"{y}年结果": _ranking_table(rows) for y, rows in rankings.items()},
    })


RANKING_COLUMNS = [("排名", "string"), ("单位代码", "string"), ("单位名称", "string"), ("总分", "float"),
                   ("等次", "string"), ("可推荐示范", "string"), ("状态", "string")]


def _ranking_rows(results):
    """The year's units in rank order, as RANKING_COLUMNS: shown both as a table and as Markdown."""
    units = results.units.sort_values(["rank", "total"], ascending=[True, False], na_position="last")
    for u in records(units, "rank", "unit_code", "unit_name", "total", "grade", "recommendation", "status"):
        yield ("" if pd.isna(u.rank) else str(int(u.rank)), u.unit_code, u.unit_name, round(u.total, 2),
               u.grade, u.recommendation, u.status)


def _ranking_table(rows: list[tuple]) -> dg.MetadataValue:
    names = [n for n, _ in RANKING_COLUMNS]
    return dg.MetadataValue.table(
        [dg.TableRecord(dict(zip(names, row))) for row in rows],
        dg.TableSchema([dg.TableColumn(n, t) for n, t in RANKING_COLUMNS]))


def _ranking_markdown(year: int, rows: list[tuple]) -> str:
    lines = [f"### {year} 年", "", "| 排名 | 单位 | 总分 | 等次 | 可推荐示范 | 状态 |", "|---|---|---|---|---|---|"]
    for rank, _, name, total, grade, recommendation, status in rows:
        lines.append(f"| {rank} | {name} | {total:.2f} | {grade} | {recommendation} | {status} |")
    return "\n".join(lines)


SCORE_WORKBOOKS = dg.AssetSpec(
    "score_workbooks",
    deps=[year_results],
    group_name="exports",
    description="评分工作簿：exports/<年度>/海东市<年度>年法治政府建设示范创建评分.xlsx（总览、一级指标、三级明细、数据质量、说明）。",
    kinds={"excel"},
    owners=["team:评估专家"],
)
LOOKBACK_PACKAGES = dg.AssetSpec(
    "lookback_packages",
    deps=[year_results],
    group_name="lookback",
    description="回头看检查包：对已命名示范单位，与命名年度比较、给出结论与理由、整改清单并抽取执法案卷。",
    kinds={"excel"},
    owners=["team:评估专家"],
)


@dg.multi_asset(specs=[SCORE_WORKBOOKS, LOOKBACK_PACKAGES], can_subset=True)
def exports(context: dg.AssetExecutionContext, fazhi: FazhiSettings):
    """Both exports in one step: with worker processes, the packages are written by them while
    this process writes the score workbook, instead of one after the other."""
    selected, system = context.selected_asset_keys, load_indicators()
    with ThreadPoolExecutor(1) as background:
        index = (background.submit(yearly.publish_lookback, fazhi.paths, system)
                 if LOOKBACK_PACKAGES.key in selected else None)
        if index is not None and worker_count() == 1:
            index.result()  # one process: one after the other, rather than two threads contending
        if SCORE_WORKBOOKS.key in selected:
            written = yearly.publish_score_workbooks(fazhi.paths, system)
            yield dg.MaterializeResult(asset_key=SCORE_WORKBOOKS.key, metadata={
                "写出文件": dg.MetadataValue.md("\n".join(f"- {w}" for w in written) or "无变化")})
        if index is not None:
            index = index.result()
            yield dg.MaterializeResult(asset_key=LOOKBACK_PACKAGES.key, metadata={
                "检查包数": len(index),
                "检查包": dg.MetadataValue.md(index.to_markdown(index=False) if len(index) else "无"),
            })


@dg.asset_check(
    asset=submission.key,
    name=CHECK_NAME,
    blocking=True,
    partitions_def=SUBMISSIONS,
    description="Great Expectations 校验（表头、类型、必填、枚举、范围、唯一性、勾稽关系、封面规则）。"
                "收件批次为每个分区记录结果；在界面中单独执行时，重新校验该分区最近一次收到的文件。",
)
def great_expectations(context: dg.AssetCheckExecutionContext, fazhi: FazhiSettings) -> dg.AssetCheckResult:
    from assets.reading import read_workbook

    paths = fazhi.paths
    key = context.partition_key
    latest = [o for o in intake.all_outcomes(paths) if o.partition_key == key and o.status != "duplicate"]
    if not latest:
        return dg.AssetCheckResult(passed=False, description="该单位本年度尚未报送", metadata={"分区": key})
    out = latest[-1]
    parsed = {out.record_id: read_workbook(paths.object(out.sha256), out.original_name)}
    problems, _ = intake.check_batch(parsed, fazhi.registry(), load_indicators(), load_schema())
    errors = [p.to_json() for p in problems[out.record_id] if p.severity == "error"]
    return dg.AssetCheckResult(
        passed=not errors,
        description="校验通过" if not errors else f"发现 {len(errors)} 处错误",
        metadata={"文件": out.original_name, "错误数": len(errors), "未通过的单元格": _failing_cells(errors)})
