from __future__ import annotations

from pathlib import Path

import pytest

from localshelf.lake import LakePaths
from localshelf.outputs import OutPaths


def test_paths_are_absolute_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lake, out = LakePaths(Path("demo/lake")), OutPaths(Path("demo/out"))
    assert lake.root == tmp_path / "demo" / "lake"
    assert lake.docs.is_absolute() and out.report == tmp_path / "demo" / "out" / "report.html"
    assert lake.partition("store_sales", 2024, 8) == lake.root / "table=store_sales" / "year=2024" / "month=8"
