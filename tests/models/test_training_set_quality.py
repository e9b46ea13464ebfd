"""The training set by design against the full set on the medium demo: about as good, at a fraction."""

from __future__ import annotations

import pytest

from flows.demo.generate import demo_lake_tables
from flows.demo.world import AS_OF
from models.demand import DemandSettings, ModelSettings, fit_demand_model
from models.training_set import ScaleSettings

pytestmark = pytest.mark.slow


def _settings(*, max_rows: int) -> DemandSettings:
    model = ModelSettings(
        lags=(28, 35, 364), recent_days=0, windows=(7, 28, 91), dow_weeks=(4,), horizon_blocks=(28,),
        num_boost_round=60, early_stopping_rounds=10, refit="none", max_train_rows=max_rows,
        categorical=("region", "category"),
    )  # fmt: skip
    scale = ScaleSettings(memory_gb=64, recent_days=91)
    return DemandSettings(horizon=28, num_threads=2, seed=7, model=model, scale=scale)


def test_a_quarter_of_the_rows_by_design_validates_about_as_well_as_all_of_them() -> None:
    tables = demo_lake_tables(size="medium", seed=7)
    full = fit_demand_model(tables, as_of=AS_OF, settings=_settings(max_rows=10**8))
    small = fit_demand_model(tables, as_of=AS_OF, settings=_settings(max_rows=1_000_000))
    print(f"full: {full.metrics}\nsampled: {small.metrics}")
    assert full.metrics["valid_rows"] == small.metrics["valid_rows"]  # the same held-out days
    assert small.metrics["train_rows"] < 0.5 * full.metrics["train_rows"]
    assert small.metrics["valid_wape"] <= full.metrics["valid_wape"] * 1.03 + 0.005
    assert abs(small.metrics["valid_bias"]) <= abs(full.metrics["valid_bias"]) + 0.03
