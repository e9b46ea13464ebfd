"""The event miner on sales with season, paydays, trends, sell-outs and online orders; its statistics on
hand-made frames."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from features.signals import clean_store_sales
from models.mining.event_uplift import CELL_SCHEMA, event_uplift_hypotheses, score_cells
from models.mining.patterns import apply_fdr
from models.mining.settings import MiningSettings
from tests.models.mining import event_world as world

SETTINGS = MiningSettings(min_lift=1.0)


def _mine(*, online: bool = True, seed: int = 3, settings: MiningSettings = SETTINGS) -> pl.DataFrame:
    sales, orders = world.make_sales(seed=seed, online=online)
    clean = clean_store_sales(sales.lazy(), world.stores_frame().lazy(), as_of=world.AS_OF)
    hyp = event_uplift_hypotheses(
        clean,
        orders.lazy() if online else None,
        world.events_frame().lazy(),
        pl.LazyFrame({"region": list(world.REGIONS)}),
        as_of=world.AS_OF,
        settings=settings,
    )
    return hyp.with_columns(pl.lit("event_uplift").alias("kind"))


@pytest.fixture(scope="module")
def hypotheses() -> pl.DataFrame:
    return _mine()


@pytest.fixture(scope="module")
def significant(hypotheses: pl.DataFrame) -> pl.DataFrame:
    return apply_fdr(hypotheses, SETTINGS)


def test_placebos_on_season_paydays_and_trends_find_nothing(significant: pl.DataFrame) -> None:
    found = significant.filter(pl.col("event_type").is_in(world.NULL_TYPES))
    assert found.height == 0, found.select("event_type", "region", "sku", "lift", "q_value")


def test_unplanted_hypotheses_have_calibrated_p_values(hypotheses: pl.DataFrame) -> None:
    planted = ((pl.col("event_type") == "storm") & (pl.col("sku") == "S00")) | (
        (pl.col("event_type") == "holiday") & (pl.col("sku") == "S05")
    )
    null = hypotheses.filter(~planted)
    assert null.height > 100
    assert (null["p_value"] < 0.05).mean() < 0.1
    assert (null["p_value"] < 0.01).mean() < 0.03


def test_a_4x_lift_with_sell_outs_reads_within_25_percent(significant: pl.DataFrame) -> None:
    storm = significant.filter((pl.col("event_type") == "storm") & (pl.col("sku") == "S00"))
    assert sorted(storm["region"]) == ["R0", "R1"]
    for row in storm.iter_rows(named=True):
        assert abs(row["lift"] / world.STORM_LIFT - 1) < 0.25, row
        assert row["ci_low"] < row["lift"] < row["ci_high"]
        assert row["support"] == 6
        assert row["window_start_offset_days"] == 0  # nothing happens in the lead days


def test_sell_outs_read_without_online_orders_too() -> None:
    storm = _mine(online=False).filter(
        (pl.col("event_type") == "storm")
        & (pl.col("sku") == "S00")
        & (pl.col("window_start_offset_days") == 0)
    )
    assert (abs(storm["lift"] / world.STORM_LIFT - 1) < 0.25).all(), storm


def test_a_chain_wide_event_is_mined_per_region_and_for_the_chain(significant: pl.DataFrame) -> None:
    holiday = significant.filter(pl.col("event_type") == "holiday")
    assert set(holiday["region"]) == {*world.REGIONS, "ALL"}
    chain = holiday.filter(pl.col("region") == "ALL").row(0, named=True)
    assert abs(chain["lift"] / world.HOLIDAY_LIFT - 1) < 0.15
    assert chain["support"] == 8


def _cells(ratios: list[float], *, expected: float = 100.0, chain_wide: bool = False) -> pl.DataFrame:
    """One cluster per ratio, two window days (offsets -1 and 0), the excess on offset 0."""
    n = len(ratios)
    return pl.DataFrame(
        {
            "event_type": ["t"] * (2 * n),
            "region": ["r"] * (2 * n),
            "sku": ["x"] * (2 * n),
            "cluster": [date(2024, 1, 1 + i) for i in range(n)] * 2,
            "offset": [-1] * n + [0] * n,
            "chain_wide": [chain_wide] * (2 * n),
            "observed": [expected / 2] * n + [expected * (2 * r - 1) / 2 for r in ratios],
            "expected": [expected / 2] * (2 * n),
            "excess": [0.0] * (2 * n),
            "shock": [0.0] * (2 * n),
        },
        schema=CELL_SCHEMA,
    )


def test_lift_is_total_observed_over_total_expected_with_a_t_interval() -> None:
    out = score_cells(_cells([2.0, 4.0, 3.0, 2.5]), lead_days=1, min_support=2)
    row = out.filter(pl.col("window_start_offset_days") == -1).row(0, named=True)
    assert row["lift"] == pytest.approx((1150 + 0.5) / (400 + 0.5))
    assert row["support"] == 4
    assert row["ci_low"] < row["lift"] < row["ci_high"]
    assert row["p_value"] < 0.01
    assert row["peak_offset_days"] == 0
    during = out.filter(pl.col("window_start_offset_days") == 0)["lift"].item()
    assert during == pytest.approx((950 + 0.5) / (200 + 0.5))


def test_the_regions_of_a_chain_wide_day_share_its_shock_in_the_pooled_variance() -> None:
    # the same lift in every cluster: the clusters' scatter is 0 and the variance is the noise's floor,
    # 1 / expected + excess / expected^2 (``stats.moderated_ratio_test`` without a prior); tested on
    # the event day alone (offset 0: 50 expected a region and cluster)
    def region(name: str) -> pl.DataFrame:
        cells = _cells([2.0, 2.0, 2.0], chain_wide=True).with_columns(region=pl.lit(name))
        return cells.with_columns(excess=pl.lit(100.0), shock=pl.lit(10.0))  # 10^2 of it the shock's

    out = score_cells(pl.concat([region("r"), region("q")]), lead_days=0, min_support=2)
    pooled = out.filter(pl.col("region") == "ALL").row(0, named=True)
    # ALL: 3 clusters of 2 x 50 expected; the regions' excess 2 x 100 a day plus their shared shock's
    # covariance, (10 + 10)^2 - 2 x 10^2
    expected, excess = 300.5, 3 * (2 * 100.0 + 200.0)
    assert pooled["se_log"] ** 2 == pytest.approx(1 / expected + excess / expected**2, rel=1e-6)
    alone = out.filter(pl.col("region") == "r").row(0, named=True)
    assert alone["se_log"] ** 2 == pytest.approx(1 / 150.5 + 3 * 100.0 / 150.5**2, rel=1e-6)


def test_fewer_clusters_than_min_support_are_not_tested() -> None:
    assert score_cells(_cells([5.0, 5.0]), lead_days=1, min_support=3).height == 0


def test_chain_wide_cells_are_also_tested_for_the_chain() -> None:
    cells = pl.concat(
        [
            _cells([2.0, 3.0], chain_wide=True),
            _cells([2.0, 3.0], chain_wide=True).with_columns(region=pl.lit("q")),
        ]
    )
    out = score_cells(cells, lead_days=0, min_support=2)
    assert sorted(out["region"]) == ["ALL", "q", "r"]
    chain = out.filter(pl.col("region") == "ALL").row(0, named=True)
    assert chain["observed_units"] == pytest.approx(2 * (150 + 250))


def test_no_effect_gives_uniform_like_p_values() -> None:
    rng = np.random.default_rng(3)
    pvals = []
    for _ in range(200):
        cells = _cells([1.0] * 6, expected=40.0)
        cells = cells.with_columns(pl.Series("observed", rng.poisson(20.0, cells.height).astype(float)))
        pvals.append(score_cells(cells, lead_days=0, min_support=2)["p_value"].item())
    assert np.mean(np.array(pvals) < 0.05) < 0.1
