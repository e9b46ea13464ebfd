"""The lake's layout and its read side: the one place that knows where tables live.

Layout (Hive-partitioned Parquet, readable by DuckDB, Spark or pyarrow without localshelf)::

    lake/
      table=store_sales/year=2024/month=8/part-<load id>-<file>-<n>.parquet   (one or more files:
      table=online_orders/year=2024/month=8/part-<load id>.parquet             each load appends its own)
      table=quarantine/year=2024/month=8/part-<load id>.parquet
      table=stores/part-0.parquet            (reference tables: one file, replaced whole)
      ...
      _state/                                 lock, commit journal, load history (localshelf only)
      _docs/                                  Great Expectations Data Docs (HTML)

Files and folders starting with ``_`` or ``.`` are ignored by Parquet readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from data_contracts.schemas import (
    CONTRACTS,
    FACT_SCHEMAS,
    REFERENCE_TABLES,
)
from data_contracts.tables import LakeTables

PART_FILE = "part-0.parquet"


@dataclass(frozen=True)
class LakePaths:
    """Where everything in a lake lives.

    ``LakePaths("s3://bucket/lake")`` (any fsspec URL but ``file://``) is a URL lake: ``url`` is set,
    readers scan its committed files there (``flows.lake.fs``), and ``root`` is its local copy, which
    loads write into before publishing (``flows.lake.remote``)."""

    root: Path
    url: str | None = None

    if TYPE_CHECKING:  # built from a folder or a URL string; ``root`` is always a local folder after

        def __init__(self, root: Path | str, url: str | None = None) -> None: ...

    def __post_init__(self) -> None:
        from flows.lake.fs import cache_dir, is_url, local_path

        if self.url is None and is_url(self.root):
            object.__setattr__(self, "url", str(self.root).rstrip("/"))
        if self.url is not None:
            object.__setattr__(self, "root", cache_dir("lake", self.url))
            return
        # Absolute from the start: tools handed these paths (Great Expectations' Data Docs site, a
        # subprocess with another working directory) must not depend on where the run started.
        object.__setattr__(self, "root", local_path(self.root).resolve())

    @property
    def location(self) -> str:
        """The lake as the user named it: its URL, or its local folder."""
        return self.url or str(self.root)

    def table(self, name: str) -> Path:
        """Folder of table ``name``."""
        return self.root / f"table={name}"

    def partition(self, name: str, year: int, month: int) -> Path:
        """Folder of one monthly partition of a fact table."""
        return self.table(name) / f"year={year}" / f"month={month}"

    @property
    def state(self) -> Path:
        return self.root / "_state"

    @property
    def lock_file(self) -> Path:
        return self.state / "lake.lock"

    @property
    def journal(self) -> Path:
        return self.state / "journal.json"

    @property
    def history(self) -> Path:
        """Append-only JSON lines: one record per committed load."""
        return self.state / "loads.jsonl"

    @property
    def staging(self) -> Path:
        return self.state / "staging"

    @property
    def docs(self) -> Path:
        """Great Expectations Data Docs site."""
        return self.root / "_docs"


def _parquet_files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(
        p for p in folder.rglob("*.parquet") if not any(s.startswith((".", "_")) for s in p.parts[-4:])
    )


def fact_partitions(lake: LakePaths, name: str) -> list[tuple[int, int]]:
    """Return the (year, month) partitions of fact table ``name`` present in the lake, in order."""
    found: set[tuple[int, int]] = set()
    for folder in lake.table(name).glob("year=*/month=*"):
        try:
            found.add((int(folder.parent.name.split("=", 1)[1]), int(folder.name.split("=", 1)[1])))
        except ValueError:
            continue  # not a partition folder this layout writes
    return sorted(found)


def scan_fact(lake: LakePaths, name: str) -> pl.LazyFrame:
    """Lazily scan fact table ``name`` (empty frame of the right schema when nothing is loaded)."""
    schema = FACT_SCHEMAS[name]
    if lake.url is not None:  # the committed objects, read through Arrow on the URL's filesystem
        from flows.lake.fs import scan_objects, table_objects

        objects = table_objects(lake.url, name)
        return (
            scan_objects(lake.url, objects).select(list(schema.names()))
            if objects
            else pl.LazyFrame(schema=schema)
        )
    files = _parquet_files(lake.table(name))
    if not files:
        return pl.LazyFrame(schema=schema)
    lf = pl.scan_parquet(files, hive_partitioning=False)
    return lf.select(list(schema.names()))


def read_reference(lake: LakePaths, name: str) -> pl.DataFrame:
    """Read reference table ``name`` (empty frame of the contract's schema when it was not dropped)."""
    schema = CONTRACTS[name].schema
    if lake.url is not None:
        from flows.lake.fs import read_object, table_objects

        objects = table_objects(lake.url, name)
        if not objects:
            return pl.DataFrame(schema=schema)
        df = read_object(lake.url, objects[0])
    else:
        path = lake.table(name) / PART_FILE
        if not path.exists():
            return pl.DataFrame(schema=schema)
        df = pl.read_parquet(path)
    # a lake loaded before an optional column joined the contract lacks it: null, as in a drop without it
    missing = [pl.lit(None, dtype=schema[c]).alias(c) for c in schema.names() if c not in df.columns]
    return df.with_columns(missing).select(list(schema.names()))


def load_tables(lake: LakePaths) -> LakeTables:
    """Return every table a run needs from ``lake``: reference tables read, fact tables scanned lazily."""
    refs = {c.name: read_reference(lake, c.name) for c in REFERENCE_TABLES}
    return LakeTables(
        **refs,
        store_sales=scan_fact(lake, "store_sales"),
        online_orders=scan_fact(lake, "online_orders"),
    )


# ---- write side (used by flows.lake.ingest) ----


def partition_files(lake: LakePaths, name: str, year: int, month: int) -> list[Path]:
    """The Parquet files of one monthly partition of fact table ``name`` (empty when it holds none)."""
    return _parquet_files(lake.partition(name, year, month))


def partition_file(lake: LakePaths, name: str, year: int, month: int, load_id: str = "0", *part: int) -> Path:
    """A file of a monthly partition written by load ``load_id``: ``part-<load id>.parquet`` for a
    partition the load rewrites whole, ``part-<load id>-<file>-<n>.parquet`` for rows it appends
    (``part-0.parquet`` without a load: a partition written whole outside a load, e.g. by a test)."""
    suffix = "".join(f"-{p:04d}" for p in part)
    return lake.partition(name, year, month) / f"part-{load_id}{suffix}.parquet"


def reference_file(lake: LakePaths, name: str) -> Path:
    """The one Parquet file of reference table ``name``."""
    return lake.table(name) / PART_FILE


def quarantine_file(lake: LakePaths, load_id: str, year: int, month: int) -> Path:
    """The quarantine file of one load (a load appends one file; earlier ones are never rewritten)."""
    return lake.partition("quarantine", year, month) / f"part-{load_id}.parquet"
