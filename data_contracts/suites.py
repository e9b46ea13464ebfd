"""Great Expectations suites generated from the table contracts in ``schemas.py``.

One suite per table, built from its :class:`TableContract` (and, for fact tables, the schema the lake
keeps), so renaming a column in ``schemas.py`` changes the suite and nothing here. The suites validate
the *lake* (what ingest loaded), not the raw drop: fact tables are checked against ``LAKE_STORE_SALES``
and ``LAKE_ONLINE_ORDERS`` (online orders carry ``customer_key`` and ``order_date`` there).

The suites are written for the one adapter in ``validate.py``, which hands GX a pandas frame (numbers
as NumPy, the rest Arrow-backed) and adds the derived columns listed in :func:`derived_columns`; the
type names below are the Python types of those dtypes (``dtype.type``).

A batch may hold many rows (every row a load wrote), so each rule is stated in the form GX checks
fastest without weakening it: bounds through the column's minimum and maximum, references through
the column's distinct values (all known ids), a compound key through one 64-bit hash of it per row
(a derived 0/1 column says whether a row's hash is the only one of its value in the batch), a pair
rule through a derived 0/1 column whose minimum must be 1.

Great Expectations is imported lazily (inside functions), because importing it takes seconds and
phones home unless ``GX_ANALYTICS_ENABLED=false`` is set first.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from data_contracts.schemas import (
    FACT_SCHEMAS,
    LINEAGE,
    ONLINE_ORDERS,
    PARTITION_DATE,
    STORE_SALES,
    TableContract,
)

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.expectations import Expectation

# Columns ingest adds to each fact table that are always set (customer_key is null for guests). The lake
# schema and the partition date column come from data_contracts.schemas (FACT_SCHEMAS, PARTITION_DATE).
ALWAYS_SET: dict[str, tuple[str, ...]] = {
    STORE_SALES.name: tuple(LINEAGE.names()),
    ONLINE_ORDERS.name: ("order_date", *LINEAGE.names()),
}

# Rules of the input contract that TableContract has no field for; applied wherever the columns exist.
# (amount, quantity): the amount has the quantity's sign, or is 0 (a refund is negative revenue).
SIGN_RULES: tuple[tuple[str, str], ...] = (("revenue", "units"),)
# (later, earlier): the later date is on or after the earlier one.
ORDERED_DATES: tuple[tuple[str, str], ...] = (("end_date", "start_date"),)

# Frames of fact tables carry the first and last day of the partition month each row was read from.
PARTITION_START = "_partition_start"
PARTITION_END = "_partition_end"
# Derived: days from the partition's first day to the row's partition date, and from that date to the
# partition's last day (both >= 0 where the row belongs).
DAYS_FROM_START = "_days_from_partition_start"
DAYS_TO_END = "_days_to_partition_end"
# Derived: one 64-bit hash per row of a compound key.
KEY_CODE = "_key_hash"
# Derived: 1 where no other row of the batch has the row's key hash, 0 where one does (see key_once).
KEY_ONCE = "_key_once"

# Python type of each polars dtype once it is an Arrow-backed pandas column (ArrowDtype.type).
_TYPE_NAMES: dict[type[pl.DataType], str] = {
    pl.String: "str",
    pl.Float64: "float",
    pl.Float32: "float",
    pl.Int64: "int",
    pl.Int32: "int",
    pl.Boolean: "bool",
    pl.Date: "date",
    pl.Datetime: "datetime",
}


def sign_check_column(amount: str, quantity: str) -> str:
    """Return the name of the derived 0/1 column that holds the sign rule of ``amount``/``quantity``."""
    return f"_{amount}_sign_matches_{quantity}"


def derived_columns(schema: pl.Schema) -> list[pl.Expr]:
    """Return the polars expressions the adapter adds before validation (row-wise rules).

    GX has no core expectation for "same sign or zero", so the adapter computes it as a 0/1 column and
    the suite checks its minimum is 1. Null operands give null, which the not-null checks catch. A
    frame carrying its rows' partition bounds gets each row's days from the first and to the last day.
    """
    out = [
        ((pl.col(amount) == 0) | (pl.col(amount).sign() == pl.col(quantity).sign()))
        .cast(pl.Int8)
        .alias(sign_check_column(amount, quantity))
        for amount, quantity in SIGN_RULES
        if amount in schema and quantity in schema
    ]
    date = next((d for d in PARTITION_DATE.values() if d in schema and PARTITION_START in schema), None)
    if date is not None:  # day numbers: two integer subtractions per row
        day = pl.col(date).cast(pl.Int32)
        out.append((day - pl.col(PARTITION_START).cast(pl.Int32)).alias(DAYS_FROM_START))
        out.append((pl.col(PARTITION_END).cast(pl.Int32) - day).alias(DAYS_TO_END))
    return out


def key_code(key: tuple[str, ...]) -> pl.Expr:
    """The expression of one 64-bit hash per row of the compound ``key`` (column KEY_CODE)."""
    return pl.struct(list(key)).hash().alias(KEY_CODE)


def key_once(codes: np.ndarray) -> np.ndarray:
    """Return the KEY_ONCE column of the key hashes ``codes``: 1 where no other row has the row's hash,
    0 on every row of a repeated one. int64: GX's range check is vectorized only for the dtypes equal
    to ``int`` and ``float`` (an int8 column is checked row by row in Python: 0.9 s per 3 M rows).

    The repeats are found by sorting a copy of the hashes (vectorized: about 0.03 CPU-s per 3 M rows,
    where pandas' ``duplicated``, GX's uniqueness check, takes 0.35-0.42 s); only when some exist are
    the rows holding them looked up. Exactly the rows GX's ``expect_column_values_to_be_unique`` would
    call unexpected get 0.
    """
    ordered = np.sort(codes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size == 0:  # every row 1: one value seen through a read-only view, not n copies of it
        return np.broadcast_to(np.int64(1), codes.shape[0])
    return (~np.isin(codes, repeated)).astype(np.int64)


def lake_schema(contract: TableContract) -> pl.Schema:
    """Return the schema the lake keeps ``contract``'s table in."""
    return FACT_SCHEMAS[contract.name] if contract.kind == "fact" else contract.schema


