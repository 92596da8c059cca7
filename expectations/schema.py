"""Typed view of `schema.yaml`, the one place the workbook layout is described."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

SCHEMA_FILE = Path(__file__).with_name("schema.yaml")
# libyaml's parser when PyYAML was built with it: the indicator system loads in 8.5 ms against 51 ms,
# and a run loads it three times, the sensor at every batch.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, as yaml.safe_load reads it."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER)


TYPE_WORDING = {
    "text": "文字",
    "code": "代码（文字，保留前导0）",
    "integer": "整数",
    "count": "非负整数",
    "amount": "不小于0的数字",
    "percent": "0–100之间的百分比",
    "number": "数字",
    "yesno": "是或否",
    "date": "日期（如2024-03-05）",
    "enum": "下拉列表中的一项",
}


@dataclass(frozen=True)
class Field:
    """One typed value: a column of a table sheet, a cover item or a data item."""

    name: str
    type: str
    required: bool = True
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    default: Any = None
    unique: bool = False
    within_year: bool = False
    not_before: str | None = None
    not_after: str | None = None
    pattern: str | None = None
    rule: str | None = None
    values_from: str | None = None
    required_unless: dict | None = None
    blank_means: str | None = None
    expect: str | None = None
    unit: str | None = None
    label: str | None = None  # human name of a data item (年度数据.数据项)

    def expectation(self) -> str:
        """What the clerk should have entered, in Chinese."""
        if self.expect:
            return self.expect
        if self.values:
            return "以下之一：" + "、".join(self.values)
        text = TYPE_WORDING.get(self.type, self.type)
        if self.min is not None and self.max is not None:
            text += f"，范围{_num(self.min)}–{_num(self.max)}"
        elif self.min is not None:
            text += f"，不小于{_num(self.min)}"
        return text


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class Sheet:
    name: str
    layout: str  # keyvalue | items | table
    fields: tuple[Field, ...]
    headers: tuple[str, ...]
    key_header: str | None = None
    value_header: str | None = None
    may_be_empty: bool = False
    size_driver: bool = False
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(frozen=True)
class Schema:
    template_version: str
    file_types: tuple[str, ...]
    limits: dict
    sheets: dict[str, Sheet]
    satisfaction: Sheet
    template_sheets: tuple[str, ...] = ()

    @property
    def items_sheet(self) -> Sheet:
        return next(s for s in self.sheets.values() if s.layout == "items")

    @property
    def cover_sheet(self) -> Sheet:
        return next(s for s in self.sheets.values() if s.layout == "keyvalue")

    @property
    def table_sheets(self) -> list[Sheet]:
        return [s for s in self.sheets.values() if s.layout == "table"]


_FIELD_KEYS = set(Field.__dataclass_fields__)


def _field(raw: dict, name_key: str) -> Field:
    raw = dict(raw)
    name = str(raw.pop(name_key))
    if name_key == "code":  # 年度数据 item: its human name becomes the label
        raw["label"] = raw.pop("name", None)
    unknown = set(raw) - _FIELD_KEYS
    if unknown:
        raise ValueError(f"schema.yaml: unknown keys {sorted(unknown)} for {name}")
    if "values" in raw:
        raw["values"] = tuple(str(v) for v in raw["values"])
    if raw.get("type") == "yesno":
        raw.setdefault("values", ())
    return Field(name=name, **raw)


def _sheet(name: str, raw: dict) -> Sheet:
    layout = raw["layout"]
    if layout == "keyvalue":
        fields = tuple(_field(i, "key") for i in raw["items"])
        headers = (raw["key_header"], raw["value_header"])
    elif layout == "items":
        fields = tuple(_field(i, "code") for i in raw["items"])
        headers = tuple(raw["headers"])
    else:
        fields = tuple(_field(c, "name") for c in raw["columns"])
        headers = tuple(f.name for f in fields)
    known = {"layout", "items", "columns", "headers", "key_header", "value_header",
             "code_header", "may_be_empty", "size_driver", "name_marker"}
    extra = {k: v for k, v in raw.items() if k not in known}
    if layout == "items":
        extra["code_header"] = raw["code_header"]
    return Sheet(
        name=name, layout=layout, fields=fields, headers=headers,
        key_header=raw.get("key_header", raw.get("code_header")),
        value_header=raw.get("value_header"),
        may_be_empty=bool(raw.get("may_be_empty", False)),
        size_driver=bool(raw.get("size_driver", False)),
        extra=extra,
    )


@lru_cache(maxsize=4)
def load_schema(path: str | Path = SCHEMA_FILE) -> Schema:
    raw = read_yaml(path)
    sheets = {name: _sheet(name, s) for name, s in raw["sheets"].items()}
    sat = raw["satisfaction"]
    satisfaction = _sheet("满意度测评结果", sat)
    satisfaction.extra["name_marker"] = sat["name_marker"]
    return Schema(
        template_version=str(raw["template_version"]),
        file_types=tuple(raw["file_types"]),
        limits=dict(raw["limits"]),
        sheets=sheets,
        satisfaction=satisfaction,
        template_sheets=tuple(raw.get("template_sheets", ())),
    )
