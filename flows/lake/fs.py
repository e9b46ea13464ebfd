"""Lake and output locations as URLs: a local folder, ``file://``, ``memory://``, ``s3://``, ``gs://``...

fsspec resolves a URL to a filesystem and a path on it; Arrow reads and writes through the same
filesystem (``pyarrow.fs.PyFileSystem(FSSpecHandler(fs))``), so the lake's Hive-partitioned Parquet
is read the same way from a disk or from object storage. Object stores need their fsspec package
(s3fs, gcsfs, adlfs) and credentials from the environment, never from settings in clear.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import fsspec
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow.fs import FSSpecHandler, PyFileSystem


def filesystem(url: str | Path) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return the filesystem of ``url`` and the path on it (a plain path is the local filesystem)."""
    fs, path = fsspec.core.url_to_fs(str(url))
    return fs, path


def join(url: str | Path, *parts: str) -> str:
    """Return ``url`` with ``parts`` appended, '/'-separated whatever the filesystem."""
    return "/".join([str(url).rstrip("/"), *(p.strip("/") for p in parts)])


def write_parquet(frame: pl.DataFrame, url: str | Path) -> None:
    """Write ``frame`` as Parquet at ``url``: to a temporary name beside it, then moved over it, so a
    reader never sees half a file (a rename on disks; object stores make each put whole anyway)."""
    fs, path = filesystem(url)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}.parquet" if parent else f".tmp-{uuid.uuid4().hex}.parquet"
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    with fs.open(tmp, "wb") as out:
        out.write(buffer.getvalue())
    fs.mv(tmp, path)


def read_parquet(url: str | Path) -> pl.DataFrame:
    """Return the Parquet file at ``url``."""
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        return pl.from_arrow(pq.read_table(f))  # type: ignore[return-value]


def write_text(url: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) at ``url``, creating its folder."""
    fs, path = filesystem(url)
    if "/" in path:
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "w", encoding="utf-8") as f:
        f.write(text)


def scan_table(url: str | Path) -> pl.LazyFrame:
    """Return a lake table folder (``.../table=store_sales``: Hive partitions year=/month=, files
    ``*.parquet``; names starting with ``_`` or ``.`` ignored) as a LazyFrame, read through Arrow on
    the URL's filesystem. The partition keys become columns only where the files lack them."""
    fs, path = filesystem(url)
    dataset = ds.dataset(
        path,
        format="parquet",
        partitioning="hive",
        filesystem=PyFileSystem(FSSpecHandler(fs)),
        ignore_prefixes=["_", "."],
    )
    return pl.scan_pyarrow_dataset(dataset)


def publish(folder: Path, url: str | Path) -> list[str]:
    """Copy every file under local ``folder`` to ``url`` (same relative paths); returns them. Lets a
    run write its outputs on local disk and hand them to object storage whole at the end."""
    fs, dest = filesystem(url)
    copied = []
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = file.relative_to(folder).as_posix()
        target = f"{dest.rstrip('/')}/{rel}"
        if "/" in target:
            fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(file), target)
        copied.append(rel)
    return copied


# ---- URL lakes: which locations are remote, where their local copies live, the committed file set ----

LOCAL_PROTOCOLS = ("file", "local")
CACHE_ENV = "LOCALSHELF_CACHE_DIR"  # local copies of URL lakes and staged URL outputs (default: temp)
REF = "_state/ref.json"  # the commit point of a URL lake: names the manifest of its committed files
MANIFESTS = "_state/manifests"


def is_url(location: str | Path) -> bool:
    """Whether ``location`` names a remote filesystem (``memory://``, ``s3://``...); plain paths and
    ``file://`` URLs are local."""
    text = str(location)
    return "://" in text and text.split("://", 1)[0].lower() not in LOCAL_PROTOCOLS


def local_path(location: str | Path) -> Path:
    """The local path of a plain path or a ``file://`` URL."""
    text = str(location)
    return Path(text.split("://", 1)[1]) if "://" in text else Path(text)


def cache_dir(kind: str, url: str) -> Path:
    """A local folder that belongs to ``url`` (the same one in every process on this machine):
    ``$LOCALSHELF_CACHE_DIR/<kind>-<hash>``, by default under the system's temp folder."""
    import hashlib
    import os
    import tempfile

    base = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "localshelf-cache")
    return (base / f"{kind}-{hashlib.sha256(url.encode()).hexdigest()[:16]}").resolve()


def in_lake_files(rel: str) -> bool:
    """Whether a lake-relative path is one of the lake's committed files (tables and load history),
    not a lock, journal, staging or hidden temporary file."""
    parts = rel.split("/")
    if any(p.startswith(".") for p in parts):
        return False
    return (parts[0].startswith("table=") and len(parts) > 1) or rel == "_state/loads.jsonl"


def read_json(url: str, rel: str) -> dict | None:
    """The JSON object at ``url``/``rel``, None when it does not exist."""
    import json

    fs, root = filesystem(url)
    try:
        return json.loads(fs.cat_file(f"{root.rstrip('/')}/{rel}"))
    except FileNotFoundError:
        return None


def committed_files(url: str) -> tuple[str | None, dict[str, str]]:
    """The URL lake's committed files: (manifest name, lake path -> object path relative to the lake).

    The ref (``_state/ref.json``) names the manifest; only the files it lists are the lake (objects of
    a load that failed before switching the ref are not). A lake without a ref (copied to the store
    by hand) is the table files found there."""
    ref = read_json(url, REF)
    if ref is not None:
        manifest = read_json(url, ref["manifest"])
        if manifest is None:
            raise FileNotFoundError(f"{url}: {REF} names {ref['manifest']}, which is missing")
        return ref["manifest"], dict(manifest["files"])
    fs, root = filesystem(url)
    root = root.rstrip("/")
    found = fs.find(root) if fs.exists(root) else []
    rels = (p[len(root) + 1 :] for p in found if p.startswith(root + "/"))
    return None, {r: r for r in sorted(rels) if in_lake_files(r)}


def table_objects(url: str, table: str) -> list[str]:
    """The committed Parquet objects of lake table ``table`` (paths on the URL's filesystem)."""
    _, files = committed_files(url)
    prefix = f"table={table}/"
    _, root = filesystem(url)
    return [
        f"{root.rstrip('/')}/{obj}"
        for rel, obj in sorted(files.items())
        if rel.startswith(prefix)
        and rel.endswith(".parquet")
        and not any(p.startswith("_") for p in rel.split("/")[1:])
    ]


def scan_objects(url: str, paths: list[str]) -> pl.LazyFrame:
    """Scan the Parquet files ``paths`` (on ``url``'s filesystem) as one LazyFrame through Arrow."""
    fs, _ = filesystem(url)
    dataset = ds.dataset(paths, format="parquet", filesystem=PyFileSystem(FSSpecHandler(fs)))
    return pl.scan_pyarrow_dataset(dataset)


def read_object(url: str, path: str) -> pl.DataFrame:
    """Read the Parquet file ``path`` on ``url``'s filesystem."""
    fs, _ = filesystem(url)
    with fs.open(path, "rb") as f:
        return pl.from_arrow(pq.read_table(f))  # type: ignore[return-value]
