"""Data passed between stages: problems found in a file and the normalised workbook."""
from __future__ import annotations

import datetime as dt
import functools
import pickle
from collections import namedtuple
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.arrays import ArrowStringArray


# Files are stamped in UTC; clerks and operators read Beijing time.
BEIJING = dt.timezone(dt.timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (error) or worth a look (warning) in a received file.

    `cell` is an A1 reference as the clerk sees it (None for whole-file or
    whole-sheet problems); `message` is Chinese and says what is expected.
    """

    sheet: str | None
    cell: str | None
    value: Any
    message: str
    severity: str = "error"  # error | warning

    def to_json(self) -> dict:
        return {"sheet": self.sheet, "cell": self.cell,
                "value": display(self.value), "message": self.message}


@functools.cache
def _row_type(columns: tuple[str, ...]) -> type:
    return namedtuple("Row", columns, rename=True)


def records(frame: pd.DataFrame, *columns: str) -> Iterator:
    """The rows of `columns` (all by default) as named tuples of Python values, like
    frame.itertuples(index=False) but faster: pandas reads Arrow-backed text one value at a time
    (127,710 indicator rows: 1.0 s against 0.4-0.6 s), and itertuples makes a new tuple class on
    every call (0.4 ms, four calls per 回头看 package)."""
    columns = columns or tuple(frame.columns)
    make = _row_type(columns)._make
    return map(make, zip(*(frame[c].tolist() for c in columns)))


def display(value: Any) -> str | None:
    """A value as text for receipts and exports (None stays None)."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.strftime("%Y-%m-%d") if (value.hour, value.minute, value.second) == (0, 0, 0) \
            else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Tables(MutableMapping):
    """A workbook's table sheets, as the reader found them: each kept as its columns (numpy
    arrays, Arrow for text), and made a DataFrame only when one is asked for (then kept, not
    to be changed).

    Intake checks, counts and stores its batches column by column across hundreds of
    workbooks (see `columns_of`), and pandas costs per frame: building the five frames of
    a 1,000-case workbook took 2.0 ms, against 0.4 ms for the same rows as one frame
    per sheet of a 400-file batch.

    Pickled, each table (its columns, or its frame) is pickled apart and unpickled when first
    read: a year's scoring loads thousands of stored workbooks and reads none of their tables
    (3,000 scoring views took 0.5 s longer to load with their tables unpickled at once).
    """

    def __init__(self):
        self._columns: dict[str, dict[str, np.ndarray | pa.Array]] = {}
        self._frames: dict[str, pd.DataFrame] = {}
        self._pickled: dict[str, bytes] = {}

    def put(self, name: str, columns: dict[str, np.ndarray | pa.Array]) -> None:
        """A table as columns of equal length."""
        self._forget(name)
        self._columns[name] = columns

    def columns(self, name: str) -> dict[str, np.ndarray | pa.Array] | None:
        self._unpickle(name)
        if name in self._columns:
            return self._columns[name]
        return _as_columns(self._frames.get(name))

    def rows(self, name: str) -> int:
        """Its number of rows; 0 for a table the workbook does not have."""
        self._unpickle(name)
        if name in self._columns:
            return len(next(iter(self._columns[name].values()), ()))
        return len(self._frames.get(name, ()))

    def without(self, names: Iterable[str]) -> Tables:
        """The other tables (the same arrays and frames)."""
        left, drop = Tables(), set(names)
        for mine, theirs in ((self._columns, left._columns), (self._frames, left._frames), (self._pickled, left._pickled)):
            theirs.update((k, v) for k, v in mine.items() if k not in drop)
        return left

    def _unpickle(self, name: str) -> None:
        if name in self._pickled:
            table = pickle.loads(self._pickled.pop(name))
            (self._frames if isinstance(table, pd.DataFrame) else self._columns)[name] = table

    def _forget(self, name: str) -> None:
        for store in (self._columns, self._frames, self._pickled):
            store.pop(name, None)

    def __getitem__(self, name: str) -> pd.DataFrame:
        self._unpickle(name)
        if name not in self._frames:
            self._frames[name] = frame_of(self._columns[name])
        return self._frames[name]

    def __setitem__(self, name: str, frame: pd.DataFrame) -> None:
        self._forget(name)
        self._frames[name] = frame

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._forget(name)

    def __contains__(self, name: object) -> bool:
        return name in self._columns or name in self._frames or name in self._pickled

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._columns, *self._frames, *self._pickled]))

    def __len__(self) -> int:
        return len(self._columns.keys() | self._frames.keys() | self._pickled.keys())

    def __getstate__(self) -> dict[str, bytes]:
        def pickled(name: str) -> bytes:
            if name in self._pickled:
                return self._pickled[name]
            table = self._columns[name] if name in self._columns else self._frames[name]
            return pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL)
        return {name: pickled(name) for name in self}

    def __setstate__(self, state: dict[str, bytes]) -> None:
        self.__init__()
        self._pickled = dict(state)


# pandas' own text type (its "str" with pyarrow installed): Arrow text, NaN when blank
TEXT = pd.StringDtype("pyarrow", na_value=np.nan)


def frame_of(columns: Mapping[str, np.ndarray | pa.Array | pa.ChunkedArray]) -> pd.DataFrame:
    """A frame of numpy and Arrow columns. Arrow text is handed to pandas as it is: given
    the Arrow array alone, pandas turns it into Python strings and back (40 ms for 400,000)."""
    return pd.DataFrame({c: ArrowStringArray(v, dtype=TEXT) if isinstance(v, (pa.Array, pa.ChunkedArray)) else v
                         for c, v in columns.items()}, copy=False)


