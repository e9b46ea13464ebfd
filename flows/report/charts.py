"""Matplotlib charts rendered as inline SVG strings for the HTML reports.

Every chart function takes a small, already-aggregated or already-filtered polars frame and returns the
SVG markup (no XML prolog, ready to paste into HTML), or ``None`` when there is nothing to draw, so the
page can say "none found" instead of showing an empty axis. Nothing here reads files.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

PALETTE = ("#1f5f99", "#e07b39", "#3a9d5d", "#b8433f", "#7b5ea7", "#8c6d4f", "#d16ba5", "#5f8f9f")
MAIN_MODEL_COLOR = "#1f5f99"
BASELINE_COLORS = ("#9aa5b1", "#c9a66b", "#7fa88f", "#b78fa8")
MAX_LABEL = 42
_PROLOG = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_RC: dict[str, Any] = {
    "svg.fonttype": "none",  # keep text as <text>: far smaller files, selectable, crisp in print
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.edgecolor": "#888888",
    "axes.grid": True,
    "axes.axisbelow": True,  # grid lines behind the bars
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
}


def label(text: object, limit: int = MAX_LABEL) -> str:
    """Return ``text`` safe for a matplotlib label: ``$`` escaped (no mathtext) and long text shortened."""
    s = "" if text is None else str(text)
    if len(s) > limit:
        s = s[: limit - 1] + "\u2026"
    return s.replace("$", r"\$")


@contextmanager
def _figure(chart_id: str, width: float, height: float) -> Iterator[Figure]:
    """Yield a figure styled for the report; always cleared, even when drawing fails."""
    # A fixed hash salt per chart keeps the SVG's internal ids stable between runs and unique
    # between the charts that share one HTML page.
    # Figures are made without pyplot: no global figure registry to leak, no GUI backend needed
    # (savefig picks the SVG canvas itself).
    with mpl.rc_context({**_RC, "svg.hashsalt": chart_id}):  # type: ignore[dict-item]
        fig = Figure(figsize=(width, height))
        try:
            yield fig
        finally:
            fig.clear()


def svg_of(fig: Figure) -> str:
    """Return ``fig`` as SVG markup without the XML prolog and doctype, for inline embedding."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return _PROLOG.sub("", buf.getvalue(), count=1).strip()


def _colors_for(keys: Sequence[str]) -> dict[str, str]:
    """Return a stable color per distinct key, in order of first appearance."""
    distinct = list(dict.fromkeys(keys))
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(distinct)}


def _times_axis(ax: Axes, values: Sequence[float]) -> None:
    """Log-scale x axis labelled as multiples ("2x"), with a reference line at 1x (no effect)."""
    ax.set_xscale("log")
    lo, hi = min(values), max(values)
    ax.set_xlim(min(lo, 1.0) / 1.15, max(hi, 1.0) * 1.15)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(1.0, color="#555555", linewidth=0.8, linestyle="--")
    ax.grid(axis="y", visible=False)


def _pattern_label(row: dict[str, object], kind: str) -> str:
    """Return "REGION · event · product": only the product's name is shortened, so two rows of one
    product in two regions stay apart."""
    context = [row.get("region"), row.get("event_type") if kind == "event_uplift" else None]
    product = label(row.get("name") or row.get("sku"), 34)
    return " \u00b7 ".join([label(str(p), 24) for p in context if p is not None] + [product])


def _whiskers(rows: pl.DataFrame) -> tuple[list[float], list[float]]:
    """Return the (below, above) whisker lengths around each lift; zero where the interval is unknown
    or not positive (a log axis cannot show it)."""
    below, above = [], []
    for v, lo, hi in rows.select("lift", "ci_low", "ci_high").iter_rows():
        below.append(v - lo if lo is not None and 0 < lo <= v else 0.0)
        above.append(hi - v if hi is not None and math.isfinite(hi) and hi >= v else 0.0)
    return below, above


