"""The settings of the scan for unlabeled events (``models/mining/discovery.py``), in a module of their
own so the scan's parts can name them without importing the scan."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DiscoverySettings(BaseModel):
    """Scanning for unlabeled events."""

    fdr_alpha: float = Field(0.05, gt=0, lt=1, description="BH level over every region x day scanned.")
    lead_days: int = Field(7, ge=0, description="Days before a labeled event's start it still covers.")
    block_days: int = Field(28, ge=7, description="Length of the region x SKU blocks of the expected level.")
    guard_days: int = Field(1, ge=0, description="Days either side of a day left out of its own level.")
    min_expected: float = Field(0.5, gt=0, description="Fewest expected units for a SKU-day to be scanned.")
    riser_z: float = Field(3.5, gt=0, description="Standard errors above expectation that make a riser.")
    min_lift: float = Field(1.5, ge=1, description="Smallest observed / expected of a rising SKU.")
    min_skus: int = Field(3, ge=2, description="Fewest SKUs rising together for a discovered window.")
    merge_gap_days: int = Field(1, ge=0, description="Significant days this close form one window.")
    span_days: tuple[int, ...] = Field((1, 3), description="Lengths of the day spans scanned.")
    empirical_null: bool = Field(True, description="Calibrate the riser test's tail on the data.")
    store_check: bool = Field(
        True, description="Keep a window's SKUs only where they rose beyond the store holding most of it."
    )
