"""Demo data with planted truth: a realistic retailer drop (input contract) and what was planted in it.

`generate_demo` writes ``root/drop`` (exactly the input contract, with the quirks real exports have: fact
files in a mix of CSV, gzip CSV and Parquet, a BOM, a mixed-case header, an extra column),
``root/truth.json`` (the planted patterns, outside the drop) and ``root/secret.txt`` (a random HMAC key).
`demo_lake_tables` builds the same world in memory, already in the lake's schemas, so model and mining
tests run without ingest. The world itself is built in `demo_world` / `demo_events` / `demo_facts`.
"""

from __future__ import annotations

import gzip
import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from data_contracts.privacy import customer_key
from data_contracts.schemas import (
    LAKE_ONLINE_ORDERS,
    LAKE_STORE_SALES,
    ONLINE_ORDERS,
    REFERENCE_TABLES,
    STORE_SALES,
)
from data_contracts.tables import LakeTables
from flows.demo.catalog import size_spec
from flows.demo.facts import online_orders, sales_block, store_batches, store_traffic
from flows.demo.world import World, build_world

SIZES = ("small", "medium", "large", "m5")  # or a "STORESxSKUSxDAYS" size: catalog.scaled_size
LOADED_AT = datetime(2025, 7, 1, 6, 0, tzinfo=UTC)  # the fixed lineage timestamp of demo_lake_tables
ISO_WITH_OFFSET = "%Y-%m-%dT%H:%M:%S%:z"
# store_sales half-years and online_orders years cycle through these (extension, quirk)
SALES_FORMATS = (("csv", "bom"), ("csv.gz", "mixed_case"), ("parquet", ""), ("csv", "extra_column"))
ORDERS_FORMATS = (("csv", ""), ("parquet", ""), ("csv.gz", ""))


@dataclass(frozen=True)
class DemoPaths:
    """Where a generated demo lives: root/drop/, root/truth.json, root/secret.txt."""

    root: Path
    drop: Path
    truth: Path
    secret: Path


@dataclass(frozen=True)
class FactFile:
    """One fact file of the drop: its table, path relative to the drop, rows and export quirk."""

    table: str
    path: str
    frame: pl.DataFrame
    quirk: str = ""


def _half_years(first: date, last: date) -> list[tuple[str, date, date]]:
    """Return (label, from, to-exclusive) half-years covering first..last, e.g. ("2024H1", ...)."""
    out = []
    for y in range(first.year, last.year + 1):
        for h, (a, b) in enumerate(((date(y, 1, 1), date(y, 7, 1)), (date(y, 7, 1), date(y + 1, 1, 1)))):
            if a <= last and b > first:
                out.append((f"{y}H{h + 1}", a, b))
    return out


def fact_files(world: World) -> Iterator[FactFile]:
    """Yield the drop's fact files: store sales per store batch and half-year, online orders per year.

    Store batches are generated one at a time, so memory stays bounded for the large world."""
    traffic = store_traffic(world)
    halves = _half_years(world.start, world.as_of)
    for b, pairs in enumerate(store_batches(world)):
        block = sales_block(world, b, pairs, traffic)
        for h, (label, lo, hi) in enumerate(halves):
            ext, quirk = SALES_FORMATS[h % len(SALES_FORMATS)]
            part = block.filter(pl.col("date").is_between(lo, hi, closed="left"))
            yield FactFile("store_sales", f"store_sales/pos_daily_{label}_part{b:02d}.{ext}", part, quirk)
        del block
    orders = online_orders(world)
    years = orders["ordered_at"].str.slice(0, 4)
    for i, year in enumerate(sorted(years.unique().to_list())):
        ext, quirk = ORDERS_FORMATS[i % len(ORDERS_FORMATS)]
        part = orders.filter(years == year)
        yield FactFile("online_orders", f"online_orders/web_orders_{year}.{ext}", part, quirk)


def _mixed_case(name: str) -> str:
    return "SKU" if name == "sku" else "_".join(w.capitalize() for w in name.split("_"))


def _write_fact(drop: Path, f: FactFile) -> None:
    """Write one fact file with its format and quirk (gzip without a timestamp: same seed, same bytes)."""
    path = drop / f.path
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = f.frame
    if f.quirk == "extra_column":  # a column the contract does not know: tolerated and reported
        frame = frame.with_columns(register_id=pl.format("R{}", (pl.int_range(pl.len()) % 12 + 1)))
    if path.suffix == ".parquet":  # a typed export: numbers as the contract's types
        schema = (STORE_SALES if f.table == "store_sales" else ONLINE_ORDERS).schema
        frame.with_columns(pl.col(c).cast(schema[c]) for c in ("units", "revenue")).write_parquet(path)
        return
    if f.quirk == "mixed_case":
        frame = frame.rename(_mixed_case)
    data = frame.write_csv().encode()
    if f.quirk == "bom":
        data = b"\xef\xbb\xbf" + data
    if path.name.endswith(".gz"):
        with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)


