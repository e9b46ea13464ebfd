"""Charts over time and small multiples, as inline SVG (same conventions as charts.py): demand around
events, each region's category index, history next to the forecast, and backtest forecasts against
what really sold."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import polars as pl
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.ticker import FuncFormatter, MaxNLocator

from flows.report.charts import (
    BASELINE_COLORS,
    MAIN_MODEL_COLOR,
    PALETTE,
    _figure,
    is_main_model,
    label,
    svg_of,
)

WIDTH = 8.6  # inches: about 830 px, as wide as the page's text at 1400 px and scaled down at 800 px
ACTUAL_COLOR = "#1d2430"
BAND_ALPHA = 0.22
UP_COLOR, DOWN_COLOR = "#2f7d4f", "#b8433f"


def _grid(n: int, cols: int) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def _units_axis(ax: Axes) -> None:
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 or v == 0 else f"{v:.2g}"))


def _date_axis(ax: Axes) -> None:
    locator = AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def event_curve_chart(curves: pl.DataFrame, *, cols: int = 3) -> str | None:
    """Return one panel per event type: mean demand relative to usual by day from the event's start
    (line) with its 95% interval across events (band), or None when there is no curve."""
    if curves.height == 0:
        return None
    types = sorted(curves["event_type"].unique().to_list())
    rows, cols = _grid(len(types), cols)
    with _figure("event-curves", WIDTH, 0.6 + 2.2 * rows) as fig:
        fig.set_layout_engine("constrained")
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
        for i, event_type in enumerate(types):
            ax = axes[i // cols][i % cols]
            part = curves.filter(pl.col("event_type") == event_type).sort("offset")
            x, y = part["offset"].to_list(), part["lift"].to_list()
            color = PALETTE[i % len(PALETTE)]
            band = part.filter(pl.col("ci_low").is_not_null())
            if band.height:
                ax.fill_between(
                    band["offset"].to_list(),
                    band["ci_low"].to_list(),
                    band["ci_high"].to_list(),
                    color=color,
                    alpha=BAND_ALPHA,
                    linewidth=0,
                )
            ax.plot(x, y, color=color, linewidth=1.8)
            ax.axhline(1.0, color="#555555", linewidth=0.8, linestyle="--")
            ax.axvline(0, color="#888888", linewidth=0.8)
            n_events = max(part["events"].drop_nulls().to_list(), default=0)
            n_skus = max(part["skus"].drop_nulls().to_list(), default=0)
            which = f"{n_skus} products with an uplift" if part["flagged"].any() else "all products"
            ax.set_title(f"{label(event_type.replace('_', ' '), 28)}\n{n_events} events, {which}", fontsize=9)
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        for j in range(len(types), rows * cols):
            axes[j // cols][j % cols].set_visible(False)
        fig.supxlabel("days from the event's start (0 = first day; negative = before)", fontsize=8)
        fig.supylabel("times usual demand", fontsize=8)
        return svg_of(fig)


def region_index_chart(index: pl.DataFrame, *, cols: int = 3) -> str | None:
    """Return one panel per region: bars per category from 100 (as the chain) to the region's index,
    green above, red below, or None when there is nothing to draw."""
    if index.height == 0:
        return None
    regions = sorted(index["region"].unique().to_list())
    categories = sorted(index["category"].unique().to_list(), reverse=True)  # barh draws bottom-up
    rows, cols = _grid(len(regions), cols)
    lookup = {(r, c): v for r, c, v in index.select("region", "category", "index").iter_rows()}
    # symmetric around 100, as wide as the largest difference needs: small differences stay visible
    reach = max(abs(v - 100) for v in index["index"].to_list()) * 1.15 or 10.0
    with _figure("region-index", WIDTH, 0.6 + (0.45 + 0.17 * len(categories)) * rows) as fig:
        fig.set_layout_engine("constrained")
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True, sharex=True)
        y = list(range(len(categories)))
        for i, region in enumerate(regions):
            ax = axes[i // cols][i % cols]
            values = [lookup.get((region, c), math.nan) for c in categories]
            colors = [UP_COLOR if v >= 100 else DOWN_COLOR for v in values]
            ax.barh(y, [v - 100 for v in values], left=100, color=colors, height=0.66)
            ax.axvline(100, color="#555555", linewidth=0.8)
            ax.set_xlim(max(100 - reach, 0), 100 + reach)
            ax.set_yticks(y, [label(c, 22) for c in categories])
            ax.set_title(label(region, 28), fontsize=9)
            ax.grid(axis="y", visible=False)
        for j in range(len(regions), rows * cols):
            axes[j // cols][j % cols].set_visible(False)
        fig.supxlabel("category's share of the region's units, 100 = as in the whole chain", fontsize=8)
        return svg_of(fig)


def history_forecast_chart(
    history: pl.DataFrame, forecast: pl.DataFrame, *, title: str, chart_id: str, as_of: date | None = None
) -> str | None:
    """Return units per day sold (``history``: date, units) and forecast (``forecast``: date, units,
    optional p10/p90 drawn as a band), or None when both are empty."""
    if history.height == 0 and forecast.height == 0:
        return None
    with _figure(chart_id, WIDTH, 2.6) as fig:
        ax = fig.subplots()
        if history.height:
            h = history.sort("date")
            ax.plot(
                h["date"].to_list(), h["units"].to_list(), color=ACTUAL_COLOR, linewidth=1.1, label="sold"
            )
        if forecast.height:
            f = forecast.sort("date")
            if {"p10", "p90"} <= set(f.columns) and f["p90"].null_count() < f.height:
                ax.fill_between(
                    f["date"].to_list(),
                    f["p10"].fill_null(f["units"]).to_list(),
                    f["p90"].fill_null(f["units"]).to_list(),
                    color=MAIN_MODEL_COLOR,
                    alpha=BAND_ALPHA,
                    linewidth=0,
                    label="likely range (p10\u2013p90)",
                )
            ax.plot(
                f["date"].to_list(),
                f["units"].to_list(),
                color=MAIN_MODEL_COLOR,
                linewidth=1.8,
                label="forecast",
            )
        if as_of is not None:
            ax.axvline(as_of, color="#888888", linewidth=0.8, linestyle=":")  # type: ignore[arg-type]
        _units_axis(ax)
        _date_axis(ax)
        ax.set_title(label(title, 90))
        ax.legend(fontsize=8, ncols=3, loc="upper left", bbox_to_anchor=(0, -0.14))
        return svg_of(fig)


def backtest_chart(totals: pl.DataFrame, models: Sequence[str], *, cols: int = 2) -> str | None:
    """Return one panel per fold: units per day that really sold (``y``) against each model's forecast,
    the main model with its p10-p90 band when ``totals`` has ``p10``/``p90``; None when empty.
    ``totals``: cutoff, date, y, one column per model (summed over the pairs)."""
    if totals.height == 0:
        return None
    folds = sorted(totals["cutoff"].unique().to_list())
    rows, cols = _grid(len(folds), cols)
    baselines = [m for m in models if not is_main_model(m)]
    colors = {m: BASELINE_COLORS[i % len(BASELINE_COLORS)] for i, m in enumerate(baselines)}
    with _figure("backtest-folds", WIDTH, 0.8 + 2.2 * rows) as fig:
        fig.set_layout_engine("constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        for i, cutoff in enumerate(folds):
            ax = axes[i // cols][i % cols]
            part = totals.filter(pl.col("cutoff") == cutoff).sort("date")
            d = part["date"].to_list()
            if {"p10", "p90"} <= set(part.columns) and part["p90"].null_count() < part.height:
                ax.fill_between(
                    d,
                    part["p10"].to_list(),
                    part["p90"].to_list(),
                    color=MAIN_MODEL_COLOR,
                    alpha=BAND_ALPHA,
                    linewidth=0,
                    label="p10\u2013p90",
                )
            for m in models:
                main = is_main_model(m)
                ax.plot(
                    d,
                    part[m].to_list(),
                    color=MAIN_MODEL_COLOR if main else colors[m],
                    linewidth=1.7 if main else 1.0,
                    linestyle="-" if main else "--",
                    label=m.replace("_", " "),
                )
            ax.plot(d, part["y"].to_list(), color=ACTUAL_COLOR, linewidth=1.2, label="really sold")
            _units_axis(ax)
            _date_axis(ax)
            ax.set_title(f"window after {cutoff}", fontsize=9)
        for j in range(len(folds), rows * cols):
            axes[j // cols][j % cols].set_visible(False)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=8, ncols=len(labels), loc="outside lower left")
        fig.supylabel("units per day, all stores", fontsize=8)
        return svg_of(fig)
