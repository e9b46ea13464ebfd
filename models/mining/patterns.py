"""Pattern mining entry point: event uplift, local affinity and latent demand, one FDR filter over all.

Every hypothesis tested in the run (all kinds together) enters one two-level FDR procedure
(Benjamini and Bogomolov 2014, ``apply_fdr``): the families are the event types (each type's
event_uplift hypotheses), local affinity and latent demand; families are selected by
Benjamini-Hochberg over their Simes p-values, and within a selected family BH runs at ``fdr_alpha``
x (selected / all families). A pattern is reported when its q_value (the within-family BH q times
all / selected families) is <= ``fdr_alpha`` and its lift clears the kind's threshold (event uplift
>= ``min_lift``; affinity >= ``min_affinity_lift`` or <= its inverse; latent demand >=
``min_latent_lift``). Event uplift is tested on two windows per (event_type, region, sku) (with and
without the lead days, see ``models.mining.event_uplift``); both count in the type's FDR family and
the passing one with the larger lift is reported, its window in ``window_start_offset_days``. In an
event type and in local affinity, a SKU's regional hypotheses also form a family of their own, tested
at the same level below a parent (its chain-wide pattern, or Simes' test of its regions): where the
SKU is known to rise, or to sell unlike the chain, somewhere, which regions (``regional_families_q``,
a hierarchical FDR step).

Discovered events (``models.mining.discovery``: windows of co-rising SKUs no labeled event covers) are
scanned after the FDR step, in their own BH family over every region x day span scanned (windows, not
SKU patterns), and added with kind ``discovered_event``; the event_uplift patterns that passed give
their SKU signatures ("looks like a hurricane").

Sort order ("strongest first"): by kind (event_uplift, local_affinity, latent_demand, as in
``flows.lake.outputs.PATTERN_KINDS``), then by |log lift| (a 0.5x affinity ranks with a 2x one) descending,
then by q_value ascending. Besides the contract columns the frame keeps ``EXTRA_COLUMNS``.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
from scipy import stats

from data_contracts.outputs import PATTERN_COLUMNS, PATTERN_KINDS, conform
from data_contracts.schemas import CHAIN_WIDE
from data_contracts.tables import LakeTables
from features.signals import (
    buyer_dispersion,
    clean_store_sales,
    daily_online_buyers,
    event_instances,
    online_region_buyers,
)
from models.mining.affinity import affinity_hypotheses
from models.mining.discovery import DiscoverySettings
from models.mining.discovery_rows import discovered_event_rows
from models.mining.event_uplift import event_uplift_hypotheses
from models.mining.latent import latent_hypotheses
from models.mining.settings import MiningSettings

# kept after the contract columns: the raw p-value, and for event_uplift the window the lift refers to,
# [start_date + window_start_offset_days, end_date] (negative: lead days before the event included);
# for latent_demand the estimated store units per store-week (lift x the category median)
EXTRA_COLUMNS = ("p_value", "window_start_offset_days", "est_store_weekly")


def _event_rows(
    tables: LakeTables, sales: pl.LazyFrame, *, as_of: date, settings: MiningSettings
) -> pl.DataFrame:
    """Event uplift hypotheses as pattern rows (before FDR)."""
    regions = tables.stores.lazy().select("region")
    # online demand in buyers a day (a wholesale customer's case is one buyer's order)
    online = daily_online_buyers(tables.online_orders, tables.postal_regions.lazy(), as_of=as_of).rename(
        {"buyers": "units"}
    )
    hyp = event_uplift_hypotheses(
        sales,
        online,
        tables.events.lazy(),
        regions,
        as_of=as_of,
        settings=settings,
        promo=tables.store_sales,
    )
    return hyp.with_columns(pl.lit("event_uplift").alias("kind"))


def _weekly_rows(
    tables: LakeTables, sales: pl.LazyFrame, *, first: date, as_of: date, settings: MiningSettings
) -> list[pl.DataFrame]:
    """Local affinity and latent demand hypotheses as pattern rows (before FDR)."""
    instances = event_instances(
        tables.events.lazy().filter(pl.col("start_date") <= as_of),
        tables.stores.lazy().select("region"),
        lead_days=settings.event_lead_days,
    )
    # the online channel in buyers a week, lumped by their repeat weeks (as latent demand)
    online = online_region_buyers(tables.online_orders, tables.postal_regions.lazy(), as_of=as_of)
    lumps = buyer_dispersion(tables.online_orders, as_of=as_of).select("sku", dispersion="repeat_dispersion")
    affinity = affinity_hypotheses(
        sales,
        instances,
        first=first,
        as_of=as_of,
        settings=settings,
        online=online.rename({"buyers": "units"}),
        dispersion=lumps.collect(),
    )
    refs = {
        name: getattr(tables, name).lazy() for name in ("stores", "products", "postal_regions", "assortment")
    }
    latent = latent_hypotheses(sales, tables.online_orders, refs, first=first, as_of=as_of, settings=settings)
    return [
        affinity.with_columns(pl.lit("local_affinity").alias("kind")),
        latent.with_columns(pl.lit("latent_demand").alias("kind")),
    ]


def fdr_family() -> pl.Expr:
    """The FDR family of a hypothesis: ``event_uplift:<event_type>`` for event uplift (every region,
    the chain-wide ``ALL`` included, both windows), else its kind (``local_affinity``, ``latent_demand``)."""
    kind = pl.col("kind")
    return (
        pl.when(kind == "event_uplift")
        .then(pl.concat_str(pl.lit("event_uplift:"), pl.col("event_type").fill_null("")))
        .otherwise(kind)
    )


def two_level_q(p: np.ndarray, family: np.ndarray, alpha: float) -> np.ndarray:
    """q-values of the two-level FDR procedure of Benjamini and Bogomolov (2014) for p-values ``p`` in
    families ``family`` (labels, one per p-value) at level ``alpha``; reject where q <= ``alpha``.

    1. Within each family, Benjamini-Hochberg adjusted p-values w (``scipy.stats.false_discovery_control``).
       The family's p-value is Simes' combination, min(w).
    2. Families are selected by Benjamini-Hochberg over the M family p-values at ``alpha``: R selected.
    3. Within a selected family a hypothesis is rejected by BH at ``alpha * R / M``, i.e. where
       w <= alpha * R / M. Its q-value is w * M / R (capped at 1), so q <= alpha is exactly that rule.
       A family that is not selected rejects nothing; its q-value is max(w * M / max(R, 1), the family's
       BH-adjusted p-value), which is above ``alpha`` (capped at 1).

    The q-value depends on ``alpha`` through R: it is the reporting rule at that level, not an adjusted
    p-value to be compared with other levels.
    """
    return _two_level(p, family, alpha)[0]


def _two_level(p: np.ndarray, family: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """``two_level_q``'s q-values and its scale M / R (all over selected families, R at least 1)."""
    p = np.clip(np.nan_to_num(np.asarray(p, dtype=np.float64), nan=1.0), 0.0, 1.0)
    if not len(p):
        return p, 1.0
    names, idx = np.unique(np.asarray(family), return_inverse=True)
    within = np.empty_like(p)
    simes = np.empty(len(names))
    for f in range(len(names)):
        on = idx == f
        within[on] = stats.false_discovery_control(p[on], method="bh")
        simes[f] = within[on].min()
    family_q = stats.false_discovery_control(simes, method="bh")
    selected = family_q <= alpha
    scale = len(names) / max(int(selected.sum()), 1)
    scaled = within * scale
    q = np.where(selected[idx], scaled, np.maximum(scaled, family_q[idx]))
    return np.minimum(q, 1.0), scale


