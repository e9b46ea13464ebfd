"""localshelf's demand forecast against statsforecast baselines and mlforecast + LightGBM on real M5 data.

    .venv/bin/python bench/m5_subset.py [--data DIR] [--folds 4] [--h 28] [--engines a,b,c] [--threads 2]

Rolling origin: ``--folds`` windows of ``--h`` days, the last ending on the subset's last date; each
engine is fitted per window on the days up to its cutoff only and forecasts the ``h`` days after it,
for the same item x store series (those with a sale by the cutoff) and the same days.

Engines, each in its own child process (so wall time and peak memory are its own):
- ``baselines``: statsforecast SeasonalNaive(7), WindowAverage(28), SimpleExponentialSmoothingOptimized.
- ``mlforecast``: Nixtla mlforecast + LightGBM (Tweedie), recursive: lags 1-7, 14, 21, 28, rolling means
  over 7 and 28 days ending 1, 7 and 28 days back, day of week / month / day of month, the store's
  state's SNAP flag, chain-wide event flags, the shelf price; store, item, department, category and
  state as categoricals.
- ``localshelf``: the project's own pipeline: the subset written as a drop (bench/m5_drop.py), loaded
  into a lake by the project's ingest, then per window ``fit_demand_model`` + ``forecast_demand`` on
  the lake's tables cut at the cutoff.

Both learners see the same information over the horizon: the calendar, SNAP days and events (known in
advance) and the last shelf price before the cutoff (carried forward; M5 itself handed out the future
prices, a planner does not have them).

Metric (M5's WRMSSE at the item x store level) and p10-p90 coverage: bench/m5_scoring.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.m5_drop import DEFAULT_DATA, M5Frames, priced_sales, read_m5  # noqa: E402
from bench.m5_scoring import KEYS, Fold, folds, report  # noqa: E402
from bench.memory import peak_rss_mb  # noqa: E402

ENGINES = ("baselines", "mlforecast", "localshelf")


# ---------------------------------------------------------------------------------------------------
# The M5 frames every engine starts from


def m5_panel(m5: M5Frames) -> pl.DataFrame:
    """Return store_id, sku, date, y, sell_price, state, dept, category per series and day, from the
    series' first sale on (M5 trims leading zeros the same way)."""
    weeks = m5.calendar.select("date", "wm_yr_wk")
    panel = (
        m5.sales.join(weeks, on="date", how="left")
        .join(m5.sell_prices, on=["store_id", "item_id", "wm_yr_wk"], how="left")
        .select(
            "store_id",
            pl.col("item_id").alias("sku"),
            "date",
            pl.col("units").cast(pl.Float64).alias("y"),
            "sell_price",
            pl.col("state_id").alias("state"),
            pl.col("dept_id").alias("dept"),
            pl.col("cat_id").alias("category"),
        )
        .sort(*KEYS, "date")
    )
    started = (pl.col("y") > 0).cast(pl.Int32).cum_sum().over(KEYS, order_by="date") > 0
    return panel.filter(started)


def calendar_exog(m5: M5Frames) -> pl.DataFrame:
    """Return date, state, snap, event_national, event_religious, event_cultural, event_sporting:
    what the calendar says about a day in a state (known in advance)."""
    cal = m5.calendar
    flags = [
        pl.any_horizontal((pl.col(f"event_type_{k}") == kind).fill_null(False) for k in (1, 2))
        .cast(pl.Int8)
        .alias(f"event_{kind.lower()}")
        for kind in ("National", "Religious", "Cultural", "Sporting")
    ]
    wide = cal.select("date", "snap_CA", "snap_TX", "snap_WI", *flags)
    return wide.unpivot(
        index=["date", *(c for c in wide.columns if c.startswith("event_"))],
        on=["snap_CA", "snap_TX", "snap_WI"],
        variable_name="state",
        value_name="snap",
    ).with_columns(pl.col("state").str.strip_prefix("snap_"), pl.col("snap").cast(pl.Int8))


