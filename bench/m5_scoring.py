"""Scoring of the M5 forecast bench (bench/m5_subset.py, bench/m5_tweedie.py): the rolling-origin
windows, M5's WRMSSE at the item x store level, p10-p90 coverage, and the printed table.

Metric, as M5 defines it (item x store level): per series, RMSSE = sqrt(mean over the h days of
(y - f)^2 / scale), scale = mean squared one-step naive error (y_t - y_{t-1})^2 of the series from its
first sale to the cutoff; WRMSSE = sum of RMSSE weighted by each series' revenue (units x sell_price)
in the 28 days up to the cutoff. Coverage: share of series-days with p10 <= y <= p90.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

KEYS = ("store_id", "sku")
WEIGHT_DAYS = 28
QUANTILE_SUFFIXES = ("_p10", "_p90")


@dataclass(frozen=True)
class Fold:
    """One rolling-origin window: fit on days <= cutoff, forecast cutoff+1 .. cutoff+h."""

    cutoff: date
    h: int

    @property
    def end(self) -> date:
        return self.cutoff + timedelta(days=self.h)


def folds(last: date, *, n_windows: int, h: int) -> list[Fold]:
    """Return ``n_windows`` consecutive windows of ``h`` days, oldest first, the last ending on ``last``."""
    return [Fold(last - timedelta(days=h * k), h) for k in range(n_windows, 0, -1)]


def wrmsse_table(
    panel: pl.DataFrame, revenue: pl.DataFrame, forecasts: pl.DataFrame, fold: Fold, models: list[str]
) -> dict[str, float]:
    """Return {model: WRMSSE} for one fold; ``forecasts`` holds store_id, sku, date and one column
    per model for the fold's days. Series without a forecast from every model are an error."""
    hist = panel.filter(pl.col("date") <= fold.cutoff)
    scale = (
        hist.sort(*KEYS, "date")
        .group_by(KEYS)
        .agg((pl.col("y").diff() ** 2).mean().alias("scale"))
        .filter(pl.col("scale") > 0)
    )
    weights = (
        revenue.filter(
            pl.col("date") <= fold.cutoff, pl.col("date") > fold.cutoff - timedelta(days=WEIGHT_DAYS)
        )
        .group_by(KEYS)
        .agg(pl.col("revenue").sum().alias("weight"))
    )
    actual = panel.filter(pl.col("date") > fold.cutoff, pl.col("date") <= fold.end).select(*KEYS, "date", "y")
    series = scale.join(weights, on=KEYS, how="left").with_columns(pl.col("weight").fill_null(0.0))
    scored = actual.join(series, on=KEYS, how="inner").join(forecasts, on=[*KEYS, "date"], how="left")
    missing = {m: scored.get_column(m).null_count() for m in models}
    if any(missing.values()):
        raise ValueError(f"fold {fold.cutoff}: series-days without a forecast {missing}")
    per = scored.group_by(KEYS).agg(
        pl.col("weight").first(),
        pl.col("scale").first(),
        *(((pl.col(m) - pl.col("y")) ** 2).mean().alias(m) for m in models),
    )
    total = per.get_column("weight").sum()
    weight, scale_ = per.get_column("weight"), per.get_column("scale")
    return {m: float((weight * (per.get_column(m) / scale_).sqrt()).sum() / total) for m in models}


def coverage(
    panel: pl.DataFrame, forecasts: pl.DataFrame, fold: Fold, model: str, days: tuple[int, int] | None = None
) -> float | None:
    """Return the share of the fold's series-days with p10 <= y <= p90 for ``model`` (None without),
    over the days ``days`` (first, last; 1 = the day after the cutoff) or the whole window."""
    lo, hi = (f"{model}{s}" for s in QUANTILE_SUFFIXES)
    if lo not in forecasts.columns:
        return None
    first, last = (fold.cutoff + timedelta(days=d) for d in days) if days else (None, fold.end)
    actual = panel.filter(pl.col("date") > fold.cutoff, pl.col("date") <= last)
    if first is not None:
        actual = actual.filter(pl.col("date") >= first)
    both = actual.join(forecasts, on=[*KEYS, "date"], how="inner")
    inside = (pl.col("y") >= pl.col(lo)) & (pl.col("y") <= pl.col(hi))
    return float(both.select(inside.mean()).item())


def report(
    panel: pl.DataFrame,
    revenue: pl.DataFrame,
    fold_list: list[Fold],
    results: dict[str, tuple[pl.DataFrame, dict]],
) -> None:
    """Print per-fold and overall WRMSSE per model, coverage, and each engine's wall time and memory."""
    rows = []
    for engine, (fc, _) in results.items():
        models = [
            c for c in fc.columns if c not in (*KEYS, "date", "cutoff") and not c.endswith(QUANTILE_SUFFIXES)
        ]
        for fold in fold_list:
            part = fc.filter(pl.col("cutoff") == fold.cutoff)
            scores = wrmsse_table(panel, revenue, part, fold, models)
            for m in models:
                rows.append(
                    {
                        "engine": engine,
                        "model": m,
                        "cutoff": fold.cutoff,
                        "wrmsse": scores[m],
                        "coverage": coverage(panel, part, fold, m),
                        "coverage_days_1_7": coverage(panel, part, fold, m, (1, 7)),
                        "coverage_days_8_on": coverage(panel, part, fold, m, (8, fold.h)),
                    }
                )
    table = pl.DataFrame(rows)
    wide = table.pivot(on="cutoff", index=["engine", "model"], values="wrmsse")
    overall = table.group_by("engine", "model").agg(
        pl.col("wrmsse").mean().alias("mean"),
        pl.col("coverage").mean().alias("p10_p90_coverage"),
        pl.col("coverage_days_1_7").mean().alias("coverage_days_1_7"),
        pl.col("coverage_days_8_on").mean().alias("coverage_days_8_on"),
    )
    best_base = overall.filter(pl.col("engine") == "baselines").get_column("mean").min()
    summary = wide.join(overall, on=["engine", "model"]).sort("mean")
    if best_base is not None:
        summary = summary.with_columns((1 - pl.col("mean") / best_base).alias("gain_vs_best_baseline"))
    with pl.Config(tbl_rows=50, tbl_cols=20, float_precision=3, tbl_width_chars=200):
        print("item x store WRMSSE per fold (column = cutoff) and mean over folds")
        print(summary)
    for engine, (_, info) in results.items():
        split = ", ".join(
            f"{k} {v:.1f}" for k, v in info.items() if k.endswith("_s") and k not in ("wall_s", "cpu_s")
        )
        print(
            f"{engine:12s} wall {info['wall_s']:8.1f} s   CPU {info.get('cpu_s', float('nan')):8.1f} s   "
            f"peak memory {info['peak_mb']:8.0f} MB" + (f"   ({split})" if split else "")
        )
