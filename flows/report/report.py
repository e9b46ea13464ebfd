"""The HTML pages people open from disk: report.html for merchandisers, backtest/report.html for planners.

Both are self-contained (inline CSS, charts as inline SVG, no script or style from the network) and are
rendered with Jinja2 with autoescaping on, so text from the data (reasons, SKU names) can never become
markup. Big tables are trimmed for the page and say so; the full data is in the CSV/Parquet files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from data_contracts.outputs import (
    ASSORTMENT_BACKTEST_COLUMNS,
    ASSORTMENT_COLUMNS,
    EVENT_BACKTEST_COLUMNS,
    FORECAST_METRICS_COLUMNS,
    PATTERN_COLUMNS,
    PATTERN_KINDS,
    PRESTOCK_COLUMNS,
)
from flows.lake.outputs import OutPaths
from flows.lake.paths import LakePaths, read_reference
from flows.report import charts
from flows.report.common import environment, fmt_num, fmt_pct, fmt_times, quality, read_table, write_page

KEEPS_SHOWN = 10  # per store: adds and drops are all shown (up to CHANGES_SHOWN), keeps only the best
CHANGES_SHOWN = 60
PATTERNS_SHOWN = 40
PRESTOCK_SHOWN = 30
LEVEL_ORDER = ("total", "region", "category", "store")
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
}


# --------------------------------------------------------------------------------------------- inputs
def _reference(run_info: dict[str, Any], name: str) -> pl.DataFrame | None:
    """Return reference table ``name`` from the run's lake when run_info names one that exists; the
    report works without it (product names and store regions are then only what the outputs carry)."""
    lake = (run_info.get("inputs") or {}).get("lake")
    if not lake or not Path(lake).exists():
        return None
    try:
        df = read_reference(LakePaths(Path(lake)), name)
    except (OSError, pl.exceptions.PolarsError):
        return None
    return df if df.height else None


def _store_regions(run_info: dict[str, Any], prestock: pl.DataFrame) -> pl.DataFrame:
    """Return store_id -> region: from the lake's stores table, else what the pre-stock plan shows."""
    stores = _reference(run_info, "stores")
    if stores is not None:
        return stores.select("store_id", "region").unique("store_id")
    return prestock.select("store_id", "region").drop_nulls().unique("store_id", keep="first")


def _product_names(run_info: dict[str, Any], assortment: pl.DataFrame) -> pl.DataFrame:
    """Return ``assortment`` with a ``name`` column: from the output itself, else the lake's products."""
    if "name" in assortment.columns:
        return assortment
    products = _reference(run_info, "products")
    if products is None:
        return assortment.with_columns(pl.lit(None, dtype=pl.String).alias("name"))
    return assortment.join(products.select("sku", "name").unique("sku"), on="sku", how="left")


# --------------------------------------------------------------------------------------------- sections
def _findings(patterns: pl.DataFrame, assortment: pl.DataFrame, limit: int = 3) -> list[str]:
    """Return up to ``limit`` plain sentences: the strongest pattern of each kind first (patterns come
    strongest first), then the next strongest; the advice in numbers when patterns are few."""
    rows = patterns.with_row_index("order").filter(pl.col("lift").is_not_null())
    first = rows.group_by("kind").agg(pl.col("order").min()).get_column("order").to_list()
    picked = sorted(first)[:limit]
    picked += [i for i in rows["order"].to_list() if i not in picked][: limit - len(picked)]
    by_order = {r["order"]: r for r in rows.iter_rows(named=True)}
    out = [by_order[i]["explanation"] or _pattern_sentence(by_order[i]) for i in picked]
    adds = assortment.filter(pl.col("action") == "add")
    if len(out) < limit and adds.height:
        out.append(
            f"The advice adds {adds.height:,} products across {adds['store_id'].n_unique():,} stores, "
            f"expected to sell {fmt_num(adds['expected_weekly_units'].sum())} units a week."
        )
    return out