# ---------------------------------------------------------------------------------------------------
# Engines (child processes): each returns long forecasts with a `cutoff` column


def run_baselines(m5: M5Frames, fold_list: list[Fold], threads: int) -> pl.DataFrame:
    """statsforecast SeasonalNaive(7), WindowAverage(28) and optimized simple exponential smoothing."""
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive, SimpleExponentialSmoothingOptimized, WindowAverage

    panel = m5_panel(m5)
    frames = []
    for fold in fold_list:
        df = panel.filter(pl.col("date") <= fold.cutoff).select(
            pl.concat_str("store_id", "sku", separator="|").alias("unique_id"),
            pl.col("date").alias("ds"),
            "y",
        )
        models = [SeasonalNaive(7), WindowAverage(28), SimpleExponentialSmoothingOptimized()]
        sf = StatsForecast(
            models=models,
            freq="1d",
            n_jobs=threads,
        )
        fc = sf.forecast(df=df, h=fold.h)
        _progress("baselines", fold)
        frames.append(_split_id(fc).with_columns(pl.lit(fold.cutoff).alias("cutoff")))
    return pl.concat(frames).rename(
        {"SeasonalNaive": "seasonal_naive_7", "WindowAverage": "window_average_28", "SESOpt": "ses"}
    )


def _split_id(fc: pl.DataFrame) -> pl.DataFrame:
    """unique_id "store|sku", ds -> store_id, sku, date."""
    return (
        fc.with_columns(pl.col("unique_id").str.split_exact("|", 1).struct.rename_fields(["store_id", "sku"]))
        .unnest("unique_id")
        .rename({"ds": "date"})
    )


MLF_LAGS = (1, 2, 3, 4, 5, 6, 7, 14, 21, 28)
MLF_PARAMS = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.1,
    "n_estimators": 600,
    "learning_rate": 0.05,
    "num_leaves": 63,
    "min_child_samples": 100,
    "colsample_bytree": 0.8,
    "subsample": 0.8,
    "subsample_freq": 1,
    "max_bin": 127,
    "verbose": -1,
    "random_state": 7,
}
CATEGORICAL_IDS = ("store_id", "sku", "dept", "category", "state")


def mlforecast_frames(m5: M5Frames, fold: Fold) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (train, future exogenous) frames in mlforecast's long format for one fold: unique_id,
    ds, y, the categorical ids as integer codes, snap, event flags, sell_price (the last known price,
    carried forward over the horizon and over unpriced history days)."""
    panel = (
        m5_panel(m5)
        .join(calendar_exog(m5), on=["date", "state"], how="left")
        .with_columns(
            pl.concat_str("store_id", "sku", separator="|").alias("unique_id"),
            *(pl.col(c).rank("dense").cast(pl.Int32).alias(f"{c}_code") for c in CATEGORICAL_IDS),
        )
    )
    hist = panel.filter(pl.col("date") <= fold.cutoff).with_columns(
        pl.col("sell_price").forward_fill().backward_fill().over("unique_id", order_by="date")
    )
    last_price = hist.group_by("unique_id").agg(pl.col("sell_price").sort_by("date").last())
    exog = [c for c in panel.columns if c.startswith("event_")] + ["snap"]
    future = (
        panel.filter(pl.col("date") > fold.cutoff, pl.col("date") <= fold.end)
        .drop("sell_price")
        .join(last_price, on="unique_id", how="left")
    )
    statics = [f"{c}_code" for c in CATEGORICAL_IDS]
    train = hist.select("unique_id", pl.col("date").alias("ds"), "y", *statics, *exog, "sell_price")
    x_df = future.select("unique_id", pl.col("date").alias("ds"), *exog, "sell_price")
    return train, x_df


def run_mlforecast(m5: M5Frames, fold_list: list[Fold], threads: int) -> pl.DataFrame:
    """Nixtla mlforecast + LightGBM (Tweedie, recursive), refit per fold."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    statics = [f"{c}_code" for c in CATEGORICAL_IDS]
    frames = []
    for fold in fold_list:
        train, x_df = mlforecast_frames(m5, fold)
        model = lgb.LGBMRegressor(**MLF_PARAMS, n_jobs=threads)
        mlf = MLForecast(
            models={"mlforecast": model},
            freq="1d",
            lags=list(MLF_LAGS),
            lag_transforms={
                1: [RollingMean(7), RollingMean(28)],
                7: [RollingMean(7), RollingMean(28)],
                28: [RollingMean(7), RollingMean(28)],
            },
            date_features=["weekday", "month", "day"],
            num_threads=threads,
        )
        mlf.fit(train, static_features=statics)
        fc = mlf.predict(h=fold.h, X_df=x_df)
        _progress("mlforecast", fold)
        frames.append(
            _split_id(fc).with_columns(
                pl.col("mlforecast").clip(lower_bound=0.0), pl.lit(fold.cutoff).alias("cutoff")
            )
        )
    return pl.concat(frames)


