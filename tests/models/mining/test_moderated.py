"""The moderated cluster test of the event miner (``models.mining.stats.moderated_ratio_test``) on
simulated clusters: calibrated under no effect, more power than a t test on G - 1 degrees of freedom,
robust to a bias every cluster of a hypothesis shares, and not fooled by a slow seller."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import models.mining.stats as stats_module
from models.mining.stats import clustered_ratio_test, moderated_ratio_test, null_scale, null_spread

KEYS = ["event_type", "region", "sku"]


def _clusters(
    rng: np.random.Generator,
    *,
    n_skus: int = 300,
    n_clusters: int = 4,
    lift: dict[int, float] | None = None,
    bias_sd: float = 0.0,
    noise_sd: float = 0.15,
) -> pl.DataFrame:
    """Per SKU and cluster: expected units, and observed = Poisson(expected x lift x event noise x
    the SKU's bias, shared by its clusters); a lifted SKU expects 50 units per event."""
    lift = lift or {}
    sku = np.repeat(np.arange(n_skus), n_clusters)
    expected = np.repeat(rng.lognormal(4.0, 1.0, n_skus), n_clusters) * rng.uniform(0.7, 1.3, len(sku))
    expected[np.isin(sku, list(lift))] = 50.0  # a riser sells 50 units per event without it
    bias = np.repeat(rng.normal(0.0, bias_sd, n_skus), n_clusters)
    factor = np.array([lift.get(int(k), 1.0) for k in sku])
    noise = rng.normal(-(noise_sd**2) / 2, noise_sd, len(sku))
    observed = rng.poisson(expected * factor * np.exp(bias + noise)).astype(float)
    return pl.DataFrame(
        {
            "event_type": ["storm"] * len(sku),
            "region": np.where(sku % 2 == 0, "R0", "R1"),
            "sku": [f"S{k:03d}" for k in sku],
            "cluster": np.tile(np.arange(n_clusters), n_skus),
            "observed": observed,
            "expected": expected,
        }
    )


def _p(out: pl.DataFrame, sku: str) -> float:
    return float(out.filter(pl.col("sku") == sku)["p_value"].item())


def test_no_effect_gives_calibrated_p_values() -> None:
    rng = np.random.default_rng(11)
    p = np.concatenate(
        [
            moderated_ratio_test(_clusters(rng), KEYS, family=["event_type"], null_by=KEYS[:2])[
                "p_value"
            ].to_numpy()
            for _ in range(4)
        ]
    )
    assert 0.02 < (p < 0.05).mean() < 0.08
    assert (p < 0.01).mean() < 0.02


def test_a_riser_with_four_events_gains_power_over_a_t_on_three_df() -> None:
    plain, moderated = [], []
    for seed in range(5):
        cells = _clusters(np.random.default_rng(seed), lift={7: 1.8})
        plain.append(_p(clustered_ratio_test(cells, KEYS), "S007"))
        out = moderated_ratio_test(cells, KEYS, family=["event_type"], null_by=KEYS[:2])
        moderated.append(_p(out, "S007"))
        row = out.filter(pl.col("sku") == "S007").row(0, named=True)
        assert row["ci_low"] < 1.8 < row["ci_high"]
        assert row["df"] > 3
    assert all(p < 1e-3 for p in moderated), moderated
    assert all(p > 1e-3 for p in plain), plain


def test_a_bias_every_cluster_shares_is_not_an_effect() -> None:
    """Each SKU's counterfactual is off by its own factor (sd 0.2 in log) in all four events: the
    cluster variance cannot see it; the spread of the log lifts across SKUs can."""
    rng = np.random.default_rng(8)
    ps = []
    for _ in range(3):
        cells = _clusters(rng, bias_sd=0.2, noise_sd=0.05)
        ps.append(moderated_ratio_test(cells, KEYS, family=["event_type"], null_by=KEYS[:2])["p_value"])
        blind = moderated_ratio_test(cells, KEYS, family=["event_type"])["p_value"]
    p = pl.concat(ps).to_numpy()
    assert (p < 0.05).mean() < 0.08
    assert (blind.to_numpy() < 0.05).mean() > 0.2  # without the empirical null: far too many


def test_a_slow_seller_over_a_near_zero_expectation_is_not_significant() -> None:
    rng = np.random.default_rng(2)
    cells = _clusters(rng)
    slow = pl.DataFrame(
        {
            "event_type": ["storm"] * 5,
            "region": ["R0"] * 5,
            "sku": ["SLOW"] * 5,
            "cluster": np.arange(5),
            "observed": [4.0, 0.0, 2.0, 1.0, 0.0],
            "expected": [0.06, 0.05, 0.04, 0.05, 0.05],
        }
    )
    out = moderated_ratio_test(pl.concat([cells, slow]), KEYS, family=["event_type"], null_by=KEYS[:2])
    assert _p(out, "SLOW") > 0.01


def test_a_variance_twice_too_wide_is_scaled_by_half() -> None:
    """Efron's empirical null the other way: log lifts that spread half as much as their variances
    say give a scale of about 1/2; the variance never falls below its Poisson floor."""
    rng = np.random.default_rng(5)
    var = rng.uniform(0.002, 0.05, 4000)
    log_lift = rng.normal(0.0, np.sqrt(var / 2))
    df = np.full(len(var), 1e4)
    assert null_spread(log_lift, var, df) == 0.0
    k = null_scale(log_lift, var, np.full(len(var), 1e-9), df)
    assert 0.45 < k < 0.55, k
    # a floor above the spread binds: the scale goes to 0, the variances to their floor
    assert null_scale(log_lift, var, 0.8 * var, df) == 0.0


def test_a_variance_as_wide_as_the_spread_is_kept() -> None:
    rng = np.random.default_rng(6)
    var = rng.uniform(0.002, 0.05, 4000)
    log_lift = rng.normal(0.0, np.sqrt(var * 1.05))
    df = np.full(len(var), 1e4)
    assert null_scale(log_lift, var, np.full(len(var), 1e-9), df) == 1.0
    assert null_spread(log_lift, var, df) > 0


def _no_effect(
    prefix: str, observed: np.ndarray, expected: np.ndarray, excess: np.ndarray, clusters: int
) -> pl.DataFrame:
    """Hypotheses ``prefix``000.. of ``clusters`` rows each (SKU-major), half in region R0."""
    sku = np.repeat(np.arange(len(observed) // clusters), clusters)
    return pl.DataFrame(
        {
            "event_type": "storm",
            "region": np.where(sku % 2 == 0, "R0", "R1"),
            "sku": [f"{prefix}{k:03d}" for k in sku],
            "cluster": np.tile(np.arange(clusters), len(observed) // clusters),
            "observed": observed.astype(float),
            "expected": expected,
            "excess": excess,
        }
    )


def _overdispersed(rng: np.random.Generator, *, n_skus: int = 300, n_clusters: int = 5) -> pl.DataFrame:
    """Big sellers with no effect: each event's units are 30 store-days of a negative binomial of
    size 4 (mean 3-20 a store-day: 1.75-6x the Poisson variance), with that excess as a column."""
    mean = np.repeat(rng.uniform(3.0, 20.0, n_skus), n_clusters)
    size, days = 4.0, 30
    observed = rng.negative_binomial(size, size / (size + mean[:, None]), (len(mean), days)).sum(axis=1)
    return _no_effect("B", observed, days * mean, days * mean**2 / size, n_clusters)


def _slow(rng: np.random.Generator, *, n_skus: int = 800, n_clusters: int = 5) -> pl.DataFrame:
    """Slow sellers with no effect, under 30 expected units: a few discrete (Poisson) units each."""
    expected = rng.uniform(0.1, 1.5, n_skus * n_clusters)
    return _no_effect("S", rng.poisson(expected), expected, np.zeros(len(expected)), n_clusters)


def test_overdispersed_big_sellers_among_slow_sellers_are_calibrated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The small 3 demo's no-effect pattern: thousands of slow sellers' discrete units read as
    variances too wide, the empirical null narrowed every variance to Poisson, and a big seller whose
    store-days spread 2-6x Poisson passed. The excess keeps its variance at the data's noise, and
    the slow sellers no longer set the null."""

    def big_p(cells: pl.DataFrame) -> np.ndarray:
        out = moderated_ratio_test(cells, KEYS, family=["event_type"], null_by=KEYS[:2])
        return out.filter(pl.col("sku").str.starts_with("B"))["p_value"].to_numpy()

    worlds = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        worlds.append(pl.concat([_overdispersed(rng), _slow(rng)]))
    p = np.concatenate([big_p(cells) for cells in worlds])
    assert 0.02 < (p < 0.05).mean() < 0.08
    assert (p < 0.01).mean() < 0.02
    # as before: Poisson noise, every hypothesis setting the null: far too many
    monkeypatch.setattr(stats_module, "PRIOR_MIN_EXPECTED", 0.0)
    blind = np.concatenate([big_p(cells.drop("excess")) for cells in worlds])
    assert (blind < 0.01).mean() > 0.03


def test_slow_sellers_shape_neither_the_prior_nor_the_null() -> None:
    """Hypotheses under PRIOR_MIN_EXPECTED units get the prior and the null of the others, and
    leave the others' p-values as they were."""
    rng = np.random.default_rng(4)
    big = _overdispersed(rng)
    alone = moderated_ratio_test(big, KEYS, family=["event_type"], null_by=KEYS[:2]).sort("sku")
    both = moderated_ratio_test(pl.concat([big, _slow(rng)]), KEYS, family=["event_type"], null_by=KEYS[:2])
    both = both.filter(pl.col("sku").str.starts_with("B")).sort("sku")
    assert both["p_value"].to_numpy() == pytest.approx(alone["p_value"].to_numpy())
    assert both["df"].to_numpy() == pytest.approx(alone["df"].to_numpy())
