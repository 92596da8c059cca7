"""The script a user would write without this project, as the benchmark's baseline.

pandas.read_excel with openpyxl per file, one Great Expectations run per sheet
per file (not-null for required columns, in-set for enums and yes/no, between
for ranges, all taken from expectations/schema.yaml), then scores in a Python
loop over rows. Prints {"files", "startup_s", "loop_s"} as JSON so the caller
can extrapolate per file without the one-off start-up.

    python benchmarks/naive.py FILE...
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((PROJECT_DIR / "expectations" / "schema.yaml").read_text(encoding="utf-8"))
INDICATORS = yaml.safe_load((PROJECT_DIR / "config" / "indicators.yaml").read_text(encoding="utf-8"))
YES = {"是", True, "Y", "√", "TRUE"}
NUMERIC = {"integer": None, "count": 0, "amount": 0, "percent": 0, "number": None}


def expectations(sheet: dict) -> list:
    """A few expectations per sheet, as a user would pick them from the schema."""
    if sheet["layout"] == "keyvalue":
        return [gxe.ExpectColumnValuesToNotBeNull(column=sheet["key_header"]),
                gxe.ExpectColumnValuesToBeInSet(column=sheet["key_header"],
                                                value_set=[i["key"] for i in sheet["items"]])]
    if sheet["layout"] == "items":
        return [gxe.ExpectColumnValuesToBeInSet(column=sheet["code_header"],
                                                value_set=[i["code"] for i in sheet["items"]]),
                gxe.ExpectColumnValuesToNotBeNull(column=sheet["value_header"], mostly=0.9)]
    out = []
    for c in sheet["columns"]:
        if c.get("required", True):
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=c["name"]))
        if c.get("values") or c["type"] == "yesno":
            out.append(gxe.ExpectColumnValuesToBeInSet(column=c["name"], value_set=c.get("values") or ["是", "否"]))
        if c["type"] in NUMERIC and (c.get("min", NUMERIC[c["type"]]) is not None):
            out.append(gxe.ExpectColumnValuesToBeBetween(column=c["name"], min_value=c.get("min", 0),
                                                         max_value=c.get("max")))
    return out


def build_validations() -> dict:
    ctx = gx.get_context(mode="ephemeral")
    source = ctx.data_sources.add_pandas("naive")
    validations = {}
    for name, sheet in SCHEMA["sheets"].items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations(sheet)))
        validations[name] = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    return validations


def number(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def matches(row, cond: dict, sheet: dict) -> bool:
    if "all_of" in cond:
        return all(matches(row, c, sheet) for c in cond["all_of"])
    if "all" in cond:
        return True
    if "column" in cond:
        return (row[cond["column"]] in YES) == bool(cond["equals"])
    if "any_value" in cond:
        return not pd.isna(row[cond["any_value"]])
    if "column_in" in cond:
        return row[cond["column_in"]] in (cond.get("values") or sheet[cond.get("values_from_schema")])
    start, end = row[cond["days_from"]], row[cond["to"]]
    return not pd.isna(start) and not pd.isna(end) and (end - start).days <= cond["at_most"]


def rate(data: str, items: dict) -> float | None:
    if "/" in data:
        num, den = (number(items.get(k)) for k in data.split("/"))
        return None if not den else 100 * (num or 0) / den
    v = number(items.get(data))
    return None if v is None else v * 100 if v <= 1 else v


def score(frames: dict[str, pd.DataFrame], year: int) -> float:
    """The total of the indicator rules, walking rows one by one."""
    items = {}
    for _, row in frames["年度数据"].iterrows():
        items[row["编号"]] = row["数值"]
    total = 0.0
    for ind in INDICATORS["indicators"]:
        p, rule, data = ind["points"], ind["rule"], ind["data"]
        if rule == "count":
            total += p * min(1, (number(items.get(data)) or 0) / ind["target"])
        elif rule == "flag":
            total += p if items.get(data) in YES else 0
        elif rule in ("rate_at_least", "rate_below", "greater_than"):
            r = rate(data, items)
            if r is None:
                total += p
            elif rule == "rate_at_least":
                total += p * min(1, r / ind["target"])
            elif rule == "rate_below":
                t = ind["target"]
                total += p if r < t else 0 if r >= 2 * t else p * (2 * t - r) / t
            else:
                total += p if r > (rate(ind["other"], items) or 0) else 0
        elif rule == "on_or_before":
            v = items.get(data)
            due = dt.datetime(year, *map(int, ind["date"].split("-")[1:]))
            total += p if isinstance(v, dt.datetime) and v <= due else 0
        elif rule == "coverage":
            sheet, among, met = SCHEMA["sheets"][data], 0, 0
            for _, row in frames[data].iterrows():
                if matches(row, ind["among"], sheet):
                    among += 1
                    met += matches(row, ind["condition"], sheet)
            total += p if among == 0 else p * met / among
    return total


def main(files: list[str]) -> None:
    validations = build_validations()
    started = time.perf_counter()
    for f in files:
        engine = "openpyxl" if f.endswith((".xlsx", ".xlsm")) else None
        frames = pd.read_excel(f, engine=engine, sheet_name=None)
        for name, validation in validations.items():
            if name in frames:
                validation.run(batch_parameters={"dataframe": frames[name]})
        cover = dict(zip(frames["封面"].iloc[:, 0], frames["封面"].iloc[:, 1]))
        score(frames, int(number(cover.get("报送年度")) or 2024))
    loop = time.perf_counter() - started
    print(json.dumps({"files": len(files), "startup_s": started - STARTED, "loop_s": loop}))


if __name__ == "__main__":
    main(sys.argv[1:])
