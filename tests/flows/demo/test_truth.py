"""Scoring mined patterns against a demo world's planted truth."""

from __future__ import annotations

import polars as pl
import pytest

from flows.demo.truth import mining_quality

TRUTH = {
    "event_uplift": [
        {"region": r, "sku": sku, "event_type": "holiday", "lift": 1.5}
        for r in ("N", "S")
        for sku in ("a", "b")
    ]
    + [{"region": "N", "sku": "c", "event_type": "storm", "lift": 3.0}],
}


def _patterns(rows: list[tuple[str, str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["region", "sku", "event_type", "lift"], orient="row").with_columns(
        pl.lit("event_uplift").alias("kind")
    )


def test_a_chain_wide_pattern_covers_the_regions_it_reaches_in_the_advice() -> None:
    # N's own holiday pattern for a; the chain's for b (both regions); nothing for the storm
    out = mining_quality(_patterns([("N", "a", "holiday", 1.5), ("ALL", "b", "holiday", 1.5)]), TRUTH)
    assert out["event_uplift.recall"] == pytest.approx(1 / 5)  # strictly per region
    assert out["event_uplift.recall_with_chain"] == pytest.approx(3 / 5)  # N a, N b, S b
    assert out["event_uplift.chain_true"] == 1


def test_a_chain_wide_pattern_of_another_type_covers_nothing() -> None:
    out = mining_quality(_patterns([("ALL", "c", "holiday", 1.5)]), TRUTH)
    assert out["event_uplift.recall_with_chain"] == 0.0
    assert out["event_uplift.chain_true"] == 0
