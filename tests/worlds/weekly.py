"""The weekly chain: a plain seeded chain with a strong weekday profile, for the feature and demand-model
tests (lags, chunked features, training sets, forecasts and their backtests)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from data_contracts.tables import LakeTables
from tests.worlds.chains import ChainSpec, seeded_chain

START = date(2024, 1, 1)  # a Monday
WEEKLY = np.array([0.7, 0.8, 0.9, 1.0, 1.3, 1.6, 0.7])  # Monday .. Sunday
ONLINE_RATE = 0.25  # one-unit order lines per region, SKU and day


def weekly_spec(
    *,
    n_stores: int = 6,
    n_skus: int = 8,
    days: int = 200,
    skip: tuple[tuple[str, str], ...] = (),
    stockout_share: float = 0.0,
    events: pl.DataFrame | None = None,
) -> ChainSpec:
    """Stores S0.. alternately in regions R0/R1 with scales evenly from 0.6 to 1.6; SKUs K0.. alternately
    in categories C0/C1 with levels evenly from 0.5 to 6.0 units a day and prices 2, 3, ...; demand
    follows ``WEEKLY``; every pair carried except ``skip``; days without a sale leave no row."""
    return ChainSpec(
        start=START,
        days=days,
        stores=tuple(f"S{i}" for i in range(n_stores)),
        store_regions=tuple(f"R{i % 2}" for i in range(n_stores)),
        store_scale=tuple(np.linspace(0.6, 1.6, n_stores).tolist()),
        skus=tuple(f"K{j}" for j in range(n_skus)),
        categories=tuple(f"C{j % 2}" for j in range(n_skus)),
        sku_level=tuple(np.linspace(0.5, 6.0, n_skus).tolist()),
        prices=tuple(2.0 + j for j in range(n_skus)),
        weekday=tuple(WEEKLY.tolist()),
        not_carried=skip,
        stockout_share=stockout_share,
        on_hand=20.0,
        online_rate=ONLINE_RATE,
        events=events,
    )


def weekly_chain(
    *,
    n_stores: int = 6,
    n_skus: int = 8,
    days: int = 200,
    seed: int = 0,
    skip: tuple[tuple[str, str], ...] = (),
    stockout_share: float = 0.0,
    events: pl.DataFrame | None = None,
) -> LakeTables:
    """The weekly chain (see ``weekly_spec``) drawn with ``seed``; ``stockout_share`` of each carried
    pair's days show an empty shelf (on_hand 0, no sale)."""
    spec = weekly_spec(
        n_stores=n_stores, n_skus=n_skus, days=days, skip=skip, stockout_share=stockout_share, events=events
    )
    return seeded_chain(spec, seed)
