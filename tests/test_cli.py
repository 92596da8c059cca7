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
