"""Settings of the advice stage: the localized assortment and the pre-stock plan."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# Gruen, Corsten & Bharadwaj (2002), "Retail Out-of-Stocks: A Worldwide Examination of Extent, Causes
# and Consumer Responses" (Grocery Manufacturers of America), the survey the assortment literature
# quotes for substitution (e.g. Kok, Fisher & Vaidyanathan 2008, "Assortment planning: review of
# literature and industry practice"): when the item a shopper wants is missing, 19% buy another size or
# variety of the same brand, 26% another brand, 31% go to another store, 15% delay and 9% do not buy.
# So 45% of the missing item's demand stays in the store, 19/45 of it with the same brand.
TRANSFERENCE_SHARE = 0.45
SAME_BRAND_SHARE = 0.19 / 0.45


class AssortmentSettings(BaseModel):
    """How the localized assortment and the pre-stock plan are chosen."""

    transference_share: float = Field(
        TRANSFERENCE_SHARE,
        ge=0,
        le=1,
        description="Share of a missing SKU's demand that moves to kept SKUs of its subcategory "
        "(Gruen, Corsten & Bharadwaj 2002: 45% substitute in the store).",
    )
    same_brand_share: float = Field(
        SAME_BRAND_SHARE,
        ge=0,
        le=1,
        description="Of the transferred demand, the share that goes to kept SKUs of the same brand first.",
    )
    min_gain_share: float = Field(
        0.1,
        ge=0,
        description="A swap must raise weekly revenue, net of transference, by at least this share of "
        "the replaced SKU's weekly revenue.",
    )
    free_slot_bar: Literal["weakest_kept", "positive"] = Field(
        "weakest_kept",
        description="What an add into a free slot must clear with the p10 of its weekly revenue: the "
        "weakest kept SKU's expected revenue (weakest_kept), or only zero (positive: an empty slot sells "
        "nothing, so the best candidate fills it; bench/assortment_capture.py measures both).",
    )
    # The change cap is a guardrail the category manager sets (how much of a shelf a store can reset
    # in one run: labour, planograms, supplier terms); no source fixes its value. The defaults, a
    # quarter of a shelf and 8 changes per store, are a judgment call for a first run; what other caps
    # capture on held-out demand is measured in bench/README.md (bench/assortment_capture.py --caps).
    max_changes_share: float = Field(
        0.25, ge=0, le=1, description="At most this share of a store-category's shelf changes per run."
    )
    max_changes_per_store: int = Field(
        8, ge=0, description="At most this many adds and drops per store and run (forced drops excluded)."
    )
    recent_days: int = Field(
        28, gt=0, description="Days of a SKU's own recent sales checked against its forecast."
    )
    top_share: float = Field(
        0.25, gt=0, lt=0.5, description="'Top seller' = in this top share of the store's kept SKUs."
    )
    prestock_max_lift: float = Field(15.0, gt=1, description="Cap on the lift used for pre-stock quantities.")
    service_level: float = Field(
        0.9, gt=0.5, lt=1, description="Pre-stock buffer: the lift's quantile at this level (from its CI)."
    )
    lead_time_days: int = Field(
        2, ge=0, description="Days between stock arriving and the day it must be on the shelf."
    )
