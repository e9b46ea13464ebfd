"""The demand forecast one feature chunk per Dask worker, equal to models.demand.forecast_demand.

forecast_demand builds the forecast panel one chunk of SKUs at a time (features/chunked.py): the chunk
plan (SKU chunks and the store totals over all of them) is one narrow pass, and every chunk's features
and predictions depend on the plan and the chunk alone. So the plan is made here, once, and each chunk
is forecast on a worker; the chunks concatenated and sorted are forecast_demand's answer
(tests/models/test_dask_forecast.py). Not per region: a store's volume index compares it with the
whole chain, so a region's pairs alone would give other features.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import polars as pl

from data_contracts.tables import LakeTables
from features.chunked import ChunkPlan, chunk_features, plan_chunks
from features.panel import PAIR
from models.demand import DemandModel, _forecast_block, forecast_demand
from models.training_set import ScaleSettings

if TYPE_CHECKING:
    from datetime import date

    from distributed import Client


def _chunk(
    model: DemandModel,
    tables: LakeTables,
    plan: ChunkPlan,
    i: int,
    wanted: pl.DataFrame,
    *,
    start: date,
    horizon: int,
) -> pl.DataFrame:
    """Chunk ``i``'s forecast rows (forecast_demand's loop body; run on a worker)."""
    served = [b for b in model.blocks if b.first_day <= horizon]
    also = [b.spec for b in served if b.spec != model.spec]
    rows = (
        chunk_features(tables, model.spec, plan, i, as_of=model.as_of, pairs=wanted, start=start, also=also)
        .filter(pl.col("is_future"))
        .join(wanted.lazy(), on=list(PAIR), how="semi")
        .collect()
    )
    frames = []
    for block in served:
        first = model.as_of + timedelta(days=block.first_day)
        last = model.as_of + timedelta(days=min(block.last_day, horizon))
        days = rows.filter(pl.col("date") >= first, pl.col("date") <= last)
        frames.append(_forecast_block(block, days, levels=model.categories))
    return pl.concat(frames)


def forecast_demand_dask(
    model: DemandModel,
    tables: LakeTables,
    pairs: pl.DataFrame,
    *,
    horizon: int,
    client: Client | None,
    chunk_rows: int = ScaleSettings().chunk_rows(),
) -> pl.DataFrame:
    """forecast_demand's rows, each feature chunk forecast on a worker of ``client``'s cluster (one
    chunk: in this process; no client: forecast_demand itself)."""
    wanted = pairs.select(*PAIR).unique()
    if client is None or wanted.height == 0 or horizon > model.horizon:
        return forecast_demand(model, tables, pairs, horizon=horizon, chunk_rows=chunk_rows)
    start = model.as_of - timedelta(days=max(b.spec.reach for b in model.blocks) + 1)
    plan = plan_chunks(tables, model.spec, as_of=model.as_of, max_rows=chunk_rows, pairs=wanted, start=start)
    if len(plan.chunks) < 2:
        return forecast_demand(model, tables, pairs, horizon=horizon, chunk_rows=chunk_rows)
    shared = client.scatter([model, tables, plan, wanted], broadcast=True, hash=False)
    futures = [
        client.submit(_chunk, *shared[:3], i, shared[3], start=start, horizon=horizon, pure=False)
        for i in range(len(plan.chunks))
    ]
    return pl.concat(client.gather(futures)).sort(*PAIR, "date")
