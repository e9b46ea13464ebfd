"""The rows of report.html's sections, as plain dicts for the template: the region summary, the advice
per store, the patterns and the pre-stock plan. Every row carries the keys the page's filters use
(region, store, category, action, kind); numbers are left as numbers and rounded by the template."""

from __future__ import annotations

import re
from typing import Any

import polars as pl

KIND_TEXT = {
    "event_uplift": ("Event uplift", "Products that sell far above normal around an event type in a region."),
    "local_affinity": (
        "Local affinity",
        "Products a region buys much more (or much less) of than the chain as a whole.",
    ),
    "latent_demand": (
        "Latent demand",
        "Products shoppers in a region order online although the region's stores do not carry them.",
    ),
    "discovered_event": (
        "Discovered event",
        "Days nobody labeled when several products jumped together in a region.",
    ),
}
ACTION_ORDER = {"add": 0, "drop": 1, "keep": 2}
# Statistics the mining writes into its sentences, e.g. "(95% CI 6.2-7.8x, 6 events)": shown behind
# the details toggle instead, so the sentence reads plainly.
_STATS = re.compile(r"\s*\((?:95% (?:CI|interval)|q\s*[=<])[^)]*\)")
# a decimal standing alone or as a multiple ("104.6 units", "7.03x"), not inside a name ("1.125L")
_LONG_DECIMAL = re.compile(r"(?<![\w.,])(\d+\.\d+)(?=x\b|[^\w.]|\.(?!\d)|$)")


def _round_decimal(match: re.Match[str]) -> str:
    value = float(match.group(1))
    return f"{value:.3g}" if len(match.group(1).replace(".", "").lstrip("0")) > 3 else match.group(1)


def plain(sentence: str | None) -> str:
    """Return ``sentence`` without its statistics in parentheses and with decimals cut to 3 significant
    digits ("about 104.6 units" -> "about 105 units")."""
    if not sentence:
        return ""
    return _LONG_DECIMAL.sub(_round_decimal, _STATS.sub("", sentence))


def stats_of(sentence: str | None) -> str:
    """Return the statistics ``plain`` takes out of ``sentence`` (without parentheses), or ""."""
    return "; ".join(m.group(0).strip()[1:-1] for m in _STATS.finditer(sentence or ""))


def product(row: dict[str, Any]) -> str:
    """Return a product's name, else its SKU."""
    return str(row.get("name") or row.get("sku") or "")


# --------------------------------------------------------------------------------------------- summary
def findings(patterns: pl.DataFrame, limit: int = 3) -> list[dict[str, Any]]:
    """Return up to ``limit`` patterns to tell first: the strongest of each kind (patterns come
    strongest first), then the next strongest, each as a plain sentence with its statistics apart."""
    rows = patterns.with_row_index("order").filter(pl.col("lift").is_not_null())
    first = rows.group_by("kind").agg(pl.col("order").min()).get_column("order").to_list()
    picked = sorted(first)[:limit]
    picked += [i for i in rows["order"].to_list() if i not in picked][: limit - len(picked)]
    by_order = {r["order"]: r for r in rows.iter_rows(named=True)}
    return [_finding(by_order[i]) for i in picked]


def _finding(row: dict[str, Any]) -> dict[str, Any]:
    context = f" around {row['event_type']}" if row.get("event_type") else ""
    fallback = f"{product(row)} in {row['region']}{context}: {row['lift']:.2g}x normal ({row['kind']})."
    text = row.get("explanation") or fallback
    return {"text": plain(text), "stats": stats_of(text), "region": row.get("region"), "row": row}


