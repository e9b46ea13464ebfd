"""Ingest + validate throughput and peak memory on a large drop, beside DuckDB in the same run.

    .venv/bin/python bench/ingest.py [--drop DIR] [--size large] [--work bench/_work/ingest]
                                     [--gx-import after|during]

Without --drop it generates the `large` demo (>= 10M store-sales rows). The drop's store_sales files
are loaded three ways, each in a fresh subprocess so peak memory (max RSS) is its own:
- localshelf: `ingest_drop` (parse, row rules, quarantine, dedupe against the lake, atomic commit) then
  `validate_lake` (Great Expectations: batches of whole partitions over what the load wrote, its
  rows handed over from memory (`keep_rows`), Data Docs written at the end; GX is imported in a
  thread from the moment every file is read (ingest_drop with keep_rows starts it, as in the flows)
  while the keys are checked, the commit syncs and the first batches are prepared, or with
  `--gx-import during` from the start, while the files are read). The time includes everything, Data Docs too;
  their share is printed on its own line, and the CPU seconds of ingest and validation on theirs;
- localshelf ingest alone (no Great Expectations), to show where the time goes;
- DuckDB: `COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)` over the same files (Parquet
  files of the drop through read_parquet), with DuckDB's default threads.
Online orders are left out so that both sides load the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory import peak_rss_mb  # noqa: E402


def _child(kind: str, drop: Path, target: Path, gx_import: str = "after") -> dict:
    """Run one loader in this (child) process; returns rows, seconds and peak RSS."""
    sys.path.insert(0, str(ROOT))
    start = time.perf_counter()
    cpu_start = time.process_time()
    if kind == "duckdb":
        import duckdb

        files = sorted((drop / "store_sales").iterdir())
        csvs = [str(f) for f in files if f.name.endswith((".csv", ".csv.gz"))]
        parquets = [str(f) for f in files if f.name.endswith(".parquet")]
        parts = []
        cols = "date, store_id, sku, units, revenue, on_hand, promo"
        if csvs:
            parts.append(
                f"SELECT {cols} FROM read_csv({csvs!r}, header=true, union_by_name=true, "
                "types={'store_id': 'VARCHAR', 'sku': 'VARCHAR'}, normalize_names=true)"
            )
        if parquets:
            parts.append(f"SELECT {cols} FROM read_parquet({parquets!r}, union_by_name=true)")
        con = duckdb.connect()
        target.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY ({' UNION ALL '.join(parts)}) TO '{target / 'store_sales.parquet'}' (FORMAT parquet)"
        )
        rows = con.execute(f"SELECT count(*) FROM '{target / 'store_sales.parquet'}'").fetchone()[0]
    else:
        from data_contracts.validate import preload_gx
        from flows.lake.ingest import ingest_drop
        from flows.lake.paths import LakePaths
        from flows.lake.validation import validate_lake
        from flows.settings import load_settings

        if kind == "localshelf" and gx_import == "during":
            preload_gx()  # imports while the files are read (else: validate_lake imports it)
        lake = LakePaths(target)
        with_gx = kind == "localshelf"  # the rows the load wrote go to GX from memory
        report = ingest_drop(drop, lake, load_settings(hmac_secret="bench"), keep_rows=with_gx)
        rows = report.tables["store_sales"]["rows_read"]
        stages = {"ingest": time.perf_counter() - start}
        cpu = {"ingest": time.process_time() - cpu_start}  # the whole process: every thread
        if kind == "localshelf":
            summary = validate_lake(lake, loaded=report)
            assert summary.success, summary.to_json()
            stages.update({f"gx_{k}": v for k, v in summary.timings_s.items()})
            cpu["validation"] = time.process_time() - cpu_start - cpu["ingest"]
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "peak_mb": round(peak_mb),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        **({"stages_s": {k: round(v, 2) for k, v in stages.items()}} if kind != "duckdb" else {}),
        **({"stages_cpu_s": {k: round(v, 2) for k, v in cpu.items()}} if kind != "duckdb" else {}),
    }


def _bench_drop(drop: Path, work: Path) -> Path:
    """A view of the drop without online orders (symlinks, nothing copied)."""
    view = work / "drop_store_sales_only"
    shutil.rmtree(view, ignore_errors=True)
    view.mkdir(parents=True)
    for item in drop.iterdir():
        if item.name != "online_orders":
            (view / item.name).symlink_to(item.resolve())
    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drop", type=Path, help="an existing drop (default: generate the large demo)")
    parser.add_argument("--size", default="large", choices=["small", "medium", "large"])
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "_work" / "ingest")
    parser.add_argument(
        "--gx-import",
        default="after",
        choices=["after", "during"],
        help="import GX in a thread once every file is read (as the flows do; default), or from the "
        "start, while the files are read",
    )
    parser.add_argument("--child", nargs=3, metavar=("KIND", "DROP", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, drop_dir, target = args.child
        print(json.dumps(_child(kind, Path(drop_dir), Path(target), args.gx_import)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    drop = args.drop
    if drop is None:
        sys.path.insert(0, str(ROOT))
        from flows.demo.generate import generate_demo

        start = time.perf_counter()
        drop = generate_demo(args.work / f"demo_{args.size}", size=args.size, seed=1).drop
        print(f"generated the {args.size} demo in {time.perf_counter() - start:.0f} s")
    view = _bench_drop(drop, args.work)
    size_mb = sum(f.stat().st_size for f in (drop / "store_sales").iterdir()) / 2**20
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"store_sales files: {len(list((drop / 'store_sales').iterdir()))}, {size_mb:,.0f} MB on disk")
    results = {}
    child_options = [f"--gx-import={args.gx_import}"]
    for kind in ("duckdb", "localshelf", "localshelf_no_gx"):
        target = args.work / f"out_{kind}"
        shutil.rmtree(target, ignore_errors=True)
        env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}
        proc = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(view), str(target), *child_options],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            print(f"{kind} failed:\n{proc.stderr[-3000:]}")
            continue
        results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[kind]
        print(
            f"{kind:18s} {r['rows']:>12,} rows  {r['seconds']:>8.1f} s  {r['rows_per_s']:>12,} rows/s  "
            f"peak {r['peak_mb']:>6,} MB  cpu {r['cpu_s']:>6.1f} s"
        )
        for stage, secs in r.get("stages_s", {}).items():
            print(f"{'':20s}{stage:24s} {secs:8.2f} s")
        for stage, secs in r.get("stages_cpu_s", {}).items():
            print(f"{'':20s}{stage + ' (CPU)':24s} {secs:8.2f} s")
    if "duckdb" in results and "localshelf" in results:
        duck, ours = results["duckdb"], results["localshelf"]
        docs = ours["stages_s"].get("gx_data_docs", 0.0)
        without = duck["seconds"] / (ours["seconds"] - docs)
        print(f"\nData Docs (inside the time above): {docs:.2f} s; without them {without:.2f}x DuckDB")
        print(f"CPU seconds: localshelf {ours['cpu_s']:.1f}, DuckDB {duck['cpu_s']:.1f}")
        ratio = ours["rows_per_s"] / duck["rows_per_s"]
        print(
            f"\nlocalshelf (with validation) runs at {ratio:.2f}x DuckDB's rows/s (goal >= 0.5); "
            f"peak {ours['peak_mb']:,} MB (goal < 4096)"
        )
    (args.work / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
