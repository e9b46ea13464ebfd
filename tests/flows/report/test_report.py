"""The HTML reports: self-contained, escaped, complete, and robust to empty or missing inputs."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.outputs import (
    ASSORTMENT_COLUMNS,
    FORECAST_COLUMNS,
    PATTERN_COLUMNS,
    PRESTOCK_COLUMNS,
    conform,
)
from data_contracts.schemas import CONTRACTS
from flows.lake.outputs import OutPaths, write_table
from flows.report import charts, report
from flows.report import common as report_common

# Anything that would fetch from elsewhere: absolute or protocol-relative src/href/url(), external
# scripts or style sheets, CSS imports. (matplotlib's own url(#clip-id) references are local.)
EXTERNAL = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//|<script[^>]+src=|<link[^>]+href=|@import"""
    r"""|url\(\s*["']?\s*(?:[a-z]+:)?//"""
)
DANGEROUS_REASON = "Online demand <b>high</b> & rising"


def _assortment() -> pl.DataFrame:
    rows = [
        ("S01", "A1", "snacks", "add", 12.0, 36.0, DANGEROUS_REASON),
        ("S01", "A2", "snacks", "drop", 0.5, 1.5, "Slow seller: half a unit a week."),
        ("S01", "A3", "snacks", "keep", 8.0, 24.0, "Sells 8 units a week."),
        ("S02", "A4", "drinks", "add", 5.0, 10.0, "Region orders it online weekly."),
        ("S02", "A3", "snacks", "keep", 4.0, 12.0, "Sells 4 units a week."),
    ]
    return conform(
        pl.DataFrame(rows, schema=list(ASSORTMENT_COLUMNS.names()), orient="row"), ASSORTMENT_COLUMNS
    )


def _patterns() -> pl.DataFrame:
    rows = [
        (
            "event_uplift",
            "COAST",
            "A1",
            "snacks",
            "storm",
            6.5,
            4.0,
            9.0,
            5,
            0.001,
            -2,
            "Storms lift A1 6.5x.",
        ),
        ("local_affinity", "HILLS", "A3", "snacks", None, 2.0, 1.5, 2.6, 40, 0.01, None, "HILLS loves A3."),
        ("local_affinity", "COAST", "A2", "snacks", None, 0.4, 0.3, 0.55, 40, 0.02, None, "COAST shuns A2."),
        ("latent_demand", "COAST", "A4", "drinks", None, 0.8, 0.5, 1.1, 12, 0.03, None, "COAST wants A4."),
    ]
    return conform(pl.DataFrame(rows, schema=list(PATTERN_COLUMNS.names()), orient="row"), PATTERN_COLUMNS)


def _prestock() -> pl.DataFrame:
    rows = [
        ("storm", "COAST", "S01", "A1", 10.0, 55.0, 6.5, "Stock 55 extra A1 before storms."),
        ("storm", "COAST", "S02", "A1", 4.0, 22.0, 6.5, "Stock 22 extra A1 before storms."),
    ]
    return conform(pl.DataFrame(rows, schema=list(PRESTOCK_COLUMNS.names()), orient="row"), PRESTOCK_COLUMNS)


def _forecast() -> pl.DataFrame:
    days = [date(2025, 7, 1) + timedelta(days=d) for d in range(5)]
    rows = [(s, k, d, 1.0 + i) for i, d in enumerate(days) for s, k in (("S01", "A1"), ("S02", "A3"))]
    df = pl.DataFrame(rows, schema=["store_id", "sku", "date", "units"], orient="row")
    return conform(df, FORECAST_COLUMNS)


def _run_info(**extra: Any) -> dict[str, Any]:
    return {
        "as_of": "2025-06-30",
        "horizon": 28,
        "versions": {"localshelf": "0.1.0", "polars": "2.1.0"},
        "tables": {
            "store_sales": {
                "rows_read": 12345,
                "rows_loaded": 12000,
                "rows_quarantined": 300,
                "rows_duplicate": 45,
            },
            "online_orders": {"rows_read": 10, "rows_loaded": 9, "rows_quarantined": 0, "rows_duplicate": 0},
        },
        "files": [{"path": "store_sales/pos.csv", "rows_read": 12345, "rows_loaded": 12000}],
        "quarantine_reasons": {"unknown store_id": 299, "unparseable date": 1},
        "warnings": [{"table": "online_orders", "message": "many postal codes without region"}],
        "validation": {"success": True, "tables": {"store_sales": {"success": True, "failed": 0}}},
        "timings_s": {"ingest": 1.5, "train": 2.25},
        **extra,
    }


