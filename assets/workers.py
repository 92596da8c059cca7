"""Worker processes for the stages that use both cores (intake, 回头看 packages)."""
from __future__ import annotations

import ctypes
import functools
import gc
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_state: Any = None
_server_started = False

# What intake's workers import before the first file: Great Expectations above all (seconds).
INTAKE_MODULES = ["assets.intake", "assets.validation"]


def worker_count() -> int:
    """FAZHI_WORKERS, else one per core (at most 2, the machine this is sized for); 1 means no pool."""
    return int(os.environ.get("FAZHI_WORKERS", min(2, os.cpu_count() or 1)))


def pool_size(jobs: int, minimum: int) -> int:
    """How many worker processes `jobs` pieces of work get: below `minimum`, starting workers
    costs more than it saves, and the caller works alone (1)."""
    n = worker_count()
    return n if n > 1 and jobs >= minimum else 1


def server_started() -> bool:
    """Whether this process has started the workers' fork server: forking a worker from it then
    costs milliseconds, where starting it costs seconds of imports."""
    return _server_started


def process_pool(n: int, preload: list[str], factory: Callable, args: tuple) -> ProcessPoolExecutor:
    """Workers that each build `factory(*args)` once (see `state`), forked from a server that has
    imported the `preload` modules once. Not plain fork: the parent runs Dagster's threads. Only
    the first preload of a process applies (see `warm_up`); later pools import what is missing."""
    return ProcessPoolExecutor(n, mp_context=_forkserver(preload), initializer=_start, initargs=(factory, args))


def shared_counters(n: int):
    """`n` integers (zero) that a pool's workers change together, under its lock: pass it in the
    pool's factory arguments, which reach a worker when it starts (not with each task)."""
    return multiprocessing.get_context("forkserver").Array("i", n)


def warm_up(preload: list[str]) -> None:
    """Start the fork server now, so that its imports (seconds, mostly Great Expectations) run on
    the other core while this process is still importing and setting up."""
    if worker_count() > 1:
        _forkserver(preload)
        from multiprocessing import forkserver
        forkserver.ensure_running()


def _forkserver(preload: list[str]):
    global _server_started
    _server_started = True  # started here (warm_up) or by the pool's first task
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["assets.fork_server", *preload])
    return context


def _start(factory: Callable, args: tuple) -> None:
    global _state
    _state = factory(*args)
    # Modules (Great Expectations above all) and the state live as long as the worker: out of the
    # full collections, each of which walked all of them again. Reading a workbook makes thousands of
    # short-lived lists (its rows); collecting every 10,000 allocations instead of 700, most are gone
    # before a collection looks at them. Checking 200 files, collections took 1.4 ms per file, 0.8 ms
    # frozen, 0.3 ms frozen and with the higher threshold.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    gc.enable()  # off in the fork server (assets/fork_server.py)


def state() -> Any:
    """In a worker: what its pool's factory built."""
    return _state


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim; elsewhere nothing).

    Reading a workbook frees most of what it allocates, but the allocator keeps those pages,
    scattered between the tables that stay: a worker held 0.93 MB per file read, and 0.44 MB
    when the pages go back every 10 files (0.37 MB after every file, at 1.7 ms a time).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
