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

from assets import intake
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
    outcomes = intake.all_outcomes(intake.Paths(root))
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
