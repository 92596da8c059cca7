"""The parse floor: every sheet of every file read with python-calamine, and nothing else.

    python benchmarks/floor.py FOLDER
"""
from __future__ import annotations

import sys
from pathlib import Path

from python_calamine import CalamineWorkbook


def read_all(folder: Path) -> int:
    files = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]
    for p in files:
        wb = CalamineWorkbook.from_path(str(p))
        for name in wb.sheet_names:
            wb.get_sheet_by_name(name).to_python()
    return len(files)


if __name__ == "__main__":
    print(read_all(Path(sys.argv[1])))
