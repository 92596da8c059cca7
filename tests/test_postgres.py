"""The same inputs through `fazhi process` on PostgreSQL and on SQLite give the same results.

Needs a PostgreSQL server: `eval "$(tests/postgres_server.sh)"` (as root) exports
DAGSTER_PG_HOST/PORT/USER/PASSWORD/DB. Each test run uses its own scratch database.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path
from unittest import mock

import dagster as dg
import openpyxl
import pytest

from assets.demo import satisfaction_sheets, submission_sheets, write_workbook
from assets.registry import PROJECT_DIR, load_registry

ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
FAZHI = PROJECT_DIR / ".venv" / "bin" / "fazhi"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d)?|\d{8}T\d{6}Z")
CHECK = dg.AssetCheckKey(dg.AssetKey("submission"), "great_expectations")


@pytest.fixture(scope="module")
def pg_database():
    missing = [v for v in ENV if not os.environ.get(v)]
    if missing:
        reason = f"PostgreSQL not configured ({', '.join(missing)} unset): run eval \"$(tests/postgres_server.sh)\""
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    import psycopg2

    name = f"fazhi_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(host=os.environ["DAGSTER_PG_HOST"], port=os.environ["DAGSTER_PG_PORT"],
                            user=os.environ["DAGSTER_PG_USER"], password=os.environ["DAGSTER_PG_PASSWORD"],
                            dbname=os.environ["DAGSTER_PG_DB"])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"create database {name}")
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"drop database if exists {name} with (force)")
        conn.close()


def _round_one(inbox: Path) -> None:
    write_workbook(submission_sheets("630202", "乐都区", 2024, cases=12, seed=1), inbox / "乐都区2024.xlsx")
    write_workbook(submission_sheets("630203", "平安区", 2024, cases=8, seed=2), inbox / "平安区2024.xls")
    bad = submission_sheets("630222", "民和回族土族自治县", 2024, cases=5, seed=3)
    bad["年度数据"][1][2] = "十二"  # D01 is a count: 年度数据!C2 cannot be read
    write_workbook(bad, inbox / "民和县2024.xlsx")
    shutil.copy(inbox / "乐都区2024.xlsx", inbox / "乐都区2024（副本）.xlsx")


def _round_two(inbox: Path) -> None:
    later = submission_sheets("630202", "乐都区", 2024, cases=10, seed=4, filled_on=dt.date(2025, 2, 1))
    write_workbook(later, inbox / "乐都区2024更正.xlsx")
    write_workbook(satisfaction_sheets([("630202", "乐都区", 2024, 91.5), ("630203", "平安区", 2024, 88.0)]),
                   inbox / "2024年满意度测评结果.xlsx")


def _process(root: Path, env: dict) -> None:
    done = subprocess.run([str(FAZHI), "process", "--root", str(root)], env=env, cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]


def _receipts(root: Path) -> dict[tuple[str, str], dict]:
    """(unit folder, original name) -> receipt, with arrival times masked."""
    out = {}
    for p in (root / "receipts").rglob("*.json"):
        r = json.loads(TIMESTAMP.sub("<time>", p.read_text(encoding="utf-8")))
        out[(p.parent.name, r["original_name"])] = r
    return out


def _workbooks(root: Path) -> dict[str, dict[str, list[tuple]]]:
    """exports file -> sheet -> rows of values, with times of day masked."""
    books = {}
    for p in sorted((root / "exports").rglob("*.xlsx")):
        wb = openpyxl.load_workbook(p, read_only=True)
        books[str(p.relative_to(root))] = {
            ws.title: [tuple(_mask(v) for v in row) for row in ws.iter_rows(values_only=True)] for ws in wb}
        wb.close()
    return books


def _mask(v):
    if isinstance(v, dt.datetime) and v.time() != dt.time():
        return "<time>"
    return TIMESTAMP.sub("<time>", v) if isinstance(v, str) else v


def _instance_facts(home: Path) -> dict:
    with mock.patch.dict(os.environ, {"DAGSTER_HOME": str(home)}):  # as every Dagster command has it
        instance = dg.DagsterInstance.from_config(str(home))
    try:
        asset_keys = sorted(instance.all_asset_keys())
        return {
            "storage": type(instance.event_log_storage).__name__,
            "partitions": sorted(instance.get_dynamic_partitions("submissions")),
            "materializations": {k.to_user_string(): instance.fetch_materializations(k, limit=1000).records
                                 for k in asset_keys},
            "checks": sorted((e.partition, e.status.value) for e in
                             instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=1000)),
            "runs": [r.status.value for r in instance.get_runs()],
        }
    finally:
        instance.dispose()


def test_postgres_and_sqlite_instances_give_the_same_results(pg_database, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_DB", pg_database)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    env = dict(os.environ)
    roots = {"postgres": tmp_path / "pg", "sqlite": tmp_path / "sqlite"}
    (roots["postgres"] / ".dagster").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "deploy" / "dagster.postgres.yaml", roots["postgres"] / ".dagster" / "dagster.yaml")
    for step in (_round_one, _round_two):
        staged = tmp_path / step.__name__
        staged.mkdir()
        step(staged)  # written once: a workbook's bytes carry the time it was written
        for root in roots.values():
            shutil.copytree(staged, root / "inbox", dirs_exist_ok=True)
            _process(root, env)

    receipts = {k: _receipts(r) for k, r in roots.items()}
    assert receipts["postgres"] == receipts["sqlite"]
    status = {name: r["status"] for (_, name), r in receipts["postgres"].items()}
    assert status == {"乐都区2024.xlsx": "accepted", "平安区2024.xls": "accepted", "民和县2024.xlsx": "rejected",
                      "乐都区2024（副本）.xlsx": "duplicate", "乐都区2024更正.xlsx": "accepted",
                      "2024年满意度测评结果.xlsx": "accepted"}

    books = {k: _workbooks(r) for k, r in roots.items()}
    assert list(books["postgres"]) == ["exports/2024/海东市2024年法治政府建设示范创建评分.xlsx"]
    for name, sheets in books["postgres"].items():
        for sheet, rows in sheets.items():
            assert rows == books["sqlite"][name][sheet], f"{name}!{sheet} differs"

    facts = {k: _instance_facts(r / ".dagster") for k, r in roots.items()}
    assert facts["postgres"]["storage"] == "PostgresEventLogStorage"
    assert facts["sqlite"]["storage"] == "SqliteEventLogKeepingEngines"
    units = [u.code for u in load_registry().units]
    for f in facts.values():
        assert f["partitions"] == sorted(f"2024-{c}" for c in units)
        assert f["runs"] == ["SUCCESS", "SUCCESS"]
        # 乐都区 twice (two distinct files), 平安区 and the rejected 民和县 once; never the duplicate.
        assert Counter(m.partition_key for m in f["materializations"]["submission"]) == {
            "2024-630202": 2, "2024-630203": 1, "2024-630222": 1}
        assert f["checks"] == [("2024-630202", "SUCCEEDED"), ("2024-630202", "SUCCEEDED"),
                               ("2024-630203", "SUCCEEDED"), ("2024-630222", "FAILED")]
    counts = {k: {a: len(m) for a, m in f["materializations"].items()} for k, f in facts.items()}
    assert counts["postgres"] == counts["sqlite"]
    assert counts["postgres"]["intake_batch"] == 2
