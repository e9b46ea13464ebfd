"""The planners' backtest end to end on the small demo drop, under a Prefect test server (a file of its
own, so `make test`'s processes run it beside the demo run of test_pipeline_e2e.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_drop(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Path]:
    from flows.demo.generate import generate_demo

    paths = generate_demo(tmp_path_factory.mktemp("demo"), size="small", seed=7)
    with pytest.MonkeyPatch.context() as env:  # the key from the environment, as on a worker
        env.setenv("LOCALSHELF_HMAC_SECRET", paths.secret.read_text().strip())
        yield paths.drop


def test_backtest_writes_the_planners_files(demo_drop: Path, tmp_path: Path) -> None:
    from flows.backtest import localshelf_backtest

    report = localshelf_backtest(drop=demo_drop, out=tmp_path, folds=1, horizon=28)
    backtest = tmp_path / "backtest"
    assert Path(report) == backtest / "report.html" and Path(report).stat().st_size > 0
    metrics = pl.read_parquet(backtest / "forecast_metrics.parquet")
    assert {"cutoff", "model", "level", "wape", "mae", "bias", "rmsse", "wrmsse"} <= set(metrics.columns)
    assert {"lightgbm", "seasonal_naive", "moving_average"} <= set(metrics["model"])
    assert {"total", "region", "category", "store"} <= set(metrics["level"])
    total = dict(metrics.filter(pl.col("level") == "total").select("model", "wape").rows())
    assert total["lightgbm"] < total["moving_average"]
    kept = pl.read_parquet(backtest / "forecasts.parquet")  # the predictions the page draws
    assert {"cutoff", "store_id", "sku", "date", "y", "lightgbm"} <= set(kept.columns) and kept.height > 0
    events = pl.read_parquet(backtest / "event_backtest.parquet")
    assert {"event_id", "precision", "recall"} <= set(events.columns) and events.height > 0
    coverage = pl.read_parquet(backtest / "assortment_backtest.parquet")
    assert set(coverage["strategy"]) == {"advised", "today", "standard", "budgeted standard"}
    assert coverage["demand_covered_share"].is_between(0, 1).all()
    # the headline is each store's own held-out demand; the region measure is written beside it
    assert coverage["demand_measure"].unique(maintain_order=True).to_list() == ["store", "region"]
    page = Path(report).read_text(encoding="utf-8")
    assert "Demand measure: <strong>store</strong>" in page
