"""The GX runner prepares the next batch in a thread while the current one is checked."""

from __future__ import annotations

import time
from collections.abc import Iterator

import polars as pl
import pytest

from data_contracts.schemas import STORES
from data_contracts.validate import Batch, _Prepared, to_gx_frame


def _batches(n: int, pulled: list[int], fail_at: int | None = None) -> Iterator[Batch]:
    for i in range(n):
        if i == fail_at:
            raise OSError("partition unreadable")
        pulled.append(i)
        yield STORES, str(i), pl.DataFrame({"store_id": [f"{i:03d}"], "latitude": [float(i)]})


def test_batches_come_in_order_as_gx_frames_at_most_two_at_once() -> None:
    pulled: list[int] = []
    timings = dict.fromkeys(("read", "handover", "waited"), 0.0)
    seen = []
    for contract, label, frame in _Prepared(_batches(5, pulled), timings):
        time.sleep(0.05)  # the thread has all the time it wants to run ahead
        assert len(pulled) <= int(label) + 2, "one frame checked, one prepared, no more"
        expected = to_gx_frame(pl.DataFrame({"store_id": [f"{int(label):03d}"], "latitude": [float(label)]}))
        assert contract is STORES and frame.equals(expected)
        seen.append(label)
    assert seen == ["0", "1", "2", "3", "4"]


def test_an_error_while_preparing_reaches_the_caller() -> None:
    timings = dict.fromkeys(("read", "handover", "waited"), 0.0)
    labels = []
    with pytest.raises(OSError, match="partition unreadable"):
        for _, label, _ in _Prepared(_batches(5, [], fail_at=2), timings):
            labels.append(label)
    assert labels == ["0", "1"]
