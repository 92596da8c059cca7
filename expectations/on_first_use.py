"""Modules loaded on first use: `expectations/suites.py` registers them here before it
imports Great Expectations.

Great Expectations imports two large packages that no suite here uses, and only
inside the functions that would use them:
- scipy.stats (some 480 modules), for its distribution tests (Kolmogorov-Smirnov,
  KL divergence): importing intake and validation took 3.2-4.1 s of CPU with it,
  2.3-3.0 s without;
- altair (with jsonschema and narwhals), to chart the KL divergence in Data Docs:
  2.2-2.8 s of CPU without it against 2.6-3.1 s with, three runs each.
Each is replaced by a stand-in that imports the real module when one of its
attributes is first used. Processes that never check a file (the one running
`fazhi process`, the UI) import neither the suites nor these.
"""
import importlib
import importlib.util
import sys
import types


class _StandIn(types.ModuleType):
    """In sys.modules in place of a module until an attribute of it is asked for. (The standard
    LazyLoader does not do here: `import altair` asks for the module's __spec__, which loads it.)"""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]  # importing it again then loads the real one (and sets it on its parent)
        return getattr(importlib.import_module(self.__name__), attr)


def load_on_first_use(name: str) -> None:
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return
    sys.modules[name] = stand_in = _StandIn(name)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, stand_in)  # else `from parent import child` imports it at once
