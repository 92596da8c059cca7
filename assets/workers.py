"""Worker processes for the stages that use both cores (intake, 回头看 packages)."""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_state: Any = None


def worker_count() -> int:
    """FAZHI_WORKERS, else one per core (at most 2, the machine this is sized for); 1 means no pool."""
    return int(os.environ.get("FAZHI_WORKERS", min(2, os.cpu_count() or 1)))


def process_pool(n: int, preload: str, factory: Callable, args: tuple) -> ProcessPoolExecutor:
    """Workers that each build `factory(*args)` once (see `state`), forked from a server that has
    imported `preload` once. Not plain fork: the parent runs Dagster's threads. Only the first
    preload of a process applies; later pools import what is missing."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload])
    return ProcessPoolExecutor(n, mp_context=context, initializer=_start, initargs=(factory, args))


def _start(factory: Callable, args: tuple) -> None:
    global _state
    _state = factory(*args)


def state() -> Any:
    """In a worker: what its pool's factory built."""
    return _state
