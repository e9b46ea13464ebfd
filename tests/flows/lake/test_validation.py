"""validate_lake over small hand-made lakes: a clean lake passes, planted breaks fail by rule name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from data_contracts.schemas import (
    ASSORTMENT,
    EVENTS,
    LAKE_ONLINE_ORDERS,
    LAKE_STORE_SALES,
    POSTAL_REGIONS,
    PRODUCTS,
    SHELF_CAPACITY,
    STORE_SALES,
    STORES,
)
from data_contracts.suites import KEY_CODE, KEY_ONCE
from data_contracts.validate import ValidationSummary, to_gx_frame
from flows.lake.paths import PART_FILE, LakePaths
from flows.lake.validation import validate_lake

AS_OF = date(2024, 6, 30)
LOADED = datetime(2024, 7, 1, tzinfo=UTC)


def _sales(d: date, store: str, sku: str, units: float, revenue: float, on_hand: float | None = 5.0) -> dict:
    return {
        "date": d,
        "store_id": store,
        "sku": sku,
        "units": units,
        "revenue": revenue,
        "on_hand": on_hand,
        "promo": False,
        "_source_file": "store_sales/a.csv",
        "_source_row": 1,
        "_loaded_at": LOADED,
    }


def _order(order_id: str, line: int, d: date, sku: str, units: float, revenue: float) -> dict:
    return {
        "order_id": order_id,
        "line_number": line,
        "ordered_at": datetime(d.year, d.month, d.day, 15, tzinfo=UTC),
        "sku": sku,
        "units": units,
        "revenue": revenue,
        "ship_postal_code": "02134",
        "fulfillment": "ship",
        "pickup_store_id": None,
        "customer_key": None,
        "order_date": d,
        "_source_file": "online_orders/o.csv",
        "_source_row": line,
        "_loaded_at": LOADED,
    }


def _clean_tables() -> dict[str, pl.DataFrame]:
    """A small lake that keeps every rule: two stores, two SKUs, two sales months, one orders month."""
    return {
        "stores": pl.DataFrame(
            {
                "store_id": ["001", "002"],
                "region": ["R1", "R2"],
                "state": ["MA", "FL"],
                "postal_code": ["02134", "33101"],
                "latitude": [42.3, None],
                "longitude": [-71.1, None],
                "format": [None, "supercenter"],
            },
            schema=STORES.schema,
        ),
        "products": pl.DataFrame(
            {
                "sku": ["A", "B"],
                "name": ["a", "b"],
                "category": ["c", "c"],
                "subcategory": [None, None],
                "brand": [None, "x"],
                "regular_price": [1.0, 0.0],
                "case_pack": [None, 12],
            },
            schema=PRODUCTS.schema,
        ),
        "postal_regions": pl.DataFrame(
            {"postal_code": ["02134"], "region": ["R1"]}, schema=POSTAL_REGIONS.schema
        ),
        "assortment": pl.DataFrame({"store_id": ["001", "002"], "sku": ["A", "A"]}, schema=ASSORTMENT.schema),
        "shelf_capacity": pl.DataFrame(
            {"store_id": ["001"], "category": ["c"], "max_skus": [2]}, schema=SHELF_CAPACITY.schema
        ),
        "events": pl.DataFrame(
            {
                "event_id": ["e1", "e1"],
                "event_type": ["storm", "storm"],
                "name": [None, None],
                "region": ["R1", "R2"],
                "start_date": [date(2024, 8, 1)] * 2,
                "end_date": [date(2024, 8, 3)] * 2,
            },
            schema=EVENTS.schema,
        ),
        "store_sales/2024/5": pl.DataFrame(
            [_sales(date(2024, 5, 31), "001", "A", 2, 3.0), _sales(date(2024, 5, 31), "002", "A", -1, -1.5)],
            schema=LAKE_STORE_SALES,
        ),
        "store_sales/2024/6": pl.DataFrame(
            [
                _sales(date(2024, 6, 1), "001", "A", 0, 0.0, on_hand=0.0),
                _sales(date(2024, 6, 1), "001", "B", 1, 0.0),
            ],
            schema=LAKE_STORE_SALES,
        ),
        "online_orders/2024/6": pl.DataFrame(
            [
                _order("o1", 1, date(2024, 6, 2), "A", 1, 2.0),
                _order("o1", 2, date(2024, 6, 2), "B", -1, -2.0),
            ],
            schema=LAKE_ONLINE_ORDERS,
        ),
    }


def _write_lake(root: Path, tables: dict[str, pl.DataFrame]) -> LakePaths:
    """Write ``tables`` (reference name, or "fact/year/month") into a lake at ``root``."""
    lake = LakePaths(root)
    for key, df in tables.items():
        if "/" in key:
            name, year, month = key.split("/")
            folder = lake.partition(name, int(year), int(month))
        else:
            folder = lake.table(key)
        folder.mkdir(parents=True, exist_ok=True)
        df.write_parquet(folder / PART_FILE)
    return lake


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[LakePaths, ValidationSummary]:
    lake = _write_lake(tmp_path_factory.mktemp("clean"), _clean_tables())
    return lake, validate_lake(lake, as_of=AS_OF)


def test_clean_lake_passes(clean: tuple[LakePaths, ValidationSummary]) -> None:
    _, summary = clean
    assert summary.failure_lines() == []
    assert summary.success
    # one batch per table and load: both sales months together
    assert summary.tables["store_sales"]["batches"] == 1
    assert summary.tables["store_sales"]["rows"] == 4
    assert summary.tables["online_orders"] | {"expectations": 0} == {
        "batches": 1,
        "rows": 2,
        "expectations": 0,
        "failed": [],
        "success": True,
        "failures": [],
    }
    assert all(t["expectations"] > 0 for t in summary.tables.values())


def test_data_docs_written_into_lake(clean: tuple[LakePaths, ValidationSummary]) -> None:
    lake, summary = clean
    index = lake.docs / "index.html"
    assert summary.docs_index == str(index)
    assert index.is_file()
    assert "localshelf.store_sales" in index.read_text()
    # one validation page per batch: 6 reference tables + store sales + online orders
    assert len(list((lake.docs / "validations").rglob("*.html"))) == 8


def test_summary_is_json(clean: tuple[LakePaths, ValidationSummary]) -> None:
    import json

    _, summary = clean
    assert json.loads(json.dumps(summary.to_json()))["success"] is True


Change = Callable[[pl.DataFrame], pl.DataFrame]


def _set(row: int, **values: object) -> Change:
    """Return a change that sets ``values`` in row ``row`` of a frame."""

    def change(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(
            pl.when(pl.int_range(pl.len()) == row)
            .then(pl.lit(v, dtype=df.schema[c]))
            .otherwise(pl.col(c))
            .alias(c)
            for c, v in values.items()
        )

    return change


def _duplicate_first(df: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([df, df.head(1)])


# Planted breaks: (table, change, rules expected to fail). Each fact break goes into its own month so one
# validation run checks them all and each batch must fail on exactly its own rules.
FACT_BREAKS: list[tuple[str, Change, set[str]]] = [
    ("store_sales", _set(0, sku="ZZZ"), {"sku exists in products.sku"}),
    ("store_sales", _set(1, store_id="999"), {"store_id exists in stores.store_id"}),
    ("store_sales", _duplicate_first, {"(date, store_id, sku) unique"}),
    ("store_sales", _set(0, on_hand=-1.0), {"on_hand >= 0"}),
    ("store_sales", _set(1, revenue=-1.0), {"revenue same sign as units or 0"}),
    ("store_sales", _set(0, units=0.0, revenue=2.0), {"revenue same sign as units or 0"}),
    ("store_sales", _set(0, date=date(1999, 6, 1)), {"date >= 2000-01-01", "date >= partition start"}),
    ("store_sales", _set(0, date=date(2024, 7, 1)), {"date <= 2024-06-30", "date <= partition end"}),
    ("store_sales", _set(1, date=date(2000, 1, 1)), {"date >= partition start"}),
    ("store_sales", _set(1, units=None), {"units not null"}),
    (
        "store_sales",
        lambda df: df.drop("revenue"),
        {"revenue exists", "revenue is float", "revenue not null", "revenue same sign as units or 0"},
    ),
    ("store_sales", lambda df: df.with_columns(pl.col("units").cast(pl.Int64)), {"units is float"}),
    ("online_orders", _set(1, line_number=1), {"(order_id, line_number) unique"}),
    ("online_orders", _set(0, line_number=0), {"line_number >= 1"}),
    ("online_orders", _set(0, fulfillment="drone"), {"fulfillment in {ship, pickup}"}),
    ("online_orders", _set(0, revenue=-2.0), {"revenue same sign as units or 0"}),
    (
        "online_orders",
        _set(0, order_date=date(2030, 1, 1)),
        {"order_date <= 2024-06-30", "order_date <= partition end"},
    ),
    (
        "online_orders",
        _set(0, ordered_at=datetime(1990, 1, 1, tzinfo=UTC)),
        {"ordered_at >= 2000-01-01 - 1 day (UTC)"},
    ),
]


def _break_month(i: int) -> tuple[int, int]:
    """Return the (year, month) that holds planted break number ``i``: consecutive months from 2022-01."""
    return 2022 + i // 12, i % 12 + 1


def _shift_month(df: pl.DataFrame, year: int, month: int) -> pl.DataFrame:
    """Move a June 2024 frame's dates into ``year``-``month`` (same day), keeping every other value."""
    shift = [
        pl.col(c).dt.replace(year=year, month=month)
        for c in ("date", "order_date", "ordered_at")
        if c in df.columns
    ]
    return df.with_columns(shift)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> ValidationSummary:
    tables = _clean_tables()
    for i, (table, change, _) in enumerate(FACT_BREAKS):
        year, month = _break_month(i)
        tables[f"{table}/{year}/{month}"] = change(_shift_month(tables[f"{table}/2024/6"], year, month))
    tables["assortment"] = pl.DataFrame(
        {"store_id": ["001", "999"], "sku": ["A", "A"]}, schema=ASSORTMENT.schema
    )
    tables["events"] = tables["events"].with_columns(end_date=pl.lit(date(2024, 7, 1)))
    lake = _write_lake(tmp_path_factory.mktemp("broken"), tables)
    return validate_lake(lake, as_of=AS_OF, per_partition=True)  # a failure names its month


