"""Does the localized assortment carry more of the held-out demand than today's and a chain standard?

    .venv/bin/python bench/assortment_capture.py [--size small] [--seed 42] [--folds 1] [--horizon 28]
    .venv/bin/python bench/assortment_capture.py --lake OUT/lake [--folds 3]
    .venv/bin/python bench/assortment_capture.py --caps 0.25:4,0.25:16,0.5:16  # the change cap's curve

At each cutoff (the last ``--folds`` windows of ``--horizon`` days before the data's last day) the
tables are cut to what was known then, today's assortment rebuilt from the sales before it
(``models.evaluation.advice_backtest.truncate_tables``), the patterns mined and the demand model
fitted; then nine shelves are scored on the share of the next window's demand (store sales plus the
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
  the SKU's chain-wide rate (``chain_rate_forecast``): ``advised`` minus this is what localizing adds;
* ``localized reset``: the standard's freedom (every slot filled from every SKU the chain sold, no change
  cap, no subcategory rule, no evidence bar) ranked by each store's own expected weekly revenue instead
  of the chain's units (``localized_reset``): the advice's own valuation where it has one
  (``decision_rows``: the forecast, the latent estimate for a latent add), else the same model's forecast
  of the pair (cold start), forecast apart so the advice's forecast is unchanged; ``localized reset,
  units`` ranks by expected units. Against ``standard`` it says whether localizing wins at equal freedom.

Per fold it also prints, on the store measure, the pairs only one of the two resets carries (carried
today or not, valued by the advice or by the extra forecast: their forecast and held-out units) and a
foresight ceiling: the reset ranked by the held-out demand itself (no strategy can know it; it bounds
what any ranking can gain).

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
from models.advice.inputs import candidate_pairs, decision_rows, weekly_forecast  # noqa: E402
from models.demand import fit_demand_model, forecast_demand  # noqa: E402
from models.evaluation.advice_backtest import (  # noqa: E402
    budgeted_standard,
    chain_rate_forecast,
    localized_reset,
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
    "no cap, free slots at p10 > 0", "advice rules, chain rates", "localized reset",
    "localized reset, units",
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


def local_values(
    known: LakeTables, model, forecast: pl.DataFrame, rows: pl.DataFrame, horizon: int
) -> pl.DataFrame:
    """Return (store_id, sku, carried, weekly_units, price, source) for every store x SKU: the advice's
    own weekly valuation where it has one (``decision_rows``: the forecast; the latent estimate for a
    latent add), else the same model's forecast of the pair (cold start where the store never sold it),
    forecast apart so the advice's own forecast is unchanged. ``source``: decision_rows or forecast."""
    grid = known.stores.select("store_id").join(known.products.select("sku"), how="cross")
    rest = grid.join(rows.select("store_id", "sku"), on=["store_id", "sku"], how="anti")
    extra = forecast_demand(model, known, rest, horizon=horizon) if rest.height else forecast.clear()
    weekly = weekly_forecast(pl.concat([forecast, extra.select(forecast.columns)]))
    decided = rows.select("store_id", "sku", "weekly_units", source=pl.lit("decision_rows"))
    carried = known.assortment.select("store_id", "sku").unique().with_columns(carried=pl.lit(True))
    price = known.products.select("sku", price=pl.col("regular_price").fill_null(0.0))
    return (
        grid.join(decided, on=["store_id", "sku"], how="left")
        .join(weekly.select("store_id", "sku", _fc="weekly_units"), on=["store_id", "sku"], how="left")
        .join(carried, on=["store_id", "sku"], how="left")
        .join(price, on="sku", how="left")
        .select(
            "store_id",
            "sku",
            pl.col("carried").fill_null(False),
            weekly_units=pl.coalesce("weekly_units", "_fc", pl.lit(0.0)),
            price=pl.col("price").fill_null(0.0),
            source=pl.col("source").fill_null("forecast"),
        )
    )


def shelves_at(
    tables: LakeTables, cutoff, horizon: int, threads: int, caps: dict[str, dict[str, float | int]]
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame, pl.DataFrame]:
    """Return (store_id, sku) per strategy, made from what was known at ``cutoff``, the advice's
    decision rows (``decision_rows``: the intervals it decides on) and the local values the localized
    resets rank by (``local_values``)."""
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
    values = local_values(known, model, forecast, rows, horizon)
    revenue = values.select("store_id", "sku", value=pl.col("weekly_units") * pl.col("price"))
    shelves["localized reset"] = localized_reset(tables, known, revenue)
    units = values.select("store_id", "sku", value="weekly_units")
    shelves["localized reset, units"] = localized_reset(tables, known, units)
    return shelves, rows, values


