"""Discovery of unlabeled events on a seeded synthetic chain with the confounders of real sales.

The chain: 5 regions x 40 SKUs x 420 days of over-dispersed demand with SKU seasons (peaks on
different days), trends, weekday cycles, month-start paydays chain-wide and a mid-month payday in one
region, promo weeks, a labeled chain-wide holiday and a labeled regional storm. Planted on top (or
not): a regional spike of 5 SKUs and a chain-wide spike of 4 SKUs nobody labeled.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from data_contracts.outputs import PATTERN_COLUMNS
from data_contracts.schemas import CHAIN_WIDE
from data_contracts.tables import LakeTables
from models.mining.discovery import Cube, DiscoverySettings, build_cube, expectation, scan, tail_p
from models.mining.discovery_rows import (
    begun_by,
    card_text,
    labeled_days,
    one_report_per_spike,
    resemblance,
)
from models.mining.discovery_spans import runs
from models.mining.patterns import EXTRA_COLUMNS, mine_patterns
from models.mining.settings import MiningSettings
from tests.worlds.planted import AS_OF as PATTERN_AS_OF
from tests.worlds.planted import START as PATTERN_START
from tests.worlds.planted import planted_chain

START = date(2024, 1, 1)
DAYS, REGIONS, SKUS = 420, 5, 40
SETTINGS = DiscoverySettings()
LOCAL = ("R2", 200, 3, (3, 7, 11, 19, 23))  # region, first day, days, SKUs
CHAIN = (300, 2, (5, 13, 29, 31))  # first day, days, SKUs (every region)
PAIR = (("R0", "R4"), 250, 3, (2, 9, 15, 27))  # one spike in two regions at once
STORM = ("R1", 150, 4, (0, 1, 2))  # a labeled regional event: region, first day, days, SKUs
HOLIDAY = (100, 3)  # a labeled chain-wide holiday: first day, days (every SKU 1.6x)


def _sku(k: int) -> str:
    return f"S{k:02d}"


def make_chain(*, unlabeled: bool, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Daily units per region x SKU x day (region_daily_units' columns) and the labeled events."""
    rng = np.random.default_rng(seed)
    t = np.arange(DAYS)
    dates = np.datetime64(START) + t
    dom = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    dow = (t + START.weekday()) % 7
    base = rng.lognormal(2.0, 0.6, size=SKUS)[None, :, None] * rng.uniform(0.6, 1.6, (REGIONS, 1, 1))
    season = 1 + 0.4 * np.cos(2 * np.pi * (t[None, :] - rng.integers(0, 365, SKUS)[:, None]) / 365)
    trend = np.exp(rng.normal(0, 0.3, SKUS)[:, None] * t[None, :] / 365)
    week = np.array([0.9, 0.85, 0.9, 1.0, 1.15, 1.3, 0.9])[dow]
    payday = np.where(dom <= 3, 1.35, 1.0)
    lam = base * (season * trend)[None] * (week * payday)[None, None, :]
    lam[3] *= np.where(dom == 15, 1.5, 1.0)  # region R3's own mid-month payday
    promo = rng.random((SKUS, DAYS // 7 + 1)) < 0.04
    promo = np.repeat(promo, 7, axis=1)[:, :DAYS]
    # the planted SKUs sell steadily and are off promo around their spike (as in the demo world)
    planted = list(LOCAL[3]) + list(CHAIN[2]) + list(PAIR[3])
    base[:, planted] = np.maximum(base[:, planted], 8.0)
    promo[list(LOCAL[3]), LOCAL[1] - 7 : LOCAL[1] + LOCAL[2] + 7] = False
    promo[list(CHAIN[2]), CHAIN[0] - 7 : CHAIN[0] + CHAIN[1] + 7] = False
    promo[list(PAIR[3]), PAIR[1] - 7 : PAIR[1] + PAIR[2] + 7] = False
    lam *= np.where(promo, 1.8, 1.0)[None]
    lam[:, :, HOLIDAY[0] : HOLIDAY[0] + HOLIDAY[1]] *= 1.6
    r, first, n, ks = STORM
    lam[int(r[1]), list(ks), first : first + n] *= 4.0
    if unlabeled:
        r, first, n, ks = LOCAL
        lam[int(r[1]), list(ks), first : first + n] *= 4.0
        first, n, ks = CHAIN
        lam[:, list(ks), first : first + n] *= 3.5
        regions, first, n, ks = PAIR
        for r in regions:
            lam[int(r[1]), list(ks), first : first + n] *= 4.0
    units = rng.poisson(lam * rng.gamma(5.0, 0.2, size=lam.shape))
    ri, ki, ti = np.indices(units.shape).reshape(3, -1)
    daily = pl.DataFrame(
        {
            "region": [f"R{i}" for i in ri],
            "sku": [_sku(k) for k in ki],
            "date": dates[ti],
            "units": units.ravel().astype(float),
            "promo": promo[ki, ti],
        }
    )
    events = pl.DataFrame(
        {
            "event_id": ["E1", "E2"],
            "event_type": ["holiday", "storm"],
            "region": [CHAIN_WIDE, STORM[0]],
            "start_date": [START + timedelta(days=HOLIDAY[0]), START + timedelta(days=STORM[1])],
            "end_date": [
                START + timedelta(days=HOLIDAY[0] + HOLIDAY[1] - 1),
                START + timedelta(days=STORM[1] + STORM[2] - 1),
            ],
        }
    )
    return daily, events


def _scan(unlabeled: bool) -> pl.DataFrame:
    daily, events = make_chain(unlabeled=unlabeled)
    cube = build_cube(daily, labeled_days(events, lead_days=SETTINGS.lead_days))
    return one_report_per_spike(scan(cube, SETTINGS), n_regions=REGIONS)


@pytest.fixture(scope="module")
def found() -> pl.DataFrame:
    return _scan(unlabeled=True)


def _windows(found: pl.DataFrame) -> pl.DataFrame:
    return (
        found.group_by("event_id", "region", "window_start", "window_end").agg(pl.col("sku")).sort("region")
    )


def _near(window: dict, first: int, days: int) -> bool:
    start, end = START + timedelta(days=first), START + timedelta(days=first + days - 1)
    return window["window_start"] <= end + timedelta(days=2) and window["window_end"] >= start - timedelta(
        days=2
    )


def _jaccard(a: list[str], b: list[str]) -> float:
    return len(set(a) & set(b)) / len(set(a) | set(b))


def test_the_planted_regional_window_is_found_with_its_skus(found: pl.DataFrame) -> None:
    local = _windows(found).filter(pl.col("region") == LOCAL[0]).to_dicts()
    assert len(local) == 1
    assert _near(local[0], LOCAL[1], LOCAL[2])
    assert _jaccard(local[0]["sku"], [_sku(k) for k in LOCAL[3]]) >= 0.7


def test_a_chain_wide_spike_is_reported_once_for_the_chain(found: pl.DataFrame) -> None:
    chain = _windows(found).filter(pl.col("region") == CHAIN_WIDE).to_dicts()
    assert len(chain) == 1
    assert _near(chain[0], CHAIN[0], CHAIN[1])
    assert _jaccard(chain[0]["sku"], [_sku(k) for k in CHAIN[2]]) >= 0.7
    regional = _windows(found).filter(pl.col("region") != CHAIN_WIDE).to_dicts()
    assert not [w for w in regional if _near(w, CHAIN[0], CHAIN[1])]


def test_a_spike_in_two_regions_is_two_regional_windows_not_a_chain_one(found: pl.DataFrame) -> None:
    near = [w for w in _windows(found).to_dicts() if _near(w, PAIR[1], PAIR[2])]
    assert sorted(w["region"] for w in near) == sorted(PAIR[0])
    for w in near:
        assert _jaccard(w["sku"], [_sku(k) for k in PAIR[3]]) >= 0.7


def test_labeled_events_paydays_and_seasons_are_not_rediscovered(found: pl.DataFrame) -> None:
    windows = _windows(found)
    assert windows.height == 4  # the planted ones, nothing else
    assert (found["q_value"] <= SETTINGS.fdr_alpha).all()


def test_lifts_come_with_intervals_around_the_planted_rise(found: pl.DataFrame) -> None:
    local = found.filter(pl.col("region") == LOCAL[0])
    assert (local["ci_low"] < local["lift"]).all() and (local["lift"] < local["ci_high"]).all()
    assert 2.5 < local["lift"].median() < 6.0  # planted 4x


def test_a_drop_without_unlabeled_events_yields_none() -> None:
    assert _scan(unlabeled=False).height == 0


def test_runs_merge_days_at_most_the_gap_apart() -> None:
    assert runs(np.array([3, 4, 6, 10, 11]), 1) == [(3, 6), (10, 11)]
    assert runs(np.array([], dtype=int), 1) == []


def test_labeled_days_cover_the_lead_days() -> None:
    events = pl.DataFrame(
        {"region": ["R0"], "start_date": [date(2024, 3, 10)], "end_date": [date(2024, 3, 11)]}
    )
    days = labeled_days(events, lead_days=2).sort("date")["date"].to_list()
    assert days == [date(2024, 3, 8) + timedelta(days=i) for i in range(4)]


def test_tail_p_is_poisson_without_overdispersion_and_heavier_with_it() -> None:
    y, e = np.array([6.0]), np.array([2.0])
    assert tail_p(y, e, e)[0] == pytest.approx(0.01656, abs=1e-4)  # P(Poisson(2) >= 6)
    assert tail_p(y, e, 3 * e)[0] > 0.05


def test_card_text_names_the_skus_the_rate_and_the_resemblance() -> None:
    window = pl.DataFrame(
        {
            "region": ["GULF_COAST"] * 3,
            "window_start": [date(2025, 8, 14)] * 3,
            "window_end": [date(2025, 8, 17)] * 3,
            "sku": ["W", "B", "P"],
            "lift": [3.2, 4.1, 6.4],
        }
    )
    risers = pl.DataFrame(
        {
            "region": ["GULF_COAST", "GULF_COAST", "X"],
            "event_type": ["hurricane"] * 2 + ["ice_storm"],
            "sku": ["W", "P", "B"],
        }
    )
    names = {"W": "water", "B": "batteries", "P": "Pop-Tarts"}
    assert card_text(window, names, risers) == (
        "On 2025-08-14 to 08-17 in GULF_COAST, Pop-Tarts, batteries and water sold 3-6x their expected rate "
        "together; no event is labeled for these days. Looks like a hurricane: 2 of its 3 SKUs are hurricane "
        "risers."
    )
    inland = pl.concat(
        [risers, pl.DataFrame({"region": ["NORTHEAST"], "event_type": ["winter_storm"], "sku": ["M"]})]
    )
    # the region's own risers do not match: any region's do
    assert resemblance({"W", "B", "P"}, "NORTHEAST", inland) == ("hurricane", 2)
    assert resemblance({"W", "Q", "R"}, "GULF_COAST", risers) is None
    wide = window.with_columns(pl.Series("lift", [2.04, 3.5, 4.6]))
    assert "sold 2-5x their expected rate" in card_text(wide, names, risers)


def _with_spike(tables: LakeTables, region: str, skus: list[str], first: date, days: int) -> LakeTables:
    """``tables`` with the store sales of ``skus`` in ``region`` at 5x on ``days`` days from ``first``."""
    stores = tables.stores.filter(pl.col("region") == region)["store_id"].implode()
    hit = (
        pl.col("store_id").is_in(stores)
        & pl.col("sku").is_in(skus)
        & pl.col("date").is_between(first, first + timedelta(days=days - 1))
    )
    sales = tables.store_sales.with_columns(
        pl.when(hit).then(pl.col("units") * 5).otherwise("units").alias("units")
    )
    return replace(tables, store_sales=sales)


def test_mine_patterns_writes_discovered_windows_as_contract_rows() -> None:
    plain = planted_chain(plant=True)
    spike_day = PATTERN_START + timedelta(days=205)
    spiked = _with_spike(plain, "R1", ["S04", "S05", "S06", "S07"], spike_day, 3)
    settings = MiningSettings()
    found = mine_patterns(spiked, as_of=PATTERN_AS_OF, settings=settings)
    rows = found.filter(pl.col("kind") == "discovered_event")
    assert found.columns == [*PATTERN_COLUMNS.names(), *EXTRA_COLUMNS]
    assert rows["event_id"].n_unique() == 1 and set(rows["region"]) == {"R1"}
    assert set(rows["sku"]) == {"S04", "S05", "S06", "S07"}
    assert abs((rows["window_start"][0] - spike_day).days) <= 2
    assert rows["explanation"][0].startswith(f"On {spike_day.isoformat()}")
    assert (
        mine_patterns(plain, as_of=PATTERN_AS_OF, settings=settings)
        .filter(pl.col("kind") == "discovered_event")
        .is_empty()
    )


def _ramp_chain(*, spike: bool) -> Cube:
    """4 regions x 30 SKUs x 364 days: R1 has its own mid-month payday (1.6x) and a steep regional
    season (demand doubles over six weeks and stays), every region the chain's month-start payday
    and weekday cycle; with ``spike``, 5 SKUs of R1 at 4x for 3 days on the ramp."""
    rng = np.random.default_rng(3)
    n_r, n_k, n_t = 4, 30, 364
    t = np.arange(n_t)
    dates = np.datetime64(START) + t
    dom = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    lam = rng.lognormal(2.2, 0.4, (n_r, n_k, 1)) * np.where(dom <= 3, 1.3, 1.0)[None, None, :]
    lam = lam * np.array([0.9, 0.85, 0.9, 1.0, 1.15, 1.3, 0.9])[(t + START.weekday()) % 7]
    lam[1] *= np.where(dom == 15, 1.6, 1.0) * (1 + np.clip((t - 150) / 42, 0, 1))
    if spike:
        lam[1, :5, 160:163] *= 4.0
    y = rng.poisson(lam * rng.gamma(20.0, 1 / 20.0, lam.shape)).astype(float)
    regions, skus = tuple(f"R{r}" for r in range(n_r)), tuple(_sku(k) for k in range(n_k))
    return Cube(regions, skus, START, y, np.zeros(y.shape, bool), np.zeros((n_r, n_t), bool))


def test_the_expectation_is_the_event_miners_counterfactual_with_a_regional_payday_and_season() -> None:
    quiet = _ramp_chain(spike=False)
    ex = expectation(quiet, SETTINGS)
    t = np.arange(quiet.y.shape[2])
    dom = ((np.datetime64(START) + t) - (np.datetime64(START) + t).astype("datetime64[M]")).astype(int) + 1
    # the fixed effects carry R1's own payday and its season: observed / expected stays near 1
    for days in (dom == 15, (t >= 150) & (t < 192), t >= 192):
        assert quiet.y[1][:, days].sum() / ex.expected[1][:, days].sum() == pytest.approx(1.0, abs=0.06)
    assert scan(quiet, SETTINGS).is_empty()
    found = one_report_per_spike(scan(_ramp_chain(spike=True), SETTINGS), n_regions=4)
    windows = _windows(found).to_dicts()
    assert [w["region"] for w in windows] == ["R1"]
    assert _near(windows[0], 160, 3) and _jaccard(windows[0]["sku"], [_sku(k) for k in range(5)]) >= 0.7


def test_an_upcoming_event_labels_its_lead_days() -> None:
    """as_of 2024-07-01, lead 7: the event of 07-04 has begun (its lead days from 06-27 are history),
    the one of 07-20 has not; a past one has."""
    as_of = date(2024, 7, 1)
    starts = [date(2024, 6, 1), date(2024, 7, 4), date(2024, 7, 20)]
    events = pl.DataFrame({"region": ["R0"] * 3, "start_date": starts, "end_date": starts})
    begun = begun_by(events, as_of=as_of, lead_days=7)
    assert begun["start_date"].to_list() == starts[:2]
    days = set(labeled_days(begun, lead_days=7)["date"])
    assert {date(2024, 6, 27), date(2024, 7, 1)} <= days
