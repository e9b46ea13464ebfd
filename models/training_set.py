"""The demand model's training set, chosen by design within a memory budget.

Every row of the panel with known demand is a candidate; at M5 scale that is ~40 million rows with ~50
features, more than the budget. The set keeps, for every series (store x SKU):

- the validation days (the last ``valid_days``): all of them, for early stopping and the intervals;
- the recent days before them (``recent_days``, fewer when the budget is tight): all of them, because
  the forecast starts from today's level and mix;
- the older days as a systematic sample: every k-th day of each series, from an offset drawn per series
  (a seeded hash), k chosen to fill the row budget and never a multiple of 7 so weekdays rotate. That is
  a stratified sample with one row per k consecutive days in every series: each series, season and
  weekday keeps its share of the old history, which a simple random sample only gives on average.

The features are built one chunk of SKUs at a time (features/chunked.py) and each chunk is cut to the
chosen rows before it is collected, so memory holds the chosen rows plus one chunk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl
from pydantic import BaseModel, Field

from data_contracts.tables import LakeTables
from features.chunked import ChunkPlan, chunk_features, chunk_rows_for, plan_chunks
from features.panel import PAIR, FeatureSpec

GIB = 2**30
# Of the memory budget: what one feature chunk may take, and what the training matrices may take
# (float32 features, LightGBM's binned copy and its histograms: ~3 copies of 4 bytes per value).
CHUNK_SHARE = 0.35
TRAIN_SHARE = 0.35
BYTES_PER_TRAIN_VALUE = 12


class ScaleSettings(BaseModel):
    """How much memory the job may use, and how the training set fits in it."""

    memory_gb: float = Field(8.0, gt=0, description="Memory budget in GiB: chunk sizes and rows follow.")
    recent_days: int = Field(
        182, ge=0, description="Days before the validation window kept whole for every series."
    )

    def chunk_rows(self) -> int:
        """Panel rows one feature chunk may hold."""
        return chunk_rows_for(self.memory_gb * GIB * CHUNK_SHARE)

    def train_rows(self, n_features: int, *, cap: int) -> int:
        """Training rows the budget allows for ``n_features`` features, at most ``cap``."""
        fits = int(self.memory_gb * GIB * TRAIN_SHARE // (BYTES_PER_TRAIN_VALUE * max(1, n_features)))
        return max(1, min(cap, fits))


def sampling_step(n_older: int, room: int) -> int:
    """Return k: keep every k-th older day of a series so about ``room`` of ``n_older`` rows stay
    (1 keeps all); never a multiple of 7, so a series' sampled days rotate through the weekdays."""
    if n_older <= room:
        return 1
    k = math.ceil(n_older / max(1, room))
    return k + 1 if k % 7 == 0 else k


def _recent_start(per_day: pl.DataFrame, *, valid_start: date, recent_days: int, room: int) -> date:
    """First day of the recent window: ``recent_days`` before valid_start, later if those days alone
    would take more than half the row budget."""
    start = valid_start - timedelta(days=recent_days)
    window = per_day.filter(pl.col("date") >= start, pl.col("date") < valid_start).sort(
        "date", descending=True
    )
    over = window.filter(pl.col("rows").cum_sum() > room // 2)
    if over.height == 0:
        return start
    latest = over.get_column("date").max()
    assert isinstance(latest, date)
    return latest + timedelta(days=1)


def training_plan(tables: LakeTables, spec: FeatureSpec, *, as_of: date, scale: ScaleSettings) -> ChunkPlan:
    """Return the chunk plan of the training panel (shared by every horizon block's spec)."""
    return plan_chunks(tables, spec, as_of=as_of, max_rows=scale.chunk_rows())


def training_filter(
    tables: LakeTables,
    spec: FeatureSpec,
    *,
    as_of: date,
    valid_days: int,
    max_rows: int,
    seed: int,
    scale: ScaleSettings,
    plan: ChunkPlan | None = None,
    since: date | None = None,
    also: Sequence[FeatureSpec] = (),
) -> tuple[ChunkPlan, pl.Expr]:
    """Return the chunk plan and the filter that keeps a chunk's training rows (training_set's
    arguments): known demand, dated since..as_of, recent days whole and older days sampled."""
    columns = {n for one in (spec, *also) for n in one.feature_names()}
    budget = scale.train_rows(len(columns), cap=max_rows)
    plan = plan or training_plan(tables, spec, as_of=as_of, scale=scale)
    per_day = (
        plan.totals.filter(pl.col("date") <= as_of, pl.col("date") >= (since or date.min))
        .group_by("date")
        .agg(pl.col("_d").sum().alias("rows"))
    )
    valid_start = as_of - timedelta(days=valid_days - 1)
    recent_start = _recent_start(per_day, valid_start=valid_start, recent_days=scale.recent_days, room=budget)
    n_recent = int(
        per_day.filter(pl.col("date").is_between(recent_start, valid_start, closed="left"))["rows"].sum()
    )
    n_older = int(per_day.filter(pl.col("date") < recent_start)["rows"].sum())
    k = sampling_step(n_older, budget - n_recent)
    day = (pl.col("date") - pl.lit(recent_start)).dt.total_days()
    offset = pl.struct(*PAIR).hash(seed=seed) % k
    chosen = (pl.col("date") >= recent_start) | ((day + offset.cast(pl.Int64)) % k == 0)
    known = ~pl.col("is_future") & pl.col("units").is_not_null() & (pl.col("date") >= (since or date.min))
    return plan, known & chosen


def training_set(
    tables: LakeTables,
    spec: FeatureSpec,
    *,
    as_of: date,
    valid_days: int,
    max_rows: int,
    seed: int,
    scale: ScaleSettings,
    plan: ChunkPlan | None = None,
    since: date | None = None,
    also: Sequence[FeatureSpec] = (),
) -> pl.DataFrame:
    """Return the training rows (as models.demand.training_rows: dated <= as_of, known demand, every
    feature of ``spec``, sorted by store_id, sku, date), the older ones sampled as the module says so
    that the rows before the validation window number about ``scale.train_rows`` (at most max_rows).
    ``plan`` (training_plan) saves its first pass when several specs share it; ``since`` drops the
    days before it; ``also``: the columns of more lag floors on the same rows (one set for every
    horizon block, features.panel.add_history_features), the budget counting all their columns."""
    plan, keep = training_filter(
        tables, spec, as_of=as_of, valid_days=valid_days, max_rows=max_rows, seed=seed, scale=scale,
        plan=plan, since=since, also=also,
    )  # fmt: skip
    parts = [
        chunk_features(tables, spec, plan, i, as_of=as_of, also=also)
        .filter(keep)
        .sort(*PAIR, "date")
        .collect()
        for i in range(len(plan.chunks))
    ]
    return pl.concat(parts).sort(*PAIR, "date")