@pytest.mark.parametrize(("i", "break_"), list(enumerate(FACT_BREAKS)))
def test_planted_fact_break_fails_naming_rule(
    broken: ValidationSummary, i: int, break_: tuple[str, Change, set[str]]
) -> None:
    table, _, rules = break_
    year, month = _break_month(i)
    failed = {f["rule"] for f in broken.tables[table]["failures"] if f["batch"] == f"{year}-{month:02d}"}
    assert failed == rules


@pytest.mark.parametrize(
    ("table", "rule"),
    [("assortment", "store_id exists in stores.store_id"), ("events", "end_date >= start_date")],
)
def test_planted_reference_break_fails_naming_rule(broken: ValidationSummary, table: str, rule: str) -> None:
    assert broken.tables[table]["failed"] == [rule]
    assert any(line.startswith(f"{table} [all]: {rule}") for line in broken.failure_lines())


def test_failure_lines_name_batch_rule_and_evidence(broken: ValidationSummary) -> None:
    lines = broken.failure_lines()
    year, month = _break_month(0)
    assert f"store_sales [{year}-{month:02d}]: sku exists in products.sku (observed ZZZ)" in lines
    year, month = _break_month(6)
    assert f"store_sales [{year}-{month:02d}]: date >= 2000-01-01 (observed 1999-06-01)" in lines
    year, month = _break_month(2)  # a row repeated: both rows with that key are unexpected
    assert f"store_sales [{year}-{month:02d}]: (date, store_id, sku) unique (2 rows)" in lines