def _legend(ax: Axes, colors: dict[str, str]) -> None:
    """A color key outside the plot, on the right, so it never hides a bar."""
    if len(colors) > 1:
        handles = [Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
        ax.legend(
            handles, [label(k, 24) for k in colors], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8
        )


def _strongest(patterns: pl.DataFrame, kind: str, top: int) -> pl.DataFrame:
    """Return the ``top`` strongest patterns of ``kind``, weakest first (barh draws bottom-up).
    A local affinity is strong far from 1 either way (0.4x is as notable as 2.5x); the other kinds
    are strong when large."""
    rows = patterns.filter((pl.col("kind") == kind) & pl.col("lift").is_finite() & (pl.col("lift") > 0))
    strength = pl.col("lift").log().abs() if kind == "local_affinity" else pl.col("lift")
    return rows.sort(strength, "sku", descending=[True, False]).head(top).reverse()


def pattern_lift_chart(patterns: pl.DataFrame, *, kind: str, top: int = 15, title: str = "") -> str | None:
    """Return a horizontal bar chart of the ``top`` strongest lifts of ``kind`` with 95% CI whiskers,
    colored by event type (event uplift) or region, or None when there is none. Ratios to normal
    demand (event uplift, local affinity) are drawn from 1x on a log axis; latent demand, a size
    relative to a typical carried product, from 0 on a linear one."""
    rows = _strongest(patterns, kind, top)
    if rows.height == 0:
        return None
    keys = [str(k) for k in rows["event_type" if kind == "event_uplift" else "region"].to_list()]
    colors = _colors_for(keys[::-1])
    lift = rows["lift"].to_list()
    below, above = _whiskers(rows)
    y = list(range(rows.height))
    ratio = kind != "latent_demand"
    with _figure(f"lift-{kind}", 7.2, 1.0 + 0.27 * rows.height) as fig:
        ax = fig.subplots()
        start = 1.0 if ratio else 0.0  # from 1x an under-index (lift < 1) points left
        ax.barh(y, [v - start for v in lift], left=start, color=[colors[k] for k in keys], height=0.62)
        ax.errorbar(lift, y, xerr=[below, above], fmt="none", ecolor="#333333", elinewidth=0.9, capsize=2.5)
        ax.set_yticks(y, [_pattern_label(r, kind) for r in rows.iter_rows(named=True)])
        if ratio:
            ends = [v - b for v, b in zip(lift, below, strict=True)]
            _times_axis(ax, ends + [v + a for v, a in zip(lift, above, strict=True)])
            ax.set_xlabel(
                "times normal demand (bar) with 95% interval (whisker); dashed line = no difference"
            )
        else:
            ax.axvline(1.0, color="#555555", linewidth=0.8, linestyle="--")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
            ax.grid(axis="y", visible=False)
            ax.set_xlabel(
                "expected sales vs a typical carried product of its category (dashed line = as much)"
            )
        _legend(ax, colors)
        ax.set_title(title or kind.replace("_", " "))
        return svg_of(fig)


def prestock_chart(prestock: pl.DataFrame, *, top: int = 20) -> str | None:
    """Return a horizontal bar chart of total extra pre-stock units per event type and region (the
    ``top`` largest), or None when the plan is empty."""
    agg = (
        prestock.filter(pl.col("extra_units").is_finite() & (pl.col("extra_units") > 0))
        .group_by("event_type", "region")
        .agg(pl.col("extra_units").sum(), pl.col("sku").n_unique().alias("skus"))
        .sort("extra_units", "event_type", "region", descending=[True, False, False])
        .head(top)
        .reverse()
    )
    if agg.height == 0:
        return None
    keys = [str(k) for k in agg["event_type"].to_list()]
    colors = _colors_for(keys[::-1])
    y = list(range(agg.height))
    with _figure("prestock", 7.2, 1.0 + 0.27 * agg.height) as fig:
        ax = fig.subplots()
        ax.barh(y, agg["extra_units"].to_list(), color=[colors[k] for k in keys], height=0.62)
        names = [label(f"{e} · {r}") for e, r in agg.select("event_type", "region").iter_rows()]
        ax.set_yticks(y, names)
        for yi, (units, skus) in enumerate(agg.select("extra_units", "skus").iter_rows()):
            ax.annotate(f" {units:,.0f} ({skus} SKUs)", (units, yi), va="center", fontsize=8)
        ax.margins(x=0.18)
        ax.grid(axis="y", visible=False)
        _legend(ax, colors)
        ax.set_title("Extra units to pre-stock, by event type and region")
        ax.set_xlabel("extra units over the event window, all stores and SKUs")
        return svg_of(fig)


def is_main_model(model: str) -> bool:
    """Whether ``model`` names the LightGBM model (as opposed to a baseline)."""
    name = model.lower()
    return "lightgbm" in name or "lgb" in name


def _model_colors(models: Sequence[str]) -> dict[str, str]:
    baselines = [m for m in models if not is_main_model(m)]
    colors = {m: BASELINE_COLORS[i % len(BASELINE_COLORS)] for i, m in enumerate(baselines)}
    return {m: MAIN_MODEL_COLOR if is_main_model(m) else colors[m] for m in models}


def _grouped_bars(
    ax: Axes, groups: list[str], series: dict[str, list[float | None]], colors: dict[str, str]
) -> None:
    """Draw one cluster of bars per group, one bar per series (missing values are left out)."""
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        pts = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None and math.isfinite(v)]
        if pts:
            ax.bar(
                [p[0] for p in pts],
                [p[1] for p in pts],
                width=width * 0.92,
                color=colors[name],
                label=label(name, 24),
            )
    ax.set_xticks(range(len(groups)), [label(g, 20) for g in groups])
    ax.grid(axis="x", visible=False)


