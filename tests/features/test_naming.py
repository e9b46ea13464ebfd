"""Feature names are pinned: a saved model reads its columns by these names."""

from __future__ import annotations

import pytest

from features.naming import feature_name
from features.panel import FeatureSpec


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"kind": "units", "lag": 28}, "units_lag28"),
        ({"kind": "units_mean", "lag": 28, "window": 7}, "units_mean_lag28_window7"),
        ({"kind": "event", "key": "Winter Storm"}, "event_winter_storm"),
        ({"kind": "event", "key": "  heat-wave!"}, "event_heat_wave"),
        ({"kind": "event", "key": "???"}, "event_unnamed"),
        ({"kind": "dow"}, "dow"),
    ],
)
def test_feature_name(kwargs: dict, expected: str) -> None:
    kind = kwargs.pop("kind")
    assert feature_name(kind, **kwargs) == expected


def test_spec_feature_names_pinned() -> None:
    spec = FeatureSpec(lags=(28, 35), windows=(7, 28), horizon=28, event_types=("hurricane",))
    assert spec.feature_names() == [
        "dow",
        "day_of_month",
        "week_of_year",
        "month",
        "day_of_year",
        "region",
        "category",
        "regular_price",
        "promo",
        "units_lag28",
        "units_lag35",
        "units_mean_lag28_window7",
        "units_mean_lag28_window28",
        "sku_chain_rate_lag28_window7",
        "sku_chain_rate_lag28_window28",
        "sku_region_rate_lag28_window7",
        "sku_region_rate_lag28_window28",
        "store_rate_lag28_window28",
        "store_index_lag28_window28",
        "online_units_lag28_window7",
        "online_units_lag28_window28",
        "event_hurricane",
    ]
    assert spec.own_history() == [
        "units_lag28",
        "units_lag35",
        "units_mean_lag28_window7",
        "units_mean_lag28_window28",
    ]
    assert spec.reach == 56


def test_spec_names_of_the_horizon_aware_features() -> None:
    spec = FeatureSpec(
        lags=(7, 8),
        windows=(7,),
        horizon=7,
        dow_weeks=(4,),
        price_window=28,
        categorical=("store_id", "sku", "region"),
        event_types=("snap",),
    )
    names = spec.feature_names()
    assert names[5:8] == ["store_id", "sku", "region"]
    assert names[10:14] == [
        "price_ratio_regular",
        "price_discount",
        "price_ratio_mean_lag7_window28",
        "price_ratio_max",
    ]
    assert spec.own_history() == [
        "units_lag7",
        "units_lag8",
        "units_mean_lag7_window7",
        "units_dow_mean_lag7_window28",
    ]
    assert spec.event_features() == ["event_snap"]
    assert spec.reach == 365  # the price's yearly high


def test_spec_rejects_lag_shorter_than_horizon() -> None:
    with pytest.raises(ValueError, match="horizon"):
        FeatureSpec(lags=(7, 28), windows=(7,), horizon=28)
