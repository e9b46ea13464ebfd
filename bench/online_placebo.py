"""The miner on real online orders: customers split into regions at random, where no region wants more.

    .venv/bin/python bench/online_placebo.py [--data DIR] [--seeds 3] [--regions 8] [--planted 20]
        [--event-regions 4] [--event-skus 300] [--skip-latent] [--skip-events]

Online Retail II (a UK wholesaler's web shop, 2009-2011) has no regions a chain would have, so the
bench makes some that mean nothing: every customer (a guest checkout's order) goes to one of the
placebo regions by a seeded hash. No region buys any SKU more than the others but by chance, and no
day is special to one region, so every regional pattern is false. Customer ids are hashed here and
never leave memory.

Latent demand (``--regions`` regions, no store carries anything). Then, on the same orders,
``--planted`` (region, SKU) pairs get real latent demand: a third of each SKU's lines from the other
regions are copied to the region as new guest orders (about 3x its share: more people in the region
buy it, each copied order a buyer of its own). Five tests, all at the miner's default margin
(``MiningSettings.min_latent_taste``), Benjamini-Hochberg at 0.05 over each run's hypotheses:

* before: the test up to 2026-12-07, units' ratio over 4-week blocks with a moderated cluster
  variance (``stats.moderated_ratio_test``);
* units one by one: ``latent_test`` on units, dispersion 1;
* units, buyers' lumps: ``latent_test`` on units with each SKU's units dispersion over its buyers;
* buyer-weeks: ``latent_test`` on buyers a week with their repeat weeks' dispersion (the miner's
  test from 2026-12-07 until the block count below);
* buyers a block: ``latent_test`` on the buyers of each 4-week block (a buyer who comes back within
  the block counts once) with their repeat blocks' dispersion, as the miner runs it
  (``models.mining.latent.latent_hypotheses``).

Printed per seed: hypotheses, false patterns (unplanted with q <= 0.05), the share of unplanted p-values
below 0.05 and 0.001 at margin 1 (calibrated: 5% and 0.1% or less), planted found.

The whole miner (``--event-regions`` regions, the ``--event-skus`` busiest SKUs). The miner needs a
store side; this shop has none, so each region gets one store whose sales of every SKU are Poisson
(2 a day) with no effect of anything: the online orders are the only real data. Two event types
nobody would expect an effect from: ``placebo_chain`` (ten chain-wide days at random) and
``placebo_regional`` (six two-day events at random per region). ``mine_patterns`` at ``min_lift``
1.0 with online demand counted as the miner counts it (buyers) and as it did until 2026-12-07
(units; the bench swaps ``daily_online_buyers`` for a units count in the modules that read it).
Printed per seed: patterns per kind, and the discovered windows (events nobody labeled).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_contracts.outputs import PATTERN_KINDS, conform  # noqa: E402
from data_contracts.schemas import CONTRACTS, FACT_SCHEMAS  # noqa: E402
from data_contracts.tables import LakeTables  # noqa: E402
from features.signals import (  # noqa: E402
    buyer_dispersion,
    daily_online_units,
    full_weeks,
    online_period_buyers,
    online_region_buyers,
    online_region_units,
)
from models.mining import discovery_rows, discovery_stores, patterns  # noqa: E402
from models.mining.latent import KEYS, latent_periods, latent_test  # noqa: E402
from models.mining.settings import MiningSettings  # noqa: E402
from models.mining.stats import BLOCK_WEEKS, moderated_ratio_test, week_block  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "online_retail_ii"
PRODUCT_CODE = r"^\d{5}"


def order_lines(raw: pl.DataFrame) -> pl.DataFrame:
    """Sale and return lines of products as the lake keeps them (customer_key hashed, order_date);
    an exact line exported twice is kept once, as ingest would."""
    return (
        raw.filter(pl.col("StockCode").str.contains(PRODUCT_CODE))
        .unique(
            ["Invoice", "StockCode", "Description", "Quantity", "Price", "InvoiceDate"],
            keep="first",
            maintain_order=True,
        )
        .select(
            pl.col("Invoice").alias("order_id"),
            pl.col("StockCode").alias("sku"),
            pl.col("Quantity").cast(pl.Float64).alias("units"),
            pl.col("InvoiceDate").dt.date().alias("order_date"),
            pl.col("Customer ID").hash(7).cast(pl.String).alias("customer_key"),
        )
    )


def placebo_regions(lines: pl.DataFrame, *, seed: int, regions: int) -> pl.DataFrame:
    """Each buyer (customer, else order) to a region by a seeded hash, as its ship_postal_code."""
    buyer = pl.coalesce("customer_key", "order_id")
    return lines.with_columns(("P" + (buyer.hash(seed) % regions).cast(pl.String)).alias("ship_postal_code"))


def plant(lines: pl.DataFrame, *, seed: int, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Copy a third of the other regions' lines of ``n`` SKUs (100-1,000 buyers) to one region each
    as new guest orders; returns the lines and the planted (region, sku)."""
    rng = np.random.default_rng(seed)
    buyers = pl.coalesce("customer_key", "order_id").n_unique().alias("buyers")
    sold = lines.filter(pl.col("units") > 0).group_by("sku").agg(buyers)
    skus = sold.filter(pl.col("buyers").is_between(100, 1000))["sku"].sort().to_numpy()
    regions = lines["ship_postal_code"].unique().sort().to_numpy()
    planted = pl.DataFrame({"region": rng.choice(regions, n), "sku": rng.choice(skus, n, replace=False)})
    others = (
        lines.join(planted, on="sku")
        .filter(pl.col("ship_postal_code") != pl.col("region"))
        .sort("order_id", "sku", "order_date", "units", "customer_key", nulls_last=True, maintain_order=True)
    )
    copies = others.filter(pl.Series(rng.random(others.height) < 1 / 3))
    copies = copies.with_columns(
        ("copy-" + pl.col("order_id")).alias("order_id"),
        pl.lit(None, dtype=pl.String).alias("customer_key"),  # each copied order a new buyer
        pl.col("region").alias("ship_postal_code"),
    ).drop("region")
    return pl.concat([lines, copies]), planted


