"""SNAP on real Walmart data (M5 subset): does the miner find food-stamp days where they are, and
nothing where they are not?

    .venv/bin/python bench/m5_snap.py [--data ../shared/data/m5_subset] [--min-lift 1.0]

The M5 subset mapped as a new user would: states as regions, each store's priced sales as store
sales, items as SKUs (category = cat_id), each state's SNAP days as one-day regional ``snap``
events, and the same days moved 14 days later as a placebo type ``snap_placebo`` (no online orders,
no stock levels). SNAP benefits buy food only, so FOODS should rise most in every state, and the
shifted days should show nothing.

Prints (1) per state and category the SNAP lift (total demand on SNAP days / the counterfactual),
pooled over the category's items, with its 95% interval over SNAP clusters, for both types; (2) the
significant patterns the miner reports (all kinds, BH over every hypothesis) per type, state and
category; (3) the verdict: in how many states FOODS leads, how many placebo patterns; and the time.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data_contracts.schemas import CONTRACTS, LAKE_ONLINE_ORDERS, LAKE_STORE_SALES  # noqa: E402
from data_contracts.tables import LakeTables  # noqa: E402
from features.signals import clean_store_sales, daily_panel, event_days  # noqa: E402
from models.mining.event_design import build_design  # noqa: E402
from models.mining.event_uplift import counterfactuals, usable_instances, window_cells  # noqa: E402
from models.mining.patterns import mine_patterns  # noqa: E402
from models.mining.settings import MiningSettings  # noqa: E402
from models.mining.stats import clustered_ratio_test  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "m5_subset"
STATES = ("CA", "TX", "WI")
PLACEBO_SHIFT_DAYS = 14


def conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``df`` with exactly the columns of ``schema`` (nulls where it has none)."""
    return df.select(
        pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c) for c, t in schema.items()
    )


def snap_events(calendar: pl.DataFrame) -> pl.DataFrame:
    """One-day ``snap`` events per state and SNAP day, and ``snap_placebo`` 14 days later."""
    frames = []
    for state in STATES:
        days = calendar.filter(pl.col(f"snap_{state}") == 1).select("date")
        for etype, shift in (("snap", 0), ("snap_placebo", PLACEBO_SHIFT_DAYS)):
            day = pl.col("date") + timedelta(days=shift)
            frames.append(
                days.select(
                    pl.format("{}_{}_{}", pl.lit(etype), pl.lit(state), day.dt.strftime("%Y%m%d")).alias(
                        "event_id"
                    ),
                    pl.lit(etype).alias("event_type"),
                    pl.lit(f"{etype} {state}").alias("name"),
                    pl.lit(state).alias("region"),
                    day.alias("start_date"),
                    day.alias("end_date"),
                )
            )
    return pl.concat(frames)


def m5_tables(data: Path) -> LakeTables:
    """The M5 subset as the lake's tables (sales in weeks with a shelf price: the item was on sale)."""
    sales = pl.read_parquet(data / "sales.parquet")
    calendar = pl.read_parquet(data / "calendar.parquet")
    prices = pl.read_parquet(data / "sell_prices.parquet")
    priced = sales.join(calendar.select("date", "wm_yr_wk"), on="date").join(
        prices, on=["store_id", "item_id", "wm_yr_wk"]
    )
    store_sales = priced.select(
        "date",
        "store_id",
        pl.col("item_id").alias("sku"),
        pl.col("units").cast(pl.Float64),
        (pl.col("units") * pl.col("sell_price")).alias("revenue"),
    )
    stores = sales.select("store_id", pl.col("state_id").alias("region")).unique().sort("store_id")
    products = (
        sales.select(pl.col("item_id").alias("sku"), pl.col("cat_id").alias("category"), "dept_id")
        .unique()
        .with_columns(
            pl.col("sku").alias("name"),
            pl.col("dept_id").alias("subcategory"),
            pl.lit(1.0).alias("regular_price"),
        )
    )
    last_week = priced["wm_yr_wk"].max()
    assortment = (
        priced.filter(pl.col("wm_yr_wk") == last_week)
        .select("store_id", pl.col("item_id").alias("sku"))
        .unique()
    )
    stores = stores.with_columns(pl.col("region").alias("state"), pl.col("store_id").alias("postal_code"))
    return LakeTables(
        stores=conform(stores, CONTRACTS["stores"].schema),
        products=conform(products, CONTRACTS["products"].schema),
        postal_regions=conform(stores.select("postal_code", "region"), CONTRACTS["postal_regions"].schema),
        assortment=conform(assortment, CONTRACTS["assortment"].schema),
        shelf_capacity=pl.DataFrame(schema=CONTRACTS["shelf_capacity"].schema),
        events=conform(snap_events(calendar), CONTRACTS["events"].schema),
        store_sales=conform(store_sales, LAKE_STORE_SALES).lazy(),
        online_orders=pl.DataFrame(schema=LAKE_ONLINE_ORDERS).lazy(),
    )


