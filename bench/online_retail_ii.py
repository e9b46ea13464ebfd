"""Map the real Online Retail II export into a drop, load it twice, and account for every line.

    .venv/bin/python bench/online_retail_ii.py [--data DIR] [--work DIR]

The mapping (what a data engineer would do with this export):
- order_id = Invoice; line_number = position of the line's first appearance in its invoice, counting
  distinct (StockCode, Description, Quantity, Price, InvoiceDate) lines, so an exact line exported twice
  gets the same key and is reported as a duplicate instead of being loaded twice;
- ordered_at = InvoiceDate as UK local time (Europe/London, GMT/BST) with its offset;
- units = Quantity, revenue = Quantity * Price (cancellations are negative lines);
- ship_postal_code = Country (the export's only ship-to field), mapped 1:1 to a region;
- customer_id = Customer ID, empty for guest checkouts (hashed at ingest, never stored in clear);
- products.csv holds the stock codes that look like products (start with five digits); postage, manual
  adjustments, bank charges and the like (POST, M, D, BANK CHARGES, ...) are not products, so their lines
  are quarantined as unknown SKUs — visible, counted, not silently dropped;
- the two source sheets become two files (a CSV and a gzip CSV); they overlap in December 2010.
The store side of the drop is empty (this retailer has no stores): one placeholder store, no sales rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory import peak_rss_mb  # noqa: E402
from flows.lake.ingest import ingest_drop  # noqa: E402
from flows.lake.paths import LakePaths  # noqa: E402
from flows.settings import load_settings  # noqa: E402

PRODUCT_CODE = r"^\d{5}"


def orders_frame(raw: pl.DataFrame) -> pl.DataFrame:
    """Order lines in the input contract's columns (all strings, as a CSV export would hold them)."""
    line_key = ["StockCode", "Description", "Quantity", "Price", "InvoiceDate"]
    first_seen = (
        raw.with_row_index("_pos")
        .group_by(["Invoice", *line_key], maintain_order=True)
        .agg(pl.col("_pos").min())
        .with_columns(pl.col("_pos").rank("ordinal").over("Invoice").alias("line_number"))
        .drop("_pos")
    )
    local = pl.col("InvoiceDate").dt.replace_time_zone(
        "Europe/London", ambiguous="earliest", non_existent="null"
    )
    return raw.join(first_seen, on=["Invoice", *line_key], how="left", nulls_equal=True).select(
        pl.col("Invoice").alias("order_id"),
        pl.col("line_number"),
        local.dt.strftime("%Y-%m-%dT%H:%M:%S%:z").alias("ordered_at"),
        pl.col("StockCode").alias("sku"),
        pl.col("Quantity").alias("units"),
        (pl.col("Quantity") * pl.col("Price")).round(2).alias("revenue"),
        pl.col("Country").alias("ship_postal_code"),
        pl.col("Customer ID").cast(pl.String).fill_null("").alias("customer_id"),
        pl.col("source_sheet"),
    )