def before_test(weekly: pl.DataFrame, margin: float) -> pl.DataFrame:
    """The test up to 2026-12-07: blocks' ratio, moderated cluster variance of units, t."""
    per_block = (
        weekly.with_columns(week_block())
        .group_by(*KEYS, "block")
        .agg(pl.col("observed").sum(), pl.col("expected").sum())
    )
    per_block = per_block.filter(pl.col("expected").sum().over(KEYS) > 0)
    tested = moderated_ratio_test(per_block, KEYS, family=["region"], alternative="greater")
    beyond = (np.log(tested["lift"].to_numpy()) - np.log(margin)) / tested["se_log"].to_numpy()
    return tested.select(*KEYS, pl.Series("p_value", stats.t.sf(beyond, tested["df"].to_numpy())))


def run(
    lines: pl.DataFrame, planted: pl.DataFrame, margins: tuple[float, ...]
) -> dict[str, list[pl.DataFrame]]:
    """Each test's p-values at each margin, with the q-value and whether the hypothesis was planted."""
    orders = lines.lazy()
    first, as_of = lines["order_date"].min(), lines["order_date"].max()
    postal = lines.select(pl.col("ship_postal_code").unique().alias("postal_code")).with_columns(
        pl.col("postal_code").alias("region")
    )
    units = online_region_units(orders, postal.lazy(), as_of=as_of).pipe(full_weeks, first=first, as_of=as_of)
    buyers = online_region_buyers(orders, postal.lazy(), as_of=as_of).pipe(
        full_weeks, first=first, as_of=as_of
    )
    in_blocks = online_period_buyers(orders, postal.lazy(), first=first, as_of=as_of, weeks=BLOCK_WEEKS)
    none_carried = pl.LazyFrame(schema={"region": pl.String, "sku": pl.String})
    weekly = latent_periods(units, none_carried).collect()
    weekly_buyers = latent_periods(buyers.rename({"buyers": "units"}), none_carried).collect()
    block_buyers = latent_periods(in_blocks.rename({"buyers": "units"}), none_carried).collect()
    lumps = buyer_dispersion(orders, as_of=as_of).collect()
    by_units = lumps.select("sku", dispersion="units_dispersion")
    by_weeks = lumps.select("sku", dispersion="repeat_dispersion")
    by_blocks = buyer_dispersion(orders, as_of=as_of, first=first, weeks=BLOCK_WEEKS).collect()
    by_blocks = by_blocks.select("sku", dispersion="repeat_dispersion")
    tests: dict[str, Callable[[float], pl.DataFrame]] = {
        "before": lambda m: before_test(weekly, m),
        "units one by one": lambda m: latent_test(weekly, min_weeks=8, margin=m),
        "units, buyers' lumps": lambda m: latent_test(weekly, min_weeks=8, margin=m, dispersion=by_units),
        "buyer-weeks": lambda m: latent_test(weekly_buyers, min_weeks=8, margin=m, dispersion=by_weeks),
        "buyers a block (the miner)": lambda m: latent_test(
            block_buyers, min_weeks=8, margin=m, dispersion=by_blocks
        ),
    }
    marks = planted.with_columns(pl.lit(True).alias("planted"))
    out: dict[str, list[pl.DataFrame]] = {}
    for name, test in tests.items():
        out[name] = []
        for margin in margins:
            tested = test(margin)
            q = stats.false_discovery_control(tested["p_value"].to_numpy())
            out[name].append(
                tested.with_columns(pl.Series("q", q))
                .join(marks, on=KEYS, how="left")
                .with_columns(pl.col("planted").fill_null(False))
            )
    return out


