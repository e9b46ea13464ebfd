"""Loading a drop into the lake: every row accounted for, atomic, idempotent, private.

Order of work (nothing reaches the lake before the final commit):

1. find the drop's files; check every header against its contract (a missing column stops the load);
2. read the reference tables whole, apply their row rules, refuse duplicate keys;
3. stream each fact file in batches: parse, apply the row rules, quarantine broken rows, hash
   customer ids, write good rows as staged lake files per monthly partition (flows.lake.stage);
4. where a key occurs twice in the load or is already in the lake, merge those partitions with what
   the lake holds (duplicates, corrections, newest wins); every other staged file is appended as is;
5. publish every new file at once through the commit journal (flows.lake.commit).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from data_contracts.gx_import import preload_gx
from data_contracts.privacy import customer_key
from data_contracts.rules import (
    LOCAL_DATE_SUFFIX,
    ROW,
    RuleContext,
    check_rows,
    check_typed,
    latest_allowed,
)
from data_contracts.schemas import (
    FACT_SCHEMAS,
    FACT_TABLES,
    ONLINE_ORDERS,
    PARTITION_DATE,
    QUARANTINE,
    TableContract,
)
from flows.lake.commit import Commit, lake_lock, read_history, recover, stage_history
from flows.lake.load_report import IngestReport
from flows.lake.merge import (
    CONFLICT_RULE,
    FILE_IDX,
    PART,
    merge_partition,
)
from flows.lake.paths import (
    LakePaths,
    partition_file,
    partition_files,
    quarantine_file,
    scan_fact,
)
from flows.lake.readers import (
    ContractError,
    NotTyped,
    SourceFile,
    file_format,
    iter_raw,
    iter_typed,
    open_source,
)
from flows.lake.refs import load_references
from flows.lake.stage import (
    LAKE_COMPRESSION,
    Chunk,
    colliding_partitions,
    key_moves,
    label,
    label_key,
    merge_inputs,
    write_chunks,
)
from flows.settings import Settings

__all__ = ["ContractError", "IngestReport", "ingest_drop"]


@dataclass
class _Load:
    """The state of one load while it runs."""

    drop: Path
    lake: LakePaths
    commit: Commit
    now: datetime
    batch_rows: int
    secret: bytes | None
    report: IngestReport = field(default_factory=IngestReport)
    # rows kept in memory for validation at most (0: none kept); past it, none are kept
    keep_max: int = 0
    validation_follows: bool = False  # keep_rows was asked for: GX is imported once the files are read
    kept: dict[Path, pl.DataFrame] = field(default_factory=dict)  # staged file -> its rows
    # several fact files are read at once (threads): staging names and shared counts are guarded
    _names: itertools.count = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def spool(self, kind: str, df: pl.DataFrame) -> None:
        """Write ``df`` to a new staging file under ``spool/<kind>/`` (kept until commit)."""
        folder = self.commit.folder / "spool" / kind
        with self._lock:
            name = f"{next(self._names):06d}.parquet"
            folder.mkdir(parents=True, exist_ok=True)
        df.write_parquet(folder / name, compression="uncompressed")

    def keep(self, chunk: Chunk, rows: pl.DataFrame) -> None:
        """Keep a staged file's rows for validation, while they stay within ``keep_max`` rows."""
        with self._lock:
            if self.keep_max <= 0:
                return
            if sum(f.height for f in self.kept.values()) + rows.height > self.keep_max:
                self.keep_max = 0  # too many: validation reads the lake instead
                self.kept.clear()
                return
            self.kept[chunk.temp] = rows

    def take_back(self, chunks: list[Chunk]) -> None:
        """Take staged files out of the commit (and their kept rows)."""
        for chunk in chunks:
            self.commit.unstage(chunk.temp)
            with self._lock:
                self.kept.pop(chunk.temp, None)

    def kept_part(
        self, table: str, part: tuple[int, int], rows: pl.DataFrame | None, keys: pl.Series | None
    ) -> None:
        """Hand rows the load wrote to the report's ``loaded_rows`` (when rows are kept)."""
        if self.keep_max > 0 and rows is not None:
            loaded = self.report.loaded_rows if self.report.loaded_rows is not None else {}
            loaded.setdefault(table, []).append((part, rows, keys))
            self.report.loaded_rows = loaded

    def quarantine(self, table: str, file: str, bad: pl.DataFrame) -> None:
        """Spool rows that broke a rule (columns _source_row, rule, column, raw) and count their rules."""
        if bad.height == 0:
            return
        reasons = self.report.quarantine_reasons
        with self._lock:
            for rule, n in bad.group_by("rule").len().iter_rows():
                reasons[rule] = reasons.get(rule, 0) + n
        rows = bad.select(
            pl.lit(table).alias("table"),
            pl.lit(file).alias("file"),
            pl.col(ROW).alias("row_number"),
            "rule",
            "column",
            "raw",
            pl.lit(self.now).alias("quarantined_at"),
        ).cast(QUARANTINE)
        self.spool("quarantine", rows)


