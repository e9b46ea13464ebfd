"""What a flow run takes from where it runs: the secret, one writer per folder, retries on I/O only, and
what it shows in the UI. Flows run under the session's Prefect test server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import polars as pl
import pytest
from prefect import flow
from prefect.states import Failed

from data_contracts.validate import ValidationSummary
from flows.artifacts import load_markdown, top_recommendations
from flows.lake.commit import LakeLockedError
from flows.lake.ingest import IngestReport
from flows.lake.readers import ContractError
from flows.runtime import one_writer, with_hmac_secret, writer_limit_name
from flows.settings import load_settings
from flows.tasks import _retry_on_io


def test_writer_limit_names_are_valid_prefect_names_per_folder(tmp_path: Path) -> None:
    lake = writer_limit_name("lake", tmp_path / "a&b")
    assert lake.startswith("localshelf-lake:") and not set("/%&<>") & set(lake)
    assert lake == writer_limit_name("lake", tmp_path / "x" / ".." / "a&b")  # resolved
    assert writer_limit_name("out", tmp_path / "a&b") != lake


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (OSError("disk"), True),
        (FileNotFoundError("gone for a moment"), True),
        (LakeLockedError("held by another load"), True),
        (ContractError("store_sales", "missing column", "units"), False),
        (TimeoutError("task ran into its timeout"), False),
        (ValueError("a bug"), False),
    ],
)
def test_io_tasks_retry_io_errors_only(error: Exception, retried: bool) -> None:
    assert _retry_on_io(None, None, Failed(data=error)) is retried


def test_two_runs_on_one_folder_take_turns(tmp_path: Path, prefect_harness: None) -> None:
    spans: list[tuple[float, float]] = []

    @flow
    def writer(folder: Path) -> None:
        with one_writer({"out": folder}, timeout_s=60):
            start = time.monotonic()
            time.sleep(1.0)
            spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=writer, args=(tmp_path,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(spans) == 2
    (_, first_end), (second_start, _) = sorted(spans)
    assert second_start >= first_end


def test_the_key_comes_from_the_environment_else_the_secret_block(
    monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    from prefect.blocks.system import Secret

    @flow
    def key() -> str | None:
        secret = with_hmac_secret(load_settings()).hmac_secret
        return None if secret is None else secret.get_secret_value()

    monkeypatch.delenv("LOCALSHELF_HMAC_SECRET", raising=False)
    assert key() is None  # no block yet
    Secret(value="from-the-block").save("localshelf-hmac-secret", overwrite=True)
    try:
        assert key() == "from-the-block"
        monkeypatch.setenv("LOCALSHELF_HMAC_SECRET", "from-the-env")
        assert key() == "from-the-env"
    finally:
        Secret.delete("localshelf-hmac-secret")


def test_load_markdown_accounts_for_rows_and_failed_rules() -> None:
    loaded = IngestReport(
        tables={
            "store_sales": {
                "rows_read": 1200,
                "rows_loaded": 1000,
                "rows_quarantined": 150,
                "rows_duplicate": 50,
            }
        },
        quarantine_reasons={"negative units": 150},
        warnings=[{"table": "online_orders", "message": "3% of lines have no region"}],
    )
    validation = ValidationSummary(
        success=False,
        tables={"store_sales": {"batches": 2, "rows": 1000, "failed": ["units_in_range"], "success": False}},
        docs_index="/lake/_docs/index.html",
    )
    md = load_markdown(loaded, validation)
    assert "| store_sales | 1,200 | 1,000 | 150 | 50 | 0 |" in md
    assert "150 rows: negative units" in md and "3% of lines have no region" in md
    assert "## Validation: FAILED" in md and "units_in_range" in md
    assert "(file:///lake/_docs/index.html)" in md


def test_top_recommendations_are_the_changes_worth_most() -> None:
    advice = pl.DataFrame(
        {
            "store_id": ["S1", "S1", "S2", "S2"],
            "sku": ["A", "B", "C", "D"],
            "action": ["keep", "add", "drop", "add"],
            "expected_weekly_revenue": [500.0, 10.0, 30.123, 20.0],
            "reason": ["r"] * 4,
        }
    )
    rows = top_recommendations(advice, n=2)
    assert [(r["sku"], r["expected_weekly_revenue"]) for r in rows] == [("C", 30.12), ("D", 20.0)]
