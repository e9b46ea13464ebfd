"""Row-level rules, generated from each table's TableContract.

A table arrives as all-string columns (identifiers keep their leading zeros). ``check_rows`` parses
every column with the contract's dtype and tests each row against the contract's rules, in a fixed
order, so a broken row is tagged with the FIRST rule it broke:

0. ``wrong number of fields``        a CSV row the reader could not split into the header's columns
1. ``missing required value``        a required column is empty
2. ``unparseable date`` / ``unparseable timestamp`` / ``timestamp without UTC offset`` /
   ``not a number`` / ``not an integer`` / ``not a boolean``    the value does not parse
3. ``<col> below <min>`` / ``<col> above <max>``                  contract ranges
4. ``<col> not one of a, b``                                      contract allowed sets
5. ``unknown <col>``                                              references to other tables
6. ``<end> before <start>``, ``revenue sign differs from units``  cross-column rules
7. ``date after as-of`` / ``date before YYYY-MM-DD``              date sanity (fact tables only)

Everything is vectorised polars: no per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from data_contracts.schemas import TableContract

# Columns holding personal data: masked wherever raw values are kept (quarantine).
PERSONAL: tuple[str, ...] = ("customer_id",)
MASK = "***"
# (value, sign) pairs: the first has the same sign as the second, or is 0.
SAME_SIGN: tuple[tuple[str, str], ...] = (("revenue", "units"),)
# (first, last) pairs: last >= first.
ORDERED: tuple[tuple[str, str], ...] = (("start_date", "end_date"),)

# Boolean spellings (any case, trimmed).
TRUE_WORDS: tuple[str, ...] = ("true", "1", "yes", "y", "t")
FALSE_WORDS: tuple[str, ...] = ("false", "0", "no", "n", "f")
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%z"
_NAIVE_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.f"

# Suffix of the column that keeps a timestamp's local date (the date as written, in its own offset).
LOCAL_DATE_SUFFIX = "__local_date"
ROW = "_source_row"
# Set (JSON: field counts and the line) on a CSV row with the wrong number of fields; null otherwise.
MALFORMED = "_malformed"
MALFORMED_RULE = "wrong number of fields"


@dataclass(frozen=True)
class RuleContext:
    """What the rules need beyond the row itself."""

    # (table, column) -> the known values, e.g. ("stores", "store_id") -> store ids of the drop
    known: dict[tuple[str, str], pl.Series] = field(default_factory=dict)
    # fact tables: dates after this are quarantined (None: no check)
    latest_date: date | None = None
    # fact tables: dates before this are quarantined (None: no check)
    earliest_date: date | None = None


@dataclass(frozen=True)
class CheckedRows:
    """The outcome of ``check_rows``."""

    good: pl.DataFrame  # typed columns of the contract + _source_row (+ <ts>__local_date columns)
    bad: pl.DataFrame  # _source_row, rule, column, raw (JSON, personal data masked)


def latest_allowed(as_of: date | None, max_future_days: int) -> date:
    """Return the last date a fact row may carry: as_of (default today) + max_future_days."""
    return (as_of or date.today()) + timedelta(days=max_future_days)


def _clean(col: str) -> pl.Expr:
    """Trimmed value; empty strings count as missing."""
    s = pl.col(col).str.strip_chars()
    return pl.when(s.str.len_bytes() > 0).then(s)


def _timestamp(s: pl.Expr, fmt: str) -> pl.Expr:
    """Parse cleaned strings as timestamps; accepts a space separator and a "Z" suffix (ISO 8601 does)."""
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T").str.replace(r"[Zz]$", "+00:00")
    return s.str.to_datetime(fmt, strict=False, time_unit="us")


def _parse_clean(s: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Parse the cleaned (trimmed, empty as null) strings ``s`` as ``dtype``; null where they do not."""
    if dtype == pl.Date:
        return s.str.to_date("%Y-%m-%d", strict=False)
    if isinstance(dtype, pl.Datetime):
        return _timestamp(s, _TS_FORMAT).dt.convert_time_zone("UTC").cast(dtype)
    if dtype.is_numeric():
        x = s.cast(pl.Float64, strict=False)
        x = pl.when(x.is_finite()).then(x)
        if dtype.is_integer():
            return pl.when(x == x.floor()).then(x).cast(dtype, strict=False)
        return x.cast(dtype)
    if dtype == pl.Boolean:
        mapping = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
        return s.str.to_lowercase().replace_strict(mapping, default=None, return_dtype=pl.Boolean)
    return s