def _required(contract: TableContract, schema: pl.Schema) -> list[str]:
    """Columns that must never be null in the lake: key, required, and what ingest always sets."""
    added = ALWAYS_SET.get(contract.name, ())
    wanted = [*contract.key, *contract.required, *added]
    return [c for c in dict.fromkeys(wanted) if c in schema]


def _type_name(dtype: pl.DataType) -> str | None:
    return _TYPE_NAMES.get(dtype.base_type())


def _x(cls_name: str, rule: str, *, description: str | None = None, **kwargs: Any) -> Expectation:
    """Build expectation ``cls_name`` tagged with a readable rule name (meta["rule"])."""
    import great_expectations.expectations as gxe

    cls = getattr(gxe, cls_name)
    return cls(meta={"rule": rule}, description=description, **kwargs)


def _column_expectations(contract: TableContract, schema: pl.Schema) -> list[Expectation]:
    """Existence and type of every lake column, then non-null for the required ones."""
    out: list[Expectation] = []
    for col, dtype in schema.items():
        # the lake readers select every schema column, so optional ones must exist too (as nulls)
        out.append(_x("ExpectColumnToExist", f"{col} exists", column=col))
        type_name = _type_name(dtype)
        if type_name is not None:
            out.append(
                _x("ExpectColumnValuesToBeOfType", f"{col} is {type_name}", column=col, type_=type_name)
            )
    out += [
        _x("ExpectColumnValuesToNotBeNull", f"{c} not null", column=c) for c in _required(contract, schema)
    ]
    return out