def _bh(by: list[str]) -> pl.Expr:
    """Benjamini-Hochberg adjusted ``p`` within each group of ``by`` (rows sorted by ``by`` and p)."""
    raw = pl.col("p") * pl.len().over(by) / (pl.int_range(pl.len()).over(by) + 1)
    return raw.cum_min(reverse=True).over(by).clip(upper_bound=1.0)


def regional_families_q(
    hypotheses: pl.DataFrame, q: np.ndarray, scale: float, settings: MiningSettings
) -> np.ndarray:
    """A hierarchical step below the families (Yekutieli 2008, "Hierarchical false discovery
    rate-controlling methodology"): a SKU's regions. In an event type's family a region's rise
    competes with every SKU of every region, thousands of hypotheses, and so does a regional taste in
    local affinity; once the SKU is known to rise on the type's events, or to sell unlike the chain,
    somewhere, the question left is where. So in every selected event type and in local affinity (a
    family with a row at ``q`` <= ``fdr_alpha``) each SKU's regional hypotheses (every region, for
    events both windows) form a family of their own, opened below a parent:

    * for an event type with chain-wide events, the SKU's chain-wide pattern (region ``ALL``, ``q``
      <= ``fdr_alpha``, lift >= ``min_lift``): the chain's demand, pooled, rose;
    * for a regional type and for local affinity, the SKU's regions taken together: the hypothesis
      "no region differs", tested by Simes' combination of its regional p-values (the smallest
      BH-adjusted), Benjamini-Hochberg over the family's SKUs at the selected families' level
      (``fdr_alpha`` / ``scale``).

    An opened family is tested by Benjamini-Hochberg at that same level: a row is rejected at a level
    where its parent is and its BH-adjusted p times ``scale`` (``scale`` = M / R of ``two_level_q``)
    is below it, so its q-value is the larger of the two. A family that is not selected (every
    no-effect event type but by chance) opens nothing. Latent demand is left as it is (on the
    hypotheses of ten demo worlds the step would change none of its patterns).

    ``hypotheses`` has kind, region, sku, event_type, lift, p_value; ``q`` their two-level q-values.
    Returns one q-value per row: its regional family's, 1 where the row is in none."""
    alpha, by = settings.fdr_alpha, ["family", "sku"]
    kind = pl.col("kind")
    rows = (
        hypotheses.with_row_index("row")
        .with_columns(
            pl.Series("q", q),
            pl.col("p_value").fill_nan(1.0).fill_null(1.0).alias("p"),
            pl.when(kind == "event_uplift").then(pl.col("event_type")).otherwise(kind).alias("family"),
        )
        .filter(kind.is_in(["event_uplift", "local_affinity"]))
    )
    selected = rows.filter(pl.col("q") <= alpha)["family"].unique()
    chain = rows.filter(pl.col("region") == CHAIN_WIDE)
    regional = (
        rows.filter((pl.col("region") != CHAIN_WIDE) & pl.col("family").is_in(selected.implode()))
        .sort(*by, "p")
        .with_columns(_bh(by).alias("within"))
    )
    below_chain = (
        chain.filter(pl.col("lift") >= settings.min_lift).group_by(by).agg(pl.col("q").min().alias("parent"))
    )
    simes = (
        regional.join(chain.select("family").unique(), on="family", how="anti")
        .group_by(by)
        .agg(pl.col("within").min().alias("p"))
        .sort("family", "p")
        .with_columns((_bh(["family"]) * scale).alias("parent"))
        .select(*by, "parent")
    )
    opened = regional.join(pl.concat([below_chain, simes]).filter(pl.col("parent") <= alpha), on=by)
    out = np.ones(hypotheses.height)
    # rejected at a level where its parent is and it is within its family: the larger of the two
    out[opened["row"].to_numpy()] = np.maximum(
        opened["within"].to_numpy() * scale, opened["parent"].to_numpy()
    )
    return np.minimum(out, 1.0)


