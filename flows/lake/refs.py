"""Reading a drop's reference tables: whole, checked, published whole.

A missing required file, a missing required column or a duplicate key stops the load (ContractError)
before anything is written; a row breaking another rule (e.g. an assortment row for an unknown store)
is quarantined like a fact row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from data_contracts.rules import RuleContext, check_rows, duplicate_keys
from data_contracts.schemas import REFERENCE_TABLES, TableContract
from flows.lake.paths import reference_file
from flows.lake.readers import ContractError, open_source, read_whole

if TYPE_CHECKING:
    from flows.lake.commit import Commit
    from flows.lake.paths import LakePaths


class LoadState(Protocol):
    """What loading the reference tables needs of the running load (``flows.lake.ingest``)."""

    lake: LakePaths
    commit: Commit
    batch_rows: int

    @property
    def report(self) -> Any: ...

    def quarantine(self, table: str, file: str, bad: pl.DataFrame) -> None: ...


# Required reference tables; postal_regions only when the drop has online orders.
REQUIRED = ("stores", "products", "assortment")
_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def find_reference(drop: Path, contract: TableContract) -> Path | None:
    """Return the drop's file for a reference table (``<stem>.csv``, else .csv.gz/.parquet), or None."""
    return next((p for s in _SUFFIXES if (p := drop / f"{contract.file_stem}{s}").is_file()), None)


def _refuse_duplicates(raw: pl.DataFrame, contract: TableContract, rel: str) -> None:
    """Raise ContractError when a key occurs twice (compared trimmed, as the rules compare them)."""
    keys = raw.select(pl.col(list(contract.key)).str.strip_chars())
    dups = duplicate_keys(keys.drop_nulls(), contract.key)
    if dups.height:
        shown = "; ".join(
            ", ".join(f"{c}={v!r}" for c, v in zip(contract.key, row, strict=False)) + f" ({n} times)"
            for *row, n in dups.head(5).iter_rows()
        )
        raise ContractError(
            contract.name,
            "duplicate key",
            f"{dups.height} key(s) of ({', '.join(contract.key)}) occur more than once: {shown}",
            file=rel,
        )


def _known(tables: dict[str, pl.DataFrame]) -> dict[tuple[str, str], pl.Series]:
    """Reference values checked so far, for the references of the next tables."""
    known = {}
    for name, df in tables.items():
        for col in df.columns:
            known[(name, col)] = df[col]
    return known


def load_references(
    drop: Path, load: LoadState, *, has_orders: bool, say: Callable[[str], None]
) -> dict[str, pl.DataFrame]:
    """Read, check and stage every reference table of the drop.

    Returns table name -> its good rows (contract schema) for the tables the drop holds.
    """
    tables: dict[str, pl.DataFrame] = {}
    required = (*REQUIRED, "postal_regions") if has_orders else REQUIRED
    for contract in REFERENCE_TABLES:  # stores and products come first: later tables refer to them
        path = find_reference(drop, contract)
        if path is None:
            if contract.name in required:
                why = " (the drop has online orders)" if contract.name == "postal_regions" else ""
                raise ContractError(
                    contract.name,
                    "missing required file",
                    f"{drop / (contract.file_stem + '.csv')} is missing{why}",
                )
            if reference_file(load.lake, contract.name).exists():
                load.report.warn(
                    contract.name,
                    "reference file absent",
                    None,
                    f"{contract.file_stem}.csv is not in this drop: "
                    "the lake keeps its copy from an earlier load",
                )
            continue
        rel = path.relative_to(drop).as_posix()
        say(f"reading {rel}")
        src = open_source(path, rel, contract)
        raw = read_whole(src, load.batch_rows)
        _refuse_duplicates(raw, contract, rel)
        checked = check_rows(raw, contract, RuleContext(known=_known(tables)))
        record = load.report.add_file(rel, path, contract.name)
        record["rows_read"] = raw.height
        record["rows_quarantined"] = checked.bad.height
        load.quarantine(contract.name, rel, checked.bad)
        good = checked.good.select(contract.schema.names())
        final = reference_file(load.lake, contract.name)
        # the same table again (a re-run) is all duplicates and leaves the lake's file untouched
        if final.exists() and pl.read_parquet(final).equals(good):
            record["rows_duplicate"] = good.height
        else:
            record["rows_loaded"] = good.height
            good.write_parquet(load.commit.stage(final))
        tables[contract.name] = good
    return tables
