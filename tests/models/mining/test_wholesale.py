"""A wholesale customer who reorders by the case online is one buyer: not a regional taste, not an event.

Real web shops have them (Online Retail II: a SKU's units over its buyers have a lump, sum of squared
units per buyer / units, of 52 at the median SKU and 394 at the 90th percentile): one business in a
region, 60 units a week, makes that region's online units of the SKU several times the rest of the
chain's, and a big order of many SKUs on one day looks like a co-rise. Neither local affinity nor
latent demand may read it as the region's people wanting the SKU, nor discovery as an event nobody
labeled: the miner counts online buyers (a day's, or a week's with the buyers' repeat weeks in the
variance), not units.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import polars as pl
import pytest

from features.signals import clean_store_sales, daily_online_units, event_instances, online_region_units
from models.mining import discovery_rows
from models.mining.affinity import affinity_hypotheses
from models.mining.discovery import DiscoverySettings
from models.mining.patterns import _weekly_rows, apply_fdr
from models.mining.settings import MiningSettings
from tests.worlds.chains import Wholesale, seeded_chain
from tests.worlds.planted import AS_OF, START, planted_spec

# the wholesale customers: one in R0 on S05, carried everywhere; one in R2 on S03, which no store of R2
# carries (a latent demand candidate)
CASES = (Wholesale(("S05",), "R0", 60.0), Wholesale(("S03",), "R2", 60.0))
FILTER_OFF = MiningSettings(min_lift=1.0, min_affinity_lift=1.0001)


def _reported(*, plant: bool, settings: MiningSettings) -> set[tuple[str, str, str]]:
    world = seeded_chain(dataclasses.replace(planted_spec(plant=plant), wholesale=CASES), seed=7)
    sales = clean_store_sales(world.store_sales, world.stores.lazy(), as_of=AS_OF)
    parts = _weekly_rows(world, sales, first=START, as_of=AS_OF, settings=settings)
    rows = pl.concat(parts, how="diagonal_relaxed").with_columns(pl.lit(None, pl.String).alias("event_type"))
    return set(apply_fdr(rows, settings).select("kind", "region", "sku").iter_rows())


def test_units_read_the_wholesale_customer_as_a_regional_taste() -> None:
    # the mistake the miner must not make: the region's online units as its demand
    world = seeded_chain(dataclasses.replace(planted_spec(plant=False), wholesale=CASES), seed=7)
    sales = clean_store_sales(world.store_sales, world.stores.lazy(), as_of=AS_OF)
    settings = MiningSettings()
    instances = event_instances(
        world.events.lazy(), world.stores.lazy().select("region"), lead_days=settings.event_lead_days
    )
    online = online_region_units(world.online_orders, world.postal_regions.lazy(), as_of=AS_OF)
    tested = affinity_hypotheses(sales, instances, first=START, as_of=AS_OF, settings=settings, online=online)
    row = tested.filter((pl.col("region") == "R0") & (pl.col("sku") == "S05"))
    assert row["lift"].item() > 1.5 and row["p_value"].item() < 1e-10


def test_the_miner_reads_no_pattern_from_wholesale_customers() -> None:
    for settings in (MiningSettings(), FILTER_OFF):
        assert _reported(plant=False, settings=settings) == set()


def test_planted_tastes_are_found_beside_wholesale_customers() -> None:
    reported = _reported(plant=True, settings=MiningSettings())
    assert {("local_affinity", "R1", "S01"), ("local_affinity", "R2", "S02")} <= reported
    assert {k for k in reported if k[1:] in {("R0", "S05"), ("R2", "S03")}} == {
        ("latent_demand", "R2", "S03")
    }


def _online_units(orders: pl.LazyFrame, postal_regions: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Online demand as units (the mistake): ``daily_online_units`` in ``daily_online_buyers``' shape."""
    return daily_online_units(orders, postal_regions, as_of=as_of).rename({"units": "buyers"})


def _discovered_windows(*, units: bool, monkeypatch: pytest.MonkeyPatch) -> int:
    # one business in R1 orders 200 of each of eight SKUs on about one day in twenty
    spec = planted_spec(plant=False)
    case = Wholesale(spec.skus[4:12], "R1", 200.0, every=20, irregular=True)
    world = seeded_chain(dataclasses.replace(spec, wholesale=(case,)), seed=7)
    if units:
        monkeypatch.setattr(discovery_rows, "daily_online_buyers", _online_units)
    rows = discovery_rows.discovered_event_rows(
        world, as_of=AS_OF, mined=discovery_rows.NO_PATTERNS, settings=DiscoverySettings()
    )
    return rows["event_id"].n_unique()


def test_a_businesss_big_orders_are_not_events_nobody_labeled(monkeypatch: pytest.MonkeyPatch) -> None:
    # on Online Retail II's orders (four regions of customers at random, clean store sales, the 300
    # busiest SKUs) online units read 83-102 discovered windows per split (bench/online_placebo.py)
    assert _discovered_windows(units=False, monkeypatch=monkeypatch) == 0
    assert _discovered_windows(units=True, monkeypatch=monkeypatch) >= 5  # the mistake it guards against