def placebo_tables(lines: pl.DataFrame, *, seed: int, regions: int, skus: int) -> LakeTables:
    """The ``skus`` busiest SKUs' orders in ``regions`` placebo regions, one store a region with
    Poisson(2) daily sales of each, and the two placebo event types (random days), as lake tables."""
    rng = np.random.default_rng(seed)
    orders = placebo_regions(lines, seed=seed, regions=regions)
    top = orders.filter(pl.col("units") > 0).group_by("sku").agg(pl.len()).sort("len", "sku", descending=True)
    busiest = top.head(skus)["sku"]
    orders = orders.filter(pl.col("sku").is_in(busiest.implode()))
    first, last = orders["order_date"].min(), orders["order_date"].max()
    names = sorted(orders["ship_postal_code"].unique().to_list())
    days = pl.date_range(first, last, "1d", eager=True)
    n = len(names) * len(busiest) * len(days)
    sales = pl.DataFrame(
        {
            "store_id": np.repeat([f"store-{r}" for r in names], len(busiest) * len(days)),
            "sku": np.tile(np.repeat(busiest.to_numpy(), len(days)), len(names)),
            "date": np.tile(days.to_numpy(), len(names) * len(busiest)),
            "units": rng.poisson(2.0, n).astype(float),
        }
    ).with_columns(pl.col("units").alias("revenue"), on_hand=pl.lit(20.0), promo=pl.lit(False))
    span = np.arange(30, (last - first).days - 5)

    def at(day: int, length: int) -> dict[str, object]:
        return {
            "start_date": first + timedelta(days=day),
            "end_date": first + timedelta(days=day + length - 1),
        }

    events = [
        {"event_id": f"chain-{i}", "event_type": "placebo_chain", "region": "ALL", **at(int(d), 1)}
        for i, d in enumerate(rng.choice(span, 10, replace=False))
    ] + [
        {"event_id": f"{r}-{i}", "event_type": "placebo_regional", "region": r, **at(int(d), 2)}
        for r in names
        for i, d in enumerate(rng.choice(span, 6, replace=False))
    ]
    online = orders.with_columns(
        pl.int_range(1, pl.len() + 1).over("order_id").alias("line_number"),
        pl.col("order_date").cast(pl.Datetime("us", "UTC")).alias("ordered_at"),
        pl.col("units").alias("revenue"),
    )
    refs = {
        "stores": pl.DataFrame(
            {"store_id": [f"store-{r}" for r in names], "region": names, "state": "XX", "postal_code": names}
        ),
        "products": pl.DataFrame({"sku": busiest, "name": busiest, "category": "all", "regular_price": 1.0}),
        "postal_regions": pl.DataFrame({"postal_code": names, "region": names}),
        "events": pl.DataFrame(events),
    }
    tables = {
        name: _as(refs.get(name), CONTRACTS[name].schema)
        for name in (
            "stores",
            "products",
            "postal_regions",
            "assortment",
            "shelf_capacity",
            "events",
            "must_carry",
        )
    }
    facts = {"store_sales": sales, "online_orders": online}
    return LakeTables(**tables, **{k: _as(v, FACT_SCHEMAS[k]).lazy() for k, v in facts.items()})