def _key_expectations(contract: TableContract, schema: pl.Schema) -> list[Expectation]:
    """Unique natural key. A compound key is checked on one 64-bit hash of it per row (see
    :func:`key_code`): the adapter marks each row whose hash no other row of the batch has (KEY_ONCE,
    see :func:`key_once`) and every row must be so marked; the unexpected rows are exactly those
    ``expect_column_values_to_be_unique`` on the hash finds, at a tenth of its cost. A repeated key
    always repeats its hash, so no duplicate passes; two different keys share a hash with probability
    about n^2 / 2^65 (1e-5 for 17 M rows), which would fail the rule without cause (the key is found
    by its hash)."""
    key = [c for c in contract.key if c in schema]
    if not key:
        return []
    rule = f"({', '.join(key)}) unique"
    if len(key) == 1:
        return [_x("ExpectColumnValuesToBeUnique", rule, column=key[0])]
    desc = f"{rule}: one 64-bit hash of ({', '.join(key)}) per row, no other row of the batch with it"
    once = {"column": KEY_ONCE, "min_value": 1, "max_value": 1}
    return [_x("ExpectColumnValuesToBeBetween", rule, description=desc, **once)]


def _value_expectations(
    contract: TableContract, schema: pl.Schema, reference_values: Mapping[str, Collection[str]]
) -> list[Expectation]:
    """Value ranges, allowed sets and referential integrity from the contract's declarations."""
    out: list[Expectation] = []
    for col, (lo, hi) in contract.ranges.items():
        if col not in schema:
            continue
        if col in contract.required:  # never null: its min and max bound every value, in one pass
            if lo is not None:
                out.append(_x("ExpectColumnMinToBeBetween", f"{col} >= {lo:g}", column=col, min_value=lo))
            if hi is not None:
                out.append(_x("ExpectColumnMaxToBeBetween", f"{col} <= {hi:g}", column=col, max_value=hi))
            continue
        # optional: may be null on every row, where a min or max has nothing to bound
        rule = " and ".join(
            s for s in (lo is not None and f"{col} >= {lo:g}", hi is not None and f"{col} <= {hi:g}") if s
        )
        out.append(_x("ExpectColumnValuesToBeBetween", rule, column=col, min_value=lo, max_value=hi))
    for col, allowed in contract.allowed.items():
        if col in schema:
            out.append(
                _x(
                    "ExpectColumnValuesToBeInSet",
                    f"{col} in {{{', '.join(allowed)}}}",
                    column=col,
                    value_set=list(allowed),
                )
            )
    for col, (table, ref_col) in contract.references.items():
        # without the reference values the check cannot be made; the caller passes what the lake holds
        if col in schema and col in reference_values:
            rule = f"{col} exists in {table}.{ref_col}"
            values = sorted(reference_values[col])
            # every value is known exactly when the distinct values are: one pass over the column
            # instead of a lookup per row; the description replaces GX's rendering of every id
            desc = f"{rule} ({len(values)} known values)"
            out.append(
                _x(
                    "ExpectColumnDistinctValuesToBeInSet",
                    rule,
                    description=desc,
                    column=col,
                    value_set=values,
                )
            )
    return out


def _bounds(col: str, lo: object, hi: object, lo_name: str, hi_name: str | None) -> list[Expectation]:
    """Column minimum >= ``lo`` and (when ``hi`` is set) maximum <= ``hi``, one rule each.

    Dates are bounded through the column's min and max rather than row by row: GX compares Arrow dates
    row by row in Python (seconds per 500k rows), while min/max are vectorized and still name the
    offending extreme (the observed value) in the summary and the Data Docs.
    """
    out = [_x("ExpectColumnMinToBeBetween", f"{col} >= {lo_name}", column=col, min_value=lo)]
    if hi is not None:
        out.append(_x("ExpectColumnMaxToBeBetween", f"{col} <= {hi_name}", column=col, max_value=hi))
    return out


