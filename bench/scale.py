"""The whole job on demo drops of growing size, up to M5 scale: wall time per stage and peak memory.

    .venv/bin/python bench/scale.py [--stores 9 18 36 72] [--skus 420] [--days 1941] [--work DIR]

Each size is a demo world of STORES x SKUS x DAYS (72 x 420 x 1,941 is the M5 competition's shape,
`--size m5`); only the store count grows, so the rows grow in proportion and the growth of each stage
with rows reads straight off the table. Each run is a fresh subprocess (its own peak memory: VmHWM),
the drop generated once and kept under --work, the lake and outputs made afresh. Stage times are the
flow's own (run.json ``timings_s``); the growth exponent b in time ~ rows^b is taken between
consecutive sizes (1 = linear).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "validate", "train", "mine", "forecast", "recommend", "report")

CHILD = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.memory import peak_rss_mb
from flows.pipeline import localshelf_run
from flows.runners import Runner, RunnerChoice, with_runner
root = Path({work!r})
started = time.perf_counter()
flow = with_runner(localshelf_run, RunnerChoice(Runner({runner!r})))
flow(drop=root / "drop", out=root / "out", lake=root / "lake")
info = json.loads((root / "out" / "run.json").read_text())
print("RESULT " + json.dumps({{"wall_s": time.perf_counter() - started, "peak_mb": peak_rss_mb(),
      "timings_s": info["timings_s"], "train_rows": info["model"].get("train_rows")}}))
"""


def _drop(work: Path, size: str, seed: int) -> tuple[Path, int]:
    """Generate the demo drop of ``size`` under ``work`` once; return its folder and store-sales rows."""
    from flows.demo.generate import generate_demo

    root = work / size
    truth = root / "truth.json"
    if not truth.exists():
        started = time.perf_counter()
        generate_demo(root, size=size, seed=seed)
        print(f"{size}: generated in {time.perf_counter() - started:.0f} s", flush=True)
    return root, int(json.loads(truth.read_text())["counts"]["store_sales_rows"])


def _run(root: Path, runner: str, memory_gb: float) -> dict:
    """Run the job on root/drop in a fresh process; return its RESULT line."""
    for sub in ("lake", "out"):
        shutil.rmtree(root / sub, ignore_errors=True)
    env = {
        **os.environ,
        "LOCALSHELF_HMAC_SECRET": (root / "secret.txt").read_text().strip(),
        "LOCALSHELF_SCALE__MEMORY_GB": str(memory_gb),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",  # a busy machine starts it slowly
    }
    code = CHILD.format(root=str(ROOT), work=str(root), runner=runner)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _growth(rows: list[int], values: list[float]) -> list[str]:
    """Exponent b of value ~ rows^b between each size and the one before ("" for the first)."""
    out = [""]
    for i in range(1, len(rows)):
        if values[i - 1] > 0 and values[i] > 0 and rows[i] != rows[i - 1]:
            out.append(f"{math.log(values[i] / values[i - 1]) / math.log(rows[i] / rows[i - 1]):.2f}")
        else:
            out.append("")
    return out


def table(results: list[dict]) -> str:
    """Return the markdown table of the results (one row per size) with growth exponents."""
    rows = [r["rows"] for r in results]
    head = ["size", "store-sales rows", *STAGES, "total s", "b(total)", "peak GiB", "b(peak)"]
    totals = [sum(r["timings_s"].get(s, 0.0) for s in STAGES) for r in results]
    peaks = [r["peak_mb"] / 1024 for r in results]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, total, peak, bt, bp in zip(
        results, totals, peaks, _growth(rows, totals), _growth(rows, peaks), strict=True
    ):
        stages = [f"{r['timings_s'].get(s, 0.0):.0f}" for s in STAGES]
        cells = [r["size"], f"{r['rows']:,}", *stages, f"{total:.0f}", bt, f"{peak:.1f}", bp]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", type=int, nargs="+", default=[9, 18, 36, 72])
    parser.add_argument("--skus", type=int, default=420)
    parser.add_argument("--days", type=int, default=1941)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runner", choices=("local", "dask"), default="local")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="settings.scale.memory_gb")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "_work" / "scale")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from flows.demo.catalog import scaled_size

    results = []
    for stores in args.stores:
        size = scaled_size(stores, args.skus, args.days)
        root, rows = _drop(args.work, size, args.seed)
        result = {"size": size, "rows": rows, **_run(root, args.runner, args.memory_gb)}
        results.append(result)
        print(f"{size}: {json.dumps(result)}", flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
