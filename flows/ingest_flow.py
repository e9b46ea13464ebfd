"""The `localshelf-ingest` flow: load a drop into the lake and validate what the load touched (nightly)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows import tasks
from flows.lake.paths import LakePaths
from flows.lake.remote import local_drop
from flows.pipeline import HOUR, AsOf, DropDir, LakeDir
from flows.runtime import one_writer, with_hmac_secret
from flows.settings import load_settings


@flow(name="localshelf-ingest", log_prints=True, timeout_seconds=12 * HOUR)
def localshelf_ingest(drop: DropDir, lake: LakeDir = None, as_of: AsOf = None) -> dict[str, Any]:
    """Load ``drop`` into the lake, then validate it with Great Expectations; returns the row counts
    per table and the validation verdict. Fails (no retry) when the drop or the loaded data breaks its
    contract. Holds the lake's writer slot while it runs."""
    settings = with_hmac_secret(load_settings(as_of=as_of))
    lake_paths = LakePaths(lake or settings.lake_dir)
    with one_writer({"lake": lake_paths.location}):
        with local_drop(drop) as drop_dir:
            loaded = tasks.ingest(drop_dir, lake_paths, settings, settings.as_of)
        validation = tasks.validate(lake_paths, settings, settings.as_of, loaded)
    return {"tables": loaded.tables, "validation": validation.success, "docs": validation.docs_index}
