"""Every chart is inline SVG (no prolog, text kept as text), None when there is nothing to draw."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest

from flows.report import backtest_page, charts, series, timecharts
from tests.flows.report import frames
from tests.flows.report.test_backtest_page import coverage, events, forecasts, metrics

AS_OF = frames.AS_OF


def _curves() -> pl.DataFrame:
    return series.event_curves(
        frames.sales().lazy(), frames.stores(), frames.events(), frames.patterns(), as_of=AS_OF
    )


def _index() -> pl.DataFrame:
    return series.region_index(frames.sales().lazy(), frames.stores(), frames.products(), as_of=AS_OF)


def _history() -> pl.DataFrame:
    days = [AS_OF - timedelta(days=k) for k in range(3)]
    return pl.DataFrame({"date": days, "units": [3.0, 4.0, 5.0]})


CHARTS: list[tuple[Any, dict[str, Any]]] = [
    (charts.pattern_lift_chart, {"patterns": frames.patterns(), "kind": "event_uplift"}),
    (charts.pattern_lift_chart, {"patterns": frames.patterns(), "kind": "local_affinity"}),
    (charts.pattern_lift_chart, {"patterns": frames.patterns(), "kind": "latent_demand"}),
    (charts.prestock_chart, {"prestock": frames.prestock()}),
    (charts.event_backtest_chart, {"events": events()}),
    (charts.coverage_chart, {"coverage": backtest_page._coverage(coverage())}),
    (charts.metric_by_model_chart, {"metrics": metrics([0.2], [0.3]), "metric": "wape"}),
    (timecharts.event_curve_chart, {"curves": _curves()}),
    (timecharts.region_index_chart, {"index": _index()}),
]


@pytest.mark.parametrize(("chart", "args"), CHARTS)
def test_charts_are_inline_svg_and_none_when_empty(chart: Any, args: dict[str, Any]) -> None:
    svg = chart(**args)
    assert svg is not None and svg.startswith("<svg") and svg.endswith("</svg>")
    frame_arg = next(k for k, v in args.items() if isinstance(v, pl.DataFrame))
    assert chart(**{**args, frame_arg: args[frame_arg].clear()}) is None


def test_history_forecast_chart_draws_the_band_when_there_is_one() -> None:
    fc = frames.forecast().filter(pl.col("sku") == "A1").select("date", "units", "p10", "p90")
    with_band = timecharts.history_forecast_chart(
        _history(), fc, title="S01 \u00b7 A1", chart_id="x", as_of=AS_OF
    )
    without = timecharts.history_forecast_chart(
        _history(), fc.select("date", "units"), title="S01", chart_id="y", as_of=AS_OF
    )
    assert with_band is not None and "likely range" in with_band
    assert without is not None and "likely range" not in without
    assert timecharts.history_forecast_chart(_history().clear(), fc.clear(), title="", chart_id="z") is None


def test_backtest_chart_one_panel_per_fold() -> None:
    totals, models = backtest_page.forecast_totals(forecasts())
    svg = timecharts.backtest_chart(totals, models)
    assert svg is not None and svg.count("window after") == 2 and "really sold" in svg
    assert timecharts.backtest_chart(totals.clear(), models) is None


def test_chart_labels_are_plain_escaped_text() -> None:
    patterns = frames.patterns().with_columns(pl.lit("$5 $deal <i>").alias("sku"))
    svg = charts.pattern_lift_chart(patterns, kind="event_uplift")
    assert svg is not None and "$5 $deal &lt;i&gt;" in svg and "<i>" not in svg


def test_pattern_labels_keep_the_region_when_the_name_is_long() -> None:
    long_name = "Kellman's Frosted Toaster Pastries Strawberry 8ct, family size"
    patterns = frames.patterns().with_columns(pl.lit(long_name).alias("name"))
    svg = charts.pattern_lift_chart(patterns, kind="local_affinity")
    assert svg is not None and "HILLS \u00b7 Kellman" in svg and "COAST \u00b7 Kellman" in svg
