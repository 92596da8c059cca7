"""Where the pipeline keeps its files and which registry it uses."""
from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from assets.archive import Paths
from assets.registry import PROJECT_DIR, Registry, load_registry


def default_root() -> str:
    return os.environ.get("FAZHI_ROOT") or str(PROJECT_DIR)


class FazhiSettings(dg.ConfigurableResource):
    """The root folder (inbox/, archive/, receipts/, exports/, store/) and the unit registry."""

    root: str = ""
    units_file: str = ""

    @property
    def paths(self) -> Paths:
        return Paths(self.root or default_root()).ensure()

    def registry(self) -> Registry:
        return load_registry(self.units_file or os.environ.get("FAZHI_UNITS") or None)

    @property
    def units_path(self) -> Path | None:
        value = self.units_file or os.environ.get("FAZHI_UNITS")
        return Path(value) if value else None
