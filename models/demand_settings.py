"""The demand model's settings (beside models/demand.py): what a run or a test tells the model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from features.panel import OPTIONAL_PRODUCT, OPTIONAL_STORE
from models.training_set import ScaleSettings


class ModelSettings(BaseModel):
    """LightGBM demand model."""

    lags: tuple[int, ...] = Field(
        (7, 14, 21, 28, 35, 42, 49, 56, 364),
        description="Own-history lags in days; a block uses those >= its floor.",
    )
    recent_days: int = Field(
        7, ge=0, description="Each block also gets lags floor .. floor + recent_days - 1."
    )
    windows: tuple[int, ...] = Field((7, 28, 91), description="Rolling-mean windows in days.")
    dow_weeks: tuple[int, ...] = Field((4, 12), description="Same-weekday means over this many weeks.")
    price_window: int = Field(
        28, ge=0, description="Days of recent price the price is compared with (0: none)."
    )
    horizon_blocks: tuple[int, ...] = Field(
        (7, 28),
        description="Last day of each direct model's block (the horizon closes the last). Two: four weekly "
        "blocks were no more accurate on the M5 bench (0.884 vs 0.878) for 3x the CPU (bench/README.md).",
    )
    planned_event_types: tuple[str, ...] = Field(
        ("holiday", "national", "religious", "cultural", "sporting", "snap", "payday", "promotion"),
        description="Event types known ahead: their future events are forecast features.",
    )
    categorical: tuple[str, ...] = Field(
        ("store_id", "sku", "region", "category", *OPTIONAL_PRODUCT, *OPTIONAL_STORE),
        description="Categorical features, each used where the reference tables have it.",
    )
    stale_days: int = Field(91, gt=0, description="A pair unsold this long (and not carried) is delisted.")
    num_leaves: int = 63
    learning_rate: float = 0.1
    num_boost_round: int = Field(
        120,
        description="Most boosting rounds; early stopping picks fewer. A cap on the CPU: uncapped, the M5 "
        "bench's windows stopped at 72-300 rounds; capped at 120 they forecast as well (bench/README.md).",
    )
    early_stopping_rounds: int = 30
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    objective: str = Field("tweedie", description="LightGBM objective; tweedie suits sparse daily counts.")
    tweedie_variance_power: float = Field(
        1.1, gt=1, lt=2, description="Tweedie power: best of 1.1, 1.2, 1.3 on 4 M5 windows (bench/m5_tweedie)"
    )
    max_train_rows: int = Field(3_000_000, gt=0, description="Sample training rows above this count.")
    train_days: int = Field(
        1095, ge=0, description="Days of history trained on (0: all); three years hold every season thrice."
    )
    valid_days: int = Field(
        28, gt=0, description="Most recent days held out for early stopping and intervals."
    )
    refit: Literal["full", "none"] = Field(
        "full",
        description="After early stopping on the held-out days: retrain on all days with the rounds found "
        "(full), or train only on the days before them (none: less boosting, blind to the last days).",
    )
    early_stopping: Literal["each", "shared"] = Field(
        "shared",
        description="each: every block has its own early-stopping pass, whose held-out residuals set its "
        "interval; shared: one pass on block ``stopping_block``, whose rounds and interval width every "
        "block reuses (one pass instead of one per block).",
    )
    stopping_block: int = Field(
        0, description="The block early-stopped when shared (index, -1 the last): the first week's."
    )
    max_bin: int = Field(
        31, gt=1, description="Histogram bins per feature: daily counts and rates need few split points."
    )
    interval_coverage: float = Field(0.8, gt=0, lt=1, description="Target share inside p10-p90.")


class DemandSettings(BaseModel):
    """What the demand model is told: its own settings plus the run's horizon, seed and threads."""

    model: ModelSettings = ModelSettings()
    horizon: int = Field(28, gt=0, description="Forecast horizon in days.")
    seed: int = 42
    num_threads: int = Field(1, gt=0, description="Threads for LightGBM.")
    event_lead_days: int = Field(7, ge=0, description="Days before an event's start counted in its window.")
    scale: ScaleSettings = ScaleSettings()  # memory budget: feature chunks and training rows (issue 14)
