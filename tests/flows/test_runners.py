"""Task runners: local (the flow's own process) and Dask (prefect-dask), with the same answers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.runners import Runner, RunnerChoice, fan_out, with_runner


def test_local_keeps_the_flows_own_runner() -> None:
    from flows.pipeline import localshelf_run

    assert RunnerChoice().task_runner() is None
    assert with_runner(localshelf_run, RunnerChoice()) is localshelf_run


def test_dask_runs_on_a_given_scheduler_or_a_local_cluster() -> None:
    from prefect_dask import DaskTaskRunner

    remote = RunnerChoice(Runner.dask, address="tcp://scheduler:8786").task_runner()
    assert isinstance(remote, DaskTaskRunner)
    assert remote.address == "tcp://scheduler:8786"
    local = RunnerChoice(Runner.dask, workers=3, threads=2, memory_gb=4).task_runner()
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs == {"n_workers": 3, "threads_per_worker": 2, "memory_limit": "4GiB"}


def test_fan_out_outside_dask_runs_the_stages_in_turn() -> None:
    calls: list[str] = []

    def stage(name: str, fn, *args):  # noqa: ANN001, ANN202 - a StageTimer stand-in
        calls.append(name)
        return fn(*args)

    got = fan_out(stage, ("a", lambda x: x + 1, (1,)), ("b", lambda x, y: x * y, (2, 3)))
    assert got == [2, 6]
    assert calls == ["a", "b"]


def _run(root: Path, drop: Path, choice: RunnerChoice) -> Path:
    from flows.pipeline import localshelf_run

    with_runner(localshelf_run, choice)(drop=drop, out=root / "out", lake=root / "lake")
    return root / "out"


@pytest.fixture(scope="module")
def patient_harness() -> Iterator[None]:
    """A temporary Prefect server that may take long to start on a busy machine (Dask workers are
    processes of their own: they report to it too)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=600):
        yield


def _in_order(path: Path) -> pl.DataFrame:
    df = pl.read_parquet(path)
    exact = [c for c, t in df.schema.items() if not t.is_float()]
    return df.sort([*exact, *(c for c in df.columns if c not in exact)], nulls_last=True)


@pytest.mark.slow
def test_the_small_demo_on_a_dask_local_cluster_gives_the_local_answers(
    tmp_path: Path, patient_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.demo.generate import generate_demo

    paths = generate_demo(tmp_path / "demo", size="small", seed=7)
    monkeypatch.setenv("LOCALSHELF_HMAC_SECRET", paths.secret.read_text().strip())
    monkeypatch.setenv("LOCALSHELF_NUM_THREADS", "1")
    # a light model: this test is about where tasks run, not about forecast quality
    for name, value in {"NUM_BOOST_ROUND": "40", "HORIZON_BLOCKS": "[28]", "REFIT": "none"}.items():
        monkeypatch.setenv(f"LOCALSHELF_MODEL__{name}", value)
    local = _run(tmp_path / "local", paths.drop, RunnerChoice())
    dask = _run(tmp_path / "dask", paths.drop, RunnerChoice(Runner.dask, workers=2, threads=1))
    # the same answers: rows compared in one order (ties among equally strong rows may come out in either
    # order, and sums gathered in another order differ in the last bits)
    for name in ("assortment.parquet", "prestock.parquet", "patterns.parquet", "forecast.parquet"):
        assert_frame_equal(_in_order(dask / name), _in_order(local / name), check_exact=False)
    assert pl.read_parquet(local / "assortment.parquet").height > 0


class _FakeServer:
    started = 0
    api_url = "http://127.0.0.1:4321/api"

    def start(self) -> None:
        _FakeServer.started += 1


def test_a_local_cluster_shares_the_flows_temporary_server_with_its_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import prefect.server.api.server as server
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.runners import share_temporary_server

    monkeypatch.setattr(server, "SubprocessASGIServer", _FakeServer)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(updates={PREFECT_API_URL: "http://prefect:4200/api"}):
        share_temporary_server()  # a server is configured: the workers use it as well
    assert _FakeServer.started == 0 and "PREFECT_API_URL" not in os.environ
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        share_temporary_server()
    assert _FakeServer.started == 1
    assert os.environ["PREFECT_API_URL"] == _FakeServer.api_url  # what the workers inherit
