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
