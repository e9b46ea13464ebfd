"""What the report can be told: the currency money is shown in, how much each table shows, and which
store and product the forecast example follows."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReportSettings(BaseModel):
    """Settings of report.html and backtest/report.html (env: ``LOCALSHELF_REPORT__CURRENCY=EUR``)."""

    currency: str = Field(
        "USD", description="ISO code of the revenue columns' currency, shown on every amount."
    )
    keeps_per_store: int = Field(10, ge=0, description="Keeps listed per store (adds and drops: all).")
    changes_per_store: int = Field(60, gt=0, description="Adds, and drops, listed per store at most.")
    patterns_shown: int = Field(300, gt=0, description="Patterns listed in the pattern table at most.")
    prestock_shown: int = Field(300, gt=0, description="Pre-stock lines (region x product) listed at most.")
    history_days: int = Field(91, gt=0, description="Days of sales history drawn before a forecast.")
    example_store: str | None = Field(None, description="Store of the history-and-forecast example.")
    example_sku: str | None = Field(None, description="SKU of the history-and-forecast example.")
    examples: int = Field(6, ge=0, description="Store x SKU examples offered when none is chosen.")
