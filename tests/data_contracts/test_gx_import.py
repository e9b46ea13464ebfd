"""Importing GX leaves scipy.stats and altair to their first use, and they work when used."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_PROBE = textwrap.dedent(
    """
    import sys, types
    from data_contracts.gx_import import DEFERRED_MODULES, import_gx

    assert not any(name in sys.modules for name in DEFERRED_MODULES), "imported before GX"
    import_gx()
    import great_expectations.expectations as gxe
    assert gxe.ExpectColumnValuesToBeBetween
    # GX imported without loading them: stand-ins, no submodule of theirs loaded
    assert all(type(sys.modules[name]).__name__ == "_Deferred" for name in DEFERRED_MODULES)
    assert "scipy.stats._stats_py" not in sys.modules and "altair.vegalite" not in sys.modules

    # GX's own references work, and load the real module on first use
    from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl
    assert kl.stats.entropy([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert type(sys.modules["scipy.stats"]) is types.ModuleType
    assert "scipy.stats._stats_py" in sys.modules

    # later imports by other code get the real module, in every spelling
    import scipy.stats as st
    from scipy.stats import norm
    from scipy.stats.distributions import uniform
    assert st.norm.cdf(0) == norm.cdf(0) == 0.5 and uniform.cdf(1) == 1.0
    assert kl.alt.Chart.__module__.startswith("altair.")
    import altair
    assert altair.Chart is kl.alt.Chart and type(sys.modules["altair"]) is types.ModuleType
    import_gx()  # once: a second call changes nothing
    assert type(sys.modules["scipy.stats"]) is types.ModuleType
    print("ok")
    """
)


def test_gx_imports_without_scipy_stats_and_altair_which_load_on_first_use() -> None:
    # a fresh interpreter: this one may have imported them already
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=False, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_short_gil_slices_lowers_the_switch_interval_until_the_last_overlapping_block_ends() -> None:
    import threading

    from data_contracts.gx_import import GIL_SLICE_S, short_gil_slices

    before = sys.getswitchinterval()
    entered, release = threading.Event(), threading.Event()

    def import_like() -> None:  # like the GX import thread: enters first, ends after the main block
        with short_gil_slices():
            entered.set()
            release.wait(timeout=30)

    worker = threading.Thread(target=import_like)
    worker.start()
    try:
        assert entered.wait(timeout=30)
        assert sys.getswitchinterval() == GIL_SLICE_S
        with short_gil_slices():  # the checks, overlapping the import
            with short_gil_slices():  # nested
                assert sys.getswitchinterval() == GIL_SLICE_S
            assert sys.getswitchinterval() == GIL_SLICE_S
        assert sys.getswitchinterval() == GIL_SLICE_S  # the import thread still runs
    finally:
        release.set()
        worker.join(timeout=30)
    assert sys.getswitchinterval() == before


def test_short_gil_slices_restores_the_interval_after_an_error() -> None:
    from data_contracts.gx_import import short_gil_slices

    before = sys.getswitchinterval()
    try:
        with short_gil_slices(0.001):
            assert sys.getswitchinterval() == 0.001
            raise RuntimeError("a check failed")
    except RuntimeError:
        pass
    assert sys.getswitchinterval() == before
