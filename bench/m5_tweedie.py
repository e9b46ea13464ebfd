"""The Tweedie variance power of localshelf's demand model, chosen by backtest on the M5 subset.

    .venv/bin/python bench/m5_tweedie.py [--powers 1.1,1.2,1.3,1.5] [--folds 4] [--threads 1] [--parallel]

Runs bench/m5_subset.py's ``localshelf`` engine once per power (each a child process with
``LOCALSHELF_MODEL__TWEEDIE_VARIANCE_POWER`` set, every other setting the default) on the same
rolling-origin windows, and prints bench/m5_subset.py's table: item x store WRMSSE per window and the
mean, p10-p90 coverage, and each run's wall time, CPU seconds and peak memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.m5_drop import DEFAULT_DATA, priced_sales, read_m5  # noqa: E402
from bench.m5_scoring import KEYS, QUANTILE_SUFFIXES, folds, report  # noqa: E402
from bench.m5_subset import _command, _read, m5_panel  # noqa: E402

POWER_ENV = "LOCALSHELF_MODEL__TWEEDIE_VARIANCE_POWER"


def label(power: str) -> str:
    """The run's name in the table and its output files: localshelf_tweedie_1_2 (no dot: the child's
    files are named by suffix, and 1.1 / 1.3 would all have become localshelf_tweedie_1.parquet)."""
    return f"localshelf_tweedie_{power.replace('.', '_')}"


def run_powers(
    powers: list[str], args: argparse.Namespace, work: Path
) -> dict[str, tuple[pl.DataFrame, dict]]:
    """Run the localshelf child once per power (``--parallel``: all at once) and return each run's
    forecasts (columns renamed to its label) and measurements."""
    procs = []
    for p in powers:
        env = {**os.environ, "PYTHONPATH": str(ROOT), POWER_ENV: p}
        cmd = _command("localshelf", args, work)
        cmd[cmd.index("--out") + 1] = str(work / label(p))
        proc = subprocess.Popen(cmd, env=env)
        if not args.parallel and proc.wait() != 0:
            raise RuntimeError(f"localshelf with Tweedie power {p} failed (see its output above)")
        procs.append(proc)
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("a localshelf run failed (see its output above)")
    results = _read([label(p) for p in powers], work)
    renamed = {}
    for name, (fc, info) in results.items():
        cols = {"localshelf": name} | {f"localshelf{s}": f"{name}{s}" for s in QUANTILE_SUFFIXES}
        renamed[name] = (fc.rename({k: v for k, v in cols.items() if k in fc.columns}), info)
    return renamed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--powers", default="1.1,1.2,1.3,1.5")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--h", type=int, default=28)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--history-days", type=int, default=0)
    parser.add_argument("--parallel", action="store_true", help="run the powers at the same time")
    args = parser.parse_args(argv)
    powers = [p.strip() for p in args.powers.split(",") if p.strip()]
    for p in powers:
        if not 1 < float(p) < 2:
            parser.error(f"Tweedie power {p} is outside (1, 2)")
    m5 = read_m5(args.data)
    panel = m5_panel(m5)
    revenue = priced_sales(m5).select(*KEYS, "date", "revenue")
    last = panel.get_column("date").max()
    assert isinstance(last, date)
    fold_list = folds(last, n_windows=args.folds, h=args.h)
    with tempfile.TemporaryDirectory(prefix="m5_tweedie_") as tmp:
        results = run_powers(powers, args, Path(tmp))
    report(panel, revenue, fold_list, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
