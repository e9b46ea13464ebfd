"""An oracle bound for event recall (issue 8): what a test with a perfect counterfactual would find.

    .venv/bin/python bench/mining_oracle.py [--size small] [--seed 42] [--min-lift 1.0] [--check]
        [--cf-error 0.1,0.2] [--miner-error] [--no-empirical-null]

Beside it: ``bench/oracle_replay.py`` replays the world's store and online draws,
``bench/oracle_tail.py`` holds the saddlepoint tail of the null, and ``bench/oracle_miner.py`` the
miner's test, FDR and counterfactual set against the truth.

The miner's event recall on the demo worlds (planted risers found / planted) is 0.64-0.98. Is the
goal of 0.9 reachable at all at the miner's error rate, or do the data not hold enough evidence? This
script tests the miner's own hypotheses with the world's TRUE counterfactual and reports the recall
that such an oracle reaches under the same FDR procedure and relevance rule.

Hypotheses: exactly the miner's (``models.mining.event_uplift``): the window days of every event type
(``features.signals.event_days`` over ``usable_instances``) joined to the miner's region x SKU x day
panel (``features.signals.daily_panel``, rows with exposure), days inside another type's window left
out (as ``window_cells`` does), tested per (event_type, region, SKU) on both windows ([-lead_days,
end] and [0, end]) and, for types with chain-wide events, for the chain (region ``ALL``), with at
least ``min_event_support`` clusters.

Oracle p-value, H0 "this event type has no effect": the world's demand is drawn (``flows.demo.facts``)
as store-day demand D ~ Poisson(lam x traffic x Gamma(4, 1/4)), i.e. negative binomial of size 4
given the store-day traffic, and online lines ~ Poisson (region-day noise known) with 1 + Poisson(0.25)
units each. The oracle knows every component of lam except the tested type's own multiplier: base,
store scale, taste, SKU season, paydays and trend, the regional drift, promotions, the store's
traffic that day, the online region-day noise, other event types' and the unlabeled events'
multipliers. The tested type's multiplier is rebuilt from ``events.csv`` and the planted lifts
(``flows.demo.events.window_profile``) and divided out. The statistic is the hypothesis's total
observed units over its window rows (store units + online units); its null distribution is the sum of
independent cells, evaluated by a saddlepoint approximation (Lugannani-Rice with Daniels' continuity
correction for integer sums), one-sided (a rise).

Sell-outs, honestly: a store-day's observed units are min(D, stock) (the world's shelf stock, which
the data show as units + on_hand and which does not depend on that day's demand). The oracle uses
exactly those observed units and compares them with the null distribution of min(D0, stock), a
negative binomial censored at the stock: it gets no more than the sales data hold about a sold-out
day (no latent demand, no true demand filled in). Days of an out-of-stock run (the shelf empty all
day: nothing observable) are left out, as the miner leaves them out.

Honesty limits: the oracle knows the noise-free counterfactual, so it is an upper bound for any
method on these data at this error rate, not a method. It uses the sales before returns (0.25% of
store-days and 2% of online lines are returned; the null model has no returns), the true carry
intervals of the stores, and an unweighted sum of units (a test weighting cells by 1 / (1 + m / 4),
the negative binomial's score, could be a little stronger on SKUs with large store-days). FDR: the
miner's (``models.mining.patterns.fdr_q``: the two-level procedure, families = event types, and the
regional families below reported chain-wide patterns) with the two non-event families of a run
(local affinity, latent demand) counted as selected (they were on all six demo worlds), and one
Benjamini-Hochberg over the event hypotheses for comparison; relevance rule
lift >= ``--min-lift`` with lift = observed / null-expected observed units; scored with
``flows.demo.truth.mining_quality`` (the bench's definition of a planted riser and its matching).
``--check`` verifies the replayed draws against ``flows.demo.facts.sales_block``.

Where the miner loses recall: the script also puts the true counterfactual through the miner's own
test (``moderated_ratio_test`` over clusters), ``--cf-error`` the same with a log-normal error per
event (independent across events, one draw per sd), ``--no-empirical-null`` the same test without its
empirical null (what the null's spread costs where the counterfactual has no error), and
``--miner-error`` fits the miner's own counterfactual (``event_uplift``) and prints its log error
against the true expected demand per event.
Figures: ``bench/README.md``, "Pattern mining on the demo world".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.oracle_miner import miner_error, miner_q, miner_test, score  # noqa: E402
from bench.oracle_replay import online_rows, own_multiplier, store_cells  # noqa: E402
from bench.oracle_tail import cell_means, saddlepoint_p  # noqa: E402
from features.signals import clean_store_sales, daily_online_units, daily_panel, event_days  # noqa: E402
from flows.demo import facts  # noqa: E402
from flows.demo.generate import demo_lake_tables  # noqa: E402
from flows.demo.truth import mining_quality  # noqa: E402
from flows.demo.world import World, build_world  # noqa: E402
from models.mining.event_uplift import usable_instances  # noqa: E402
from models.mining.settings import MiningSettings  # noqa: E402

# ---------------------------------------------------------------- the miner's hypotheses


def window_rows(world: World, settings: MiningSettings) -> pl.DataFrame:
    """The miner's scored window rows: event_type, region, sku, date, offset, cluster, chain_wide, plus
    the world's indexes r, k, t (as ``event_design.build_design`` / ``event_uplift.window_cells`` select
    them)."""
    tables = demo_lake_tables(size=world.size, seed=world.seed)
    as_of = world.as_of
    sales = clean_store_sales(tables.store_sales, tables.stores.lazy(), as_of=as_of)
    online = daily_online_units(tables.online_orders, tables.postal_regions.lazy(), as_of=as_of)
    first = sales.select(pl.col("date").min()).collect().item()
    instances = usable_instances(
        tables.events.lazy(),
        tables.stores.lazy().select("region"),
        first=first,
        as_of=as_of,
        settings=settings,
    )
    days = event_days(
        instances, cluster_gap_days=settings.event_cluster_gap_days, after_days=settings.event_after_days
    )
    panel, _ = daily_panel(sales, online if settings.event_use_online else None, as_of=as_of)
    panel_df, days_df = pl.collect_all([panel.select("region", "sku", "date"), days])
    w = panel_df.join(days_df, on=["region", "date"])
    # a day inside the windows of two event types is scored for neither; the wake is not scored
    busy = (
        w.filter(pl.col("phase") != "after")
        .group_by("region", "sku", "date")
        .agg(pl.col("event_type").n_unique().alias("types"))
    )
    w = w.join(busy, on=["region", "sku", "date"], how="left").filter(
        (pl.col("phase") != "after") & (pl.col("types") == 1)
    )
    regions = {r.name: i for i, r in enumerate(world.regions)}
    skus = {s: i for i, s in enumerate(world.products["sku"].to_list())}
    return w.select(
        "event_type",
        "region",
        "sku",
        "date",
        "offset",
        "cluster",
        "chain_wide",
        pl.col("region").replace_strict(regions, return_dtype=pl.Int64).alias("r"),
        pl.col("sku").replace_strict(skus, return_dtype=pl.Int64).alias("k"),
        (pl.col("date") - pl.lit(world.start)).dt.total_days().cast(pl.Int64).alias("t"),
    ).with_row_index("row")


def hypotheses(
    rows: pl.DataFrame, *, lead_days: int, min_support: int
) -> list[tuple[pl.DataFrame, np.ndarray]]:
    """Per (window, level): the hypotheses (event_type, region, sku, window_start_offset_days, support)
    and each window row's hypothesis index (-1: not in one), as ``event_uplift.score_cells`` forms them."""
    out = []
    for w in sorted({-lead_days, 0}):
        for chain in (False, True):
            part = rows.filter(pl.col("offset") >= w)
            if chain:
                part = part.filter(pl.col("chain_wide")).with_columns(pl.lit("ALL").alias("region"))
            keys = ["event_type", "region", "sku"]
            hyp = (
                part.group_by(keys)
                .agg(pl.col("cluster").n_unique().alias("support"))
                .filter(pl.col("support") >= min_support)
                .sort(keys)
                .with_row_index("h")
                .with_columns(pl.lit(w, pl.Int64).alias("window_start_offset_days"))
            )
            index = np.full(rows.height, -1, dtype=np.int64)
            at = part.join(hyp, on=keys).select("row", "h")
            index[at["row"].to_numpy()] = at["h"].to_numpy()
            out.append((hyp.drop("h"), index))
    return out