def parse_expr(col: str, dtype: pl.DataType) -> pl.Expr:
    """Return the expression parsing string column ``col`` as ``dtype`` (null where it does not parse)."""
    return _parse_clean(_clean(col), dtype).alias(col)


def _parse_failure_name(dtype: pl.DataType) -> str:
    if dtype == pl.Date:
        return "unparseable date"
    if isinstance(dtype, pl.Datetime):
        return "unparseable timestamp"
    if dtype.is_integer():
        return "not an integer"
    if dtype == pl.Boolean:
        return "not a boolean"
    return "not a number"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


Rule = tuple[str, str | None, pl.Expr]  # (rule name, column, True where the row breaks it)


def _value_rules(contract: TableContract) -> list[Rule]:
    """Missing values, parse failures, ranges and allowed sets, column by column in rule order."""
    raw, parsed = "__raw_", ""  # raw cleaned strings live under __raw_<col>
    rules: list[Rule] = [("missing required value", c, pl.col(raw + c).is_null()) for c in contract.required]
    for c, dtype in contract.schema.items():
        if dtype == pl.String:
            continue
        unparsed = pl.col(raw + c).is_not_null() & pl.col(parsed + c).is_null()
        if isinstance(dtype, pl.Datetime):
            # say why when the only problem is the missing offset: the fix on the sender's side differs
            naive = _timestamp(pl.col(raw + c), _NAIVE_TS_FORMAT).is_not_null()
            rules.append(("timestamp without UTC offset", c, unparsed & naive))
        rules.append((_parse_failure_name(dtype), c, unparsed))
    return [*rules, *_range_rules(contract)]


def _range_rules(contract: TableContract) -> list[Rule]:
    """Contract ranges and allowed sets, on parsed values."""
    rules: list[Rule] = []
    for c, (lo, hi) in contract.ranges.items():
        if lo is not None:
            rules.append((f"{c} below {_fmt(lo)}", c, pl.col(c) < lo))
        if hi is not None:
            rules.append((f"{c} above {_fmt(hi)}", c, pl.col(c) > hi))
    for c, allowed in contract.allowed.items():
        rules.append((f"{c} not one of {', '.join(allowed)}", c, ~pl.col(c).is_in(list(allowed))))
    return rules


def _relation_rules(contract: TableContract, ctx: RuleContext) -> list[Rule]:
    """References, cross-column rules and date sanity, in rule order."""
    names = contract.schema.names()
    rules: list[Rule] = []
    for c, ref in contract.references.items():
        known = ctx.known.get(ref)
        if known is not None:
            rules.append((f"unknown {c}", c, pl.col(c).is_not_null() & ~pl.col(c).is_in(known.implode())))
    for first, last in ORDERED:
        if first in names and last in names:
            rules.append((f"{last} before {first}", last, pl.col(last) < pl.col(first)))
    for value, sign in SAME_SIGN:
        if value in names and sign in names:
            differs = (pl.col(value) != 0) & (pl.col(value).sign() != pl.col(sign).sign())
            rules.append((f"{value} sign differs from {sign}", value, differs))
    for c, dtype in contract.schema.items():
        if dtype == pl.Date or isinstance(dtype, pl.Datetime):
            day = pl.col(c + LOCAL_DATE_SUFFIX) if dtype != pl.Date else pl.col(c)
            if ctx.latest_date is not None:
                rules.append(("date after as-of", c, day > ctx.latest_date))
            if ctx.earliest_date is not None:
                rules.append((f"date before {ctx.earliest_date.isoformat()}", c, day < ctx.earliest_date))
    return rules


def rules_for(contract: TableContract, ctx: RuleContext) -> list[Rule]:
    """Return every row rule of ``contract`` in the order they are tested (first broken one wins)."""
    return [*_value_rules(contract), *_relation_rules(contract, ctx)]


def raw_json(columns: list[str]) -> pl.Expr:
    """JSON object of the raw string values of ``columns``, personal columns masked."""
    fields = [
        pl.when(pl.col(c).str.strip_chars().str.len_bytes() > 0).then(pl.lit(MASK)).alias(c)
        if c in PERSONAL
        else pl.col(c)
        for c in columns
    ]
    return pl.struct(fields).struct.json_encode()


