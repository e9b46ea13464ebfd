"""How well the miner discovers the events nobody labeled, and what the scan costs.

    .venv/bin/python bench/discovery.py [--size medium] [--seeds 42,7,11] [--cards] [--timing-size large]

Per seed, builds the demo world in memory (the lake's schemas, no ingest) with its planted unlabeled
events and again without them (``demo_lake_tables(unlabeled=False)``: the same world otherwise), runs
the discovery scan (``models.mining.discovery_rows.discovered_event_rows``) and prints against the
planted truth: windows found and planted, recall and precision of the windows (a match overlaps the
planted window within two days, same region or ``ALL``), the mean SKU-set Jaccard of the matches,
and the windows reported on the world without unlabeled events (goal 0). Seeds other than the
demo's 42 are worlds the method was never tuned on. ``--cards`` runs the whole miner on the first
seed and prints each window's card (the resemblance needs the mined event types).
``--timing-size large`` times the whole miner (``mine_patterns``, discovery included) on that world
and the discovery scan alone, so the share discovery adds shows. ``--no-store-check`` scores the
scan without its store-by-store check (``DiscoverySettings.store_check``; the timing's miner keeps it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from flows.demo.generate import demo_lake_tables  # noqa: E402
from flows.demo.unlabeled import discovery_quality  # noqa: E402
from flows.demo.world import build_world  # noqa: E402
from models.mining.discovery import DiscoverySettings  # noqa: E402
from models.mining.discovery_rows import NO_PATTERNS, discovered_event_rows  # noqa: E402
from models.mining.patterns import mine_patterns  # noqa: E402
from models.mining.settings import MiningSettings  # noqa: E402

SETTINGS = DiscoverySettings()


def _discover(size: str, seed: int, *, unlabeled: bool) -> tuple[pl.DataFrame, float]:
    tables = demo_lake_tables(size=size, seed=seed, unlabeled=unlabeled)
    as_of = tables.store_sales.select(pl.col("date").max()).collect().item()
    started = time.perf_counter()
    rows = discovered_event_rows(tables, as_of=as_of, mined=NO_PATTERNS, settings=SETTINGS)
    return rows, time.perf_counter() - started


def quality(size: str, seeds: list[int]) -> None:
    print(
        f"{'seed':>5} {'planted':>7} {'found':>5} {'recall':>6} {'precision':>9} {'jaccard':>7} "
        f"{'without':>7} {'scan_s':>6}"
    )
    for seed in seeds:
        truth = build_world(size, seed).truth["discovered_event"]
        rows, took = _discover(size, seed, unlabeled=True)
        q = discovery_quality(rows, truth)
        plain, _ = _discover(size, seed, unlabeled=False)
        print(
            f"{seed:>5} {q['planted']:>7} {q['found']:>5} {q['recall']:>6.2f} {q['precision']:>9.2f} "
            f"{q['sku_jaccard']:>7.2f} {plain['event_id'].n_unique():>7} {took:>6.1f}"
        )
        for m in q["missed"]:
            print(
                f"      missed {m['region']} {m['window_start']}..{m['window_end']} {m['label']} "
                f"({len(m['skus'])} SKUs)"
            )


def cards(size: str, seed: int) -> None:
    tables = demo_lake_tables(size=size, seed=seed)
    as_of = tables.store_sales.select(pl.col("date").max()).collect().item()
    patterns = mine_patterns(tables, as_of=as_of, settings=MiningSettings())
    found = patterns.filter(pl.col("kind") == "discovered_event").unique("event_id").sort("window_start")
    for text in found["explanation"]:
        print(f"  {text}")
    planted = {
        (p["region"], p["window_start"]): p["label"]
        for p in build_world(size, seed).truth["discovered_event"]
    }
    print(f"  planted: {sorted(planted.items())}")


def timing(size: str, seed: int) -> None:
    started = time.perf_counter()
    tables = demo_lake_tables(size=size, seed=seed)
    built = time.perf_counter() - started
    as_of = tables.store_sales.select(pl.col("date").max()).collect().item()
    started = time.perf_counter()
    patterns = mine_patterns(tables, as_of=as_of, settings=MiningSettings())
    mined = time.perf_counter() - started
    started = time.perf_counter()
    discovered_event_rows(tables, as_of=as_of, mined=NO_PATTERNS, settings=SETTINGS)
    scan = time.perf_counter() - started
    rows = tables.store_sales.select(pl.len()).collect().item()
    print(f"demo {size} seed {seed}: {rows:,} store-sales rows (built in {built:.1f} s)")
    print(f"mine_patterns with discovery: {mined:.1f} s ({patterns.height} patterns)")
    print(
        f"discovery scan alone: {scan:.1f} s -> mining without it ~{mined - scan:.1f} s, "
        f"ratio {mined / max(mined - scan, 1e-9):.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="medium")
    parser.add_argument("--seeds", default="42,7,11")
    parser.add_argument("--cards", action="store_true")
    parser.add_argument("--timing-size", default=None)
    parser.add_argument("--no-store-check", action="store_true", help="Leave out the store-by-store check.")
    args = parser.parse_args(argv)
    if args.no_store_check:
        global SETTINGS
        SETTINGS = DiscoverySettings(store_check=False)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if seeds:
        quality(args.size, seeds)
    if args.cards:
        cards(args.size, seeds[0] if seeds else 42)
    if args.timing_size:
        timing(args.timing_size, 42)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