def _pattern_sentence(row: dict[str, Any]) -> str:
    """A fallback sentence for a pattern without an explanation."""
    context = f" around {row['event_type']}" if row.get("event_type") else ""
    return f"{row['sku']} in {row['region']}{context}: {fmt_times(row['lift'])} ({row['kind']})."


def _summary(run_info: dict[str, Any], assortment: pl.DataFrame, patterns: pl.DataFrame) -> dict[str, Any]:
    counts = dict(assortment.group_by("action").len().rows())
    kinds = dict(patterns.group_by("kind").len().rows())
    return {
        "as_of": run_info.get("as_of", "unknown"),
        "horizon": run_info.get("horizon"),
        "stores": assortment["store_id"].n_unique(),
        "skus": assortment["sku"].n_unique(),
        "actions": {a: counts.get(a, 0) for a in ("add", "drop", "keep")},
        "kinds": [(KIND_TEXT.get(k, (k, ""))[0], kinds.get(k, 0)) for k in PATTERN_KINDS],
        "add_revenue": assortment.filter(pl.col("action") == "add")["expected_weekly_revenue"].sum(),
        "drop_revenue": assortment.filter(pl.col("action") == "drop")["expected_weekly_revenue"].sum(),
    }


def _store_sections(assortment: pl.DataFrame, regions: pl.DataFrame) -> list[dict[str, Any]]:
    """Return one section per store: its region, counts, and the rows shown (adds and drops by
    expected revenue, then the best keeps), with how many were left out."""
    ranked = assortment.with_columns(
        pl.col("expected_weekly_revenue")
        .rank("ordinal", descending=True)
        .over("store_id", "action")
        .alias("rank"),
        pl.col("action").replace_strict({"add": 0, "drop": 1, "keep": 2}, default=3).alias("action_order"),
    )
    limit = pl.when(pl.col("action") == "keep").then(KEEPS_SHOWN).otherwise(CHANGES_SHOWN)
    shown = ranked.filter(pl.col("rank") <= limit).sort("store_id", "action_order", "rank")
    counts = assortment.group_by("store_id", "action").len()
    region_of = dict(regions.iter_rows()) if regions.height else {}
    sections = []
    for i, store in enumerate(sorted(assortment["store_id"].unique().to_list())):
        n = dict(counts.filter(pl.col("store_id") == store).select("action", "len").iter_rows())
        rows = shown.filter(pl.col("store_id") == store)
        hidden = sum(n.values()) - rows.height
        sections.append(
            {
                "anchor": f"store-{i}",
                "store_id": store,
                "region": region_of.get(store),
                "counts": {a: n.get(a, 0) for a in ("add", "drop", "keep")},
                "rows": rows.to_dicts(),
                "hidden": hidden,
            }
        )
    return sections


def _pattern_sections(patterns: pl.DataFrame) -> list[dict[str, Any]]:
    """Return one section per pattern kind: title, plain description, count, chart, top rows."""
    sections = []
    for kind in PATTERN_KINDS:
        rows = patterns.filter(pl.col("kind") == kind)
        title, description = KIND_TEXT[kind]
        chart = charts.pattern_lift_chart(rows, kind=kind, title=f"{title}: strongest lifts")
        sections.append(
            {
                "kind": kind,
                "title": title,
                "description": description,
                "count": rows.height,
                "chart": chart,
                "rows": rows.head(PATTERNS_SHOWN).to_dicts(),
                "hidden": max(rows.height - PATTERNS_SHOWN, 0),
            }
        )
    return sections


