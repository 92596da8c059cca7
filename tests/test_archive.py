"""Taking files from the inbox: exact bytes stored once, a record per file, nothing left half-done."""
from __future__ import annotations

import hashlib

import pytest

from assets import archive


def test_files_taken_together_each_get_a_record_and_identical_bytes_one_object(tmp_path, monkeypatch):
    paths = archive.Paths(tmp_path).ensure()
    contents = {f"{i:02d}.xlsx": (b"same bytes" if i % 3 == 0 else f"file {i}".encode()) * 1000
                for i in range(40)}
    for name, data in contents.items():
        (paths.inbox / name).write_bytes(data)
    vanished = paths.inbox / "gone.xlsx"
    vanished.write_bytes(b"x")
    real = archive.archive_file

    def archive_or_vanish(path, *args):
        if path == vanished:
            path.unlink()
        return real(path, *args)

    monkeypatch.setattr(archive, "archive_file", archive_or_vanish)
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
