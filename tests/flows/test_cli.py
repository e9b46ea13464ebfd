from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["demo"], ["run"], ["ingest"], ["backtest"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["demo"], "--size"),
        (["run"], "--as-of"),
        (["run"], "--horizon"),
        (["ingest"], "--report"),
        (["backtest"], "--folds"),
    ],
)
def test_commands_take_their_options(command: list[str], option: str) -> None:
    assert option in runner.invoke(app, [*command, "--help"]).output


def test_run_rejects_a_bad_as_of_date(tmp_path) -> None:
    result = runner.invoke(
        app, ["run", "--drop", str(tmp_path), "--out", str(tmp_path / "o"), "--as-of", "30/06/2025"]
    )
    assert result.exit_code != 0
    assert "YYYY-MM-DD" in result.output


def test_run_names_a_missing_drop(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a short path: the error panel wraps a long one at the terminal width
    result = runner.invoke(app, ["run", "--drop", "nope", "--out", "o"])
    assert result.exit_code != 0
    assert "nope" in result.output


def test_prefect_yaml_entrypoints_import() -> None:
    import importlib
    from pathlib import Path

    spec = yaml.safe_load(Path("prefect.yaml").read_text())
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        module_path, func = deployment["entrypoint"].split(":")
        module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        assert flow.name.startswith("localshelf-")
        # nightly and weekly run on cron; on-demand ones only when asked
        scheduled = deployment["name"] in ("nightly", "weekly")
        assert bool(deployment.get("schedules")) == scheduled, deployment["name"]
        if scheduled:
            assert deployment["schedules"][0]["cron"]


def test_ingest_validates_what_it_loaded(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tests.flows.lake.ingest_drops import SECRET, make_drop

    monkeypatch.setenv("LOCALSHELF_HMAC_SECRET", SECRET)
    drop, lake, report = make_drop(tmp_path / "drop"), tmp_path / "lake", tmp_path / "ingest.json"
    args = [
        "ingest",
        "--drop",
        str(drop),
        "--lake",
        str(lake),
        "--report",
        str(report),
        "--as-of",
        "2024-09-30",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "validation passed" in result.output
    counts = json.loads(report.read_text())
    assert counts["validation"]["success"] is True and "store_sales" in counts["validation"]["tables"]
    assert (lake / "_docs" / "index.html").exists()
