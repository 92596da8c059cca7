"""The submission workbook schema (data) and the Great Expectations suites built from it.

Great Expectations imports scipy.stats (some 480 modules) for its distribution
tests (Kolmogorov-Smirnov, KL divergence), which no suite here uses. Every
process that checks files imports Great Expectations before its first file, so
scipy.stats is registered to load on first use: importing intake and validation
took 3.2-4.1 s of CPU with it, 2.3-3.0 s without.
"""
import importlib.util
import sys


def _load_on_first_use(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)  # else `from parent import child` imports it at once


_load_on_first_use("scipy.stats")
