"""The reader (SPEC §3, §3.4, §5) on generated files of every accepted type."""
from __future__ import annotations

import datetime as dt
import pickle
import re
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pytest

from assets.demo import Cell, satisfaction_sheets, submission_sheets, write_workbook
from assets.model import Tables, columns_of, concat_columns, frame_of, rows_of
from assets.reading import _XlsxParts, read_workbook
from factory import (FORMATS, add_cached_values, make, needs_libreoffice, patch_xlsx, reorder, saved_by_libreoffice,
                     set_cell, sheet_part, shift)

D = dt.date
YES = {"是": True, "否": False}


def read(path):
    return read_workbook(path, path.name)


def plain(v):
    """What a generated cell means, written down from SPEC §3 rather than the reader."""
    return v.value if isinstance(v, Cell) else v


def expected_cases(sheets):
    """执法案件台账 as SPEC §3.3 defines it: 是/否 as yes/no, blank amount = 0, blank result = 无."""
    header, *rows = sheets["执法案件台账"]
    out = []
    for row in rows:
        rec = dict(zip(header, row))
        for k in ("是否重大执法决定", "是否法制审核", "是否全过程记录", "是否公示"):
            rec[k] = YES[rec[k]]
        rec["罚没金额（元）"] = rec["罚没金额（元）"] or 0
        rec["复议诉讼结果"] = rec["复议诉讼结果"] or "无"
        out.append(rec)
    return out


def records(frame):
    return [{k: (None if v != v else v) for k, v in r.items() if k != "_row"}
            for r in frame.to_dict("records")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_submission_reads_exactly(tmp_path, fmt):
    sheets = submission_sheets(cases=30, seed=3, naming="省级示范", naming_year=2022)
    parsed = read(make(tmp_path, fmt, sheets))
    assert parsed.problems == []
    assert parsed.kind == "submission"
    assert parsed.cover == {"单位名称": "乐都区", "单位代码": "630202", "报送年度": 2024, "填报人": "王晓燕",
                            "联系电话": "0972-8612345", "填报日期": D(2025, 1, 15), "模板版本": "2024.1",
                            "示范命名情况": "省级示范", "命名年度": 2022}
    assert parsed.cover_cells["单位名称"] == "B2" and parsed.cover_cells["命名年度"] == "B10"
    # 年度数据: D01 on row 2 … D45 on row 46, the value in column C.
    for n, row in enumerate(sheets["年度数据"][1:], start=1):
        code = f"D{n:02d}"
        assert row[0] == code
        assert parsed.item_cells[code] == f"C{n + 1}"
        v = row[2]
        want = round(v.value * 100, 6) if isinstance(v, Cell) and "%" in v.number_format else plain(v)
        want = YES.get(want, want)
        got = parsed.items[code]
        assert (round(got, 6) if isinstance(got, float) else got) == want, code
    cases = parsed.tables["执法案件台账"]
    assert records(cases) == expected_cases(sheets)
    assert cases["_row"].tolist() == list(range(2, 32))
    assert parsed.columns["执法案件台账"]["罚没金额（元）"] == "K"
    assert len(parsed.tables["负面清单"]) == 0
    assert parsed.tables["佐证材料"]["指标编号"].tolist() == [r[0] for r in sheets["佐证材料"][1:]]
    assert parsed.tables["规范性文件"]["制发日期"].tolist() == [r[3] for r in sheets["规范性文件"][1:]]


def pandas_frame(columns):
    """The frame pandas makes of the columns as Python values, inferring every type itself."""
    return pd.DataFrame({c: np.asarray(v.to_pylist() if hasattr(v, "to_pylist") else v, dtype=object)
                         if not isinstance(v, np.ndarray) or v.dtype == object else v for c, v in columns.items()})


def test_tables_keep_columns_and_make_the_frames_pandas_would(tmp_path):
    one = read(make(tmp_path, "xlsx", submission_sheets(cases=12, seed=3)))
    two = read(make(tmp_path / "b", "xlsx", submission_sheets(cases=7, seed=4)))
    assert isinstance(one.tables, Tables) and "执法案件台账" in one.tables and "无此表" not in one.tables
    for name in one.tables:
        columns = columns_of(one.tables, name)
        pd.testing.assert_frame_equal(one.tables[name], pandas_frame(columns))
        assert rows_of(one.tables, name) == len(one.tables[name])
    assert rows_of(one.tables, "无此表") == 0 and columns_of(one.tables, "无此表") is None
    # A batch's column: both workbooks' values one under another, blank where one lacks the column.
    sheet = "执法案件台账"
    sizes = [rows_of(one.tables, sheet), rows_of(two.tables, sheet)]
    for c in ("案件编号", "罚没金额（元）", "是否公示"):
        stacked = frame_of({c: concat_columns([columns_of(one.tables, sheet)[c], columns_of(two.tables, sheet)[c]],
                                              sizes)})
        pd.testing.assert_frame_equal(stacked, pd.concat([one.tables[sheet][[c]], two.tables[sheet][[c]]],
                                                         ignore_index=True))
    text = concat_columns([columns_of(one.tables, sheet)["案件编号"], None], [12, 3])
    assert frame_of({"x": text})["x"].tolist()[11:] == [one.tables[sheet]["案件编号"].iloc[-1]] + [np.nan] * 3
    # Pickled and back, as intake stores a workbook: the same frames, whether built before or not,
    # and pickled again before any is read.
    again = pickle.loads(pickle.dumps(one.tables))
    twice = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(one.tables))))
    assert list(again) == list(twice) == list(one.tables) and "执法案件台账" in twice
    assert rows_of(twice, "执法案件台账") == 12
    for name in one.tables:
        pd.testing.assert_frame_equal(again[name], one.tables[name])
        pd.testing.assert_frame_equal(twice[name], one.tables[name])
    # Like a dict of frames, which is what tests and older stores hand to later stages.
    del again["负面清单"]
    again["负面清单"] = one.tables["负面清单"]
    assert len(again) == len(one.tables) and rows_of({"负面清单": one.tables["负面清单"]}, "负面清单") == 0


