"""Receipts (SPEC §7.1): for every received file a JSON for machines and an xlsx for people.

`receipts/<unit code or unknown>/<received time>_<original name>.json|.xlsx`.
Both are written atomically, the JSON last: a JSON receipt on disk means the
receipt is complete.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import unicodedata
from pathlib import Path

from openpyxl.styles import Font

from assets.archive import write_atomic
from assets.model import BEIJING, TIME_FORMAT, display
from assets.xlsx import BORDER, TITLE_FONT, WRAP, QuickBook, SheetXml, table_widths

TITLE = "海东市法治政府建设示范创建 报送回执"
STATUSES = ("accepted", "rejected", "duplicate")
RESULT = {
    "accepted": "已受理",
    "rejected": "退回（需修改后重新报送）",
    "duplicate": "重复文件（已收到相同文件，无需重复报送）",
}
NEXT_STEP = {
    "accepted": "无需其他操作；如下表有“提示”，请核对。",
    "rejected": "请按下表逐条修改后，重新报送整个文件。",
    "duplicate": "本文件未再次处理；如需更正数据，请修改后另行报送。",
}
RESULT_FONT = {"accepted": Font(bold=True, color="007A33"), "rejected": Font(bold=True, color="C00000"),
               "duplicate": Font(bold=True, color="9C5700")}
HEADERS = ["序号", "类别", "工作表", "单元格", "填写的值", "问题说明"]
WIDTHS = {"序号": 10, "类别": 8, "工作表": 14, "单元格": 10, "填写的值": 24, "问题说明": 60}
MAX_NAME_BYTES = 120
FORBIDDEN = set('<>:"/\\|?*')  # not allowed in Windows file names either


def write_receipt(receipt: dict, receipts_dir: str | Path) -> tuple[Path, Path]:
    """Write the receipt; returns (json path, xlsx path). Re-writing the same receipt reuses its paths."""
    _check(receipt)
    folder = Path(receipts_dir) / (safe_name(receipt.get("unit_code") or "", 40) or "unknown")
    folder.mkdir(parents=True, exist_ok=True)
    base = _free_base(folder, receipt)
    json_path, xlsx_path = folder / f"{base}.json", folder / f"{base}.xlsx"
    write_atomic(xlsx_path, _xlsx(receipt))
    write_atomic(json_path, json.dumps(receipt, ensure_ascii=False, indent=2, default=display).encode("utf-8"))
    return json_path, xlsx_path


def receipt_message(receipt: dict) -> str:
    """One Chinese paragraph for logs and the command line."""
    errors, warnings = receipt.get("errors") or [], receipt.get("warnings") or []
    unit = receipt.get("unit_name") or receipt.get("unit_code") or "未识别单位"
    year = f"{receipt['year']}年度" if receipt.get("year") else ""
    head = f"{unit}{year}报送的《{receipt.get('original_name')}》（{beijing_time(receipt['received_at'])}收到）"
    status = receipt["status"]
    if status == "duplicate":
        first = receipt.get("duplicate_of") or {}
        when = f"{beijing_time(first['received_at'])}收到的" if first.get("received_at") else "此前收到的"
        name = f"《{first['original_name']}》" if first.get("original_name") else "文件"
        return f"{head}与{when}{name}内容完全相同，为重复文件，未再次处理，无需重复报送。"
    hints = f"提示{len(warnings)}条" if warnings else ""
    if status == "accepted":
        return f"{head}已受理" + (f"，另有{hints}，请核对回执" if hints else "") + "。"
    first = errors[0]
    where = "!".join(p for p in (first.get("sheet"), first.get("cell")) if p) or "文件"
    value = f"（填写的值：{first['value']}）" if first.get("value") not in (None, "") else ""
    return (f"{head}被退回：发现错误{len(errors)}条" + (f"、{hints}" if hints else "")
            + f"，请按回执修改后重新报送。第一条：{where}{value}{first.get('message', '')}")


def beijing_time(received_at: str) -> str:
    """Receipt time as the clerk reads it (UTC+8); a time without zone is shown as given."""
    t = dt.datetime.fromisoformat(received_at)
    if t.tzinfo is None:
        return t.strftime(TIME_FORMAT)
    return t.astimezone(BEIJING).strftime(f"{TIME_FORMAT}（北京时间）")


def safe_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A single path component: no directories, control or reserved characters, bounded in bytes.

    Chinese and emoji stay; the extension stays visible when the stem must be cut.
    """
    name = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("_" if c in FORBIDDEN else c for c in name if unicodedata.category(c)[0] != "C")
    name = name.strip(" .")  # no hidden files, no "..", no trailing dot (Windows)
    stem, dot, ext = name.rpartition(".")
    if not (dot and stem and 0 < len(ext) <= 10 and ext.isascii() and ext.isalnum()):
        stem, ext = name, ""
    room = max_bytes - len(ext) - 1 if ext else max_bytes
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .")
    return f"{stem}.{ext}" if ext else stem