def _exact_checks(raw: pl.DataFrame, contract: TableContract, ctx: RuleContext) -> CheckedRows:
    """The rules as specified: trim every value, parse it, tag each row with the first rule it breaks."""
    names = contract.schema.names()
    ts_cols = [c for c, t in contract.schema.items() if isinstance(t, pl.Datetime)]
    parsed = (
        raw.lazy()
        .with_columns(
            *(_clean(c).alias("__raw_" + c) for c in names),
            # the local business date is the date as written, before converting to UTC
            *(
                _clean(c).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).alias(c + LOCAL_DATE_SUFFIX)
                for c in ts_cols
            ),
        )
        .with_columns(
            # allowed sets are lower case: "Pickup" is "pickup"
            _parse_clean(pl.col("__raw_" + c), t).str.to_lowercase().alias(c)
            if c in contract.allowed
            else _parse_clean(pl.col("__raw_" + c), t).alias(c)
            for c, t in contract.schema.items()
        )
    )
    rules = rules_for(contract, ctx)
    malformed = MALFORMED in raw.columns
    if malformed:  # before every other rule: the row's values are not there to test
        rules = [(MALFORMED_RULE, None, pl.col(MALFORMED).is_not_null()), *rules]
    # the index of the first rule broken (one expression per rule, evaluated once)
    first: list[pl.Expr] = [
        pl.when(broken).then(pl.lit(i, pl.Int32)) for i, (_, _, broken) in enumerate(rules)
    ]
    tagged = parsed.with_columns(pl.coalesce(first or [pl.lit(None, pl.Int32)]).alias("__rule")).collect()
    broken = tagged["__rule"].is_not_null()
    good = tagged.filter(~broken).select(*names, ROW, *(c + LOCAL_DATE_SUFFIX for c in ts_cols))
    bad_raw = raw.filter(broken)
    bad = pl.DataFrame(
        {
            ROW: bad_raw[ROW],
            "rule": pl.Series([r[0] for r in rules], dtype=pl.String).gather(tagged["__rule"].filter(broken)),
            "column": pl.Series([r[1] for r in rules], dtype=pl.String).gather(
                tagged["__rule"].filter(broken)
            ),
            "raw": bad_raw.select(
                pl.coalesce(pl.col(MALFORMED), raw_json(names)) if malformed else raw_json(names)
            ).to_series(),
        },
        schema={ROW: pl.Int64, "rule": pl.String, "column": pl.String, "raw": pl.String},
    )
    return CheckedRows(good=good, bad=bad)


# Spellings the fast path reads as booleans without lower-casing (any other goes the exact way).
_FAST_BOOL = {
    v: b
    for words, b in ((TRUE_WORDS, True), (FALSE_WORDS, False))
    for w in words
    for v in (w, w.upper(), w.title())
}


# Integers up to this size are read typed as the strings path reads them (through a 64-bit float).
_EXACT_INT = 2**53


def _is_typed(dtype: pl.DataType, given: pl.DataType | None) -> bool:
    """Whether a column arrived already parsed as ``dtype`` by the reader (text and timestamps never)."""
    return given == dtype and dtype != pl.String and not isinstance(dtype, pl.Datetime)


def _fast_value(col: str, dtype: pl.DataType, contract: TableContract, ctx: RuleContext) -> pl.Expr:
    """The value of ``col`` parsed without trimming (null where that does not parse)."""
    raw = pl.col(col)
    if dtype == pl.String:
        # an id found among the known (trimmed) ids needs no trimming; other text is trimmed as specified
        ref = contract.references.get(col)
        if ref is not None and ref in ctx.known and col not in contract.allowed:
            return raw if col in contract.required else pl.when(raw.str.len_bytes() > 0).then(raw)
        return _clean(col).str.to_lowercase() if col in contract.allowed else _clean(col)
    if dtype == pl.Boolean:
        return raw.replace_strict(_FAST_BOOL, default=None, return_dtype=pl.Boolean)
    if isinstance(dtype, pl.Datetime):  # trimmed: the local date is cut from the text as written
        ts = _clean(col).str.to_datetime(_TS_FORMAT, strict=False, time_unit="us")
        return ts.dt.convert_time_zone("UTC").cast(dtype)
    return _parse_clean(raw, dtype)


