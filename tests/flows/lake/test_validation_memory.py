"""validate_lake on the rows a load kept in memory (ingest_drop(keep_rows=True)): the same verdict as
reading them back, none of the load's files read, the rest of a touched partition read from the lake."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import flows.lake.validation as validation
from data_contracts.schemas import STORE_SALES
from data_contracts.suites import key_code
from flows.lake.ingest import IngestReport, ingest_drop
from flows.lake.paths import LakePaths, partition_files
from flows.lake.validation import validate_lake
from tests.flows.lake.ingest_drops import SALES, make_drop, settings

AS_OF = date(2024, 12, 31)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fact files validate_lake reads from the lake."""
    seen: list[str] = []
    original = pl.read_parquet

    def spy(source: list[Path] | Path, **kwargs: object) -> pl.DataFrame:
        if isinstance(source, list):
            seen.extend(p.as_posix() for p in source)
        return original(source, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(validation.pl, "read_parquet", spy)
    return seen


def _load(drop: Path, lake: LakePaths, **ingest: object) -> IngestReport:
    return ingest_drop(drop, lake, settings(**ingest), as_of=AS_OF, keep_rows=True)


def _rows(lake: LakePaths, report: IngestReport) -> dict[str, int]:
    summary = validate_lake(lake, as_of=AS_OF, loaded=report)
    assert summary.success, summary.failure_lines()
    return {t: rec["rows"] for t, rec in summary.tables.items() if t in ("store_sales", "online_orders")}


def test_a_first_load_is_validated_from_memory(tmp_path: Path, reads: list[str]) -> None:
    lake = LakePaths(tmp_path / "lake")
    report = _load(make_drop(tmp_path / "drop"), lake)
    assert report.loaded_rows is not None
    parts = report.loaded_rows["store_sales"]
    for _, rows, keys in parts:  # the key hashes ingest computed are the suite's own
        assert keys is not None and keys.equals(
            rows.select(key_code(STORE_SALES.key)).to_series(), check_names=False
        )
    assert _rows(lake, report) == {"store_sales": 4, "online_orders": 3}
    assert reads == [], "the load's own files are not read back"
    assert report.loaded_rows is None, "validation releases the rows"


def test_kept_rows_are_what_is_validated(tmp_path: Path) -> None:
    lake = LakePaths(tmp_path / "lake")
    report = _load(make_drop(tmp_path / "drop"), lake)
    assert report.loaded_rows is not None
    part, rows, keys = report.loaded_rows["store_sales"][0]
    report.loaded_rows["store_sales"][0] = (part, rows.with_columns(pl.lit(-1.0).alias("on_hand")), keys)
    summary = validate_lake(lake, as_of=AS_OF, loaded=report)
    assert "on_hand >= 0" in summary.tables["store_sales"]["failed"]


def test_a_second_load_reads_only_the_partitions_other_files(tmp_path: Path, reads: list[str]) -> None:
    lake = LakePaths(tmp_path / "lake")
    first = _load(make_drop(tmp_path / "d1", orders=None), lake)
    _rows(lake, first)
    # August gets a new row beside the old file; September's row is corrected (merged, rewritten)
    more = SALES.splitlines()[0] + "\n2024-08-09,002,B2,1,2.0,5,no\n2024-09-01,001,A1,4,6.0,8,1\n"
    second = _load(make_drop(tmp_path / "d2", sales=more, orders=None), lake)
    assert second.tables["store_sales"]["rows_corrected"] == 1
    reads.clear()
    assert _rows(lake, second) == {"store_sales": 5, "online_orders": 0}
    written = set(second.loaded_files["store_sales"])
    august = [f.as_posix() for f in partition_files(lake, "store_sales", 2024, 8) if f not in written]
    assert len(august) == 1 and reads == august  # the first load's August file, nothing else
    # the same verdict and rows as reading every touched partition back
    second.loaded_rows = None
    assert _rows(lake, second) == {"store_sales": 5, "online_orders": 0}


def test_past_keep_rows_max_nothing_is_kept(tmp_path: Path) -> None:
    lake = LakePaths(tmp_path / "lake")
    report = _load(make_drop(tmp_path / "drop"), lake, keep_rows_max=3)
    assert report.loaded_rows is None
    assert _rows(lake, report) == {"store_sales": 4, "online_orders": 3}


def test_keeping_rows_starts_the_gx_import_once_every_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.lake.ingest as ingest

    events: list[str] = []
    stream, merge = ingest._stream_fact, ingest._merge_all

    def streamed(*args: Any) -> Any:
        chunks = stream(*args)
        events.append("read")
        return chunks

    monkeypatch.setattr(ingest, "_stream_fact", streamed)
    monkeypatch.setattr(ingest, "_merge_all", lambda *args: (events.append("keys"), merge(*args)))
    monkeypatch.setattr(ingest, "preload_gx", lambda: events.append("gx"))
    _load(make_drop(tmp_path / "d1"), LakePaths(tmp_path / "lake"))
    assert events == ["read", "read", "gx", "keys"], "once, after every file, before the key checks"
    events.clear()
    ingest_drop(make_drop(tmp_path / "d2"), LakePaths(tmp_path / "lake2"), settings(), as_of=AS_OF)
    assert "gx" not in events, "not without keep_rows"
    events.clear()
    report = _load(make_drop(tmp_path / "d3"), LakePaths(tmp_path / "lake3"), keep_rows_max=3)
    assert report.loaded_rows is None and events.count("gx") == 1, "too many rows to keep: GX all the same"


def test_a_partitions_parts_get_their_columns_before_they_are_joined(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from data_contracts.schemas import LAKE_STORE_SALES
    from data_contracts.suites import DAYS_FROM_START, DAYS_TO_END, KEY_CODE, derived_columns
    from flows.lake.load_report import LoadedPart

    def part(days: list[int], units: list[float | None], files: list[str | None]) -> pl.DataFrame:
        n = len(days)
        rows = {
            "date": [date(2024, 6, d) for d in days],
            "store_id": ["001"] * n,
            "sku": [f"S{d}" for d in days],
            "units": units,
            "revenue": [2.0] * n,
            "on_hand": [None] * n,
            "promo": [True] * n,
            "_source_file": files,
            "_source_row": list(range(n)),
            "_loaded_at": [datetime(2024, 7, 1, tzinfo=UTC)] * n,
        }
        return pl.DataFrame(rows, schema=LAKE_STORE_SALES)

    # a sign broken, a null operand; one source file in the first part, two (and a null) in the second
    kept = [part([1, 2], [1.0, -1.0], ["a.csv"] * 2), part([29, 30], [None, 1.0], ["b.csv", None])]
    loaded: list[LoadedPart] = [
        ((2024, 6), rows, rows.select(key_code(STORE_SALES.key)).to_series()) for rows in kept
    ]
    memory = validation._InMemory({"store_sales": {(2024, 6): loaded}}, set())
    lake = LakePaths(tmp_path / "lake")
    df = validation._partition_rows(lake, STORE_SALES, (2024, 6), memory)
    assert df is not None
    # the parts are joined as they are, not copied into one piece
    assert df.get_column("units").n_chunks() == 2
    joined = pl.concat(kept).with_columns(
        pl.lit(date(2024, 6, 1)).alias("_partition_start"), pl.lit(date(2024, 6, 30)).alias("_partition_end")
    )
    expected = joined.with_columns(derived_columns(joined.schema))
    derived = [e.meta.output_name() for e in derived_columns(joined.schema)]
    assert {DAYS_FROM_START, DAYS_TO_END} <= set(derived)
    assert df.select(derived).equals(expected.select(derived))
    assert df[DAYS_FROM_START].to_list() == [0, 1, 28, 29] and df[DAYS_TO_END].to_list() == [29, 28, 1, 0]
    assert df[derived[0]].to_list() == [1, 0, None, 1]
    # references and the source file as categoricals of the same values (GX gets them encoded)
    for col in ("store_id", "sku", "_source_file"):
        assert df[col].dtype == pl.Categorical
        assert df[col].cast(pl.String).to_list() == joined[col].to_list()
    assert df[KEY_CODE].equals(joined.select(key_code(STORE_SALES.key)).to_series(), check_names=False)
