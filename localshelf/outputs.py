"""The output folder of a run (output contract): names and column sets, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

FORECAST_COLUMNS = pl.Schema(
    {
        "store_id": pl.String,
        "sku": pl.String,
        "date": pl.Date,
        "units": pl.Float64,
        "p10": pl.Float64,
        "p90": pl.Float64,
    }
)
PATTERN_COLUMNS = pl.Schema(
    {
        "kind": pl.String,
        "region": pl.String,
        "sku": pl.String,
        "category": pl.String,
        "event_type": pl.String,
        "lift": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "support": pl.Int64,
        "q_value": pl.Float64,
        "peak_offset_days": pl.Int64,
        "explanation": pl.String,
    }
)
ASSORTMENT_COLUMNS = pl.Schema(
    {
        "store_id": pl.String,
        "sku": pl.String,
        "category": pl.String,
        "action": pl.String,
        "expected_weekly_units": pl.Float64,
        "expected_weekly_revenue": pl.Float64,
        "reason": pl.String,
    }
)
PRESTOCK_COLUMNS = pl.Schema(
    {
        "event_type": pl.String,
        "region": pl.String,
        "store_id": pl.String,
        "sku": pl.String,
        "baseline_units": pl.Float64,
        "extra_units": pl.Float64,
        "lift": pl.Float64,
        "reason": pl.String,
    }
)
# The backtest tables (output contract, backtest/)
FORECAST_METRICS_COLUMNS = pl.Schema(
    {
        "cutoff": pl.Date,
        "model": pl.String,
        "level": pl.String,
        "wape": pl.Float64,
        "mae": pl.Float64,
        "bias": pl.Float64,
        "rmsse": pl.Float64,
        "wrmsse": pl.Float64,
    }
)
EVENT_BACKTEST_COLUMNS = pl.Schema(
    {
        "event_id": pl.String,
        "event_type": pl.String,
        "region": pl.String,
        "start_date": pl.Date,
        "flagged": pl.Int64,
        "actual_risers": pl.Int64,
        "hits": pl.Int64,
        "precision": pl.Float64,
        "recall": pl.Float64,
    }
)
ASSORTMENT_BACKTEST_COLUMNS = pl.Schema(
    {"cutoff": pl.Date, "store_id": pl.String, "strategy": pl.String, "demand_covered_share": pl.Float64}
)
PATTERN_KINDS = ("event_uplift", "local_affinity", "latent_demand")
ASSORTMENT_ACTIONS = ("add", "drop", "keep")


@dataclass(frozen=True)
class OutPaths:
    """Files of one output folder."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def forecast(self) -> Path:
        return self.root / "forecast.parquet"

    @property
    def patterns(self) -> Path:
        return self.root / "patterns.parquet"

    @property
    def assortment(self) -> Path:
        return self.root / "assortment.parquet"

    @property
    def assortment_csv(self) -> Path:
        return self.root / "assortment.csv"

    @property
    def prestock(self) -> Path:
        return self.root / "prestock.parquet"

    @property
    def prestock_csv(self) -> Path:
        return self.root / "prestock.csv"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def backtest(self) -> Path:
        return self.root / "backtest"

    @property
    def work(self) -> Path:
        """Intermediate Parquet handed between tasks (features, candidates)."""
        return self.root / "_work"


def conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Return ``df`` with the contract's columns first, in order and cast; extra columns kept after."""
    missing = [c for c in schema.names() if c not in df.columns]
    df = df.with_columns(pl.lit(None, dtype=schema[c]).alias(c) for c in missing)
    extra = [c for c in df.columns if c not in schema.names()]
    return df.select([pl.col(c).cast(schema[c]) for c in schema.names()] + extra)


def write_table(df: pl.DataFrame, path: Path, *, csv: Path | None = None) -> None:
    """Write ``df`` as Parquet (and CSV when asked), atomically via a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.write_parquet(tmp)
    tmp.replace(path)
    if csv is not None:
        tmp_csv = csv.with_name(f".{csv.name}.tmp")
        df.write_csv(tmp_csv)
        tmp_csv.replace(csv)
