"""Forecast metrics on hand-made frames with known values."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.evaluation.metrics import forecast_metrics, naive_scales, point_errors, series_rmsse, wrmsse
from tests.features.test_panel import _sales
from tests.worlds.weekly import weekly_chain

D0 = date(2024, 3, 1)


@pytest.mark.parametrize(
    ("y", "f", "wape", "mae", "bias"),
    [
        ([2.0, 4.0, 4.0], [3.0, 3.0, 4.0], 0.2, 2 / 3, 0.0),
        ([1.0, 1.0], [2.0, 2.0], 1.0, 1.0, 1.0),
        ([0.0, 0.0], [1.0, 0.0], None, 0.5, None),  # no demand: relative errors undefined
    ],
)
def test_point_errors(
    y: list[float], f: list[float], wape: float | None, mae: float, bias: float | None
) -> None:
    got = point_errors(pl.DataFrame({"y": y, "m": f}), "m")
    assert got == pytest.approx({"wape": wape, "mae": mae, "bias": bias})


def test_naive_scale_and_rmsse() -> None:
    days = [D0 + timedelta(days=i) for i in (0, 1, 2, 3, 0, 1, 2)]
    history = pl.DataFrame(
        {"k": ["a"] * 4 + ["b"] * 3, "date": days, "y": [1.0, 3.0, 3.0, 7.0, 2.0, 2.0, 2.0]}
    )
    scales = naive_scales(history, ["k"]).sort("k")
    # a: diffs 2, 0, 4 -> mean square 20/3; b: flat
    assert_frame_equal(scales, pl.DataFrame({"k": ["a", "b"], "scale": [20 / 3, 0.0]}))
    fold = pl.DataFrame({"k": ["a", "a", "b"], "y": [4.0, 6.0, 2.0], "m": [6.0, 6.0, 3.0]})
    got = series_rmsse(fold, scales, ["k"], "m").sort("k")
    expected = pl.DataFrame({"k": ["a", "b"], "rmsse": [math.sqrt(2.0 / (20 / 3)), None]})
    assert_frame_equal(got, expected)


def test_wrmsse_weights_by_revenue() -> None:
    r = pl.DataFrame({"store_id": ["A", "A", "B"], "sku": ["X", "Y", "X"], "rmsse": [1.0, 3.0, None]})
    w = pl.DataFrame({"store_id": ["A", "A", "B"], "sku": ["X", "Y", "X"], "weight": [0.25, 0.25, 0.5]})
    assert wrmsse(r, w) == pytest.approx(2.0)  # B's series has no RMSSE: weights renormalised over A's


def test_forecast_metrics_total_level_known_values() -> None:
    # one pair, history 0..3 = 1, 3, 3, 7 (naive MSE 20/3), two held-out days
    rows = [(i, "S0", "K0", u, None) for i, u in enumerate([1.0, 3.0, 3.0, 7.0])]
    tables = replace(weekly_chain(n_stores=1, n_skus=1, days=1), store_sales=_sales(rows))
    cutoff = D0 + timedelta(days=3)
    cv = pl.DataFrame(
        {
            "cutoff": [cutoff] * 2,
            "store_id": ["S0"] * 2,
            "sku": ["K0"] * 2,
            "date": [cutoff + timedelta(days=1), cutoff + timedelta(days=2)],
            "y": [4.0, 6.0],
            "good": [4.0, 6.0],
            "flat": [6.0, 6.0],
        }
    )
    got = forecast_metrics(cv, tables)
    assert got.columns == ["cutoff", "model", "level", "wape", "mae", "bias", "rmsse", "wrmsse"]
    assert got.height == 2 * 4  # 2 models x 4 levels
    total = got.filter(pl.col("level") == "total").sort("model")
    assert total["model"].to_list() == ["flat", "good"]
    assert total["wape"].to_list() == pytest.approx([0.2, 0.0])
    assert total["mae"].to_list() == pytest.approx([1.0, 0.0])
    assert total["bias"].to_list() == pytest.approx([0.2, 0.0])
    assert total["rmsse"].to_list() == pytest.approx([math.sqrt(2.0 / (20 / 3)), 0.0])
    assert total["wrmsse"].to_list() == pytest.approx([math.sqrt(2.0 / (20 / 3)), 0.0])
    # one store, one region, one category: every level is the same single series
    for level in ("region", "category", "store"):
        rows_l = got.filter(pl.col("level") == level).sort("model")
        assert rows_l["rmsse"].to_list() == pytest.approx(total["rmsse"].to_list())
        assert rows_l["wrmsse"].null_count() == 2