def _prestock_sections(prestock: pl.DataFrame) -> list[dict[str, Any]]:
    """Return one section per event type: totals per region and the largest region x SKU lines
    (summed over stores; the reason shown is the one of the store needing most)."""
    lines = (
        prestock.sort("extra_units", descending=True, nulls_last=True)
        .group_by("event_type", "region", "sku", maintain_order=True)
        .agg(
            pl.col("store_id").n_unique().alias("stores"),
            pl.col("baseline_units").sum(),
            pl.col("extra_units").sum(),
            pl.col("lift").first(),
            pl.col("reason").first(),
            pl.col("name").first(),
        )
        .sort("extra_units", descending=True, nulls_last=True)
    )
    sections = []
    for event_type in sorted(lines["event_type"].drop_nulls().unique().to_list()):
        rows = lines.filter(pl.col("event_type") == event_type)
        by_region = (
            prestock.filter(pl.col("event_type") == event_type)
            .group_by("region")
            .agg(
                pl.col("store_id").n_unique().alias("stores"),
                pl.col("sku").n_unique().alias("skus"),
                pl.col("extra_units").sum(),
            )
            .sort("extra_units", descending=True, nulls_last=True)
        )
        sections.append(
            {
                "event_type": event_type,
                "regions": by_region.to_dicts(),
                "rows": rows.head(PRESTOCK_SHOWN).to_dicts(),
                "hidden": max(rows.height - PRESTOCK_SHOWN, 0),
            }
        )
    return sections


def _forecast_chart(path: Path, regions: pl.DataFrame) -> str | None:
    """Return the forecast chart: units per day summed over the chain and per region (lazily, since
    the forecast is stores x SKUs x days)."""
    if not path.exists():
        return None
    per_store = (
        pl.scan_parquet(path)
        .select(
            pl.col("store_id").cast(pl.String), pl.col("date").cast(pl.Date), pl.col("units").cast(pl.Float64)
        )
        .group_by("store_id", "date")
        .agg(pl.col("units").sum())
        .collect()
    )
    chain = per_store.group_by("date").agg(pl.col("units").sum())
    # A store the mapping does not know is shown as such, so the regions still add up to the chain.
    by_region = per_store.join(regions, on="store_id", how="left").with_columns(
        pl.col("region").fill_null("region unknown")
    )
    return charts.forecast_chart(chain, by_region.select("date", "region", "units"))


# --------------------------------------------------------------------------------------------- pages
def render_report(out: OutPaths, run_info: dict[str, Any]) -> Path:
    """Read the run's forecast, patterns, assortment and pre-stock tables (a missing one counts as
    empty and is named on the page) and ``run_info`` (the run.json dict), and write out.report: a
    self-contained HTML page that opens from disk. Returns the path written."""
    tables = {
        "patterns": (out.patterns, PATTERN_COLUMNS),
        "assortment": (out.assortment, ASSORTMENT_COLUMNS),
        "prestock": (out.prestock, PRESTOCK_COLUMNS),
    }
    frames = {name: read_table(path, schema) for name, (path, schema) in tables.items()}
    missing = [path.name for name, (path, _) in tables.items() if frames[name] is None]
    missing += [] if out.forecast.exists() else [out.forecast.name]
    patterns, assortment, prestock = (
        frames[n] if frames[n] is not None else pl.DataFrame(schema=tables[n][1]) for n in tables
    )
    regions = _store_regions(run_info, prestock)
    assortment, patterns, prestock = (_product_names(run_info, df) for df in (assortment, patterns, prestock))
    context = {
        "summary": _summary(run_info, assortment, patterns),
        "findings": _findings(patterns, assortment),
        "stores": _store_sections(assortment, regions),
        "patterns": _pattern_sections(patterns),
        "prestock": _prestock_sections(prestock),
        "prestock_chart": charts.prestock_chart(prestock),
        "forecast_chart": _forecast_chart(out.forecast, regions),
        "quality": quality(run_info),
        "missing": missing,
        "limits": {
            "keeps": KEEPS_SHOWN,
            "changes": CHANGES_SHOWN,
            "patterns": PATTERNS_SHOWN,
            "prestock": PRESTOCK_SHOWN,
        },
    }
    return write_page(out.report, environment().get_template("report.html.j2").render(**context))