def literal_percent_sheets() -> dict:
    sheets = submission_sheets()
    set_cell(sheets, "年度数据", "C5", Cell(95.8, '0.0"%"'))   # D04 shows 95.8%: the % is text
    set_cell(sheets, "年度数据", "C9", Cell(96.0, "0\\%"))      # D08 shows 96%: the % is text
    set_cell(sheets, "年度数据", "C45", Cell(0.885, "0.0%"))    # D44 shows 88.5%: a percent format
    return sheets


def assert_literal_percent_read(parsed) -> None:
    assert parsed.errors == []
    assert (parsed.items["D04"], parsed.items["D08"]) == (95.8, 96.0)
    assert parsed.items["D44"] == pytest.approx(88.5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_percent_sign_in_quotes_or_escaped_is_text(tmp_path, fmt):
    """0.0"%" and 0\\% show the number itself followed by a % sign: it is not multiplied by 100."""
    assert_literal_percent_read(read(make(tmp_path, fmt, literal_percent_sheets())))


@needs_libreoffice
def test_a_percent_sign_in_quotes_stays_text_when_libreoffice_saves_the_file(tmp_path):
    src = make(tmp_path, "xlsx", literal_percent_sheets())
    for fmt, filt in (("xlsx", "xlsx:Calc MS Excel 2007 XML"), ("xls", "xls:MS Excel 97"), ("ods", "ods")):
        assert_literal_percent_read(read(saved_by_libreoffice(tmp_path / fmt, filt, src) / f"{src.stem}.{fmt}"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_percent_cells(tmp_path, fmt):
    sheets = submission_sheets()
    set_cell(sheets, "年度数据", "C5", Cell(0.958, "0.0%"))   # D04 shown as 95.8%
    set_cell(sheets, "年度数据", "C9", 0.95)                   # D08 plain: 0.95 %
    set_cell(sheets, "年度数据", "C31", "９５％")               # D30 text
    set_cell(sheets, "年度数据", "C45", " 88.5% ")              # D44 text
    parsed = read(make(tmp_path, fmt, sheets))
    assert parsed.errors == []
    assert parsed.items["D04"] == pytest.approx(95.8)
    assert parsed.items["D08"] == 0.95
    assert parsed.items["D30"] == 95
    assert parsed.items["D44"] == 88.5


@pytest.mark.parametrize("fmt", FORMATS)
def test_values_as_people_type_them(tmp_path, fmt):
    sheets = submission_sheets(cases=12)
    set_cell(sheets, "封面", "B3", 630202)                  # code as a number
    set_cell(sheets, "封面", "B4", "２０２４")               # full-width year
    set_cell(sheets, "年度数据", "C2", "3.0")               # D01
    set_cell(sheets, "年度数据", "C3", " １２ ")             # D02
    set_cell(sheets, "年度数据", "C4", "1,200")             # D03
    set_cell(sheets, "年度数据", "C6", "Y")                 # D05
    set_cell(sheets, "年度数据", "C7", "n")                 # D06
    set_cell(sheets, "年度数据", "C8", True)                # D07
    set_cell(sheets, "年度数据", "C13", "2024年3月5日")      # D12
    yes_no = ["√", "×", "✓", "✗", "TRUE", False, 1, 0, "是 ", "\u3000否", "ｙ"]
    dates = ["2024-03-05", "2024/3/5", "2024.3.5", "2024年3月5日", 45356, "４５３５６",
             "２０２４－０３－０５", " 2024-3-5 ", D(2024, 3, 5), dt.datetime(2024, 3, 5), "2024/03/05"]
    amounts = ["1,234.5", "１２", " 300 ", None, 7, "－5", "12,345,678", "０.５", "1e3", 2.5, "３００"]
    for i in range(11):
        r = i + 2
        set_cell(sheets, "执法案件台账", f"G{r}", yes_no[i])
        set_cell(sheets, "执法案件台账", f"E{r}", dates[i])
        set_cell(sheets, "执法案件台账", f"F{r}", None)
        set_cell(sheets, "执法案件台账", f"K{r}", amounts[i])
    set_cell(sheets, "执法案件台账", "A2", "  00123 ")
    parsed = read(make(tmp_path, fmt, sheets))
    assert parsed.errors == []
    assert parsed.cover["单位代码"] == "630202" and parsed.cover["报送年度"] == 2024
    assert [parsed.items[c] for c in ("D01", "D02", "D03", "D05", "D06", "D07", "D12")] == \
        [3, 12, 1200, True, False, True, D(2024, 3, 5)]
    cases = parsed.tables["执法案件台账"]
    assert cases["是否重大执法决定"].tolist()[:11] == [True, False, True, False, True, False, True, False,
                                                  True, False, True]
    assert cases["立案日期"].tolist()[:11] == [D(2024, 3, 5)] * 11
    assert cases["结案日期"].tolist()[:11] == [None] * 11
    assert cases["罚没金额（元）"].tolist()[:11] == [1234.5, 12, 300, 0, 7, -5, 12345678, 0.5, 1000, 2.5, 300]
    assert cases["案件编号"].iloc[0] == "00123"


@pytest.mark.parametrize("fmt", FORMATS)
def test_unreadable_values_cite_their_cell(tmp_path, fmt):
    sheets = submission_sheets(cases=5)
    set_cell(sheets, "年度数据", "C7", "abc")          # D06 yes/no
    set_cell(sheets, "年度数据", "C2", 3.5)            # D01 count: whole numbers only
    set_cell(sheets, "年度数据", "C13", "2024-13-45")  # D12 date
    set_cell(sheets, "执法案件台账", "E3", "去年")      # 立案日期 of the 2nd case
    set_cell(sheets, "执法案件台账", "K4", "五百元")    # amount
    set_cell(sheets, "封面", "B4", "二〇二四")          # 报送年度
    parsed = read(make(tmp_path, fmt, sheets))
    got = {(p.sheet, p.cell): p for p in parsed.errors}
    assert set(got) == {("年度数据", "C7"), ("年度数据", "C2"), ("年度数据", "C13"),
                        ("执法案件台账", "E3"), ("执法案件台账", "K4"), ("封面", "B4")}
    assert got[("年度数据", "C7")].value == "abc" and "是或否" in got[("年度数据", "C7")].message
    assert "非负整数" in got[("年度数据", "C2")].message
    assert "五百元" in got[("执法案件台账", "K4")].message
    assert parsed.items["D06"] is None and parsed.items["D01"] is None and parsed.cover["报送年度"] is None
    cases = parsed.tables["执法案件台账"]
    assert cases["立案日期"].iloc[1] is None
    assert cases["罚没金额（元）"].isna().iloc[2]  # unreadable: not the default 0
    assert ("执法案件台账", "E3") in parsed.unreadable and ("年度数据", "C7") in parsed.unreadable


@pytest.mark.parametrize("fmt", FORMATS)
def test_cell_references_when_data_does_not_start_at_a1(tmp_path, fmt):
    sheets = submission_sheets(cases=5)
    set_cell(sheets, "年度数据", "C7", "abc")
    set_cell(sheets, "执法案件台账", "E3", "去年")
    shift(sheets, "年度数据", rows=2, cols=1)       # now starts at B3: C7 moves to D9
    shift(sheets, "执法案件台账", rows=1, cols=2)   # E3 moves to G4
    parsed = read(make(tmp_path, fmt, sheets))
    assert {(p.sheet, p.cell) for p in parsed.errors} == {("年度数据", "D9"), ("执法案件台账", "G4")}
    assert parsed.item_cells["D01"] == "D4"
    assert parsed.tables["执法案件台账"]["_row"].tolist() == [3, 4, 5, 6, 7]
    assert parsed.columns["执法案件台账"]["案件编号"] == "C"


@pytest.mark.parametrize("fmt", ["xlsx", "ods"])
def test_columns_reordered_and_headers_untidy(tmp_path, fmt):
    sheets = submission_sheets(cases=8)
    want = records_of(read(make(tmp_path, fmt, sheets, name="a." + fmt)))
    header = sheets["执法案件台账"][0]
    header[0], header[1], header[2] = " 案件编号 ", "执法\n部门", "执法\u3000领域"
    reorder(sheets, "执法案件台账", list(reversed(range(12))))
    reorder(sheets, "年度数据", [2, 0, 4, 3, 1])      # 数值 first, 编号 second
    sheets["执法案件台账"].insert(0, ["执法案件台账（2024年度）"])  # a title row above the header
    parsed = read(make(tmp_path, fmt, sheets, name="b." + fmt))
    assert parsed.problems == []
    assert records_of(parsed) == want
    assert parsed.columns["执法案件台账"]["案件编号"] == "L"
    assert parsed.tables["执法案件台账"]["_row"].iloc[0] == 3
    assert parsed.item_cells["D04"] == "A5"


def rounded(values: dict) -> dict:
    return {k: round(v, 9) if isinstance(v, float) else v for k, v in values.items()}


def records_of(parsed):
    return records(parsed.tables["执法案件台账"]), parsed.items


def test_blank_rows_are_skipped(tmp_path):
    sheets = submission_sheets(cases=4)
    sheets["执法案件台账"].insert(3, [None] * 12)
    sheets["执法案件台账"].append([None, ""])
    parsed = read(make(tmp_path, "xlsx", sheets))
    assert parsed.problems == []
    assert parsed.tables["执法案件台账"]["_row"].tolist() == [2, 3, 5, 6]


def test_missing_and_extra_sheets(tmp_path):
    sheets = submission_sheets()
    del sheets["佐证材料"]
    sheets["Sheet1"] = [["随手记"]]
    parsed = read(make(tmp_path, "xlsx", sheets))
    [error] = parsed.errors
    assert (error.sheet, error.cell) == ("佐证材料", None) and "缺少工作表“佐证材料”" in error.message
    [warning] = [p for p in parsed.problems if p.severity == "warning"]
    assert warning.sheet == "Sheet1" and warning.message == "工作表“Sheet1”不在模板中，已忽略"


def test_missing_header_item_and_duplicates(tmp_path):
    sheets = submission_sheets()
    reorder(sheets, "执法案件台账", [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11])   # 执法领域 gone
    del sheets["年度数据"][10]          # the D10 row: D03 now lands on row 46, D99 on 47
    sheets["年度数据"].append(["D03", "重复", 5, "次", ""])
    sheets["年度数据"].append(["D99", "自加项目", 1, "次", ""])
    del sheets["封面"][4]                                                   # 填报人
    parsed = read(make(tmp_path, "xlsx", sheets))
    messages = {(p.sheet, p.cell, p.severity): p.message for p in parsed.problems}
    assert "“执法领域”" in messages[("执法案件台账", None, "error")]
    assert "D10" in [m for (s, c, _), m in messages.items() if s == "年度数据" and c is None][0]
    assert "重复" in messages[("年度数据", "A46", "error")]
    assert "D99" in messages[("年度数据", "A47", "warning")]
    assert "填报人" in messages[("封面", None, "error")]
    assert parsed.items["D03"] == plain(sheets["年度数据"][3][2])
    assert parsed.tables["执法案件台账"]["执法领域"].isna().all()


def test_formulas(tmp_path):
    sheets = submission_sheets()
    set_cell(sheets, "年度数据", "C2", "=1+2")
    set_cell(sheets, "年度数据", "C3", "=C2*2")
    path = make(tmp_path, "xlsx", sheets)
    parsed = read(path)
    assert {(p.sheet, p.cell) for p in parsed.errors} == {("年度数据", "C2"), ("年度数据", "C3")}
    assert "公式" in parsed.errors[0].message
    add_cached_values(path, 1, {"C2": "3", "C3": "6"})
    parsed = read(path)
    assert parsed.problems == []
    assert (parsed.items["D01"], parsed.items["D02"]) == (3, 6)


def test_formulas_in_a_prefixed_namespace(tmp_path):
    """Some generators write <x:c><x:f>…: the formula without a value is still found."""
    sheets = submission_sheets()
    set_cell(sheets, "年度数据", "C2", "=1+2")
    path = make(tmp_path, "xlsx", sheets)
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"

    def prefixed(xml: bytes) -> bytes:
        text = xml.decode().replace(f'xmlns="{main}"', f'xmlns:x="{main}"', 1)
        return re.sub(r"<(/?)(?=[A-Za-z])", r"<\1x:", text).encode()
    patch_xlsx(path, sheet_part(path, 1), prefixed)
    assert "<x:f>" in zipfile.ZipFile(path).read(sheet_part(path, 1)).decode()
    assert {(p.sheet, p.cell) for p in read(path).errors} == {("年度数据", "C2")}


def test_attributes_quoted_with_apostrophes(tmp_path):
    """XML may quote attributes with ' as well as ": error cells and percent styles are still found."""
    sheets = submission_sheets()
    set_cell(sheets, "年度数据", "C5", Cell(0.958, "0.0%"))   # D04 shown as 95.8%
    path = make(tmp_path, "xlsx", sheets)
    wb = openpyxl.load_workbook(path)
    wb["年度数据"]["C2"].value, wb["年度数据"]["C2"].data_type = "#DIV/0!", "e"
    wb.save(path)
    for part in (sheet_part(path, 1), "xl/styles.xml"):
        patch_xlsx(path, part, lambda xml: re.sub(rb'(\w+)="([^"]*)"', rb"\1='\2'", xml))
    assert b"t='e'" in zipfile.ZipFile(path).read(sheet_part(path, 1))
    parsed = read(path)
    assert [(e.sheet, e.cell, e.value) for e in parsed.errors] == [("年度数据", "C2", "#DIV/0!")]
    assert parsed.items["D04"] == pytest.approx(95.8)


def test_parts_are_read_as_zipfile_reads_them(tmp_path):
    """Parts are inflated without zipfile (see `_XlsxParts.part`): same bytes, stored parts too."""
    path = make(tmp_path, "xlsx", cases=300)
    stored = sheet_part(path, 1)
    with zipfile.ZipFile(path) as z:
        members = [(i, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in members:
            info.compress_type = zipfile.ZIP_STORED if info.filename == stored else zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    parts = _XlsxParts(path)
    with zipfile.ZipFile(path) as z:
        assert z.getinfo(stored).compress_type == zipfile.ZIP_STORED
        assert {n: parts.part(n) for n in z.namelist()} == {n: z.read(n) for n in z.namelist()}
    parts.close()


def test_a_part_not_matching_its_checksum_is_refused(tmp_path):
    path = make(tmp_path, "xlsx")
    part = sheet_part(path, 1)
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + len(part)] != part.encode():  # the part's central directory entry
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 16] ^= 0xFF  # its CRC-32
    path.write_bytes(bytes(data))
    parts = _XlsxParts(path)
    with pytest.raises(zipfile.BadZipFile):
        parts.part(part)
    parts.close()
    assert "损坏" in read(path).errors[0].message


@pytest.mark.parametrize("fmt", FORMATS)
def test_satisfaction_file(tmp_path, fmt):
    rows = [("630202", "乐都区", 2024, 92.5), ("630203", "平安区", 2024, 88)]
    path = write_workbook(satisfaction_sheets(rows), tmp_path / f"2024年满意度测评结果.{fmt}")
    parsed = read(path)
    assert parsed.kind == "satisfaction" and parsed.problems == []
    frame = parsed.tables["满意度测评结果"]
    assert frame[["单位代码", "单位名称", "测评年度", "满意度得分"]].values.tolist() == \
        [["630202", "乐都区", 2024, 92.5], ["630203", "平安区", 2024, 88]]


def test_large_case_table(tmp_path):
    parsed = read(make(tmp_path, "xlsx", cases=12000))
    assert parsed.problems == []
    assert len(parsed.tables["执法案件台账"]) == 12000


@needs_libreoffice
def test_libreoffice_conversions_read_the_same(tmp_path):
    sheets = submission_sheets(cases=25, seed=7)
    set_cell(sheets, "年度数据", "C9", 0.95)
    src = make(tmp_path, "xlsx", sheets)
    want = read(src)
    for fmt, filt in (("xls", "xls:MS Excel 97"), ("ods", "ods")):
        got = read(saved_by_libreoffice(tmp_path / fmt, filt, src) / f"{src.stem}.{fmt}")
        assert got.problems == []
        assert got.cover == want.cover
        assert rounded(got.items) == rounded(want.items)
        for name, frame in want.tables.items():
            assert records(got.tables[name]) == records(frame), (fmt, name)


def test_error_cells_are_not_blank(tmp_path):
    path = make(tmp_path, "xlsx")
    wb = openpyxl.load_workbook(path)
    wb["年度数据"]["C2"].value, wb["年度数据"]["C2"].data_type = "#DIV/0!", "e"
    wb.save(path)
    [error] = read(path).errors
    assert (error.sheet, error.cell, error.value) == ("年度数据", "C2", "#DIV/0!")


@needs_libreoffice
def test_error_cells_saved_by_libreoffice_as_xls_and_ods_are_not_blank(tmp_path):
    """calamine reads an error cell of an xls or ods file as blank; the reader must not."""
    path = make(tmp_path, "xlsx")
    wb = openpyxl.load_workbook(path)
    wb["年度数据"]["C2"] = "=1/0"
    wb["执法案件台账"]["K3"] = "=NA()"
    wb.save(path)
    for fmt, filt in (("xls", "xls:MS Excel 97"), ("ods", "ods")):
        parsed = read(saved_by_libreoffice(tmp_path / fmt, filt, path) / f"{path.stem}.{fmt}")
        assert {(e.sheet, e.cell, e.value) for e in parsed.errors} == {
            ("年度数据", "C2", "#DIV/0!"), ("执法案件台账", "K3", "#N/A")}, fmt


def test_excel_boolean_in_a_number_column_is_unreadable(tmp_path):
    sheets = submission_sheets(cases=3)
    set_cell(sheets, "执法案件台账", "K2", True)
    set_cell(sheets, "执法案件台账", "K3", 1)
    parsed = read(make(tmp_path, "xlsx", sheets))
    [error] = parsed.errors
    assert (error.cell, error.value) == ("K2", True) and "“TRUE”" in error.message
    assert parsed.tables["执法案件台账"]["罚没金额（元）"].tolist()[1] == 1
