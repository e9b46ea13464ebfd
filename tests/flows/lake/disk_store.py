"""``testdisk://``: an fsspec filesystem on the local disk that localshelf treats as a remote store
(the in-memory one lives in one process; a killed load needs a store that outlives it)."""

from __future__ import annotations

from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


class DiskStore(LocalFileSystem):
    protocol = ("testdisk",)

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        path = str(path)
        return super()._strip_protocol(path.removeprefix("testdisk://"))


def register() -> None:
    fsspec.register_implementation("testdisk", DiskStore, clobber=True)
