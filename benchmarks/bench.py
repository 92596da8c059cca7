"""`fazhi bench`: the pipeline against the parse floor and a naive script, on the same files.

Data sets are generated once per size into OUT/<units>x<cases>/data and reused.
Every measured thing runs in its own subprocess: wall time, CPU time (user+sys)
and peak RSS belong to that process and its descendants alone (os.wait4 for the
process, /proc sampled every 0.1 s for worker processes; peak RSS is the
largest sum over the live processes).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from assets.demo_set import tty_progress, write_demo_set
from assets.registry import PROJECT_DIR

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
BIN = Path(sys.executable).parent
LATENCY_DROPS = 5
TRASH = ".trash"
TARGETS = {"pipeline_vs_floor": 2.0, "naive_vs_pipeline": 5.0, "peak_rss_mb": 2048,
           "latency_median_s": 10.0, "scaling_spread": 0.25}
FLOOR_TARGET_FILES = 3000  # the ratio to the floor is a target from this size up; smaller runs show it only


@dataclass
class Measured:
    what: str
    files: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    note: str = ""

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall_s


def measure(what: str, cmd: list[str], files: int, log: Path, env: dict | None = None) -> Measured:
    log.parent.mkdir(parents=True, exist_ok=True)
    # Gigabytes copied for the previous run are still being written back; the
    # pipeline's fsyncs would wait behind them.
    os.sync()
    with open(log, "w") as fh:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_DIR)
        tree = _TreeSampler(proc.pid)
        tree.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        tree.halt()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[:3])} … failed ({proc.returncode}); see {log}")
    # wait4 misses workers whose parent never reaps them (a forkserver); the
    # sampler misses the last 0.1 s of each process: take the larger of each.
    cpu = max(usage.ru_utime + usage.ru_stime, sum(tree.cpu.values()))
    return Measured(what, files, wall, cpu, max(usage.ru_maxrss * 1024, tree.peak_rss) / 2**20)


class _TreeSampler(threading.Thread):
    """CPU seconds per process and the peak summed RSS of a process and all its descendants."""

    TICK, PAGE = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.cpu, self.peak_rss, self._done = root, {}, 0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            self.sample()

    def halt(self) -> None:
        self._done.set()
        self.join()

    def sample(self) -> None:
        stats = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    raw = Path(f"/proc/{name}/stat").read_text()
                except OSError:
                    continue
                f = raw[raw.rindex(")") + 2:].split()  # state ppid … utime(11) stime(12) … rss(21)
                stats[int(name)] = (int(f[1]), (int(f[11]) + int(f[12])) / self.TICK, int(f[21]) * self.PAGE)
        tree, grew = {self.root}, True
        while grew:
            more = {pid for pid, (ppid, _, _) in stats.items() if ppid in tree} - tree
            tree |= more
            grew = bool(more)
        live = [pid for pid in tree if pid in stats]
        self.cpu.update({pid: stats[pid][1] for pid in live})
        self.peak_rss = max(self.peak_rss, sum(stats[pid][2] for pid in live))


def dataset(out: Path, units: int, cases: int) -> Path:
    """OUT/<units>x<cases>/data with units.csv and inbox/, generated once."""
    data = out / f"{units}x{cases}" / "data"
    if not (data / ".complete").exists():
        shutil.rmtree(data, ignore_errors=True)
        print(f"生成 {units} 个文件（每个 {cases} 件执法案件）…", file=sys.stderr)
        write_demo_set(data, units, cases=cases, invalid=math.ceil(units / 100), satisfaction=True,
                       progress=tty_progress("已生成"))
        (data / ".complete").touch()
    return data


def set_aside(folder: Path) -> None:
    """Move an earlier run's folder into OUT/.trash, emptied when the benchmark ends.

    Deleting it here would slow the next measured run: without a journal (as on
    this machine's disk), ext4 passes over every inode freed in the last 60 s
    (360 s while its inode table is unwritten) when it allocates a new one
    (`recently_deleted` in fs/ext4/ialloc.c). Right after the 25,000 files of a
    3,000-file run were deleted, the next run spent 4-6 s more of kernel CPU
    creating its own files.
    """
    if folder.exists():
        trash = folder.parent.parent / TRASH
        trash.mkdir(exist_ok=True)
        os.replace(folder, trash / f"{folder.parent.name}-{folder.name}-{time.time_ns()}")


def fresh_root(data: Path, name: str) -> Path:
    root = data.parent / name
    set_aside(root)
    shutil.copytree(data / "inbox", root / "inbox")
    return root


def submissions(data: Path) -> list[Path]:
    return sorted(p for p in (data / "inbox").iterdir() if "满意度" not in p.name)


def floor(data: Path) -> Measured:
    files = list((data / "inbox").iterdir())
    n = len(files)
    # The pipeline reads a fresh copy, which is in the page cache; so are the floor's files.
    for f in files:
        f.read_bytes()
    return measure("parse floor (calamine, every sheet)", [PYTHON, str(HERE / "floor.py"), str(data / "inbox")],
                   n, data.parent / "floor.log")


def pipeline(data: Path) -> tuple[Measured, dict]:
    root = fresh_root(data, "run")
    n = len(list((root / "inbox").iterdir()))
    m = measure("pipeline (fazhi process)", [str(BIN / "fazhi"), "process", "--root", str(root),
                                             "--units", str(data / "units.csv")], n, data.parent / "pipeline.log")
    statuses: dict[str, int] = {}
    for p in (root / "receipts").rglob("*.json"):
        s = json.loads(p.read_text(encoding="utf-8"))["status"]
        statuses[s] = statuses.get(s, 0) + 1
    m.note = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    return m, statuses


def naive(data: Path, sample: int, files_total: int) -> Measured:
    files = submissions(data)[:sample]
    log = data.parent / "naive.log"
    m = measure("naive script (openpyxl, GX per sheet per file, row loop)",
                [PYTHON, str(HERE / "naive.py"), *map(str, files)], len(files), log)
    timing = json.loads(log.read_text().strip().splitlines()[-1])
    # One-off start-up once, then the measured per-file cost for every file.
    wall = timing["startup_s"] + timing["loop_s"] / len(files) * files_total
    return Measured(m.what, files_total, wall, m.cpu_s * wall / m.wall_s, m.peak_rss_mb,
                    f"extrapolated from {len(files)} files ({m.wall_s:.1f} s measured)")


def stage_times(data: Path) -> dict:
    root = fresh_root(data, "stages")
    report = data.parent / "stages.json"
    measure("stages", [PYTHON, str(HERE / "stages.py"), str(report), "process", "--root", str(root),
                       "--units", str(data / "units.csv")], 0, data.parent / "stages.log")
    return json.loads(report.read_text(encoding="utf-8"))


def drop_latency(data: Path, drops: int = LATENCY_DROPS) -> list[dict]:
    """Drop→receipt under `dagster dev` (webserver + daemon + sensor), one file at a time, and where
    the time goes: the sensor taking the file, its receipt, and the run that then records it in
    Dagster (queued and launched, then its steps). Seconds from each drop, except the run's own."""
    base = data.parent / "latency"
    set_aside(base)
    home, root = base / ".dagster", base / "root"
    home.mkdir(parents=True)
    (root / "inbox").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "deploy" / "dagster.sqlite.yaml", home / "dagster.yaml")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DAGSTER_HOME": str(home), "FAZHI_ROOT": str(root), "FAZHI_UNITS": str(data / "units.csv")}
    with open(base / "dagster.log", "w") as log:
        server = subprocess.Popen([str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
                                   "-p", str(port)], cwd=PROJECT_DIR, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(lambda: (root / "archive").exists(), 300, "the inbox sensor never ticked")
        dropped = []
        for f in submissions(data)[:drops]:
            before = _receipt_count(root)
            t, at = time.perf_counter(), time.time()
            tmp = root / "inbox" / f".{f.name}.part"  # hidden while copying, like a finished save
            shutil.copy(f, tmp)
            os.replace(tmp, root / "inbox" / f.name)
            _wait_for(lambda: _receipt_count(root) > before, 300, f"no receipt for {f.name}")
            dropped.append((f.name, at, time.perf_counter() - t))
        return _where_drops_went(home, root, dropped)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _where_drops_went(home: Path, root: Path, dropped: list[tuple[str, float, float]]) -> list[dict]:
    """Per dropped file (name, epoch time of the drop, seconds to its receipt): when the sensor took
    it, when Dagster recorded its partition, and that run's launch and steps, once that run has ended."""
    import dagster as dg

    from assets.archive import Paths
    from assets.intake import all_outcomes

    def outcomes_now() -> dict:  # a receipt is written just before its file's outcome
        return {o.original_name: o for o in all_outcomes(Paths(root))}

    _wait_for(lambda: all(name in outcomes_now() for name, _, _ in dropped), 60, "a receipted file has no outcome")
    outcomes = outcomes_now()
    keys = [outcomes[name].partition_key for name, _, _ in dropped]
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)  # where the project's event log storage finds its files
    try:
        with dg.DagsterInstance.get() as instance:
            def recorded(key: str):
                found = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey("submission"), asset_partitions=[key]), limit=1).records
                run = instance.get_run_record_by_id(found[0].run_id) if found else None
                return (found[0], run) if run is not None and run.end_time is not None else None

            _wait_for(lambda: all(recorded(k) for k in keys), 300, "the dropped files were never recorded in Dagster")
            parts = []
            for (name, at, receipt_s), key in zip(dropped, keys):
                event, run = recorded(key)
                steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(event.run_id)
                         if s.start_time is not None and s.end_time is not None}
                parts.append({"file": name, "receipt_s": receipt_s,
                              "archived_s": dt.datetime.fromisoformat(outcomes[name].received_at).timestamp() - at,
                              "recorded_s": event.timestamp - at, "run_id": event.run_id,
                              "run_launch_s": run.start_time - run.create_timestamp.timestamp(),
                              "run_s": run.end_time - run.start_time, "steps_s": steps})
            return parts
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def _receipt_count(root: Path) -> int:
    return sum(1 for _ in (root / "receipts").rglob("*.json")) if (root / "receipts").exists() else 0


