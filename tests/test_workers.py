"""Worker helpers: freed memory goes back to the system; what workers load stays out of collections."""
import gc
import os

import pytest

from assets.workers import _malloc_trim, process_pool, release_free_memory, state


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(_malloc_trim() is None, reason="malloc_trim is glibc's")
def test_release_free_memory_returns_pages_kept_between_live_objects():
    # 1 KB blocks come from malloc's heap, not Python's small-object arenas; keeping one block
    # in 16 pins the heap, so freeing the others does not shrink the process on its own.
    blocks = [bytes(1024) + i.to_bytes(4, "little") for i in range(200_000)]
    kept = blocks[::16]
    before = _rss_mb()
    del blocks
    freed = _rss_mb()
    release_free_memory()
    after = _rss_mb()
    assert freed > before - 50, "the allocator kept the freed pages (the case this helper is for)"
    assert after < freed - 100, f"{freed:.0f} MB before release, {after:.0f} MB after"
    assert len(kept) == 12_500


def _collections_and_state() -> tuple[int, int, object]:
    return gc.get_freeze_count(), gc.get_threshold()[0], state()


def test_workers_freeze_what_they_loaded_and_collect_less_often():
    pool = process_pool(1, ["assets.workers"], dict, ({"built": True},))
    try:
        frozen, threshold, built = pool.submit(_collections_and_state).result(timeout=120)
    finally:
        pool.shutdown()
    assert built == {"built": True}
    assert frozen > 10_000, f"only {frozen} objects frozen: full collections walk every module again"
    assert threshold >= 10_000, f"a young collection every {threshold} allocations"


def test_workers_collect_garbage_though_their_fork_server_imports_without():
    """The fork server imports with the cyclic collector off (assets/fork_server.py); a worker
    that left it off would never free a reference cycle."""
    pool = process_pool(1, ["assets.workers"], dict, ({},))
    try:
        assert pool.submit(gc.isenabled).result(timeout=120) is True
    finally:
        pool.shutdown()