def _write_outputs(root: Path, *, skip: tuple[str, ...] = (), empty: tuple[str, ...] = ()) -> OutPaths:
    out = OutPaths(root)
    tables = {
        "assortment": (_assortment(), out.assortment),
        "patterns": (_patterns(), out.patterns),
        "prestock": (_prestock(), out.prestock),
        "forecast": (_forecast(), out.forecast),
    }
    for name, (df, path) in tables.items():
        if name not in skip:
            write_table(df.clear() if name in empty else df, path)
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = _write_outputs(tmp_path_factory.mktemp("out"))
    path = report.render_report(out, _run_info())
    assert path == out.report
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="x.js">',
        '<link rel="stylesheet" href="https://cdn/x.css">',
        '<img src="http://x/y.png">',
        "<img src=//x/y.png>",
        "background: url('https://x/y.png')",
        "@import 'x.css';",
    ],
)
def test_external_reference_pattern_catches(snippet: str) -> None:
    assert EXTERNAL.search(snippet) is not None


def test_report_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert EXTERNAL.search(page) is None
    assert "<?xml" not in page  # SVG prolog stripped: invalid inside HTML


@pytest.mark.parametrize(
    "text",
    [
        "S01",
        "S02",
        "Slow seller: half a unit a week.",
        "Region orders it online weekly.",
        "Storms lift A1 6.5x.",
        "HILLS loves A3.",
        "COAST wants A4.",
        "Stock 55 extra A1 before storms.",
        "<svg",
        "12,345",  # rows read
        "12,000",
        "unknown store_id",
        "many postal codes without region",
        "2 days before",  # peak offset in words
    ],
)
def test_report_shows(page: str, text: str) -> None:
    assert text in page


def test_report_escapes_text_from_the_data(page: str) -> None:
    assert "Online demand &lt;b&gt;high&lt;/b&gt; &amp; rising" in page
    assert "<b>high</b>" not in page


def test_report_headline_counts(page: str) -> None:
    summary = page[page.index('id="summary"') : page.index('id="stores"')]
    cards = re.findall(r'<span class="n">([\d,]+)</span><span class="l">([^<]+)</span>', summary)
    assert cards == [
        ("2", "products to add"),
        ("1", "products to drop"),
        ("2", "products to keep"),
        ("1", "event uplift patterns"),
        ("2", "local affinity patterns"),
        ("1", "latent demand patterns"),
    ]


@pytest.mark.parametrize(
    ("skip", "empty", "expected"),
    [
        ((), ("patterns", "prestock"), ["None found"]),
        (
            ("patterns", "prestock", "forecast"),
            (),
            ["Missing output files", "patterns.parquet", "forecast.parquet"],
        ),
        (("assortment", "patterns", "prestock", "forecast"), (), ["No assortment advice in this run."]),
        ((), ("assortment", "patterns", "prestock", "forecast"), ["no forecast in this run"]),
    ],
)
def test_report_copes_with_empty_or_missing_tables(
    tmp_path: Path, skip: tuple[str, ...], empty: tuple[str, ...], expected: list[str]
) -> None:
    out = _write_outputs(tmp_path, skip=skip, empty=empty)
    page = report.render_report(out, {"as_of": "2025-06-30"}).read_text(encoding="utf-8")
    for text in expected:
        assert text in page
    assert EXTERNAL.search(page) is None