def _find_fact_files(drop: Path, contract: TableContract, report: IngestReport) -> list[Path]:
    """Return the fact files of one table's folder, in load order (by name: a later name wins)."""
    folder = drop / contract.file_stem
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or not path.is_file():
            continue
        if file_format(path) is None:
            rel = path.relative_to(drop).as_posix()
            report.warn(contract.name, "ignored file", rel, f"{rel}: not .csv, .csv.gz or .parquet; ignored")
            continue
        files.append(path)
    return files


def _open_facts(drop: Path, report: IngestReport) -> dict[str, list[SourceFile]]:
    """Open every fact file's header up front, so a missing column stops the load before any work."""
    sources = {}
    for contract in FACT_TABLES:
        paths = _find_fact_files(drop, contract, report)
        sources[contract.name] = [open_source(p, p.relative_to(drop).as_posix(), contract) for p in paths]
    if not sources["store_sales"]:
        raise ContractError(
            "store_sales",
            "missing required file",
            f"{drop / 'store_sales'} holds no .csv, .csv.gz or .parquet file",
        )
    for src in (s for srcs in sources.values() for s in srcs):
        if src.extra:
            report.warn(
                src.contract.name,
                "extra columns",
                src.rel,
                f"{src.rel}: ignored columns {', '.join(src.extra)}",
            )
    return sources


def _customer_keys(ids: pl.Series, secret: bytes | None, rel: str) -> pl.Series:
    """HMAC-SHA256 (hex) of each customer id, computed once per distinct id; null for guests."""
    present = ids.drop_nulls().unique()
    if present.len() == 0:
        return pl.Series(ids.name, [None] * ids.len(), dtype=pl.String)
    if secret is None:
        raise ContractError(
            "online_orders",
            "customer ids without a secret",
            "orders carry customer_id but no key is set to hash them: set LOCALSHELF_HMAC_SECRET",
            file=rel,
        )
    hashed = [customer_key(v, secret) for v in present.to_list()]
    return ids.replace_strict(present, pl.Series(hashed, dtype=pl.String), default=None)


def _to_lake(good: pl.DataFrame, src: SourceFile, load: _Load) -> pl.DataFrame:
    """Turn checked rows into lake rows: private data hashed, local date, lineage."""
    extra: list[pl.Expr | pl.Series] = []
    if src.contract.name == ONLINE_ORDERS.name:
        extra = [
            _customer_keys(good["customer_id"], load.secret, src.rel).alias("customer_key"),
            pl.col("ordered_at" + LOCAL_DATE_SUFFIX).alias("order_date"),
        ]
    schema = FACT_SCHEMAS[src.contract.name]
    return good.with_columns(
        *extra,
        pl.lit(src.rel).alias("_source_file"),
        pl.lit(load.now).alias("_loaded_at"),
    ).select(pl.col(c).cast(t) for c, t in schema.items())