def region_summary(
    assortment: pl.DataFrame, patterns: pl.DataFrame, regions: pl.DataFrame
) -> list[dict[str, Any]]:
    """Return one row per region: stores, adds, drops, the weekly revenue the adds bring and the drops
    gave, patterns found and the strongest one in plain words. Regions are ordered by revenue at stake."""
    advice = assortment.with_columns(pl.col("region").fill_null("region unknown"))
    per = advice.group_by("region").agg(
        pl.col("store_id").n_unique().alias("stores"),
        (pl.col("action") == "add").sum().alias("adds"),
        (pl.col("action") == "drop").sum().alias("drops"),
        pl.col("expected_weekly_revenue").filter(pl.col("action") == "add").sum().alias("add_revenue"),
        pl.col("expected_weekly_revenue").filter(pl.col("action") == "drop").sum().alias("drop_revenue"),
    )
    known = regions.group_by("region").agg(pl.col("store_id").n_unique().alias("all_stores"))
    per = per.join(known, on="region", how="full", coalesce=True).with_columns(
        pl.col("stores").fill_null(pl.col("all_stores")).fill_null(0),
        *(pl.col(c).fill_null(0) for c in ("adds", "drops", "add_revenue", "drop_revenue")),
    )
    strongest: dict[str, dict[str, Any]] = {}
    for row in patterns.iter_rows(named=True):  # strongest first: the first one seen per region wins
        strongest.setdefault(row["region"], row)
    counts = dict(patterns.group_by("region").len().rows())
    # a search for a store id finds its region's row too
    store_ids = dict(
        advice.group_by("region").agg(pl.col("store_id").unique().sort().str.join(" ")).iter_rows()
    )
    rows = []
    for r in per.sort(
        pl.col("add_revenue") + pl.col("drop_revenue"), "region", descending=[True, False]
    ).iter_rows(named=True):
        top = strongest.get(r["region"])
        rows.append(
            {
                **r,
                "at_stake": r["add_revenue"] + r["drop_revenue"],
                "patterns": counts.get(r["region"], 0),
                "store_ids": store_ids.get(r["region"], ""),
                "finding": _finding(top) if top else None,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------- advice
def advice_rows(assortment: pl.DataFrame, *, keeps: int, changes: int) -> tuple[list[dict[str, Any]], int]:
    """Return the advice rows the page lists (per store: adds and drops up to ``changes`` each by
    expected revenue, then the ``keeps`` best-selling keeps), ordered region, store, action, revenue;
    and how many rows were left for the CSV."""
    names = dict(assortment.select("sku", "name").unique("sku").drop_nulls("name").iter_rows())
    ranked = assortment.with_columns(
        pl.col("expected_weekly_revenue")
        .rank("ordinal", descending=True)
        .over("store_id", "action")
        .alias("rank"),
        pl.col("action").replace_strict(ACTION_ORDER, default=3).alias("action_order"),
    )
    limit = pl.when(pl.col("action") == "keep").then(keeps).otherwise(changes)
    shown = ranked.filter(pl.col("rank") <= limit).sort(
        "region", "store_id", "action_order", "rank", nulls_last=True
    )
    rows = []
    for r in shown.iter_rows(named=True):
        r["reason"] = plain(r.get("reason"))
        replaces = r.get("replaces")
        r["replaces_name"] = names.get(replaces, replaces) if replaces else None
        rows.append(r)
    return rows, assortment.height - shown.height


def store_index(assortment: pl.DataFrame, regions: pl.DataFrame) -> list[dict[str, Any]]:
    """Return region -> stores with their adds and drops, for the region -> store -> category path."""
    counts = (
        assortment.group_by("store_id")
        .agg(
            (pl.col("action") == "add").sum().alias("adds"),
            (pl.col("action") == "drop").sum().alias("drops"),
            pl.col("category").filter(pl.col("action") != "keep").unique().sort().alias("changed"),
        )
        .join(regions, on="store_id", how="left")
        .with_columns(pl.col("region").fill_null("region unknown"))
        .sort("region", "store_id")
    )
    out = []
    for (region,), part in counts.group_by("region", maintain_order=True):
        out.append({"region": region, "stores": part.to_dicts()})
    return out


# --------------------------------------------------------------------------------------------- patterns
def pattern_rows(patterns: pl.DataFrame, *, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Return the pattern entries listed (strongest first, as mined) and how many were left out. The
    rows of one discovered event (same event_id) make one entry, a card: ``skus`` lists each SKU with
    its lift and interval, strongest first; the others are one entry per row."""
    is_event = (pl.col("kind") == "discovered_event") & pl.col("event_id").is_not_null()
    keyed = patterns.with_row_index("_order").with_columns(
        pl.when(is_event)
        .then(pl.lit("event:") + pl.col("event_id"))
        .otherwise(pl.lit("row:") + pl.col("_order").cast(pl.String))
        .alias("_entry")
    )
    entries = keyed["_entry"].unique(maintain_order=True)
    shown = keyed.filter(pl.col("_entry").is_in(entries.head(limit).implode()))
    rows = []
    for _, part in shown.group_by("_entry", maintain_order=True):
        r = part.drop("_order", "_entry").row(0, named=True)
        title = KIND_TEXT.get(r["kind"], (r["kind"], ""))[0]
        row = {**r, "kind_title": title, "sentence": plain(r.get("explanation")) or _finding(r)["text"]}
        if part.height > 1 or r["kind"] == "discovered_event":
            row.update(_event_card(part))
        rows.append(row)
    return rows, max(entries.len() - limit, 0)


def _event_card(window: pl.DataFrame) -> dict[str, Any]:
    """The card fields of one discovered event's rows: its SKUs (name, lift, interval) strongest
    first, the range of their lifts, and the category when all share one (else None)."""
    skus = window.sort("lift", descending=True, nulls_last=True)
    categories = set(skus["category"].to_list())
    lifts = skus["lift"].drop_nulls()
    return {
        "card": True,
        "skus": [
            {k: s.get(k) for k in ("sku", "name", "lift", "ci_low", "ci_high")}
            for s in skus.iter_rows(named=True)
        ],
        "lift": lifts.max() if lifts.len() else None,
        "lift_low": lifts.min() if lifts.len() else None,
        "category": categories.pop() if len(categories) == 1 else None,
    }


def kind_counts(patterns: pl.DataFrame) -> list[dict[str, Any]]:
    """Return kind, title, description and count for every kind known or found (a discovered event
    counts once, however many SKUs it has)."""
    entry = (
        pl.when((pl.col("kind") == "discovered_event") & pl.col("event_id").is_not_null())
        .then(pl.lit("event:") + pl.col("event_id"))
        .otherwise(pl.lit("row:") + pl.int_range(pl.len()).cast(pl.String))
    )
    counts = dict(patterns.group_by("kind").agg(entry.n_unique()).rows())
    kinds = list(KIND_TEXT) + sorted(k for k in counts if k not in KIND_TEXT)
    return [
        {
            "kind": k,
            "title": KIND_TEXT.get(k, (k, ""))[0],
            "description": KIND_TEXT.get(k, ("", ""))[1],
            "count": counts.get(k, 0),
        }
        for k in kinds
        if k in counts or k != "discovered_event"
    ]


# --------------------------------------------------------------------------------------------- pre-stock
PRESTOCK_KEYS = ("event_type", "event_name", "event_id", "window_start", "window_end", "region", "sku")


def prestock_rows(prestock: pl.DataFrame, *, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Return the pre-stock plan summed over each region's stores (one row per event, region and
    product; the reason is that of the store needing most) and how many rows were left out."""
    if prestock.height == 0:
        return [], 0
    # columns a run from before they existed has only as nulls (conform adds them) are left out
    prestock = prestock.select(c for c in prestock.columns if prestock[c].null_count() < prestock.height)
    keys = [c for c in PRESTOCK_KEYS if c in prestock.columns]
    sums = [
        pl.col(c).sum() for c in ("baseline_units", "extra_units", "order_units") if c in prestock.columns
    ]
    firsts = [pl.col(c).first() for c in ("lift", "reason", "name") if c in prestock.columns]
    if "stock_by" in prestock.columns:
        firsts.append(pl.col("stock_by").min())
    lines = (
        prestock.sort("extra_units", descending=True, nulls_last=True)
        .group_by(keys, maintain_order=True)
        .agg(pl.col("store_id").n_unique().alias("stores"), *sums, *firsts)
        .sort("extra_units", descending=True, nulls_last=True)
    )
    rows = [{**r, "reason": plain(r.get("reason"))} for r in lines.head(limit).iter_rows(named=True)]
    return rows, max(lines.height - limit, 0)