def fdr_q(hypotheses: pl.DataFrame, settings: MiningSettings) -> np.ndarray:
    """Every hypothesis's q-value: the two-level procedure over ``fdr_family`` (``two_level_q``), and for
    a regional event_uplift or local_affinity row in an opened family of its SKU's regions the smaller
    of that and its regional family's (``regional_families_q``). ``hypotheses`` has kind, region, sku,
    event_type, lift, p_value."""
    p = hypotheses["p_value"].fill_nan(1.0).fill_null(1.0).to_numpy()
    family = hypotheses.select(fdr_family()).to_series().to_numpy()
    q, scale = _two_level(p, family, settings.fdr_alpha)
    return np.minimum(q, regional_families_q(hypotheses, q, scale, settings))


def apply_fdr(hypotheses: pl.DataFrame, settings: MiningSettings) -> pl.DataFrame:
    """Add q_value (two-level FDR over families of hypotheses, ``two_level_q``) and keep the rows that
    pass q and lift thresholds.

    Families (``fdr_family``): one per event type (its event_uplift hypotheses in every region, chain-wide
    ``ALL`` included, both windows), one for local_affinity, one for latent_demand. Families are selected
    by BH over their Simes p-values at ``fdr_alpha``; within each of the R selected families of M, BH at
    ``fdr_alpha * R / M``. q_value is the within-family BH-adjusted p-value times M / R, so a row passes
    at ``q_value <= fdr_alpha``; rows of unselected families get a q_value above ``fdr_alpha``. A regional
    event_uplift or local_affinity row in an opened family of its SKU's regions also gets that family's
    q-value (``regional_families_q``), and keeps the smaller.

    ``hypotheses`` has kind, region, sku, event_type, lift, p_value. Returns the passing rows with
    q_value added.
    """
    if hypotheses.height == 0:
        return hypotheses.with_columns(pl.lit(None, dtype=pl.Float64).alias("q_value"))
    q = fdr_q(hypotheses, settings)
    kind, lift = pl.col("kind"), pl.col("lift")
    big_enough = (
        ((kind == "event_uplift") & (lift >= settings.min_lift))
        | (
            (kind == "local_affinity")
            & ((lift >= settings.min_affinity_lift) | (lift <= 1 / settings.min_affinity_lift))
        )
        | ((kind == "latent_demand") & (lift >= settings.min_latent_lift))
    )
    passed = hypotheses.with_columns(pl.Series("q_value", q)).filter(
        (pl.col("q_value") <= settings.fdr_alpha) & big_enough.fill_null(False)
    )
    # an event pattern tested on two windows is reported once, on the window with the larger lift
    keys = ["kind", "region", "sku", "event_type"]
    return passed.sort("lift", descending=True).unique(keys, keep="first", maintain_order=True)


