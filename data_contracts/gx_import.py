"""Importing Great Expectations: once, optionally in a background thread, without what it never uses.

Importing GX costs about 3 CPU-seconds, and about 1.5 of them go to two libraries it imports at once
for features the suites here never use: ``scipy.stats`` (its KL-divergence and KS-test expectations)
and ``altair`` (their charts). Each of those is replaced, for the import, by a stand-in module that
imports the real one on its first attribute access and hands that attribute on; the real module then
takes its place in ``sys.modules``. Whoever uses them later (GX itself, or any other code in the
process) gets the real thing, only later. A module already imported is left as it is.

GX also phones home unless ``GX_ANALYTICS_ENABLED=false`` is set first: :func:`import_gx` sets it.

Importing GX, and GX's checks after it, are pure Python: a thread running them holds the GIL for
Python's whole switch interval (5 ms) before another thread may take it. The threads beside them
(the ingest's key checks and file syncs, the threads that read and hand over the next batch) work
in polars, pyarrow and NumPy without the GIL and need it only for a moment between two calls; each
such moment waited up to 5 ms. :func:`short_gil_slices` lowers the interval while GX imports or
checks (0.5 ms), and restores it after.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager

# Imported by GX's own import, used only by expectations and renderers the suites do not use.
DEFERRED_MODULES = ("scipy.stats", "altair")

_lock = threading.RLock()
_preload: threading.Thread | None = None

# Large demo drop (17.6 M store-sales rows, 2 cores, quiet machine), load and validation from memory,
# three alternating runs each: 5 ms (Python's default) 11.9-12.5 s, 1 ms 11.4-11.8 s, 0.5 ms 11.5-11.6 s.
GIL_SLICE_S = 0.0005
_slices = {"users": 0, "saved": 0.0}
_slices_lock = threading.Lock()  # not _lock: that one is held while a deferred module imports


@contextmanager
def short_gil_slices(interval: float = GIL_SLICE_S) -> Iterator[None]:
    """Lower Python's thread switch interval to ``interval`` seconds while the block runs (it is one
    setting of the process: nested and overlapping blocks, in any threads, keep it until the last one
    ends, which restores the value found by the first)."""
    with _slices_lock:
        if _slices["users"] == 0:
            _slices["saved"] = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, _slices["saved"]))
        _slices["users"] += 1
    try:
        yield
    finally:
        with _slices_lock:
            _slices["users"] -= 1
            if _slices["users"] == 0:
                sys.setswitchinterval(_slices["saved"])


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


def _import_in_short_slices() -> None:
    with short_gil_slices():
        import_gx()


def preload_gx() -> None:
    """Start importing Great Expectations in a background thread (once); returns at once. While it
    imports, the threads beside it get the GIL in short slices (:func:`short_gil_slices`)."""
    global _preload
    with _lock:
        if _preload is None:
            _preload = threading.Thread(target=_import_in_short_slices, name="gx-import", daemon=True)
            _preload.start()


def wait_for_gx() -> None:
    """Return once Great Expectations is imported (importing it here if no thread did)."""
    thread = _preload
    if thread is not None:
        thread.join()
    import_gx()
