"""Row rules generated from the contracts: each rule fires, the first broken one wins, values parse."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.rules import ROW, RuleContext, _exact_checks, check_rows, duplicate_keys, latest_allowed
from data_contracts.schemas import ASSORTMENT, EVENTS, ONLINE_ORDERS, PRODUCTS, STORE_SALES, TableContract

CTX = RuleContext(
    known={("stores", "store_id"): pl.Series(["001"]), ("products", "sku"): pl.Series(["A1"])},
    latest_date=date(2024, 12, 31),
    earliest_date=date(2000, 1, 1),
)
SALE = {
    "date": "2024-08-01",
    "store_id": "001",
    "sku": "A1",
    "units": "2",
    "revenue": "3.0",
    "on_hand": "",
    "promo": "",
}
ORDER = {
    "order_id": "o1",
    "line_number": "1",
    "ordered_at": "2024-08-29T23:03:11-05:00",
    "sku": "A1",
    "units": "1",
    "revenue": "1.5",
    "ship_postal_code": "02134",
    "customer_id": "C-42",
    "fulfillment": "ship",
    "pickup_store_id": "",
}


def _frame(rows: list[dict[str, str | None]]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String))
    return df.with_columns(pl.int_range(1, df.height + 1, dtype=pl.Int64).alias(ROW))


@pytest.mark.parametrize(
    ("change", "rule", "column"),
    [
        ({"date": "2024-13-01"}, "unparseable date", "date"),
        ({"date": "01/08/2024"}, "unparseable date", "date"),
        ({"units": "two"}, "not a number", "units"),
        ({"units": "nan"}, "not a number", "units"),
        ({"store_id": "9"}, "unknown store_id", "store_id"),
        ({"sku": "ZZ"}, "unknown sku", "sku"),
        ({"sku": "  "}, "missing required value", "sku"),
        ({"revenue": "-3"}, "revenue sign differs from units", "revenue"),
        ({"date": "2025-01-01"}, "date after as-of", "date"),
        ({"date": "1999-12-31"}, "date before 2000-01-01", "date"),
        ({"on_hand": "-1"}, "on_hand below 0", "on_hand"),
        ({"promo": "maybe"}, "not a boolean", "promo"),
        # the first broken rule wins: missing value before the unknown store
        ({"date": "", "store_id": "9"}, "missing required value", "date"),
    ],
)
def test_sales_rule_fires(change: dict[str, str], rule: str, column: str) -> None:
    checked = check_rows(_frame([SALE, {**SALE, **change}]), STORE_SALES, CTX)
    assert checked.good[ROW].to_list() == [1]
    assert checked.bad.select(ROW, "rule", "column").rows() == [(2, rule, column)]


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"line_number": "0"}, "line_number below 1"),
        ({"line_number": "1.5"}, "not an integer"),
        ({"ordered_at": "2024-08-29T23:03:11"}, "timestamp without UTC offset"),
        ({"ordered_at": "yesterday"}, "unparseable timestamp"),
        ({"fulfillment": "drone"}, "fulfillment not one of ship, pickup"),
        ({"pickup_store_id": "777"}, "unknown pickup_store_id"),
    ],
)
def test_order_rule_fires(change: dict[str, str], rule: str) -> None:
    checked = check_rows(_frame([{**ORDER, **change}]), ONLINE_ORDERS, CTX)
    assert checked.good.height == 0
    assert checked.bad["rule"].to_list() == [rule]


def test_values_parse_with_the_contract_types() -> None:
    rows = [
        SALE,
        {**SALE, "store_id": " 001 ", "promo": "Yes", "on_hand": "0", "units": "1e1", "revenue": "0"},
    ]
    checked = check_rows(_frame(rows), STORE_SALES, CTX)
    expected = pl.DataFrame(
        {
            "date": [date(2024, 8, 1)] * 2,
            "store_id": ["001", "001"],  # leading zeros kept, spaces trimmed
            "sku": ["A1", "A1"],
            "units": [2.0, 10.0],
            "revenue": [3.0, 0.0],
            "on_hand": [None, 0.0],
            "promo": [None, True],
            ROW: [1, 2],
        },
        schema={**STORE_SALES.schema, ROW: pl.Int64},
    )
    assert_frame_equal(checked.good, expected)


@pytest.mark.parametrize(
    ("text", "utc", "local_day"),
    [
        ("2024-08-29T23:03:11-05:00", datetime(2024, 8, 30, 4, 3, 11, tzinfo=UTC), date(2024, 8, 29)),
        ("2024-08-29 14:03:11.5Z", datetime(2024, 8, 29, 14, 3, 11, 500000, tzinfo=UTC), date(2024, 8, 29)),
        ("2024-08-30T01:00:00+02:00", datetime(2024, 8, 29, 23, 0, tzinfo=UTC), date(2024, 8, 30)),
    ],
)
def test_timestamps_become_utc_and_keep_their_local_day(text: str, utc: datetime, local_day: date) -> None:
    good = check_rows(_frame([{**ORDER, "ordered_at": text}]), ONLINE_ORDERS, CTX).good
    assert good["ordered_at"].to_list() == [utc]
    assert good["ordered_at__local_date"].to_list() == [local_day]


def test_quarantined_raw_values_mask_customer_id() -> None:
    bad = check_rows(_frame([{**ORDER, "sku": "ZZ"}]), ONLINE_ORDERS, CTX).bad
    assert "C-42" not in bad["raw"][0]
    assert '"sku":"ZZ"' in bad["raw"][0]


def test_reference_rules_check_references_and_ranges() -> None:
    assortment = check_rows(
        _frame([{"store_id": "001", "sku": "A1"}, {"store_id": "002", "sku": "A1"}]), ASSORTMENT, CTX
    )
    assert assortment.bad["rule"].to_list() == ["unknown store_id"]
    product = {
        "sku": "A1",
        "name": "Apple",
        "category": "fruit",
        "subcategory": "",
        "brand": "",
        "regular_price": "-1",
        "case_pack": "",
    }
    assert check_rows(_frame([product]), PRODUCTS, CTX).bad["rule"].to_list() == ["regular_price below 0"]
    event = {
        "event_id": "e1",
        "event_type": "storm",
        "name": "",
        "region": "ALL",
        "start_date": "2024-08-10",
        "end_date": "2024-08-01",
    }
    assert check_rows(_frame([event]), EVENTS, RuleContext()).bad["rule"].to_list() == [
        "end_date before start_date"
    ]


def test_duplicate_keys_and_latest_allowed() -> None:
    df = pl.DataFrame({"a": ["1", "1", "2"], "b": ["x", "x", "x"]})
    assert duplicate_keys(df, ("a", "b")).rows() == [("1", "x", 2)]
    assert latest_allowed(date(2024, 1, 1), 3) == date(2024, 1, 4)


def _messy(value: str, rng: random.Random) -> str:
    """The value as exports spell it now and then: padded, emptied, upper-cased, broken."""
    return rng.choice([value, value, value, f" {value}", f"{value}\t", "", "  ", value.upper(), "x"])


@pytest.mark.parametrize("seed", [7, 11, 23])
@pytest.mark.parametrize(("contract", "row"), [(STORE_SALES, SALE), (ONLINE_ORDERS, ORDER)])
def test_rows_that_need_no_trimming_end_as_the_exact_rules_say(
    contract: TableContract, row: dict, seed: int
) -> None:
    rng = random.Random(seed)
    values = {**row, "promo": "yes", "on_hand": "4", "pickup_store_id": "001"}
    rows = [{c: _messy(v, rng) if rng.random() < 0.3 else v for c, v in values.items()} for _ in range(400)]
    raw = _frame(rows)
    checked, exact = check_rows(raw, contract, CTX), _exact_checks(raw, contract, CTX)
    assert_frame_equal(checked.good, exact.good)
    assert_frame_equal(checked.bad.sort(ROW), exact.bad.sort(ROW))
    assert 0 < checked.good.height < raw.height