def category_lifts(tables: LakeTables, settings: MiningSettings) -> pl.DataFrame:
    """Per event type, state and category: lift over the [start, end] window with its interval."""
    as_of = tables.store_sales.select(pl.col("date").max()).collect().item()
    sales = clean_store_sales(tables.store_sales, tables.stores.lazy(), as_of=as_of)
    first = sales.select(pl.col("date").min()).collect().item()
    regions = tables.stores.lazy().select("region")
    instances = usable_instances(tables.events.lazy(), regions, first=first, as_of=as_of, settings=settings)
    days = event_days(
        instances, cluster_gap_days=settings.event_cluster_gap_days, after_days=settings.event_after_days
    )
    panel, parts = daily_panel(sales, None, as_of=as_of)
    panel_df, parts_df, days_df = pl.collect_all([panel, parts, days])
    design = build_design(panel_df, parts_df, days_df, first=first, block_days=settings.event_block_days)
    cells = window_cells(design, counterfactuals(design)).filter(pl.col("offset") >= 0)
    per_cluster = (
        cells.join(tables.products.select("sku", "category"), on="sku")
        .group_by("event_type", "region", "category", "cluster")
        .agg(pl.col("observed").sum(), pl.col("expected").sum())
    )
    return clustered_ratio_test(per_cluster, ["event_type", "region", "category"])


def m5_parser(description: str) -> argparse.ArgumentParser:
    """The M5 mining benches' common options: --data (the subset) and --min-lift."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--min-lift", type=float, default=1.0)
    return parser


def m5_setup(args: argparse.Namespace) -> tuple[LakeTables, MiningSettings] | None:
    """The subset's tables and the mining settings, or None (with a message) without the data."""
    if not (args.data / "sales.parquet").exists():
        print(f"no M5 subset at {args.data}")
        return None
    return m5_tables(args.data), MiningSettings(min_lift=args.min_lift)


def main(argv: list[str] | None = None) -> int:
    args = m5_parser(__doc__.split("\n")[0]).parse_args(argv)
    setup = m5_setup(args)
    if setup is None:
        return 1
    tables, settings = setup
    as_of = tables.store_sales.select(pl.col("date").max()).collect().item()
    started = time.perf_counter()
    patterns = mine_patterns(tables, as_of=as_of, settings=settings)
    mined = time.perf_counter() - started
    lifts = category_lifts(tables, settings)
    pl.Config.set_tbl_rows(40)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    print("Lift on the event days, pooled over each category's items (95% CI over SNAP clusters):")
    print(
        lifts.sort("event_type", "region", "category").select(
            "event_type",
            "region",
            "category",
            pl.col("lift").round(3),
            pl.col("ci_low").round(3),
            pl.col("ci_high").round(3),
            pl.col("p_value").round(4),
            pl.col("support").alias("clusters"),
        )
    )
    events = patterns.filter(pl.col("kind") == "event_uplift").join(
        tables.products.select("sku", pl.col("category").alias("cat")), on="sku"
    )
    print(f"\nSignificant event patterns (min_lift {settings.min_lift}, q <= {settings.fdr_alpha}):")
    print(
        events.group_by("event_type", "region", "cat")
        .agg(pl.len().alias("patterns"), pl.col("lift").median().round(3).alias("median_lift"))
        .sort("event_type", "region", "cat")
    )
    snap = lifts.filter(pl.col("event_type") == "snap")
    leaders = snap.sort("lift", descending=True).group_by("region", maintain_order=True).first()
    foods_lead = leaders.filter(pl.col("category") == "FOODS").height
    placebo = events.filter(pl.col("event_type") == "snap_placebo").height
    counts = events.filter(pl.col("event_type") == "snap").group_by("region", "cat").len()
    top = counts.sort("len", descending=True).group_by("region", maintain_order=True).first()
    print(
        f"\nFOODS has the largest SNAP lift in {foods_lead}/{len(STATES)} states; the most SNAP patterns in "
        f"{top.filter(pl.col('cat') == 'FOODS').height}/{len(STATES)}; placebo patterns: {placebo}; "
        f"mining {mined:.1f} s ({patterns.height} patterns of all kinds)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
