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
