"""Are two runs' outputs the same? Compares every output-contract table of two output folders.

Used to show that a refactoring changed no result: run the same demo (same size, same seed) before and
after, then ``python bench/compare_outputs.py BEFORE/out AFTER/out``. Tables are compared row for row
after sorting by all columns (a floating-point difference up to ``--rtol`` counts as equal); run.json
is compared on what it counts (tables, files, quarantine reasons, as-of date, horizon), not on timings or
timestamps. Exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

TABLES = ("forecast", "patterns", "assortment", "prestock")
RUN_KEYS = ("as_of", "horizon", "tables", "quarantine_reasons")


def _table(folder: Path, name: str) -> pl.DataFrame | None:
    path = folder / f"{name}.parquet"
    if not path.exists():
        return None
    df = pl.read_parquet(path)
    return df.sort(df.columns, nulls_last=True)


def compare(before: Path, after: Path, *, rtol: float) -> list[str]:
    """Return one line per difference between the two output folders (empty when they agree)."""
    problems: list[str] = []
    for name in TABLES:
        a, b = _table(before, name), _table(after, name)
        if a is None or b is None:
            if (a is None) != (b is None):
                problems.append(f"{name}: present in only one folder")
            continue
        try:
            assert_frame_equal(a, b, rel_tol=rtol, check_column_order=False)
            print(f"{name}: {a.height:,} rows, equal")
        except AssertionError as exc:
            problems.append(f"{name}: {str(exc).splitlines()[0]}")
    ra = json.loads((before / "run.json").read_text())
    rb = json.loads((after / "run.json").read_text())
    for key in RUN_KEYS:
        if ra.get(key) != rb.get(key):
            problems.append(f"run.json {key}: {ra.get(key)!r} != {rb.get(key)!r}")
    files_a = sorted((f["path"], f["rows_read"], f["rows_loaded"]) for f in ra.get("files", []))
    files_b = sorted((f["path"], f["rows_read"], f["rows_loaded"]) for f in rb.get("files", []))
    if files_a != files_b:
        problems.append("run.json files: per-file counts differ")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rtol", type=float, default=1e-9)
    args = parser.parse_args()
    problems = compare(args.before, args.after, rtol=args.rtol)
    for line in problems:
        print("DIFFERS", line)
    print("outputs equal" if not problems else f"{len(problems)} differences")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
