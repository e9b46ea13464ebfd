"""A stage's independent pieces on a Dask cluster (flows/fanout.py): the answers of the local run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.tables import LakeTables
from flows import fanout
from models.demand import DemandSettings, ModelSettings
from models.evaluation.advice_backtest import assortment_backtest
from models.evaluation.forecast_backtest import BacktestConfig, cross_validate
from models.mining.patterns import mine_patterns
from models.mining.settings import MiningSettings
from models.training_set import ScaleSettings
from tests.worlds.planted import AS_OF, planted_chain
from tests.worlds.weekly import START, weekly_chain

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two workers of one thread each, as on the shared machine."""
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _on_worker(client: Any, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """``fn(**kwargs)`` run as a task on the cluster, the way a Prefect task runs on DaskTaskRunner."""
    return client.submit(fn, **kwargs, pure=False).result(timeout=600)


def test_outside_dask_there_is_no_client() -> None:
    with fanout.dask_client() as client:
        assert client is None


def _pieces_inside(n: int) -> list[int]:
    """A task that waits for pieces of its own (as train and mine do side by side)."""
    with fanout.dask_client() as client:
        assert client is not None
        return client.gather([client.submit(lambda k: k * k, k, pure=False) for k in range(n)])


def test_two_tasks_waiting_for_their_pieces_do_not_block_two_single_thread_workers(client: Any) -> None:
    # without seceding, each task would hold its worker's only thread while its pieces wait for one
    outer = [client.submit(_pieces_inside, n, pure=False) for n in (3, 4)]
    assert [f.result(timeout=120) for f in outer] == [[0, 1, 4], [0, 1, 4, 9]]


def test_mining_in_parts_on_the_cluster_gives_the_local_patterns(client: Any) -> None:
    world, settings = planted_chain(plant=True), MiningSettings()
    got = _on_worker(client, fanout.mine_patterns, tables=world, as_of=AS_OF, settings=settings)
    want = mine_patterns(world, as_of=AS_OF, settings=settings)
    assert want.height > 0
    assert_frame_equal(got, want)
    assert_frame_equal(fanout.mine_patterns(world, as_of=AS_OF, settings=settings), want)  # locally


def _demand_settings(**scale: float) -> DemandSettings:
    model = ModelSettings(lags=(14,), windows=(7, 14), num_leaves=7, min_data_in_leaf=10, num_boost_round=40)
    return DemandSettings(horizon=14, num_threads=1, seed=1, model=model, scale=ScaleSettings(**scale))


def test_forecast_backtest_one_window_per_worker_gives_the_whole_backtest(client: Any) -> None:
    world = weekly_chain(n_stores=3, n_skus=3, days=120, seed=5)
    config, settings = BacktestConfig(n_windows=3, h=14, step_size=14), _demand_settings()
    got = _on_worker(client, fanout.cross_validate, tables=world, config=config, settings=settings)
    want = cross_validate(world, config=config, settings=settings)
    assert want.get_column("cutoff").n_unique() == 3
    assert_frame_equal(got, want)


def _keep_today(known: LakeTables, cutoff: date) -> pl.DataFrame:
    """An advice that keeps every shelf as it was at the cutoff."""
    return known.assortment.select("store_id", "sku").with_columns(action=pl.lit("keep"))


def test_assortment_backtest_one_cutoff_per_worker_gives_the_whole_backtest(client: Any) -> None:
    world = weekly_chain(n_stores=3, n_skus=4, days=200, seed=2)
    cutoffs = [START + timedelta(days=d) for d in (120, 150, 180)]
    kwargs = {"cutoffs": cutoffs, "horizon": 14, "advise": _keep_today}
    got = _on_worker(client, fanout.assortment_backtest, tables=world, **kwargs)
    want = assortment_backtest(world, **kwargs)  # type: ignore[arg-type]
    assert want.get_column("cutoff").n_unique() == 3
    assert_frame_equal(got, want)


def test_training_takes_lightgbm_dask_only_over_the_memory_budget(client: Any) -> None:
    world = weekly_chain(n_stores=3, n_skus=4, days=200, seed=2)
    as_of = START + timedelta(days=199)
    roomy = _on_worker(client, fanout.train_demand, tables=world, as_of=as_of, settings=_demand_settings())
    assert "dask_workers" not in roomy.metrics  # fits the budget: the local booster
    tight = _demand_settings(memory_gb=0.0005)
    small = _on_worker(client, fanout.train_demand, tables=world, as_of=as_of, settings=tight)
    assert small.metrics["dask_workers"] == 2
    assert small.metrics["train_rows"] == roomy.metrics["train_rows"]
