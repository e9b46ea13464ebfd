"""Importing Great Expectations: once, optionally in a background thread, without what it never uses.

Importing GX costs about 3 CPU-seconds, and about 1.5 of them go to two libraries it imports at once
for features the suites here never use: ``scipy.stats`` (its KL-divergence and KS-test expectations)
and ``altair`` (their charts). Each of those is replaced, for the import, by a stand-in module that
imports the real one on its first attribute access and hands that attribute on; the real module then
takes its place in ``sys.modules``. Whoever uses them later (GX itself, or any other code in the
process) gets the real thing, only later. A module already imported is left as it is.

GX also phones home unless ``GX_ANALYTICS_ENABLED=false`` is set first: :func:`import_gx` sets it.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import types

# Imported by GX's own import, used only by expectations and renderers the suites do not use.
DEFERRED_MODULES = ("scipy.stats", "altair")

_lock = threading.RLock()
_preload: threading.Thread | None = None


class _Deferred(types.ModuleType):
    """A stand-in for a module not imported yet: its first attribute access imports the real one."""

    def __getattr__(self, name: str) -> object:
        return getattr(_real(self.__name__), name)


def _real(name: str) -> types.ModuleType:
    """The real module ``name``, imported now if only its stand-in is in ``sys.modules``."""
    with _lock:
        module = sys.modules.get(name)
        if isinstance(module, _Deferred) or module is None:
            sys.modules.pop(name, None)
            module = importlib.import_module(name)
        return module


def import_gx() -> None:
    """Import Great Expectations and its expectations (once; later calls return at once)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    with _lock:  # not held while GX imports: importlib's own locks serialize that
        if "great_expectations" not in sys.modules:
            for name in DEFERRED_MODULES:
                if name not in sys.modules:
                    sys.modules[name] = _Deferred(name)
    import great_expectations  # noqa: F401
    import great_expectations.expectations  # noqa: F401


def preload_gx() -> None:
    """Start importing Great Expectations in a background thread (once); returns at once."""
    global _preload
    with _lock:
        if _preload is None:
            _preload = threading.Thread(target=import_gx, name="gx-import", daemon=True)
            _preload.start()


def wait_for_gx() -> None:
    """Return once Great Expectations is imported (importing it here if no thread did)."""
    thread = _preload
    if thread is not None:
        thread.join()
    import_gx()
