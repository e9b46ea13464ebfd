"""Ingest: idempotent re-runs, corrections, all-or-nothing commits under kills, one writer, privacy."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import filelock
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.lake.commit import CRASH_ENV, LakeLockedError, read_history, recover
from flows.lake.ingest import IngestReport, ingest_drop
from flows.lake.paths import LakePaths, partition_files, scan_fact
from flows.lake.validation import validate_lake
from tests.flows.lake.ingest_drops import ORDERS, SALES, SECRET, make_drop, settings, write

AS_OF = date(2024, 12, 31)
ROOT = Path(__file__).resolve().parents[3]
CHANGED = SALES.replace("2024-08-01,001,B2,1,2.0,5,yes", "2024-08-01,001,B2,2,4.0,5,yes")


def _load(drop: Path, lake: LakePaths, **ingest: object) -> IngestReport:
    return ingest_drop(drop, lake, settings(**ingest), as_of=AS_OF)


def _snapshot(lake: LakePaths) -> dict[str, bytes]:
    """Every published file's bytes (the _state folder aside)."""
    return {
        str(p.relative_to(lake.root)): p.read_bytes()
        for p in lake.root.rglob("*")
        if p.is_file() and not p.relative_to(lake.root).as_posix().startswith("_state")
    }


def _facts(lake: LakePaths, name: str) -> pl.DataFrame:
    key = ["date", "store_id", "sku"] if name == "store_sales" else ["order_id", "line_number"]
    return scan_fact(lake, name).collect().drop("_loaded_at").sort(key)


def test_same_drop_twice_adds_nothing(tmp_path: Path) -> None:
    drop, lake = make_drop(tmp_path / "drop"), LakePaths(tmp_path / "lake")
    first = _load(drop, lake)
    before = _snapshot(lake)
    second = _load(drop, lake)
    assert (
        first.tables["store_sales"]["rows_loaded"] == 4 and first.tables["online_orders"]["rows_loaded"] == 3
    )
    for name in ("store_sales", "online_orders"):
        counts = second.tables[name]
        assert counts["rows_loaded"] == 0 and counts["rows_duplicate"] == counts["rows_read"] > 0
    assert second.changed_partitions == {}
    assert _snapshot(lake) == before  # not a byte rewritten
    assert [f["sha256"] for f in first.files] == [f["sha256"] for f in second.files]
    assert len(read_history(lake)) == 2


def test_re_export_with_a_changed_value_is_a_correction(tmp_path: Path) -> None:
    lake = LakePaths(tmp_path / "lake")
    _load(make_drop(tmp_path / "d1"), lake)
    report = _load(make_drop(tmp_path / "d2", sales=CHANGED), lake)
    sales = report.tables["store_sales"]
    assert (sales["rows_loaded"], sales["rows_corrected"], sales["rows_duplicate"]) == (1, 1, 3)
    assert report.changed_partitions["store_sales"] == [(2024, 8)]
    units = _facts(lake, "store_sales").filter(pl.col("sku") == "B2")["units"].to_list()
    assert units == [2.0]  # the newest wins


def test_new_rows_are_appended_beside_the_partition_files_already_there(tmp_path: Path) -> None:
    lake = LakePaths(tmp_path / "lake")
    _load(make_drop(tmp_path / "d1"), lake)
    before = _snapshot(lake)
    more = SALES.splitlines()[0] + "\n2024-08-03,001,A1,1,1.5,,\n"
    report = _load(make_drop(tmp_path / "d2", sales=more), lake)
    assert report.tables["store_sales"]["rows_loaded"] == 1
    after = _snapshot(lake)
    assert {k: after[k] for k in before if "table=store_sales" in k} == {
        k: v for k, v in before.items() if "table=store_sales" in k
    }  # the files already there are not rewritten
    new = [lake.root / k for k in after if k not in before and k.startswith("table=store_sales")]
    assert len(new) == 1 and report.loaded_files["store_sales"] == new
    assert len(partition_files(lake, "store_sales", 2024, 8)) == 2
    assert _facts(lake, "store_sales").height == 5


def test_a_correction_rewrites_its_partition_as_one_file(tmp_path: Path) -> None:
    lake = LakePaths(tmp_path / "lake")
    _load(make_drop(tmp_path / "d1"), lake)
    _load(make_drop(tmp_path / "d1b", sales=SALES.splitlines()[0] + "\n2024-08-03,001,A1,1,1.5,,\n"), lake)
    assert len(partition_files(lake, "store_sales", 2024, 8)) == 2
    report = _load(make_drop(tmp_path / "d2", sales=CHANGED), lake)
    (only,) = partition_files(lake, "store_sales", 2024, 8)
    assert report.loaded_files["store_sales"] == [only]
    assert pl.read_parquet(only).height == 4  # three rows kept, one corrected
    assert len(partition_files(lake, "store_sales", 2024, 9)) == 1  # untouched


