"""The demo world's unlabeled events: planted where the truth says, away from labeled events, and scored."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from flows.demo.unlabeled import CHAIN_CLEAR_DAYS, CLEAR_DAYS, discovery_quality
from flows.demo.world import World, build_world


@pytest.fixture(scope="module")
def worlds() -> tuple[World, World]:
    return build_world("small", 42), build_world("small", 42, unlabeled=False)


def test_planted_windows_lift_their_skus_and_nothing_else(worlds: tuple[World, World]) -> None:
    world, plain = worlds
    planted = world.truth["discovered_event"]
    assert len(planted) >= len(world.regions) + 1
    assert {"ALL", *(r.name for r in world.regions)} == {p["region"] for p in planted}
    assert plain.truth["discovered_event"] == []
    sku = {s: k for k, s in enumerate(world.products["sku"])}
    region = {r.name: i for i, r in enumerate(world.regions)}
    expected = plain.event_mult.copy()
    for p in planted:
        first = (date.fromisoformat(p["window_start"]) - world.start).days
        last = (date.fromisoformat(p["window_end"]) - world.start).days
        rows = list(region.values()) if p["region"] == "ALL" else [region[p["region"]]]
        for s, lift in zip(p["skus"], p["lifts"], strict=True):
            expected[np.ix_(rows, [sku[s]], range(first, last + 1))] *= np.float32(lift)
        assert all(2.5 <= lift <= 5.0 for lift in p["lifts"]) and 4 <= len(p["skus"]) <= 7
    np.testing.assert_allclose(world.event_mult, expected, rtol=1e-6)
    assert world.events.equals(plain.events) and world.promo.tolist() == plain.promo.tolist()


def test_planted_windows_keep_clear_of_labeled_events(worlds: tuple[World, World]) -> None:
    world, _ = worlds
    for p in world.truth["discovered_event"]:
        start, end = date.fromisoformat(p["window_start"]), date.fromisoformat(p["window_end"])
        gap = CHAIN_CLEAR_DAYS if p["region"] == "ALL" else CLEAR_DAYS
        near = world.events.filter(
            ((pl.col("region") == p["region"]) | (pl.col("region") == "ALL") | (p["region"] == "ALL"))
            & (pl.col("start_date") <= end + timedelta(days=gap))
            & (pl.col("end_date") >= start - timedelta(days=gap))
        )
        assert near.height == 0, p


def _patterns(rows: list[tuple[str, str, date, date, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "event_id": pl.String,
            "region": pl.String,
            "window_start": pl.Date,
            "window_end": pl.Date,
            "sku": pl.String,
        },
        orient="row",
    ).with_columns(pl.lit("discovered_event").alias("kind"))


def test_discovery_quality_matches_windows_within_two_days() -> None:
    planted = [
        {
            "region": "R1",
            "window_start": "2024-05-10",
            "window_end": "2024-05-12",
            "skus": ["a", "b", "c", "d"],
        },
        {"region": "R2", "window_start": "2024-06-01", "window_end": "2024-06-02", "skus": ["e", "f"]},
    ]
    d = date(2024, 5, 14)  # two days after the planted end: still a match
    found = _patterns(
        [("x", "R1", d, d, s) for s in ("a", "b", "c")]
        + [("y", "R2", date(2024, 6, 9), date(2024, 6, 9), "e")]  # a week off: no match
    )
    q = discovery_quality(found, planted)
    assert (q["recall"], q["precision"], q["sku_jaccard"]) == (0.5, 0.5, 0.75)
    assert [m["region"] for m in q["missed"]] == ["R2"]
    assert discovery_quality(pl.DataFrame({"kind": ["event_uplift"]}), planted)["found"] == 0
