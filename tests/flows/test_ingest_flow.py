"""The `localshelf-ingest` flow (the nightly deployment) on a tiny drop, under the Prefect test server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.flows.lake.ingest_drops import SECRET, make_drop


def test_nightly_ingest_loads_validates_and_publishes_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.ingest_flow import localshelf_ingest

    monkeypatch.setenv("LOCALSHELF_HMAC_SECRET", SECRET)
    drop = make_drop(tmp_path / "drop")
    result = localshelf_ingest(drop=drop, lake=tmp_path / "lake", as_of="2024-09-30")
    assert result["validation"] is True
    assert result["tables"]["store_sales"]["rows_loaded"] > 0
    assert Path(result["docs"]).exists()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["localshelf-load"]))
        )
    assert any("store_sales" in str(a.data) for a in found)


def test_an_unset_path_variable_fails_the_run_naming_it(prefect_harness: None) -> None:
    from prefect.exceptions import ParameterTypeError

    from flows.ingest_flow import localshelf_ingest

    with pytest.raises(ParameterTypeError, match="LOCALSHELF_DROP"):
        localshelf_ingest(drop="", lake="/tmp/lake")  # what `prefect deploy` stores for an unset {{ $VAR }}
