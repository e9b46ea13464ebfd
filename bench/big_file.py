"""One 2 GB store-sales CSV, streamed into the lake in bounded memory.

    .venv/bin/python bench/big_file.py [--gb 2.0] [--work bench/_work/big_file]

Writes a drop whose store_sales/ holds a single CSV of about --gb gigabytes (daily rows for 150 stores
x 120 SKUs from 2000-01-01 on, written chunk by chunk), loads it with `ingest_drop` in a fresh
subprocess, and prints rows/s and the loader's peak memory (max RSS). The point: memory must not grow
with the size of a file (the reader streams batches; the merge works one monthly partition at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory import peak_rss_mb  # noqa: E402

STORES, SKUS = 150, 120


def write_drop(drop: Path, gigabytes: float, seed: int = 3) -> int:
    """Write the reference files and one big CSV; returns its data rows."""
    shutil.rmtree(drop, ignore_errors=True)
    (drop / "store_sales").mkdir(parents=True)
    stores = [f"{i:04d}" for i in range(1, STORES + 1)]
    skus = [f"{i:08d}" for i in range(1, SKUS + 1)]
    pl.DataFrame(
        {
            "store_id": stores,
            "region": [f"R{i % 6}" for i in range(STORES)],
            "state": "XX",
            "postal_code": [f"{i:05d}" for i in range(STORES)],
        }
    ).write_csv(drop / "stores.csv")
    pl.DataFrame(
        {
            "sku": skus,
            "name": [f"item {s}" for s in skus],
            "category": [f"c{i % 12}" for i in range(SKUS)],
            "regular_price": 2.5,
        }
    ).write_csv(drop / "products.csv")
    pl.DataFrame({"store_id": np.repeat(stores, SKUS), "sku": np.tile(skus, STORES)}).write_csv(
        drop / "assortment.csv"
    )
    rng = np.random.default_rng(seed)
    per_day = STORES * SKUS
    path, rows, day = drop / "store_sales" / "pos export 2000-2010 (full).csv", 0, date(2000, 1, 1)
    with path.open("wb") as out:
        header = True
        while path.stat().st_size < gigabytes * 2**30:
            days = np.array([day + timedelta(days=d) for d in range(30)], dtype="datetime64[D]")
            units = rng.poisson(3.0, size=per_day * len(days)).astype(np.int64)
            chunk = pl.DataFrame(
                {
                    "date": np.repeat(days, per_day),
                    "store_id": np.tile(np.repeat(stores, SKUS), len(days)),
                    "sku": np.tile(skus, STORES * len(days)),
                    "units": units,
                    "revenue": np.round(units * 2.5, 2),
                    "on_hand": rng.integers(0, 40, size=units.size),
                }
            )
            chunk.write_csv(out, include_header=header)
            out.flush()
            header, rows, day = False, rows + chunk.height, day + timedelta(days=30)
    return rows


def _child(drop: Path, lake: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from flows.lake.ingest import ingest_drop
    from flows.lake.paths import LakePaths
    from flows.settings import load_settings

    start = time.perf_counter()
    report = ingest_drop(drop, LakePaths(lake), load_settings())
    seconds = time.perf_counter() - start
    counts = report.tables["store_sales"]
    return {
        **counts,
        "seconds": round(seconds, 1),
        "rows_per_s": round(counts["rows_read"] / seconds),
        "peak_mb": round(peak_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "_work" / "big_file")
    parser.add_argument("--child", nargs=2, metavar=("DROP", "LAKE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(Path(args.child[0]), Path(args.child[1]))))
        return
    drop, lake = args.work / "drop", args.work / "lake"
    start = time.perf_counter()
    rows = write_drop(drop, args.gb)
    size = sum(f.stat().st_size for f in (drop / "store_sales").iterdir())
    print(f"wrote {rows:,} rows, {size / 2**30:.2f} GiB in one CSV in {time.perf_counter() - start:.0f} s")
    shutil.rmtree(lake, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(drop), str(lake)],
        capture_output=True,
        text=True,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"ingest failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rows_read"] == rows == result["rows_loaded"], result
    print(
        f"ingested {result['rows_loaded']:,} rows in {result['seconds']} s "
        f"({result['rows_per_s']:,} rows/s), peak memory {result['peak_mb']:,} MB"
    )
    (args.work / "results.json").write_text(json.dumps({"file_bytes": size, **result}, indent=2))


if __name__ == "__main__":
    main()
