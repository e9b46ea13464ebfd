"""One seeded factory for small synthetic lakes with a planted weekly pattern (tests only)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from data_contracts.schemas import CONTRACTS, LAKE_ONLINE_ORDERS, LAKE_STORE_SALES
from data_contracts.tables import LakeTables

START = date(2024, 1, 1)
WEEKLY = np.array([0.7, 0.8, 0.9, 1.0, 1.3, 1.6, 0.7])  # Monday .. Sunday


def _conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Every column of ``schema`` in order (nulls where ``df`` lacks one)."""
    return df.with_columns(
        pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in df.columns
    ).select([pl.col(c).cast(t) for c, t in schema.items()])


def synthetic_tables(
    *,
    n_stores: int = 6,
    n_skus: int = 8,
    days: int = 200,
    seed: int = 0,
    skip: tuple[tuple[str, str], ...] = (),
    stockout_share: float = 0.0,
    events: pl.DataFrame | None = None,
) -> LakeTables:
    """Return a LakeTables: stores S0.. in regions R0/R1, SKUs K0.. in categories C0/C1, daily Poisson
    sales = store scale x SKU level x weekday profile, online orders per region, every pair carried
    except ``skip`` (never sold there). ``stockout_share`` of days show on_hand 0 and no sale."""
    rng = np.random.default_rng(seed)
    stores = [f"S{i}" for i in range(n_stores)]
    skus = [f"K{j}" for j in range(n_skus)]
    store_scale = np.linspace(0.6, 1.6, n_stores)
    sku_level = np.linspace(0.5, 6.0, n_skus)
    dates = [START + timedelta(days=t) for t in range(days)]
    dow = np.array([d.weekday() for d in dates])
    rows = []
    for i, s in enumerate(stores):
        for j, k in enumerate(skus):
            if (s, k) in skip:
                continue
            units = rng.poisson(store_scale[i] * sku_level[j] * WEEKLY[dow]).astype(float)
            out = rng.random(days) < stockout_share
            units[out] = 0.0
            on_hand = np.where(out, 0.0, 20.0)
            rows.append(
                pl.DataFrame({"date": dates, "store_id": s, "sku": k, "units": units, "on_hand": on_hand})
            )
    sales = pl.concat(rows).filter((pl.col("units") != 0) | (pl.col("on_hand") == 0))
    sales = sales.with_columns(revenue=pl.col("units") * 2.0, promo=pl.lit(False))
    store_df = pl.DataFrame(
        {
            "store_id": stores,
            "region": [f"R{i % 2}" for i in range(n_stores)],
            "state": "XX",
            "postal_code": [f"0{i % 2}000" for i in range(n_stores)],
        }
    )
    products = pl.DataFrame(
        {
            "sku": skus,
            "name": skus,
            "category": [f"C{j % 2}" for j in range(n_skus)],
            "regular_price": [2.0 + j for j in range(n_skus)],
        }
    )
    online = pl.DataFrame(
        {
            "order_id": [f"O{t}" for t in range(days)],
            "line_number": 1,
            "sku": skus[0],
            "units": 2.0,
            "revenue": 4.0,
            "ship_postal_code": "00000",
            "order_date": dates,
        }
    ).with_columns(pl.col("order_date").cast(pl.Datetime("us", "UTC")).alias("ordered_at"))
    carried = [(s, k) for s in stores for k in skus if (s, k) not in skip]
    return LakeTables(
        stores=_conform(store_df, CONTRACTS["stores"].schema),
        products=_conform(products, CONTRACTS["products"].schema),
        postal_regions=pl.DataFrame({"postal_code": ["00000", "01000"], "region": ["R0", "R1"]}),
        assortment=pl.DataFrame({"store_id": [p[0] for p in carried], "sku": [p[1] for p in carried]}),
        shelf_capacity=pl.DataFrame(schema=CONTRACTS["shelf_capacity"].schema),
        events=events if events is not None else pl.DataFrame(schema=CONTRACTS["events"].schema),
        store_sales=_conform(sales, LAKE_STORE_SALES).lazy(),
        online_orders=_conform(online, LAKE_ONLINE_ORDERS).lazy(),
    )
