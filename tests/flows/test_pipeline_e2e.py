"""The whole job on the small demo, under a Prefect test server: the output contract and planted truth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from data_contracts.outputs import (
    ASSORTMENT_ACTIONS,
    ASSORTMENT_COLUMNS,
    FORECAST_COLUMNS,
    PATTERN_COLUMNS,
    PATTERN_KINDS,
    PRESTOCK_COLUMNS,
)
from flows.demo.truth import compare_with_truth
from flows.lake.outputs import OutPaths
from flows.settings import load_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[tuple[OutPaths, Path]]:
    from flows.demo.generate import generate_demo
    from flows.pipeline import localshelf_run

    root = tmp_path_factory.mktemp("demo")
    paths = generate_demo(root, size="small", seed=7)
    # the key reaches the flows as on a worker: from the environment, never as a parameter
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOCALSHELF_HMAC_SECRET", paths.secret.read_text().strip())
        localshelf_run(drop=paths.drop, out=root / "out", lake=root / "lake")
        yield OutPaths(root / "out"), paths.truth


def _has_contract_columns(path: Path, schema: pl.Schema) -> pl.DataFrame:
    df = pl.read_parquet(path)
    for name, dtype in schema.items():
        assert name in df.columns, f"{path.name} lacks {name}"
        assert df.schema[name] == dtype, f"{path.name}.{name} is {df.schema[name]}, not {dtype}"
    return df


def test_every_output_file_exists(demo_run: tuple[OutPaths, Path]) -> None:
    out, _ = demo_run
    for path in (
        out.forecast,
        out.patterns,
        out.assortment,
        out.assortment_csv,
        out.prestock,
        out.prestock_csv,
        out.report,
        out.run_json,
    ):
        assert path.exists() and path.stat().st_size > 0, path


def test_tables_follow_the_output_contract(demo_run: tuple[OutPaths, Path]) -> None:
    out, _ = demo_run
    patterns = _has_contract_columns(out.patterns, PATTERN_COLUMNS)
    assert set(patterns["kind"]) <= set(PATTERN_KINDS)
    assert patterns["q_value"].max() <= load_settings().mining.fdr_alpha
    assert patterns["explanation"].str.len_chars().min() > 20
    advice = _has_contract_columns(out.assortment, ASSORTMENT_COLUMNS)
    assert set(advice["action"]) <= set(ASSORTMENT_ACTIONS)
    assert advice.select("store_id", "sku").is_unique().all()
    assert pl.read_csv(out.assortment_csv, infer_schema=False).height == advice.height
    _has_contract_columns(out.prestock, PRESTOCK_COLUMNS)
    forecast = _has_contract_columns(out.forecast, FORECAST_COLUMNS)
    assert forecast["units"].min() >= 0


def test_forecast_covers_every_advised_pair_and_day(demo_run: tuple[OutPaths, Path]) -> None:
    out, _ = demo_run
    run = json.loads(out.run_json.read_text())
    as_of = date.fromisoformat(run["as_of"])
    forecast = pl.read_parquet(out.forecast)
    assert forecast["date"].min() == as_of + timedelta(days=1)
    assert forecast["date"].max() == as_of + timedelta(days=run["horizon"])
    pairs = pl.read_parquet(out.assortment).select("store_id", "sku")
    per_pair = forecast.group_by("store_id", "sku").len()
    assert per_pair.height == pairs.height
    assert per_pair["len"].unique().to_list() == [run["horizon"]]


def test_advised_sets_fit_the_shelves(demo_run: tuple[OutPaths, Path], tmp_path: Path) -> None:
    out, _ = demo_run
    drop = out.root.parent / "drop"
    capacity = pl.read_csv(drop / "shelf_capacity.csv", infer_schema=False).with_columns(
        pl.col("max_skus").cast(pl.Int64)
    )
    advised = (
        pl.read_parquet(out.assortment)
        .filter(pl.col("action").is_in(["add", "keep"]))
        .group_by("store_id", "category")
        .len()
        .join(capacity, on=["store_id", "category"], how="left")
    )
    assert advised["max_skus"].null_count() == 0
    assert (advised["len"] <= advised["max_skus"]).all()


def test_run_json_accounts_for_every_row(demo_run: tuple[OutPaths, Path]) -> None:
    out, _ = demo_run
    run = json.loads(out.run_json.read_text())
    for key in (
        "as_of",
        "started_at",
        "finished_at",
        "versions",
        "tables",
        "files",
        "quarantine_reasons",
        "timings_s",
    ):
        assert key in run
    assert {"localshelf", "polars", "lightgbm"} <= set(run["versions"])
    assert {"ingest", "validate", "train", "mine", "forecast", "recommend", "report"} <= set(run["timings_s"])
    assert {"features_s", "train_s"} <= set(run["model"])  # the model splits its own time
    for counts in [*run["tables"].values(), *run["files"]]:
        assert (
            counts["rows_read"]
            == counts["rows_loaded"] + counts["rows_quarantined"] + counts["rows_duplicate"]
        )
    assert run["tables"]["store_sales"]["rows_loaded"] > 100_000
    assert run["validation"]["success"] is True


def test_planted_patterns_come_out(demo_run: tuple[OutPaths, Path]) -> None:
    out, truth_path = demo_run
    truth = json.loads(truth_path.read_text())
    patterns = pl.read_parquet(out.patterns)
    # the Pop-Tarts effect: the strongest planted hurricane SKU is found, with roughly its lift
    strongest = max((p for p in truth["event_uplift"]), key=lambda p: p["lift"])
    hit = patterns.filter(
        (pl.col("kind") == "event_uplift")
        & (pl.col("event_type") == strongest["event_type"])
        & (pl.col("region") == strongest["region"])
        & (pl.col("sku") == strongest["sku"])
    )
    assert hit.height == 1, f"planted {strongest} not found"
    assert strongest["lift"] / 2 < hit["lift"][0] < strongest["lift"] * 2
    assert hit["peak_offset_days"][0] is not None
    found = compare_with_truth(out.patterns, truth_path)
    assert found["latent_demand"]["found"] >= 1
    assert found["event_uplift"]["found"] >= found["event_uplift"]["planted"] // 2
    assert found["null_event_patterns"] == 0


def test_report_opens_from_disk(demo_run: tuple[OutPaths, Path]) -> None:
    out, _ = demo_run
    html = out.report.read_text()
    assert "<svg" in html
    assert 'src="http' not in html and "<script src=" not in html
    advice = pl.read_parquet(out.assortment)
    assert advice["store_id"][0] in html


def test_a_rerun_of_the_same_drop_loads_nothing(demo_run: tuple[OutPaths, Path]) -> None:
    from flows.lake.ingest import ingest_drop
    from flows.lake.paths import LakePaths

    out, _ = demo_run
    root = out.root.parent
    settings = load_settings(hmac_secret=(root / "secret.txt").read_text().strip())
    report = ingest_drop(root / "drop", LakePaths(root / "lake"), settings)
    for counts in report.tables.values():
        assert counts["rows_loaded"] == 0
        assert counts["rows_duplicate"] + counts["rows_quarantined"] == counts["rows_read"]


def test_prestock_command_plans_the_planted_risers(demo_run: tuple[OutPaths, Path], tmp_path: Path) -> None:
    """`localshelf prestock` from the run's outputs (no re-run): the planted hurricane risers of
    GULF_COAST, integer orders, every stock-by date before the event; an unknown type lists the known."""
    from typer.testing import CliRunner

    from flows.cli import app

    out, truth_path = demo_run
    as_of = date.fromisoformat(json.loads(out.run_json.read_text())["as_of"])
    start, end = as_of + timedelta(days=60), as_of + timedelta(days=62)
    args = ["prestock", "--from", str(out.root), "--event-type", "hurricane", "--region", "GULF_COAST",
            "--start", start.isoformat(), "--end", end.isoformat(), "--to", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = pl.read_parquet(tmp_path / "prestock.parquet")
    truth = json.loads(truth_path.read_text())["event_uplift"]
    planted = {p["sku"] for p in truth if p["event_type"] == "hurricane" and p["region"] == "GULF_COAST"}
    # the command plans every riser the run's miner found for the type and region, and those are the
    # planted ones; how many of the planted the miner finds is the miner's recall (bench/mining_quality.py)
    patterns = pl.read_parquet(out.patterns)
    mined = patterns.filter(
        (pl.col("kind") == "event_uplift")
        & (pl.col("event_type") == "hurricane")
        & pl.col("region").is_in(["GULF_COAST", "ALL"])
    )["sku"]
    hits = len(planted & set(plan["sku"]))
    assert set(plan["sku"]) <= set(mined) and planted & set(mined) <= set(plan["sku"])
    assert hits >= 0.8 * plan["sku"].n_unique() and hits >= len(planted) // 2
    assert plan.schema["order_units"] == pl.Int64 and (plan["order_units"] >= 0).all()
    assert (plan["stock_by"] < start).all() and plan["stock_by"].is_sorted()
    assert pl.read_csv(tmp_path / "prestock.csv").height == plan.height
    unknown = CliRunner().invoke(app, [*args[:4], "tornado", *args[5:]])
    assert unknown.exit_code == 1 and "Known event types" in unknown.output
