"""The LightGBM demand model on a small seeded synthetic world with a planted weekly pattern."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.schemas import CONTRACTS
from data_contracts.tables import LakeTables
from features.panel import demand_features
from models.demand import (
    DemandModel,
    DemandSettings,
    ModelSettings,
    block_floors,
    feature_spec,
    fit_demand_model,
    forecast_demand,
    training_rows,
)
from tests.worlds.weekly import START, WEEKLY, weekly_chain

AS_OF = START + timedelta(days=239)
HORIZON = 28
COLD = ("S2", "K5")  # never sold: the cold-start pair


def _settings(**model: object) -> DemandSettings:
    small = {
        "lags": (7, 14, 28),
        "recent_days": 2,
        "windows": (7, 28),
        "dow_weeks": (4,),
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "learning_rate": 0.15,
        "num_boost_round": 60,
        "early_stopping_rounds": 10,
    }
    return DemandSettings(horizon=HORIZON, num_threads=1, seed=7, model=ModelSettings(**(small | model)))


@pytest.fixture(scope="module")
def world() -> LakeTables:
    # stockouts and a cold pair; 270 days so the 28 days after AS_OF are held out
    return weekly_chain(days=270, seed=3, skip=(COLD,), stockout_share=0.04)


@pytest.fixture(scope="module")
def model(world: LakeTables) -> DemandModel:
    return fit_demand_model(world, as_of=AS_OF, settings=_settings())


def _history(world: LakeTables) -> LakeTables:
    """The world as the lake holds it on AS_OF (no later facts)."""
    return replace(world, store_sales=world.store_sales.filter(pl.col("date") <= AS_OF))


def test_training_rows_exclude_future_and_censored(world: LakeTables) -> None:
    spec = feature_spec(_settings(), world.events)
    rows = training_rows(world, spec, as_of=AS_OF)
    assert rows.get_column("date").max() == AS_OF
    assert not rows.get_column("censored").any()
    assert rows.get_column("units").null_count() == 0
    stockouts = world.store_sales.filter(pl.col("on_hand") == 0, pl.col("date") <= AS_OF).collect()
    assert stockouts.height > 0
    assert rows.join(stockouts, on=["store_id", "sku", "date"], how="semi").height == 0


def _noisy_after(world: LakeTables) -> LakeTables:
    """The world with every fact after AS_OF blown up."""
    return replace(
        world,
        store_sales=world.store_sales.with_columns(
            pl.when(pl.col("date") > AS_OF).then(pl.col("units") * 50 + 3).otherwise("units").alias("units")
        ),
        online_orders=world.online_orders.with_columns(
            pl.when(pl.col("order_date") > AS_OF).then(pl.col("units") * 50).otherwise("units").alias("units")
        ),
    )


def test_training_rows_ignore_data_after_as_of(world: LakeTables) -> None:
    spec = feature_spec(_settings(), world.events)
    assert_frame_equal(
        training_rows(world, spec, as_of=AS_OF), training_rows(_noisy_after(world), spec, as_of=AS_OF)
    )


@pytest.mark.parametrize("floor", [7, 28])
def test_forecast_features_ignore_data_after_the_origin(world: LakeTables, floor: int) -> None:
    spec = feature_spec(_settings(), world.events, floor=floor, categorical=("store_id", "sku", "region"))
    pairs = world.assortment

    def future(tables: LakeTables) -> pl.DataFrame:
        lf = demand_features(tables, spec, as_of=AS_OF, pairs=pairs)
        return lf.filter(pl.col("is_future")).sort("store_id", "sku", "date").collect()

    clean, noisy = future(world), future(_noisy_after(world))
    assert clean.height == pairs.height * floor
    assert_frame_equal(clean, noisy)


def test_forecast_ignores_data_after_the_origin(world: LakeTables, model: DemandModel) -> None:
    pairs = pl.DataFrame({"store_id": ["S1", "S4"], "sku": ["K3", "K6"]})
    assert_frame_equal(
        forecast_demand(model, world, pairs, horizon=HORIZON),
        forecast_demand(model, _noisy_after(world), pairs, horizon=HORIZON),
    )


@pytest.mark.parametrize(
    ("horizon", "blocks", "expected"),
    [
        (28, (7, 14, 21, 28), [7, 14, 21, 28]),
        (10, (7, 14, 21, 28), [7, 10]),
        (3, (7, 14), [3]),
        (35, (7, 28), [7, 28, 35]),
    ],
)
def test_block_floors_cover_the_horizon(horizon: int, blocks: tuple[int, ...], expected: list[int]) -> None:
    assert block_floors(horizon, blocks) == expected


def test_each_block_only_sees_history_before_its_days(model: DemandModel) -> None:
    assert [(b.first_day, b.last_day) for b in model.blocks] == [(1, 7), (8, 28)]
    for block in model.blocks:
        assert min(block.spec.lags) == block.last_day
        assert block.spec.horizon == block.last_day  # windows and rates end that many days back


def _actuals(world: LakeTables) -> pl.DataFrame:
    return world.store_sales.filter(pl.col("date") > AS_OF, pl.col("on_hand") > 0).collect()


def test_one_early_stopping_pass_sets_every_blocks_rounds_and_width(model: DemandModel) -> None:
    # the default: block 1 alone is early-stopped; every block is then trained on all days with its
    # rounds and takes its interval width (calibrated on all 28 held-out days of block 1's model)
    rounds = int(model.metrics["best_iteration_block1"])
    assert 1 <= rounds < _settings().model.num_boost_round
    assert [b.booster.num_trees() for b in model.blocks] == [rounds] * len(model.blocks)
    assert {b.dispersion for b in model.blocks} == {model.metrics["dispersion_block1"]}
    assert 0.75 <= model.metrics["interval_coverage_valid"] <= 0.95


@pytest.fixture(scope="module")
def each_model(world: LakeTables) -> DemandModel:
    """Every block with its own early-stopping pass and width (early_stopping="each")."""
    return fit_demand_model(world, as_of=AS_OF, settings=_settings(early_stopping="each"))


def test_each_block_can_stop_on_its_own(each_model: DemandModel) -> None:
    for k, block in enumerate(each_model.blocks, start=1):
        assert block.booster.num_trees() == each_model.metrics[f"best_iteration_block{k}"]
        assert block.dispersion == each_model.metrics[f"dispersion_block{k}"]


@pytest.mark.parametrize("mode", ["shared", "each"])
def test_beats_moving_average_on_held_out_days(
    world: LakeTables, model: DemandModel, each_model: DemandModel, mode: str
) -> None:
    model = model if mode == "shared" else each_model
    pairs = world.assortment
    fc = forecast_demand(model, _history(world), pairs, horizon=HORIZON)
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
    inside = ((scored["y"] >= scored["p10"]) & (scored["y"] <= scored["p90"])).mean()
    assert 0.7 <= inside <= 0.95, inside  # calibrated on the held-out days before AS_OF


def test_forecast_covers_every_pair_and_day(world: LakeTables, model: DemandModel) -> None:
    pairs = pl.DataFrame({"store_id": ["S0", "S1", COLD[0], "S0"], "sku": ["K0", "K7", COLD[1], "K0"]})
    fc = forecast_demand(model, world, pairs, horizon=14)
    assert fc.height == 3 * 14
    assert fc.columns == ["store_id", "sku", "date", "units", "p10", "p90", "units_no_event"]
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


def test_planted_stockout_does_not_lower_the_forecast() -> None:
    world = weekly_chain(n_stores=4, n_skus=4, days=200, seed=11)
    as_of = START + timedelta(days=199)
    pair = ("S3", "K3")  # the fastest seller
    # its last 10 days: an empty shelf (no sale, on_hand 0), not a collapse in demand
    out = (
        (pl.col("store_id") == pair[0])
        & (pl.col("sku") == pair[1])
        & (pl.col("date") > as_of - timedelta(days=10))
    )
    emptied = replace(
        world,
        store_sales=world.store_sales.with_columns(
            pl.when(out).then(0.0).otherwise("units").alias("units"),
            pl.when(out).then(0.0).otherwise("revenue").alias("revenue"),
            pl.when(out).then(0.0).otherwise("on_hand").alias("on_hand"),
        ),
    )
    # the same days as plain zeros (no stock figure): what the model would see without censoring
    zeroed = replace(
        emptied, store_sales=emptied.store_sales.with_columns(pl.lit(None, dtype=pl.Float64).alias("on_hand"))
    )
    settings = _settings(horizon_blocks=(7, 14))
    settings = settings.model_copy(update={"horizon": 14})
    pairs = pl.DataFrame({"store_id": [pair[0]], "sku": [pair[1]]})

    def mean_forecast(tables: LakeTables) -> float:
        model = fit_demand_model(tables, as_of=as_of, settings=settings)
        return float(forecast_demand(model, tables, pairs, horizon=7)["units"].mean())

    clean, stockout, zeros = mean_forecast(world), mean_forecast(emptied), mean_forecast(zeroed)
    assert stockout > 0.85 * clean, (stockout, clean)
    assert zeros < stockout  # the check can fail: zeros taken at face value do pull the forecast down


def test_known_future_holiday_raises_the_forecast() -> None:
    base = weekly_chain(n_stores=4, n_skus=4, days=260, seed=5)
    as_of = START + timedelta(days=244)
    # a holiday every 3 weeks on a Wednesday, triple demand that day; the next one falls in the horizon
    days = [START + timedelta(days=d) for d in range(2, 271, 21)]
    events = pl.DataFrame(
        {
            "event_id": [f"h{i}" for i in range(len(days))],
            "event_type": "holiday",
            "name": "Fair day",
            "region": "ALL",
            "start_date": days,
            "end_date": days,
        },
        schema=CONTRACTS["events"].schema,
    )
    boost = pl.col("date").is_in(days)
    world = replace(
        base,
        events=events,
        store_sales=base.store_sales.with_columns(
            pl.when(boost).then(pl.col("units") * 3).otherwise("units").alias("units"),
            pl.when(boost).then(pl.col("revenue") * 3).otherwise("revenue").alias("revenue"),
        ),
    )
    holiday = next(d for d in days if d > as_of)
    assert (holiday - as_of).days <= 14
    settings = _settings(horizon_blocks=(7, 14)).model_copy(update={"horizon": 14, "event_lead_days": 0})
    model = fit_demand_model(world, as_of=as_of, settings=settings)
    fc = forecast_demand(model, world, world.assortment, horizon=14)
    on = fc.filter(pl.col("date") == holiday)
    week_before = fc.filter(pl.col("date") == holiday - timedelta(days=7))
    assert on["units"].sum() > 1.8 * on["units_no_event"].sum()
    assert on["units"].sum() > 1.8 * week_before["units"].sum()
    # no event elsewhere: the counterfactual is the forecast itself
    other = fc.filter(pl.col("date") != holiday)
    assert np.allclose(other["units"].to_numpy(), other["units_no_event"].to_numpy(), rtol=0.05, atol=0.05)


def test_save_load_round_trip(tmp_path: Path, world: LakeTables, model: DemandModel) -> None:
    model.save(tmp_path / "m")
    loaded = DemandModel.load(tmp_path / "m")
    assert loaded.spec == model.spec and loaded.as_of == model.as_of
    assert loaded.feature_names == model.feature_names and loaded.categories == model.categories
    pairs = pl.DataFrame({"store_id": ["S1"], "sku": ["K3"]})
    assert_frame_equal(
        forecast_demand(loaded, world, pairs, horizon=10), forecast_demand(model, world, pairs, horizon=10)
    )


def test_forecast_refuses_horizon_beyond_the_model(world: LakeTables, model: DemandModel) -> None:
    with pytest.raises(ValueError, match="horizon"):
        forecast_demand(model, world, world.assortment, horizon=HORIZON + 1)


def test_fit_is_deterministic() -> None:
    tiny = weekly_chain(n_stores=3, n_skus=3, days=120, seed=4)
    settings = _settings(horizon_blocks=(7,)).model_copy(update={"horizon": 14})
    as_of = START + timedelta(days=119)
    first, again = (fit_demand_model(tiny, as_of=as_of, settings=settings) for _ in range(2))

    def quality(metrics: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in metrics.items() if not k.endswith("_s")}  # timings vary

    assert quality(again.metrics) == quality(first.metrics)
    pairs = tiny.assortment
    assert_frame_equal(
        forecast_demand(first, tiny, pairs, horizon=14), forecast_demand(again, tiny, pairs, horizon=14)
    )


def test_shared_rounds_without_refit_train_on_the_days_before_the_held_out_ones() -> None:
    tiny = weekly_chain(n_stores=3, n_skus=3, days=150, seed=4)
    as_of = START + timedelta(days=149)

    def fit(refit: str) -> DemandModel:
        settings = _settings(horizon_blocks=(7,), refit=refit, bagging_fraction=1.0)
        return fit_demand_model(tiny, as_of=as_of, settings=settings.model_copy(update={"horizon": 14}))

    def rows_seen(model: DemandModel, k: int) -> int:  # at block k's first root (no bagging: every row)
        return int(model.blocks[k].booster.dump_model()["tree_info"][0]["tree_structure"]["internal_count"])

    kept, refit = fit("none"), fit("full")
    rounds = kept.metrics["best_iteration_block1"]
    # block 1 keeps its early-stopped booster; block 2 gets its rounds, on the same days (before the held-out)
    assert kept.blocks[0].booster.best_iteration == rounds and kept.blocks[1].booster.num_trees() == rounds
    assert rows_seen(kept, 1) == rows_seen(kept, 0)
    assert rows_seen(refit, 1) > rows_seen(kept, 1)  # the refit sees the held-out days too
    fc = forecast_demand(kept, tiny, tiny.assortment, horizon=14)
    assert fc.height == tiny.assortment.height * 14 and fc.null_count().sum_horizontal().item() == 0


def test_model_metrics_and_categoricals(model: DemandModel) -> None:
    assert {
        "valid_wape",
        "valid_mae",
        "best_iteration",
        "dispersion",
        "interval_coverage_valid",
    } <= model.metrics.keys()
    assert 0.75 <= model.metrics["interval_coverage_valid"] <= 0.95
    assert list(model.categories) == ["store_id", "sku", "region", "category"]  # no subcategory/brand/format
    assert model.spec.categorical == ("store_id", "sku", "region", "category")
    assert model.spec.lags == (28, 29) and model.blocks[0].spec.lags == (7, 8, 14, 28)
