"""report.html: what a merchandiser opens on Monday morning to decide what changes in which stores.

Region summary first, then region -> store -> category, with search, filters and sortable tables that
work from disk (a small inline script; no network, no CDN). Charts are matplotlib SVG inline: a few
tens of kB each and no JavaScript library, where Vega-Lite or plotly would add 0.8-4.5 MB of inlined
script to every page for interactions the tables already give. Rendered with Jinja2, autoescaping on.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from flows.lake.outputs import OutPaths
from flows.lake.paths import LakePaths
from flows.report import charts, sections, series, timecharts
from flows.report.common import environment, quality, write_page
from flows.report.inputs import ReportInputs, read_inputs
from flows.report.settings import ReportSettings


def _summary(inputs: ReportInputs, run_info: dict[str, Any]) -> dict[str, Any]:
    a = inputs.assortment
    counts = dict(a.group_by("action").len().rows())
    revenue = {
        act: a.filter(pl.col("action") == act)["expected_weekly_revenue"].sum() for act in ("add", "drop")
    }
    return {
        "as_of": run_info.get("as_of", "unknown"),
        "horizon": run_info.get("horizon"),
        "stores": a["store_id"].n_unique(),
        "skus": a["sku"].n_unique(),
        "actions": {act: counts.get(act, 0) for act in ("add", "drop", "keep")},
        "add_revenue": revenue["add"],
        "drop_revenue": revenue["drop"],
        "patterns": sum(k["count"] for k in sections.kind_counts(inputs.patterns)),
    }


def _filters(inputs: ReportInputs) -> dict[str, Any]:
    """Return the choices of each filter and store -> region (a chosen store narrows the region-level
    tables, patterns and pre-stock, to its region)."""
    a, p = inputs.assortment, inputs.patterns

    def values(*cols: pl.Series) -> list[str]:
        return sorted({v for c in cols for v in c.drop_nulls().to_list()})

    return {
        "region": values(a["region"], p["region"], inputs.prestock["region"]),
        "store": values(a["store_id"]),
        "category": values(a["category"], p["category"]),
        "action": [x for x in ("add", "drop", "keep") if x in set(a["action"].to_list())],
        "kind": [k["kind"] for k in sections.kind_counts(p) if k["count"]],
        "store_regions": dict(inputs.store_regions.drop_nulls().iter_rows()),
    }


def _over_time(inputs: ReportInputs, settings: ReportSettings) -> dict[str, Any]:
    """Return the charts that need the lake's sales: demand around events, the regional index, and
    history next to the forecast (chain total and the store x SKU examples)."""
    lake, as_of = inputs.lake, inputs.as_of
    out: dict[str, Any] = {"event_curves": None, "region_index": None, "chain": None, "examples": []}
    if lake is None or as_of is None:
        return out
    out["event_curves"] = timecharts.event_curve_chart(
        series.event_curves(lake.store_sales, lake.stores, lake.events, inputs.patterns, as_of=as_of)
    )
    out["region_index"] = timecharts.region_index_chart(
        series.region_index(lake.store_sales, lake.stores, lake.products, as_of=as_of)
    )
    if inputs.forecast is None:
        return out
    fc = pl.scan_parquet(inputs.forecast)
    chain_fc = fc.group_by("date").agg(pl.col("units").sum()).sort("date").collect()
    days = settings.history_days
    out["chain"] = timecharts.history_forecast_chart(
        series.chain_history(lake.store_sales, fc, as_of=as_of, days=days),
        chain_fc,
        title="Units per day, all stores: sold, then forecast",
        chart_id="chain-forecast",
        as_of=as_of,
    )
    pairs = series.example_pairs(
        inputs.assortment, fc, store=settings.example_store, sku=settings.example_sku, top=settings.examples
    )
    out["examples"] = _examples(lake.store_sales, fc, pairs, as_of=as_of, days=days)
    return out


def _examples(
    sales: pl.LazyFrame, fc: pl.LazyFrame, pairs: pl.DataFrame, *, as_of: date, days: int
) -> list[dict[str, Any]]:
    hist = series.history(sales, pairs, as_of=as_of, days=days)
    fcs = fc.join(pairs.lazy().select("store_id", "sku"), on=["store_id", "sku"], how="semi").collect()
    out = []
    for i, r in enumerate(pairs.iter_rows(named=True)):
        key = (pl.col("store_id") == r["store_id"]) & (pl.col("sku") == r["sku"])
        title = f"Store {r['store_id']} \u00b7 {r.get('name') or r['sku']}"
        svg = timecharts.history_forecast_chart(
            hist.filter(key), fcs.filter(key), title=title, chart_id=f"example-{i}", as_of=as_of
        )
        if svg:
            out.append({"id": f"example-{i}", "label": f"{r.get('region') or ''} \u00b7 {title}", "svg": svg})
    return out


def render_report(
    out: OutPaths,
    run_info: dict[str, Any],
    *,
    lake: LakePaths | None = None,
    settings: ReportSettings | None = None,
) -> Path:
    """Read the run's outputs from ``out`` (a missing table counts as empty and is named on the page),
    the sales history from ``lake`` (default: the lake run.json names; without one the charts over
    time are left out) and write out.report, a page that opens from disk. Returns the path written."""
    settings = settings or ReportSettings()
    inputs = read_inputs(out, run_info, lake)
    advice, advice_hidden = sections.advice_rows(
        inputs.assortment, keeps=settings.keeps_per_store, changes=settings.changes_per_store
    )
    patterns, patterns_hidden = sections.pattern_rows(inputs.patterns, limit=settings.patterns_shown)
    prestock, prestock_hidden = sections.prestock_rows(inputs.prestock, limit=settings.prestock_shown)
    context = {
        "currency": settings.currency,
        "summary": _summary(inputs, run_info),
        "regions": sections.region_summary(inputs.assortment, inputs.patterns, inputs.store_regions),
        "findings": sections.findings(inputs.patterns),
        "filters": _filters(inputs),
        "store_index": sections.store_index(inputs.assortment, inputs.store_regions),
        "advice": {
            "rows": advice,
            "hidden": advice_hidden,
            "settings": settings,
            "replaces": any(row.get("replaces") for row in advice),
        },
        "kinds": sections.kind_counts(inputs.patterns),
        "patterns": {"rows": patterns, "hidden": patterns_hidden},
        "lift_charts": [
            (
                k["title"],
                charts.pattern_lift_chart(inputs.patterns, kind=k["kind"], title=f"{k['title']}: strongest"),
            )
            for k in sections.kind_counts(inputs.patterns)
            if k["count"]
        ],
        "prestock": {
            "rows": prestock,
            "hidden": prestock_hidden,
            "chart": charts.prestock_chart(inputs.prestock),
        },
        "charts": _over_time(inputs, settings),
        "quality": quality(run_info, page=out.report),
        "missing": inputs.missing,
    }
    return write_page(out.report, environment().get_template("report.html.j2").render(**context))


# backtest/report.html lives in its own module; the flows import it from here too
from flows.report.backtest_page import render_backtest_report  # noqa: E402, F401
