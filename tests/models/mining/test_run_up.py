"""A holiday whose shoppers start weeks before its lead days lends its run-up to another type: a known
limitation (issue 8), kept here as a strict expected failure so that a fix shows.

Real data has it: on M5, Independence Day's run-up in FOODS_3_702 is under way days before its 7 lead
days, and a placebo holiday on those days (NBA Finals end + 7 days) reads 1.55x chain-wide, q 0.03
(``bench/m5_holidays.py``). A chain-wide day has no control region, so nothing in its counterfactual
sees a run-up no type names. The world here: three years, two chain-wide ``feast`` days a year with S0
at 1.6x over the 20 days before each and 2.5x on the day, and a no-effect chain-wide ``fanfest`` 10-12
days before each feast. Tried and measured (``bench/README.md``, M5 holidays): run-up days kept out of
scoring, modelled as an effect, or kept out only where the run-up tests high; none cut M5's placebo
patterns without costing real holidays or random-day placebos.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from features.signals import clean_store_sales
from models.mining.event_uplift import event_uplift_hypotheses
from models.mining.patterns import apply_fdr
from models.mining.settings import MiningSettings
from tests.worlds.chains import ChainSpec, Lift, seeded_chain

START = date(2021, 1, 4)
DAYS = 1092
AS_OF = START + timedelta(days=DAYS - 1)
FEASTS = [date(y, m, d) for y in (2021, 2022, 2023) for m, d in ((6, 20), (11, 25))]
RUN_UP, RUN_UP_LIFT, FEAST_LIFT = 20, 1.6, 2.5
FANFEST_BEFORE = (10, 11, 12, 10, 11, 12)  # days before each feast


def _world() -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    lifts = []
    for h in FEASTS:
        t = (h - START).days
        lifts += [Lift("S0", RUN_UP_LIFT, days=(t - RUN_UP, t)), Lift("S0", FEAST_LIFT, days=(t, t + 1))]
    days = [("feast", h) for h in FEASTS] + [
        ("fanfest", h - timedelta(days=b)) for h, b in zip(FEASTS, FANFEST_BEFORE, strict=True)
    ]
    events = pl.DataFrame(
        [(f"E{i:02d}", t, t, "ALL", d, d) for i, (t, d) in enumerate(days)],
        schema=["event_id", "event_type", "name", "region", "start_date", "end_date"],
        orient="row",
    )
    stores = tuple(f"T{i}" for i in range(6))
    spec = ChainSpec(
        start=START,
        days=DAYS,
        stores=stores,
        store_regions=("R0", "R0", "R1", "R1", "R2", "R2"),
        store_scale=(1.0, 0.8, 1.2, 0.9, 1.1, 1.0),
        skus=("S0", "S1", "S2"),
        categories=("C",) * 3,
        sku_level=(40.0, 4.0, 8.0),
        prices=(2.0,) * 3,
        weekday=(0.9, 0.9, 0.95, 1.0, 1.1, 1.3, 0.85),
        lifts=tuple(lifts),
        events=events,
    )
    world = seeded_chain(spec, seed=5)
    sales = clean_store_sales(world.store_sales, world.stores.lazy(), as_of=AS_OF)
    return sales, world.events.lazy(), world.stores.lazy().select("region").unique()


@pytest.fixture(scope="module")
def found() -> set[tuple[str, str, str]]:
    sales, events, regions = _world()
    settings = MiningSettings(min_lift=1.0)
    hyp = event_uplift_hypotheses(sales, None, events, regions, as_of=AS_OF, settings=settings)
    significant = apply_fdr(hyp.with_columns(pl.lit("event_uplift").alias("kind")), settings)
    return set(significant.select("event_type", "region", "sku").iter_rows())


def test_the_holiday_is_found(found: set[tuple[str, str, str]]) -> None:
    assert ("feast", "ALL", "S0") in found


@pytest.mark.xfail(strict=True, reason="known limitation: a long run-up reads as the other type's pattern")
def test_a_type_inside_a_holidays_run_up_reads_no_pattern(found: set[tuple[str, str, str]]) -> None:
    assert {k for k in found if k[0] == "fanfest"} == set()
