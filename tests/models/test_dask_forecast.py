"""The demand forecast one feature chunk per Dask worker: forecast_demand's rows."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.dask_forecast import forecast_demand_dask
from models.demand import DemandSettings, ModelSettings, fit_demand_model, forecast_demand
from tests.worlds.weekly import START, weekly_chain

AS_OF = START + timedelta(days=239)


def test_chunks_on_workers_give_the_forecast_of_one_process() -> None:
    distributed = pytest.importorskip("distributed")
    world = weekly_chain(n_stores=4, n_skus=6, days=240, seed=2, skip=(("S0", "K4"),), stockout_share=0.03)
    model_settings = ModelSettings(
        lags=(7, 14, 28), recent_days=2, windows=(7, 28), dow_weeks=(4,), horizon_blocks=(7, 14),
        num_leaves=7, min_data_in_leaf=20, num_boost_round=30, categorical=("region", "category"),
    )  # fmt: skip
    settings = DemandSettings(horizon=14, num_threads=1, seed=3, model=model_settings)
    model = fit_demand_model(world, as_of=AS_OF, settings=settings)
    pairs = pl.DataFrame({"store_id": ["S0", "S0", "S2", "S3", "S1"], "sku": ["K0", "K4", "K5", "K1", "K2"]})
    want = forecast_demand(model, world, pairs, horizon=14, chunk_rows=100)  # one SKU a chunk
    assert want.height == 5 * 14
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        got = forecast_demand_dask(model, world, pairs, horizon=14, client=client, chunk_rows=100)
    assert_frame_equal(got, want)
    alone = forecast_demand_dask(model, world, pairs, horizon=14, client=None, chunk_rows=100)
    assert_frame_equal(alone, want)
