"""The unit registry (SPEC §2): a CSV the operator can replace."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_UNITS_FILE = PROJECT_DIR / "config" / "units.csv"
HEADER = ["单位代码", "单位名称", "别名", "曾用代码"]


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    aliases: tuple[str, ...] = ()
    former_codes: tuple[str, ...] = ()


class Registry:
    """Looks units up by current or former code and by name or alias."""

    def __init__(self, units: list[Unit]):
        self.units = units
        self._by_code: dict[str, Unit] = {}
        self._by_name: dict[str, Unit] = {}
        for u in units:
            for c in (u.code, *u.former_codes):
                self._by_code[_key(c)] = u
            for n in (u.name, *u.aliases):
                self._by_name[_key(n)] = u

    def by_code(self, code: object) -> Unit | None:
        return self._by_code.get(_key(code)) if code is not None else None

    def by_name(self, name: object) -> Unit | None:
        return self._by_name.get(_key(name)) if name is not None else None

    def __len__(self) -> int:
        return len(self.units)


def _key(text: object) -> str:
    # Codes keep leading zeros; spaces (also full-width) never matter.
    return str(text).replace("\u3000", " ").strip().upper()


def _split(cell: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (cell or "").replace("；", ";").split(";") if p.strip())


def load_registry(path: str | Path | None = None) -> Registry:
    path = Path(path) if path else DEFAULT_UNITS_FILE
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [h for h in HEADER[:2] if h not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"单位名录 {path} 缺少表头：{'、'.join(missing)}（应为 {','.join(HEADER)}）")
        units = [
            Unit(code=row["单位代码"].strip(), name=row["单位名称"].strip(),
                 aliases=_split(row.get("别名")), former_codes=_split(row.get("曾用代码")))
            for row in reader if (row.get("单位代码") or "").strip()
        ]
    codes = [u.code for u in units]
    if len(set(codes)) != len(codes):
        raise ValueError(f"单位名录 {path} 中单位代码重复")
    return Registry(units)