def _as(df: pl.DataFrame | None, schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema) if df is None else conform(df, schema).select(schema.names())


def _online_units(orders: pl.LazyFrame, postal_regions: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Online demand as units, in ``daily_online_buyers``' shape (the miner until 2026-12-07)."""
    return daily_online_units(orders, postal_regions, as_of=as_of).rename({"units": "buyers"})


def mine_placebo(tables: LakeTables, *, units: bool) -> pl.DataFrame:
    """``mine_patterns`` at min_lift 1.0, online demand in buyers (the miner) or in units (before)."""
    modules = (patterns, discovery_rows, discovery_stores)
    saved = [m.daily_online_buyers for m in modules]
    try:
        if units:
            for m in modules:
                m.daily_online_buyers = _online_units  # type: ignore[attr-defined]
        as_of = tables.store_sales.select(pl.col("date").max()).collect().item()
        return patterns.mine_patterns(tables, as_of=as_of, settings=MiningSettings(min_lift=1.0))
    finally:
        for m, f in zip(modules, saved, strict=True):
            m.daily_online_buyers = f  # type: ignore[attr-defined]


def latent_rows(lines: pl.DataFrame, args: argparse.Namespace) -> list[dict[str, object]]:
    margin = MiningSettings().min_latent_taste
    rows: list[dict[str, object]] = []
    for seed in range(args.seeds):
        started = time.perf_counter()
        regional = placebo_regions(lines, seed=seed, regions=args.regions)
        placebo = run(regional, pl.DataFrame(schema={"region": pl.String, "sku": pl.String}), (1.0, margin))
        with_planted = run(*plant(regional, seed=seed, n=args.planted), (margin,))
        for name, (at_one, at_margin) in placebo.items():
            planted = with_planted[name][0]
            rows.append(
                {
                    "seed": seed,
                    "test": name,
                    "hypotheses": at_margin.height,
                    "p<0.05 at 1": round(float((at_one["p_value"] < 0.05).mean()), 4),
                    "p<0.001 at 1": round(float((at_one["p_value"] < 0.001).mean()), 5),
                    "false patterns": int((at_margin["q"] <= 0.05).sum()),
                    f"planted found (of {args.planted})": planted.filter(
                        "planted", pl.col("q") <= 0.05
                    ).height,
                    "false with planted": planted.filter(~pl.col("planted"), pl.col("q") <= 0.05).height,
                }
            )
        print(f"latent, seed {seed}: {time.perf_counter() - started:.1f} s")
    return rows


def event_rows(lines: pl.DataFrame, args: argparse.Namespace) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for seed in range(args.seeds):
        tables = placebo_tables(lines, seed=seed, regions=args.event_regions, skus=args.event_skus)
        for units in (True, False):
            started = time.perf_counter()
            found = mine_placebo(tables, units=units)
            count = {k: found.filter(pl.col("kind") == k).height for k in PATTERN_KINDS}
            rows.append(
                {
                    "seed": seed,
                    "online demand": "units (before)" if units else "buyers (the miner)",
                    **count,
                    "discovered windows": found.filter(pl.col("kind") == "discovered_event")[
                        "event_id"
                    ].n_unique(),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--regions", type=int, default=8)
    parser.add_argument("--planted", type=int, default=20)
    parser.add_argument("--event-regions", type=int, default=4)
    parser.add_argument("--event-skus", type=int, default=300)
    parser.add_argument("--skip-latent", action="store_true")
    parser.add_argument("--skip-events", action="store_true")
    args = parser.parse_args(argv)
    path = args.data / "online_retail_ii.parquet"
    if not path.exists():
        print(f"no Online Retail II at {path}")
        return 1
    lines = order_lines(pl.read_parquet(path))
    print(f"{lines.height:,} product lines, {lines['sku'].n_unique():,} SKUs")
    pl.Config.set_tbl_rows(40)
    pl.Config.set_tbl_width_chars(220)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    if not args.skip_latent:
        print(f"Latent demand, margin {MiningSettings().min_latent_taste}:")
        print(pl.DataFrame(latent_rows(lines, args)))
    if not args.skip_events:
        print("The whole miner, placebo event types, min_lift 1.0 (patterns per kind):")
        print(pl.DataFrame(event_rows(lines, args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
