"""Staging a load's rows: split by month (slices when in date order), key hashes."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from flows.lake.stage import _by_month, _distinct, _holds_any, key_hash

DAYS = [date(2024, 8, 1), date(2024, 8, 31), date(2024, 12, 1), date(2025, 1, 1)]


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 1, 2, 0]], ids=["date-ordered", "shuffled"])
def test_rows_split_by_month_in_month_order(order: list[int]) -> None:
    df = pl.DataFrame({"date": [DAYS[i] for i in order], "x": order})
    split = [(part, sorted(rows["x"].to_list())) for part, rows in _by_month(df, "date")]
    assert split == [((2024, 8), [0, 1]), ((2024, 12), [2]), ((2025, 1), [3])]


def test_no_rows_no_months() -> None:
    assert _by_month(pl.DataFrame({"date": []}, schema={"date": pl.Date}), "date") == []


def test_equal_keys_equal_hashes() -> None:
    df = pl.DataFrame({"date": DAYS[:2] * 2, "store_id": ["1", "1", "1", "2"], "sku": ["A"] * 4})
    hashes = df.select(key_hash(("date", "store_id", "sku"))).to_series().to_list()
    assert hashes[0] == hashes[2] and len(set(hashes)) == 3


def test_distinct_and_binary_search_membership() -> None:
    found = _distinct(np.sort(np.array([5, 3, 3, 9, 5], dtype=np.uint64)))
    assert found.tolist() == [3, 5, 9]
    assert _holds_any(np.array([1, 9], dtype=np.uint64), found)
    assert not _holds_any(np.array([1, 4, 10], dtype=np.uint64), found)
