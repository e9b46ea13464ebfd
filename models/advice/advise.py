"""The advice, one way: the same ``advise`` makes a run's assortment and pre-stock plan and every
backtest fold's, and ``plan_event`` answers a planner's question about one upcoming event from a
finished run's tables (no ingest, no training)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from data_contracts.tables import LakeTables
from models.advice.assortment import recommend_assortment
from models.advice.inputs import candidate_pairs
from models.advice.prestock import (
    ALL_REGIONS,
    latest_on_hand,
    plan_events,
    significant_event_patterns,
    upcoming_events,
)
from models.advice.settings import AssortmentSettings

if TYPE_CHECKING:  # the model and the miner are imported only when advise_at runs
    from models.demand import DemandSettings
    from models.mining.settings import MiningSettings


@dataclass(frozen=True)
class Advice:
    """What a store is told: its assortment (ASSORTMENT_COLUMNS) and pre-stock plan (PRESTOCK_COLUMNS)."""

    assortment: pl.DataFrame
    prestock: pl.DataFrame


def advised_pairs(assortment: pl.DataFrame, stores: pl.DataFrame | None = None) -> pl.DataFrame:
    """Return (store_id, region, sku) of the SKUs each store carries after the advice (add + keep)."""
    pairs = assortment.filter(pl.col("action").is_in(["add", "keep"]))
    if stores is not None:
        pairs = pairs.drop("region", strict=False).join(stores.select("store_id", "region"), on="store_id")
    return pairs.select("store_id", "region", "sku").unique()


def advise(
    tables: LakeTables,
    patterns: pl.DataFrame,
    forecast: pl.DataFrame,
    candidates: pl.DataFrame,
    *,
    as_of: date,
    settings: AssortmentSettings,
    lead_days: int,
    fdr_alpha: float,
) -> Advice:
    """Return the assortment for every store and the pre-stock plan for every listed upcoming event.

    ``forecast`` covers every pair of ``candidates`` (``models.advice.inputs.candidate_pairs``) for the
    days after ``as_of``; ``patterns`` are the run's significant patterns."""
    assortment = recommend_assortment(tables, candidates, forecast, patterns, as_of=as_of, settings=settings)
    prestock = plan_events(
        upcoming_events(tables.events, as_of=as_of),
        patterns,
        forecast,
        advised_pairs(assortment, tables.stores),
        tables.products,
        as_of=as_of,
        settings=settings,
        on_hand=latest_on_hand(tables.store_sales, as_of=as_of),
        lead_days=lead_days,
        fdr_alpha=fdr_alpha,
    )
    return Advice(assortment, prestock)


def advise_at(
    tables: LakeTables,
    *,
    as_of: date,
    horizon: int,
    settings: AssortmentSettings,
    mining: MiningSettings,
    demand: DemandSettings,
) -> Advice:
    """Return ``advise`` made from scratch on ``tables`` as of ``as_of``: mine the patterns, fit the
    demand model, forecast every candidate pair. A backtest fold runs this; a run does the same steps
    as separate flow tasks (so it can resume) and ends in the same ``advise``."""
    from models.demand import fit_demand_model, forecast_demand
    from models.mining.patterns import mine_patterns

    patterns = mine_patterns(tables, as_of=as_of, settings=mining)
    model = fit_demand_model(tables, as_of=as_of, settings=demand)
    candidates = candidate_pairs(tables, patterns)
    forecast = forecast_demand(model, tables, candidates.select("store_id", "sku"), horizon=horizon)
    return advise(
        tables, patterns, forecast, candidates, as_of=as_of, settings=settings,
        lead_days=mining.event_lead_days, fdr_alpha=mining.fdr_alpha,
    )  # fmt: skip


class UnknownEventError(ValueError):
    """An event type or region the run does not know; the message lists the known ones."""


@dataclass(frozen=True)
class EventPlan:
    """The plan for one event, and one sentence on what it holds (or why it is empty)."""

    plan: pl.DataFrame
    message: str


def check_event(event_type: str, region: str, *, known_types: set[str], known_regions: set[str]) -> None:
    """Raise UnknownEventError when the type or region is not one the run knows."""
    if event_type not in known_types:
        known = ", ".join(sorted(known_types)) or "none"
        raise UnknownEventError(f"Unknown event type {event_type!r}. Known event types: {known}.")
    if region != ALL_REGIONS and region not in known_regions:
        raise UnknownEventError(
            f"Unknown region {region!r}. Known regions: {', '.join(sorted(known_regions))} (or ALL)."
        )


def plan_event(
    patterns: pl.DataFrame,
    forecast: pl.DataFrame,
    pairs: pl.DataFrame,
    products: pl.DataFrame,
    *,
    event: pl.DataFrame,
    as_of: date,
    settings: AssortmentSettings,
    on_hand: pl.DataFrame | None = None,
    lead_days: int = 7,
    fdr_alpha: float = 0.05,
) -> EventPlan:
    """Return the pre-stock plan for the one event in ``event`` (prestock.EVENT_COLUMNS) from a run's
    patterns, forecast and advised ``pairs`` (store_id, region, sku), with a sentence saying what it
    holds, or why it is empty (no significant pattern of that type in that region, or none for SKUs
    the region's stores carry)."""
    row = event.row(0, named=True)
    plan = plan_events(
        event, patterns, forecast, pairs, products, as_of=as_of, settings=settings, on_hand=on_hand,
        lead_days=lead_days, fdr_alpha=fdr_alpha,
    )  # fmt: skip
    kind, region = row["event_type"], row["region"]
    if plan.height:
        return EventPlan(
            plan,
            f"{plan.height} order lines for {plan['store_id'].n_unique()} stores and "
            f"{plan['sku'].n_unique()} SKUs; first order by {plan['stock_by'].min()!s}.",
        )
    sig = significant_event_patterns(patterns, fdr_alpha=fdr_alpha).filter(pl.col("event_type") == kind)
    where = sorted(set(sig["region"].to_list()))
    if region != ALL_REGIONS and region not in where and ALL_REGIONS not in where:
        elsewhere = f" (it has patterns in {', '.join(where)})" if where else ""
        why = f"no significant {kind} pattern in {region}{elsewhere}"
    elif sig.height == 0:
        why = f"no significant {kind} pattern in any region"
    else:
        why = f"the SKUs that rise around {kind} events are not carried by the stores there"
    return EventPlan(plan, f"Empty plan: {why}.")
