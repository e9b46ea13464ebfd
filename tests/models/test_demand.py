"""The LightGBM demand model on a small seeded synthetic world with a planted weekly pattern."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.tables import LakeTables
from features.panel import FeatureSpec
from models.demand import (
    DemandModel,
    DemandSettings,
    ModelSettings,
    feature_spec,
    fit_demand_model,
    forecast_demand,
    nb_dispersion,
    nb_interval,
    training_rows,
)
from tests.features.synthetic import START, WEEKLY, synthetic_tables

AS_OF = START + timedelta(days=239)
HORIZON = 28
COLD = ("S2", "K5")  # never sold: the cold-start pair


def _settings() -> DemandSettings:
    model = ModelSettings(
        lags=(28, 35), windows=(7, 28), num_leaves=15, min_data_in_leaf=20, num_boost_round=300
    )
    return DemandSettings(horizon=HORIZON, num_threads=1, seed=7, model=model)


@pytest.fixture(scope="module")
def world() -> LakeTables:
    # stockouts and a cold pair; 270 days so the 28 days after AS_OF are held out
    return synthetic_tables(days=270, seed=3, skip=(COLD,), stockout_share=0.04)


@pytest.fixture(scope="module")
def model(world: LakeTables) -> DemandModel:
    return fit_demand_model(world, as_of=AS_OF, settings=_settings())


def test_training_rows_exclude_future_and_censored(world: LakeTables) -> None:
    spec = feature_spec(_settings(), world.events)
    rows = training_rows(world, spec, as_of=AS_OF)
    assert rows.get_column("date").max() == AS_OF
    assert not rows.get_column("censored").any()
    assert rows.get_column("units").null_count() == 0
    stockouts = world.store_sales.filter(pl.col("on_hand") == 0, pl.col("date") <= AS_OF).collect()
    assert stockouts.height > 0
    assert rows.join(stockouts, on=["store_id", "sku", "date"], how="semi").height == 0


def test_training_rows_ignore_data_after_as_of(world: LakeTables) -> None:
    spec = feature_spec(_settings(), world.events)
    noisy = replace(
        world,
        store_sales=world.store_sales.with_columns(
            pl.when(pl.col("date") > AS_OF)
            .then(pl.col("units") * 50)
            .otherwise(pl.col("units"))
            .alias("units")
        ),
    )
    assert_frame_equal(training_rows(world, spec, as_of=AS_OF), training_rows(noisy, spec, as_of=AS_OF))


def _actuals(world: LakeTables) -> pl.DataFrame:
    return world.store_sales.filter(pl.col("date") > AS_OF, pl.col("on_hand") > 0).collect()


def test_beats_moving_average_on_held_out_days(world: LakeTables, model: DemandModel) -> None:
    pairs = world.assortment
    fc = forecast_demand(model, world, pairs, horizon=HORIZON)
    ma = (
        world.store_sales.filter(pl.col("date") > AS_OF - timedelta(days=28), pl.col("date") <= AS_OF)
        .group_by("store_id", "sku")
        .agg((pl.col("units").sum() / 28).alias("ma"))
        .collect()
    )
    days = pl.DataFrame(
        {"date": pl.date_range(AS_OF + timedelta(days=1), AS_OF + timedelta(days=HORIZON), eager=True)}
    )
    grid = pairs.join(days, how="cross").join(_actuals(world), on=["store_id", "sku", "date"], how="left")
    scored = (
        grid.with_columns(pl.col("units").fill_null(0.0).alias("y"))
        .drop("units")
        .join(fc, on=["store_id", "sku", "date"])
        .join(ma, on=["store_id", "sku"])
    )
    mae_model = (scored["units"] - scored["y"]).abs().mean()
    mae_ma = (scored["ma"] - scored["y"]).abs().mean()
    # the weekly profile swings 0.7x-1.6x: a flat average cannot follow it
    assert mae_model < 0.93 * mae_ma, (mae_model, mae_ma)


def test_forecast_covers_every_pair_and_day(world: LakeTables, model: DemandModel) -> None:
    pairs = pl.DataFrame({"store_id": ["S0", "S1", COLD[0], "S0"], "sku": ["K0", "K7", COLD[1], "K0"]})
    fc = forecast_demand(model, world, pairs, horizon=14)
    assert fc.height == 3 * 14
    assert fc.columns == ["store_id", "sku", "date", "units", "p10", "p90"]
    assert fc.select(pl.col("date").min().alias("lo"), pl.col("date").max().alias("hi")).row(0) == (
        AS_OF + timedelta(days=1),
        AS_OF + timedelta(days=14),
    )
    assert fc.null_count().sum_horizontal().item() == 0
    assert (fc["units"] >= 0).all()
    assert ((fc["p10"] <= fc["units"]) & (fc["units"] <= fc["p90"])).all()


def test_cold_start_forecast_close_to_similar_stores(world: LakeTables, model: DemandModel) -> None:
    fc = forecast_demand(
        model, world, pl.DataFrame({"store_id": [COLD[0]], "sku": [COLD[1]]}), horizon=HORIZON
    )
    # the world's truth for S2 x K5: store scale x SKU level x mean weekday profile
    truth = np.linspace(0.6, 1.6, 6)[2] * np.linspace(0.5, 6.0, 8)[5] * WEEKLY.mean()
    got = fc["units"].mean()
    assert 0.6 * truth < got < 1.4 * truth, (got, truth)


def test_save_load_round_trip(tmp_path: Path, world: LakeTables, model: DemandModel) -> None:
    model.save(tmp_path / "m")
    loaded = DemandModel.load(tmp_path / "m")
    assert (
        loaded.spec == model.spec
        and loaded.as_of == model.as_of
        and loaded.feature_names == model.feature_names
    )
    pairs = pl.DataFrame({"store_id": ["S1"], "sku": ["K3"]})
    assert_frame_equal(
        forecast_demand(loaded, world, pairs, horizon=7), forecast_demand(model, world, pairs, horizon=7)
    )


def test_forecast_refuses_horizon_beyond_shortest_lag(world: LakeTables, model: DemandModel) -> None:
    with pytest.raises(ValueError, match="horizon"):
        forecast_demand(model, world, world.assortment, horizon=HORIZON + 1)


def test_fit_is_deterministic(world: LakeTables, model: DemandModel) -> None:
    again = fit_demand_model(world, as_of=AS_OF, settings=_settings())

    def quality(metrics: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in metrics.items() if not k.endswith("_s")}  # timings vary

    assert quality(again.metrics) == quality(model.metrics)


def test_model_metrics_reported(model: DemandModel) -> None:
    assert {"valid_wape", "valid_mae", "best_iteration", "dispersion"} <= model.metrics.keys()
    assert model.spec == FeatureSpec(
        lags=(28, 35), windows=(7, 28), horizon=28, event_lead_days=7, stale_days=28
    )


@pytest.mark.parametrize(
    ("mu", "dispersion", "lo", "hi"),
    [
        (np.array([0.0]), 0.0, [0.0], [0.0]),
        (np.array([10.0]), 0.0, [6.0], [14.0]),  # Poisson(10) deciles
        (np.array([0.05]), 0.0, [0.0], [0.05]),  # both deciles 0: widened to hold the mean
        (np.array([10.0]), 0.5, [2.0], [20.0]),  # overdispersed: wider than Poisson
    ],
)
def test_nb_interval(mu: np.ndarray, dispersion: float, lo: list[float], hi: list[float]) -> None:
    got_lo, got_hi = nb_interval(mu, dispersion)
    assert got_lo.tolist() == lo and got_hi.tolist() == hi


def test_nb_dispersion_recovers_overdispersion() -> None:
    rng = np.random.default_rng(0)
    mu = np.full(20_000, 4.0)
    y = rng.negative_binomial(n=2.0, p=2.0 / (2.0 + mu))  # a = 1/n = 0.5
    assert abs(nb_dispersion(y.astype(float), mu) - 0.5) < 0.05
    assert nb_dispersion(rng.poisson(mu).astype(float), mu) < 0.02