def _date_expectations(
    contract: TableContract, schema: pl.Schema, as_of: date | None, min_date: date
) -> list[Expectation]:
    """Dates not before ``min_date``; fact dates not after ``as_of``; ordered date pairs."""
    out: list[Expectation] = []
    # reference dates (event windows) may lie in the future: only facts are bounded by as_of
    upper = as_of if contract.kind == "fact" else None
    for col, dtype in schema.items():
        if col.startswith("_"):
            continue  # lineage timestamps are set by ingest, not by the retailer
        if dtype == pl.Date:
            out += _bounds(col, min_date, upper, str(min_date), str(upper))
        elif isinstance(dtype, pl.Datetime):
            # an instant is up to 14 h away from its local business date (UTC offsets); the local date
            # column is checked exactly, the instant with a day of slack on each side
            lo = datetime.combine(min_date - timedelta(days=1), time(), tzinfo=UTC)
            hi = datetime.combine(upper + timedelta(days=2), time(), tzinfo=UTC) if upper else None
            out += _bounds(col, lo, hi, f"{min_date} - 1 day (UTC)", f"{upper} + 1 day (UTC)")
    for later, earlier in ORDERED_DATES:
        if later in schema and earlier in schema:
            rule = f"{later} >= {earlier}"
            pair: dict[str, Any] = {"column_A": later, "column_B": earlier, "or_equal": True}
            out.append(_x("ExpectColumnPairValuesAToBeGreaterThanB", rule, **pair))
    return out


def _partition_expectations(contract: TableContract) -> list[Expectation]:
    """Fact rows lie in their partition's month: no row's date lies before the first or after the last
    day of the partition it was read from (derived day counts, observed: the furthest off)."""
    if contract.name not in PARTITION_DATE:
        return []
    col = PARTITION_DATE[contract.name]
    return [
        _x("ExpectColumnMinToBeBetween", f"{col} >= partition start", column=DAYS_FROM_START, min_value=0),
        _x("ExpectColumnMinToBeBetween", f"{col} <= partition end", column=DAYS_TO_END, min_value=0),
    ]


def _sign_expectations(schema: pl.Schema) -> list[Expectation]:
    """The derived sign-rule columns (see :func:`derived_columns`) are 1 on every row (minimum 1)."""
    out: list[Expectation] = []
    for amount, quantity in SIGN_RULES:
        if amount in schema and quantity in schema:
            rule = f"{amount} same sign as {quantity} or 0"
            col = sign_check_column(amount, quantity)
            out.append(_x("ExpectColumnMinToBeBetween", rule, description=rule, column=col, min_value=1))
    return out


def suite_name(contract: TableContract) -> str:
    """Return the suite name of ``contract``'s table."""
    return f"localshelf.{contract.name}"


def build_suite(
    contract: TableContract,
    *,
    reference_values: Mapping[str, Collection[str]] | None = None,
    as_of: date | None = None,
    min_date: date = date(2000, 1, 1),
) -> gx.ExpectationSuite:
    """Return the suite of ``contract``'s table as the lake keeps it.

    Required columns exist with their types, keys and required columns are non-null, the natural key is
    unique, declared ranges and allowed sets hold, referential columns hold known ids
    (``reference_values``: column -> allowed ids; a column not given is not checked), dates lie in
    ``[min_date, as_of]`` (``as_of`` bounds fact tables only; None leaves it open), ordered date pairs
    hold (an event ends on or after its start), amounts have their quantity's sign, and fact rows lie
    in the month of the partition they were read from. Suite name: ``localshelf.<table>``.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    schema = lake_schema(contract)
    expectations = [
        *_column_expectations(contract, schema),
        *_key_expectations(contract, schema),
        *_value_expectations(contract, schema, reference_values or {}),
        *_date_expectations(contract, schema, as_of, min_date),
        *_partition_expectations(contract),
        *_sign_expectations(schema),
    ]
    return gx.ExpectationSuite(name=suite_name(contract), expectations=expectations)


def rule_name(expectation: Any) -> str:
    """Return the readable rule name of a suite expectation (or its GX type and column as a fallback)."""
    meta = getattr(expectation, "meta", None) or {}
    if "rule" in meta:
        return str(meta["rule"])
    kwargs = getattr(expectation, "kwargs", {}) or {}
    target = kwargs.get("column") or ",".join(kwargs.get("column_list", []))
    return f"{getattr(expectation, 'type', 'expectation')}({target})"
