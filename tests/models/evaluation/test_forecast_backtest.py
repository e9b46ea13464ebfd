"""Rolling-origin backtest: windows, baselines, and no peeking past the cutoff."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.demand import DemandSettings, ModelSettings
from models.evaluation.forecast_backtest import BacktestConfig, baselines, cross_validate, cutoffs
from tests.features.test_panel import PRODUCTS, STORES, _sales
from tests.worlds.weekly import START, weekly_chain

D0 = date(2024, 3, 1)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (BacktestConfig(n_windows=3, h=28, step_size=28), [100 - 84, 100 - 56, 100 - 28]),
        (BacktestConfig(n_windows=2, h=7, step_size=14), [100 - 21, 100 - 7]),
    ],
)
def test_cutoffs_end_on_last_date(config: BacktestConfig, expected: list[int]) -> None:
    last = D0 + timedelta(days=100)
    assert cutoffs(last, config) == [D0 + timedelta(days=d) for d in expected]


def test_baselines_hand_values() -> None:
    # 14 days of sales for one pair: the last week's Monday sold 7, other days 1; day 12 a stockout
    rows = [(i, "A", "X", 7.0 if i == 10 else 1.0, None) for i in range(14) if i != 12] + [
        (12, "A", "X", 0.0, 0.0)
    ]
    tables = replace(
        weekly_chain(n_stores=1, n_skus=1, days=1),
        store_sales=_sales(rows),
        stores=STORES,
        products=PRODUCTS,
    )
    cutoff = D0 + timedelta(days=13)
    got = baselines(tables, pl.DataFrame({"store_id": ["A"], "sku": ["X"]}), cutoff=cutoff, h=8)
    ma = (7.0 + 12 * 1.0) / 13  # 13 uncensored days (the pair began 14 days back)
    expected = pl.DataFrame(
        {
            "store_id": ["A"] * 8,
            "sku": ["X"] * 8,
            "date": [cutoff + timedelta(days=i) for i in range(1, 9)],
            # same weekday last week; the stockout weekday falls back to the moving average
            "seasonal_naive": [1.0, 1.0, 1.0, 7.0, 1.0, ma, 1.0, 1.0],
            "moving_average": [ma] * 8,
        }
    )
    assert_frame_equal(got, expected)


def _settings() -> DemandSettings:
    model = ModelSettings(lags=(14,), windows=(7, 14), num_leaves=7, min_data_in_leaf=10, num_boost_round=60)
    return DemandSettings(num_threads=1, seed=1, model=model)


def test_cross_validate_uses_only_data_up_to_each_cutoff() -> None:
    world = weekly_chain(n_stores=3, n_skus=3, days=120, seed=5)
    config = BacktestConfig(n_windows=2, h=14, step_size=14)
    cv = cross_validate(world, config=config, settings=_settings())
    assert cv.columns == [
        "cutoff",
        "store_id",
        "sku",
        "date",
        "y",
        "lightgbm",
        "seasonal_naive",
        "moving_average",
        "p10",
        "p90",
    ]
    assert (cv["p10"] <= cv["p90"]).all() and (cv["p90"] > 0).any()
    first = START + timedelta(days=119 - 28)
    assert cv.get_column("cutoff").unique().sort().to_list() == [first, first + timedelta(days=14)]
    assert cv.height == 2 * 9 * 14
    assert cv.null_count().sum_horizontal().item() == 0
    # blow up everything after the first cutoff: fold 1's forecasts must not move (its y does)
    noisy = replace(
        world,
        store_sales=world.store_sales.with_columns(
            pl.when(pl.col("date") > first).then(pl.col("units") * 9 + 3).otherwise("units").alias("units")
        ),
        online_orders=world.online_orders.with_columns(
            pl.when(pl.col("order_date") > first).then(pl.col("units") * 9).otherwise("units").alias("units")
        ),
    )
    cv2 = cross_validate(noisy, config=config, settings=_settings())
    fold = pl.col("cutoff") == first
    models = ["store_id", "sku", "date", "lightgbm", "seasonal_naive", "moving_average"]
    assert_frame_equal(cv.filter(fold).select(models), cv2.filter(fold).select(models))
    assert not cv.filter(fold)["y"].equals(cv2.filter(fold)["y"])
