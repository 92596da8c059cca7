"""Hostile-file defences, run before any parser touches the bytes (SPEC §7).

Every check reads a bounded amount: magic bytes, the zip central directory,
each XML member's prolog (at most its first 64 KB). Nothing is decompressed to
learn its size.
"""
from __future__ import annotations

import mmap
import re
import zipfile
import zlib
from pathlib import Path

from assets.model import Problem
from expectations.schema import load_schema

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
# Which container each accepted extension must be.
CONTAINERS = {"xlsx": "zip", "xlsm": "zip", "ods": "zip", "xls": "ole"}
XML_PROLOG_BYTES = 64 * 1024
PROLOG_STEP = 1024  # a workbook part's prolog is a line: its root element starts within the first read
BIG_MEMBER_BYTES = 1024 * 1024  # the ratio test applies to members above this size
MAX_MEMBERS = 10_000

RESUBMIT = "请在Excel/WPS中打开后“另存为”Excel工作簿(.xlsx)再报送。"
MSG = {
    "unsupported": "不支持的文件类型“{ext}”。请使用模板，保存为Excel工作簿(.xlsx)后报送（也接受{accepted}）。",
    "empty": "文件是空的（0字节），可能上传未完成。请重新保存文件后再报送。",
    "too_big": "文件大小为{size}，超过上限{limit}。请删除与报送无关的工作表、图片后重新报送。",
    "encrypted": "文件设置了打开密码，系统无法读取。请取消密码后重新报送。",
    "html": "该文件实际是网页(HTML)格式，只是扩展名为.{ext}。" + RESUBMIT,
    "xml": "该文件实际是XML格式（如“XML电子表格2003”），只是扩展名为.{ext}。" + RESUBMIT,
    "text": "该文件实际是文本(CSV/TXT)格式，只是扩展名为.{ext}。" + RESUBMIT,
    "mismatch": "文件内容是{actual}格式，与扩展名.{ext}不符。" + RESUBMIT,
    "corrupt": "文件已损坏或不完整（可能上传中断），系统无法打开。请在Excel/WPS中确认能正常打开后重新报送。",
    "unknown": "无法识别的文件内容，不是Excel/WPS/LibreOffice表格。" + RESUBMIT,
    "bomb": "文件压缩结构异常（解压后体积过大），系统为安全起见拒绝读取。" + RESUBMIT,
    "entity": "文件内部含有不安全的XML定义（DOCTYPE/ENTITY），系统为安全起见拒绝读取。" + RESUBMIT,
}


def whole_file(kind: str, **fmt) -> Problem:
    return Problem(sheet=None, cell=None, value=None, message=MSG[kind].format(**fmt))


def inspect_container(path: Path, file_name: str, limits: dict,
                      file_types: tuple[str, ...] | None = None) -> Problem | None:
    """The one reason a file must not be parsed, or None when it looks safe."""
    path = Path(path)
    file_types = file_types or load_schema().file_types
    ext = Path(file_name).suffix.lower().lstrip(".")
    if ext not in file_types or ext not in CONTAINERS:
        accepted = "、".join("." + t for t in file_types)
        return whole_file("unsupported", ext="." + ext if ext else "无扩展名", accepted=accepted)
    size = path.stat().st_size
    if size == 0:
        return whole_file("empty")
    if size > limits["max_file_bytes"]:
        return whole_file("too_big", size=_mb(size), limit=_mb(limits["max_file_bytes"]))
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(OLE_MAGIC):
        if CONTAINERS[ext] == "zip" or _has_encrypted_package(path):
            return whole_file("encrypted")  # encrypted OOXML is an OLE2 wrapper
        return None
    if head.startswith(ZIP_MAGIC):
        if CONTAINERS[ext] != "zip":
            return whole_file("mismatch", actual="Excel工作簿(.xlsx)或ODS", ext=ext)
        return _inspect_zip(path, ext, limits)
    return _sniff_other(head, ext)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _has_encrypted_package(path: Path) -> bool:
    # Directory entry names are UTF-16LE; a C-speed search beats parsing the FAT.
    needle = "EncryptedPackage".encode("utf-16-le")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return m.find(needle) >= 0


def _sniff_other(head: bytes, ext: str) -> Problem:
    text = _decode(head).lstrip("\ufeff \t\r\n").lower()
    if text.startswith("<?xml") and "<html" not in text[:1024]:
        return whole_file("xml", ext=ext)
    if text.startswith("<"):
        return whole_file("html", ext=ext)
    if text and "\x00" not in text and sum(ch.isprintable() or ch in "\r\n\t" for ch in text) > 0.95 * len(text):
        return whole_file("text", ext=ext)
    if head.startswith(b"PK"):
        return whole_file("corrupt")
    return whole_file("unknown")


def _decode(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    for encoding in ("utf-8", "gb18030"):
        try:
            return head.decode(encoding)
        except UnicodeDecodeError:
            # A multi-byte character cut at the end of the sniffed block is fine.
            try:
                return head[:-3].decode(encoding)
            except UnicodeDecodeError:
                continue
    return ""


_DANGEROUS_XML = re.compile(rb"<!(DOCTYPE|ENTITY)")
_ROOT_ELEMENT = re.compile(rb"<[A-Za-z_]")


def _prolog(member) -> bytes:
    """What comes before the root element (where XML allows a DTD), at most XML_PROLOG_BYTES;
    NULs dropped, so that UTF-16 text matches too. Inflating the first 64 KB of every part
    cost 0.8 ms per file, against 0.4 ms stopping at the root element."""
    head = text = b""
    while len(head) < XML_PROLOG_BYTES:
        piece = member.read(min(PROLOG_STEP, XML_PROLOG_BYTES - len(head)))
        if not piece:
            break
        head += piece
        text = head.replace(b"\x00", b"")
        root = _ROOT_ELEMENT.search(text)
        prolog = text[:root.start()] if root else b""
        # "<a" within a comment or a processing instruction is not the root: then read on
        if root and b"<!--" not in prolog and b"<?" not in prolog.replace(b"<?xml ", b""):
            return prolog
    return text


def _inspect_zip(path: Path, ext: str, limits: dict) -> Problem | None:
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > MAX_MEMBERS:
                return whole_file("bomb")
            if any(i.flag_bits & 0x1 for i in infos):
                return whole_file("encrypted")
            total = sum(i.file_size for i in infos)
            if total > limits["max_uncompressed_bytes"] or any(_too_compressed(i, limits) for i in infos):
                return whole_file("bomb")
            names = {i.filename for i in infos}
            expected = "content.xml" if ext == "ods" else "xl/workbook.xml"
            if expected not in names:
                other = "ODS表格" if "content.xml" in names else (
                    "Excel工作簿(.xlsx)" if "xl/workbook.xml" in names else None)
                return whole_file("mismatch", actual=other, ext=ext) if other else whole_file("unknown")
            for info in infos:
                if info.filename.lower().endswith((".xml", ".rels")):
                    with z.open(info) as member:
                        if _DANGEROUS_XML.search(_prolog(member)):
                            return whole_file("entity")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError,
            ValueError, zlib.error):
        return whole_file("corrupt")
    return None


def _too_compressed(info: zipfile.ZipInfo, limits: dict) -> bool:
    if info.file_size <= BIG_MEMBER_BYTES:
        return False
    return info.file_size > limits["max_compression_ratio"] * max(info.compress_size, 1)
