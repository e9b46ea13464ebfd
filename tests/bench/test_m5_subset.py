"""The M5 benchmark's own arithmetic: folds, WRMSSE as M5 defines it, coverage, and the drop mapping."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from bench.m5_drop import M5Frames, events_frame, products_frame, write_m5_drop
from bench.m5_scoring import Fold, coverage, folds, wrmsse_table
from bench.m5_subset import m5_panel

D0 = date(2016, 1, 1)


def _m5(units: dict[tuple[str, str], list[int]], prices: dict[tuple[str, str], float]) -> M5Frames:
    """A hand-made M5 subset: per (store, item) daily units from D0, one shelf price for every week."""
    n = len(next(iter(units.values())))
    days = [D0 + timedelta(days=i) for i in range(n)]
    sales = pl.concat(
        pl.DataFrame(
            {
                "item_id": item,
                "dept_id": item.rsplit("_", 1)[0],
                "cat_id": item.split("_")[0],
                "store_id": store,
                "state_id": store.split("_")[0],
                "d": [f"d_{i + 1}" for i in range(n)],
                "date": days,
                "units": pl.Series(u, dtype=pl.Int16),
            }
        )
        for (store, item), u in units.items()
    )
    calendar = pl.DataFrame(
        {
            "date": days,
            "wm_yr_wk": [11600 + i // 7 for i in range(n)],
            "event_name_1": ["SuperBowl" if i == 3 else None for i in range(n)],
            "event_type_1": ["Sporting" if i == 3 else None for i in range(n)],
            "event_name_2": pl.Series([None] * n, dtype=pl.String),
            "event_type_2": pl.Series([None] * n, dtype=pl.String),
            "snap_CA": [1 if i in (1, 2, 5) else 0 for i in range(n)],
            "snap_TX": [0] * n,
            "snap_WI": [0] * n,
        }
    )
    weeks = calendar.get_column("wm_yr_wk").unique().to_list()
    prices = prices or dict.fromkeys(units, 1.0)
    sell_prices = pl.DataFrame(
        [
            {"store_id": s, "item_id": i, "wm_yr_wk": w, "sell_price": p}
            for (s, i), p in prices.items()
            for w in weeks
        ]
    )
    return M5Frames(sales=sales, calendar=calendar, sell_prices=sell_prices)


def test_folds_end_on_the_last_date_and_never_overlap() -> None:
    got = folds(D0 + timedelta(days=120), n_windows=4, h=28)
    assert [f.cutoff for f in got] == [D0 + timedelta(days=120 - 28 * k) for k in (4, 3, 2, 1)]
    assert got[-1].end == D0 + timedelta(days=120)
    assert all(a.end == b.cutoff for a, b in zip(got, got[1:], strict=False))


def test_wrmsse_by_hand() -> None:
    # series A: 0 0 2 4 2 | 3 3 ; B: 1 1 1 3 1 | 0 2  (cutoff after day 4, h = 2)
    m5 = _m5(
        {("CA_1", "FOODS_1_001"): [0, 0, 2, 4, 2, 3, 3], ("CA_1", "FOODS_1_002"): [1, 1, 1, 3, 1, 0, 2]}, {}
    )
    panel = m5_panel(m5)
    fold = Fold(D0 + timedelta(days=4), 2)
    # A's history starts at its first sale (day 2): 2 4 2 -> naive errors 2, -2 -> scale 4
    # B: 1 1 1 3 1 -> errors 0 0 2 -2 -> scale 2
    revenue = pl.DataFrame(
        {
            "store_id": ["CA_1", "CA_1"],
            "sku": ["FOODS_1_001", "FOODS_1_002"],
            "date": [D0, D0],
            "revenue": [3.0, 1.0],
        }
    )
    fc = pl.DataFrame(
        {
            "store_id": ["CA_1"] * 4,
            "sku": ["FOODS_1_001"] * 2 + ["FOODS_1_002"] * 2,
            "date": [fold.cutoff + timedelta(days=d) for d in (1, 2, 1, 2)],
            "flat": [2.0, 2.0, 1.0, 1.0],
        }
    )
    got = wrmsse_table(panel, revenue, fc, fold, ["flat"])["flat"]
    rmsse_a = math.sqrt(((3 - 2) ** 2 + (3 - 2) ** 2) / 2 / 4)
    rmsse_b = math.sqrt(((0 - 1) ** 2 + (2 - 1) ** 2) / 2 / 2)
    assert got == pytest.approx(0.75 * rmsse_a + 0.25 * rmsse_b)


def test_coverage_counts_days_inside_p10_p90() -> None:
    m5 = _m5({("CA_1", "FOODS_1_001"): [1, 2, 3, 4, 5]}, {})
    fold = Fold(D0 + timedelta(days=2), 2)
    fc = pl.DataFrame(
        {
            "store_id": ["CA_1"] * 2,
            "sku": ["FOODS_1_001"] * 2,
            "date": [fold.cutoff + timedelta(days=d) for d in (1, 2)],
            "m_p10": [3.0, 1.0],
            "m_p90": [4.0, 4.0],
        }
    )
    assert coverage(m5_panel(m5), fc, fold, "m") == 0.5  # 4 in [3, 4]; 5 not in [1, 4]
    assert coverage(m5_panel(m5), fc, fold, "m", (1, 1)) == 1.0  # the first day after the cutoff only
    assert coverage(m5_panel(m5), fc, fold, "m", (2, 2)) == 0.0


def test_m5_drop_follows_the_input_contract(tmp_path: Path) -> None:
    m5 = _m5({("CA_1", "FOODS_1_001"): [0, 2, 1, 0, 3, 0, 1, 2]}, {("CA_1", "FOODS_1_001"): 2.5})
    products = products_frame(m5)
    assert products.row(0, named=True) == {
        "sku": "FOODS_1_001",
        "name": "FOODS_1_001",
        "category": "FOODS",
        "subcategory": "FOODS_1",
        "regular_price": 2.5,
    }
    events = events_frame(m5)
    snap = events.filter(pl.col("event_type") == "snap")
    # SNAP CA on days 1-2 and 5: two runs, regional; the Super Bowl chain-wide
    assert snap.select("region", "start_date", "end_date").rows() == [
        ("CA", D0 + timedelta(days=1), D0 + timedelta(days=2)),
        ("CA", D0 + timedelta(days=5), D0 + timedelta(days=5)),
    ]
    assert events.filter(pl.col("event_type") == "sporting").select("region", "name").rows() == [
        ("ALL", "SuperBowl")
    ]
    assert events.get_column("event_id").is_unique().all()


def test_write_m5_drop_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m5 = _m5({("CA_1", "FOODS_1_001"): [0, 2, 1, 0]}, {("CA_1", "FOODS_1_001"): 2.5})
    data = tmp_path / "m5"
    data.mkdir()
    m5.sales.write_parquet(data / "sales.parquet")
    m5.calendar.write_parquet(data / "calendar.parquet")
    m5.sell_prices.write_parquet(data / "sell_prices.parquet")
    drop = write_m5_drop(tmp_path / "drop", data=data)
    assert sorted(p.name for p in drop.path.iterdir()) == [
        "assortment.csv",
        "events.csv",
        "products.csv",
        "store_sales",
        "stores.csv",
    ]
    sales = pl.read_parquet(drop.path / "store_sales")
    assert sales.columns == ["date", "store_id", "sku", "units", "revenue"]
    assert sales.get_column("revenue").to_list() == [0.0, 5.0, 2.5, 0.0]
    assert pl.read_csv(drop.path / "stores.csv").row(0) == ("CA_1", "CA", "CA", "CA_1")
