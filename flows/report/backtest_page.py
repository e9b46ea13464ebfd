"""backtest/report.html: would the forecast and the advice have worked on held-out time?

Forecast against what really sold, per fold, with the baselines beside the model; accuracy by level;
the event pre-stock flags and the assortment coverage as charts with a plain verdict each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from data_contracts.outputs import (
    ASSORTMENT_BACKTEST_COLUMNS,
    EVENT_BACKTEST_COLUMNS,
    FORECAST_METRICS_COLUMNS,
)
from flows.report import charts, timecharts
from flows.report.common import environment, fmt_pct, fmt_sig, quality, read_table, write_page
from flows.report.inputs import FORECAST_BACKTEST_FILE

LEVEL_ORDER = ("total", "region", "category", "store")


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
    return fmt_pct(value) if metric == "wape" else fmt_sig(value, 3)


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


MEASURE_COLUMN = "demand_measure"  # models.evaluation.advice_backtest.ASSORTMENT_BACKTEST_SCHEMA
HEADLINE_MEASURE = "store"
LEGACY_MEASURE = "region"  # a file without the column: written before the store measure existed
MEASURE_WORDS = {
    "store": (
        "each store's own held-out demand: its own sales of the products it sold, and for a product it did "
        "not sell a fair share of its region's sales by the store's sales volume (a small store is not "
        "credited with a big store's sales), plus its share of the region's online orders"
    ),
    "region": (
        "the region measure: every store of a region credited with the mean sales of the stores that sold "
        "the product, plus the region's online orders per store (it credits a small store with big stores' "
        "sales, so it flatters adds there; kept for comparison with earlier backtests)"
    ),
}


def coverage_measures(assortment: pl.DataFrame) -> list[str]:
    """Return the demand measures the backtest scored on, the headline (``store``) first."""
    if MEASURE_COLUMN not in assortment.columns:
        return [LEGACY_MEASURE]
    found = assortment[MEASURE_COLUMN].fill_null(LEGACY_MEASURE).unique().to_list()
    return sorted(found, key=lambda m: (m != HEADLINE_MEASURE, m))


def _coverage(assortment: pl.DataFrame, measure: str | None = None) -> pl.DataFrame:
    """Return cutoff, strategy, demand_covered_share for the chain on one demand ``measure`` (default:
    the headline one present): the 'ALL' rows when the backtest wrote them, else the mean over stores."""
    measure = measure or coverage_measures(assortment)[0]
    if MEASURE_COLUMN in assortment.columns:
        assortment = assortment.filter(pl.col(MEASURE_COLUMN).fill_null(LEGACY_MEASURE) == measure)
    elif measure != LEGACY_MEASURE:
        assortment = assortment.clear()
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
    """Return the assortment-coverage section on the headline demand measure (verdicts, chart, one row
    per fold, the measure in words) and, per other measure the backtest wrote, its rows."""
    headline, *others = coverage_measures(assortment)
    coverage = _coverage(assortment, headline)
    return {
        "chart": charts.coverage_chart(coverage),
        "strategies": _strategies(coverage),
        "rows": _coverage_rows(coverage),
        "verdicts": coverage_verdicts(coverage),
        "measure": headline,
        "measure_words": MEASURE_WORDS.get(headline, headline),
        "others": [_other_measure(assortment, m) for m in others],
    }


def _other_measure(assortment: pl.DataFrame, measure: str) -> dict[str, Any]:
    """Return the rows of a demand measure shown beside the headline one, with its words."""
    coverage = _coverage(assortment, measure)
    return {
        "measure": measure,
        "measure_words": MEASURE_WORDS.get(measure, measure),
        "strategies": _strategies(coverage),
        "rows": _coverage_rows(coverage),
    }


def _strategies(coverage: pl.DataFrame) -> list[str]:
    return sorted(coverage["strategy"].unique().to_list(), key=lambda s: (s != "advised", s))


Z_80 = 1.2816  # the p10-p90 range of a normal distribution is its mean +- 1.2816 standard deviations


def forecast_totals(forecasts: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Return (cutoff, date, y, one column per model [, p10, p90]) summed over the store x SKU pairs,
    and the model columns, main model first. ``forecasts``: the backtest's long-format predictions
    (cutoff, store_id, sku, date, y, a column per model, optional p10/p90 of the main model).

    The total's p10-p90 is not the sum of the pairs' p10s and p90s (that is far too wide): each pair's
    spread is read as a standard deviation, (p90 - p10) / (2 x 1.2816), and the total's as the root of
    their summed squares, as if pairs varied independently."""
    keys = {"cutoff", "store_id", "sku", "date", "y", "p10", "p90"}
    models = sorted(
        (c for c in forecasts.columns if c not in keys and forecasts[c].dtype.is_numeric()),
        key=lambda m: (not charts.is_main_model(m), m),
    )
    band = {"p10", "p90"} <= set(forecasts.columns) and bool(models)
    spread = [((pl.col("p90") - pl.col("p10")) / (2 * Z_80)).pow(2).sum().sqrt().alias("sd")] if band else []
    totals = (
        forecasts.group_by("cutoff", "date")
        .agg(pl.col("y").sum(), *(pl.col(c).sum() for c in models), *spread)
        .sort("cutoff", "date")
    )
    if band:
        main = pl.col(models[0])
        totals = totals.with_columns(
            (main - Z_80 * pl.col("sd")).clip(lower_bound=0).alias("p10"),
            (main + Z_80 * pl.col("sd")).alias("p90"),
        ).drop("sd")
    return totals, models


