"""The GX runner reads and hands over the next batches in two threads while the current one is checked."""

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
        assert len(pulled) <= int(label) + _Prepared.SLOTS, "one checked, one handed over, one read"
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


def test_an_error_while_handing_over_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    import data_contracts.validate as validate

    def adapter(df: pl.DataFrame, contract: object = None) -> object:
        if df["latitude"][0] == 1.0:
            raise ValueError("cannot hand over")
        return to_gx_frame(df)

    monkeypatch.setattr(validate, "to_gx_frame", adapter)
    timings = dict.fromkeys(("read", "handover", "waited"), 0.0)
    labels = []
    with pytest.raises(ValueError, match="cannot hand over"):
        for _, label, _ in _Prepared(_batches(5, []), timings):
            labels.append(label)
    assert labels == ["0"]


def test_stopping_early_stops_both_threads() -> None:
    timings = dict.fromkeys(("read", "handover", "waited"), 0.0)
    pulled: list[int] = []
    prepared = _Prepared(_batches(50, pulled), timings)
    for _, label, _ in prepared:
        if label == "1":
            break
    prepared.close()
    assert not any(thread.is_alive() for thread in prepared._threads)
    assert len(pulled) <= 2 + _Prepared.SLOTS
