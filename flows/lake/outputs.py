"""The output folder of a run: where each file of the output contract lives, and atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl


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


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write`` on a hidden temporary file beside ``path``, then rename it into place: a reader
    never sees half a file, and a crash leaves the old one. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; returns ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_table(df: pl.DataFrame, path: Path, *, csv: Path | None = None) -> None:
    """Write ``df`` as Parquet, each file atomically; when ``csv`` is given, also the files people open
    in a spreadsheet: that CSV (rounded, formula-escaped) and an .xlsx beside it (identifiers as text)."""
    from flows.lake.spreadsheet import write_csv, write_xlsx

    atomic_write(path, df.write_parquet)
    if csv is not None:
        atomic_write(csv, lambda tmp: write_csv(df, tmp))
        atomic_write(csv.with_suffix(".xlsx"), lambda tmp: write_xlsx(df, tmp))