def _miss(error: float) -> str:
    """Return "10% too high" for a total forecast ``error`` (forecast / sold - 1)."""
    if abs(error) < 0.005:
        return "on target"
    return f"{fmt_pct(abs(error))} too {'high' if error > 0 else 'low'}"


def _forecasts_section(backtest_dir: Path) -> dict[str, Any] | None:
    """Return the forecast-against-actuals chart and, per fold, the units sold and how far each model's
    total was off; None when the backtest did not keep its predictions."""
    path = backtest_dir / FORECAST_BACKTEST_FILE
    if not path.exists():
        return None
    forecasts = pl.read_parquet(path)
    totals, models = forecast_totals(forecasts)
    held = _interval_held(forecasts)
    rows = []
    for (cutoff,), part in totals.group_by("cutoff", maintain_order=True):
        sold = float(part["y"].sum())
        if sold:
            misses = [_miss(float(part[m].sum()) / sold - 1) for m in models]
            rows.append({"cutoff": cutoff, "sold": sold, "misses": misses, "held": held.get(cutoff)})
    names = [m.replace("_", " ") for m in models]
    return {
        "chart": timecharts.backtest_chart(totals, models),
        "models": names,
        "rows": rows,
        "has_band": bool(held),
    }


def _interval_held(forecasts: pl.DataFrame) -> dict[Any, float]:
    """Per cutoff, the share of product-days whose sales fell inside their own p10-p90 (about 80% when
    the intervals mean what they say); empty without p10/p90."""
    if not {"p10", "p90"} <= set(forecasts.columns):
        return {}
    inside = pl.col("y").is_between(pl.col("p10"), pl.col("p90"))
    shares = forecasts.drop_nulls(["p10", "p90"]).group_by("cutoff").agg(inside.mean())
    return dict(shares.iter_rows())


def render_backtest_report(backtest_dir: Path, run_info: dict[str, Any]) -> Path:
    """Read forecast_metrics.parquet, event_backtest.parquet, assortment_backtest.parquet and, when the
    backtest kept them, its predictions from ``backtest_dir`` (each may be missing: the page says so)
    and write backtest_dir/report.html with charts, tables and plain verdict sentences. Returns the
    path written."""
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
        "quality": quality(run_info, page=backtest_dir / "report.html"),
        "forecasts": _forecasts_section(backtest_dir),
        "forecasts_file": FORECAST_BACKTEST_FILE,
    }
    for key, (name, schema, build) in sections.items():
        df = read_table(backtest_dir / name, schema)
        context[key] = build(df) if df is not None else None
    html = environment().get_template("backtest.html.j2").render(**context)
    return write_page(backtest_dir / "report.html", html)


STRATEGY_WORDS = {
    "today": "today's assortment",
    "standard": "the chain-wide standard (every shelf reset to the chain's best sellers)",
    "budgeted standard": "the chain-wide standard under the advice's change budget",
}


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
            f"The {ours} assortment carried more of the held-out demand than "
            f"{STRATEGY_WORDS.get(other, f'the {other} assortment')} in {wins} of "
            f"{pair.height} folds (mean {fmt_pct(pair[ours].mean())} vs {fmt_pct(pair[other].mean())})."
        )
    return sentences


def _coverage_rows(coverage: pl.DataFrame) -> list[dict[str, Any]]:
    """Return one row per fold with the covered share of each strategy as columns."""
    wide = coverage.pivot(on="strategy", index="cutoff", values="demand_covered_share").sort("cutoff")
    return wide.to_dicts()
