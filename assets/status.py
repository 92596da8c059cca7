"""Who has reported for a year (SPEC §1, operator): one row per registry unit."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from assets.model import BEIJING, TIME_FORMAT
from assets.registry import Registry

if TYPE_CHECKING:  # intake pulls in the readers; the status needs only the ledger's fields
    from assets.intake import Outcome

ACCEPTED, REJECTED, MISSING = "已受理", "已退回", "未报送"
ON_TIME = "截止前受理"
COLUMNS = {  # column -> Dagster TableColumn type
    "单位代码": "string", "单位名称": "string", "状态": "string", "文件数": "int",
    "最近文件": "string", "最近文件结果": "string", "最近接收时间": "string",
}
RESULT_TEXT = {"accepted": ACCEPTED, "rejected": REJECTED}


def reporting_status(outcomes: Iterable[Outcome], registry: Registry, year: int,
                     deadline: dt.date | None = None) -> pd.DataFrame:
    """Every registry unit's state for `year`, in registry order.

    A duplicate file is not a new submission (it gets no materialisation
    either), so it counts neither as a file nor as the latest one. With a
    deadline, `截止前受理` says whether a file received on or before that day
    (Beijing time) was accepted.
    """
    files = pd.DataFrame(
        [(o.unit_code, o.status, o.original_name, o.received_at) for o in outcomes
         if o.submitted_for(year)],
        columns=["单位代码", "status", "最近文件", "received_at"])
    files["received_at"] = pd.to_datetime(files["received_at"], utc=True, format="ISO8601").dt.tz_convert(BEIJING)
    files = files.sort_values("received_at", kind="stable")
    by_unit = files.groupby("单位代码", sort=False)
    latest = by_unit.tail(1).set_index("单位代码")
    accepted = files[files["status"] == "accepted"]

    table = pd.DataFrame({"单位代码": [u.code for u in registry.units],
                          "单位名称": [u.name for u in registry.units]})
    code = table["单位代码"]
    count = code.map(by_unit.size()).fillna(0).astype(int)
    table["状态"] = MISSING
    table.loc[count > 0, "状态"] = REJECTED
    table.loc[code.isin(accepted["单位代码"]), "状态"] = ACCEPTED
    table["文件数"] = count
    table["最近文件"] = code.map(latest["最近文件"]).fillna("")
    table["最近文件结果"] = code.map(latest["status"].map(RESULT_TEXT)).fillna("")
    table["最近接收时间"] = code.map(latest["received_at"].dt.strftime(TIME_FORMAT)).fillna("")
    if deadline is not None:
        in_time = accepted[accepted["received_at"].dt.date <= deadline]["单位代码"]
        table[ON_TIME] = code.isin(in_time).map({True: "是", False: "否"})
    return table


def status_counts(df: pd.DataFrame) -> dict[str, int]:
    counts = df["状态"].value_counts()
    return {s: int(counts.get(s, 0)) for s in (ACCEPTED, REJECTED, MISSING)}


def status_summary(df: pd.DataFrame) -> str:
    """One line: how many units, and how many of them in each state."""
    return f"共 {len(df)} 个单位：" + "，".join(f"{k} {v}" for k, v in status_counts(df).items())


def status_markdown(df: pd.DataFrame) -> str:
    """The summary line and the table, for Dagster's Markdown metadata."""
    header = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([status_summary(df), "", header, rule, *rows])


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def status_table(df: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """(columns, records) for `MetadataValue.table`: columns as TableColumn kwargs."""
    types = {**COLUMNS, ON_TIME: "string"}
    columns = [{"name": c, "type": types[c]} for c in df.columns]
    records = [{k: (int(v) if types[k] == "int" else str(v)) for k, v in row.items()}
               for row in df.to_dict("records")]
    return columns, records