def _fast_checks(
    raw: pl.DataFrame, contract: TableContract, ctx: RuleContext
) -> tuple[pl.DataFrame, pl.Series]:
    """Parse ``raw`` without trimming and test the value rules; returns the typed rows and, per row,
    whether it surely passes every rule. A row that does not (a rule broken, or a value that needs
    trimming or another spelling to parse) is left to the exact checks, which tag it as specified."""
    names = contract.schema.names()
    ts_cols = [c for c, t in contract.schema.items() if isinstance(t, pl.Datetime)]
    typed_cols = {c for c, t in contract.schema.items() if _is_typed(t, raw.schema.get(c))}
    ok: list[pl.Expr] = []
    for c, dtype in contract.schema.items():
        value, given = pl.col(c), pl.col("__in_" + c)
        if c in typed_cols:  # read typed: null is an empty field; the strings path refuses non-finite
            # numbers and reads integers through a float
            if dtype.is_float():
                ok.append(value.is_finite().fill_null(True))
            elif dtype.is_integer():
                ok.append((value.abs() < _EXACT_INT).fill_null(True))
            if c in contract.required:
                ok.append(value.is_not_null())
            continue
        if c in contract.required:
            ok.append(value.is_not_null())
        elif dtype != pl.String:  # an optional value is absent (null or empty) or parses
            ok.append(value.is_not_null() | given.is_null() | (given.str.len_bytes() == 0))
    if MALFORMED in raw.columns:
        ok.append(pl.col(MALFORMED).is_null())
    ok += [
        ~broken.fill_null(False)
        for _, _, broken in (*_range_rules(contract), *_relation_rules(contract, ctx))
    ]
    typed = (
        raw.lazy()
        .with_columns(pl.col(c).alias("__in_" + c) for c in names)
        .with_columns(
            *(
                _fast_value(c, t, contract, ctx).alias(c)
                for c, t in contract.schema.items()
                if c not in typed_cols
            ),
            *(
                _clean(c).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).alias(c + LOCAL_DATE_SUFFIX)
                for c in ts_cols
            ),
        )
        .with_columns(pl.all_horizontal(ok).alias("__ok"))
        .select(*names, ROW, *(c + LOCAL_DATE_SUFFIX for c in ts_cols), "__ok")
        .collect()
    )
    return typed.drop("__ok"), typed["__ok"]


def check_rows(raw: pl.DataFrame, contract: TableContract, ctx: RuleContext) -> CheckedRows:
    """Parse the all-string frame ``raw`` (contract columns + _source_row) and split it by the rules.

    Returns the rows that pass every rule, typed with the contract's schema, and the rows that broke
    one, each with the first rule it broke, the column concerned and its raw values as JSON.

    Most rows of a real export need no trimming: they are parsed as they stand and tested at once
    (trimming every value costs more than the rest of the checks together). Rows that do not pass
    that way go through the exact checks, so every row ends as the rules above say.
    """
    typed, ok = _fast_checks(raw, contract, ctx)
    if ok.all():
        return CheckedRows(good=typed, bad=_exact_checks(raw.clear(), contract, ctx).bad)
    exact = _exact_checks(raw.filter(~ok), contract, ctx)
    good = pl.concat([typed.filter(ok), exact.good]).sort(ROW)
    return CheckedRows(good=good, bad=exact.bad)


def check_typed(rows: pl.DataFrame, contract: TableContract, ctx: RuleContext) -> pl.DataFrame | None:
    """The fast path of a reader that parsed the numbers, dates and booleans itself (``rows``: those
    columns typed as the contract says, text and timestamps as written, + _source_row).

    Returns the rows typed as ``check_rows`` returns its good ones when every row surely passes every
    rule, None otherwise: a row that breaks a rule needs its values as written for the quarantine, so
    the caller reads the file again as strings (``check_rows``), which tags each row as specified.
    """
    typed, ok = _fast_checks(rows, contract, ctx)
    return typed if ok.all() else None


def duplicate_keys(df: pl.DataFrame, key: tuple[str, ...]) -> pl.DataFrame:
    """Return the key values occurring more than once in ``df`` (with their count ``n``)."""
    return df.group_by(list(key)).len("n").filter(pl.col("n") > 1).sort(list(key))
