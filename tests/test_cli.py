"""`fazhi process` end to end, as a real console command on a real folder."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from assets import archive, intake
from assets.demo import submission_sheets, write_workbook

FAZHI = str(Path(sys.executable).with_name("fazhi"))


def run_fazhi(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([FAZHI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def receipts(root: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((root / "receipts").rglob("*.json"))]


def test_kill_in_the_middle_of_a_batch_then_rerun_loses_nothing_and_repeats_nothing(tmp_path):
    root = tmp_path / "root"
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    units = [("630202", "乐都区"), ("630203", "平安区"), ("630222", "民和回族土族自治县")]
    shas = set()
    for i in range(24):
        code, name = units[i % 3]
        f = write_workbook(submission_sheets(code, name, 2024, cases=30, seed=i), inbox / f"{name}_{i:02d}.xlsx")
        shas.add(hashlib.sha256(f.read_bytes()).hexdigest())

    env = {**os.environ, "FAZHI_BATCH_SIZE": "2"}
    proc = subprocess.Popen([FAZHI, "process", "--root", str(root)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processed = root / "store" / "processed"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = len(list(processed.glob("*.json"))) if processed.exists() else 0
        if 2 <= done < 20:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(processed.glob("*.json")))
    assert 0 < done_before < 24
    assert not any(inbox.iterdir())  # bytes are archived before anything else

    result = run_fazhi("process", "--root", str(root))
    assert result.returncode == 0, result.stderr
    outcomes = intake.all_outcomes(archive.Paths(root))
    assert len(outcomes) == 24 and {o.sha256 for o in outcomes} == shas
    assert all(o.status == "accepted" for o in outcomes)
    rs = receipts(root)
    assert len(rs) == 24 and len({(r["received_at"], r["original_name"]) for r in rs}) == 24
    for sha in shas:
        assert (root / "archive" / "objects" / sha[:2] / sha).read_bytes()
    assert f"处理 {24 - done_before} 个" in result.stdout

    # A third run finds nothing to do and changes nothing.
    again = run_fazhi("process", "--root", str(root))
    assert again.returncode == 0 and "处理 0 个" in again.stdout
    assert len(receipts(root)) == 24


def test_mixed_inbox_every_format_duplicates_and_hostile_files(tmp_path):
    from factory import billion_laughs, encrypted_ole, set_cell, zip_bomb

    from assets.demo import satisfaction_sheets

    root = tmp_path / "root"
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    units = [("630202", "乐都区"), ("630203", "平安区"), ("632122", "民和县"),  # former code + alias
             ("630223", "互助土族自治县"), ("HDGYYQ", "海东工业园区")]
    expected = {}
    for (code, name), fmt in zip(units, ["xlsx", "xlsm", "xls", "ods", "xlsx"]):
        f = write_workbook(submission_sheets(code, name, 2024, cases=25, seed=len(expected)),
                           inbox / f"{name} 2024年报送.{fmt}")
        expected[f.name] = "accepted"
    bad = submission_sheets("630224", "化隆回族自治县", 2024, cases=10, seed=9)
    set_cell(bad, "年度数据", "C7", "abc")
    write_workbook(bad, inbox / "化隆县-有错误.xlsx")
    expected["化隆县-有错误.xlsx"] = "rejected"
    first = inbox / "乐都区 2024年报送.xlsx"
    (inbox / "乐都区 再次发送.xlsx").write_bytes(first.read_bytes())
    expected["乐都区 再次发送.xlsx"] = "duplicate"
    write_workbook(satisfaction_sheets([(c, n, 2024, 90.5) for c, n in units]), inbox / "2024年满意度测评结果.xlsx")
    expected["2024年满意度测评结果.xlsx"] = "accepted"

    hostile = {
        "空文件.xlsx": lambda p: p.write_bytes(b""),
        "截断.xlsx": lambda p: p.write_bytes(first.read_bytes()[:3000]),
        "网页.xls": lambda p: p.write_text("<html><body><table><tr><td>1</td></tr></table></body></html>"),
        "表格.xlsx": lambda p: p.write_text("单位代码,单位名称\n630202,乐都区\n", encoding="utf-8"),
        "炸弹.xlsx": zip_bomb,
        "实体攻击.xlsx": lambda p: (p.write_bytes(first.read_bytes()), billion_laughs(p)),
        "加密.xlsx": encrypted_ole,
        "-=怪名字 😀 (1).xlsx": lambda p: p.write_bytes(b"PK\x03\x04garbage"),
        "说明.txt": lambda p: p.write_text("hello"),
    }
    for name, build in hostile.items():
        build(inbox / name)
        expected[name] = "rejected"
    originals = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inbox.iterdir()}
    (inbox / "~$乐都区 2024年报送.xlsx").write_bytes(b"owner lock")

    result = run_fazhi("process", "--root", str(root))
    assert result.returncode == 0, result.stderr
    rs = {r["original_name"]: r for r in receipts(root)}
    assert {n: r["status"] for n, r in rs.items()} == expected
    for name, sha in originals.items():
        assert rs[name]["sha256"] == sha
        assert (root / "archive" / "objects" / sha[:2] / sha).exists()
    assert [p.name for p in inbox.iterdir()] == ["~$乐都区 2024年报送.xlsx"]
    for name in hostile:
        (err,) = rs[name]["errors"]
        assert err["sheet"] is None and err["cell"] is None and len(err["message"]) > 10
    err = next(e for e in rs["化隆县-有错误.xlsx"]["errors"] if e["cell"] == "C7")
    assert err["sheet"] == "年度数据" and err["value"] == "abc"
    assert rs["民和县 2024年报送.xls"]["unit_code"] == "630222"
    for name, r in rs.items():
        assert (r["status"] == "accepted") == (not r["errors"]), name
        assert Path(root / "receipts").joinpath(r["unit_code"] or "unknown").is_dir()

    # Scores for the year, 正式 for the units the survey measured.
    import openpyxl
    wb = openpyxl.load_workbook(root / "exports" / "2024" / "海东市2024年法治政府建设示范创建评分.xlsx")
    head = [c.value for c in wb["总览"][_header_row(wb["总览"], "排名")]][:7]
    assert head == ["排名", "单位代码", "单位名称", "总分", "等次", "可推荐示范", "状态"]


def _header_row(ws, first: str) -> int:
    return next(r for r in range(1, 10) if ws.cell(r, 1).value == first)


def _set_item(sheets: dict, code: str, value) -> None:
    row = next(r for r in sheets["年度数据"] if r and r[0] == code)
    row[2] = value


def _total(root: Path, year: int, unit_code: str) -> float:
    import openpyxl
    ws = openpyxl.load_workbook(root / "exports" / str(year) / f"海东市{year}年法治政府建设示范创建评分.xlsx")["总览"]
    head = _header_row(ws, "排名")
    return next(ws.cell(r, 4).value for r in range(head + 1, ws.max_row + 1) if ws.cell(r, 2).value == unit_code)


def test_lookback_packages_across_runs_with_and_without_baseline(tmp_path):
    import openpyxl

    from assets.demo import satisfaction_sheets

    root = tmp_path / "root"
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    # Run 1: the naming year 2023 of 乐都区 (the naming year itself gets no package).
    write_workbook(submission_sheets("630202", "乐都区", 2023, cases=40, seed=1, naming="省级示范", naming_year=2023),
                   inbox / "乐都区2023.xlsx")
    write_workbook(satisfaction_sheets([("630202", "乐都区", 2023, 95)]), inbox / "2023满意度.xlsx")
    assert run_fazhi("process", "--root", str(root)).returncode == 0
    assert not (root / "exports" / "2023" / "回头看" / "乐都区回头看检查包.xlsx").exists()
    baseline = _total(root, 2023, "630202")

    # Run 2: 2024, three yes/no items turned to 否 (−60 points); 平安区 named 2022 has no baseline.
    worse = submission_sheets("630202", "乐都区", 2024, cases=400, seed=2, naming="省级示范", naming_year=2023)
    for code in ("D05", "D11", "D14"):
        _set_item(worse, code, "否")
    write_workbook(worse, inbox / "乐都区2024.xlsx")
    write_workbook(submission_sheets("630203", "平安区", 2024, cases=12, seed=3, naming="全国示范", naming_year=2022),
                   inbox / "平安区2024.xlsx")
    write_workbook(satisfaction_sheets([("630202", "乐都区", 2024, 95), ("630203", "平安区", 2024, 95)]),
                   inbox / "2024满意度.xlsx")
    result = run_fazhi("process", "--root", str(root))
    assert result.returncode == 0, result.stderr
    current = _total(root, 2024, "630202")
    assert round(baseline - current, 2) >= 60
    expected = "限期整改" if current < 800 else "重点关注"  # SPEC §6, first match wins (no veto here)

    folder = root / "exports" / "2024" / "回头看"
    wb = openpyxl.load_workbook(folder / "乐都区回头看检查包.xlsx")
    assert wb.sheetnames == ["概况", "指标对比", "整改清单", "案卷抽查", "佐证材料核查", "负面事件"]
    overview = "\n".join(str(c.value) for row in wb["概况"].iter_rows() for c in row if c.value is not None)
    assert expected in overview and f"{baseline:.2f}" in overview and f"{current:.2f}" in overview
    # 400 cases: n = max(10, ceil(5% of 400)) = 20 case rows, each citing its source row.
    ws = wb["案卷抽查"]
    sources = [c.value for c in ws[next(r for r in range(1, 10) if "来源" in [x.value for x in ws[r]])]]
    col = sources.index("来源") + 1
    head = next(r for r in range(1, 10) if ws.cell(r, col).value == "来源")
    cited = [ws.cell(r, col).value for r in range(head + 1, ws.max_row + 1) if ws.cell(r, col).value]
    assert len(cited) == 20 and all(s.startswith("乐都区2024.xlsx!执法案件台账!A") for s in cited)
    flags = [r for r in wb["指标对比"].iter_rows(values_only=True) if r and r[0] in ("A5", "D1", "E3")]
    assert len(flags) == 3

    ping = openpyxl.load_workbook(folder / "平安区回头看检查包.xlsx")["概况"]
    assert "无基线" in "\n".join(str(c.value) for row in ping.iter_rows() for c in row if c.value is not None)


def test_process_leaves_a_file_still_being_written_for_the_next_run(tmp_path):
    root = tmp_path / "root"
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    write_workbook(submission_sheets("630202", "乐都区", 2024, cases=5, seed=1), inbox / "乐都区.xlsx")
    growing = inbox / "还在复制.xlsx"
    with open(growing, "ab") as fh:
        proc = subprocess.Popen([FAZHI, "process", "--root", str(root)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        while proc.poll() is None:  # the copy goes on for as long as the command looks
            fh.write(b"x" * 100)
            fh.flush()
            time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert [p.name for p in inbox.iterdir()] == ["还在复制.xlsx"]
    assert "1 个文件仍在写入" in err and "收取 1 个文件" in out
    assert [r["original_name"] for r in receipts(root)] == ["乐都区.xlsx"]
