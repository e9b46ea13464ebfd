"""Features one chunk of SKUs at a time equal the whole panel's."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.tables import LakeTables
from features.chunked import chunk_features, chunked_features, plan_chunks, sku_chunks
from features.panel import PAIR, FeatureSpec, demand_features
from tests.worlds.weekly import START, weekly_chain

AS_OF = START + timedelta(days=179)
SPEC = FeatureSpec(lags=(28, 35), windows=(7, 28), horizon=28)


@pytest.fixture(scope="module")
def world() -> LakeTables:
    # a never-sold pair, stockouts (censored days) and a store of each region
    return weekly_chain(n_stores=4, n_skus=7, days=200, seed=5, skip=(("S1", "K3"),), stockout_share=0.05)


def _whole(lf: pl.LazyFrame) -> pl.DataFrame:
    return lf.sort(*PAIR, "date").collect()


@pytest.mark.parametrize("max_rows", [10_000_000, 1_000, 300])
def test_chunked_training_features_equal_the_whole_panel(world: LakeTables, max_rows: int) -> None:
    whole = _whole(demand_features(world, SPEC, as_of=AS_OF))
    chunks = list(chunked_features(world, SPEC, as_of=AS_OF, max_rows=max_rows))
    assert len(chunks) == len(plan_chunks(world, SPEC, as_of=AS_OF, max_rows=max_rows).chunks)
    assert len(chunks) == (1 if max_rows > 1e6 else 7 if max_rows == 300 else len(chunks))
    assert_frame_equal(pl.concat(chunks).sort(*PAIR, "date"), whole, check_exact=False, rel_tol=1e-9)


def test_chunked_forecast_features_equal_the_whole_panel(world: LakeTables) -> None:
    pairs = pl.DataFrame({"store_id": ["S0", "S1", "S3"], "sku": ["K0", "K3", "K6"]})  # S1/K3: cold start
    start = AS_OF - timedelta(days=SPEC.reach + 1)
    whole = _whole(demand_features(world, SPEC, as_of=AS_OF, pairs=pairs, start=start))
    chunks = chunked_features(world, SPEC, as_of=AS_OF, max_rows=500, pairs=pairs, start=start)
    got = pl.concat(list(chunks)).sort(*PAIR, "date")
    assert got.filter(pl.col("is_future")).height == 3 * SPEC.horizon
    assert_frame_equal(got, whole, check_exact=False, rel_tol=1e-9)


def test_keep_filters_each_chunk_before_it_is_collected(world: LakeTables) -> None:
    recent = pl.col("date") > AS_OF - timedelta(days=7)
    got = pl.concat(
        list(chunked_features(world, SPEC, as_of=AS_OF, max_rows=300, keep=lambda lf: lf.filter(recent)))
    )
    assert got.get_column("date").min() == AS_OF - timedelta(days=6)
    assert got.select(*PAIR).unique().height == 4 * 7 - 1


def test_sku_chunks_cover_every_sku_once() -> None:
    skus = [f"K{i}" for i in range(10)]
    chunks = sku_chunks(skus, panel_rows=1_000, max_rows=300)
    assert len(chunks) == 4
    assert sorted(s for c in chunks for s in c) == sorted(skus)
    assert sku_chunks(skus, panel_rows=10, max_rows=300) == [sorted(skus)]


SHORT = FeatureSpec(lags=(7, 14, 28), windows=(7, 28), horizon=7, dow_weeks=(4,), price_window=28)
LONG = FeatureSpec(lags=(28, 35), windows=(7, 28), horizon=28, dow_weeks=(4,), price_window=28)


@pytest.mark.parametrize("max_rows", [10_000_000, 300])
def test_one_panel_for_every_block_gives_each_block_its_own_features(
    world: LakeTables, max_rows: int
) -> None:
    # the horizon blocks' columns built on one shared panel equal those built block by block
    plan = plan_chunks(world, LONG, as_of=AS_OF, max_rows=max_rows)
    shared = pl.concat(
        [
            chunk_features(world, LONG, plan, i, as_of=AS_OF, also=[SHORT]).collect()
            for i in range(len(plan.chunks))
        ]
    ).sort(*PAIR, "date")
    for spec in (SHORT, LONG):
        alone = _whole(demand_features(world, spec, as_of=AS_OF))
        assert_frame_equal(shared.select(alone.columns), alone, check_exact=False, rel_tol=1e-9)
    assert set(shared.columns) == {*_whole(demand_features(world, SHORT, as_of=AS_OF)).columns} | {
        *LONG.feature_names()
    }


def test_one_panel_for_every_block_gives_each_block_its_forecast_features(world: LakeTables) -> None:
    pairs = pl.DataFrame({"store_id": ["S0", "S1", "S3"], "sku": ["K0", "K3", "K6"]})  # S1/K3: cold start
    start = AS_OF - timedelta(days=max(LONG.reach, SHORT.reach) + 1)
    shared = _whole(demand_features(world, LONG, as_of=AS_OF, pairs=pairs, start=start, also=[SHORT]))
    for spec in (SHORT, LONG):
        alone = _whole(demand_features(world, spec, as_of=AS_OF, pairs=pairs, start=start)).filter(
            pl.col("date") <= AS_OF + timedelta(days=spec.horizon)
        )
        got = shared.filter(pl.col("date") <= AS_OF + timedelta(days=spec.horizon)).select(alone.columns)
        assert_frame_equal(got, alone, check_exact=False, rel_tol=1e-9)