def reset_diagnosis(
    tables: LakeTables,
    cutoff,
    shelves: dict[str, pl.DataFrame],
    values: pl.DataFrame,
    demand: pl.DataFrame,
    weeks: float,
) -> None:
    """Print why the localized reset and the chain-wide reset differ, on the store measure ``demand``
    (``held_out_store_demand``): the pairs only one of them carries, split by carried today or not,
    with their forecast and held-out units over the window; and the ceiling of a reset ranked by the
    held-out demand itself (foresight: no strategy can know it, it bounds what ranking can gain)."""
    known = truncate_tables(tables, cutoff)
    held = demand.select("store_id", "sku", held="demand")
    local, chain = shelves["localized reset"], shelves["standard"]
    mark = (
        pl.concat([local.with_columns(_l=pl.lit(True)), chain.with_columns(_c=pl.lit(True))], how="diagonal")
        .group_by("store_id", "sku")
        .agg(pl.col("_l").any(), pl.col("_c").any())
        .with_columns(
            on=pl.when(pl.col("_l") & pl.col("_c"))
            .then(pl.lit("both"))
            .when(pl.col("_l"))
            .then(pl.lit("localized only"))
            .otherwise(pl.lit("standard only"))
        )
    )
    split = (
        mark.join(values, on=["store_id", "sku"], how="left")
        .join(held, on=["store_id", "sku"], how="left")
        .with_columns(pl.col("held").fill_null(0.0), fc=pl.col("weekly_units") * weeks)
        .group_by("on", "carried", "source")
        .agg(
            pairs=pl.len(),
            forecast_units=pl.col("fc").sum(),
            held_out_units=pl.col("held").sum(),
            forecast_revenue=(pl.col("fc") * pl.col("price")).sum(),
            held_out_revenue=(pl.col("held") * pl.col("price")).sum(),
        )
        .with_columns(held_over_forecast=pl.col("held_out_units") / pl.col("forecast_units"))
        .sort("on", "carried", "source")
    )
    grid = (
        values.join(held, on=["store_id", "sku"], how="left")
        .with_columns(pl.col("held").fill_null(0.0), fc=pl.col("weekly_units") * weeks)
        .group_by("carried", "source")
        .agg(
            pairs=pl.len(),
            forecast_units=pl.col("fc").sum(),
            held_out_units=pl.col("held").sum(),
            median_ratio=(pl.col("held") / pl.col("fc")).filter(pl.col("fc") > 0).median(),
            spearman=pl.corr("fc", "held", method="spearman"),
        )
        .sort("carried", "source")
    )
    price = tables.products.select("sku", price=pl.col("regular_price").fill_null(0.0))
    revenue = demand.join(price, on="sku").with_columns(demand=pl.col("demand") * pl.col("price"))
    ceiling = {
        "foresight reset, units": localized_reset(tables, known, held.rename({"held": "value"})),
        "foresight reset, revenue": localized_reset(
            tables, known, revenue.select("store_id", "sku", value="demand")
        ),
    }
    with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=3, tbl_width_chars=200):
        print(f"cutoff {cutoff}: pairs only one reset carries (store measure, {weeks:g} weeks):")
        print(split)
        print(f"cutoff {cutoff}: every store x SKU, forecast against held-out (store measure):")
        print(grid)
    for measure, frame in (("store units", demand), ("store revenue", revenue.drop("price"))):
        shares = covered_shares(frame, tables.stores, ceiling).filter(pl.col("store_id") == "ALL")
        text = ", ".join(f"{s} {v:.3f}" for s, v in shares.select("strategy", "demand_covered_share").rows())
        print(f"cutoff {cutoff}, {measure}: ceiling {text}")


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
        shelves, decided, values = shelves_at(tables, cutoff, args.horizon, args.threads, caps)
        start, end = cutoff + timedelta(days=1), cutoff + timedelta(days=args.horizon)
        for level, demand in (
            ("region", held_out_demand(tables, start, end)),
            ("store", held_out_store_demand(tables, start, end)),
        ):
            calibration = interval_calibration(decided, demand, weeks=args.horizon / 7)
            if level == "store":
                reset_diagnosis(tables, cutoff, shelves, values, demand, args.horizon / 7)
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
        rivals = ("today", "budgeted standard", "standard", "advice rules, chain rates", "localized reset")
        vs = ", ".join(f"{s} {ours / r[s] - 1:+.1%}" for s in rivals)
        print(f"{r['measure']}: advised carries {ours:.1%} of the held-out demand; vs {vs}")
        local = r["localized reset"]
        print(
            f"{r['measure']}: localized reset {local:.1%} vs standard (reset) "
            f"{local / r['standard'] - 1:+.1%}; ranked by units {r['localized reset, units']:.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