def test_later_file_in_a_load_wins_and_repeats_are_duplicates(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop")
    write(drop / "store_sales" / "pos_late.csv", CHANGED)
    lake = LakePaths(tmp_path / "lake")
    report = _load(drop, lake)
    late = next(f for f in report.files if f["path"] == "store_sales/pos_late.csv")
    assert (late["rows_loaded"], late["rows_corrected"], late["rows_duplicate"]) == (1, 1, 3)
    rows = _facts(lake, "store_sales").filter(pl.col("sku") == "B2")
    assert rows.select("units", "_source_file").rows() == [(2.0, "store_sales/pos_late.csv")]


def test_same_key_twice_in_one_file(tmp_path: Path) -> None:
    sales = SALES + "2024-08-01,001,A1,3,4.5,10,no\n" + "2024-08-02,002,A1,-2,-3.0,7,0\n"
    lake = LakePaths(tmp_path / "lake")
    report = _load(make_drop(tmp_path / "drop", sales=sales), lake)
    counts = report.files[-2]
    # row 5 repeats row 1 exactly (a duplicate); row 6 contradicts row 3 (both quarantined)
    got = tuple(counts[k] for k in ("rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined"))
    assert got == (6, 3, 1, 2)
    q = scan_fact(lake, "quarantine").collect().sort("row_number")
    assert q.select("row_number", "rule", "column").rows() == [
        (i, "duplicate key in file with other values", "date, store_id, sku") for i in (3, 6)
    ]
    assert report.quarantine_reasons == {"duplicate key in file with other values": 2}


def _crashing_load(drop: Path, lake: LakePaths, point: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from datetime import date; from pathlib import Path\n"
        "from flows.lake.ingest import ingest_drop; from flows.lake.paths import LakePaths\n"
        "from tests.flows.lake.ingest_drops import settings\n"
        f"ingest_drop(Path({str(drop)!r}), LakePaths(Path({str(lake.root)!r})), settings(),\n"
        "            as_of=date(2024, 12, 31))\n"
    )
    env = {**os.environ, CRASH_ENV: point, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("point", ["before_journal", "after_journal", "mid_moves", "mid_deletes"])
def test_a_killed_load_leaves_the_lake_before_or_after(tmp_path: Path, point: str) -> None:
    lake, done = LakePaths(tmp_path / "lake"), LakePaths(tmp_path / "done")
    first, second = (
        make_drop(tmp_path / "d1"),
        make_drop(tmp_path / "d2", sales=CHANGED + "2024-10-01,002,B2,1,2,,\n"),
    )
    for target in (lake, done):
        _load(first, target)
    _load(second, done)  # the load as it completes without a crash
    before = _snapshot(lake)
    result = _crashing_load(second, lake, point)
    assert result.returncode == 137, result.stderr
    if point == "before_journal":
        assert _snapshot(lake) == before  # byte-identical: nothing published
        assert recover(lake) == "discarded"
        assert _snapshot(lake) == before
    else:
        assert recover(lake) == "rolled forward"
        for name in ("store_sales", "online_orders"):
            assert_frame_equal(_facts(lake, name), _facts(done, name))
        assert len(read_history(lake)) == 2
    assert not lake.journal.exists() and not any(lake.staging.rglob("*"))


def test_concurrent_loads_take_turns(tmp_path: Path) -> None:
    lake = LakePaths(tmp_path / "lake")
    drops = [make_drop(tmp_path / "d1"), make_drop(tmp_path / "d2", sales=CHANGED)]
    errors: list[BaseException] = []

    def run(drop: Path) -> None:
        try:
            _load(drop, lake)
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in drops]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history = read_history(lake)
    assert len(history) == 2
    # whichever ran second saw the first's rows: 4 + 3 rows loaded once, one row loaded twice at most
    assert sum(h["tables"]["store_sales"]["rows_duplicate"] for h in history) == 3
    assert _facts(lake, "store_sales").height == 4
    assert not lake.journal.exists()


def test_a_held_lock_times_out_with_a_clear_error(tmp_path: Path) -> None:
    lake = LakePaths(tmp_path / "lake")
    lake.state.mkdir(parents=True)
    with filelock.FileLock(str(lake.lock_file)):
        with pytest.raises(LakeLockedError, match=r"another load holds the lake lock at .*waits up to 0 s"):
            _load(make_drop(tmp_path / "drop"), lake, lock_timeout_s=0)


def test_customer_id_never_reaches_the_lake(tmp_path: Path) -> None:
    planted = "CUST-SECRET-4711"
    bad_line = "o3,1,2024-08-30T08:00:00+02:00,NOPE,1,1.5,55401,CUST-SECRET-4711,ship,\n"  # quarantined
    lake = LakePaths(tmp_path / "lake")
    _load(make_drop(tmp_path / "drop", orders=ORDERS + bad_line), lake)
    for path in lake.root.rglob("*"):
        if path.is_file():
            assert planted.encode() not in path.read_bytes(), path
            if path.suffix == ".parquet":  # and not hidden by compression either
                df = pl.read_parquet(path)
                texts = df.select(pl.col(pl.String)).unpivot()["value"].drop_nulls()
                assert not texts.str.contains(planted, literal=True).any(), path
    orders = scan_fact(lake, "online_orders").collect().sort("order_id", "line_number")
    expected = hmac.new(SECRET.encode(), planted.encode(), hashlib.sha256).hexdigest()
    assert orders["customer_key"].to_list() == [expected, expected, None]
    assert "customer_id" not in orders.columns


def test_a_re_run_counts_its_quarantined_rows_but_does_not_store_them_twice(tmp_path: Path) -> None:
    bad = SALES.rstrip("\n") + "\n2024-08-02,999,B2,1,2.0,5,no\n"
    drop, lake = make_drop(tmp_path / "drop", sales=bad), LakePaths(tmp_path / "lake")
    first, second = _load(drop, lake), _load(drop, lake)
    for report in (first, second):
        assert report.tables["store_sales"]["rows_quarantined"] == 1
        assert report.quarantine_reasons == {"unknown store_id": 1}
    stored = scan_fact(lake, "quarantine").collect()
    assert stored.select("rule", "row_number").rows() == [("unknown store_id", 5)]


def test_parallel_reading_gives_the_same_load_as_one_file_at_a_time(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop")
    write(drop / "store_sales" / "pos_2.csv", CHANGED + "2024-08-03,001,A1,x,1.0,1,no\n")
    later = SALES.replace("2024-09-01", "2024-10-01") + "bad,001,A1,1,1,1,no\n"
    write(drop / "store_sales" / "pos_3.csv", later)
    write(drop / "online_orders" / "web_2.csv", ORDERS.replace("o1,", "o3,"))
    results = []
    for workers in (1, 4):
        lake = LakePaths(tmp_path / f"lake{workers}")
        report = _load(drop, lake, read_workers=workers)
        quarantine = scan_fact(lake, "quarantine").collect().drop("quarantined_at")
        facts = [_facts(lake, name) for name in ("store_sales", "online_orders")]
        results.append((report, quarantine.sort("file", "row_number"), facts))
    (one, q1, f1), (many, q4, f4) = results
    for part in ("tables", "files", "quarantine_reasons"):
        assert getattr(one, part) == getattr(many, part)
    assert one.tables["store_sales"]["rows_quarantined"] == 2
    assert_frame_equal(q1, q4)
    for a, b in zip(f1, f4, strict=True):
        assert_frame_equal(a, b)


MOVED = ORDERS.replace("o1,1,2024-08-29T23:03:11-05:00", "o1,1,2024-09-02T10:00:00-05:00")


def _order_lines(lake: LakePaths) -> list[tuple[str, int, date]]:
    return _facts(lake, "online_orders").select("order_id", "line_number", "order_date").rows()


def test_a_correction_that_moves_an_order_line_to_another_month_leaves_no_old_version(
    tmp_path: Path,
) -> None:
    lake = LakePaths(tmp_path / "lake")
    _load(make_drop(tmp_path / "d1"), lake)
    report = _load(make_drop(tmp_path / "d2", orders=MOVED), lake)
    orders = report.tables["online_orders"]
    assert (orders["rows_loaded"], orders["rows_corrected"], orders["rows_duplicate"]) == (1, 1, 2)
    assert _order_lines(lake) == [
        ("o1", 1, date(2024, 9, 2)),
        ("o1", 2, date(2024, 8, 29)),
        ("o2", 1, date(2024, 8, 30)),
    ]
    assert report.changed_partitions["online_orders"] == [(2024, 8), (2024, 9)]
    before = _snapshot(lake)
    again = _load(make_drop(tmp_path / "d3", orders=MOVED), lake)
    assert again.tables["online_orders"]["rows_loaded"] == 0 and again.changed_partitions == {}
    assert _snapshot(lake) == before


def test_within_one_load_the_later_file_moves_the_line(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop")
    write(drop / "online_orders" / "web_2.csv", MOVED)
    lake = LakePaths(tmp_path / "lake")
    report = _load(drop, lake)
    first, second = (f for f in report.files if f["table"] == "online_orders")
    assert (first["rows_loaded"], first["rows_corrected"]) == (3, 0)
    assert (second["rows_loaded"], second["rows_corrected"], second["rows_duplicate"]) == (1, 1, 2)
    assert ("o1", 1, date(2024, 9, 2)) in _order_lines(lake) and len(_order_lines(lake)) == 3


def test_a_month_whose_lines_all_moved_is_left_empty(tmp_path: Path) -> None:
    lake = LakePaths(tmp_path / "lake")
    _load(make_drop(tmp_path / "d1"), lake)
    all_moved = ORDERS.replace("2024-08-29T23:03:11", "2024-10-01T09:00:00").replace(
        "2024-08-30T08:00:00", "2024-10-02T09:00:00"
    )
    report = _load(make_drop(tmp_path / "d2", orders=all_moved), lake)
    assert report.tables["online_orders"]["rows_corrected"] == 3
    assert {d.month for *_, d in _order_lines(lake)} == {10}
    assert (2024, 8) in report.changed_partitions["online_orders"]
    summary = validate_lake(lake, as_of=AS_OF, partitions=report.changed_partitions)
    assert summary.success, summary.failure_lines()
