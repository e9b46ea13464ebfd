"""End-to-end tests of pattern mining on a seeded synthetic chain, plus the FDR step and the sentences."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.outputs import PATTERN_COLUMNS
from models.mining.patterns import EXTRA_COLUMNS, apply_fdr, explain, mine_patterns
from models.mining.settings import MiningSettings
from tests.worlds.planted import AS_OF, START, Names, planted_chain

SETTINGS = MiningSettings()


@pytest.fixture(scope="module")
def planted() -> pl.DataFrame:
    return mine_patterns(planted_chain(plant=True), as_of=AS_OF, settings=SETTINGS)


def _rows(patterns: pl.DataFrame, kind: str) -> pl.DataFrame:
    return patterns.filter(pl.col("kind") == kind)


def test_columns_follow_the_output_contract(planted: pl.DataFrame) -> None:
    assert planted.columns == [*PATTERN_COLUMNS.names(), *EXTRA_COLUMNS]
    assert planted.schema["support"] == pl.Int64
    assert (planted["q_value"] <= SETTINGS.fdr_alpha).all()
    assert planted["explanation"].str.len_chars().min() > 20


def test_planted_event_uplift_is_found_with_its_peak(planted: pl.DataFrame) -> None:
    events = _rows(planted, "event_uplift")
    assert events.select("event_type", "region", "sku").rows() == [("storm", "R0", "S00")]
    row = events.row(0, named=True)
    assert 4.5 < row["lift"] < 7.0  # planted 5x, 10x on one day of ten
    assert row["ci_low"] < row["lift"] < row["ci_high"]
    assert row["support"] == 6
    assert row["peak_offset_days"] == -1
    assert row["window_start_offset_days"] == -SETTINGS.event_lead_days  # the uplift starts a week early


def test_no_effect_event_type_gives_no_pattern(planted: pl.DataFrame) -> None:
    assert _rows(planted, "event_uplift").filter(pl.col("event_type") == "fake").height == 0


def test_planted_affinity_is_found_in_the_right_direction(planted: pl.DataFrame) -> None:
    aff = _rows(planted, "local_affinity")
    up = aff.filter((pl.col("region") == "R1") & (pl.col("sku") == "S01"))
    down = aff.filter((pl.col("region") == "R2") & (pl.col("sku") == "S02"))
    assert up["lift"].to_list()[0] > SETTINGS.min_affinity_lift
    assert down["lift"].to_list()[0] < 1 / SETTINGS.min_affinity_lift
    # only the two planted SKUs differ between regions (the others only mirror them)
    assert set(aff["sku"]) <= {"S01", "S02"}


def test_planted_latent_demand_is_found(planted: pl.DataFrame) -> None:
    latent = _rows(planted, "latent_demand")
    assert latent.select("region", "sku").rows() == [("R2", "S03")]
    assert latent["lift"].item() > SETTINGS.min_latent_lift


def test_sorted_by_kind_then_strength(planted: pl.DataFrame) -> None:
    kinds = planted["kind"].to_list()
    assert kinds == sorted(kinds, key=["event_uplift", "local_affinity", "latent_demand"].index)
    aff = _rows(planted, "local_affinity")["lift"].log().abs().to_list()
    assert aff == sorted(aff, reverse=True)


@pytest.mark.parametrize("seed", [1, 2])
def test_pure_noise_gives_no_patterns(seed: int) -> None:
    assert mine_patterns(planted_chain(plant=False, seed=seed), as_of=AS_OF, settings=SETTINGS).height == 0


def test_renaming_regions_skus_and_event_types_changes_nothing(planted: pl.DataFrame) -> None:
    names = Names(
        regions=("zz", "aa", "mm"), skus=tuple(f"q{11 - i}" for i in range(12)), storm="b", fake="a"
    )
    renamed = mine_patterns(planted_chain(plant=True, names=names), as_of=AS_OF, settings=SETTINGS)
    back = {
        "region": dict(zip(names.regions, Names().regions, strict=True)),
        "sku": dict(zip(names.skus, Names().skus, strict=True)),
        "event_type": {"b": "storm", "a": "fake"},
    }
    renamed = renamed.with_columns(pl.col(c).replace(m) for c, m in back.items())
    cols = ["kind", "region", "sku", "event_type", "lift", "ci_low", "ci_high", "support", "q_value"]
    keys = ["kind", "region", "sku"]
    assert_frame_equal(renamed.select(cols).sort(keys), planted.select(cols).sort(keys))


def test_as_of_before_any_event_end_mines_no_events() -> None:
    early = START + timedelta(days=60)
    out = mine_patterns(planted_chain(plant=True), as_of=early, settings=SETTINGS)
    assert _rows(out, "event_uplift").height == 0


def test_empty_lake_gives_an_empty_frame_with_the_columns() -> None:
    world = planted_chain(plant=False)
    empty = replace(world, store_sales=world.store_sales.clear())
    out = mine_patterns(empty, as_of=AS_OF, settings=SETTINGS)
    assert out.height == 0
    assert out.columns == [*PATTERN_COLUMNS.names(), *EXTRA_COLUMNS]


def test_apply_fdr_adjusts_over_families_of_all_kinds_and_applies_lift_thresholds() -> None:
    hyp = pl.DataFrame(
        {
            "kind": ["event_uplift", "event_uplift", "local_affinity", "local_affinity", "latent_demand"],
            "region": ["a", "a", "b", "c", "d"],
            "sku": ["x", "y", "x", "x", "z"],
            "event_type": ["e", "e", None, None, None],
            "lift": [2.0, 1.1, 0.5, 1.1, 0.3],
            "p_value": [0.001, 0.001, 0.002, 0.003, 0.9],
        }
    )
    out = apply_fdr(hyp, MiningSettings(fdr_alpha=0.05))
    # families (two-level FDR): event type e (BH q 0.001, 0.001; Simes 0.001), affinity (0.003, 0.003;
    # Simes 0.003), latent (0.9); BH over the three Simes p-values selects R = 2 of M = 3, so
    # q = within-family q * 3 / 2; 1.1x is under both lift thresholds
    assert out.sort("region", "sku").select("region", "sku").rows() == [("a", "x"), ("b", "x")]
    assert out.sort("region", "sku")["q_value"].to_list() == pytest.approx([0.0015, 0.0045])


def test_apply_fdr_keeps_the_larger_lift_of_two_event_windows() -> None:
    hyp = pl.DataFrame(
        {
            "kind": ["event_uplift"] * 2,
            "region": ["a"] * 2,
            "sku": ["x"] * 2,
            "event_type": ["e"] * 2,
            "lift": [2.0, 3.0],
            "p_value": [0.001, 0.002],
            "window_start_offset_days": [-7, 0],
        }
    )
    out = apply_fdr(hyp, SETTINGS)
    assert out.select("lift", "window_start_offset_days").rows() == [(3.0, 0)]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {
                "kind": "event_uplift",
                "event_type": "winter_storm",
                "peak_offset_days": -1,
                "window_start_offset_days": -7,
                "support": 6,
            },
            "In the 7 days before and during winter storm events in R, demand for Pastry ran at 6.8x the "
            "rate expected without the event (95% CI 5.9-7.8x, 6 events), peaking 1 day before the event "
            "starts.",
        ),
        (
            {"kind": "local_affinity", "event_type": None, "peak_offset_days": None, "support": 40},
            "In R, Pastry sells more than elsewhere: 6.8x its chain-wide share of sales in the stores that "
            "carry it (95% CI 5.9-7.8x, 40 weeks).",
        ),
        (
            {
                "kind": "latent_demand",
                "event_type": None,
                "peak_offset_days": None,
                "support": 40,
                "online_weekly": 3.0,
                "est_store_weekly": 12.25,
                "category": "breakfast",
            },
            "Shoppers in R bought 3.0 units a week of Pastry online although no store there carries it: "
            "about 12.2 units per store a week, 6.8x the median carried breakfast item (95% CI 5.9-7.8x, "
            "40 weeks).",
        ),
    ],
)
def test_explanations_read_as_sentences(row: dict, expected: str) -> None:
    base = {"name": "Pastry", "sku": "x", "region": "R", "lift": 6.8, "ci_low": 5.9, "ci_high": 7.8}
    assert explain({**base, **row}) == expected


@pytest.mark.parametrize(("table", "kind"), [("events", "event_uplift"), ("online_orders", "latent_demand")])
def test_an_optional_table_left_empty_only_silences_its_kind(table: str, kind: str) -> None:
    world = planted_chain(plant=True)
    tables = replace(world, **{table: getattr(world, table).clear()})
    out = mine_patterns(tables, as_of=AS_OF, settings=SETTINGS)
    assert _rows(out, kind).height == 0
    assert _rows(out, "local_affinity").height > 0