def _wait_for(ready, timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(failure)
        time.sleep(0.1)


def machine() -> str:
    mem = next((int(line.split()[1]) // 1024 // 1024 for line in open("/proc/meminfo")
                if line.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} cores, {mem} GB RAM, {platform.system()} {platform.machine()}, " \
           f"Python {platform.python_version()}"


def timed_rounds(out: Path, sizes: list[int], cases: int, repeat: int) -> dict[int, list[tuple[Measured, tuple]]]:
    """Per size, `repeat` timings of the floor and the pipeline, taken in rounds that each time every
    size once, smallest first. A slow spell of the shared machine then falls on one run of several
    sizes, not on both runs of one size: counting the fastest run, that spared the long runs, which
    outlast a spell, and penalised the short ones."""
    runs: dict[int, list[tuple[Measured, tuple]]] = {n: [] for n in sizes}
    for k in range(repeat):
        for n in sizes:
            print(f"计时：{n} 个文件的下限和管道（第 {k + 1} 次）…", file=sys.stderr)
            data = dataset(out, n, cases)
            runs[n].append((floor(data), pipeline(data)))
    return runs


def fastest(runs: list[tuple[Measured, tuple]]) -> tuple[Measured, tuple]:
    """The fastest floor run and the fastest pipeline run (with its statuses) of one size: they
    count, since a shared machine only ever slows a run down."""
    return min((f for f, _ in runs), key=lambda m: m.wall_s), min((p for _, p in runs), key=lambda p: p[0].wall_s)


def scaling_point(units: int, runs: list[tuple[Measured, tuple]]) -> dict:
    """Floor and pipeline per file at one size, from the fastest run of each; all are kept."""
    f, (p, _) = fastest(runs)
    return {"units": units, "files": p.files, "floor_s_per_file": f.wall_s / f.files,
            "pipeline_s_per_file": p.wall_s / p.files, "pipeline_vs_floor": p.wall_s / f.wall_s,
            "peak_rss_mb": max(p.peak_rss_mb for _, (p, _) in runs),
            "floor_runs_s": [f.wall_s for f, _ in runs], "pipeline_runs_s": [p.wall_s for _, (p, _) in runs],
            "pipeline_cpu_runs_s": [p.cpu_s for _, (p, _) in runs]}


def run(units: int, cases: int, naive_sample: int, out: Path, scaling: list[int], latency: bool = False,
        stages: bool = True, results: Path = HERE / "results.md", repeat: int = 1) -> int:
    out = out.resolve()
    try:
        return _run(units, cases, naive_sample, out, scaling, latency, stages, results, repeat)
    finally:
        shutil.rmtree(out / TRASH, ignore_errors=True)  # no run is timed after this


def _run(units: int, cases: int, naive_sample: int, out: Path, scaling: list[int], latency: bool,
         stages: bool, results: Path, repeat: int) -> int:
    data = dataset(out, units, cases)
    report: dict = {"date": dt.date.today().isoformat(), "machine": machine(), "units": units, "cases": cases}
    runs = timed_rounds(out, sorted({units, *scaling}), cases, repeat)
    main_runs = runs[units]
    base, (pipe, statuses) = fastest(main_runs)
    report["repeat"] = repeat
    report["floor_runs_s"] = [f.wall_s for f, _ in main_runs]
    report["pipeline_runs_s"] = [p.wall_s for _, (p, _) in main_runs]
    print("计时：朴素脚本…", file=sys.stderr)
    slow = naive(data, naive_sample, pipe.files)
    report["runs"] = [asdict(m) | {"files_per_s": m.files_per_s} for m in (base, pipe, slow)]
    report["statuses"] = statuses
    report["pipeline_vs_floor"] = pipe.wall_s / base.wall_s
    report["naive_vs_pipeline"] = slow.wall_s / pipe.wall_s
    report["peak_rss_mb"] = pipe.peak_rss_mb
    if stages:
        print("计时：分阶段…", file=sys.stderr)
        report["stages"] = stage_times(data)
    if scaling:
        report["scaling"] = [scaling_point(n, runs[n]) for n in scaling]
    if latency:
        print("计时：dagster dev 放入到回执…", file=sys.stderr)
        report["latency_parts"] = drop_latency(data)
        report["latency_s"] = [d["receipt_s"] for d in report["latency_parts"]]
    text = markdown(report)
    print(text)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(text, encoding="utf-8")
    results.with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else "✅ 达标" if ok else "❌ 未达标"


def _floor_checks(r: dict) -> list[tuple]:
    """The pipeline's wall time over the floor's at every size measured, judged from 3,000 files up."""
    ratios = {r["units"]: r["pipeline_vs_floor"]} | {s["units"]: s["pipeline_vs_floor"] for s in r.get("scaling", [])}
    limit = TARGETS["pipeline_vs_floor"]
    return [(f"本管道 / 解析下限（墙钟，{n} 个文件）", f"{ratio:.2f}×", f"≤ {limit}×（{FLOOR_TARGET_FILES} 个文件起）",
             ratio <= limit if n >= FLOOR_TARGET_FILES else None) for n, ratio in sorted(ratios.items())]


def marginal_per_file(points: list[dict]) -> list[float | None]:
    """Per size, the pipeline's seconds per file added since the size before it, (T(n) - T(m)) / (n - m):
    flat when the time grows linearly, whatever the fixed cost. None for the first size."""
    out, before = [], None
    for s in points:
        n = s.get("files", s["units"])
        t = s["pipeline_s_per_file"] * n
        out.append(None if before is None else (t - before[1]) / (n - before[0]))
        before = (n, t)
    return out


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{t:.1f}" for t in values)


LATENCY_COLUMNS = [("传感器取走", "archived_s"), ("回执", "receipt_s"), ("Dagster 记录其分区", "recorded_s"),
                   ("该运行排队与启动", "run_launch_s"), ("该运行本身", "run_s")]


def _latency_lines(parts: list[dict]) -> list[str]:
    """Each drop's way to its receipt and into Dagster, the medians, and the recording runs' steps."""
    keys = [k for _, k in LATENCY_COLUMNS]
    lines = ["", "放入→回执各段（dagster dev，逐个放入；秒。前三列自放入起计；后两列是在 Dagster 中记录该文件的那次运行："
             "从请求到开始，从开始到结束）：", "",
             "| 文件 | " + " | ".join(f"{name} s" for name, _ in LATENCY_COLUMNS) + " |",
             "|---|" + "---:|" * len(keys)]
    lines += [f"| {d['file']} | " + " | ".join(f"{d[k]:.1f}" for k in keys) + " |" for d in parts]
    lines.append("| 中位数 | " + " | ".join(f"{statistics.median(d[k] for d in parts):.1f}" for k in keys) + " |")
    runs = {d["run_id"]: d["steps_s"] for d in parts}
    steps = list(dict.fromkeys(step for s in runs.values() for step in s))  # in the order they ran
    per_step = "，".join(f"{step} {statistics.median(s[step] for s in runs.values() if step in s):.2f} s" for step in steps)
    lines += ["", f"记录这些文件的 {len(runs)} 次运行，各步骤耗时中位数：{per_step}。"
              "“传感器取走”含等文件稳定：两次查看（间隔约 1 秒）之间不变才取走。"]
    return lines


def markdown(r: dict) -> str:
    lines = [f"### {r['units']} 个文件 × 每个 {r['cases']} 件执法案件（{r['date']}，{r['machine']}）", "",
             "| 测量 | 文件数 | 墙钟 s | CPU s | 峰值内存 MB | 文件/秒 | 备注 |", "|---|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {m['what']} | {m['files']} | {m['wall_s']:.1f} | {m['cpu_s']:.1f} | {m['peak_rss_mb']:.0f} | "
              f"{m['files_per_s']:.1f} | {m['note']} |" for m in r["runs"]]
    repeat = r.get("repeat", 1)
    if repeat > 1:
        lines += ["", f"下限和本管道各测 {repeat} 次，上表为各自最快的一次。各次墙钟 s：下限 "
                  f"{_seconds(r['floor_runs_s'])}；本管道 {_seconds(r['pipeline_runs_s'])}。"]
    checks = [*_floor_checks(r),
              ("朴素脚本 / 本管道（墙钟）", f"{r['naive_vs_pipeline']:.1f}×", f"≥ {TARGETS['naive_vs_pipeline']}×",
               r["naive_vs_pipeline"] >= TARGETS["naive_vs_pipeline"]),
              ("本管道峰值内存", f"{r['peak_rss_mb']:.0f} MB", f"≤ {TARGETS['peak_rss_mb']} MB",
               r["peak_rss_mb"] <= TARGETS["peak_rss_mb"])]
    if r.get("latency_s"):
        med = statistics.median(r["latency_s"])
        checks.append(("放入→回执（dagster dev，中位数）", f"{med:.1f} s（{_seconds(r['latency_s'])}）",
                       f"≤ {TARGETS['latency_median_s']} s", med <= TARGETS["latency_median_s"]))
    if r.get("scaling"):
        per_file = [s["pipeline_s_per_file"] for s in r["scaling"]]
        mean = statistics.mean(per_file)
        spread = max(abs(x / mean - 1) for x in per_file)
        best = f"（每个规模测 {repeat} 次取最快）" if repeat > 1 else ""
        checks.append((f"每文件耗时随规模的偏差{best}", f"±{spread:.0%}", f"±{TARGETS['scaling_spread']:.0%}",
                       spread <= TARGETS["scaling_spread"]))
    lines += ["", "| 指标 | 实测 | 目标 | 结论 |", "|---|---|---|---|"]
    lines += [f"| {name} | {got} | {want} | {_verdict(ok)} |" for name, got, want, ok in checks]
    if r.get("scaling"):
        lines += ["", "| 单位数 | 下限 ms/文件 | 本管道 ms/文件 | 本管道边际 ms/文件 | 本管道/下限 | 峰值内存 MB | "
                  "各次本管道墙钟 s | 各次本管道 CPU s |", "|---:|---:|---:|---:|---:|---:|---|---|"]
        lines += [f"| {s['units']} | {s['floor_s_per_file'] * 1000:.1f} | {s['pipeline_s_per_file'] * 1000:.1f} | "
                  f"{'—' if m is None else f'{m * 1000:.1f}'} | {s['pipeline_vs_floor']:.1f}× | {s['peak_rss_mb']:.0f} | "
                  f"{_seconds(s.get('pipeline_runs_s', []))} | {_seconds(s.get('pipeline_cpu_runs_s', []))} |"
                  for s, m in zip(r["scaling"], marginal_per_file(r["scaling"]))]
        lines += ["", "边际 = 本管道比上一规模多用的时间 ÷ 多出的文件数：随规模线性增长时不变，"
                  "与文件数无关的固定开销（启动、收尾）不计入；上面的偏差按每文件总耗时计，含固定开销。"
                  "同一规模各次做的是同样的工作，CPU 秒数之差反映这台共享机器各时段的快慢。"]
    if r.get("latency_parts"):
        lines += _latency_lines(r["latency_parts"])
    if r.get("stages"):
        st = r["stages"]
        lines += ["", f"本管道分阶段（插桩运行，单进程 FAZHI_WORKERS=1，即各阶段在一个核上的耗时，总 {st['total_s']:.1f} s）：", "", "| 阶段 | 秒 | 占比 |", "|---|---:|---:|"]
        lines += [f"| {k} | {v:.1f} | {v / st['total_s']:.0%} |"
                  for k, v in sorted(st["stages"].items(), key=lambda kv: -kv[1])]
        if st["missing"]:
            lines += ["", "未能插桩（管道中已无此函数）：" + "、".join(st["missing"])]
    return "\n".join(lines) + "\n"
