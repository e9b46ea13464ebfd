"""The training set chosen by design: every series' recent days whole, older days sampled evenly."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.tables import LakeTables
from features.panel import PAIR, FeatureSpec, demand_features
from models.training_set import ScaleSettings, sampling_step, training_set
from tests.worlds.weekly import START, weekly_chain

AS_OF = START + timedelta(days=299)
SPEC = FeatureSpec(lags=(28, 35), windows=(7, 28), horizon=28)
VALID = 28


@pytest.fixture(scope="module")
def world() -> LakeTables:
    return weekly_chain(n_stores=4, n_skus=6, days=300, seed=11, stockout_share=0.05)


@pytest.fixture(scope="module")
def full(world: LakeTables) -> pl.DataFrame:
    lf = demand_features(world, SPEC, as_of=AS_OF)
    return lf.filter(~pl.col("is_future"), pl.col("units").is_not_null()).sort(*PAIR, "date").collect()


@pytest.mark.parametrize(
    "n_older,room,k", [(100, 100, 1), (100, 500, 1), (1000, 100, 10), (1000, 150, 8), (1300, 200, 8)]
)
def test_sampling_step_fills_the_room_and_rotates_weekdays(n_older: int, room: int, k: int) -> None:
    assert sampling_step(n_older, room) == k
    assert k == 1 or k % 7 != 0


def _chosen(world: LakeTables, *, max_rows: int, recent_days: int, seed: int = 1) -> pl.DataFrame:
    scale = ScaleSettings(memory_gb=1.0, recent_days=recent_days)
    return training_set(world, SPEC, as_of=AS_OF, valid_days=VALID, max_rows=max_rows, seed=seed, scale=scale)


def test_a_roomy_budget_keeps_the_full_set(world: LakeTables, full: pl.DataFrame) -> None:
    assert_frame_equal(_chosen(world, max_rows=10**7, recent_days=60), full, check_exact=False, rel_tol=1e-9)


def test_a_tight_budget_keeps_recent_days_whole_and_samples_older_days_evenly(
    world: LakeTables, full: pl.DataFrame
) -> None:
    budget = 2_000
    got = _chosen(world, max_rows=budget, recent_days=30)
    # the chosen rows are rows of the full set, with the same features
    assert_frame_equal(
        got,
        full.join(got.select(*PAIR, "date"), on=[*PAIR, "date"], how="semi"),
        check_exact=False,
        rel_tol=1e-9,
    )
    recent_start = AS_OF - timedelta(days=VALID - 1 + 30)
    recent = full.filter(pl.col("date") >= recent_start)
    assert got.filter(pl.col("date") >= recent_start).height == recent.height  # every series, every day
    before_valid = got.filter(pl.col("date") <= AS_OF - timedelta(days=VALID)).height
    assert 0.8 * budget <= before_valid <= 1.05 * budget
    older = got.filter(pl.col("date") < recent_start)
    # every series keeps about the same share of its old days, spread over time and weekdays
    per_pair = older.group_by(PAIR).len().get_column("len")
    assert per_pair.len() == full.select(*PAIR).unique().height
    assert per_pair.max() - per_pair.min() <= 0.2 * per_pair.mean() + 2
    assert older.get_column("date").dt.weekday().n_unique() == 7
    by_quarter = older.group_by(pl.col("date").dt.quarter()).len().get_column("len")
    assert by_quarter.min() > 0.5 * by_quarter.max()


def test_the_sample_is_seeded(world: LakeTables) -> None:
    a = _chosen(world, max_rows=2_000, recent_days=30, seed=1).select(*PAIR, "date")
    assert_frame_equal(a, _chosen(world, max_rows=2_000, recent_days=30, seed=1).select(*PAIR, "date"))
    assert not a.equals(_chosen(world, max_rows=2_000, recent_days=30, seed=2).select(*PAIR, "date"))


def test_recent_days_shrink_when_they_alone_would_fill_the_budget(
    world: LakeTables, full: pl.DataFrame
) -> None:
    got = _chosen(world, max_rows=600, recent_days=200)
    before_valid = AS_OF - timedelta(days=VALID)
    per_day = got.filter(pl.col("date") <= before_valid).group_by("date").len()
    whole = full.group_by("date").len().rename({"len": "full"})
    kept_whole = per_day.join(whole, on="date").filter(pl.col("len") == pl.col("full"))
    assert kept_whole.get_column("date").min() > AS_OF - timedelta(days=200)  # fewer recent days
    assert kept_whole.get_column("len").sum() <= 300  # at most half the budget
    assert 0.8 * 600 <= per_day.get_column("len").sum() <= 1.05 * 600  # the older sample fills the rest
