"""Taking files from the inbox: exact bytes stored once, a record per file, nothing left half-done."""
from __future__ import annotations

import errno
import hashlib
import os

import pytest

from assets import archive
from factory import record_syncs


def test_files_taken_together_each_get_a_record_and_identical_bytes_one_object(tmp_path, monkeypatch):
    paths = archive.Paths(tmp_path).ensure()
    contents = {f"{i:02d}.xlsx": (b"same bytes" if i % 3 == 0 else f"file {i}".encode()) * 1000
                for i in range(40)}
    for name, data in contents.items():
        (paths.inbox / name).write_bytes(data)
    vanished = paths.inbox / "gone.xlsx"
    vanished.write_bytes(b"x")
    real = archive._stage

    def archive_or_vanish(path, *args):
        if path == vanished:
            path.unlink()
        return real(path, *args)

    monkeypatch.setattr(archive, "_stage", archive_or_vanish)
    seen = archive.scan_inbox(paths.inbox, {})[1]
    taken, seen, failed = archive.take_ready_files(paths, seen)

    assert [r.original_name for r in taken] == sorted(contents)  # inbox order kept
    received = archive.received_records(paths.received.glob("*.json"))
    assert [r.original_name for r in received] == sorted(contents)  # and so is arrival order
    assert len(failed) == 1 and failed[0].startswith("gone.xlsx:")
    assert list(paths.inbox.iterdir()) == [] and seen == {}
    for rec in taken:
        assert rec.sha256 == hashlib.sha256(contents[rec.original_name]).hexdigest()
        assert paths.object(rec.sha256).read_bytes() == contents[rec.original_name]
    assert len({r.record_id for r in taken}) == 40
    assert len(list(paths.received.glob("*.json"))) == 40
    objects = [p for p in paths.objects.rglob("*") if p.is_file()]
    assert len(objects) == len(set(contents.values()))
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_an_atomic_write_that_fails_leaves_neither_the_file_nor_its_temporary(tmp_path):
    target = tmp_path / "record.json"
    with pytest.raises(RuntimeError):
        with archive.atomic_file(target) as fh:
            fh.write(b"half of it")
            raise RuntimeError("disk gone")
    assert list(tmp_path.iterdir()) == []
    archive.write_atomic(target, b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]


def _take_all(paths):
    seen = archive.scan_inbox(paths.inbox, {})[1]
    return archive.take_ready_files(paths, seen)


def test_a_file_of_ours_is_archived_as_a_second_name_of_its_bytes_no_one_else_may_write(tmp_path):
    paths = archive.Paths(tmp_path).ensure()
    dropped = paths.inbox / "a.xlsx"
    dropped.write_bytes(b"workbook bytes" * 500)
    dropped.chmod(0o666)
    inode = dropped.stat().st_ino

    (rec,), _, failed = _take_all(paths)

    stored = paths.object(rec.sha256)
    assert not failed and not dropped.exists()
    assert stored.read_bytes() == b"workbook bytes" * 500
    st = stored.stat()
    assert (st.st_ino, st.st_nlink) == (inode, 1)  # no copy, and the archive's name is its only one
    assert st.st_mode & 0o777 == 0o644


def test_bytes_that_have_another_name_or_cannot_be_linked_are_copied(tmp_path, monkeypatch):
    paths = archive.Paths(tmp_path).ensure()
    elsewhere = tmp_path / "elsewhere.xlsx"
    elsewhere.write_bytes(b"first version")
    os.link(elsewhere, paths.inbox / "shared.xlsx")
    (rec,), _, _ = _take_all(paths)
    elsewhere.write_bytes(b"changed later")  # in place, through the other name
    assert paths.object(rec.sha256).read_bytes() == b"first version"

    def no_links(*_):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    (paths.inbox / "b.xlsx").write_bytes(b"on another file system")
    (rec,), _, failed = _take_all(paths)
    assert not failed and paths.object(rec.sha256).read_bytes() == b"on another file system"
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_file_written_to_while_archived_stays_in_the_inbox_for_the_next_poll(tmp_path, monkeypatch):
    paths = archive.Paths(tmp_path).ensure()
    dropped = paths.inbox / "growing.xlsx"
    dropped.write_bytes(b"first half")
    real = archive._linked

    def still_writing(path, tmp):
        with open(path, "ab") as fh:
            fh.write(b" and the second half")
        return real(path, tmp)

    monkeypatch.setattr(archive, "_linked", still_writing)
    taken, _, failed = _take_all(paths)
    assert taken == [] and "changed while being archived" in failed[0]
    assert dropped.read_bytes() == b"first half and the second half"
    assert [p for p in paths.objects.rglob("*") if p.is_file()] == []
    assert list(paths.received.iterdir()) == []


def test_files_leave_the_inbox_only_after_their_bytes_and_records_are_synced_once_for_all(tmp_path, monkeypatch):
    paths = archive.Paths(tmp_path).ensure()
    for i in range(5):
        (paths.inbox / f"{i}.xlsx").write_bytes(f"workbook {i}".encode() * 100)

    def state():
        return (sorted(p.name for p in paths.inbox.iterdir()),
                sorted(p.name for p in paths.received.iterdir() if not p.name.endswith(".tmp")),
                sorted(p.name for p in paths.objects.rglob("*") if p.is_file() and not p.name.endswith(".tmp")))

    syncs, fsyncs = record_syncs(monkeypatch, state)
    taken, _, failed = _take_all(paths)

    assert len(taken) == 5 and not failed and fsyncs == []  # no sync of its own for any file
    inbox = [f"{i}.xlsx" for i in range(5)]
    objects, records = sorted(r.sha256 for r in taken), sorted(f"{r.record_id}.json" for r in taken)
    assert syncs == [(inbox, [], []),  # the bytes, under temporary names
                     (inbox, [], objects),  # the bytes in place, then the records under temporary names
                     (inbox, records, objects)]  # the records in place, the inbox untouched
    assert list(paths.inbox.iterdir()) == []
    syncs.clear()
    assert _take_all(paths) == ([], {}, []) and syncs == []  # an empty inbox, looked at every second


def test_files_written_all_atomic_are_synced_before_any_takes_its_name_and_a_failure_leaves_none(tmp_path, monkeypatch):
    syncs, _ = record_syncs(monkeypatch, lambda: sorted(p.name for p in tmp_path.iterdir()))
    archive.write_all_atomic([(tmp_path / "a.json", b"a"), (tmp_path / "b.json", b"b")], tmp_path)
    assert len(syncs) == 1 and all(name.endswith(".tmp") for name in syncs[0]) and len(syncs[0]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]
    archive.write_all_atomic([], tmp_path)
    assert len(syncs) == 1  # nothing to write, nothing to sync

    def files():
        yield tmp_path / "c.json", b"c"
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        archive.write_all_atomic(files(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]