def test_broken_lake_fails_only_where_planted(broken: ValidationSummary) -> None:
    assert not broken.success
    assert {t for t, rec in broken.tables.items() if not rec["success"]} == {
        "store_sales",
        "online_orders",
        "assortment",
        "events",
    }
    # the clean June partitions in the same lake still pass
    assert not [
        f
        for t in ("store_sales", "online_orders")
        for f in broken.tables[t]["failures"]
        if f["batch"] == "2024-06"
    ]


def _only(tables: dict[str, pl.DataFrame], *keep: str) -> dict[str, pl.DataFrame]:
    """The tables whose key starts with one of ``keep`` (fewer batches: each costs GX ~0.3 s)."""
    return {k: v for k, v in tables.items() if k.startswith(keep)}


def test_partitions_limit_what_is_validated(tmp_path: Path) -> None:
    tables = _only(_clean_tables(), "stores", "products", "store_sales", "online_orders")
    tables["store_sales/2024/6"] = _set(0, sku="ZZZ")(tables["store_sales/2024/6"])  # only June is broken
    lake = _write_lake(tmp_path, tables)
    # a month a load names but that holds no file is nothing to check, not an error
    may_only = validate_lake(lake, as_of=AS_OF, partitions={"store_sales": [(2024, 5), (2030, 1)]})
    assert may_only.success
    assert may_only.tables["store_sales"]["batches"] == 1
    assert may_only.tables["store_sales"]["rows"] == 2
    assert may_only.tables["online_orders"]["batches"] == 0
    june = validate_lake(lake, as_of=AS_OF, partitions={"store_sales": [(2024, 6), (2024, 6)]})
    assert not june.success
    assert june.tables["store_sales"]["batches"] == 1
    assert [f["batch"] for f in june.tables["store_sales"]["failures"]] == ["2024-06"]
    assert june.tables["store_sales"]["failures"][0]["observed"] == "ZZZ"  # the unknown sku
    # the Data Docs show the latest run only: May's page (validated in the first run) is gone
    # (validations/<suite>/<run name>/<run time>/<batch>.html)
    runs = {p.parent.parent.name for p in (lake.docs / "validations").rglob("*.html")}
    assert runs == {"stores all", "products all", "store_sales 2024-06"}


