"""`fazhi`: the console command for people and scripts (SPEC §9)."""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from assets.registry import PROJECT_DIR


def _use_instance(root: Path):
    """The Dagster instance kept under the root, so successive runs build on each other."""
    home = root / ".dagster"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_DIR / "deploy" / "dagster.sqlite.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    return dg.DagsterInstance.get()


def process(root: Path, units: str | None) -> int:
    # The cyclic collector is off while Dagster, pandas and the stages are imported and set up
    # (1.5 s of CPU with it, 1.2 s without); what is loaded by then is frozen below.
    gc.disable()
    from assets import archive
    from assets.workers import INTAKE_MODULES, warm_up

    warm_up(INTAKE_MODULES)
    root = root.resolve()
    paths = archive.Paths(root).ensure()
    # A first look at the inbox; the second, which takes the files unchanged
    # since, comes after the imports and set-up below rather than after a sleep.
    first_look, seen = time.monotonic(), archive.scan_inbox(paths.inbox, {})[1]

    from assets import intake
    from pipelines.definitions import PIPELINE_JOB, make_definitions
    from pipelines.resources import FazhiSettings

    instance = _use_instance(root)
    time.sleep(max(0.0, archive.STABLE_GAP - (time.monotonic() - first_look)))
    # Files still being copied in are left for the next run, as the sensor would.
    taken, still, failed = archive.take_stable_files(paths, seen, limit=10**9)
    for f in failed:
        print(f"未能归档：{f}", file=sys.stderr)
    if still:
        print(f"{len(still)} 个文件仍在写入，留待下次处理：{'、'.join(sorted(still))}", file=sys.stderr)
    before = {o.record_id for o in intake.all_outcomes(paths)}
    if sys.stderr.isatty():
        os.environ["FAZHI_PROGRESS"] = "1"
    defs = make_definitions(FazhiSettings(root=str(root), units_file=str(Path(units).resolve()) if units else ""))
    # Dagster's step-by-step log stays in the instance (and the UI); the terminal gets warnings only.
    quiet = {"execution": {"config": {"in_process": {}}},
             "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    job = defs.resolve_job_def(PIPELINE_JOB)
    # What is loaded by now (Dagster, pandas, the definitions) lives as long as the process: keep it
    # out of the collections the run triggers, each of which would walk all of it again, and out of
    # the last one at exit (which took most of a second).
    gc.freeze()
    gc.enable()
    result = job.execute_in_process(
        run_config=quiet, instance=instance, raise_on_error=False)
    new = [o for o in intake.all_outcomes(paths) if o.record_id not in before]
    counts = Counter(o.status for o in new)
    print(f"收取 {len(taken)} 个文件；处理 {len(new)} 个：已受理 {counts['accepted']}，"
          f"已退回 {counts['rejected']}，重复 {counts['duplicate']}。")
    for o in new:
        if o.status == "rejected":
            print(f"  退回：{o.original_name}（{o.errors} 处错误）回执 {o.receipt}")
    for year in sorted(p for p in paths.exports.iterdir() if p.is_dir()):
        packages = len(list((year / "回头看").glob("*检查包.xlsx")))
        for workbook in sorted(year.glob("*.xlsx")):
            print(f"导出：{workbook.relative_to(root)}")
        if packages:
            print(f"导出：{(year / '回头看').relative_to(root)}/ 回头看检查包 {packages} 个")
    if not result.success:
        print("管道运行失败，详见 Dagster 日志。", file=sys.stderr)
        return 1
    return 0


def template(out: Path, units: str | None) -> int:
    from assets.indicators import load_indicators
    from assets.registry import load_registry
    from assets.template import write_template

    write_template(out, registry=load_registry(units), instructions=load_indicators().instruction_rows())
    print(f"已生成报送模板：{out}")
    return 0


def demo(args: argparse.Namespace) -> int:
    from assets.demo_set import seed_inbox, tty_progress, write_demo_set

    if args.seed_inbox:
        files = seed_inbox(Path(args.seed_inbox))
        if files:
            print(f"首次启动：已在 {Path(args.seed_inbox) / 'inbox'} 放入 {len(files)} 个示例文件。")
        return 0
    if not args.out:
        print("请用 --out 指定输出目录（或用 --seed-inbox 目录）。", file=sys.stderr)
        return 2
    if args.cases < 1:
        print("--cases 至少为 1。", file=sys.stderr)
        return 2
    out = Path(args.out)
    files = write_demo_set(out, args.units, cases=args.cases, year=args.year, seed=args.seed,
                           formats=tuple(args.formats.split(",")), invalid=args.invalid,
                           satisfaction=args.satisfaction, progress=tty_progress("已生成"))
    rejected = sum(f.expected == "rejected" for f in files)
    print(f"已生成 {len(files)} 个文件（其中 {rejected} 个故意填错）：{out / 'inbox'}；单位名录：{out / 'units.csv'}\n"
          f"处理：fazhi process --root {out} --units {out / 'units.csv'}")
    return 0


def bench(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(PROJECT_DIR))  # benchmarks/ is a project folder, not an installed package
    from benchmarks.bench import run

    return run(units=args.units, cases=args.cases, naive_sample=args.naive_sample, out=Path(args.out),
               scaling=[int(n) for n in args.scaling.split(",")] if args.scaling else [],
               latency=args.latency, stages=not args.no_stages, results=Path(args.results), repeat=args.repeat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fazhi", description="海东市法治政府建设示范创建评估数据管道")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("process", help="处理收件箱中的全部文件一次（不需要后台守护进程）")
    p.add_argument("--root", default=os.environ.get("FAZHI_ROOT") or str(PROJECT_DIR),
                   help="工作目录，含 inbox/ archive/ receipts/ exports/（默认：项目目录）")
    p.add_argument("--units", help="替换单位名录的 CSV 文件（表头：单位代码,单位名称,别名,曾用代码）")
    t = sub.add_parser("template", help="生成空白报送模板")
    t.add_argument("--out", required=True, help="输出的 .xlsx 文件")
    t.add_argument("--units", help="单位名录 CSV（默认：海东市）")
    d = sub.add_parser("demo", help="生成演示数据：单位名录和收件箱（每个单位一份报送）")
    d.add_argument("--units", type=int, default=7, help="单位数（前7个为海东市各单位，其余为示例县）")
    d.add_argument("--cases", type=int, default=100, help="每份报送的执法案件数（至少1）")
    d.add_argument("--out", help="输出目录：写入 units.csv 和 inbox/")
    d.add_argument("--seed", type=int, default=0, help="随机种子：相同参数生成相同文件")
    d.add_argument("--formats", default="xlsx", help="文件格式，逗号分隔，轮流使用：xlsx,xls,ods,xlsm")
    d.add_argument("--invalid", type=int, default=0, help="故意填错的文件数")
    d.add_argument("--satisfaction", action="store_true", help="同时生成满意度测评结果文件")
    d.add_argument("--year", type=int, default=2024, help="报送年度")
    d.add_argument("--seed-inbox", metavar="ROOT",
                   help="首次启动时（ROOT/.dagster 尚不存在且收件箱为空）放入海东市7个示例文件和满意度文件")
    b = sub.add_parser("bench", help="性能基准：解析下限、朴素脚本与本管道的对比")
    b.add_argument("--units", type=int, default=300, help="单位（文件）数")
    b.add_argument("--cases", type=int, default=1000, help="每个文件的执法案件数")
    b.add_argument("--naive-sample", type=int, default=30, help="朴素脚本实际运行的文件数（按每文件耗时外推）")
    b.add_argument("--out", default=str(PROJECT_DIR / "benchmarks" / "out"), help="数据缓存和运行目录")
    b.add_argument("--scaling", default="", help="另测这些单位数下的每文件耗时，如 300,1000,3000")
    b.add_argument("--repeat", type=int, default=1, help="主规模和 --scaling 的每个规模各测几次（下限和管道各取最快一次，各次均列出）")
    b.add_argument("--latency", action="store_true", help="启动 dagster dev，测放入文件到回执的时间")
    b.add_argument("--no-stages", action="store_true", help="不做分阶段计时运行")
    b.add_argument("--results", default=str(PROJECT_DIR / "benchmarks" / "results.md"),
                   help="结果表（Markdown；同名 .json 为原始数据）")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args)
    if args.command == "bench":
        return bench(args)
    if args.command == "process":
        return process(Path(args.root), args.units)
    return template(Path(args.out), args.units)


if __name__ == "__main__":
    sys.exit(main())
