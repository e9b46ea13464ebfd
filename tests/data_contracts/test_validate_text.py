"""Text ids and lineage reach GX dictionary-encoded, and the suite fails on the same rows as when every
row's text was copied into Arrow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

import data_contracts.validate as validate
from data_contracts.schemas import LAKE_ONLINE_ORDERS, LAKE_STORE_SALES, ONLINE_ORDERS, STORE_SALES
from data_contracts.suites import PARTITION_END, PARTITION_START
from data_contracts.validate import ValidationSummary, to_gx_frame, validate_frames

LOADED = datetime(2024, 7, 1, tzinfo=UTC)
REFS = {"store_sales": {"store_id": {"001", "002"}, "sku": {"A", "B"}}}


def _sales(n: int = 6) -> pl.DataFrame:
    """``n`` clean June store-sales rows over two stores and two SKUs, with their partition's bounds."""
    rows = {
        "date": [date(2024, 6, 1 + i) for i in range(n)],
        "store_id": ["001", "002"] * (n // 2),
        "sku": ["A", "A", "B"] * (n // 3),
        "units": [1.0] * n,
        "revenue": [2.0] * n,
        "on_hand": [3.0] * n,
        "promo": [False] * n,
        "_source_file": ["store_sales/a.csv"] * (n // 2) + ["store_sales/b.csv.gz"] * (n // 2),
        "_source_row": list(range(1, n + 1)),
        "_loaded_at": [LOADED] * n,
    }
    df = pl.DataFrame(rows, schema=LAKE_STORE_SALES)
    return df.with_columns(
        pl.lit(date(2024, 6, 1)).alias(PARTITION_START), pl.lit(date(2024, 6, 30)).alias(PARTITION_END)
    )


def _set(row: int, column: str, value: object) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def change(df: pl.DataFrame) -> pl.DataFrame:
        at = pl.int_range(pl.len()) == row
        value_ = pl.lit(value, df.schema[column])
        return df.with_columns(pl.when(at).then(value_).otherwise(pl.col(column)).alias(column))

    return change


def _cast(column: str, dtype: pl.DataType) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda df: df.with_columns(pl.col(column).str.replace("S", "").cast(dtype, strict=False))


def test_ids_and_lineage_are_categoricals_whose_type_is_str() -> None:
    df = _set(1, "store_id", None)(_sales())
    out = to_gx_frame(df, STORE_SALES)
    for col in ("store_id", "sku", "_source_file"):
        assert isinstance(out[col].dtype, pd.CategoricalDtype)
        assert out[col].dtype.type is str  # what GX's "is str" compares
        assert out[col].astype(object).where(out[col].notna(), None).tolist() == df[col].to_list()
    # each distinct value once, one code per row
    assert sorted(out["_source_file"].cat.categories) == ["store_sales/a.csv", "store_sales/b.csv.gz"]
    assert out["store_id"].isna().tolist() == [False, True, False, False, False, False]


def test_other_text_stays_arrow_large_string() -> None:
    orders = pl.DataFrame(
        {
            "order_id": ["o1"],
            "line_number": [1],
            "ordered_at": [LOADED],
            "sku": ["A"],
            "units": [1.0],
            "revenue": [1.0],
            "ship_postal_code": ["02134"],
            "fulfillment": ["ship"],
            "pickup_store_id": [None],
            "customer_key": ["ab"],
            "order_date": [date(2024, 6, 30)],
            "_source_file": ["online_orders/o.csv"],
            "_source_row": [1],
            "_loaded_at": [LOADED],
        },
        schema=LAKE_ONLINE_ORDERS,
    )
    out = to_gx_frame(orders, ONLINE_ORDERS)
    # references and lineage encoded; order ids and customer keys (mostly distinct) copied as text
    assert {c for c in out.columns if isinstance(out[c].dtype, pd.CategoricalDtype)} == {
        "sku",
        "pickup_store_id",
        "_source_file",
    }
    assert str(out["order_id"].dtype) == "large_string[pyarrow]"
    assert out["pickup_store_id"].isna().all()


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as handed over before: every categorical column's text in Arrow large_string."""
    import pyarrow as pa

    out = frame.copy(deep=False)
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            text = pa.array(out[col].astype(object).where(out[col].notna(), None).tolist(), pa.large_string())
            out[col] = pd.arrays.ArrowExtensionArray(text)
    return out


def _validate(
    df: pl.DataFrame, tmp_path: Path, *, as_text: bool, monkeypatch: pytest.MonkeyPatch
) -> ValidationSummary:
    adapter = to_gx_frame
    if as_text:
        monkeypatch.setattr(validate, "to_gx_frame", lambda d, c=None: _as_text(adapter(d, c)))
    try:
        return validate_frames(
            [STORE_SALES],
            [(STORE_SALES, "2024-06", df)],
            docs_dir=tmp_path / ("text" if as_text else "codes"),
            reference_values=REFS,
            as_of=date(2024, 6, 30),
            min_date=date(2000, 1, 1),
        )
    finally:
        monkeypatch.setattr(validate, "to_gx_frame", adapter)


BREAKS: list[tuple[str, Callable[[pl.DataFrame], pl.DataFrame], list[str]]] = [
    ("clean", lambda df: df, []),
    (
        "unknown store",
        _set(2, "store_id", "999"),
        ["store_sales [2024-06]: store_id exists in stores.store_id (observed 999)"],
    ),
    (
        "unknown sku",
        _set(0, "sku", "ZZZ"),
        ["store_sales [2024-06]: sku exists in products.sku (observed ZZZ)"],
    ),
    ("null store", _set(3, "store_id", None), ["store_sales [2024-06]: store_id not null (1 rows)"]),
    (
        "null source file",
        _set(5, "_source_file", None),
        ["store_sales [2024-06]: _source_file not null (1 rows)"],
    ),
    (
        "store id not text",
        _cast("store_id", pl.Int64()),
        [
            "store_sales [2024-06]: store_id is str (observed int64)",
            "store_sales [2024-06]: store_id exists in stores.store_id (observed 1, 2)",
        ],
    ),
]


@pytest.mark.parametrize(("name", "change", "lines"), BREAKS, ids=[b[0] for b in BREAKS])
def test_the_same_rules_fail_as_with_the_text_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, change: Callable, lines: list[str]
) -> None:
    df = change(_sales())
    codes = _validate(df, tmp_path, as_text=False, monkeypatch=monkeypatch)
    text = _validate(df, tmp_path, as_text=True, monkeypatch=monkeypatch)
    assert codes.failure_lines() == text.failure_lines()
    assert sorted(codes.failure_lines()) == sorted(lines)
    assert codes.success is (not lines)
