"""Map the real M5 subset (`../shared/data/m5_subset`) into a drop written to the input contract.

    .venv/bin/python bench/m5_drop.py OUT_DIR [--data DIR] [--end YYYY-MM-DD]

The mapping (what a data engineer would do with Walmart's M5 export):
- stores.csv: the 10 stores; region = state = the M5 state (CA, TX, WI): SNAP days, M5's regional
  event, are set per state. M5 publishes no store locations: postal_code is the store id, a stand-in.
- products.csv: sku = item_id, category = cat_id (FOODS, HOBBIES, HOUSEHOLD), subcategory = dept_id;
  name = item_id (M5 has no names); regular_price = the item's most common weekly shelf price over all
  stores and weeks (ties: the higher price).
- store_sales/: one Parquet file per calendar year, one row per store, item and day on which the item
  had a shelf price that week (M5 rows before an item was first priced are not on the shelf and are
  left out); units as in M5 and revenue = units x that week's `sell_price`. M5 has no stock levels,
  so no `on_hand` column: no day is known to be a stockout.
- assortment.csv: the pairs priced in the last week of the drop (what each store carries "today").
- events.csv: SNAP days as regional events (event_type `snap`, one event per run of consecutive SNAP
  days in a state, region = that state); M5's calendar events (event_name_1/2) chain-wide (region
  `ALL`), event_type = M5's type in lower case (`sporting`, `cultural`, `national`, `religious`),
  name = M5's event name, one day each. Events dated after the drop's last sales day are kept: they
  are the known calendar ahead (holidays and SNAP schedules are published in advance).

``write_m5_drop`` is the reusable entry point (bench/m5_subset.py and bench/m5_snap.py call it).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "m5_subset"
STATES = ("CA", "TX", "WI")


@dataclass(frozen=True)
class M5Frames:
    """The three M5 tables as read (sales, calendar, sell_prices), optionally cut at ``end``."""

    sales: pl.DataFrame
    calendar: pl.DataFrame
    sell_prices: pl.DataFrame


def read_m5(data: Path = DEFAULT_DATA, *, end: date | None = None, start: date | None = None) -> M5Frames:
    """Return the M5 subset's tables; sales after ``end`` and before ``start`` are dropped (the calendar
    is kept whole)."""
    sales = pl.read_parquet(data / "sales.parquet")
    if start is not None:
        sales = sales.filter(pl.col("date") >= start)
    if end is not None:
        sales = sales.filter(pl.col("date") <= end)
    return M5Frames(
        sales=sales,
        calendar=pl.read_parquet(data / "calendar.parquet"),
        sell_prices=pl.read_parquet(data / "sell_prices.parquet"),
    )


def priced_sales(m5: M5Frames) -> pl.DataFrame:
    """Return date, store_id, sku, units, revenue, sell_price: the sales rows of priced (shelf) weeks."""
    weeks = m5.calendar.select("date", "wm_yr_wk")
    return (
        m5.sales.join(weeks, on="date", how="left")
        .join(m5.sell_prices, on=["store_id", "item_id", "wm_yr_wk"], how="inner")
        .select(
            "date",
            "store_id",
            pl.col("item_id").alias("sku"),
            pl.col("units").cast(pl.Float64),
            (pl.col("units").cast(pl.Float64) * pl.col("sell_price")).round(2).alias("revenue"),
            "sell_price",
        )
        .sort("date", "store_id", "sku")
    )


def stores_frame(m5: M5Frames) -> pl.DataFrame:
    """Return stores.csv: store_id, region, state, postal_code (the store id: M5 has no locations)."""
    return (
        m5.sales.select("store_id", pl.col("state_id").alias("region"))
        .unique()
        .sort("store_id")
        .with_columns(pl.col("region").alias("state"), pl.col("store_id").alias("postal_code"))
    )


def products_frame(m5: M5Frames) -> pl.DataFrame:
    """Return products.csv: sku, name, category, subcategory, regular_price (modal shelf price)."""
    modal = (
        m5.sell_prices.group_by("item_id", "sell_price")
        .len()
        .sort(["item_id", "len", "sell_price"], descending=[False, True, True])
        .group_by("item_id", maintain_order=True)
        .first()
        .select("item_id", pl.col("sell_price").alias("regular_price"))
    )
    items = m5.sales.select("item_id", "cat_id", "dept_id").unique()
    return (
        items.join(modal, on="item_id", how="left")
        .select(
            pl.col("item_id").alias("sku"),
            pl.col("item_id").alias("name"),
            pl.col("cat_id").alias("category"),
            pl.col("dept_id").alias("subcategory"),
            pl.col("regular_price").fill_null(0.0),
        )
        .sort("sku")
    )


def events_frame(m5: M5Frames) -> pl.DataFrame:
    """Return events.csv: SNAP runs per state (regional) and M5 calendar events (chain-wide)."""
    cal = m5.calendar.sort("date")
    snap = []
    for state in STATES:
        days = cal.select("date", pl.col(f"snap_{state}").cast(pl.Boolean).alias("on"))
        runs = (
            days.with_columns((pl.col("on") != pl.col("on").shift(1)).fill_null(True).cum_sum().alias("run"))
            .filter(pl.col("on"))
            .group_by("run")
            .agg(pl.col("date").min().alias("start_date"), pl.col("date").max().alias("end_date"))
        )
        snap.append(
            runs.select(
                pl.format("snap_{}_{}", pl.lit(state), pl.col("start_date").dt.strftime("%Y%m%d")).alias(
                    "event_id"
                ),
                pl.lit("snap").alias("event_type"),
                pl.format("SNAP {}", pl.lit(state)).alias("name"),
                pl.lit(state).alias("region"),
                "start_date",
                "end_date",
            )
        )
    named = pl.concat(
        [
            cal.select("date", pl.col(f"event_name_{k}").alias("name"), pl.col(f"event_type_{k}").alias("t"))
            for k in (1, 2)
        ]
    ).drop_nulls("name")
    calendar_events = named.select(
        pl.format(
            "m5_{}_{}",
            pl.col("date").dt.strftime("%Y%m%d"),
            pl.col("name").str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "_"),
        ).alias("event_id"),
        pl.col("t").str.to_lowercase().alias("event_type"),
        "name",
        pl.lit("ALL").alias("region"),
        pl.col("date").alias("start_date"),
        pl.col("date").alias("end_date"),
    )
    return pl.concat([*snap, calendar_events]).sort("start_date", "event_id")


@dataclass(frozen=True)
class M5Drop:
    """Where a drop was written and what it holds."""

    path: Path
    first_date: date
    last_date: date
    sales_rows: int
    events: int


def write_m5_drop(
    out_dir: Path, *, data: Path = DEFAULT_DATA, end: date | None = None, start: date | None = None
) -> M5Drop:
    """Write the M5 subset (sales from ``start`` up to ``end``, default all) as a drop in ``out_dir``;
    return its summary. Files: stores.csv, products.csv, assortment.csv, events.csv, store_sales/*.parquet."""
    m5 = read_m5(data, end=end, start=start)
    out_dir = Path(out_dir)
    (out_dir / "store_sales").mkdir(parents=True, exist_ok=True)
    sales = priced_sales(m5)
    stores_frame(m5).write_csv(out_dir / "stores.csv")
    products_frame(m5).write_csv(out_dir / "products.csv")
    events = events_frame(m5)
    events.write_csv(out_dir / "events.csv")
    last = sales.get_column("date").max()
    last_week = sales.filter(pl.col("date") > last - pl.duration(days=7))
    last_week.select("store_id", "sku").unique().sort("store_id", "sku").write_csv(out_dir / "assortment.csv")
    facts = sales.drop("sell_price")
    for (year,), part in facts.group_by(pl.col("date").dt.year(), maintain_order=True):
        part.write_parquet(out_dir / "store_sales" / f"m5_{year}.parquet")
    return M5Drop(out_dir, sales.get_column("date").min(), last, sales.height, events.height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the drop folder to write")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the m5_subset folder")
    parser.add_argument("--end", type=date.fromisoformat, default=None, help="last sales date to keep")
    args = parser.parse_args(argv)
    drop = write_m5_drop(args.out, data=args.data, end=args.end)
    print(
        f"{drop.path}: store sales {drop.first_date} .. {drop.last_date}, "
        f"{drop.sales_rows:,} rows; {drop.events:,} event rows"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
