"""The window days of a no-effect fair in region R0 (7 lead days and 3 days), shaped as
``features.signals.event_days`` gives them, for the event counterfactual's small test chains, and
the censored parts of a chain where no store sold out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl


def fair_days(dates: Sequence[date], starts: Sequence[int]) -> pl.DataFrame:
    """One fair starting on each of ``starts`` (indexes into ``dates``), one cluster each."""
    rows = [
        {
            "event_type": "fair",
            "region": "R0",
            "date": dates[start + offset],
            "offset": offset,
            "phase": "lead" if offset < 0 else "during",
            "cluster": dates[start - 7],
            "chain_wide": False,
        }
        for start in starts
        for offset in range(-7, 3)
    ]
    return pl.DataFrame(rows).with_columns(pl.col("offset").cast(pl.Int32))


def no_sell_outs() -> pl.DataFrame:
    """The censored parts (``features.signals.daily_panel``'s second frame) of a chain without one."""
    schema = {
        "region": pl.String,
        "sku": pl.String,
        "date": pl.Date,
        "sold": pl.Float64,
        "weight": pl.Float64,
    }
    return pl.DataFrame(schema=schema)
