"""Settings of the lake: how drops are read into it."""

from __future__ import annotations

import os
from datetime import date

from pydantic import BaseModel, Field


class IngestSettings(BaseModel):
    """How drops are read into the lake."""

    batch_rows: int = Field(500_000, gt=0, description="Rows per batch when streaming a fact file.")
    read_workers: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        gt=0,
        description="Fact files read, checked and staged at once (threads; default: cores, at most 4).",
    )
    keep_rows_max: int = Field(
        20_000_000,
        ge=0,
        description="Rows of a load kept in memory for its validation at most (more: read back).",
    )
    max_future_days: int = Field(
        0, ge=0, description="Fact dates may lie at most this many days after the as-of date."
    )
    min_date: date = Field(date(2000, 1, 1), description="Fact dates before this are quarantined.")
    unmapped_postal_warn_share: float = Field(
        0.02, ge=0, le=1, description="Warn when more online order lines than this share have no region."
    )
    min_load_ratio: float = Field(
        0.5, ge=0, le=1, description="Warn when a load has fewer rows than this share of the previous one."
    )
    lock_timeout_s: float = Field(
        600.0, ge=0, description="How long a load waits for another loader to release the lake."
    )
