"""Suites are generated from the contracts: their expectations follow the schema's column names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from data_contracts.schemas import (
    ASSORTMENT,
    CONTRACTS,
    EVENTS,
    LAKE_ONLINE_ORDERS,
    ONLINE_ORDERS,
    STORE_SALES,
    STORES,
    TableContract,
)
from data_contracts.suites import (
    DAYS_FROM_START,
    DAYS_TO_END,
    KEY_ONCE,
    build_suite,
    derived_columns,
    key_code,
    key_once,
    lake_schema,
    rule_name,
    sign_check_column,
    suite_name,
)

_ONCE = {"column": KEY_ONCE, "min_value": 1, "max_value": 1}


def _by_type(contract: TableContract, **kwargs: object) -> dict[str, list[dict]]:
    """Expectation type -> the kwargs of each expectation of that type in ``contract``'s suite."""
    out: dict[str, list[dict]] = {}
    for e in build_suite(contract, **kwargs).expectations:  # type: ignore[arg-type]
        out.setdefault(e.expectation_type, []).append(dict(e.configuration.kwargs))
    return out


def _columns(found: dict[str, list[dict]], kind: str) -> set[str]:
    return {kw["column"] for kw in found.get(kind, [])}


@pytest.mark.parametrize("contract", list(CONTRACTS.values()), ids=list(CONTRACTS))
def test_every_column_exists_with_its_type_and_required_ones_not_null(contract: TableContract) -> None:
    found = _by_type(contract)
    schema = lake_schema(contract)
    assert _columns(found, "expect_column_to_exist") == set(schema.names())
    assert _columns(found, "expect_column_values_to_be_of_type") == set(schema.names())
    required = {c for c in (*contract.key, *contract.required) if c in schema}
    assert required <= _columns(found, "expect_column_values_to_not_be_null")
    assert build_suite(contract).name == suite_name(contract) == f"localshelf.{contract.name}"


@pytest.mark.parametrize(
    ("contract", "kind", "kwargs"),
    [
        (STORES, "expect_column_values_to_be_unique", {"column": "store_id"}),
        # a compound key: one 64-bit hash of it per row, each row's hash the only one of its value
        (ASSORTMENT, "expect_column_values_to_be_between", _ONCE),
        (STORE_SALES, "expect_column_values_to_be_between", _ONCE),
        (ONLINE_ORDERS, "expect_column_values_to_be_between", _ONCE),
    ],
)
def test_natural_key_is_unique(contract: TableContract, kind: str, kwargs: dict) -> None:
    found = _by_type(contract)
    assert [kw for kw in found[kind] if kw["column"] == kwargs["column"]] == [kwargs]
    if kwargs["column"] == KEY_ONCE:
        assert "expect_column_values_to_be_unique" not in found
    rules = [rule_name(e) for e in build_suite(contract).expectations]
    assert f"({', '.join(contract.key)}) unique" in rules


def test_key_once_marks_every_row_of_a_repeated_hash() -> None:
    codes = np.array([5, 7, 5, 9, 2**64 - 1, 7, 5, 2**64 - 1, 3], dtype=np.uint64)
    once = key_once(codes)
    assert once.dtype == np.int64
    assert once.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert once.tolist() == (~pl.Series(codes).is_duplicated()).cast(pl.Int8).to_list()
    assert key_once(np.array([3, 1, 2], dtype=np.uint64)).tolist() == [1, 1, 1]
    assert key_once(np.array([], dtype=np.uint64)).tolist() == []
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 50, 1_000).astype(np.uint64)
    assert key_once(codes).tolist() == (~pl.Series(codes).is_duplicated()).cast(pl.Int8).to_list()


def test_online_orders_suite_checks_the_lake_schema() -> None:
    found = _by_type(ONLINE_ORDERS)
    assert lake_schema(ONLINE_ORDERS) == LAKE_ONLINE_ORDERS
    exists = _columns(found, "expect_column_to_exist")
    assert "customer_id" not in exists  # never stored in clear
    assert {"customer_key", "order_date", "_source_file"} <= exists
    not_null = _columns(found, "expect_column_values_to_not_be_null")
    assert "order_date" in not_null and "customer_key" not in not_null  # guests have no key
    assert {"column": "fulfillment", "value_set": ["ship", "pickup"]} in [
        {k: kw[k] for k in ("column", "value_set")} for kw in found["expect_column_values_to_be_in_set"]
    ]


