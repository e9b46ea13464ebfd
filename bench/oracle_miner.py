"""The miner's side of ``bench/mining_oracle.py``: its test, FDR and counterfactual set against the
oracle's truth (the world's true expected demand), so the oracle bench can show where the miner loses
recall: the test (``miner_test`` on the true counterfactual), the FDR (``miner_q``, ``score``) or the
counterfactual itself (``miner_error``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from features.signals import clean_store_sales, daily_online_units
from flows.demo.generate import demo_lake_tables
from flows.demo.truth import mining_quality
from flows.demo.world import World
from models.mining.event_uplift import event_cells
from models.mining.patterns import fdr_q
from models.mining.settings import MiningSettings
from models.mining.stats import moderated_ratio_test


def miner_test(
    rows: pl.DataFrame,
    observed: np.ndarray,
    expected: np.ndarray,
    excess: np.ndarray,
    settings: MiningSettings,
    *,
    empirical_null: bool = True,
) -> pl.DataFrame:
    """The miner's test (``moderated_ratio_test`` per window over clusters, regions and ``ALL``
    together, as ``event_uplift.score_cells`` runs it) on the oracle's units, TRUE expected units and
    the true excess variance of the store-days (``excess`` per row): p_miner_test and
    lift_miner_test per hypothesis and window. ``empirical_null=False``: without the empirical null
    (no ``null_by``), what the null's spread costs where the counterfactual has no error."""
    cells = rows.with_columns(
        pl.Series("observed", observed), pl.Series("expected", expected), pl.Series("excess", excess)
    )
    keys = ["event_type", "region", "sku"]
    chain = cells.filter(pl.col("chain_wide")).with_columns(pl.lit("ALL").alias("region"))
    both = pl.concat([cells, chain])
    out = []
    for w in sorted({-settings.event_lead_days, 0}):
        per_cluster = (
            both.filter(pl.col("offset") >= w)
            .group_by(*keys, "cluster")
            .agg(pl.col("observed").sum(), pl.col("expected").sum(), pl.col("excess").sum())
        )
        null_by = ["event_type", "region"] if empirical_null else None
        t = moderated_ratio_test(per_cluster, keys, family=["event_type"], null_by=null_by)
        t = t.filter(pl.col("support") >= settings.min_event_support)
        out.append(
            t.select(
                *keys,
                pl.lit(w, pl.Int64).alias("window_start_offset_days"),
                pl.col("p_value").alias("p_miner_test"),
                pl.col("lift").alias("lift_miner_test"),
            )
        )
    return pl.concat(out)


def miner_q(tested: pl.DataFrame, p: np.ndarray, settings: MiningSettings) -> np.ndarray:
    """The miner's q-values (``models.mining.patterns.fdr_q``: the two-level FDR with families as the
    miner's, the regional families below reported chain patterns) for ``tested``'s event hypotheses
    (event_type, region, sku, lift) on p-values ``p``, with the run's affinity and latent families
    counted as selected (they were on every demo world)."""
    events = tested.select("event_type", "region", "sku", "lift").with_columns(
        pl.lit("event_uplift").alias("kind"), pl.Series("p_value", p)
    )
    others = pl.DataFrame(
        {
            "kind": ["local_affinity", "latent_demand"],
            "region": ["R", "R"],
            "sku": ["S", "S"],
            "p_value": [0.0, 0.0],
        }
    )
    return fdr_q(pl.concat([events, others], how="diagonal_relaxed"), settings)[: tested.height]


def score(tested: pl.DataFrame, p: np.ndarray, settings: MiningSettings, truth: dict[str, Any]) -> dict:
    """``mining_quality`` of the hypotheses passing the miner's FDR (``miner_q``) and the relevance
    rule, on p-values ``p``."""
    q = miner_q(tested, p, settings)
    passed = tested.filter(pl.Series(q <= settings.fdr_alpha) & (pl.col("lift") >= settings.min_lift))
    found = passed.unique(["region", "sku", "event_type"]).with_columns(pl.lit("event_uplift").alias("kind"))
    return mining_quality(found, truth)


def miner_error(
    world: World, rows: pl.DataFrame, true_demand: np.ndarray, settings: MiningSettings
) -> pl.DataFrame:
    """The miner's own counterfactual (``event_uplift``: design, dispersion, per-type fits and the
    shock, ``window_cells``) against the true expected demand without the type's effect, per (event
    type, region, SKU, cluster) on the lead-days window: log(miner expected / true expected)."""
    tables = demo_lake_tables(size=world.size, seed=world.seed)
    sales = clean_store_sales(tables.store_sales, tables.stores.lazy(), as_of=world.as_of).cache()
    online = daily_online_units(tables.online_orders, tables.postal_regions.lazy(), as_of=world.as_of)
    cells = event_cells(
        sales,
        online,
        tables.events.lazy(),
        tables.stores.lazy().select("region"),
        as_of=world.as_of,
        settings=settings,
        promo=tables.store_sales,
    )
    keys = ["event_type", "region", "sku", "cluster"]
    miner = (
        cells.filter(pl.col("offset") >= -settings.event_lead_days)
        .group_by(keys)
        .agg(pl.col("expected").sum().alias("miner_expected"))
    )
    truth = (
        rows.with_columns(pl.Series("true_expected", true_demand))
        .group_by(keys)
        .agg(pl.col("true_expected").sum())
    )
    return miner.join(truth, on=keys).with_columns(
        (pl.col("miner_expected") / pl.col("true_expected")).log().alias("log_error")
    )
