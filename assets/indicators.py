"""The indicator system (SPEC §4) as data: load config/indicators.yaml and refuse it when inconsistent.

Everything that describes the method in Chinese (the 说明 sheet, the template's
instructions) is generated here from the same file that drives scoring.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from expectations.schema import Schema, load_schema, read_yaml

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_INDICATORS_FILE = PROJECT_DIR / "config" / "indicators.yaml"

ITEMS_SHEET = "年度数据"
RULE_KINDS = ("count", "flag", "rate_at_least", "rate_below", "on_or_before",
              "greater_than", "coverage", "satisfaction")
# Rules that read a rate (direct % item or numerator/denominator).
RATE_RULES = ("rate_at_least", "rate_below", "greater_than")
_DATE_SPEC = re.compile(r"^(报送年度|\d{4})-(\d{1,2})-(\d{1,2})$")
_CONDITION_KEYS = ({"all"}, {"column", "equals"}, {"any_value"},
                   {"column_in", "values_from_schema"}, {"column_in", "values"},
                   {"days_from", "to", "at_most"}, {"all_of"})


class IndicatorConfigError(ValueError):
    """The indicator config contradicts itself or the sheet schema."""


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    points: float


@dataclass(frozen=True)
class Indicator:
    code: str
    category: str
    name: str
    points: float
    rule: str
    data: str                         # as written in the config
    items: tuple[str, ...] = ()       # 年度数据 item, or (numerator, denominator)
    sheet: str | None = None          # table sheet of a coverage rule
    target: float | None = None
    other: tuple[str, ...] = ()       # greater_than: item or (numerator, denominator)
    date: str | None = None           # on_or_before: YYYY-MM-DD or 报送年度-MM-DD
    condition: dict | None = None
    among: dict | None = None
    description: str = ""             # the rule in Chinese

    @property
    def is_ratio(self) -> bool:
        return len(self.items) == 2


@dataclass(frozen=True)
class Recommendation:
    min_total: float
    min_category_share: float         # percent
    categories: tuple[str, ...]
    satisfaction_measured: bool
    no_veto: bool
    tie_break: tuple[str, ...]


@dataclass(frozen=True)
class IndicatorSystem:
    version: str
    total: float
    categories: tuple[Category, ...]
    indicators: tuple[Indicator, ...]
    grades: tuple[tuple[str, float], ...]   # (name, minimum total), highest first
    recommendation: Recommendation
    source: str = ""

    @property
    def codes(self) -> set[str]:
        return {i.code for i in self.indicators}

    def category(self, code: str) -> Category:
        return next(c for c in self.categories if c.code == code)

    def grade(self, total: float | Fraction) -> str:
        return next(name for name, low in self.grades if total >= Fraction(str(low)))

    @property
    def core_categories(self) -> list[str]:
        """Categories each held to the minimum share (A–I by default)."""
        return list(self.recommendation.categories)

    def instruction_rows(self) -> list[tuple[str, str, str, float, str]]:
        """(编号, 一级指标, 三级指标, 分值, 计分规则) for the 说明 sheet and the template."""
        return [(i.code, self.category(i.category).name, i.name, i.points, i.description)
                for i in self.indicators]

    @property
    def grade_text(self) -> str:
        parts = [f"{name}：总分≥{_num(low)}" for name, low in self.grades[:-1]]
        return "；".join(parts + [f"{self.grades[-1][0]}：总分<{_num(self.grades[-2][1])}"])

    @property
    def recommendation_text(self) -> str:
        r = self.recommendation
        names = "、".join(r.categories)
        parts = [f"总分≥{_num(r.min_total)}",
                 f"{names}各类别得分均≥该类别分值的{_num(r.min_category_share)}%"]
        if r.satisfaction_measured:
            parts.append("已取得群众满意度测评结果")
        if r.no_veto:
            parts.append("无一票否决事项（负面清单）")
        ties = "、".join(f"类别{c}得分高者" for c in r.tie_break)
        text = "可推荐示范须同时满足：" + "；".join(parts) + "。"
        if r.no_veto:
            text += "存在一票否决事项的，不论得分一律不予推荐。"
        return text + f"可推荐单位按总分排名，总分相同依次比较{ties}，再按单位代码。"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def resolve_date(spec: str, year: int) -> dt.date:
    """`报送年度-12-31` or `2024-12-31` → a date for the reporting year."""
    m = _DATE_SPEC.match(spec)
    if not m:
        raise ValueError(spec)
    y = year if m.group(1) == "报送年度" else int(m.group(1))
    return dt.date(y, int(m.group(2)), int(m.group(3)))


def date_text(spec: str) -> str:
    """`报送年度-12-31` → 报送年度12月31日; `2024-12-31` → 2024年12月31日."""
    m = _DATE_SPEC.match(spec)
    year = m.group(1) if m.group(1) == "报送年度" else f"{m.group(1)}年"
    return f"{year}{int(m.group(2))}月{int(m.group(3))}日"


def load_indicators(path: str | Path | None = None, schema: Schema | None = None) -> IndicatorSystem:
    """Load the indicator config; raise IndicatorConfigError listing every inconsistency."""
    path = Path(path) if path else DEFAULT_INDICATORS_FILE
    schema = schema or load_schema()
    try:
        raw = read_yaml(path)
        return _build(raw, schema, str(path))
    except IndicatorConfigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        raise IndicatorConfigError(
            f"指标体系配置文件 {path} 格式错误，请按文件开头的说明修改 / "
            f"malformed indicator config: {exc!r}") from exc


def _build(raw: dict, schema: Schema, source: str) -> IndicatorSystem:
    problems: list[str] = []
    categories = tuple(Category(str(c["code"]), str(c["name"]), c["points"]) for c in raw["categories"])
    cat_codes = [c.code for c in categories]
    _duplicates(cat_codes, "类别", "category", problems)

    indicators = []
    for entry in raw["indicators"]:
        try:
            indicators.append(_indicator(entry, schema, set(cat_codes)))
        except _Refusal as r:
            problems.append(f"指标{entry.get('code')}：{r.zh} / indicator {entry.get('code')}: {r.en}")
    _duplicates([str(i["code"]) for i in raw["indicators"]], "指标", "indicator", problems)

    for c in categories:
        got = sum(Fraction(str(i.points)) for i in indicators if i.category == c.code)
        if got != Fraction(str(c.points)):
            problems.append(f"类别{c.code}分值{_num(c.points)}与其指标分值之和{_num(float(got))}不一致 / "
                            f"category {c.code} has {_num(c.points)} points but its indicators sum to {_num(float(got))}")
    total = raw.get("total", 1000)
    got = sum(Fraction(str(c.points)) for c in categories)
    if got != Fraction(str(total)):
        problems.append(f"各类别分值之和{_num(float(got))}不等于总分{_num(total)} / "
                        f"categories sum to {_num(float(got))}, expected total {_num(total)}")
    if sum(i.rule == "satisfaction" for i in indicators) > 1:
        problems.append("满意度指标只能有一个 / at most one satisfaction indicator")

    grades = tuple(sorted(((str(g["name"]), g["min"]) for g in raw["grades"]), key=lambda g: -g[1]))
    if len(grades) < 2 or grades[-1][1] > 0:
        problems.append("等次至少两档且最低一档下限为0 / grades need two or more levels, the lowest with min 0")

    rec = raw["recommendation"]
    recommendation = Recommendation(
        min_total=rec["min_total"], min_category_share=rec["min_category_share"],
        categories=tuple(str(c) for c in rec["categories"]),
        satisfaction_measured=bool(rec.get("satisfaction_measured", True)),
        no_veto=bool(rec.get("no_veto", True)),
        tie_break=tuple(str(c) for c in rec.get("tie_break", ())))
    for c in recommendation.categories + recommendation.tie_break:
        if c not in cat_codes:
            problems.append(f"推荐条件引用了不存在的类别{c} / recommendation names unknown category {c}")

    if problems:
        raise IndicatorConfigError(f"指标体系配置 {source} 有误，未加载 / indicator config refused:\n- "
                                   + "\n- ".join(problems))
    return IndicatorSystem(version=str(raw["version"]), total=total, categories=categories,
                           indicators=tuple(indicators), grades=grades,
                           recommendation=recommendation, source=source)


def _duplicates(codes: list[str], zh: str, en: str, problems: list[str]) -> None:
    dups = sorted({c for c in codes if codes.count(c) > 1})
    if dups:
        problems.append(f"{zh}编号重复：{'、'.join(dups)} / duplicate {en} codes: {', '.join(dups)}")


class _Refusal(Exception):
    def __init__(self, zh: str, en: str):
        super().__init__(en)
        self.zh, self.en = zh, en


def _indicator(e: dict, schema: Schema, categories: set[str]) -> Indicator:
    code, rule, data = str(e["code"]), str(e["rule"]), str(e["data"])
    if rule not in RULE_KINDS:
        raise _Refusal(f"未知计分规则“{rule}”（可用：{'、'.join(RULE_KINDS)}）",
                       f"unknown rule kind {rule!r}")
    if str(e["category"]) not in categories:
        raise _Refusal(f"类别{e['category']}不存在", f"unknown category {e['category']!r}")
    if not e.get("points", 0) > 0:
        raise _Refusal("分值必须大于0", "points must be positive")
    fields: dict[str, Any] = {}
    if rule == "coverage":
        sheet = schema.sheets.get(data)
        if sheet is None or sheet.layout != "table":
            raise _Refusal(f"数据“{data}”不是模板中的明细表", f"data {data!r} is not a table sheet of the schema")
        fields.update(sheet=data, condition=_condition(e.get("condition"), sheet),
                      among=_condition(e.get("among", {"all": True}), sheet))
    elif rule == "satisfaction":
        if data != schema.satisfaction.name:
            raise _Refusal(f"满意度指标的数据应为“{schema.satisfaction.name}”",
                           f"satisfaction data must be {schema.satisfaction.name!r}")
    else:
        items = _items(data, schema, rule)
        fields["items"] = items
        if rule in ("count", "rate_at_least", "rate_below"):
            if not (isinstance(e.get("target"), (int, float)) and e["target"] > 0):
                raise _Refusal("缺少大于0的目标值 target", "target must be a positive number")
            fields["target"] = e["target"]
        if rule == "greater_than":
            fields["other"] = _items(str(e.get("other")), schema, rule)
        if rule == "on_or_before":
            try:
                resolve_date(str(e.get("date")), 2024)
            except ValueError:
                raise _Refusal(f"日期“{e.get('date')}”应写成 YYYY-MM-DD 或 报送年度-MM-DD",
                               f"date {e.get('date')!r} must be YYYY-MM-DD or 报送年度-MM-DD") from None
            fields["date"] = str(e["date"])
    ind = Indicator(code=code, category=str(e["category"]), name=str(e["name"]), points=e["points"],
                    rule=rule, data=data, **fields)
    return _with_description(ind, schema)


# Item types each rule can read (a rate may also be a ratio of two counts).
_ITEM_TYPES = {"count": {"count"}, "flag": {"yesno"}, "on_or_before": {"date"},
               "rate_at_least": {"percent"}, "rate_below": {"percent"}, "greater_than": {"percent"}}


def _items(data: str, schema: Schema, rule: str) -> tuple[str, ...]:
    sheet = schema.sheets[ITEMS_SHEET]
    known = {f.name: f.type for f in sheet.fields}
    parts = tuple(p.strip() for p in data.split("/"))
    for p in parts:
        if p not in known:
            raise _Refusal(f"数据项“{p}”不在模板（schema.yaml 年度数据）中",
                           f"data item {p!r} is not in schema.yaml {ITEMS_SHEET}")
    if len(parts) == 2 and rule in RATE_RULES and all(known[p] == "count" for p in parts):
        return parts
    if len(parts) == 1 and known[parts[0]] in _ITEM_TYPES[rule]:
        return parts
    raise _Refusal(f"数据“{data}”的类型不适用于规则{rule}", f"data {data!r} does not fit rule {rule}")


def _condition(cond: Any, sheet) -> dict:
    if not isinstance(cond, dict) or set(cond) not in _CONDITION_KEYS:
        raise _Refusal(f"行条件 {cond!r} 无法识别", f"unrecognised row condition {cond!r}")
    columns = {f.name: f for f in sheet.fields}
    if "all_of" in cond:
        return {"all_of": [_condition(c, sheet) for c in cond["all_of"]]}
    if "column_in" in cond and "values_from_schema" in cond:
        values = sheet.extra.get(cond["values_from_schema"])
        if not values:
            raise _Refusal(f"schema.yaml 中{sheet.name}没有“{cond['values_from_schema']}”",
                           f"schema.yaml {sheet.name} has no {cond['values_from_schema']!r}")
        cond = {"column_in": cond["column_in"], "values": [str(v) for v in values]}
    for key in ("column", "any_value", "column_in", "days_from", "to"):
        if key in cond and cond[key] not in columns:
            raise _Refusal(f"列“{cond[key]}”不在模板{sheet.name}中",
                           f"column {cond[key]!r} is not in schema.yaml {sheet.name}")
    if "days_from" in cond and not (columns[cond["days_from"]].type == columns[cond["to"]].type == "date"):
        raise _Refusal("日期差条件的两列都必须是日期", "days_from/to must both be date columns")
    return dict(cond)


def condition_text(cond: dict) -> str:
    """A row condition in Chinese."""
    if "all_of" in cond:
        return "且".join(condition_text(c) for c in cond["all_of"])
    if "all" in cond:
        return "全部"
    if "column" in cond:
        v = cond["equals"]
        return f"“{cond['column']}”为“{('是' if v else '否') if isinstance(v, bool) else v}”"
    if "any_value" in cond:
        return f"已填写“{cond['any_value']}”"
    if "column_in" in cond:
        return f"“{cond['column_in']}”属于{'、'.join(cond['values'])}"
    return (f"“{cond['to']}”距“{cond['days_from']}”不超过{cond['at_most']}日"
            f"（未填“{cond['to']}”视为不符合）")


def rate_text(items: tuple[str, ...], schema: Schema) -> str:
    labels = {f.name: f.label for f in schema.sheets[ITEMS_SHEET].fields}
    if len(items) == 2:
        return f"{labels[items[0]]}÷{labels[items[1]]}（{items[0]}/{items[1]}）"
    return f"{labels[items[0]]}（{items[0]}）"


def _with_description(i: Indicator, schema: Schema) -> Indicator:
    na = "；分母为0时不适用，按满分计"
    if i.rule == "coverage":
        among = "全部记录" if "all" in i.among else f"{condition_text(i.among)}的记录"
        text = (f"《{i.sheet}》{among}中，{condition_text(i.condition)}的比例达到100%得满分，"
                f"不足按比例计分；无此类记录时不适用，按满分计")
    elif i.rule == "satisfaction":
        text = f"群众满意度测评得分（0–100）×{_num(i.points)}/100；测评结果送达前为待测评，总分为暂定"
    else:
        what = rate_text(i.items, schema)
        unit = next(f.unit for f in schema.sheets[ITEMS_SHEET].fields if f.name == i.items[0])
        t = _num(i.target) if i.target is not None else ""
        if i.rule == "count":
            text = f"{what}达到{t}{unit}得满分，不足按比例计分"
        elif i.rule == "flag":
            text = f"{what}为“是”得满分，否则不得分"
        elif i.rule == "rate_at_least":
            text = f"{what}达到{t}%得满分，不足按比例计分" + (na if i.is_ratio else "")
        elif i.rule == "rate_below":
            text = (f"{what}低于{t}%得满分，达到{_num(2 * i.target)}%及以上不得分，其间按比例计分"
                    + (na if i.is_ratio else ""))
        elif i.rule == "on_or_before":
            text = f"{what}不晚于{date_text(i.date)}得满分，未填或晚于该日期不得分"
        else:  # greater_than
            text = f"{what}高于{rate_text(i.other, schema)}得满分，否则不得分" + na
    return replace(i, description=text)