def test_types_follow_the_polars_schema() -> None:
    found = _by_type(STORE_SALES)
    types = {kw["column"]: kw["type_"] for kw in found["expect_column_values_to_be_of_type"]}
    assert types == {
        "date": "date", "store_id": "str", "sku": "str", "units": "float", "revenue": "float",
        "on_hand": "float", "promo": "bool",
        "_source_file": "str", "_source_row": "int", "_loaded_at": "datetime",
    }  # fmt: skip


def test_references_need_values_and_use_them() -> None:
    unchecked = _by_type(STORE_SALES)
    assert _columns(unchecked, "expect_column_distinct_values_to_be_in_set") == set()
    found = _by_type(STORE_SALES, reference_values={"sku": {"B", "A"}, "store_id": ["1"]})
    in_set = {kw["column"]: kw["value_set"] for kw in found["expect_column_distinct_values_to_be_in_set"]}
    assert in_set == {"sku": ["A", "B"], "store_id": ["1"]}
    # the sign rule: its derived 0/1 column's minimum is 1
    assert {"column": sign_check_column("revenue", "units"), "min_value": 1} in [
        {k: kw.get(k) for k in ("column", "min_value")} for kw in found["expect_column_min_to_be_between"]
    ]


def _bounds(found: dict[str, list[dict]]) -> dict[str, tuple[object, object]]:
    """Column -> (lower bound on its min, upper bound on its max) of the fixed (non-parameter) bounds."""
    lows = {
        kw["column"]: kw["min_value"]
        for kw in found.get("expect_column_min_to_be_between", [])
        if not isinstance(kw["min_value"], dict)
    }
    highs = {
        kw["column"]: kw["max_value"]
        for kw in found.get("expect_column_max_to_be_between", [])
        if not isinstance(kw["max_value"], dict)
    }
    return {c: (lows.get(c), highs.get(c)) for c in lows.keys() | highs.keys()}


@pytest.mark.parametrize(
    ("contract", "as_of", "expected"),
    [
        (STORE_SALES, date(2024, 6, 30), (date(1999, 1, 1), date(2024, 6, 30))),
        (STORE_SALES, None, (date(1999, 1, 1), None)),
        # events may be announced ahead: as_of does not bound reference dates
        (EVENTS, date(2024, 6, 30), (date(1999, 1, 1), None)),
    ],
)
def test_dates_between_min_date_and_as_of(
    contract: TableContract, as_of: date | None, expected: tuple[date, date | None]
) -> None:
    found = _by_type(contract, as_of=as_of, min_date=date(1999, 1, 1))
    dates = [c for c, t in contract.schema.items() if t == pl.Date]
    assert {c: b for c, b in _bounds(found).items() if c in dates} == dict.fromkeys(dates, expected)


def test_fact_rows_must_lie_in_their_partition_month() -> None:
    for contract, col in ((STORE_SALES, "date"), (ONLINE_ORDERS, "order_date")):
        bounds = {
            rule_name(e): {k: e.configuration.kwargs.get(k) for k in ("column", "min_value")}
            for e in build_suite(contract).expectations
            if e.configuration.kwargs.get("column") in (DAYS_FROM_START, DAYS_TO_END)
        }
        assert bounds == {
            f"{col} >= partition start": {"column": DAYS_FROM_START, "min_value": 0},
            f"{col} <= partition end": {"column": DAYS_TO_END, "min_value": 0},
        }
    events = build_suite(EVENTS).expectations
    assert not [e for e in events if e.configuration.kwargs.get("column") in (DAYS_FROM_START, DAYS_TO_END)]


