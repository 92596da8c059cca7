"""Test helpers on top of assets/demo.py: valid workbooks and the ways they go wrong."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from openpyxl.utils.cell import coordinate_to_tuple

from assets import archive
from assets.demo import submission_sheets, write_workbook

FORMATS = ["xlsx", "xlsm", "xls", "ods"]

needs_libreoffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")


def saved_by_libreoffice(out: Path, filt: str, *files: Path) -> Path:
    """`files` opened and saved by LibreOffice as `filt` ("xls:MS Excel 97", "ods", …) into
    the folder `out`, with a LibreOffice profile of their own beside it."""
    subprocess.run(["soffice", f"-env:UserInstallation=file://{out.parent}/profile", "--headless",
                    "--convert-to", filt, "--outdir", str(out), *map(str, files)],
                   check=True, capture_output=True, timeout=180)
    return out


def make(tmp_path: Path, fmt: str = "xlsx", sheets: dict | None = None, name: str | None = None,
         **kw) -> Path:
    """A generated submission written as `fmt` (valid unless `sheets` was mutated)."""
    return write_workbook(sheets if sheets is not None else submission_sheets(**kw),
                          tmp_path / (name or f"乐都区报送.{fmt}"))


def set_cell(sheets: dict, sheet: str, ref: str, value) -> None:
    """Put `value` at A1 reference `ref`, growing the grid as needed."""
    r, c = coordinate_to_tuple(ref)
    rows = sheets[sheet]
    while len(rows) < r:
        rows.append([])
    row = rows[r - 1]
    row.extend([None] * (c - len(row)))
    row[c - 1] = value


def shift(sheets: dict, sheet: str, rows: int = 0, cols: int = 0) -> None:
    """Move a sheet's data down/right, so it no longer starts at A1."""
    sheets[sheet] = [[] for _ in range(rows)] + [[None] * cols + list(r) for r in sheets[sheet]]


def reorder(sheets: dict, sheet: str, order: list[int]) -> None:
    sheets[sheet] = [[r[i] if i < len(r) else None for i in order] for r in sheets[sheet]]


def patch_xlsx(path: Path, member: str, edit) -> None:
    """Rewrite one part of an xlsx package through `edit(bytes) -> bytes`."""
    with zipfile.ZipFile(path) as z:
        parts = [(i, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            z.writestr(info, edit(data) if info.filename == member else data)


def sheet_part(path: Path, sheet_index: int) -> str:
    return f"xl/worksheets/sheet{sheet_index + 1}.xml"


def add_cached_values(path: Path, sheet_index: int, values: dict[str, str]) -> None:
    """Give formula cells written by openpyxl (no <v>) the cached value Excel would store."""
    def edit(xml: bytes) -> bytes:
        text = xml.decode()
        for ref, v in values.items():
            start = text.index(f'<c r="{ref}"')
            end = text.index("</f>", start) + 4
            rest = text[end:]
            for empty in ("<v />", "<v/>", "<v></v>"):  # openpyxl leaves an empty value
                rest = rest.removeprefix(empty)
            text = text[:end] + f"<v>{v}</v>" + rest
        return text.encode()
    patch_xlsx(path, sheet_part(path, sheet_index), edit)


def billion_laughs(path: Path, before: str = "") -> None:
    """The classic entity expansion attack in the first sheet's XML, after `before` (comments…)."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    doctype = f"<!DOCTYPE worksheet [{entities}]>"

    def edit(xml: bytes) -> bytes:  # in the prolog, before the root element, where a parser honours it
        text = xml.decode()
        root = text.index("<worksheet")
        return (text[:root] + before + doctype + text[root:].replace("<t>", "<t>&lol9;", 1)).encode()
    patch_xlsx(path, sheet_part(path, 0), edit)


def zip_bomb(path: Path, megabytes: int = 64) -> None:
    """A package whose extra member is a long run of zeros (ratio ~1000:1)."""
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, z.open("xl/media/zeros.bin", "w") as fh:
        for _ in range(megabytes):
            fh.write(chunk)


def encrypted_ole(path: Path) -> Path:
    """A minimal compound file holding an `EncryptedPackage` stream, as Office writes
    password-protected .xlsx files (512-byte sectors, stream kept in the main FAT)."""
    end, free, fat_sect, nostream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    data_sectors = 8  # 4096 bytes: at the mini-stream cutoff, so the regular FAT holds it
    header = (bytes.fromhex("D0CF11E0A1B11AE1") + bytes(16)
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<108I", *[free] * 108))
    fat = [fat_sect, end] + [2 + i + 1 for i in range(data_sectors - 1)] + [end]
    fat_sector = struct.pack(f"<{len(fat)}I", *fat) + struct.pack(f"<{128 - len(fat)}I", *[free] * (128 - len(fat)))

    def entry(name: str, kind: int, child: int, start: int, size: int) -> bytes:
        raw = (name + "\0").encode("utf-16-le")
        return (raw.ljust(64, b"\0") + struct.pack("<HBB", len(raw), kind, 1)
                + struct.pack("<III", nostream, nostream, child) + bytes(16) + struct.pack("<I", 0)
                + bytes(16) + struct.pack("<IQ", start, size))

    directory = (entry("Root Entry", 5, 1, end, 0) + entry("EncryptedPackage", 2, nostream, 2, 4096)
                 + (bytes(64) + struct.pack("<HBBIII", 0, 0, 0, nostream, nostream, nostream) + bytes(48)) * 2)
    path.write_bytes(header + fat_sector + directory + bytes(range(256)) * 16)
    return path


def record_syncs(monkeypatch, look) -> tuple[list, list]:
    """(what `look()` returned at each sync of the file system, the descriptors synced one by one)
    from now on; the syncs still happen."""
    syncs, fsyncs = [], []
    real = archive.sync_file_system

    def recording(path):
        syncs.append(look())
        real(path)

    monkeypatch.setattr(archive, "sync_file_system", recording)
    monkeypatch.setattr(os, "fsync", fsyncs.append)
    return syncs, fsyncs
