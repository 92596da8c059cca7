"""`fazhi`: the console command for people and scripts (SPEC §9)."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
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
    from assets import intake
    from pipelines.definitions import PIPELINE_JOB, make_definitions
    from pipelines.resources import FazhiSettings

    root = root.resolve()
    paths = intake.Paths(root).ensure()
    instance = _use_instance(root)
    taken, _, failed = intake.take_ready_files(paths, {}, wait_for_stable=False)
    for f in failed:
        print(f"未能归档：{f}", file=sys.stderr)
    before = {o.record_id for o in intake.all_outcomes(paths)}
    if sys.stderr.isatty():
        os.environ["FAZHI_PROGRESS"] = "1"
    defs = make_definitions(FazhiSettings(root=str(root), units_file=str(Path(units).resolve()) if units else ""))
    result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False)
    new = [o for o in intake.all_outcomes(paths) if o.record_id not in before]
    counts = Counter(o.status for o in new)
    print(f"收取 {len(taken)} 个文件；处理 {len(new)} 个：已受理 {counts['accepted']}，"
          f"已退回 {counts['rejected']}，重复 {counts['duplicate']}。")
    for o in new:
        if o.status == "rejected":
            print(f"  退回：{o.original_name}（{o.errors} 处错误）回执 {o.receipt}")
    exports = sorted(p.relative_to(root) for p in paths.exports.rglob("*.xlsx"))
    if exports:
        print("导出文件：\n" + "\n".join(f"  {p}" for p in exports))
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
    args = parser.parse_args(argv)
    if args.command == "process":
        return process(Path(args.root), args.units)
    return template(Path(args.out), args.units)


if __name__ == "__main__":
    sys.exit(main())
