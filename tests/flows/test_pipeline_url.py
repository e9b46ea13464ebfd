"""`localshelf run --lake memory://... --out memory://...`: the whole job with its lake and outputs on a
URL (fsspec's in-memory filesystem standing in for object storage), read from a drop at a URL, gives the
local run's answers."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import fsspec
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from flows.lake.fs import CACHE_ENV, committed_files, filesystem

pytestmark = pytest.mark.slow

OUTPUTS = ("assortment.parquet", "prestock.parquet", "patterns.parquet", "forecast.parquet")


def _in_order(df: pl.DataFrame) -> pl.DataFrame:
    exact = [c for c, t in df.schema.items() if not t.is_float()]
    return df.sort([*exact, *(c for c in df.columns if c not in exact)], nulls_last=True)


def test_the_small_demo_with_lake_and_outputs_in_memory_gives_the_local_answers(
    tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.cli import app
    from flows.demo.generate import generate_demo
    from flows.pipeline import localshelf_run

    paths = generate_demo(tmp_path / "demo", size="small", seed=7)
    monkeypatch.setenv("LOCALSHELF_HMAC_SECRET", paths.secret.read_text().strip())
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("LOCALSHELF_NUM_THREADS", "1")
    # a light model: this test is about where files live, not about forecast quality
    for name, value in {"NUM_BOOST_ROUND": "40", "HORIZON_BLOCKS": "[28]", "REFIT": "none"}.items():
        monkeypatch.setenv(f"LOCALSHELF_MODEL__{name}", value)
    localshelf_run(drop=paths.drop, out=tmp_path / "out", lake=tmp_path / "lake")

    tag = uuid.uuid4().hex
    drop, lake, out = f"memory://drop-{tag}", f"memory://lake-{tag}", f"memory://out-{tag}"
    memory = fsspec.filesystem("memory")
    try:
        memory.put(str(paths.drop), f"/drop-{tag}", recursive=True)  # the drop at a URL too
        result = CliRunner().invoke(app, ["run", "--drop", drop, "--lake", lake, "--out", out])
        assert result.exit_code == 0, result.output
        assert f"{out}/report.html" in result.output.replace("\n", "")
        fs, root = filesystem(out)
        for name in OUTPUTS:
            got = pl.read_parquet(io.BytesIO(fs.cat_file(f"{root}/{name}")))
            assert_frame_equal(
                _in_order(got), _in_order(pl.read_parquet(tmp_path / "out" / name)), check_exact=False
            )
        for name in ("assortment.csv", "prestock.csv"):
            assert fs.cat_file(f"{root}/{name}") == (tmp_path / "out" / name).read_bytes(), name
        assert b"</html>" in fs.cat_file(f"{root}/report.html")
        run = json.loads(fs.cat_file(f"{root}/run.json"))
        local_run = json.loads((tmp_path / "out" / "run.json").read_text())
        assert run["inputs"]["lake"] == lake
        assert run["inputs"]["drop"] == drop  # as given, not the local copy it was read from
        assert run["tables"] == local_run["tables"]  # every row accounted for the same way
        assert not fs.exists(f"{root}/_work")  # intermediate files stay local
        _, files = committed_files(lake)
        assert any(f.startswith("table=store_sales/") for f in files)
        lake_fs, lake_root = filesystem(lake)
        assert lake_fs.exists(f"{lake_root}/_docs/index.html")
        assert run["validation"]["docs_index"] == f"{lake}/_docs/index.html"  # not the local copy
    finally:
        for url in (drop, lake, out):
            path = url.removeprefix("memory://")
            if memory.exists(path):
                memory.rm(path, recursive=True)
