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

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from flows.lake.settings import IngestSettings
from flows.report.settings import ReportSettings
from models.advice.settings import AssortmentSettings
from models.demand_settings import DemandSettings, ModelSettings
from models.mining.settings import MiningSettings
from models.training_set import ScaleSettings


class Settings(BaseSettings):
    """Everything a run can be told, with defaults that work on the demo and on real drops."""

    model_config = SettingsConfigDict(
        env_prefix="LOCALSHELF_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    lake_dir: Path | str = Field(Path("lake"), description="Where the Parquet lake lives: a folder or a URL.")
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
    scale: ScaleSettings = ScaleSettings()
    report: ReportSettings = ReportSettings()

    def demand(self) -> DemandSettings:
        """The demand model's narrow settings."""
        return DemandSettings(
            model=self.model,
            horizon=self.horizon,
            seed=self.seed,
            num_threads=self.num_threads,
            event_lead_days=self.mining.event_lead_days,
            scale=self.scale,
        )

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