def test_days_off_the_partition_month_are_counted() -> None:
    df = pl.DataFrame(
        {
            "date": [date(2024, 5, 31), date(2024, 6, 1), date(2024, 6, 30), date(2024, 7, 1)],
            "_partition_start": [date(2024, 6, 1)] * 4,
            "_partition_end": [date(2024, 6, 30)] * 4,
        }
    )
    out = df.select(derived_columns(df.schema))
    assert out[DAYS_FROM_START].to_list() == [-1, 0, 29, 30]
    assert out[DAYS_TO_END].to_list() == [30, 29, 0, -1]


def test_instants_get_a_day_of_slack() -> None:
    found = _by_type(ONLINE_ORDERS, as_of=date(2024, 6, 30), min_date=date(2000, 1, 1))
    assert _bounds(found)["ordered_at"] == (
        datetime(1999, 12, 31, tzinfo=UTC),
        datetime(2024, 7, 2, tzinfo=UTC),
    )


def test_ranges_and_ordered_dates() -> None:
    ranges = {  # optional columns (may be null on every row): bounded value by value
        kw["column"]: (kw["min_value"], kw["max_value"])
        for kw in _by_type(STORES)["expect_column_values_to_be_between"]
    }
    assert ranges == {"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0)}
    # a required column (never null) is bounded by its minimum
    lows = {
        kw["column"]: kw["min_value"] for kw in _by_type(ONLINE_ORDERS)["expect_column_min_to_be_between"]
    }
    assert lows["line_number"] == 1
    pairs = _by_type(EVENTS)["expect_column_pair_values_a_to_be_greater_than_b"]
    assert [(kw["column_A"], kw["column_B"], kw["or_equal"]) for kw in pairs] == [
        ("end_date", "start_date", True)
    ]


def test_renaming_a_column_in_the_schema_renames_it_in_the_suite() -> None:
    renamed = replace(
        ASSORTMENT,
        schema=pl.Schema({"shop": pl.String, "sku": pl.String}),
        required=("shop", "sku"),
        key=("shop", "sku"),
        references={"shop": ("stores", "store_id"), "sku": ("products", "sku")},
    )
    suite = build_suite(renamed, reference_values={"shop": ["1"], "sku": ["A"]})
    columns = {e.configuration.kwargs.get("column") for e in suite.expectations} - {None, KEY_ONCE}
    assert columns == {"shop", "sku"}
    assert "(shop, sku) unique" in {rule_name(e) for e in suite.expectations}
    assert "shop exists in stores.store_id" in {rule_name(e) for e in suite.expectations}


def test_rule_names_are_readable_and_unique_per_table() -> None:
    suite = build_suite(
        STORE_SALES, reference_values={"sku": ["A"], "store_id": ["1"]}, as_of=date(2024, 6, 30)
    )
    names = [rule_name(e) for e in suite.expectations]
    assert len(names) == len(set(names))
    assert {
        "on_hand >= 0",
        "revenue same sign as units or 0",
        "units not null",
        "sku exists in products.sku",
    } <= set(names)


@pytest.mark.parametrize(
    ("units", "revenue", "ok"),
    [(1.0, 2.0, True), (-1.0, -2.0, True), (1.0, 0.0, True), (0.0, 0.0, True), (-1.0, 0.0, True),
     (1.0, -2.0, False), (-1.0, 2.0, False), (0.0, 2.0, False), (None, 2.0, None)],
)  # fmt: skip
def test_sign_rule_column(units: float | None, revenue: float, ok: bool | None) -> None:
    df = pl.DataFrame(
        {"units": [units], "revenue": [revenue]}, schema={"units": pl.Float64, "revenue": pl.Float64}
    )
    assert df.select(derived_columns(df.schema)).item() == (None if ok is None else int(ok))


def test_no_sign_rule_without_both_columns() -> None:
    assert derived_columns(pl.Schema({"units": pl.Float64})) == []


def test_key_hash_is_equal_for_equal_keys() -> None:
    day = date(2024, 6, 1)
    df = pl.DataFrame(
        {
            "date": [day, day, day, day, day],
            "store_id": ["1", "2", "1", "2", "1"],
            "sku": ["A", "A", "A", "B", "B"],
        }
    )
    hashes = df.select(key_code(("date", "store_id", "sku"))).to_series()
    assert hashes[0] == hashes[2] and hashes.n_unique() == 4
