"""Does the localized assortment carry more of the held-out demand than today's and a chain standard?

    .venv/bin/python bench/assortment_capture.py [--size small] [--seed 42] [--folds 1] [--horizon 28]
    .venv/bin/python bench/assortment_capture.py --lake OUT/lake [--folds 3]
    .venv/bin/python bench/assortment_capture.py --caps 0.25:4,0.25:16,0.5:16  # the change cap's curve

At each cutoff (the last ``--folds`` windows of ``--horizon`` days before the data's last day) the
tables are cut to what was known then, today's assortment rebuilt from the sales before it
(``models.evaluation.advice_backtest.truncate_tables``), the patterns mined and the demand model
fitted; then seven shelves are scored on the share of the next window's demand (store sales plus the
region's online orders, ``held_out_demand``) they carry, in units and in revenue (units x regular
price; the advice maximises revenue), on two measures of that demand
(``models.evaluation.held_out``): ``region``, every store of a region credited with the mean of the
stores that sold the SKU, and ``store``, the same demand shared out by store volume (a store's own
sales where it sold the SKU; a small store is not credited with a big store's sales):

* ``today``: the rebuilt assortment;
* ``standard``: every shelf reset to the chain's best sellers of the category, up to capacity;
* ``budgeted standard``: today's shelves moved toward that standard under the advice's change budget;
* ``advised``: the advice with the default settings (what ``localshelf run`` recommends);
* ``advised, no change cap``: the same advice with ``max_changes_share`` 1 and no per-store cap;
* ``no cap, free slots at p10 > 0``: the same again with ``free_slot_bar`` "positive" (an add into a
  free slot needs only a p10 above zero, not above the weakest kept SKU): what the evidence bar costs;
* ``advice rules, chain rates``: the advice with every rule but the demand of each candidate taken as
  the SKU's chain-wide rate (``chain_rate_forecast``): ``advised`` minus this is what localizing adds.

``--caps SHARE:PER_STORE,...`` adds the advice under other change caps (``max_changes_share``,
``max_changes_per_store``). Per fold it also prints how the weekly p10 / mean / p90 the advice decides
on compare with the held-out demand per week, for kept SKUs and per kind of add candidate
(``interval_calibration``, both measures).

The demo world is built in memory (no ingest); ``--lake`` reads a lake instead (any drop's).
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

from data_contracts.tables import LakeTables  # noqa: E402
from flows.settings import load_settings  # noqa: E402
from models.advice.advise import advise  # noqa: E402
from models.advice.inputs import candidate_pairs, decision_rows  # noqa: E402
from models.demand import fit_demand_model, forecast_demand  # noqa: E402
from models.evaluation.advice_backtest import (  # noqa: E402
    budgeted_standard,
    chain_rate_forecast,
    standard_assortment,
    truncate_tables,
)
from models.evaluation.held_out import (  # noqa: E402
    covered_shares,
    held_out_demand,
    held_out_store_demand,
    interval_calibration,
)
from models.mining.patterns import mine_patterns  # noqa: E402

STRATEGIES = (
    "today", "standard", "budgeted standard", "advised", "advised, no change cap",
    "no cap, free slots at p10 > 0", "advice rules, chain rates",
)  # fmt: skip


def _tables(args: argparse.Namespace) -> LakeTables:
    if args.lake is not None:
        from flows.lake.paths import LakePaths, load_tables

        return load_tables(LakePaths(args.lake))
    from flows.demo.generate import demo_lake_tables

    return demo_lake_tables(size=args.size, seed=args.seed)


def _caps(text: str | None) -> dict[str, dict[str, float | int]]:
    """Return strategy name -> settings update for each SHARE:PER_STORE of ``--caps``."""
    out: dict[str, dict[str, float | int]] = {}
    for item in (text or "").split(","):
        if item.strip():
            share, per_store = item.split(":")
            name = f"cap {float(share):g} of a shelf, {int(per_store)} a store"
            out[name] = {"max_changes_share": float(share), "max_changes_per_store": int(per_store)}
    return out


def shelves_at(
    tables: LakeTables, cutoff, horizon: int, threads: int, caps: dict[str, dict[str, float | int]]
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Return (store_id, sku) per strategy, made from what was known at ``cutoff``, and the advice's
    decision rows (``decision_rows``: the intervals it decides on)."""
    settings = load_settings(num_threads=threads)
    known = truncate_tables(tables, cutoff)
    patterns = mine_patterns(known, as_of=cutoff, settings=settings.mining)
    model = fit_demand_model(known, as_of=cutoff, settings=settings.demand())
    candidates = candidate_pairs(known, patterns)
    forecast = forecast_demand(model, known, candidates.select("store_id", "sku"), horizon=horizon)
    no_cap = {"max_changes_share": 1.0, "max_changes_per_store": 10**6}
    uncapped = settings.assortment.model_copy(update=no_cap)
    filled = settings.assortment.model_copy(update=no_cap | {"free_slot_bar": "positive"})
    shelves = {
        "today": known.assortment,
        "standard": standard_assortment(tables, known, cutoff),
        "budgeted standard": budgeted_standard(tables, known, cutoff, settings.assortment),
    }
    chain_rates = chain_rate_forecast(known, forecast)
    for name, chosen, demand in (
        ("advised", settings.assortment, forecast),
        ("advised, no change cap", uncapped, forecast),
        ("no cap, free slots at p10 > 0", filled, forecast),
        ("advice rules, chain rates", settings.assortment, chain_rates),
        *((name, settings.assortment.model_copy(update=u), forecast) for name, u in caps.items()),
    ):
        advice = advise(
            known, patterns, demand, candidates, as_of=cutoff, settings=chosen,
            lead_days=settings.mining.event_lead_days, fdr_alpha=settings.mining.fdr_alpha,
        ).assortment  # fmt: skip
        shelves[name] = advice.filter(pl.col("action").is_in(["add", "keep"])).select("store_id", "sku")
    rows = decision_rows(
        known, candidates, forecast, patterns, as_of=cutoff, recent_days=settings.assortment.recent_days
    )
    return shelves, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="small", help="demo size: small, medium, large")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lake", type=Path, default=None, help="a lake to read instead of a demo world")
    parser.add_argument("--folds", type=int, default=1)
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--caps", default=None, help="other change caps: SHARE:PER_STORE,...")
    args = parser.parse_args(argv)
    caps = _caps(args.caps)
    strategies = (*STRATEGIES, *caps)
    tables = _tables(args)
    last = tables.store_sales.select(pl.col("date").max()).collect().item()
    price = tables.products.select("sku", pl.col("regular_price").fill_null(0.0))
    rows = []
    for k in range(args.folds, 0, -1):
        cutoff = last - timedelta(days=args.horizon * k)
        started = time.perf_counter()
        shelves, decided = shelves_at(tables, cutoff, args.horizon, args.threads, caps)
        start, end = cutoff + timedelta(days=1), cutoff + timedelta(days=args.horizon)
        for level, demand in (
            ("region", held_out_demand(tables, start, end)),
            ("store", held_out_store_demand(tables, start, end)),
        ):
            calibration = interval_calibration(decided, demand, weeks=args.horizon / 7)
            with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=3, tbl_width_chars=200):
                print(f"cutoff {cutoff}, {level} held-out demand per week against the advice's interval:")
                print(calibration)
            revenue = (
                demand.join(price, on="sku")
                .with_columns(demand=pl.col("demand") * pl.col("regular_price"))
                .drop("regular_price")
            )
            for measure, frame in ((f"{level} units", demand), (f"{level} revenue", revenue)):
                shares = covered_shares(frame, tables.stores, shelves).filter(pl.col("store_id") == "ALL")
                share = dict(shares.select("strategy", "demand_covered_share").iter_rows())
                rows.append({"cutoff": cutoff, "measure": measure, **{s: share[s] for s in strategies}})
        pairs = {s: shelves[s].height for s in strategies}
        print(f"cutoff {cutoff}: {time.perf_counter() - started:.0f} s; shelf pairs {pairs}", file=sys.stderr)
    table = pl.DataFrame(rows)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=3, tbl_width_chars=200):
        print(table)
        means = table.group_by("measure").agg(pl.col(s).mean() for s in strategies).sort("measure")
        print(means)
    for r in means.iter_rows(named=True):
        ours = r["advised"]
        rivals = ("today", "budgeted standard", "standard", "advice rules, chain rates")
        vs = ", ".join(f"{s} {ours / r[s] - 1:+.1%}" for s in rivals)
        print(f"{r['measure']}: advised carries {ours:.1%} of the held-out demand; vs {vs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