def test_report_uses_lake_reference_for_regions_and_names(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for name, df in {
        "stores": pl.DataFrame({"store_id": ["S01", "S02"], "region": ["COAST", "HILLS_REGION"]}),
        "products": pl.DataFrame({"sku": ["A1"], "name": ["Strawberry <tarts>"], "category": ["snacks"]}),
    }.items():
        (lake / f"table={name}").mkdir(parents=True)
        conform(df, CONTRACTS[name].schema).write_parquet(lake / f"table={name}" / "part-0.parquet")
    out = _write_outputs(tmp_path / "out")
    page = report.render_report(out, _run_info(inputs={"lake": str(lake)})).read_text(encoding="utf-8")
    assert "Strawberry &lt;tarts&gt;" in page
    assert "HILLS_REGION" in page  # only the lake knows S02's region


def test_store_sections_trim_keeps_and_count_what_is_hidden() -> None:
    n = report.KEEPS_SHOWN + 3
    df = pl.DataFrame(
        {
            "store_id": ["S1"] * (n + 1),
            "sku": [f"K{i:02d}" for i in range(n)] + ["NEW"],
            "category": ["c"] * (n + 1),
            "action": ["keep"] * n + ["add"],
            "expected_weekly_units": [float(i) for i in range(n)] + [1.0],
            "expected_weekly_revenue": [float(i) for i in range(n)] + [1.0],
            "reason": ["r"] * (n + 1),
        }
    )
    (section,) = report._store_sections(df, pl.DataFrame(schema={"store_id": pl.String, "region": pl.String}))
    assert section["counts"] == {"add": 1, "drop": 0, "keep": n}
    assert section["hidden"] == 3
    shown = [r["sku"] for r in section["rows"]]
    assert shown[0] == "NEW"  # adds first, then the best keeps
    assert shown[1:] == [f"K{i:02d}" for i in range(n - 1, 2, -1)]


def test_findings_take_the_strongest_pattern_of_each_kind() -> None:
    patterns = _patterns()
    assert report._findings(patterns, _assortment()) == [
        "Storms lift A1 6.5x.",
        "HILLS loves A3.",
        "COAST wants A4.",
    ]
    only_affinity = patterns.filter(pl.col("kind") == "local_affinity")
    assert report._findings(only_affinity, _assortment()) == [
        "HILLS loves A3.",
        "COAST shuns A2.",
        "The advice adds 2 products across 2 stores, expected to sell 17 units a week.",
    ]


def _metrics(lgb_wape: list[float], naive_wape: list[float]) -> pl.DataFrame:
    cutoffs = [date(2025, 5, 1) + timedelta(days=28 * i) for i in range(len(lgb_wape))]
    rows = []
    for model, values in (("lightgbm", lgb_wape), ("seasonal_naive", naive_wape)):
        for c, w in zip(cutoffs, values, strict=True):
            rows += [
                (c, model, "total", w, 1.0, 0.0, w * 2, w * 3),
                (c, model, "store", w * 2, 1.0, 0.0, w, None),
            ]
    schema = ["cutoff", "model", "level", "wape", "mae", "bias", "rmsse", "wrmsse"]
    return pl.DataFrame(rows, schema=schema, orient="row")


@pytest.mark.parametrize(
    ("lgb", "naive", "expected"),
    [
        (
            [0.2, 0.2, 0.2],
            [0.3, 0.3, 0.3],
            "LightGBM beat the seasonal-naive baseline on WAPE at the total level in 3 of 3 folds "
            "(mean 20% vs 30%).",
        ),
        (
            [0.2, 0.4, 0.4],
            [0.3, 0.3, 0.3],
            "LightGBM beat the seasonal-naive baseline on WAPE at the total level in 1 of 3 folds "
            "(mean 33% vs 30%), so it is not clearly better.",
        ),
    ],
)
def test_verdicts(lgb: list[float], naive: list[float], expected: str) -> None:
    assert report.verdicts(_metrics(lgb, naive)) == [expected]


def _events() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": ["E1", "E2"],
            "event_type": ["storm", "storm"],
            "region": ["COAST", "COAST"],
            "start_date": [date(2025, 1, 1), date(2025, 3, 1)],
            "flagged": [4, 0],
            "actual_risers": [5, 2],
            "hits": [3, 0],
            "precision": [0.75, None],
            "recall": [0.6, 0.0],
        }
    )


def test_event_verdict_pools_events() -> None:
    assert report.event_verdict(_events()) == (
        "Over 2 held-out events, 4 products were flagged for pre-stock and 7 really rose: 75% of the flags "
        "were right, and 43% of the risers were flagged."
    )
    assert (
        report.event_verdict(
            _events().with_columns(pl.lit(0).alias("flagged"), pl.lit(0).alias("actual_risers"))
        )
        is None
    )


def _coverage() -> pl.DataFrame:
    rows = [
        (date(2025, 5, 1), store, strategy, share)
        for store, shift in (("S1", 0.0), ("S2", 0.1))
        for strategy, share in (("advised", 0.8 + shift), ("today", 0.7 + shift), ("standard", 0.75 + shift))
    ]
    return pl.DataFrame(rows, schema=["cutoff", "store_id", "strategy", "demand_covered_share"], orient="row")


def test_coverage_is_the_chain_row_or_the_store_mean() -> None:
    by_store = _coverage()
    expected = pl.DataFrame(
        {
            "cutoff": [date(2025, 5, 1)] * 3,
            "strategy": ["advised", "standard", "today"],
            "demand_covered_share": [0.85, 0.80, 0.75],
        }
    )
    assert_frame_equal(report._coverage(by_store), expected)
    chain = pl.concat(
        [
            by_store,
            expected.select(
                "cutoff", pl.lit("ALL").alias("store_id"), "strategy", (pl.col("demand_covered_share") - 0.5)
            ),
        ]
    )
    assert report._coverage(chain)["demand_covered_share"].round(6).to_list() == [0.35, 0.30, 0.25]
    assert report.coverage_verdicts(report._coverage(by_store)) == [
        "The advised assortment carried more of the held-out demand than the standard one in 1 of 1 folds "
        "(mean 85% vs 80%).",
        "The advised assortment carried more of the held-out demand than the today one in 1 of 1 folds "
        "(mean 85% vs 75%).",
    ]


