"""The two-level FDR step (Benjamini and Bogomolov 2014): families = event types, affinity, latent.

A no-effect event type is a family of null hypotheses: its Simes p-value is uniform and it is selected
only with probability about ``fdr_alpha * R / M``, whereas one Benjamini-Hochberg adjustment over every
hypothesis of the run lets the smallest of its many null p-values through once real effects elsewhere
raise the BH threshold (issue 8, ``bench/README.md``).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from models.mining.patterns import apply_fdr, fdr_family, two_level_q
from models.mining.settings import MiningSettings

ALPHA = 0.05


def _events(event_type: str, p: np.ndarray, *, region: str = "R0") -> pl.DataFrame:
    n = len(p)
    return pl.DataFrame(
        {
            "kind": ["event_uplift"] * n,
            "region": [region] * n,
            "sku": [f"S{i:04d}" for i in range(n)],
            "event_type": [event_type] * n,
            "lift": [1.5] * n,
            "p_value": p,
        }
    )


def _grid(n: int) -> np.ndarray:
    """n evenly spread null p-values (the quantiles of a uniform)."""
    return (np.arange(n) + 0.5) / n


def _run() -> pl.DataFrame:
    """A real type (100 strong risers among 200 SKUs), a no-effect type over 900 SKUs whose smallest
    p-value is 0.001, and a few affinity hypotheses."""
    storm = np.concatenate([np.full(100, 1e-6), _grid(100)])
    drill = _grid(900)
    drill[0] = 0.001
    affinity = pl.DataFrame(
        {
            "kind": ["local_affinity"] * 3,
            "region": ["R1", "R2", "R3"],
            "sku": ["S0000"] * 3,
            "event_type": [None] * 3,
            "lift": [2.0, 0.4, 1.1],
            "p_value": [1e-5, 1e-4, 0.5],
        }
    )
    return pl.concat([_events("storm", storm), _events("drill", drill), affinity], how="diagonal_relaxed")


def test_a_no_effect_type_is_not_reported_where_one_global_bh_would() -> None:
    hyp = _run()
    out = apply_fdr(hyp, MiningSettings(fdr_alpha=ALPHA, min_lift=1.0))
    # the premise: one BH over every hypothesis lets the drill's smallest p-values through
    global_q = stats.false_discovery_control(hyp["p_value"].to_numpy(), method="bh")
    drill = (hyp["event_type"] == "drill").fill_null(False).to_numpy()
    assert (global_q[drill] <= ALPHA).sum() >= 3
    assert out.filter(pl.col("event_type") == "drill").height == 0
    # the real type's risers and the affinity patterns are still reported
    storms = out.filter(pl.col("event_type") == "storm")
    assert storms.height >= 100
    assert set(storms["sku"]) >= {f"S{i:04d}" for i in range(100)}
    assert sorted(out.filter(pl.col("kind") == "local_affinity")["region"]) == ["R1", "R2"]
    assert (out["q_value"] <= ALPHA).all()


def test_the_within_family_level_scales_with_selected_over_all_families() -> None:
    target = _events("fair", np.array([0.01, 0.04]))
    strong = _events("storm", np.array([1e-9]))
    # M = 2, both selected: BH at 0.05 in each, both of the fair's hypotheses (BH q 0.02, 0.04) pass
    two = apply_fdr(pl.concat([target, strong]), MiningSettings(fdr_alpha=ALPHA, min_lift=1.0))
    fair_q = two.filter(pl.col("event_type") == "fair")["q_value"].sort().to_list()
    assert fair_q == pytest.approx([0.02, 0.04])
    # two more families with nothing in them: M = 4, R = 2, the fair is tested at 0.05 * 2 / 4 = 0.025
    nulls = [_events(t, np.array([0.9]), region="R1") for t in ("drill", "parade")]
    four = pl.concat([target, strong, *nulls])
    out = apply_fdr(four, MiningSettings(fdr_alpha=ALPHA, min_lift=1.0))
    fair = out.filter(pl.col("event_type") == "fair")
    assert fair["p_value"].to_list() == [0.01]
    assert fair["q_value"].to_list() == pytest.approx([0.02 * 4 / 2])
    q = two_level_q(four["p_value"].to_numpy(), four.select(fdr_family()).to_series().to_numpy(), ALPHA)
    assert q[1] == pytest.approx(0.04 * 4 / 2)  # the fair's second: above 0.05, not reported
    assert (q[3:] > ALPHA).all()  # unselected families: above the level


def test_chain_wide_rows_and_both_windows_share_their_type_s_family() -> None:
    hyp = pl.DataFrame(
        {
            "kind": ["event_uplift", "event_uplift", "event_uplift", "local_affinity", "latent_demand"],
            "event_type": ["storm", "storm", "drill", None, None],
            "region": ["R0", "ALL", "R0", "R0", "R0"],
        }
    )
    assert hyp.select(fdr_family()).to_series().to_list() == [
        "event_uplift:storm",
        "event_uplift:storm",
        "event_uplift:drill",
        "local_affinity",
        "latent_demand",
    ]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_q_values_give_the_benjamini_bogomolov_rejections(seed: int) -> None:
    """Against statsmodels: families selected by BH over Simes p-values, BH at alpha R / M within."""
    rng = np.random.default_rng(seed)
    p_parts, labels = [], []
    for f in range(12):
        n = int(rng.integers(1, 60))
        part = rng.uniform(size=n)
        if f % 3 == 0:  # a family with real effects
            part[: n // 2] = rng.uniform(0, 1e-3, size=n // 2)
        p_parts.append(part)
        labels += [f"f{f}"] * n
    p, family = np.concatenate(p_parts), np.array(labels)
    q = two_level_q(p, family, ALPHA)
    names = sorted(set(labels))
    simes = [multipletests(p[family == f], method="fdr_bh")[1].min() for f in names]
    selected = multipletests(simes, alpha=ALPHA, method="fdr_bh")[0]
    level = ALPHA * selected.sum() / len(names)
    assert 0 < selected.sum() < len(names)
    for f, chosen in zip(names, selected, strict=True):
        on = family == f
        expected = np.zeros(on.sum(), bool)
        if chosen:
            expected = multipletests(p[on], alpha=level, method="fdr_bh")[0]
        assert ((q[on] <= ALPHA) == expected).all(), f
        if chosen:  # a selected family reports at least one hypothesis
            assert expected.any()


def _holiday(all_p: float, all_lift: float = 1.6) -> pl.DataFrame:
    """A chain-wide type: S0000's chain pattern (p ``all_p``) over its six regions (three rises), and
    600 regional and 100 chain-wide hypotheses of other SKUs without an effect; a storm family with
    strong effects beside it."""
    child = _events("holiday", np.array([0.002, 0.004, 0.008, 0.3, 0.6, 0.9]))
    child = child.with_columns(pl.Series("region", [f"R{i}" for i in range(6)]), pl.lit("S0000").alias("sku"))
    chain = _events("holiday", np.array([all_p]), region="ALL").with_columns(pl.lit(all_lift).alias("lift"))
    others = _events("holiday", _grid(600)).with_columns(("X" + pl.col("sku")).alias("sku"))
    chains = _events("holiday", _grid(100), region="ALL").with_columns(("Y" + pl.col("sku")).alias("sku"))
    storm = _events("storm", np.full(20, 1e-9))
    return pl.concat([child, chain, others, chains, storm])


def test_a_reported_chain_pattern_opens_a_family_of_its_regions() -> None:
    settings = MiningSettings(fdr_alpha=ALPHA, min_lift=1.0)
    hyp = _holiday(1e-8)
    # the premise: in the holiday's family of 707 hypotheses no region of S0000 passes
    q = two_level_q(hyp["p_value"].to_numpy(), hyp.select(fdr_family()).to_series().to_numpy(), ALPHA)
    regional = (
        (hyp["event_type"] == "holiday") & (hyp["sku"] == "S0000") & (hyp["region"] != "ALL")
    ).to_numpy()
    assert (q[regional] > ALPHA).all()
    out = apply_fdr(hyp, settings).filter((pl.col("event_type") == "holiday") & (pl.col("sku") == "S0000"))
    # below the chain's pattern: BH over its six regions (M = R = 2: the level is 0.05)
    found = out.filter(pl.col("region") != "ALL").sort("region")
    assert found["region"].to_list() == ["R0", "R1", "R2"]
    assert found["q_value"].to_list() == pytest.approx([0.012, 0.012, 0.016])
    assert out.filter(pl.col("region") == "ALL").height == 1
    # no other SKU of the holiday is reported: their chain hypotheses open nothing
    assert apply_fdr(hyp, settings).filter(pl.col("sku").str.starts_with("X")).height == 0
    # two families with nothing in them: M = 4, R = 2, the regions' q-values double (R3: 0.9 * 2 > 0.05)
    nulls = [_events(t, np.array([0.9]), region="R1") for t in ("drill", "parade")]
    wider = apply_fdr(pl.concat([hyp, *nulls]), settings)
    found = wider.filter(
        (pl.col("event_type") == "holiday") & (pl.col("sku") == "S0000") & (pl.col("region") != "ALL")
    ).sort("region")
    assert found["q_value"].to_list() == pytest.approx([0.024, 0.024, 0.032])


@pytest.mark.parametrize(("all_p", "all_lift", "min_lift"), [(0.5, 1.6, 1.0), (1e-8, 1.1, 1.3)])
def test_no_chain_pattern_no_regional_family(all_p: float, all_lift: float, min_lift: float) -> None:
    """A chain hypothesis that is not significant, or not relevant (below ``min_lift``), opens nothing."""
    out = apply_fdr(_holiday(all_p, all_lift), MiningSettings(fdr_alpha=ALPHA, min_lift=min_lift))
    assert out.filter((pl.col("event_type") == "holiday") & (pl.col("sku") == "S0000")).height == 0


def test_a_regional_type_opens_a_sku_s_regions_where_one_of_them_is_clear() -> None:
    """A regional type (no chain-wide rows): ten SKUs rise clearly in one region (p 1e-6) and less
    clearly in two more (p 0.005, 0.008), 200 SKUs not at all (6 regions each). In the type's family of
    1,261 hypotheses the two weaker regions do not pass; below their SKU (its regions by Simes' test,
    BH over the SKUs) they do. Of the regions that did not rise, only the one the type's own BH lets
    through is reported."""
    risers = []
    for k in range(10):
        part = _events("heat", np.array([1e-6, 0.005, 0.008, 0.5, 0.6, 0.9]))
        risers.append(
            part.with_columns(pl.Series("region", [f"R{i}" for i in range(6)]), pl.lit(f"K{k}").alias("sku"))
        )
    nulls = _events("heat", np.random.default_rng(0).permutation(_grid(1200))).with_columns(
        (pl.int_range(pl.len()) // 6).cast(pl.String).alias("sku"),
        ("R" + (pl.int_range(pl.len()) % 6).cast(pl.String)).alias("region"),
    )
    hyp = pl.concat([*risers, nulls, _events("storm", np.full(20, 1e-9))])
    q = two_level_q(hyp["p_value"].to_numpy(), hyp.select(fdr_family()).to_series().to_numpy(), ALPHA)
    weaker = hyp["p_value"].is_in([0.005, 0.008]).to_numpy()
    assert (q[weaker] > ALPHA).all()  # the premise
    out = apply_fdr(hyp, MiningSettings(fdr_alpha=ALPHA, min_lift=1.0)).filter(pl.col("event_type") == "heat")
    risen = out.filter(pl.col("sku").str.starts_with("K"))
    assert sorted(set(risen["region"])) == ["R0", "R1", "R2"]
    assert risen.height == 30
    # the smallest of the 1,200 null p-values (4e-4) passes the type's own BH (q 0.048): a false
    # discovery the FDR allows, and the only one
    assert out.filter(~pl.col("sku").str.starts_with("K"))["p_value"].to_list() == [pytest.approx(0.5 / 1200)]


@pytest.mark.parametrize("chain", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_regional_families_keep_their_false_discoveries_rare(seed: int, chain: bool) -> None:
    """200 SKUs over 8 regions, a random half of each SKU's regions truly risen (z-tests, mean 3),
    below a chain-wide pattern of each SKU (``chain``) or of none (a regional type: Simes parents): of
    the regions reported, fewer than ``fdr_alpha`` did not rise. Seeds 0-5: 2.1-3.9% with chain
    patterns, 2.1-3.8% with Simes parents; without the regional families 1.8-3.5% and 1.2-3.0%."""
    rng = np.random.default_rng(seed)
    rows, truth = [], set()
    for k in range(200):
        risen = rng.random(8) < 0.5
        z = rng.normal(size=8) + np.where(risen, 3.0, 0.0)
        sku = pl.lit(f"K{k:03d}").alias("sku")
        rows.append(
            _events("holiday", stats.norm.sf(z)).with_columns(
                pl.Series("region", [f"R{i}" for i in range(8)]), sku
            )
        )
        if chain:
            rows.append(_events("holiday", np.array([1e-9]), region="ALL").with_columns(sku))
        truth |= {(f"K{k:03d}", f"R{i}") for i in np.flatnonzero(risen)}
    out = apply_fdr(pl.concat(rows), MiningSettings(fdr_alpha=ALPHA, min_lift=1.0))
    found = out.filter(pl.col("region") != "ALL").select("sku", "region").rows()
    false = [r for r in found if r not in truth]
    assert len(found) > 0.5 * len(truth)
    assert len(false) / len(found) < ALPHA


def test_local_affinity_opens_a_sku_s_regions_where_one_taste_is_clear() -> None:
    """Ten SKUs sell 2.5x in one region (p 1e-6) and 0.4x in another (p 0.006); 100 SKUs of eight
    regions differ nowhere. In the affinity family of 816 hypotheses the weaker tastes do not pass;
    below their SKU (Simes' test of its regions) they do."""
    tastes = pl.DataFrame(
        {
            "kind": "local_affinity",
            "region": ["R0", "R1"] * 10,
            "sku": [f"K{k}" for k in range(10) for _ in range(2)],
            "lift": [2.5, 0.4] * 10,
            "p_value": [1e-6, 0.006] * 10,
        }
    )
    null_p = np.random.default_rng(1).permutation(_grid(800))
    nulls = pl.DataFrame(
        {
            "kind": "local_affinity",
            "region": [f"R{i % 8}" for i in range(800)],
            "sku": [f"N{i // 8}" for i in range(800)],
            "lift": 1.5,
            "p_value": null_p,
        }
    )
    hyp = pl.concat([tastes, nulls]).with_columns(pl.lit(None, pl.String).alias("event_type"))
    settings = MiningSettings(fdr_alpha=ALPHA, min_lift=1.0)
    q = two_level_q(hyp["p_value"].to_numpy(), hyp.select(fdr_family()).to_series().to_numpy(), ALPHA)
    assert (q[hyp["p_value"].to_numpy() == 0.006] > ALPHA).all()  # the premise
    out = apply_fdr(hyp, settings)
    found = out.filter(pl.col("sku").str.starts_with("K"))
    assert found.height == 20
    assert out.filter(pl.col("sku").str.starts_with("N")).height <= 1  # what the FDR allows
