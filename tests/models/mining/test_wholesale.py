"""A wholesale customer who reorders a SKU by the case online is one buyer, not a regional taste.

Real web shops have them (Online Retail II: a SKU's units over its buyers have a lump, sum of squared
units per buyer / units, of 52 at the median SKU and 394 at the 90th percentile): one business in a
region, 60 units a week, makes that region's online units of the SKU several times the rest of the
chain's. Neither local affinity nor latent demand may read it as the region's people wanting the
SKU; the miner counts buyers a week, with the buyers' repeat weeks in the variance.
"""

from __future__ import annotations

import dataclasses

import polars as pl

from features.signals import clean_store_sales, event_instances, online_region_units
from models.mining.affinity import affinity_hypotheses
from models.mining.patterns import _weekly_rows, apply_fdr
from models.mining.settings import MiningSettings
from tests.worlds.chains import Wholesale, seeded_chain
from tests.worlds.planted import AS_OF, START, planted_spec

# the wholesale customers: one in R0 on S05, carried everywhere; one in R2 on S03, which no store of R2
# carries (a latent demand candidate)
CASES = (Wholesale("S05", "R0", 60.0), Wholesale("S03", "R2", 60.0))
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
