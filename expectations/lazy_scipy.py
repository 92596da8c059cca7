"""Modules loaded on first use: `expectations/suites.py` registers scipy.stats here before it
imports Great Expectations.

Great Expectations imports scipy.stats (some 480 modules) for its distribution
tests (Kolmogorov-Smirnov, KL divergence), which no suite here uses, and only
inside the functions that run them. So scipy.stats is registered to load on first
use: importing intake and validation took 3.2-4.1 s of CPU with it, 2.3-3.0 s
without. Processes that never check a file (the one running `fazhi process`, the
UI) import neither the suites nor scipy.
"""
import importlib.util
import sys


def load_on_first_use(name: str) -> None:
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