def verdicts(metrics: pl.DataFrame, *, metric: str = "wape", level: str = "total") -> list[str]:
    """Return one plain sentence per baseline: in how many folds LightGBM had the lower ``metric`` at
    ``level`` (the first level present when that one is not), e.g. "LightGBM beat the seasonal-naive
    baseline on WAPE in 3 of 3 folds (mean 21% vs 27%)."."""
    rows = metrics.filter(pl.col(metric).is_not_null() & pl.col(metric).is_finite())
    if rows.height == 0:
        return []
    levels = rows["level"].unique().to_list()
    if level not in levels:
        level = next((lv for lv in LEVEL_ORDER if lv in levels), sorted(levels)[0])
    rows = rows.filter(pl.col("level") == level)
    models = sorted(rows["model"].unique().to_list())
    main = next((m for m in models if charts.is_main_model(m)), None)
    if main is None:
        return [f"No LightGBM rows in the forecast metrics (models: {', '.join(models)})."]
    ours = rows.filter(pl.col("model") == main).select("cutoff", pl.col(metric).alias("ours"))
    sentences = []
    for base in (m for m in models if m != main):
        pair = ours.join(rows.filter(pl.col("model") == base).select("cutoff", metric), on="cutoff")
        if pair.height == 0:
            continue
        wins = pair.filter(pl.col("ours") < pl.col(metric)).height
        # "beat in 1 of 3 folds" reads plainly either way; say so when it is not a majority
        caveat = "" if wins * 2 > pair.height else ", so it is not clearly better"
        sentences.append(
            f"LightGBM beat the {base.replace('_', '-')} baseline on {metric.upper()} at the {level} level "
            f"in {wins} of {pair.height} folds (mean {_metric_text(metric, pair['ours'].mean())} vs "
            f"{_metric_text(metric, pair[metric].mean())}){caveat}."
        )
    return sentences


def _metric_text(metric: str, value: Any) -> str:
    return fmt_pct(value) if metric == "wape" else fmt_num(value, 3)


def _metric_table(metrics: pl.DataFrame) -> list[dict[str, Any]]:
    """Return mean metrics over folds per level and model, levels in their natural order."""
    cols = [c for c in ("wape", "mae", "bias", "rmsse", "wrmsse") if c in metrics.columns]
    order = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    table = metrics.group_by("level", "model").agg(
        pl.len().alias("folds"), *(pl.col(c).filter(pl.col(c).is_finite()).mean() for c in cols)
    )
    return sorted(
        table.to_dicts(),
        key=lambda r: (
            order.get(r["level"], len(order)),
            r["level"],
            not charts.is_main_model(r["model"]),
            r["model"],
        ),
    )


def _coverage(assortment: pl.DataFrame) -> pl.DataFrame:
    """Return cutoff, strategy, demand_covered_share for the chain: the 'ALL' rows when the backtest
    wrote them, else the mean over stores."""
    chain = assortment.filter(pl.col("store_id") == "ALL")
    if chain.height == 0:
        chain = assortment.group_by("cutoff", "strategy").agg(pl.col("demand_covered_share").mean())
    return chain.select("cutoff", "strategy", "demand_covered_share").sort("cutoff", "strategy")


def _event_means(events: pl.DataFrame) -> list[dict[str, Any]]:
    """Return mean precision and recall per event type (events where a value is undefined are skipped)."""
    return (
        events.group_by("event_type")
        .agg(
            pl.len().alias("events"),
            pl.col("precision").filter(pl.col("precision").is_finite()).mean(),
            pl.col("recall").filter(pl.col("recall").is_finite()).mean(),
            pl.col("hits").sum(),
            pl.col("flagged").sum(),
            pl.col("actual_risers").sum(),
        )
        .sort("event_type")
        .to_dicts()
    )


def event_verdict(events: pl.DataFrame) -> str | None:
    """Return one sentence pooling all held-out events: the share of flagged products that really rose
    and the share of risers that were flagged (None when nothing was flagged and nothing rose)."""
    flagged, risers, hits = (int(events[c].fill_null(0).sum()) for c in ("flagged", "actual_risers", "hits"))
    if flagged == 0 and risers == 0:
        return None
    precision = f"{hits / flagged:.0%}" if flagged else "none (nothing was flagged)"
    recall = f"{hits / risers:.0%}" if risers else "undefined (nothing rose)"
    return (
        f"Over {events.height} held-out events, {flagged} products were flagged for pre-stock and {risers} "
        f"really rose: {precision} of the flags were right, and {recall} of the risers were flagged."
    )


