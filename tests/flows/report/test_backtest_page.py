"""backtest/report.html: verdicts in words, forecasts against what sold, each input optional."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.report import backtest_page
from flows.report.inputs import FORECAST_BACKTEST_FILE
from tests.flows.report import frames
from tests.flows.report.test_report import EXTERNAL


def metrics(lgb_wape: list[float], naive_wape: list[float]) -> pl.DataFrame:
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
    assert backtest_page.verdicts(metrics(lgb, naive)) == [expected]


def events() -> pl.DataFrame:
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
    assert backtest_page.event_verdict(events()) == (
        "Over 2 held-out events, 4 products were flagged for pre-stock and 7 really rose: 75% of the flags "
        "were right, and 43% of the risers were flagged."
    )
    none = events().with_columns(pl.lit(0).alias("flagged"), pl.lit(0).alias("actual_risers"))
    assert backtest_page.event_verdict(none) is None


def coverage() -> pl.DataFrame:
    rows = [
        (date(2025, 5, 1), store, strategy, share)
        for store, shift in (("S1", 0.0), ("S2", 0.1))
        for strategy, share in (("advised", 0.8 + shift), ("today", 0.7 + shift), ("standard", 0.75 + shift))
    ]
    return pl.DataFrame(rows, schema=["cutoff", "store_id", "strategy", "demand_covered_share"], orient="row")


def test_coverage_is_the_chain_row_or_the_store_mean() -> None:
    by_store = coverage()
    expected = pl.DataFrame(
        {
            "cutoff": [date(2025, 5, 1)] * 3,
            "strategy": ["advised", "standard", "today"],
            "demand_covered_share": [0.85, 0.80, 0.75],
        }
    )
    assert_frame_equal(backtest_page._coverage(by_store), expected)
    chain_rows = expected.select(
        "cutoff", pl.lit("ALL").alias("store_id"), "strategy", (pl.col("demand_covered_share") - 0.5)
    )
    chain = pl.concat([by_store, chain_rows])
    assert backtest_page._coverage(chain)["demand_covered_share"].round(6).to_list() == [0.35, 0.30, 0.25]
    assert backtest_page.coverage_verdicts(backtest_page._coverage(by_store)) == [
        "The advised assortment carried more of the held-out demand than the chain-wide standard "
        "(every shelf reset to the chain's best sellers) in 1 of 1 folds "
        "(mean 85% vs 80%).",
        "The advised assortment carried more of the held-out demand than today's assortment in 1 of 1 folds "
        "(mean 85% vs 75%).",
    ]


def test_coverage_headlines_the_store_measure_and_labels_the_region_one(tmp_path: Path) -> None:
    """A backtest that wrote both measures: verdicts, chart and first table on the store measure (the
    advice ahead, 85% vs 80%), the region rows (where the advice trails, 60% vs 70%) in a table of
    their own, each named; a file without the column is an older backtest's, on the region measure."""
    store = coverage().with_columns(demand_measure=pl.lit("store"))
    region = (
        coverage()
        .with_columns(
            pl.when(pl.col("strategy") == "advised").then(0.55).otherwise(0.65).alias("demand_covered_share"),
            demand_measure=pl.lit("region"),
        )
        .with_columns(
            pl.col("demand_covered_share") + pl.when(pl.col("store_id") == "S2").then(0.1).otherwise(0.0)
        )
    )
    both = pl.concat([region, store])
    assert backtest_page.coverage_measures(both) == ["store", "region"]
    assert backtest_page.coverage_measures(coverage()) == ["region"]
    section = backtest_page._coverage_section(both)
    assert section["measure"] == "store"
    assert section["verdicts"][0].endswith("in 1 of 1 folds (mean 85% vs 80%).")
    assert [o["measure"] for o in section["others"]] == ["region"]
    assert section["others"][0]["rows"][0]["advised"] == pytest.approx(0.60)
    both.write_parquet(tmp_path / "assortment_backtest.parquet")
    page = backtest_page.render_backtest_report(tmp_path, frames.run_info(cutoffs=["2025-05-01"])).read_text()
    assert "Demand measure: <strong>store</strong>, each store&#39;s own held-out demand" in page
    assert "The same on the <strong>region</strong> demand measure" in page
    assert page.index("<strong>store</strong>") < page.index("<strong>region</strong>")


def forecasts() -> pl.DataFrame:
    """Two folds of two days for two pairs: the model 10% high, the baseline 20% low."""
    rows = []
    for cutoff in (date(2025, 5, 1), date(2025, 5, 29)):
        for d in (1, 2):
            for sku in ("A1", "A2"):
                rows.append((cutoff, "S01", sku, cutoff + timedelta(days=d), 10.0, 11.0, 8.0, 9.0, 13.0))
    schema = ["cutoff", "store_id", "sku", "date", "y", "lightgbm", "seasonal_naive", "p10", "p90"]
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_forecast_totals_sum_pairs_per_fold_and_day() -> None:
    totals, models = backtest_page.forecast_totals(forecasts())
    assert models == ["lightgbm", "seasonal_naive"]
    assert totals.height == 4
    first = totals.row(0, named=True)
    assert (first["cutoff"], first["date"]) == (date(2025, 5, 1), date(2025, 5, 2))
    assert (first["y"], first["lightgbm"], first["seasonal_naive"]) == (20.0, 22.0, 16.0)
    # each pair's p10-p90 is 9-13 (sd 4 / 2.5632): the total's is 22 +- 4 / sqrt(2), not the summed 18-26
    assert first["p10"] == pytest.approx(22 - 4 / 2**0.5) and first["p90"] == pytest.approx(22 + 4 / 2**0.5)


def test_interval_held_is_the_share_of_product_days_inside_their_own_p10_p90() -> None:
    """Every product-day sold 10 inside 9-13; make the first fold's A1 sell 14 on both days: 2 of 4 out."""
    df = forecasts().with_columns(
        y=pl.when((pl.col("cutoff") == date(2025, 5, 1)) & (pl.col("sku") == "A1")).then(14.0).otherwise("y")
    )
    assert backtest_page._interval_held(df) == {date(2025, 5, 1): 0.5, date(2025, 5, 29): 1.0}
    assert backtest_page._interval_held(df.drop("p10", "p90")) == {}


BACKTEST_FILES = {
    "forecast_metrics.parquet": lambda: metrics([0.2, 0.2], [0.3, 0.25]),
    "event_backtest.parquet": events,
    "assortment_backtest.parquet": coverage,
    FORECAST_BACKTEST_FILE: forecasts,
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
    path = backtest_page.render_backtest_report(
        tmp_path, frames.run_info(cutoffs=["2025-05-01", "2025-05-29"])
    )
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    assert EXTERNAL.search(page) is None
    for name in BACKTEST_FILES:
        assert (f"{name} is missing" in page) == (name not in present)
    if "forecast_metrics.parquet" in present:
        assert "LightGBM beat the seasonal-naive baseline on WAPE at the total level in 2 of 2 folds" in page
    if FORECAST_BACKTEST_FILE in present:
        assert '<td>2025-05-01</td><td class="r" data-v="40.0">40</td>' in page
        assert "<td>10% too high</td>" in page and "<td>20% too low</td>" in page
        assert "Product-days inside p10-p90" in page and '<td class="r">100%</td>' in page
    charts_per_file = {
        "forecast_metrics.parquet": 2,
        "event_backtest.parquet": 1,
        "assortment_backtest.parquet": 1,
        FORECAST_BACKTEST_FILE: 1,
    }
    assert page.count("<svg") == sum(charts_per_file[name] for name in present)
    assert "12.3k" in page  # the run's load counts are on the page too, rounded
