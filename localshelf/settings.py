"""One typed settings object, read once at the entry point and passed down.

Values come from (highest first): explicit arguments, environment variables with the prefix
``LOCALSHELF_`` (nested with ``__``, e.g. ``LOCALSHELF_MODEL__NUM_LEAVES=63``), an optional TOML file
(``localshelf.toml`` in the working directory, or the path in ``LOCALSHELF_CONFIG``), then defaults.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class IngestSettings(BaseModel):
    """How drops are read into the lake."""

    batch_rows: int = Field(500_000, gt=0, description="Rows per batch when streaming a fact file.")
    read_workers: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        gt=0,
        description="Fact files read, checked and staged at once (threads; default: cores, at most 4).",
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


class ModelSettings(BaseModel):
    """LightGBM demand model."""

    lags: tuple[int, ...] = Field((28, 35, 42, 56, 364), description="Own-history lags in days (>= horizon).")
    windows: tuple[int, ...] = Field((7, 28, 91), description="Rolling-mean windows in days.")
    num_leaves: int = 63
    learning_rate: float = 0.1
    num_boost_round: int = 500
    early_stopping_rounds: int = 30
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    objective: str = Field("tweedie", description="LightGBM objective; tweedie suits sparse daily counts.")
    max_train_rows: int = Field(3_000_000, gt=0, description="Sample training rows above this count.")
    valid_days: int = Field(28, gt=0, description="Most recent days held out for early stopping.")


class MiningSettings(BaseModel):
    """Pattern mining and its significance filter."""

    fdr_alpha: float = Field(0.05, gt=0, lt=1, description="Benjamini-Hochberg level over all hypotheses.")
    event_lead_days: int = Field(7, ge=0, description="Days before an event's start counted in its window.")
    event_baseline_days: int = Field(56, gt=0, description="Days before the window used as baseline.")
    min_event_support: int = Field(2, ge=1, description="Fewest events behind an event_uplift pattern.")
    min_lift: float = Field(1.3, gt=1, description="Smallest event lift worth reporting.")
    min_affinity_lift: float = Field(1.25, gt=1, description="Smallest local-affinity lift (or 1/lift).")
    min_latent_lift: float = Field(0.25, gt=0, description="Smallest latent-demand lift worth reporting.")
    min_weeks: int = Field(8, ge=1, description="Fewest weeks behind a weekly pattern.")


class AssortmentSettings(BaseModel):
    """Assortment advice."""

    min_gain_ratio: float = Field(
        1.2, ge=1, description="An add replaces a kept SKU only if it sells this much more."
    )
    max_changes_share: float = Field(
        0.25, ge=0, le=1, description="At most this share of a store-category's shelf changes per run."
    )
    prestock_max_lift: float = Field(15.0, gt=1, description="Cap on the lift used for pre-stock quantities.")


class Settings(BaseSettings):
    """Everything a run can be told, with defaults that work on the demo and on real drops."""

    model_config = SettingsConfigDict(
        env_prefix="LOCALSHELF_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    lake_dir: Path = Field(Path("lake"), description="Where the Parquet lake lives.")
    horizon: int = Field(28, gt=0, description="Forecast horizon in days.")
    as_of: date | None = Field(None, description="Forecast origin; default: the last date in the data.")
    seed: int = Field(42, description="Seed for every random choice (sampling, model).")
    num_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, gt=0, description="Threads for LightGBM."
    )
    hmac_secret: SecretStr | None = Field(
        None, description="Key for hashing customer_id (HMAC-SHA256). Required when orders carry ids."
    )
    ingest: IngestSettings = IngestSettings()
    model: ModelSettings = ModelSettings()
    mining: MiningSettings = MiningSettings()
    assortment: AssortmentSettings = AssortmentSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("LOCALSHELF_CONFIG", "localshelf.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


def load_settings(**overrides: Any) -> Settings:
    """Return the settings from env/TOML/defaults, with ``overrides`` (None values ignored) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