def _metrics_section(metrics: pl.DataFrame) -> dict[str, Any]:
    """Return the forecast-accuracy section: verdicts, WAPE and RMSSE charts, the mean table."""
    drawn = (charts.metric_by_model_chart(metrics, m, levels=LEVEL_ORDER) for m in ("wape", "rmsse"))
    return {
        "verdicts": verdicts(metrics) + verdicts(metrics, metric="rmsse"),
        "charts": [c for c in drawn if c is not None],
        "table": _metric_table(metrics),
    }


def _events_section(events: pl.DataFrame) -> dict[str, Any]:
    """Return the event-backtest section: verdict, chart, means per event type, every event."""
    return {
        "chart": charts.event_backtest_chart(events),
        "by_type": _event_means(events),
        "verdict": event_verdict(events),
        "rows": events.sort("start_date", "event_id").to_dicts(),
    }


def _coverage_section(assortment: pl.DataFrame) -> dict[str, Any]:
    """Return the assortment-coverage section: verdicts, chart, one row per fold."""
    coverage = _coverage(assortment)
    return {
        "chart": charts.coverage_chart(coverage),
        "strategies": sorted(coverage["strategy"].unique().to_list(), key=lambda s: (s != "advised", s)),
        "rows": _coverage_rows(coverage),
        "verdicts": coverage_verdicts(coverage),
    }


def render_backtest_report(backtest_dir: Path, run_info: dict[str, Any]) -> Path:
    """Read forecast_metrics.parquet, event_backtest.parquet and assortment_backtest.parquet from
    ``backtest_dir`` (each may be missing: the page says so) and write backtest_dir/report.html with
    charts, tables and plain verdict sentences. Returns the path written."""
    sections = {
        "metrics": ("forecast_metrics.parquet", FORECAST_METRICS_COLUMNS, _metrics_section),
        "events": ("event_backtest.parquet", EVENT_BACKTEST_COLUMNS, _events_section),
        "coverage": ("assortment_backtest.parquet", ASSORTMENT_BACKTEST_COLUMNS, _coverage_section),
    }
    context: dict[str, Any] = {
        "info": {
            "as_of": run_info.get("as_of", "unknown"),
            "horizon": run_info.get("horizon"),
            "cutoffs": [str(c) for c in run_info.get("cutoffs") or []],
        },
        "quality": quality(run_info),
    }
    for key, (name, schema, build) in sections.items():
        df = read_table(backtest_dir / name, schema)
        context[key] = build(df) if df is not None else None
    html = environment().get_template("backtest.html.j2").render(**context)
    return write_page(backtest_dir / "report.html", html)


def coverage_verdicts(coverage: pl.DataFrame, *, ours: str = "advised") -> list[str]:
    """Return one sentence per other strategy: in how many folds the advised assortment carried a
    larger share of the held-out demand."""
    wide = coverage.pivot(on="strategy", index="cutoff", values="demand_covered_share")
    if ours not in wide.columns:
        return []
    sentences = []
    for other in sorted(c for c in wide.columns if c not in ("cutoff", ours)):
        pair = wide.select(ours, other).drop_nulls()
        if pair.height == 0:
            continue
        wins = pair.filter(pl.col(ours) > pl.col(other)).height
        sentences.append(
            f"The {ours} assortment carried more of the held-out demand than the {other} one in {wins} of "
            f"{pair.height} folds (mean {fmt_pct(pair[ours].mean())} vs {fmt_pct(pair[other].mean())})."
        )
    return sentences


def _coverage_rows(coverage: pl.DataFrame) -> list[dict[str, Any]]:
    """Return one row per fold with the covered share of each strategy as columns."""
    wide = coverage.pivot(on="strategy", index="cutoff", values="demand_covered_share").sort("cutoff")
    return wide.to_dicts()
