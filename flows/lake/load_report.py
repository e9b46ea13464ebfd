"""What a load did to every row of every file, and the rows it wrote (kept for validation)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from data_contracts.schemas import FACT_TABLES

# One partition's share of a load's new rows: (year, month), the rows as written to the lake, and the
# 64-bit hash of each row's natural key (stage.key_hash; None: not computed).
LoadedPart = tuple[tuple[int, int], pl.DataFrame, pl.Series | None]

COUNTS = ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "rows_corrected")


@dataclass
class IngestReport:
    """What a load did to every row of every file (the run.json "tables"/"files" blocks)."""

    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    warnings: list[dict] = field(default_factory=list)
    changed_partitions: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    # table -> the lake files this load wrote: its new rows (and partitions it rewrote whole)
    loaded_files: dict[str, list[Path]] = field(default_factory=dict)
    # table -> the rows of loaded_files, kept in memory when the caller asked for them (validation
    # then reads none of them back); None when not kept. validate_lake empties it as it goes.
    loaded_rows: dict[str, list[LoadedPart]] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Return the run.json-shaped summary: tables, files, quarantine_reasons, warnings."""
        return {
            "tables": self.tables,
            "files": self.files,
            "quarantine_reasons": self.quarantine_reasons,
            "warnings": self.warnings,
        }

    def warn(self, table: str, rule: str, file: str | None, message: str) -> None:
        """Record a warn-severity finding (the load goes on)."""
        self.warnings.append({"table": table, "rule": rule, "file": file, "message": message})

    def add_file(self, rel: str, path: Path, table: str) -> dict[str, Any]:
        """Start the counts of one file; returns its (mutable) record."""
        record: dict[str, Any] = {"path": rel, "sha256": _sha256(path), "table": table}
        record.update(dict.fromkeys(COUNTS, 0))
        self.files.append(record)
        return record

    def total_tables(self) -> None:
        """Sum the per-file counts into per-table counts (fact tables always present)."""
        for contract in FACT_TABLES:
            self.tables.setdefault(contract.name, dict.fromkeys(COUNTS, 0))
        for record in self.files:
            totals = self.tables.setdefault(record["table"], dict.fromkeys(COUNTS, 0))
            for k in COUNTS:
                totals[k] += record[k]


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
