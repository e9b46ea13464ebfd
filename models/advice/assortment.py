"""Localized assortment advice: which SKUs each store should add, keep or drop, and why.

Per store x category, within its shelf capacity, the greedy revenue choice of ``models.advice.choice``
(demand transference, same-subcategory swaps, must-carry, a change budget, interval evidence for adds).
The change budget is ``max_changes_share`` of each category's shelf (at least one change) and at most
``max_changes_per_store`` per store over all its categories (the store's best changes by gain).

Reasons quote the numbers of the row they explain, once each. "Top seller" and "slow seller" are said
only where true against the store's own kept SKUs of the category: in its top (bottom) ``top_share``
by expected weekly units, and above (below) their median.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from data_contracts.outputs import ASSORTMENT_COLUMNS, conform
from data_contracts.tables import LakeTables
from models.advice.choice import Group, choose
from models.advice.inputs import candidate_pairs, decision_rows, store_category_capacity
from models.advice.reasons import reason_column
from models.advice.settings import AssortmentSettings

__all__ = ["candidate_pairs", "recommend_assortment", "store_category_capacity"]

_GROUP = ["store_id", "category"]


def _group(df: pl.DataFrame) -> Group:
    """The group's rows as arrays for ``choose``."""
    brand = df["brand"].fill_null("")
    brand_codes = np.unique(brand.to_numpy(), return_inverse=True)[1]
    return Group(
        carried=df["carried"].to_numpy().astype(bool),
        units=df["weekly_units"].to_numpy().astype(float),
        low=df["weekly_low"].to_numpy().astype(float),
        price=df["price"].to_numpy().astype(float),
        sub=np.unique(df["sub"].to_numpy(), return_inverse=True)[1],
        brand=np.where(brand.to_numpy() == "", -1, brand_codes),
        must=df["must"].to_numpy().astype(bool),
        protected=(df["recent_weekly"] > df["weekly_high"]).to_numpy() & df["carried"].to_numpy(),
    )


def change_budget(capacity: int, s: AssortmentSettings) -> int:
    """Most changes one store x category may make in a run (``max_changes_share`` of its shelf, at
    least one, at most ``max_changes_per_store``); 0 when either setting is 0."""
    if s.max_changes_share <= 0 or s.max_changes_per_store <= 0:
        return 0
    return min(max(1, int(capacity * s.max_changes_share)), s.max_changes_per_store)


def _decide(rows: pl.DataFrame, capacity: pl.DataFrame, s: AssortmentSettings) -> pl.DataFrame:
    """Return one row per decided change: store_id, category, step, add_sku, drop_sku, gain, forced."""
    caps = dict(((r[0], r[1]), int(r[2])) for r in capacity.select(*_GROUP, "capacity").iter_rows())
    out = []
    for (store, category), df in rows.group_by(_GROUP, maintain_order=True):
        cap = caps.get((store, category), int(df["carried"].sum()))
        skus = df["sku"].to_list()
        for step, c in enumerate(choose(_group(df), capacity=cap, budget=change_budget(cap, s), s=s)):
            out.append((store, category, step, _sku(skus, c.add), _sku(skus, c.drop), c.gain, c.forced))
    schema = {
        "store_id": pl.String, "category": pl.String, "step": pl.Int64, "add_sku": pl.String,
        "drop_sku": pl.String, "gain": pl.Float64, "forced": pl.Boolean,
    }  # fmt: skip
    return pl.DataFrame(out, schema=schema, orient="row")


def _sku(skus: list[str], i: int | None) -> str | None:
    return None if i is None else skus[i]


def cap_per_store(changes: pl.DataFrame, limit: int) -> pl.DataFrame:
    """Keep forced drops and each store's ``limit`` best changes; within a category the kept changes are
    the first ones chosen (a later swap may rely on an earlier one), so gains are ranked after a running
    minimum along each category's steps."""
    forced = changes.filter(pl.col("forced"))
    free = (
        changes.filter(~pl.col("forced"))
        .sort(*_GROUP, "step")
        .with_columns(_key=pl.col("gain").cum_min().over(_GROUP))
        .sort(["store_id", "_key", "category", "step"], descending=[False, True, False, False])
        .with_columns(_n=pl.int_range(1, pl.len() + 1).over("store_id"))
        .filter(pl.col("_n") <= limit)
        .drop("_key", "_n")
    )
    return pl.concat([forced, free]).sort(*_GROUP, "step")