# ------------------------------------------------------------ internals

def _check(receipt: dict) -> None:
    status, errors = receipt.get("status"), receipt.get("errors") or []
    if status not in STATUSES:
        raise ValueError(f"receipt status must be one of {STATUSES}, got {status!r}")
    if status == "accepted" and errors:
        raise ValueError("an accepted receipt cannot carry errors")
    if status == "rejected" and not errors:
        raise ValueError("a rejected receipt needs at least one error")


def _stamp(received_at: str) -> str:
    t = dt.datetime.fromisoformat(received_at)
    if t.tzinfo is None:
        return t.strftime("%Y%m%dT%H%M%S")
    return t.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _free_base(folder: Path, receipt: dict) -> str:
    """The base name for this receipt: its own earlier one, else the first not taken by another file."""
    stamp, name = _stamp(receipt["received_at"]), safe_name(receipt["original_name"]) or "file"
    identity = (receipt.get("sha256"), receipt["received_at"], receipt["original_name"])
    n = 1
    while True:
        base = f"{stamp}_{name}" if n == 1 else f"{stamp}-{n}_{name}"
        existing = folder / f"{base}.json"
        if not existing.exists():
            return base
        try:
            old = json.loads(existing.read_text(encoding="utf-8"))
        except ValueError:  # left torn by a crash of the machine before it was synced: no one's receipt yet
            return base
        if (old.get("sha256"), old.get("received_at"), old.get("original_name")) == identity:
            return base
        n += 1


def _unit_text(receipt: dict) -> str:
    name, code = receipt.get("unit_name"), receipt.get("unit_code")
    if name and code:
        return f"{name}（{code}）"
    if name or code:
        return name or code
    if receipt.get("kind") == "satisfaction":
        return "满意度测评结果（涉及多个单位）"
    return "未能识别（请核对封面的单位名称和单位代码）"


@functools.cache
def _book() -> tuple[QuickBook, dict[str, dict[str, int | None]]]:
    """The receipt workbook's writer and its named cell styles, made once per process."""
    book = QuickBook(1)
    styles = {"plain": {}, "title": {"font": TITLE_FONT}, "label": {"font": Font(bold=True)},
              "cell": {"border": BORDER}, "wrap": {"border": BORDER, "alignment": WRAP},
              **{status: {"font": font} for status, font in RESULT_FONT.items()}}
    return book, {"header": book.header, **{name: book.style(**attrs) for name, attrs in styles.items()}}


def _xlsx(receipt: dict) -> bytes:
    """The receipt for people: what was received, the verdict, then every problem in a table."""
    status = receipt["status"]
    errors, warnings = receipt.get("errors") or [], receipt.get("warnings") or []
    summary = [
        ("文件名", receipt.get("original_name")),
        ("单位", _unit_text(receipt)),
        ("年度", f"{receipt['year']}年" if receipt.get("year") else "未能识别"),
        ("接收时间", beijing_time(receipt["received_at"])),
        ("结果", RESULT[status]),
    ]
    first = receipt.get("duplicate_of") or {}
    if status == "duplicate" and first:
        when = beijing_time(first["received_at"]) if first.get("received_at") else ""
        summary.append(("首次收到", f"{first.get('original_name') or ''}　{when}".strip()))
    summary += [("问题数", f"错误 {len(errors)} 条，提示 {len(warnings)} 条"), ("办理提示", NEXT_STEP[status])]

    cells = [(1, 1, TITLE, "title")]
    for row, (label, value) in enumerate(summary, 3):
        cells += [(row, 1, label, "label"), (row, 2, value, status if label == "结果" else "plain")]
    problems = [("错误", p) for p in errors] + [("提示", p) for p in warnings]
    rows = [(i, kind, *(p.get(k) for k in ("sheet", "cell", "value", "message")))
            for i, (kind, p) in enumerate(problems, 1)]
    start = len(summary) + 4
    cells += [(start, j, h, "header") for j, h in enumerate(HEADERS, 1)]
    widths, wanted = table_widths(HEADERS, rows, WIDTHS)
    # the value and the explanation always wrap; the other columns when their text is wider
    wrap = [j >= 5 or need > w for j, (w, need) in enumerate(zip(widths, wanted), 1)]
    for r, row in enumerate(rows, start + 1):
        cells += [(r, j, v, "wrap" if wrap[j - 1] else "cell") for j, v in enumerate(row, 1)]
    book, styles = _book()
    return book.to_bytes([SheetXml("回执", [(r, c, v, styles[name]) for r, c, v, name in cells],
                                   [WIDTHS[h] for h in HEADERS], start + len(rows), header_row=start,
                                   heights={start: 32})])