BACKTEST_FILES = {
    "forecast_metrics.parquet": lambda: _metrics([0.2, 0.2], [0.3, 0.25]),
    "event_backtest.parquet": _events,
    "assortment_backtest.parquet": _coverage,
}


@pytest.mark.parametrize(
    "present",
    [
        tuple(BACKTEST_FILES),
        (),
        ("forecast_metrics.parquet",),
        ("event_backtest.parquet", "assortment_backtest.parquet"),
    ],
)
def test_backtest_report_with_and_without_each_input(tmp_path: Path, present: tuple[str, ...]) -> None:
    for name in present:
        BACKTEST_FILES[name]().write_parquet(tmp_path / name)
    path = report.render_backtest_report(tmp_path, _run_info(cutoffs=["2025-05-01", "2025-05-29"]))
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    assert EXTERNAL.search(page) is None
    for name in BACKTEST_FILES:
        assert (f"{name} is missing" in page) == (name not in present)
    if "forecast_metrics.parquet" in present:
        assert "LightGBM beat the seasonal-naive baseline on WAPE at the total level in 2 of 2 folds" in page
    charts_per_file = {
        "forecast_metrics.parquet": 2,
        "event_backtest.parquet": 1,
        "assortment_backtest.parquet": 1,
    }
    assert page.count("<svg") == sum(charts_per_file[name] for name in present)
    assert "12,345" in page  # the run's load counts are on the page too


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (report_common.fmt_num, 1234.56, "1,235"),
        (report_common.fmt_num, None, "\u2013"),
        (report_common.fmt_num, "n/a", "n/a"),
        (report_common.fmt_num, float("nan"), "\u2013"),
        (report_common.fmt_times, 6.84, "6.8x"),
        (report_common.fmt_times, 0.4, "0.4x"),
        (report_common.fmt_times, 12.3, "12x"),
        (report_common.fmt_pct, 0.256, "26%"),
        (report_common.fmt_p, 0.0001, "<0.001"),
        (report_common.fmt_p, 0.0123, "0.012"),
        (report_common.fmt_offset, -2, "2 days before"),
        (report_common.fmt_offset, 0, "on the day"),
        (report_common.fmt_offset, 1, "1 day after"),
    ],
)
def test_formatting(fn: Any, value: Any, expected: str) -> None:
    assert fn(value) == expected


@pytest.mark.parametrize(
    ("chart", "args"),
    [
        (charts.pattern_lift_chart, {"patterns": _patterns(), "kind": "event_uplift"}),
        (charts.pattern_lift_chart, {"patterns": _patterns(), "kind": "local_affinity"}),
        (charts.pattern_lift_chart, {"patterns": _patterns(), "kind": "latent_demand"}),
        (charts.prestock_chart, {"prestock": _prestock()}),
        (charts.event_backtest_chart, {"events": _events()}),
        (charts.coverage_chart, {"coverage": report._coverage(_coverage())}),
        (charts.metric_by_model_chart, {"metrics": _metrics([0.2], [0.3]), "metric": "wape"}),
    ],
)
def test_charts_are_inline_svg_and_none_when_empty(chart: Any, args: dict[str, Any]) -> None:
    svg = chart(**args)
    assert svg is not None and svg.startswith("<svg") and svg.endswith("</svg>")
    frame_arg = next(k for k, v in args.items() if isinstance(v, pl.DataFrame))
    assert chart(**{**args, frame_arg: args[frame_arg].clear()}) is None


def test_chart_labels_are_plain_escaped_text() -> None:
    patterns = _patterns().with_columns(pl.lit("$5 $deal <i>").alias("sku"))
    svg = charts.pattern_lift_chart(patterns, kind="event_uplift")
    assert svg is not None and "$5 $deal &lt;i&gt;" in svg and "<i>" not in svg


def test_forecast_chart_with_and_without_regions() -> None:
    chain = pl.DataFrame({"date": [date(2025, 7, 1), date(2025, 7, 2)], "units": [3.0, 4.0]})
    regions = chain.join(pl.DataFrame({"region": ["A", "B"]}), how="cross")
    both = charts.forecast_chart(chain, regions)
    alone = charts.forecast_chart(chain, None)
    assert both is not None and alone is not None and "by region" in both and "by region" not in alone
    assert charts.forecast_chart(chain.clear(), None) is None