def _stream_fact(
    src: SourceFile, idx: int, record: dict, ctx: RuleContext, load: _Load, postal: pl.Series | None
) -> list[Chunk]:
    """Read one fact file batch by batch: quarantine broken rows, write good ones as lake files per
    partition, count into ``record`` (this file's own; runs in a worker thread beside other files).
    Returns the files written, each with the key hashes of its rows.

    The file is first read typed (the reader parses numbers, dates and booleans: a third of the CPU
    of reading strings). At the first row that does not surely pass every rule as read (a value the
    reader cannot parse, a row with the wrong field count, a rule broken), what that pass staged is
    taken back and the file is read again as strings, which gives every broken row its reason."""
    chunks: list[Chunk] = []
    try:
        _read_fact(src, idx, record, ctx, load, postal, chunks, typed=True)
    except NotTyped:
        load.take_back(chunks)
        chunks.clear()
        record.update(rows_read=0, rows_quarantined=0)
        _read_fact(src, idx, record, ctx, load, postal, chunks, typed=False)
    if record["rows_read"] == 0:
        load.report.warn(src.contract.name, "no rows", src.rel, f"{src.rel}: the file holds no rows")
    return chunks


def _read_fact(
    src: SourceFile,
    idx: int,
    record: dict,
    ctx: RuleContext,
    load: _Load,
    postal: pl.Series | None,
    chunks: list[Chunk],
    *,
    typed: bool,
) -> None:
    """One pass of ``_stream_fact``, typed (raises NotTyped, quarantines nothing) or as strings."""
    unmapped = 0
    for batch in iter_typed(src, load.batch_rows) if typed else iter_raw(src, load.batch_rows):
        record["rows_read"] += batch.height
        if typed:
            good = check_typed(batch, src.contract, ctx)
            if good is None:
                raise NotTyped("a row breaks a rule")
        else:
            checked = check_rows(batch, src.contract, ctx)
            record["rows_quarantined"] += checked.bad.height
            load.quarantine(src.contract.name, src.rel, checked.bad)
            good = checked.good
        rows = _to_lake(good, src, load)
        if postal is not None:
            unmapped += rows.filter(~pl.col("ship_postal_code").is_in(postal.implode())).height
        chunks += write_chunks(rows, src.contract, idx, len(chunks), load.lake, load.commit, load.keep)
    record["unmapped"] = unmapped


def _count_loaded(load: _Load, table: str, chunks: list[Chunk]) -> None:
    """Rows appended as they were read: loaded, each in its own file's counts; partitions changed."""
    records = [f for f in load.report.files if f["table"] == table]
    for chunk in chunks:
        records[chunk.file_idx]["rows_loaded"] += chunk.rows
        load.report.loaded_files.setdefault(table, []).append(chunk.final)
        load.kept_part(table, chunk.part, load.kept.pop(chunk.temp, None), chunk.keys)
    if chunks:
        load.report.changed_partitions.setdefault(table, []).extend({c.part for c in chunks})


def _merge_all(load: _Load, staged: dict[str, list[Chunk]]) -> None:
    """Publish each table's new rows: appended where no key collides, merged where some do."""
    for contract in FACT_TABLES:
        chunks = staged.get(contract.name, [])
        if not chunks:
            continue
        by_part: dict[tuple[int, int], list[Chunk]] = {}
        for chunk in chunks:
            by_part.setdefault(chunk.part, []).append(chunk)
        merge = colliding_partitions(load.lake, contract, chunks)
        _count_loaded(load, contract.name, [c for c in chunks if c.part not in merge])
        if merge:
            _merge_partitions(load, contract, merge, by_part)
        parts = load.report.changed_partitions.get(contract.name)
        if parts:
            load.report.changed_partitions[contract.name] = sorted(set(parts))


