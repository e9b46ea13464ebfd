"""The output folder of a run: where each file of the output contract lives, and atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl


@dataclass(frozen=True)
class OutPaths:
    """Files of one output folder. ``OutPaths("s3://bucket/out")`` (any fsspec URL but ``file://``)
    sets ``url``: the run writes into ``root``, a local folder of that URL, and copies the finished
    files to the URL at its end (``flows.lake.remote.publish_outputs``)."""

    root: Path
    url: str | None = None

    if TYPE_CHECKING:  # built from a folder or a URL string; ``root`` is always a local folder after

        def __init__(self, root: Path | str, url: str | None = None) -> None: ...

    def __post_init__(self) -> None:
        from flows.lake.fs import cache_dir, is_url, local_path

        if self.url is None and is_url(self.root):
            object.__setattr__(self, "url", str(self.root).rstrip("/"))
        if self.url is not None:
            object.__setattr__(self, "root", cache_dir("out", self.url))
            return
        object.__setattr__(self, "root", local_path(self.root).resolve())

    @property
    def location(self) -> str:
        """The output folder as the user named it: its URL, or its local folder."""
        return self.url or str(self.root)

    def at(self, path: Path) -> str:
        """Where a file of this folder ends up: its URL for a URL output, else ``path`` itself."""
        return f"{self.url}/{path.relative_to(self.root).as_posix()}" if self.url else str(path)

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