def write_drop(raw: pl.DataFrame, drop: Path) -> dict[str, int]:
    """Write the drop; returns the lines written per orders file."""
    shutil.rmtree(drop, ignore_errors=True)
    (drop / "store_sales").mkdir(parents=True)
    (drop / "online_orders").mkdir(parents=True)
    products = (
        raw.filter(pl.col("StockCode").str.contains(PRODUCT_CODE))
        .group_by("StockCode")
        .agg(
            pl.col("Description").drop_nulls().mode().first().fill_null("unnamed").alias("name"),
            pl.col("Price").filter(pl.col("Price") > 0).median().fill_null(0).alias("regular_price"),
        )
        .select(
            pl.col("StockCode").alias("sku"), "name", pl.lit("giftware").alias("category"), "regular_price"
        )
        .sort("sku")
    )
    products.write_csv(drop / "products.csv")
    countries = raw.select(pl.col("Country").unique().sort())
    countries.select(pl.col("Country").alias("postal_code"), pl.col("Country").alias("region")).write_csv(
        drop / "postal_regions.csv"
    )
    pl.DataFrame(
        {
            "store_id": ["0001"],
            "region": ["United Kingdom"],
            "state": ["ENG"],
            "postal_code": ["United Kingdom"],
        }
    ).write_csv(drop / "stores.csv")
    pl.DataFrame(schema={"store_id": pl.String, "sku": pl.String}).write_csv(drop / "assortment.csv")
    pl.DataFrame(
        schema={
            "date": pl.String,
            "store_id": pl.String,
            "sku": pl.String,
            "units": pl.String,
            "revenue": pl.String,
        }
    ).write_csv(drop / "store_sales" / "none.csv")
    orders = orders_frame(raw)
    counts = {}
    for sheet, part in orders.partition_by("source_sheet", as_dict=True).items():
        name = f"online_retail_{sheet[0]}.csv"
        path = drop / "online_orders" / name
        part.drop("source_sheet").write_csv(path)
        if sheet[0].startswith("2010-2011"):
            import gzip

            with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            path.unlink()
            name += ".gz"
        counts[name] = part.height
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "online_retail_ii")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "_work" / "online_retail_ii")
    args = parser.parse_args()
    source = args.data / "online_retail_ii.parquet"
    if not source.exists():
        sys.exit(f"no data at {source}: pass --data DIR")
    # Stock codes carry stray spaces ("47503J " and "47503J"); identifiers are trimmed at ingest, so
    # the product list is built from trimmed codes too.
    raw = pl.read_parquet(source).with_columns(pl.col("StockCode").str.strip_chars())
    drop, lake = args.work / "drop", LakePaths(args.work / "lake")
    shutil.rmtree(lake.root, ignore_errors=True)
    written = write_drop(raw, drop)
    print(f"export lines: {raw.height:,}; drop files: {written}")
    settings = load_settings(hmac_secret=os.environ.get("LOCALSHELF_HMAC_SECRET", "bench-secret"))
    results = {}
    for attempt in ("first load", "re-run"):
        start = time.perf_counter()
        report = ingest_drop(drop, lake, settings)
        seconds = time.perf_counter() - start
        orders = report.tables["online_orders"]
        results[attempt] = {
            "seconds": round(seconds, 2),
            **orders,
            "quarantine_reasons": report.quarantine_reasons,
        }
        print(f"\n{attempt}: {seconds:.1f} s, {orders['rows_read'] / seconds:,.0f} lines/s")
        for key in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "rows_corrected"):
            print(f"  {key:17s} {orders.get(key, 0):>10,}")
        for reason, n in sorted(report.quarantine_reasons.items(), key=lambda kv: -kv[1]):
            print(f"  quarantined: {n:>8,}  {reason}")
        assert (
            orders["rows_read"]
            == orders["rows_loaded"] + orders["rows_quarantined"] + orders["rows_duplicate"]
        )
    assert results["first load"]["rows_read"] == raw.height, "every export line is read"
    assert results["re-run"]["rows_loaded"] == 0, "the re-run loads nothing"
    quarantine = pl.read_parquet(lake.table("quarantine") / "**" / "*.parquet")
    top = (
        quarantine.with_columns(pl.col("raw").str.json_path_match("$.sku").alias("sku"))
        .group_by("rule", "sku")
        .len()
        .sort("len", descending=True)
        .head(10)
    )
    print("\nmost quarantined codes over both loads (rule, sku, lines):")
    for rule, sku, n in top.rows():
        print(f"  {rule}: {sku!r} x {n:,}")
    peak_mb = peak_rss_mb()
    print(f"\npeak memory (max RSS): {peak_mb:,.0f} MB")
    (args.work / "results.json").write_text(json.dumps({**results, "peak_rss_mb": round(peak_mb)}, indent=2))


if __name__ == "__main__":
    main()
