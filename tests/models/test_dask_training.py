"""The demand model on a Dask cluster (lightgbm.dask) when the training set exceeds the memory budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from data_contracts.tables import LakeTables
from models.dask_training import best_round, fit_demand, over_budget
from models.demand import DemandModel, DemandSettings, ModelSettings, forecast_demand
from models.training_set import ScaleSettings
from tests.worlds.weekly import START, weekly_chain

DAYS = 400
AS_OF = START + timedelta(days=DAYS - 1 - 14)  # the last 14 days are held out to score the forecasts
TINY = ScaleSettings(memory_gb=0.001)  # a training set of a few hundred rows: far below what the model wants


def _settings(scale: ScaleSettings = ScaleSettings()) -> DemandSettings:
    model = ModelSettings(
        lags=(7, 14, 28), recent_days=2, windows=(7, 28), dow_weeks=(4,), horizon_blocks=(7,),
        num_leaves=15, min_data_in_leaf=20, num_boost_round=60, categorical=("region", "category"),
    )  # fmt: skip
    return DemandSettings(horizon=14, num_threads=1, seed=5, model=model, scale=scale)


@pytest.fixture(scope="module")
def world() -> LakeTables:
    # 12 stores x 30 SKUs x 400 days: more panel rows than one feature chunk holds (two chunks, two parts)
    return weekly_chain(n_stores=12, n_skus=30, days=DAYS, seed=4, stockout_share=0.03)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_best_round_is_where_lightgbm_early_stopping_stops() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((4000, 4))
    y = rng.poisson(np.exp(2 * x[:, 0] + x[:, 1])).astype(float)
    params = {"objective": "tweedie", "tweedie_variance_power": 1.1, "learning_rate": 0.3, "verbosity": -1}
    train, valid = lgb.Dataset(x[:3000], y[:3000]), lgb.Dataset(x[3000:], y[3000:])
    stopped = lgb.train(
        params, train, 300, valid_sets=[valid], callbacks=[lgb.early_stopping(5, verbose=False)]
    )
    assert stopped.best_iteration < 300  # it did stop early: the comparison means something
    full = lgb.train(params, lgb.Dataset(x[:3000], y[:3000]), 300)
    assert best_round(full, x[3000:], y[3000:], patience=5, params=params) == stopped.best_iteration


def test_the_budget_decides_whether_the_training_set_is_too_big(world: LakeTables) -> None:
    assert not over_budget(world, as_of=AS_OF, settings=_settings())
    assert over_budget(world, as_of=AS_OF, settings=_settings(TINY))


def test_without_a_cluster_the_local_booster_trains(world: LakeTables) -> None:
    model = fit_demand(world, as_of=AS_OF, settings=_settings(TINY), client=None)
    assert "dask_workers" not in model.metrics


def _wape(forecast: pl.DataFrame, world: LakeTables) -> float:
    actual = (
        world.store_sales.filter(pl.col("date") > AS_OF, pl.col("units").is_not_null())
        .select("store_id", "sku", "date", "units")
        .collect()
        .join(
            forecast.select("store_id", "sku", "date", pl.col("units").alias("fc")),
            on=["store_id", "sku", "date"],
        )
    )
    assert actual.height > 1000
    return float((actual["units"] - actual["fc"]).abs().sum() / actual["units"].sum())


def test_over_budget_on_a_cluster_trains_with_lightgbm_dask_and_forecasts_like_the_local_model(
    world: LakeTables, client: object, tmp_path: Path
) -> None:
    local = fit_demand(world, as_of=AS_OF, settings=_settings(), client=client)  # fits the budget: local
    assert "dask_workers" not in local.metrics
    dask = fit_demand(world, as_of=AS_OF, settings=_settings(TINY), client=client)
    assert dask.metrics["dask_workers"] == 2
    # the cluster trained on every known row, not the few hundred the tiny budget allows one machine
    assert dask.metrics["train_rows"] == local.metrics["train_rows"]
    assert abs(dask.metrics["valid_wape"] - local.metrics["valid_wape"]) < 0.03
    # the rest of the pipeline takes it unchanged: saved, loaded, forecast with the same code
    dask.save(tmp_path / "model")
    loaded = DemandModel.load(tmp_path / "model")
    pairs = world.store_sales.select("store_id", "sku").unique().collect()
    got = forecast_demand(loaded, world, pairs, horizon=14)
    want = forecast_demand(local, world, pairs, horizon=14)
    assert got.columns == want.columns and got.height == want.height > 0
    assert got.select(["store_id", "sku", "date"]).equals(want.select(["store_id", "sku", "date"]))
    # close, not bit-identical (data-parallel LightGBM): WAPE against what sold within a few percent
    local_wape, dask_wape = _wape(want, world), _wape(got, world)
    assert abs(dask_wape - local_wape) < 0.03 * local_wape
    assert abs(got["units"].sum() / want["units"].sum() - 1) < 0.03
