"""Hostile files (SPEC §7): each is rejected with one whole-file reason, never parsed."""
from __future__ import annotations

import dataclasses
import shutil

import pytest

from assets.reading import read_workbook
from assets.safety import inspect_container
from expectations.schema import load_schema
from factory import FORMATS, billion_laughs, encrypted_ole, make, zip_bomb

LIMITS = load_schema().limits


def rejected(path, name=None, limits=LIMITS):
    """The whole-file Problem, checked to be one through the reader as well."""
    name = name or path.name
    problem = inspect_container(path, name, limits)
    assert problem is not None and problem.sheet is None and problem.cell is None
    parsed = read_workbook(path, name)
    if limits is LIMITS:
        assert parsed.problems == [problem]
    return problem.message


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_files_pass(tmp_path, fmt):
    assert inspect_container(make(tmp_path, fmt), f"x.{fmt}", LIMITS) is None


def test_empty_file(tmp_path):
    (tmp_path / "a.xlsx").write_bytes(b"")
    assert "空的" in rejected(tmp_path / "a.xlsx")


def test_unsupported_extension(tmp_path):
    path = make(tmp_path, "xlsx")
    msg = rejected(path, "报送.pdf")
    assert ".pdf" in msg and ".xlsx" in msg


def test_file_too_big(tmp_path):
    path = make(tmp_path, "xlsx")
    msg = rejected(path, limits={**LIMITS, "max_file_bytes": 1000})
    assert "超过上限" in msg


@pytest.mark.parametrize("fmt", ["xlsx", "ods"])
def test_truncated_zip(tmp_path, fmt):
    path = make(tmp_path, fmt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "损坏" in rejected(path)


@pytest.mark.parametrize("name", ["加密.xlsx", "加密.xlsm", "加密.xls"])
def test_password_protected(tmp_path, name):
    path = encrypted_ole(tmp_path / name)
    assert rejected(path) == "文件设置了打开密码，系统无法读取。请取消密码后重新报送。"


def test_zip_bomb_by_ratio(tmp_path):
    path = make(tmp_path, "xlsx")
    zip_bomb(path, megabytes=16)
    assert "解压后体积过大" in rejected(path)


def test_zip_bomb_by_total_size(tmp_path):
    path = make(tmp_path, "xlsx", cases=2000)
    small = {**LIMITS, "max_uncompressed_bytes": 100_000}
    assert "解压后体积过大" in rejected(path, limits=small)


def test_billion_laughs(tmp_path):
    path = make(tmp_path, "xlsx")
    billion_laughs(path)
    assert "DOCTYPE" in rejected(path)


@pytest.mark.parametrize("before", [
    "<!-- <worksheet> -->",  # a start tag inside a comment is not the root element
    "<?note <worksheet>?>",
    "<!--" + "x" * 5000 + "-->",  # the prolog runs past the first read
])
def test_doctype_behind_comments(tmp_path, before):
    path = make(tmp_path, "xlsx")
    billion_laughs(path, before)
    assert "DOCTYPE" in rejected(path)


@pytest.mark.parametrize("ext", ["xls", "xlsx"])
@pytest.mark.parametrize("body", [
    "\ufeff<!DOCTYPE html><html><body><table><tr><td>单位名称</td></tr></table></body></html>",
    "  \r\n<table><tr><td>乐都区</td></tr></table>",
    "<HTML><meta charset=gbk></HTML>",
])
def test_html_renamed(tmp_path, ext, body):
    path = tmp_path / f"导出.{ext}"
    path.write_bytes(body.encode("utf-8"))
    msg = rejected(path)
    assert "网页(HTML)" in msg and f".{ext}" in msg and "另存为" in msg


@pytest.mark.parametrize("ext", ["xls", "xlsx"])
@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_csv_renamed(tmp_path, ext, encoding):
    path = tmp_path / f"数据.{ext}"
    path.write_bytes("项目,内容\r\n单位名称,乐都区\r\n报送年度,2024\r\n".encode(encoding))
    assert "文本(CSV/TXT)" in rejected(path)


def test_xlsx_content_with_xls_name(tmp_path):
    path = make(tmp_path, "xlsx")
    assert "与扩展名.xls不符" in rejected(path, "报送.xls")


def test_ods_content_with_xlsx_name(tmp_path):
    path = make(tmp_path, "ods")
    assert "ODS" in rejected(path, "报送.xlsx")


def test_random_bytes(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(bytes(range(256)) * 4)
    assert "无法识别" in rejected(path)


def test_sheet_over_row_limit_is_a_sheet_error(tmp_path):
    schema = dataclasses.replace(load_schema(), limits={**LIMITS, "max_rows_per_sheet": 100})
    parsed = read_workbook(make(tmp_path, "xlsx", cases=150), "a.xlsx", schema=schema)
    [problem] = parsed.errors
    assert (problem.sheet, problem.cell, problem.value) == ("执法案件台账", None, 151)
    assert "超过上限100行" in problem.message
    assert "执法案件台账" not in parsed.tables and len(parsed.tables["规范性文件"]) > 0


@pytest.mark.parametrize("name", ["乐都区 2024年 报送（最终版）.xlsx", "😀 报送 final .XLSX",
                                  "a b\u3000c.ods", "-=cmd.xls"])
def test_odd_file_names(tmp_path, name):
    src = make(tmp_path, name.rsplit(".", 1)[1].lower())
    path = tmp_path / name
    shutil.move(src, path)
    parsed = read_workbook(path, name)
    assert parsed.problems == []
    assert parsed.cover["单位名称"] == "乐都区"