def columns_of(tables: Mapping[str, pd.DataFrame], name: str) -> dict[str, np.ndarray | pa.Array] | None:
    """A table's columns as arrays, from the reader's own when they are at hand (see Tables)."""
    return tables.columns(name) if isinstance(tables, Tables) else _as_columns(tables.get(name))


def _as_columns(frame: pd.DataFrame | None) -> dict[str, np.ndarray] | None:
    return None if frame is None else {c: frame[c].to_numpy() for c in frame.columns}


def concat_columns(parts: list, sizes: list[int]) -> np.ndarray | pa.ChunkedArray:
    """One column of many tables (numpy or Arrow arrays), one under another; blank where a
    table lacks it or has it all blank. Arrow text stays Arrow text."""
    text = next((a.type for a in parts if isinstance(a, pa.Array)), None)
    if text is not None:
        return pa.chunked_array([a if isinstance(a, pa.Array) else pa.array(a, type=text, from_pandas=True)
                                 if a is not None else pa.nulls(n, text) for a, n in zip(parts, sizes)], text)
    if not parts:
        return np.empty(0, dtype=object)
    return np.concatenate([np.full(n, None, dtype=object) if a is None else a for a, n in zip(parts, sizes)])


def rows_of(tables: Mapping[str, pd.DataFrame], name: str) -> int:
    """A table's number of rows (0 when absent), without building its frame."""
    return tables.rows(name) if isinstance(tables, Tables) else len(tables.get(name, ()))


def stacked(tables: list[Mapping[str, pd.DataFrame]], name: str, cols: list[str]) -> tuple[pd.DataFrame, list[int]]:
    """The `cols` of table `name` of many workbooks, one under another, as one frame (blank where a
    workbook lacks the table or the column), and each workbook's number of rows. Column by column:
    pandas costs per frame, and a concat of a batch's frames costs more than their rows."""
    parts = [columns_of(t, name) for t in tables]
    sizes = [rows_of(t, name) for t in tables]
    return frame_of({c: concat_columns([None if p is None else p.get(c) for p in parts], sizes)
                     for c in cols}), sizes


@dataclass
class ParsedWorkbook:
    """A received workbook read into typed values, every value keeping its cell.

    Keys are schema names (sheet, item, column); `sheet_names` maps a schema
    sheet name to the name actually found in the file, for messages.
    Values are normalised: numbers as float, yes/no as bool, dates as
    `datetime.date`, text as str; blank or unreadable cells are None.
    """

    file_name: str
    kind: str = "unknown"                    # submission | satisfaction | unknown
    sheet_names: dict[str, str] = field(default_factory=dict)
    cover: dict[str, Any] = field(default_factory=dict)        # 封面 item -> value
    cover_cells: dict[str, str] = field(default_factory=dict)  # 封面 item -> "B3"
    items: dict[str, Any] = field(default_factory=dict)        # 年度数据 code -> value
    item_cells: dict[str, str] = field(default_factory=dict)   # 年度数据 code -> "C5"
    # table sheet -> frame with one column per schema column plus `_row`
    # (the 1-based sheet row of the record); satisfaction files use the key
    # of `Schema.satisfaction.name`. The reader's are Tables.
    tables: Mapping[str, pd.DataFrame] = field(default_factory=Tables)
    # table sheet -> schema column -> column letter in the file ("C")
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # (schema sheet, A1 cell) of cells that held something unreadable: already
    # reported, so a later "required" check must not report them again.
    unreadable: set[tuple[str, str]] = field(default_factory=set)

    def sheet_label(self, schema_sheet: str) -> str:
        return self.sheet_names.get(schema_sheet, schema_sheet)

    def cell_of(self, sheet: str, column: str, row: int) -> str:
        return f"{self.columns[sheet][column]}{row}"

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


class PickledFrames(Tables):
    """The class scoring views stored before `Tables` were pickled with. Its pickled state,
    one pickled frame per table, is one that Tables reads; nothing makes new ones."""


@dataclass
class SubmissionRecord:
    """An accepted or rejected submission as later stages see it."""

    submission_id: str          # intake record id, unique per received file
    sha256: str
    original_name: str
    received_at: str            # ISO-8601, UTC
    status: str                 # accepted | rejected
    unit_code: str | None
    unit_name: str | None
    year: int | None
    filled_on: dt.date | None   # 封面.填报日期
    parsed: ParsedWorkbook
    errors: int = 0
    warnings: int = 0
    # coverage indicator -> (rows meeting, qualifying rows), when counted at intake
    coverage: dict | None = None
    # its indicator rows as scored at intake (satisfaction pending), when still valid
    scored: list[dict] | None = None
    # its veto event types as found at intake (with `scored`): a year of results need not
    # unpickle every unit's 负面清单
    vetoes: list[str] | None = None


@dataclass
class YearResults:
    """Everything scored for one year; persisted so later years find baselines.

    units       one row per unit with a counting submission: unit_code,
                unit_name, submission_id, source_file, total (exact float),
                provisional (bool), status (正式/暂定), grade, veto (bool),
                eligible (bool), recommendation (可推荐示范/不予推荐/暂不推荐…),
                rank (Int64, NA when not eligible), satisfaction (float/NA),
                naming (示范命名情况), naming_year (Int64/NA), reasons (str)
    categories  unit_code, category (A..J), category_name, points, score, share
    indicators  unit_code, indicator, name, category, points, value, target,
                score (float; NaN while 待测评), status ("", 不适用, 待测评),
                reason, source
    submissions every submission of the year: submission_id, unit_code,
                unit_name, status (计分/已被替代/退回), filled_on, received_at,
                sha256, original_name, errors, warnings
    """

    year: int
    units: pd.DataFrame
    categories: pd.DataFrame
    indicators: pd.DataFrame
    submissions: pd.DataFrame
    generated_at: str = ""
    indicator_version: str = ""