def run_localshelf(m5: M5Frames, fold_list: list[Fold], threads: int) -> pl.DataFrame:
    """The project's demand model through its public functions: drop -> lake (not timed as forecast
    stage: ``lake_s``), then per fold fit + forecast on the lake's tables cut at the cutoff."""
    from dataclasses import replace

    from bench.m5_drop import write_m5_drop
    from flows.lake.ingest import ingest_drop
    from flows.lake.paths import LakePaths, load_tables
    from flows.settings import load_settings
    from models.demand import fit_demand_model, forecast_demand

    started = time.perf_counter()
    settings = load_settings(horizon=max(f.h for f in fold_list), num_threads=threads)
    with tempfile.TemporaryDirectory(prefix="m5_lake_") as tmp:
        first = m5.sales.get_column("date").min()
        drop = write_m5_drop(Path(tmp) / "drop", data=_DATA[0], start=first)
        lake = LakePaths(Path(tmp) / "lake")
        ingest_drop(drop.path, lake, settings)
        tables = load_tables(lake)
        tables = replace(tables, store_sales=tables.store_sales.collect().lazy())
        STAGE_S["lake_s"] = time.perf_counter() - started
        starts = m5_panel(m5).group_by(KEYS).agg(pl.col("date").min().alias("first"))
        frames = []
        for fold in fold_list:
            cut = replace(tables, store_sales=tables.store_sales.filter(pl.col("date") <= fold.cutoff))
            pairs = starts.filter(pl.col("first") <= fold.cutoff).select(*KEYS)
            model = fit_demand_model(cut, as_of=fold.cutoff, settings=settings.demand())
            fc = forecast_demand(model, cut, pairs, horizon=fold.h)
            _progress("localshelf", fold, rounds=[int(b.booster.num_trees()) for b in model.blocks])
            frames.append(
                fc.select(
                    *KEYS,
                    "date",
                    pl.col("units").alias("localshelf"),
                    pl.col("p10").alias("localshelf_p10"),
                    pl.col("p90").alias("localshelf_p90"),
                    pl.lit(fold.cutoff).alias("cutoff"),
                )
            )
    STAGE_S["forecast_s"] = time.perf_counter() - started - STAGE_S["lake_s"]
    return pl.concat(frames)


_DATA: list[Path] = [DEFAULT_DATA]  # the child's --data (the localshelf engine writes its drop from it)
STAGE_S: dict[str, float] = {}  # an engine's own split of its wall time, reported beside it


RUNNERS: dict[str, Callable[[M5Frames, list[Fold], int], pl.DataFrame]] = {
    "baselines": run_baselines,
    "mlforecast": run_mlforecast,
    "localshelf": run_localshelf,
}