def _fmt(x: float) -> str:
    """A lift as a merchandiser reads it: 6.8, 1.35, 0.62."""
    return f"{x:.1f}" if x >= 2 else f"{x:.2f}"


def _peak_phrase(offset: int | None) -> str:
    if offset is None:
        return ""
    if offset == 0:
        return ", peaking on the day the event starts"
    days = f"{abs(offset)} day{'s' if abs(offset) != 1 else ''}"
    return f", peaking {days} {'before' if offset < 0 else 'after'} the event starts"


def explain(row: dict) -> str:
    """One plain English sentence for a pattern row (needs name and the kind's extra columns)."""
    if row["kind"] == "discovered_event":  # the window's card, written by models.mining.discovery_rows
        return str(row["explanation"])
    name, region, lift = row["name"] or row["sku"], row["region"], row["lift"]
    ci = f"95% CI {_fmt(row['ci_low'])}-{_fmt(row['ci_high'])}x"
    if row["kind"] == "event_uplift":
        event = str(row["event_type"]).replace("_", " ")
        lead = -(row.get("window_start_offset_days") or 0)
        when = f"In the {lead} days before and during" if lead > 0 else "During"
        where = "across the chain" if region == CHAIN_WIDE else f"in {region}"
        return (
            f"{when} {event} events {where}, demand for {name} ran at {_fmt(lift)}x the rate expected "
            f"without the event ({ci}, {row['support']} events){_peak_phrase(row['peak_offset_days'])}."
        )
    if row["kind"] == "local_affinity":
        direction = "more" if lift > 1 else "less"
        return (
            f"In {region}, {name} sells {direction} than elsewhere: {_fmt(lift)}x its chain-wide share of "
            f"sales in the stores that carry it ({ci}, {row['support']} weeks)."
        )
    return (
        f"Shoppers in {region} bought {row['online_weekly']:.1f} units a week of {name} online although no "
        f"store there carries it: about {row['est_store_weekly']:.1f} units per store a week, "
        f"{_fmt(lift)}x the median carried {row['category']} item ({ci}, {row['support']} weeks)."
    )


def _finish(passed: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """Attach category and explanation, sort strongest first and conform to PATTERN_COLUMNS."""
    named = passed.join(products.select("sku", "name", "category"), on="sku", how="left")
    explanations = [explain(r) for r in named.iter_rows(named=True)]
    kind_rank = pl.col("kind").replace_strict(list(PATTERN_KINDS), list(range(len(PATTERN_KINDS))))
    strength = pl.col("lift").clip(lower_bound=1e-9).log().abs()
    ordered = named.with_columns(pl.Series("explanation", explanations, dtype=pl.String)).sort(
        [kind_rank, strength, pl.col("q_value"), "region", "sku"],
        descending=[False, True, False, False, False],
    )
    return conform(ordered, PATTERN_COLUMNS).select(*PATTERN_COLUMNS.names(), *EXTRA_COLUMNS)


def mine_patterns(tables: LakeTables, *, as_of: date, settings: MiningSettings) -> pl.DataFrame:
    """Every pattern that passed the significance filter, strongest first, with the columns of
    flows.lake.outputs.PATTERN_COLUMNS (plus EXTRA_COLUMNS). Only data dated on or before ``as_of`` is used.
    """
    sales = clean_store_sales(tables.store_sales, tables.stores.lazy(), as_of=as_of).cache()
    first = sales.select(pl.col("date").min()).collect().item()
    if first is None:
        return _finish(
            pl.DataFrame(schema=_HYPOTHESIS_SCHEMA).with_columns(pl.lit(None, pl.Float64).alias("q_value")),
            tables.products,
        )
    parts = [
        _event_rows(tables, sales, as_of=as_of, settings=settings),
        *_weekly_rows(tables, sales, first=first, as_of=as_of, settings=settings),
    ]
    hypotheses = pl.concat([conform(p, _HYPOTHESIS_SCHEMA).select(_HYPOTHESIS_SCHEMA.names()) for p in parts])
    passed = apply_fdr(hypotheses, settings)
    discovery = DiscoverySettings(fdr_alpha=settings.fdr_alpha, lead_days=settings.event_lead_days)
    discovered = discovered_event_rows(tables, as_of=as_of, mined=passed, settings=discovery)
    return _finish(pl.concat([passed, discovered], how="diagonal_relaxed"), tables.products)


# columns every kind's hypotheses are brought to before the shared FDR step
_HYPOTHESIS_SCHEMA = pl.Schema(
    {
        "kind": pl.String,
        "region": pl.String,
        "sku": pl.String,
        "event_type": pl.String,
        "lift": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "support": pl.Int64,
        "p_value": pl.Float64,
        "peak_offset_days": pl.Int64,
        "window_start_offset_days": pl.Int64,
        "online_weekly": pl.Float64,
        "est_store_weekly": pl.Float64,
    }
)
