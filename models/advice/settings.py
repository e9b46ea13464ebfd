"""Settings of the advice: assortment and pre-stock."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AssortmentSettings(BaseModel):
    """Assortment advice."""

    min_gain_ratio: float = Field(
        1.2, ge=1, description="An add replaces a kept SKU only if it sells this much more."
    )
    max_changes_share: float = Field(
        0.25, ge=0, le=1, description="At most this share of a store-category's shelf changes per run."
    )
    prestock_max_lift: float = Field(15.0, gt=1, description="Cap on the lift used for pre-stock quantities.")