def _merge_partitions(
    load: _Load,
    contract: TableContract,
    merge: set[tuple[int, int]],
    by_part: dict[tuple[int, int], list[Chunk]],
) -> None:
    """Merge the load's rows of the partitions in ``merge`` with the lake (duplicates, corrections,
    keys moving between months) and stage each partition that changed as one rewritten file."""
    table, schema, keys = contract.name, FACT_SCHEMAS[contract.name], list(contract.key)
    spooled = {label(p): [c for c in by_part[p]] for p in merge if p in by_part}
    moves = key_moves(load.lake, contract, spooled)
    labels = set(spooled) | (set(moves[PART]) if moves is not None else set())
    records = [f for f in load.report.files if f["table"] == table]
    for part_label in sorted(labels, key=label_key):
        year, month = label_key(part_label)
        existing, staged, removed = merge_inputs(load.lake, table, keys, part_label, spooled, moves)
        if staged is None:  # only lake rows left this month (their newer version lies elsewhere)
            assert existing is not None
            rows = existing.select(schema.names()).collect()
            changed = removed
        else:
            result = merge_partition(existing, staged, key=contract.key, schema=schema)
            for idx, loaded, duplicate, corrected, conflict in result.counts.iter_rows():
                r = records[idx]
                r["rows_loaded"] += loaded
                r["rows_duplicate"] += duplicate
                r["rows_corrected"] += corrected
                r["rows_quarantined"] += conflict
            for idx, conflicts in result.conflicts.group_by(FILE_IDX):
                bad = conflicts.select(ROW, pl.lit(CONFLICT_RULE).alias("rule"), "column", "raw")
                load.quarantine(table, records[idx[0]]["path"], bad)
            rows, changed = result.rows, result.changed or removed
        if changed:
            final = partition_file(load.lake, table, year, month, load.commit.load_id)
            rows.write_parquet(load.commit.stage(final), compression=LAKE_COMPRESSION)
            for old in partition_files(load.lake, table, year, month):
                load.commit.delete(old)
            load.report.changed_partitions.setdefault(table, []).append((year, month))
            load.report.loaded_files.setdefault(table, []).append(final)
            load.kept_part(table, (year, month), rows, None)
    # merged: not published as written
    load.take_back([c for chunks in spooled.values() for c in chunks])


def _stage_quarantine(load: _Load) -> None:
    """Stage this load's quarantined rows as one file in the month of the load."""
    folder = load.commit.folder / "spool" / "quarantine"
    if not folder.exists():
        return
    # A re-run quarantines the same rows again (they still count in its accounting) but writes only
    # those not already in the lake, so the quarantine table does not grow with every re-load.
    same = ["table", "file", "row_number", "rule", "raw"]
    known = scan_fact(load.lake, "quarantine").select(same)
    rows = (
        pl.scan_parquet(sorted(folder.glob("*.parquet")))
        .join(known, on=same, how="anti", nulls_equal=True)
        .sort("table", "file", "row_number")
        .collect()
    )
    if rows.height == 0:
        return
    final = quarantine_file(load.lake, load.commit.load_id, load.now.year, load.now.month)
    rows.write_parquet(load.commit.stage(final))


def _warn_totals(load: _Load, settings_ratio: float, share: float) -> None:
    """Warnings over whole tables: unmapped postal codes, a load much smaller than the previous one."""
    report = load.report
    orders = [f for f in report.files if f["table"] == ONLINE_ORDERS.name]
    good = sum(f["rows_read"] - f["rows_quarantined"] for f in orders)
    unmapped = sum(f.pop("unmapped", 0) for f in report.files)
    if good and unmapped / good > share:
        report.warn(
            ONLINE_ORDERS.name,
            "unmapped ship_postal_code",
            None,
            f"{unmapped / good:.1%} of online order lines ship to a postal code not in postal_regions "
            f"(warning above {share:.1%}): their demand has no region",
        )
    history = read_history(load.lake)
    previous = history[-1]["tables"] if history else {}
    for name in PARTITION_DATE:
        before = previous.get(name, {}).get("rows_read", 0)
        now = report.tables[name]["rows_read"]
        if before and now < settings_ratio * before:
            report.warn(
                name,
                "load much smaller than the previous one",
                None,
                f"{name}: this load read {now:,} rows, "
                f"under {settings_ratio:.0%} of the previous load's {before:,}",
            )


