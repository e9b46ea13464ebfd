"""Writing a URL lake (``memory://``, ``s3://``, ``gs://``...): a local copy, then one ref switch.

Object stores have no rename and no journal, so a load into a URL lake works like this:

1. **Copy down.** The lake's committed files (the manifest the ref names, ``flows.lake.fs``) are
   copied into its local copy (``LakePaths.root``, under ``$LOCALSHELF_CACHE_DIR``); files the copy
   already holds unchanged are not fetched again. An unpublished load left in the copy is dropped.
2. **Load locally.** The ordinary load (``flows.lake.ingest``) runs on the copy, with its lock and
   journaled, all-or-nothing commit.
3. **Upload.** Every file the load added or changed goes to the store. New names are uploaded as they
   are; a file that replaces one of the same name (a reference table, the load history) gets a new
   object name (``part-0.v<load>.parquet``), so no committed object is ever overwritten.
4. **Switch the ref.** A new manifest (lake path -> object) is written, then ``_state/ref.json`` is
   replaced to name it: that single-object write is the commit point. Readers list the manifest,
   never the store, so until the switch they see the lake as it was, and a load that fails before
   it (or is killed) leaves only unreferenced objects, removed by the next load.
5. **Clean up.** Objects no longer referenced are deleted (a reader still scanning the manifest
   before the switch may then miss a file and must read again: there is no snapshot retention).

The guarantee rests on one property of the store: replacing one object is atomic (readers get the
old or the new ref.json whole), true of S3, GCS, Azure Blob and fsspec's memory filesystem. On a
local disk the lake keeps its own journal and renames (``flows.lake.commit``). There is no lock on
the store itself: runs take the lake's Prefect writer slot (``flows.runtime.one_writer``), the local
copy has its file lock, and a load refuses to switch the ref when another load switched it since it
started (LakeChangedError).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import filelock

from flows.lake.commit import crash_point
from flows.lake.fs import MANIFESTS, REF, committed_files, filesystem, in_lake_files, is_url, read_json
from flows.lake.outputs import OutPaths
from flows.lake.paths import LakePaths

MIRROR_STATE = "_state/mirror.json"  # in the local copy: what it holds of which manifest


class LakeChangedError(RuntimeError):
    """Another load committed to the URL lake while this one ran; this one published nothing."""


def _url_path(url: str, rel: str) -> str:
    _, root = filesystem(url)
    return f"{root.rstrip('/')}/{rel}"


def _local_files(root: Path) -> dict[str, tuple[int, int]]:
    """The lake files of a local copy: lake path -> (size, mtime in ns)."""
    found = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if in_lake_files(rel) and path.is_file():
            st = path.stat()
            found[rel] = (st.st_size, st.st_mtime_ns)
    return found


def _read_state(root: Path) -> dict:
    path = root / MIRROR_STATE
    return json.loads(path.read_text()) if path.exists() else {"manifest": None, "files": {}}


def _write_state(root: Path, manifest: str | None, files: dict[str, str]) -> None:
    local = _local_files(root)
    state = {"manifest": manifest, "files": {r: [o, *local[r]] for r, o in files.items() if r in local}}
    path = root / MIRROR_STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def _put_json(url: str, rel: str, body: dict) -> None:
    """Write one small JSON object (one put: whole or not at all on an object store)."""
    fs, _ = filesystem(url)
    target = _url_path(url, rel)
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)  # a no-op on object stores
    fs.pipe_file(target, json.dumps(body).encode())


def _write_ref(url: str, manifest: str, load_id: str) -> None:
    """Replace the lake's ref with one naming ``manifest``: the commit point (one object write)."""
    _put_json(
        url, REF, {"manifest": manifest, "load_id": load_id, "committed_at": datetime.now(UTC).isoformat()}
    )


def _ensure_ref(url: str) -> None:
    """Give a new, empty URL lake its ref (an empty manifest) before anything is uploaded, so that the
    objects of a first load that fails are never taken for a lake copied there by hand."""
    name, files = committed_files(url)
    if name is None and not files:
        manifest = f"{MANIFESTS}/empty.json"
        _put_json(url, manifest, {"files": {}})
        _write_ref(url, manifest, "")


def sync_down(lake: LakePaths) -> tuple[str | None, dict[str, str]]:
    """Make the local copy hold exactly the URL lake's committed files; returns the manifest's name
    and files. Drops an unpublished load left in the copy (its journal and staging too)."""
    assert lake.url is not None
    fs, _ = filesystem(lake.url)
    root = lake.root
    for leftover in (lake.journal, lake.journal.with_suffix(".tmp"), lake.staging):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    name, files = committed_files(lake.url)
    held = _read_state(root)["files"]
    local = _local_files(root)
    for rel in set(local) - set(files):
        (root / rel).unlink()
    for rel, obj in files.items():
        if rel in local and held.get(rel) == [obj, *local[rel]]:
            continue  # the copy holds this very object, untouched since
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.download")
        fs.get_file(_url_path(lake.url, obj), str(tmp))
        os.replace(tmp, target)
    _write_state(root, name, files)
    return name, files


def _object_name(rel: str, old: dict[str, str], token: str) -> str:
    """The object a changed file goes to: its own name when new, a fresh one when it replaces one."""
    if rel not in old:
        return rel
    folder, _, name = rel.rpartition("/")
    stem, dot, suffix = name.partition(".")
    return f"{folder}/{stem}.v{token}{dot}{suffix}"


