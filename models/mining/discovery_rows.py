"""Discovered events as ``patterns.parquet`` rows (kind ``discovered_event``), each with its card text,
from the lake tables: demand per region x SKU x day (stores plus online orders shipped there) and the
days labeled events cover go into ``models.mining.discovery.scan``.

One row per window x SKU; the rows of one window share ``event_id``, ``window_start``, ``window_end``
and the ``explanation``, a sentence a merchandiser reads as the window's card: "On 2025-08-14 to 08-17
in GULF_COAST, water, batteries and toaster pastries sold 3-6x their expected rate together; no event is
labeled for these days. Looks like a hurricane: 5 of its 7 SKUs are hurricane risers." The resemblance
compares the window's SKUs with the risers of every mined event type (``event_uplift`` rows of the same
run): those of the window's region, else of any region.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import cast

import polars as pl

from data_contracts.schemas import CHAIN_WIDE
from data_contracts.tables import LakeTables
from features.signals import daily_online_buyers
from models.mining.discovery import DiscoverySettings, build_cube, scan
from models.mining.discovery_stores import part_units, store_consistent

ROW_SCHEMA = pl.Schema(
    {
        "kind": pl.String,
        "region": pl.String,
        "sku": pl.String,
        "lift": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "support": pl.Int64,
        "p_value": pl.Float64,
        "q_value": pl.Float64,
        "window_start": pl.Date,
        "window_end": pl.Date,
        "event_id": pl.String,
        "explanation": pl.String,
    }
)
SHOWN_NAMES = 3
# a run's mined patterns when none passed: the columns ``discovered_event_rows`` reads of them
_TEXT = dict.fromkeys(("kind", "region", "event_type", "sku"), pl.String)
NO_PATTERNS = pl.DataFrame(schema={**_TEXT, "lift": pl.Float64})


def region_daily_units(
    sales: pl.LazyFrame,
    stores: pl.LazyFrame,
    orders: pl.LazyFrame,
    postal_regions: pl.LazyFrame,
    *,
    as_of: date,
) -> pl.LazyFrame:
    """Demand per region, SKU and day: store units (returns net) plus online buyers shipped to the
    region (``features.signals.daily_online_buyers``: a business's case is one buyer).

    ``sales`` is lake store_sales, ``orders`` lake online_orders. Returns region, sku, date, units,
    promo (a store of the region had the SKU on promo that day).
    """
    has_promo = "promo" in sales.collect_schema().names()
    store = (
        sales.filter(pl.col("date") <= as_of)
        .join(stores.select("store_id", "region"), on="store_id")
        .group_by("region", "sku", "date")
        .agg(
            pl.col("units").cast(pl.Float64).fill_null(0.0).sum().alias("units"),
            (pl.col("promo").fill_null(False).any() if has_promo else pl.lit(False)).alias("promo"),
        )
    )
    online = daily_online_buyers(orders, postal_regions, as_of=as_of).select(
        "region", "sku", "date", pl.col("buyers").alias("units"), pl.lit(False).alias("promo")
    )
    cols = ["region", "sku", "date", "units", "promo"]
    return (
        pl.concat([store.select(cols), online.select(cols)])
        .group_by("region", "sku", "date")
        .agg(pl.col("units").sum().clip(lower_bound=0), pl.col("promo").any())
    )


def labeled_days(events: pl.DataFrame, *, lead_days: int) -> pl.DataFrame:
    """Every (region, date) a labeled event window [start - lead_days, end] covers (region may be ALL)."""
    return (
        events.select(
            "region",
            pl.date_ranges(pl.col("start_date") - timedelta(days=lead_days), "end_date").alias("date"),
        )
        .explode("date")
        .unique()
    )


def begun_by(events: pl.DataFrame, *, as_of: date, lead_days: int) -> pl.DataFrame:
    """The labeled events whose window [start - lead_days, end] has begun by ``as_of``: an upcoming
    event's lead days already lie in the scanned history and are labeled too."""
    return events.filter(pl.col("start_date") - timedelta(days=lead_days) <= as_of)


def _days(start: date, end: date) -> str:
    """'2025-08-14', '2025-08-14 to 08-17' or '2025-12-30 to 2026-01-02'."""
    if start == end:
        return start.isoformat()
    tail = end.strftime("%m-%d") if end.year == start.year else end.isoformat()
    return f"{start.isoformat()} to {tail}"


def _times(x: float) -> str:
    return f"{x:.0f}" if x >= 3 else f"{x:.1f}"


def _names(names: list[str]) -> str:
    """'A', 'A and B', 'A, B and C', 'A, B, C and 4 more SKUs'."""
    shown = names[:SHOWN_NAMES]
    rest = len(names) - len(shown)
    if rest:
        return f"{', '.join(shown)} and {rest} more SKU{'s' if rest > 1 else ''}"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _best_type(skus: set[str], risers: pl.DataFrame) -> tuple[str, int] | None:
    counts = (
        risers.filter(pl.col("sku").is_in(list(skus)))
        .group_by("event_type")
        .agg(pl.col("sku").n_unique().alias("n"))
        .sort(["n", "event_type"], descending=[True, False])
    )
    if counts.height == 0:
        return None
    event_type, n = counts.row(0)
    return (str(event_type), int(n)) if n >= 2 and 2 * n >= len(skus) else None


def resemblance(skus: set[str], region: str, risers: pl.DataFrame) -> tuple[str, int] | None:
    """The mined event type whose risers hold most of ``skus`` (at least 2 and at least half), with
    the count: the risers in ``region`` first, else those of any region (a storm nobody labeled
    inland looks like the coast's hurricanes). ``risers`` has region, event_type, sku (event_uplift
    patterns with lift > 1)."""
    local = _best_type(skus, risers.filter(pl.col("region") == region)) if region != CHAIN_WIDE else None
    return local or _best_type(skus, risers)


def card_text(window: pl.DataFrame, names: dict[str, str], risers: pl.DataFrame) -> str:
    """The card sentence of one window's rows (region, window_start, window_end, sku, lift)."""
    region, start, end = (
        window.row(0, named=True)["region"],
        window["window_start"][0],
        window["window_end"][0],
    )
    ordered = window.sort("lift", descending=True)
    where = "across the chain (every region at once)" if region == CHAIN_WIDE else f"in {region}"
    low, high = float(cast(float, ordered["lift"].min())), float(cast(float, ordered["lift"].max()))
    lo, hi = (f"{low:.0f}", f"{high:.0f}") if low >= 2 and high >= 3 else (_times(low), _times(high))
    rate = f"{lo}x" if lo == hi else f"{lo}-{hi}x"
    text = (
        f"On {_days(start, end)} {where}, {_names([names.get(s) or s for s in ordered['sku']])} sold {rate} "
        "their expected rate together; no event is labeled for these days."
    )
    like = resemblance(set(window["sku"]), region, risers)
    if like:
        kind = like[0].replace("_", " ")
        article = "an" if kind[0] in "aeiou" else "a"
        text += f" Looks like {article} {kind}: {like[1]} of its {window.height} SKUs are {kind} risers."
    return text


def _shared(found: pl.DataFrame, others: pl.DataFrame, slack_days: int) -> pl.DataFrame:
    """Per event_id of ``found``: whether its SKUs are at least half in windows of ``others`` on the
    same days (within ``slack_days``), and the regions of those windows."""
    slack = timedelta(days=slack_days)
    near = others.select(
        "sku",
        pl.col("region").alias("other"),
        pl.col("window_start").alias("os"),
        pl.col("window_end").alias("oe"),
    )
    shared = (
        found.join(near, on="sku")
        .filter(
            (pl.col("os") <= pl.col("window_end") + slack) & (pl.col("oe") >= pl.col("window_start") - slack)
        )
        .group_by("event_id")
        .agg(pl.col("sku").n_unique().alias("shared"), pl.col("other").unique().alias("regions"))
    )
    sizes = found.group_by("event_id").agg(pl.len().alias("n"), pl.col("carriers").first())
    return sizes.join(shared, on="event_id", how="left").select(
        "event_id",
        (pl.col("shared").fill_null(0) * 2 >= pl.col("n")).alias("mostly"),
        pl.col("regions").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        pl.col("carriers").str.split(","),
    )


def one_report_per_spike(found: pl.DataFrame, *, n_regions: int, slack_days: int = 2) -> pl.DataFrame:
    """One report per spike. A chain window carried by fewer than half of the ``n_regions`` regions
    (the scan's ``carriers``: those holding most of its excess) whose SKUs are mostly those of
    regional windows on the same days in every carrying region is their sum (left out); a regional
    window whose SKUs are mostly those of a chain window kept is the chain-wide spike's local echo
    (left out)."""
    is_chain = pl.col("region") == CHAIN_WIDE
    chain, local = found.filter(is_chain), found.filter(~is_chain)
    if chain.height == 0:
        return found
    within = _shared(chain, local, slack_days)
    summed = within.filter(
        pl.col("mostly")
        & (pl.col("carriers").list.len() * 2 < n_regions)
        & (pl.col("carriers").list.set_difference("regions").list.len() == 0)
    )["event_id"]
    chain = chain.filter(~pl.col("event_id").is_in(summed.implode()))
    echoes = _shared(local, chain, slack_days).filter(pl.col("mostly"))["event_id"]
    local = local.filter(~pl.col("event_id").is_in(echoes.implode()))
    return pl.concat([local, chain])


def checked_by_store(
    tables: LakeTables, found: pl.DataFrame, *, as_of: date, settings: DiscoverySettings
) -> pl.DataFrame:
    """The scan's windows x SKUs that rose beyond the store holding most of their excess
    (``models.mining.discovery_stores``), from the store rows of their SKUs around their days."""
    parts = part_units(
        tables.store_sales,
        tables.stores,
        tables.online_orders,
        tables.postal_regions,
        found,
        reach_days=settings.block_days,
        as_of=as_of,
    )
    return store_consistent(
        found,
        parts,
        min_lift=settings.min_lift,
        min_skus=settings.min_skus,
        reach_days=settings.block_days,
        guard_days=settings.guard_days,
    )


def discovered_event_rows(
    tables: LakeTables, *, as_of: date, mined: pl.DataFrame, settings: DiscoverySettings
) -> pl.DataFrame:
    """Every discovered window's SKUs as pattern rows (ROW_SCHEMA), from the lake ``tables`` up to
    ``as_of``; ``mined`` holds the run's passing patterns (its event_uplift rows give the signatures)."""
    daily = region_daily_units(
        tables.store_sales,
        tables.stores.lazy(),
        tables.online_orders,
        tables.postal_regions.lazy(),
        as_of=as_of,
    ).collect()
    if daily.height == 0:
        return pl.DataFrame(schema=ROW_SCHEMA)
    events = begun_by(tables.events, as_of=as_of, lead_days=settings.lead_days)
    cube = build_cube(daily, labeled_days(events, lead_days=settings.lead_days))
    found = scan(cube, settings)
    if settings.store_check:
        found = checked_by_store(tables, found, as_of=as_of, settings=settings)
    found = one_report_per_spike(found, n_regions=len(cube.regions))
    if found.height == 0:
        return pl.DataFrame(schema=ROW_SCHEMA)
    risers = mined.filter((pl.col("kind") == "event_uplift") & (pl.col("lift") > 1)).select(
        "region", "event_type", "sku"
    )
    names = dict(zip(tables.products["sku"], tables.products["name"], strict=True))
    texts = {
        key[0]: card_text(window, names, risers)
        for key, window in found.partition_by("event_id", as_dict=True).items()
    }
    return found.with_columns(
        pl.lit("discovered_event").alias("kind"),
        pl.col("event_id").replace_strict(texts, return_dtype=pl.String).alias("explanation"),
    ).select(ROW_SCHEMA.names())
