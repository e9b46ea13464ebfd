"""The CLI's scale options: --runner/--dask-address, the m5 size and STORESxSKUSxDAYS overrides."""

from __future__ import annotations

from pathlib import Path


def test_the_cli_offers_the_runners_and_the_m5_size() -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    for command in ("run", "demo"):
        text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        assert "--runner" in text and "--dask-address" in text, text
    demo = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).output
    assert "m5" in demo and "--stores" in demo and "--days" in demo


def test_the_cli_wants_stores_skus_and_days_together(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--stores", "12"])
    assert result.exit_code == 1
    assert "go together" in result.output