def _run_load(
    drop: Path, load: _Load, settings_: Settings, as_of: date | None, say: Callable[[str], None]
) -> None:
    """Do steps 1-4 of the module docstring, staging every file to publish in ``load.commit``."""
    ing = settings_.ingest
    sources = _open_facts(drop, load.report)
    has_orders = bool(sources[ONLINE_ORDERS.name])
    refs = load_references(drop, load, has_orders=has_orders, say=say)
    known = {
        ("stores", "store_id"): refs["stores"]["store_id"],
        ("products", "sku"): refs["products"]["sku"],
    }
    ctx = RuleContext(
        known=known, latest_date=latest_allowed(as_of, ing.max_future_days), earliest_date=ing.min_date
    )
    postal = refs["postal_regions"]["postal_code"] if "postal_regions" in refs else None
    # files are read in parallel (polars and pyarrow work outside the GIL); each file has its own
    # record, created here in load order, and its own _file_idx, so the outcome does not depend on timing
    staged: dict[str, list[Chunk]] = {}
    with ThreadPoolExecutor(max_workers=ing.read_workers, thread_name_prefix="ingest") as pool:
        running = []
        for name, srcs in sources.items():
            for idx, src in enumerate(srcs):
                say(f"reading {src.rel}")
                record = load.report.add_file(src.rel, src.path, name)
                orders_postal = postal if name == ONLINE_ORDERS.name else None
                running.append((name, pool.submit(_stream_fact, src, idx, record, ctx, load, orders_postal)))
        for name, job in running:
            # re-raises a file's ContractError; the commit is then discarded
            staged.setdefault(name, []).extend(job.result())
    if load.validation_follows:  # GX imports while the keys are checked and files synced (also when
        preload_gx()  # too many rows were read to keep them: validation then reads them back)
    say("checking keys against the lake")
    _merge_all(load, staged)
    _stage_quarantine(load)
    load.report.total_tables()
    _warn_totals(load, ing.min_load_ratio, ing.unmapped_postal_warn_share)
    record = {"load_id": load.commit.load_id, "finished_at": datetime.now(UTC).isoformat(), "drop": str(drop)}
    stage_history(load.commit, {**record, "tables": load.report.tables})


def ingest_drop(
    drop: Path,
    lake: LakePaths,
    settings: Settings,
    *,
    as_of: date | None = None,
    progress: Callable[[str], None] | None = None,
    keep_rows: bool = False,
) -> IngestReport:
    """Load ``drop`` into ``lake`` all-or-nothing, holding the lake's writer lock.

    Returns the report of what happened to every row; with ``keep_rows``, the report also holds the
    rows the load wrote (``loaded_rows``, up to ``ingest.keep_rows_max`` rows), so that validate_lake
    reads none of them back, and Great Expectations starts importing in a thread once every file is
    read (the rest of the load, key checks and the commit's file syncs, leaves a core to it). Raises
    ContractError (nothing written) when the drop breaks the input contract, LakeLockedError when
    another load holds the lake too long.
    """
    say = progress or (lambda _: None)
    drop = Path(drop)
    if not drop.is_dir():
        raise ContractError("drop", "missing drop folder", f"{drop} is not a folder")
    with lake_lock(lake, settings.ingest.lock_timeout_s):
        recover(lake, say)
        now = datetime.now(UTC)
        commit = Commit(lake, f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}")
        secret = settings.hmac_secret.get_secret_value().encode() if settings.hmac_secret else None
        load = _Load(drop, lake, commit, now, settings.ingest.batch_rows, secret)
        load.keep_max = settings.ingest.keep_rows_max if keep_rows else 0
        load.validation_follows = keep_rows
        try:
            _run_load(drop, load, settings, as_of, say)
            say(f"publishing {len(commit.moves)} files")
            commit.commit()
        finally:
            commit.discard()
    report = load.report
    say(
        ", ".join(
            f"{n}: {t['rows_loaded']:,} of {t['rows_read']:,} rows loaded" for n, t in report.tables.items()
        )
    )
    return report
