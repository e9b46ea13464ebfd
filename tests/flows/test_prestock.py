"""Tests for flows/prestock.py: the plan for one event from a finished run's output folder."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from flows.lake.outputs import OutPaths
from flows.prestock import UnknownEventError, prestock_from_run
from tests.worlds.shelves import AS_OF, make_forecast, make_patterns

START, END = AS_OF + timedelta(days=20), AS_OF + timedelta(days=21)


def _finished_run(root: Path) -> OutPaths:
    """An output folder as a run leaves it, whose lake is gone (names and regions from the assortment)."""
    out = OutPaths(root)
    root.mkdir(parents=True, exist_ok=True)
    out.run_json.write_text(json.dumps({"as_of": AS_OF.isoformat(), "inputs": {"lake": str(root / "gone")}}))
    make_patterns(
        [{"kind": "event_uplift", "region": "R1", "sku": "A", "event_type": "hurricane", "lift": 2.5,
          "ci_low": 2.0, "ci_high": 3.0, "support": 4, "window_start_offset_days": 0}]
    ).with_columns(pl.col("window_start_offset_days").cast(pl.Int64)).write_parquet(out.patterns)  # fmt: skip
    make_forecast({("S1", "A"): 3.0, ("S3", "A"): 1.0}).write_parquet(out.forecast)
    pl.DataFrame(
        {"store_id": ["S1", "S3"], "sku": ["A", "A"], "action": ["keep", "keep"], "region": ["R1", "R2"],
         "name": ["Item A", "Item A"]}
    ).write_parquet(out.assortment)  # fmt: skip
    return out


def test_a_plan_is_written_where_asked(tmp_path: Path) -> None:
    out = _finished_run(tmp_path / "out")
    result = prestock_from_run(out.root, event_type="hurricane", region="R1", start=START, end=END)
    assert result.folder == out.root / f"prestock-hurricane-R1-{START.isoformat()}"
    plan = pl.read_parquet(result.parquet)
    # 2 days of 3: extra 6 x 1.5 = 9, buffer 6 x (2.5 e^(1.28 x 0.103) - 2.5) = 2.1: order 12
    assert plan.select("store_id", "sku", "order_units").rows() == [("S1", "A", 12)]
    assert plan["stock_by"][0] < START and plan["name"][0] == "Item A"
    assert pl.read_csv(result.csv).height == 1 and result.lines == 1


def test_an_unknown_region_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    out = _finished_run(tmp_path / "out")
    with pytest.raises(UnknownEventError, match="Known regions: R1, R2"):
        prestock_from_run(out.root, event_type="hurricane", region="MARS", start=START, end=END)


def test_a_region_without_the_pattern_gets_an_empty_plan_that_says_why(tmp_path: Path) -> None:
    out = _finished_run(tmp_path / "out")
    result = prestock_from_run(
        out.root, event_type="hurricane", region="R2", start=START, end=END, to=tmp_path / "p"
    )
    assert result.lines == 0 and pl.read_parquet(result.parquet).height == 0
    assert "no significant hurricane pattern in R2 (it has patterns in R1)" in result.message


def test_a_folder_that_is_not_a_run_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run.json"):
        prestock_from_run(tmp_path, event_type="hurricane", region="R1", start=START, end=END)
