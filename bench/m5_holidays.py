"""Chain-wide holidays on real Walmart data (M5 subset): placebo holidays must give no pattern.

    .venv/bin/python bench/m5_holidays.py [--data ../shared/data/m5_subset] [--shifts 7,14,21,28,-14]
        [--random-seeds 3] [--min-lift 1.0]

Chain-wide events have no control region on their days: their counterfactual is the SKU's own block
level, drift, weekday and day of month, and nothing sees a day that moved the whole chain. So the
M5 subset (28 items in 10 stores of CA, TX and WI, 2011-2016) is mapped as a category manager would
label it: each of M5's 30 calendar holidays (``event_name_1`` / ``_2``: Super Bowl, Easter, Memorial
Day, Independence Day, Thanksgiving, ...) is an event type of its own, chain-wide (region ``ALL``),
one day each; SNAP is left out (``bench/m5_snap.py`` judges it). Two kinds of placebo are added, one
run each:

* shifted: every holiday again ``--shifts`` days later (or earlier) as a type of its own
  (``memorialday_p21``), 30 placebo types beside the 30 real ones. A shifted holiday falls on the
  same calendar weeks every year and often next to another holiday (Memorial Day + 21 is a week
  before Father's Day, Father's Day + 14 is the run-up to Independence Day), so it is the hard case:
  a holiday's effect that starts earlier than the lead days, or an item's step at the same point of
  every year, is demand on those days all the same.
* random: three placebo types of 30 days each drawn at random over the history (``--random-seeds``
  runs): days no calendar ties together, the clean null.

The first run has the real holidays alone (what a user's own calendar gives). Prints per run the
placebo patterns (the goal is 0) and the real holidays' patterns, each as event type, region, SKU,
support (clusters), lift, q; then a summary line per run; and the time.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.m5_snap import conform, m5_parser, m5_setup  # noqa: E402
from data_contracts.schemas import CONTRACTS  # noqa: E402
from data_contracts.tables import LakeTables  # noqa: E402
from models.mining.patterns import mine_patterns  # noqa: E402
from models.mining.settings import MiningSettings  # noqa: E402

PLACEBO = r"(_p-?\d+|^placebo_random\d+)$"  # a placebo type's name
RANDOM_TYPES, RANDOM_DAYS = 3, 30


def holidays(calendar: pl.DataFrame) -> pl.DataFrame:
    """M5's calendar holidays, one row a day: date, event_type (the holiday's name in snake case)."""
    named = pl.concat(
        [calendar.select("date", pl.col(f"event_name_{k}").alias("name")) for k in (1, 2)]
    ).drop_nulls()
    slug = pl.col("name").str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "_").str.strip_chars("_")
    return named.select("date", slug.alias("event_type"))


def _events(days: pl.DataFrame) -> pl.DataFrame:
    """One-day chain-wide events of the input contract from (date, event_type) rows."""
    return conform(
        days.select(
            pl.format("{}_{}", pl.col("event_type"), pl.col("date").dt.strftime("%Y%m%d")).alias("event_id"),
            "event_type",
            pl.col("event_type").alias("name"),
            pl.lit("ALL").alias("region"),
            pl.col("date").alias("start_date"),
            pl.col("date").alias("end_date"),
        ),
        CONTRACTS["events"].schema,
    )


def shifted(real: pl.DataFrame, days: int) -> pl.DataFrame:
    """Every holiday again ``days`` later as ``<type>_p<days>``."""
    return real.select(pl.col("date") + timedelta(days=days), pl.col("event_type") + pl.lit(f"_p{days}"))


def at_random(calendar: pl.DataFrame, seed: int) -> pl.DataFrame:
    """``RANDOM_TYPES`` placebo types of ``RANDOM_DAYS`` days each, drawn without pattern."""
    rng = np.random.default_rng(seed)
    dates = calendar["date"].to_numpy()
    return pl.concat(
        pl.DataFrame(
            {
                "date": np.sort(rng.choice(dates, RANDOM_DAYS, replace=False)),
                "event_type": f"placebo_random{i}",
            }
        )
        for i in range(RANDOM_TYPES)
    )


def run(tables: LakeTables, events: pl.DataFrame, settings: MiningSettings) -> tuple[pl.DataFrame, float]:
    """The event patterns mined with these events, and the mining time."""
    with_events = replace(tables, events=_events(events))
    as_of = tables.store_sales.select(pl.col("date").max()).collect().item()
    started = time.perf_counter()
    patterns = mine_patterns(with_events, as_of=as_of, settings=settings)
    took = time.perf_counter() - started
    found = patterns.filter(pl.col("kind") == "event_uplift").with_columns(
        pl.col("event_type").str.contains(PLACEBO).alias("placebo")
    )
    return found, took


def main(argv: list[str] | None = None) -> int:
    parser = m5_parser(__doc__.split("\n")[0])
    parser.add_argument("--shifts", default="7,14,21,28,-14")
    parser.add_argument("--random-seeds", type=int, default=3)
    args = parser.parse_args(argv)
    setup = m5_setup(args)
    if setup is None:
        return 1
    tables, settings = setup
    calendar = pl.read_parquet(args.data / "calendar.parquet")
    real = holidays(calendar)
    shifts = [int(s) for s in args.shifts.split(",")] if args.shifts else []
    runs = [("holidays only", real)]
    runs += [(f"shift {s:+d}", pl.concat([real, shifted(real, s)])) for s in shifts]
    runs += [(f"random {r}", pl.concat([real, at_random(calendar, r)])) for r in range(args.random_seeds)]
    pl.Config.set_tbl_rows(60)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    summary = []
    for name, events in runs:
        found, took = run(tables, events, settings)
        print(f"\n{name}: {found.height} event patterns, mining {took:.1f} s")
        if found.height:
            print(
                found.sort("placebo", "event_type", "region", "sku").select(
                    "placebo",
                    "event_type",
                    "region",
                    "sku",
                    "support",
                    pl.col("lift").round(2),
                    pl.col("q_value").round(4),
                )
            )
        summary.append(
            {
                "run": name,
                "placebo patterns": found.filter("placebo").height,
                "real holiday patterns": found.filter(~pl.col("placebo")).height,
                "mining_s": round(took, 1),
            }
        )
    print(f"\nPlacebo holidays (min_lift {settings.min_lift}, q <= {settings.fdr_alpha}):")
    print(pl.DataFrame(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