def metric_by_model_chart(metrics: pl.DataFrame, metric: str, *, levels: Sequence[str] = ()) -> str | None:
    """Return grouped bars of ``metric`` per level (x) and model (bars): the mean over folds, with
    whiskers from the best to the worst fold; None when the metric has no finite value."""
    rows = metrics.filter(pl.col(metric).is_not_null() & pl.col(metric).is_finite())
    if rows.height == 0:
        return None
    stats = rows.group_by("level", "model").agg(
        pl.col(metric).mean().alias("mean"),
        pl.col(metric).min().alias("lo"),
        pl.col(metric).max().alias("hi"),
    )
    present = stats["level"].unique().to_list()
    order = [lv for lv in levels if lv in present] + sorted(lv for lv in present if lv not in levels)
    models = sorted(stats["model"].unique().to_list(), key=lambda m: (not is_main_model(m), m))
    colors = _model_colors(models)
    lookup = {
        (lv, m): (a, b, c)
        for lv, m, a, b, c in stats.select("level", "model", "mean", "lo", "hi").iter_rows()
    }
    with _figure(f"metric-{metric}", 7.2, 2.9) as fig:
        ax = fig.subplots()
        series = {m: [lookup.get((lv, m), (None, None, None))[0] for lv in order] for m in models}
        _grouped_bars(ax, order, series, colors)
        width = 0.8 / len(models)
        for i, m in enumerate(models):
            for g, lv in enumerate(order):
                mean, lo, hi = lookup.get((lv, m), (None, None, None))
                if mean is not None:
                    x = g + (i - (len(models) - 1) / 2) * width
                    ax.errorbar(
                        x,
                        mean,
                        yerr=[[mean - lo], [hi - mean]],
                        fmt="none",
                        ecolor="#333333",
                        elinewidth=0.8,
                        capsize=2,
                    )
        ax.set_title(f"{metric.upper()} by level and model (lower is better; whiskers: best to worst fold)")
        ax.set_ylim(bottom=0)
        if metric == "wape":  # a share of units: read as a percentage
            ax.yaxis.set_major_formatter(
                FuncFormatter(lambda v, _: f"{v:.0%}" if v >= 0.1 or v == 0 else f"{v:.1%}")
            )
        ax.legend(fontsize=8, ncols=len(models), loc="upper left", bbox_to_anchor=(0, -0.12))
        return svg_of(fig)


def event_backtest_chart(events: pl.DataFrame, *, top: int = 20) -> str | None:
    """Return horizontal bars of precision and recall per held-out event (the ``top`` latest), or None
    when there is no event."""
    if events.height == 0:
        return None
    rows = events.sort("start_date", "event_id").tail(top).reverse()
    # the start date last and never cut: type and region are shortened first (the id is in the table)
    names = [
        f"{label(str(t).replace('_', ' '), 18)} \u00b7 {label(r, 18)} \u00b7 "
        + (d.strftime("%-d %b %Y") if d is not None else "?")
        for t, r, d in rows.select("event_type", "region", "start_date").iter_rows()
    ]
    with _figure("events", 7.2, 1.1 + 0.42 * rows.height) as fig:
        ax = fig.subplots()
        y = list(range(rows.height))
        for offset, col, color in ((0.2, "precision", MAIN_MODEL_COLOR), (-0.2, "recall", PALETTE[1])):
            raw = rows[col].to_list()
            vals = [v if v is not None and math.isfinite(v) else 0.0 for v in raw]
            ax.barh([yi + offset for yi in y], vals, height=0.38, color=color, label=col)
            for yi, v in zip(y, raw, strict=True):
                # precision is undefined when nothing was flagged, recall when nothing rose
                text = f" {v:.0%}" if v is not None and math.isfinite(v) else f" {col}: n/a"
                ax.annotate(text, (vals[yi], yi + offset), va="center", fontsize=7, color="#333333")
        ax.set_yticks(y, names)
        ax.set_xlim(0, 1.12)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.grid(axis="y", visible=False)
        ax.set_title("Pre-stock flags on held-out events")
        ax.legend(fontsize=8, ncols=2, loc="upper left", bbox_to_anchor=(0, -0.08))
        return svg_of(fig)


def coverage_chart(coverage: pl.DataFrame) -> str | None:
    """Return grouped bars of the share of held-out demand covered, per fold (x) and strategy (bars),
    from a frame of cutoff, strategy, demand_covered_share; None when it is empty."""
    rows = coverage.filter(pl.col("demand_covered_share").is_not_null())
    if rows.height == 0:
        return None
    cutoffs = sorted(rows["cutoff"].unique().to_list())
    strategies = sorted(rows["strategy"].unique().to_list(), key=lambda s: (s != "advised", s))
    colors = {
        s: (MAIN_MODEL_COLOR if s == "advised" else BASELINE_COLORS[i % len(BASELINE_COLORS)])
        for i, s in enumerate(strategies)
    }
    lookup = {(c, s): v for c, s, v in rows.select("cutoff", "strategy", "demand_covered_share").iter_rows()}
    with _figure("coverage", 7.2, 2.8) as fig:
        ax = fig.subplots()
        series = {s: [lookup.get((c, s)) for c in cutoffs] for s in strategies}
        _grouped_bars(ax, [str(c) for c in cutoffs], series, colors)
        for container in ax.containers:
            # only bars on this axis: every container is a BarContainer
            ax.bar_label(container, fmt="{:.0%}", fontsize=7, padding=1)  # type: ignore[arg-type]
        ax.set_ylim(0, 1.08)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.set_title("Share of held-out demand the assortment would have carried, per fold")
        ax.legend(fontsize=8, ncols=len(strategies), loc="upper left", bbox_to_anchor=(0, -0.12))
        return svg_of(fig)