def _upload(url: str, local: Path, obj: str) -> None:
    fs, _ = filesystem(url)
    target = _url_path(url, obj)
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    fs.put_file(str(local), target)


def publish(lake: LakePaths, base: str | None, say: Callable[[str], None] = lambda _: None) -> bool:
    """Upload what changed in the local copy since ``sync_down`` returned manifest ``base``, write a
    manifest and switch the ref to it, then delete what is no longer referenced. Returns False when
    nothing changed (no new manifest). Raises LakeChangedError when the ref moved since ``base``."""
    assert lake.url is not None
    url, root = lake.url, lake.root
    state = _read_state(root)
    old = {rel: entry[0] for rel, entry in state["files"].items()}
    held = state["files"]
    now = _local_files(root)
    token = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid4().hex[:8]}"
    files: dict[str, str] = {}
    changed: list[tuple[str, str]] = []
    for rel, stat in sorted(now.items()):
        if rel in held and held[rel][1:] == list(stat):
            files[rel] = old[rel]
        else:
            files[rel] = _object_name(rel, old, token)
            changed.append((rel, files[rel]))
    if not changed and set(files) == set(old):
        return False
    say(f"uploading {len(changed)} files to {url}")
    for rel, obj in changed:
        _upload(url, root / rel, obj)
        crash_point("url_mid_upload")
    if committed_files(url)[0] != base:
        raise LakeChangedError(f"another load committed to {url} while this one ran: nothing published")
    manifest = f"{MANIFESTS}/{token}.json"
    _put_json(url, manifest, {"files": files, "parent": base})
    crash_point("url_before_ref")
    _write_ref(url, manifest, token)  # the commit point
    crash_point("url_after_ref")
    _write_state(root, manifest, files)
    say(f"committed {url} (manifest {manifest})")
    _collect_garbage(url, files, manifest)
    return True


def _collect_garbage(url: str, files: dict[str, str], manifest: str) -> None:
    """Delete objects the manifest does not reference: replaced files, older manifests and the
    uploads of loads that failed before their commit."""
    fs, root = filesystem(url)
    root = root.rstrip("/")
    keep = set(files.values()) | {manifest, REF}
    found = fs.find(root) if fs.exists(root) else []
    for path in found:
        rel = path[len(root) + 1 :]
        ours = in_lake_files(rel) or rel.startswith(("_state/loads.", f"{MANIFESTS}/"))
        if ours and rel not in keep:
            fs.rm_file(path)


@contextmanager
def local_lake(lake: LakePaths, *, timeout_s: float = 600.0) -> Iterator[LakePaths]:
    """The lake to load into: ``lake`` itself when it is local; for a URL lake, its local copy synced
    with the store (a plain LakePaths), whose changes are published when the block ends without an
    error. Holds the copy's file lock throughout (one writer per copy)."""
    if lake.url is None:
        yield lake
        return
    lake.state.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(lake.state / "mirror.lock"), timeout=timeout_s):
        _ensure_ref(lake.url)
        base, _ = sync_down(lake)
        yield LakePaths(lake.root)
        publish(lake, base)


def publish_docs(lake: LakePaths) -> None:
    """Copy the Data Docs written into a URL lake's local copy to ``URL/_docs`` (they are pages for
    people, outside the manifest: replaced in place)."""
    from flows.lake.fs import publish as put_folder

    if lake.url is not None and lake.docs.exists():
        put_folder(lake.docs, f"{lake.url}/_docs")


@contextmanager
def local_drop(drop: str | Path) -> Iterator[Path]:
    """The drop as a local folder: itself, or a URL drop copied into a temporary folder."""
    from flows.lake.fs import local_path

    if not is_url(drop):
        yield local_path(drop)
        return
    import tempfile

    fs, path = filesystem(str(drop))
    with tempfile.TemporaryDirectory(prefix="localshelf-drop-") as tmp:
        target = Path(tmp) / "drop"
        fs.get(path.rstrip("/") + "/", str(target), recursive=True)
        yield target


def read_ref(url: str) -> dict | None:
    """The URL lake's ref (None for a lake without one)."""
    return read_json(url, REF)


# ---- URL outputs: written into a local folder, copied to the URL when the run is done ----


def begin_outputs(out: OutPaths) -> None:
    """Empty the local folder of a URL output before a run (a local output folder is left as is)."""
    if out.url is not None and out.root.exists():
        shutil.rmtree(out.root)


def publish_outputs(out: OutPaths, say: Callable[[str], None] = lambda _: None) -> list[str]:
    """Copy a URL output's finished files (its work folder aside) to the URL, ``run.json`` last: a
    reader that finds the new run.json finds every file of that run. Returns the files copied."""
    if out.url is None:
        return []
    fs, dest = filesystem(out.url)
    files = sorted(
        (p for p in out.root.rglob("*") if p.is_file() and p.relative_to(out.root).parts[0] != "_work"),
        key=lambda p: (p == out.run_json, p.as_posix()),
    )
    for path in files:
        rel = path.relative_to(out.root).as_posix()
        _upload(out.url, path, rel)
    say(f"outputs copied to {out.url} ({len(files)} files)")
    return [p.relative_to(out.root).as_posix() for p in files]