def _reference_frames(world: World) -> dict[str, pl.DataFrame]:
    return {c.name: getattr(world, c.name) for c in REFERENCE_TABLES}


def generate_demo(root: Path, *, size: str = "small", seed: int = 42) -> DemoPaths:
    """Write root/drop (exactly the input contract), root/truth.json (planted truth, OUTSIDE the drop)
    and root/secret.txt (a random HMAC key for hashing customer ids, hex, 64 chars). Returns the paths.

    An existing root/drop is replaced whole, so files of an earlier, bigger demo do not linger."""
    world = build_world(size, seed)
    root = Path(root)
    paths = DemoPaths(root, root / "drop", root / "truth.json", root / "secret.txt")
    if paths.drop.exists():
        shutil.rmtree(paths.drop)
    paths.drop.mkdir(parents=True)
    counts: dict[str, int] = {}
    for name, frame in _reference_frames(world).items():
        frame.write_csv(paths.drop / f"{name}.csv")
        counts[name] = frame.height
    files = []
    for f in fact_files(world):
        _write_fact(paths.drop, f)
        counts[f"{f.table}_rows"] = counts.get(f"{f.table}_rows", 0) + f.frame.height
        files.append({"path": f.path, "rows": f.frame.height, "quirk": f.quirk})
    truth = {**world.truth, "counts": counts, "files": files}
    paths.truth.write_text(json.dumps(truth, indent=2) + "\n")
    paths.secret.write_text(secrets.token_hex(32))
    return paths


def _lineage(frame: pl.DataFrame, path: str) -> pl.DataFrame:
    return frame.with_columns(
        _source_file=pl.lit(path),
        _source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
        _loaded_at=pl.lit(LOADED_AT, dtype=pl.Datetime("us", "UTC")),
    )


def _lake_orders(frame: pl.DataFrame, path: str, secret: str) -> pl.DataFrame:
    """Return online order lines in LAKE_ONLINE_ORDERS: keyed hash instead of customer_id, UTC time and
    the local business date (the date as written, in the line's own offset)."""
    ids = frame["customer_id"].drop_nulls().unique()
    keys = pl.DataFrame({"customer_id": ids, "customer_key": [customer_key(c, secret.encode()) for c in ids]})
    out = frame.join(keys, on="customer_id", how="left", maintain_order="left").with_columns(
        order_date=pl.col("ordered_at").str.slice(0, 10).str.to_date(),
        ordered_at=pl.col("ordered_at").str.to_datetime(ISO_WITH_OFFSET, time_zone="UTC"),
    )
    return _lineage(out, path).select(pl.col(c).cast(t) for c, t in LAKE_ONLINE_ORDERS.items())


def demo_lake_tables(
    *, size: str = "small", seed: int = 42, secret: str = "demo", unlabeled: bool = True
) -> LakeTables:
    """The same world built in memory, already in the LAKE schemas (localshelf/lake.py LakeTables;
    online_orders as data_contracts.schemas.LAKE_ONLINE_ORDERS with customer_key = HMAC-SHA256 hex of
    customer_id keyed by `secret` (null for guests), order_date = local date of ordered_at in its own
    offset, lineage columns filled with the file name / row number / a fixed timestamp). Lets model and
    mining tests run without ingest. Same seed -> same data. ``unlabeled=False``: the same world without
    its unlabeled events (flows.demo.unlabeled).

    Returns LakeTables with the reference tables in their contract schemas and the facts as LazyFrames
    (already in memory: meant for `small` and `medium`)."""
    size_spec(size)  # raises ValueError on an unknown size
    world = build_world(size, seed, unlabeled=unlabeled)
    sales: list[pl.DataFrame] = []
    orders: list[pl.DataFrame] = []
    for f in fact_files(world):
        if f.table == "store_sales":
            lake = _lineage(f.frame, f.path).select(pl.col(c).cast(t) for c, t in LAKE_STORE_SALES.items())
            sales.append(lake)
        else:
            orders.append(_lake_orders(f.frame, f.path, secret))
    return LakeTables(
        **_reference_frames(world),
        store_sales=pl.concat(sales).lazy(),
        online_orders=pl.concat(orders).lazy(),
    )
