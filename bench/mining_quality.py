"""How well the miner recovers what the demo world planted, and how long mining takes.

    .venv/bin/python bench/mining_quality.py [--size medium] [--seed 42] [--min-lift 1.0] [--timing-only]
        [--save patterns.parquet]

``--size`` also takes ``STORESxSKUSxDAYS`` (e.g. ``24x240x450``): a world of another shape and history
length, for figures on a drop the method was not tuned on.

Builds the demo world in memory (the lake's schemas, no ingest), mines it with the default mining
settings (``--min-lift`` overrides the relevance filter; the goals hold at 1.0) and prints per kind:
patterns reported and planted, precision, recall and the median relative lift error of the recovered
ones; the patterns on the world's no-effect event types; and the mining time. ``--timing-only``
skips the comparison (for the large world); ``--save`` writes the patterns to a parquet file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flows.demo.generate import demo_lake_tables  # noqa: E402
from flows.demo.truth import mining_quality  # noqa: E402
from flows.demo.world import build_world  # noqa: E402
from models.mining.patterns import mine_patterns  # noqa: E402
from models.mining.settings import MiningSettings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--size", default="medium", help="small, medium, large or STORESxSKUSxDAYS (another shape of world)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--min-lift", type=float, default=None)
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--save", type=Path, default=None, help="write the patterns here (parquet)")
    args = parser.parse_args(argv)
    settings = MiningSettings() if args.min_lift is None else MiningSettings(min_lift=args.min_lift)
    started = time.perf_counter()
    tables = demo_lake_tables(size=args.size, seed=args.seed)
    built = time.perf_counter() - started
    as_of = tables.store_sales.select("date").max().collect().item()
    started = time.perf_counter()
    patterns = mine_patterns(tables, as_of=as_of, settings=settings)
    mined = time.perf_counter() - started
    rows = tables.store_sales.select("date").count().collect().item()
    print(f"demo {args.size} seed {args.seed}: {rows:,} store-sales rows (built in {built:.1f} s)")
    print(f"mining: {mined:.1f} s, {patterns.height} patterns (min_lift {settings.min_lift})")
    if args.save is not None:
        patterns.write_parquet(args.save)
    if args.timing_only:
        return 0
    quality = mining_quality(patterns, build_world(args.size, args.seed).truth)
    for key, value in quality.items():
        print(f"  {key:36s} {value:.3f}" if isinstance(value, float) else f"  {key:36s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
