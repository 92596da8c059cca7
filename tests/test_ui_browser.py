"""The live path as an operator meets it: `dagster dev`, a file dropped in the inbox, the UI in Chromium.

Starts the real webserver and daemon on a free localhost port with a temporary
DAGSTER_HOME and FAZHI_ROOT, drops a valid workbook, waits for its receipt
(printing the drop-to-receipt latency), then opens the asset graph, the
`submission` partition and its Great Expectations check in headless Chromium
and saves screenshots. Needs Debian's /usr/bin/chromium (never downloads a browser).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from unittest import mock

import pytest

from assets.demo import submission_sheets, write_workbook
from assets.registry import PROJECT_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PARTITION = "2024-630202"
SENSOR_TICKS = """{ sensorOrError(sensorSelector: {repositoryLocationName: "fazhi",
  repositoryName: "__repository__", sensorName: "inbox_sensor"}) {
  ... on Sensor { sensorState { ticks(limit: 1) { status } } } } }"""


def _wait(what: str, seconds: float, probe):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, data: bytes | None = None):
    try:
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing: .ci/run installs it with apt")
        pytest.skip("/usr/bin/chromium is missing: apt-get install chromium")
    return CHROMIUM


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A running `dagster dev`: (base url, FAZHI_ROOT, DAGSTER_HOME); stopped with its whole process group."""
    tmp = tmp_path_factory.mktemp("live")
    home, root = tmp / "dagster_home", tmp / "root"
    home.mkdir()
    (root / "inbox").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "deploy" / "dagster.sqlite.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "FAZHI_ROOT": str(root)}
    env.pop("FAZHI_UNITS", None)
    log = open(tmp / "dagster.log", "wb")
    proc = subprocess.Popen([str(PROJECT_DIR / ".venv" / "bin" / "dagster"), "dev", "-w", "workspace.yaml",
                             "-h", "127.0.0.1", "-p", str(port)],
                            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait("the webserver (/server_info)", 120, lambda: proc.poll() is None and _get(f"{base}/server_info"))
        yield base, root, home
    finally:
        for sig, grace in ((signal.SIGINT, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()
        print(f"dagster dev log: {tmp / 'dagster.log'}")


def _sensor_has_ticked(base: str) -> bool:
    body = _get(f"{base}/graphql", json.dumps({"query": SENSOR_TICKS}).encode())
    state = ((body or {}).get("data") or {}).get("sensorOrError", {}).get("sensorState")
    return bool(state and state["ticks"])


def _run_finished(home: Path) -> bool:
    import dagster as dg

    with mock.patch.dict(os.environ, {"DAGSTER_HOME": str(home)}), dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        return bool(runs) and all(r.is_finished for r in runs)


def test_dropped_file_gets_a_receipt_and_shows_in_the_ui(live, chromium, tmp_path):
    base, root, home = live
    # The sensor runs by default: wait for its first tick so the latency below is the steady state.
    _wait("the inbox sensor's first tick", 180, lambda: _sensor_has_ticked(base))

    staged = write_workbook(submission_sheets("630202", "乐都区", 2024, cases=15, seed=1), tmp_path / "乐都区2024.xlsx")
    dropped = time.monotonic()
    os.replace(staged, root / "inbox" / staged.name)
    receipt_path = _wait("the receipt", 180, lambda: next((root / "receipts").rglob("*.json"), None))
    latency = time.monotonic() - dropped
    print(f"drop -> receipt latency: {latency:.1f} s")
    receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
    assert receipt["status"] == "accepted" and receipt["unit_code"] == "630202", receipt["errors"][:5]
    assert receipt_path.parent.name == "630202"
    assert not (root / "inbox" / staged.name).exists()
    _wait("the run to finish", 300, lambda: _run_finished(home))

    from playwright.sync_api import expect, sync_playwright

    # A page's data comes from several GraphQL queries; on a loaded machine they take longer
    # than the assertions' own default of 5 s (actions get the same 60 s below).
    expect.set_options(timeout=60_000)

    shots = tmp_path / "screenshots"
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(chromium), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1600, "height": 1000}, locale="zh-CN")
        page = browser.new_page()
        page.set_default_timeout(60_000)

        def show(path: str, name: str):
            page.goto(base + path)
            skip = page.get_by_role("button", name="Skip")  # first-visit newsletter dialog
            try:
                skip.click(timeout=5_000)
            except Exception:  # noqa: BLE001 - shown once per profile only
                pass
            return page, shots / f"{name}.png"

        # The intake group's asset graph: both assets, the check passed, partitions filled.
        page, shot = show("/locations/fazhi/asset-groups/intake", "1_asset_graph")
        expect(page.get_by_text("intake_batch", exact=True).first).to_be_visible()
        expect(page.get_by_text("submission", exact=True).first).to_be_visible()
        expect(page.get_by_text("1 / 1 Passed")).to_be_visible()
        expect(page.get_by_text("7 partitions")).to_be_visible()
        page.screenshot(path=shot)

        # The unit-year partition: materialised, with the file and the clerk-facing metadata.
        page, shot = show(f"/assets/submission?view=partitions&partition={PARTITION}", "2_partition")
        expect(page.get_by_text("Materialized (1)")).to_be_visible()
        expect(page.get_by_text("Missing (6)")).to_be_visible()
        expect(page.get_by_text("乐都区2024.xlsx").first).to_be_visible()
        expect(page.get_by_text("630202 乐都区").first).to_be_visible()
        assert page.get_by_text(PARTITION).count() >= 1
        page.screenshot(path=shot, full_page=True)

        # The Great Expectations check of that partition.
        page, shot = show("/assets/submission?view=checks", "3_check")
        expect(page.get_by_text("great_expectations").first).to_be_visible()
        expect(page.get_by_text("Passed", exact=True)).to_be_visible()
        expect(page.get_by_text("校验通过").first).to_be_visible()
        expect(page.get_by_text(PARTITION).first).to_be_visible()
        page.screenshot(path=shot, full_page=True)
        browser.close()

    for shot in sorted(shots.glob("*.png")):
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