# ---------------------------------------------------------------- the oracle run


def oracle(
    size: str,
    seed: int,
    settings: MiningSettings,
    *,
    check: bool = False,
    cf_errors: tuple[float, ...] = (),
    with_miner_error: bool = False,
    without_null: bool = False,
) -> dict[str, Any]:
    """Oracle p-values for the miner's hypotheses on one world, the FDR and the scores. ``cf_errors``:
    also run the miner's test on the true counterfactual times a log-normal error of each sd, drawn
    per (event type, region, SKU, cluster)."""
    world = build_world(size, seed)
    rows = window_rows(world, settings)
    own = own_multiplier(world, rows)
    store = store_cells(world, rows, own, check=check)
    online = online_rows(world, rows, own)
    store_obs = np.bincount(store["row"], store["y"], minlength=rows.height)
    frames = []
    for hyp, index in hypotheses(
        rows, lead_days=settings.event_lead_days, min_support=settings.min_event_support
    ):
        if not hyp.height:
            continue
        hs, ho = index[store["row"]], index[np.arange(rows.height)]
        ks, ko = hs >= 0, ho >= 0
        observed = np.bincount(ho[ko], (store_obs + online["y"])[ko], minlength=hyp.height)
        p, mean = saddlepoint_p(hs[ks], store["m0"][ks], store["c"][ks], ho[ko], online["mu"][ko], observed)
        events = np.bincount(ho[ko], minlength=hyp.height)
        frames.append(
            hyp.with_columns(
                pl.Series("observed_units", observed),
                pl.Series("expected_units", mean),
                pl.Series("lift", observed / np.maximum(mean, 1e-12)),
                pl.Series("p_value", p),
                pl.Series("window_days", events),
            )
        )
    tested = pl.concat(frames).with_columns(pl.lit("event_uplift").alias("kind"))
    # the same true counterfactual through the miner's own test (clusters, moderated t, empirical null)
    row_mean: np.ndarray = np.bincount(
        store["row"], cell_means(store["m0"], store["c"]), minlength=rows.height
    )
    row_mean = row_mean.astype(np.float64) + online["mu"] * facts.UNITS_PER_LINE
    # a store-day's demand is negative binomial of the world's shape: (m0)^2 / shape beyond Poisson
    row_excess = np.bincount(store["row"], store["m0"] ** 2 / facts.DEMAND_SHAPE, minlength=rows.height)
    hyp_keys = ["event_type", "region", "sku", "window_start_offset_days"]
    tested = tested.join(
        miner_test(rows, store_obs + online["y"], row_mean, row_excess, settings), on=hyp_keys, how="left"
    )
    result_error = None
    if with_miner_error:
        demand = (
            np.bincount(store["row"], store["m0"], minlength=rows.height)
            + online["mu"] * facts.UNITS_PER_LINE
        )
        err = miner_error(world, rows, demand, settings)
        planted_rows = pl.DataFrame(world.truth["event_uplift"]).select("event_type", "region", "sku")
        err = err.join(
            planted_rows.with_columns(pl.lit(True).alias("planted")),
            on=["event_type", "region", "sku"],
            how="left",
        )
        result_error = err.with_columns(pl.col("planted").fill_null(False))
    noisy = []
    cluster = (
        rows.select(pl.struct("event_type", "region", "sku", "cluster").rank("dense")).to_series().to_numpy()
    )
    rng = np.random.default_rng(seed)
    for sd in cf_errors:
        z = rng.normal(-(sd**2) / 2, sd, size=int(cluster.max()) + 1)[cluster - 1]
        t = tested.select(*hyp_keys).join(
            miner_test(
                rows, store_obs + online["y"], row_mean * np.exp(z), row_excess * np.exp(2 * z), settings
            ),
            on=hyp_keys,
            how="left",
        )
        t = t.with_columns(pl.col("lift_miner_test").fill_null(0.0).alias("lift"))
        noisy.append((sd, score(t, t["p_miner_test"].fill_null(1.0).to_numpy(), settings, world.truth)))
    no_null = None
    if without_null:
        t = tested.select(*hyp_keys).join(
            miner_test(rows, store_obs + online["y"], row_mean, row_excess, settings, empirical_null=False),
            on=hyp_keys,
            how="left",
        )
        t = t.with_columns(pl.col("lift_miner_test").fill_null(0.0).alias("lift"))
        no_null = score(t, t["p_miner_test"].fill_null(1.0).to_numpy(), settings, world.truth)
    q2 = miner_q(tested, tested["p_value"].to_numpy(), settings)
    q1 = stats.false_discovery_control(tested["p_value"].to_numpy(), method="bh")
    q_t = miner_q(
        tested.with_columns(lift=pl.col("lift_miner_test").fill_null(0.0)),
        tested["p_miner_test"].fill_null(1.0).to_numpy(),
        settings,
    )
    tested = tested.with_columns(
        pl.Series("q_two_level", q2),
        pl.Series("q_one_bh", q1),
        pl.Series("q_miner_test", q_t),
    )
    null = set(world.truth["null_event_types"])
    planted_keys = {(p["event_type"], p["region"], p["sku"]) for p in world.truth["event_uplift"]}
    unplanted = tested.filter(
        (pl.col("region") != "ALL")
        & ~pl.struct("event_type", "region", "sku").map_elements(
            lambda x: (x["event_type"], x["region"], x["sku"]) in planted_keys, return_dtype=pl.Boolean
        )
    )
    result: dict[str, Any] = {
        "world": f"{size} {seed}",
        "hypotheses": tested.height,
        "tested": tested,
        "null_types": sorted(null),
        "cf_error": noisy,
        "without_null": no_null,
        "miner_error": result_error,
        "calibration": {
            col: (
                unplanted.height,
                float(np.mean(unplanted[col].to_numpy() < 0.05)),
                float(np.mean(unplanted[col].to_numpy() < 0.01)),
            )
            for col in ("p_value", "p_miner_test")
        },
    }
    for name in ("q_two_level", "q_one_bh", "q_miner_test"):
        lift = "lift_miner_test" if name == "q_miner_test" else "lift"
        passed = tested.filter((pl.col(name) <= settings.fdr_alpha) & (pl.col(lift) >= settings.min_lift))
        patterns = passed.sort("lift", descending=True).unique(["region", "sku", "event_type"], keep="first")
        result[name] = mining_quality(patterns, world.truth)
        result[f"{name}.patterns"] = patterns
    planted = pl.DataFrame(world.truth["event_uplift"]).select(
        "event_type", "region", "sku", "lift", "events"
    )
    best = (
        tested.sort("p_value")
        .unique(["event_type", "region", "sku"], keep="first")
        .select(
            "event_type",
            "region",
            "sku",
            "window_start_offset_days",
            "expected_units",
            "lift",
            "p_value",
            "q_two_level",
            "support",
        )
    )
    result["planted"] = planted.join(best, on=["event_type", "region", "sku"], how="left", suffix="_oracle")
    found = result["q_two_level.patterns"].select("event_type", "region", "sku")
    result["missed"] = (
        planted.join(found, on=["event_type", "region", "sku"], how="anti")
        .join(best, on=["event_type", "region", "sku"], how="left", suffix="_oracle")
        .sort("event_type", "region", "sku")
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="small", help="small, medium or STORESxSKUSxDAYS")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--min-lift", type=float, default=1.0)
    parser.add_argument("--check", action="store_true", help="verify the replayed draws against the export")
    parser.add_argument(
        "--miner-error",
        action="store_true",
        help="also fit the miner's counterfactual and compare it with the truth",
    )
    parser.add_argument(
        "--cf-error",
        default="",
        help="comma-separated sds: the miner's test on the true counterfactual times a log-normal error",
    )
    parser.add_argument(
        "--no-empirical-null",
        action="store_true",
        help="also the miner's test on the true counterfactual without its empirical null",
    )
    args = parser.parse_args(argv)
    settings = MiningSettings(min_lift=args.min_lift)
    started = time.perf_counter()
    errors = tuple(float(x) for x in args.cf_error.split(",") if x)
    r = oracle(
        args.size,
        args.seed,
        settings,
        check=args.check,
        cf_errors=errors,
        with_miner_error=args.miner_error,
        without_null=args.no_empirical_null,
    )
    print(
        f"demo {r['world']}: {r['hypotheses']:,} event hypotheses, "
        f"oracle in {time.perf_counter() - started:.1f} s"
    )
    for name in ("q_two_level", "q_one_bh", "q_miner_test"):
        q = r[name]
        print(
            f"  oracle {name}: recall {q['event_uplift.recall']:.3f} ({q['event_uplift.planted']} planted), "
            f"precision {q['event_uplift.precision']:.3f} ({q['event_uplift.reported']} reported), "
            f"no-effect patterns {q['null_event_patterns']}, "
            f"lift error {q.get('event_uplift.median_lift_error', float('nan')):.3f}"
        )
    if r["without_null"] is not None:
        q = r["without_null"]
        print(
            f"  miner's test, true counterfactual, no empirical null: recall {q['event_uplift.recall']:.3f}, "
            f"precision {q['event_uplift.precision']:.3f}, no-effect patterns {q['null_event_patterns']}"
        )
    for sd, q in r["cf_error"]:
        print(
            f"  miner's test, true counterfactual x lognormal error sd {sd:.2f} per event: recall "
            f"{q['event_uplift.recall']:.3f}, precision {q['event_uplift.precision']:.3f}, "
            f"no-effect patterns {q['null_event_patterns']}"
        )
    if r["miner_error"] is not None:
        e = r["miner_error"].filter(pl.col("true_expected") >= 5)
        for planted, g in e.group_by("planted", maintain_order=True):
            x = g["log_error"].to_numpy()
            print(
                f"  miner's counterfactual / truth per event (lead window, true expected >= 5), "
                f"planted {planted[0]}: "
                f"{len(x)} events, log error mean {x.mean():+.3f}, sd {x.std():.3f}, "
                f"median |error| {np.median(np.abs(x)):.3f}"
            )
        big = e.filter(pl.col("true_expected") >= 50)["log_error"].to_numpy()
        print(f"    events with true expected >= 50: {len(big)}, log error sd {big.std():.3f}")
    for col, (n, a, b) in r["calibration"].items():
        print(f"  {col}: {n} hypotheses without a planted effect, {a:.3f} below 0.05, {b:.4f} below 0.01")
    pl_ = r["planted"]
    ratio = pl_["lift_oracle"] / pl_["lift"]
    print(
        f"  planted risers, best window: oracle p max {pl_['p_value'].max():.2g}, two-level q max "
        f"{pl_['q_two_level'].max():.2g}, expected units min {pl_['expected_units'].min():.0f} / median "
        f"{pl_['expected_units'].median():.0f}, oracle lift / planted {ratio.min():.2f}-{ratio.max():.2f}"
    )
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=200):
        print("the three weakest planted risers for the oracle (best window by p):")
        print(r["planted"].sort("p_value", descending=True).head(3))
        print("planted risers the oracle (two-level) misses (best window by p):")
        print(r["missed"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
