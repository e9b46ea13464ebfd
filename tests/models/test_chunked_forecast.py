"""The demand model trained and forecasting through feature chunks: the same forecasts as one chunk."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from polars.testing import assert_frame_equal

from models.demand import DemandSettings, ModelSettings, fit_demand_model, forecast_demand
from tests.worlds.weekly import START, weekly_chain

AS_OF = START + timedelta(days=239)


def test_forecasts_from_many_chunks_equal_those_from_one() -> None:
    world = weekly_chain(n_stores=4, n_skus=6, days=240, seed=2, skip=(("S0", "K4"),), stockout_share=0.03)
    model_settings = ModelSettings(
        lags=(7, 14, 28), recent_days=2, windows=(7, 28), dow_weeks=(4,), horizon_blocks=(7, 14),
        num_leaves=7, min_data_in_leaf=20, num_boost_round=30, categorical=("region", "category"),
    )  # fmt: skip
    settings = DemandSettings(horizon=14, num_threads=1, seed=3, model=model_settings)
    model = fit_demand_model(world, as_of=AS_OF, settings=settings)
    pairs = pl.DataFrame({"store_id": ["S0", "S0", "S2", "S3"], "sku": ["K0", "K4", "K5", "K1"]})
    whole = forecast_demand(model, world, pairs, horizon=14, chunk_rows=10**9)
    chunked = forecast_demand(model, world, pairs, horizon=14, chunk_rows=100)
    assert whole.height == 4 * 14
    assert_frame_equal(chunked, whole, check_exact=False, rel_tol=1e-6)
