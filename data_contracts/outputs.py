"""The output contract (`shared/specs/output-contract.md`): each output table's columns, declared once."""

from __future__ import annotations

import polars as pl

FORECAST_COLUMNS = pl.Schema(
    {
        "store_id": pl.String,
        "sku": pl.String,
        "date": pl.Date,
        "units": pl.Float64,
        "p10": pl.Float64,
        "p90": pl.Float64,
    }
)
PATTERN_COLUMNS = pl.Schema(
    {
        "kind": pl.String,
        "region": pl.String,
        "sku": pl.String,
        "category": pl.String,
        "event_type": pl.String,
        "lift": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "support": pl.Int64,
        "q_value": pl.Float64,
        "peak_offset_days": pl.Int64,
        "explanation": pl.String,
        "window_start": pl.Date,
        "window_end": pl.Date,
        "event_id": pl.String,
    }
)
ASSORTMENT_COLUMNS = pl.Schema(
    {
        "store_id": pl.String,
        "sku": pl.String,
        "category": pl.String,
        "action": pl.String,
        "expected_weekly_units": pl.Float64,
        "expected_weekly_revenue": pl.Float64,
        "reason": pl.String,
        "name": pl.String,
        "subcategory": pl.String,
        "region": pl.String,
        "replaces": pl.String,
    }
)
PRESTOCK_COLUMNS = pl.Schema(
    {
        "event_type": pl.String,
        "region": pl.String,
        "store_id": pl.String,
        "sku": pl.String,
        "baseline_units": pl.Float64,
        "extra_units": pl.Float64,
        "lift": pl.Float64,
        "reason": pl.String,
        "event_name": pl.String,
        "window_start": pl.Date,
        "window_end": pl.Date,
        "stock_by": pl.Date,
        "order_units": pl.Int64,
    }
)
# The backtest tables (output contract, backtest/)
FORECAST_METRICS_COLUMNS = pl.Schema(
    {
        "cutoff": pl.Date,
        "model": pl.String,
        "level": pl.String,
        "wape": pl.Float64,
        "mae": pl.Float64,
        "bias": pl.Float64,
        "rmsse": pl.Float64,
        "wrmsse": pl.Float64,
    }
)
EVENT_BACKTEST_COLUMNS = pl.Schema(
    {
        "event_id": pl.String,
        "event_type": pl.String,
        "region": pl.String,
        "start_date": pl.Date,
        "flagged": pl.Int64,
        "actual_risers": pl.Int64,
        "hits": pl.Int64,
        "precision": pl.Float64,
        "recall": pl.Float64,
    }
)
ASSORTMENT_BACKTEST_COLUMNS = pl.Schema(
    {"cutoff": pl.Date, "store_id": pl.String, "strategy": pl.String, "demand_covered_share": pl.Float64}
)
PATTERN_KINDS = ("event_uplift", "local_affinity", "latent_demand", "discovered_event")
ASSORTMENT_ACTIONS = ("add", "drop", "keep")


def conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Return ``df`` with the contract's columns first, in order and cast; extra columns kept after."""
    missing = [c for c in schema.names() if c not in df.columns]
    df = df.with_columns(pl.lit(None, dtype=schema[c]).alias(c) for c in missing)
    extra = [c for c in df.columns if c not in schema.names()]
    return df.select(*(pl.col(c).cast(schema[c]) for c in schema.names()), *extra)