def _progress(engine: str, fold: Fold, **extra: object) -> None:
    """One line per finished fold on stderr (a long run on a crowded machine shows where it is)."""
    more = " ".join(f"{k}={v}" for k, v in extra.items())
    print(
        f"{engine}: fold {fold.cutoff} done, CPU {_cpu_seconds():.0f} s {more}", file=sys.stderr, flush=True
    )


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children: on a shared machine a
    steadier measure of the work done than wall time."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_engine(
    name: str, data: Path, n_windows: int, h: int, threads: int, out: Path, history_days: int = 0
) -> None:
    """Child: run one engine over all folds; writes OUT.parquet (forecasts) and OUT.json (time, memory)."""
    _DATA[0] = data
    m5 = read_m5(data)
    last = m5.sales.get_column("date").max()
    if history_days:  # a quick look: every engine sees only this many days before the first cutoff
        first_cutoff = folds(last, n_windows=n_windows, h=h)[0].cutoff
        m5 = read_m5(data, start=first_cutoff - timedelta(days=history_days - 1))
    started = time.perf_counter()
    fc = RUNNERS[name](m5, folds(last, n_windows=n_windows, h=h), threads)
    wall = time.perf_counter() - started
    fc.write_parquet(out.with_suffix(".parquet"))
    info = {"wall_s": wall, "cpu_s": _cpu_seconds(), "peak_mb": peak_rss_mb(), **STAGE_S}
    out.with_suffix(".json").write_text(json.dumps(info))


# ---------------------------------------------------------------------------------------------------
# Parent: run every engine in a child, score, print


def _command(name: str, args: argparse.Namespace, work: Path) -> list[str]:
    cmd = [sys.executable, __file__, "--child", name, "--out", str(work / name), "--data", str(args.data)]
    cmd += ["--folds", str(args.folds), "--h", str(args.h), "--threads", str(args.threads)]
    return cmd + ["--history-days", str(args.history_days)]


def _run_children(
    engines: list[str], args: argparse.Namespace, work: Path
) -> dict[str, tuple[pl.DataFrame, dict]]:
    """Run each engine's child, one after the other (``--parallel``: all at once, for a crowded
    machine where only CPU seconds compare), and return its forecasts and measurements."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if args.parallel:
        procs = [subprocess.Popen(_command(e, args, work), env=env) for e in engines]
        if any(p.wait() != 0 for p in procs):
            raise RuntimeError("an engine failed (see its output above)")
    else:
        for e in engines:
            subprocess.run(_command(e, args, work), check=True, env=env)
    return _read(engines, work)


def _read(engines: list[str], work: Path) -> dict[str, tuple[pl.DataFrame, dict]]:
    """Each engine's forecasts (work/ENGINE.parquet) and measurements (work/ENGINE.json)."""
    return {
        e: (
            pl.read_parquet((work / e).with_suffix(".parquet")),
            json.loads((work / e).with_suffix(".json").read_text()),
        )
        for e in engines
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--h", type=int, default=28)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--history-days", type=int, default=0, help="days before the first cutoff each engine sees (0: all)"
    )
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--parallel", action="store_true", help="run the engines at the same time")
    parser.add_argument("--work", type=Path, help="keep each engine's forecasts and measurements here")
    parser.add_argument("--score-only", action="store_true", help="score the engines' outputs in --work")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_engine(args.child, args.data, args.folds, args.h, args.threads, args.out, args.history_days)
        return 0
    m5 = read_m5(args.data)
    panel = m5_panel(m5)
    revenue = priced_sales(m5).select(*KEYS, "date", "revenue")
    fold_list = folds(panel.get_column("date").max(), n_windows=args.folds, h=args.h)
    engines = [e for e in args.engines.split(",") if e]
    if args.work is not None:  # kept: --score-only reads engines' outputs from an earlier run
        args.work.mkdir(parents=True, exist_ok=True)
        results = _read(engines, args.work) if args.score_only else _run_children(engines, args, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="m5_subset_") as tmp:
            results = _run_children(engines, args, Path(tmp))
    report(panel, revenue, fold_list, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