@pytest.mark.parametrize(("max_future_days", "failed"), [(0, ["date <= 2024-06-30"]), (2, [])])
def test_future_dates_bounded_like_ingest(tmp_path: Path, max_future_days: int, failed: list[str]) -> None:
    tables = _only(_clean_tables(), "stores", "products")
    tables["store_sales/2024/7"] = _shift_month(_clean_tables()["store_sales/2024/6"], 2024, 7)  # July 1
    lake = _write_lake(tmp_path, tables)
    summary = validate_lake(
        lake, as_of=AS_OF, max_future_days=max_future_days, partitions={"store_sales": [(2024, 7)]}
    )
    assert summary.tables["store_sales"]["failed"] == failed


def test_optional_reference_tables_absent_is_fine(tmp_path: Path) -> None:
    tables = _only(_clean_tables(), "stores", "products", "assortment")
    lake = _write_lake(tmp_path, tables)
    summary = validate_lake(lake, as_of=AS_OF, partitions={})
    assert summary.success
    assert summary.tables["events"]["batches"] == 0


def test_adapter_keeps_text_in_arrow_numbers_in_numpy_with_derived_columns() -> None:
    df = pl.DataFrame(
        {
            "units": [1.0, -1.0, 0.0, 2.0],
            "revenue": [2.0, 1.0, 0.0, None],
            "sku": ["a", "b", "c", "d"],
            "line": [1, 2, 3, 4],
            "gap": [1, None, 3, 4],
        }
    )
    out = to_gx_frame(df)
    # numbers in NumPy (GX's range checks are vectorized only there), null float as NaN
    assert (out["units"].dtype, out["revenue"].dtype, out["line"].dtype) == (np.float64, np.float64, np.int64)
    assert out["revenue"].isna().tolist() == [False, False, False, True]
    # text, booleans and integers with nulls stay Arrow-backed
    assert all(isinstance(out[c].dtype, pd.ArrowDtype) for c in ("sku", "gap", "_revenue_sign_matches_units"))
    assert out["_revenue_sign_matches_units"].tolist() == [1, 0, 1, pd.NA]


def test_adapter_hands_the_key_hash_over_as_numpy() -> None:
    df = pl.DataFrame(
        [
            _sales(date(2024, 6, 1), "001", "A", 1, 1.0),
            _sales(date(2024, 6, 1), "001", "B", 1, 1.0),
            _sales(date(2024, 6, 1), "001", "A", 2, 2.0),  # the same key again
        ],
        schema=LAKE_STORE_SALES,
    )
    out = to_gx_frame(df, STORE_SALES)
    assert out[KEY_CODE].dtype == np.uint64
    hashes = out[KEY_CODE].tolist()
    assert hashes[0] == hashes[2] != hashes[1]
    # the rows sharing a key hash are marked for the uniqueness rule, in NumPy
    assert out[KEY_ONCE].dtype == np.int64 and out[KEY_ONCE].tolist() == [0, 1, 0]


def test_one_batch_per_table_finds_every_planted_break(tmp_path: Path) -> None:
    tables = _clean_tables()
    planted: dict[str, set[str]] = {"store_sales": set(), "online_orders": set()}
    for i, (table, change, rules) in enumerate(FACT_BREAKS[:10]):  # those that keep the columns
        year, month = _break_month(i)
        tables[f"{table}/{year}/{month}"] = change(_shift_month(tables[f"{table}/2024/6"], year, month))
        planted[table] |= rules
    summary = validate_lake(_write_lake(tmp_path, tables), as_of=AS_OF)
    assert summary.tables["store_sales"]["batches"] == 1
    assert set(summary.tables["store_sales"]["failed"]) == planted["store_sales"]
    assert summary.tables["online_orders"]["success"]