def _actions(rows: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """Return ``rows`` with action, replaces, gain, forced (adds not chosen are left out)."""
    adds = changes.filter(pl.col("add_sku").is_not_null()).select(
        "store_id", sku="add_sku", replaces="drop_sku", gain="gain", forced="forced", action=pl.lit("add")
    )
    drops = changes.filter(pl.col("drop_sku").is_not_null()).select(
        "store_id", sku="drop_sku", replaces="add_sku", gain="gain", forced="forced", action=pl.lit("drop")
    )
    decided = pl.concat([adds, drops])
    return (
        rows.join(decided, on=["store_id", "sku"], how="left")
        .filter(pl.col("carried") | pl.col("action").is_not_null())
        .with_columns(action=pl.col("action").fill_null("keep"), forced=pl.col("forced").fill_null(False))
    )


def _standing(df: pl.DataFrame, s: AssortmentSettings) -> pl.DataFrame:
    """Add n_kept, rank (among rows of the same action), top and slow: each row's standing against its
    store-category's kept SKUs."""
    kept = pl.col("weekly_units").filter(pl.col("action") == "keep")
    return df.with_columns(
        n_kept=(pl.col("action") == "keep").sum().over(_GROUP),
        n_sub_kept=(pl.col("action") == "keep").sum().over(*_GROUP, "sub"),
        _median=kept.median().over(_GROUP),
        _hi=kept.quantile(1 - s.top_share, "linear").over(_GROUP),
        _lo=kept.quantile(s.top_share, "linear").over(_GROUP),
    ).with_columns(
        rank=pl.col("weekly_units").rank("min", descending=True).over(*_GROUP, "action"),
        top=(pl.col("weekly_units") >= pl.col("_hi")) & (pl.col("weekly_units") > pl.col("_median")),
        slow=(pl.col("weekly_units") <= pl.col("_lo")) & (pl.col("weekly_units") < pl.col("_median")),
    )


def recommend_assortment(
    tables: LakeTables,
    candidates: pl.DataFrame,
    forecast: pl.DataFrame,
    patterns: pl.DataFrame,
    *,
    as_of: date,
    settings: AssortmentSettings,
) -> pl.DataFrame:
    """Return one row per store x SKU carried today or advised to add (data_contracts.outputs
    ASSORTMENT_COLUMNS, then gain: the weekly revenue change of the row's decision, net of
    transference). Within each store x category the advised set (add + keep) never exceeds capacity
    (unless its must-carry SKUs alone exceed it)."""
    rows = decision_rows(
        tables, candidates, forecast, patterns, as_of=as_of, recent_days=settings.recent_days
    )
    capacity = store_category_capacity(tables)
    changes = cap_per_store(_decide(rows, capacity, settings), settings.max_changes_per_store)
    names = rows.select("store_id", "sku", other_name="name", other_units="weekly_units")
    advice = (
        _actions(rows, changes)
        .join(capacity.select(*_GROUP, "capacity", "n_carried"), on=_GROUP, how="left")
        .join(names, left_on=["store_id", "replaces"], right_on=["store_id", "sku"], how="left")
        .pipe(_standing, settings)
        .with_columns(
            expected_weekly_units=pl.col("weekly_units"),
            expected_weekly_revenue=pl.col("weekly_units") * pl.col("price"),
        )
    )
    advice = advice.with_columns(reason=reason_column(advice, settings))
    order = pl.col("action").replace_strict({"add": 0, "keep": 1, "drop": 2}, return_dtype=pl.Int8)
    return (
        conform(advice, ASSORTMENT_COLUMNS)
        .select(*ASSORTMENT_COLUMNS.names(), "gain")
        .with_columns(_o=order)
        .sort(
            ["store_id", "category", "_o", "expected_weekly_units", "sku"],
            descending=[False, False, False, True, False],
        )  # fmt: skip
        .drop("_o")
    )
