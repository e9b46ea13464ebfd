"""Latent demand on real online orders: customers split into regions at random, where no region wants more.

    .venv/bin/python bench/latent_placebo.py [--data DIR] [--seeds 3] [--regions 8] [--planted 20]

Online Retail II (a UK wholesaler's web shop, 2009-2011) has no regions a chain would have, so the
bench makes some that mean nothing: every customer (a guest checkout's order) goes to one of
``--regions`` placebo regions by a seeded hash, and no store carries anything. No region buys any SKU
more than the others but by chance, so every latent demand pattern at the default margin is false.
Then, on the same orders, ``--planted`` (region, SKU) pairs get real latent demand: a third of each
SKU's lines from the other regions are copied to the region as new guest orders (about 3x its
share: more people in the region buy it, each copied order a buyer of its own). Four tests, all at
the miner's default margin (``MiningSettings.min_latent_taste``), Benjamini-Hochberg at 0.05 over
each run's hypotheses:

* before: the test up to 2026-12-07, units' ratio over 4-week blocks with a moderated cluster
  variance (``stats.moderated_ratio_test``);
* units one by one: ``latent_test`` on units, dispersion 1;
* units, buyers' lumps: ``latent_test`` on units with each SKU's units dispersion over its buyers;
* buyer-weeks: ``latent_test`` on buyers a week with their repeat weeks' dispersion, as the miner
  runs it (``models.mining.latent.latent_hypotheses``).

Printed per seed: hypotheses, false patterns (unplanted with q <= 0.05), the share of unplanted p-values
below 0.05 and 0.001 (calibrated: 5% and 0.1% or less), planted found. Customer ids are hashed here and
never leave memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.signals import (  # noqa: E402
    buyer_dispersion,
    full_weeks,
    online_region_buyers,
    online_region_units,
)
from models.mining.latent import KEYS, latent_test, latent_weekly  # noqa: E402
from models.mining.settings import MiningSettings  # noqa: E402
from models.mining.stats import moderated_ratio_test, week_block  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "online_retail_ii"
PRODUCT_CODE = r"^\d{5}"


def order_lines(raw: pl.DataFrame) -> pl.DataFrame:
    """Sale and return lines of products as the lake keeps them (customer_key hashed, order_date);
    an exact line exported twice is kept once, as ingest would."""
    return (
        raw.filter(pl.col("StockCode").str.contains(PRODUCT_CODE))
        .unique(["Invoice", "StockCode", "Description", "Quantity", "Price", "InvoiceDate"], keep="first")
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
    others = lines.join(planted, on="sku").filter(pl.col("ship_postal_code") != pl.col("region"))
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
    none_carried = pl.LazyFrame(schema={"region": pl.String, "sku": pl.String})
    weekly = latent_weekly(units, none_carried).collect()
    weekly_buyers = latent_weekly(buyers.rename({"buyers": "units"}), none_carried).collect()
    lumps = buyer_dispersion(orders, as_of=as_of).collect()
    by_units = lumps.select("sku", dispersion="units_dispersion")
    by_weeks = lumps.select("sku", dispersion="weeks_dispersion")
    tests: dict[str, Callable[[float], pl.DataFrame]] = {
        "before": lambda m: before_test(weekly, m),
        "units one by one": lambda m: latent_test(weekly, min_weeks=8, margin=m),
        "units, buyers' lumps": lambda m: latent_test(weekly, min_weeks=8, margin=m, dispersion=by_units),
        "buyer-weeks (the miner)": lambda m: latent_test(
            weekly_buyers, min_weeks=8, margin=m, dispersion=by_weeks
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--regions", type=int, default=8)
    parser.add_argument("--planted", type=int, default=20)
    args = parser.parse_args(argv)
    path = args.data / "online_retail_ii.parquet"
    if not path.exists():
        print(f"no Online Retail II at {path}")
        return 1
    margin = MiningSettings().min_latent_taste
    lines = order_lines(pl.read_parquet(path))
    print(f"{lines.height:,} product lines, {lines['sku'].n_unique():,} SKUs; margin {margin}")
    rows = []
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
        print(f"seed {seed}: {time.perf_counter() - started:.1f} s")
    pl.Config.set_tbl_rows(40)
    pl.Config.set_tbl_width_chars(200)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    print(pl.DataFrame(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
