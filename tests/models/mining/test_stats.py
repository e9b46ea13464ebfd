"""Tests for the miner's shared statistics not covered by the moderated test's own file."""

from __future__ import annotations

import numpy as np
import pytest

from models.mining.stats import adaptive_shrink, median_variance


def test_the_variance_of_a_median_of_normals() -> None:
    # exact for one and two (the mean of two), 0.4487 for three (order statistics), pi / 2n for many
    assert median_variance(1) == pytest.approx(1.0, abs=1e-4)
    assert median_variance(2) == pytest.approx(0.5, abs=1e-4)
    assert median_variance(3) == pytest.approx(0.4487, abs=1e-3)
    assert median_variance(201) == pytest.approx(np.pi / 2 / 201, rel=0.02)
    for many in (2000, 2001, 100_000):  # no overflow, no underflow, a grid fine enough
        assert median_variance(many) == pytest.approx(np.pi / 2 / many, rel=0.01)
    draws = np.median(np.random.default_rng(0).standard_normal((100_000, 6)), axis=1)
    assert median_variance(6) == pytest.approx(draws.var(), rel=0.02)
    with pytest.raises(ValueError, match="median of 0"):
        median_variance(0)


def test_adaptive_shrinkage_keeps_a_few_strong_effects_and_shrinks_noise() -> None:
    # 1,600 near-0 effects (sd 0.05) and 12 strong ones (0.35x, 2.5x), sampling sds 0.07-0.2
    rng = np.random.default_rng(0)
    true = rng.normal(0.0, 0.05, 1600)
    strong = rng.choice(1600, 12, replace=False)
    true[strong] = np.log(rng.choice([0.35, 2.5], 12))
    var = rng.uniform(0.005, 0.04, 1600)
    estimate = true + rng.normal(0.0, np.sqrt(var))
    post, post_var = adaptive_shrink(estimate, var)
    # a single normal prior, its variance by moments, pulls the strong ones to 0.6-0.8x / 1.2-1.8x
    tau2 = np.mean(estimate**2) - np.mean(var)
    normal = tau2 / (tau2 + var) * estimate
    assert np.median(np.abs(post[strong] - true[strong])) < 0.5 * np.median(
        np.abs(normal[strong] - true[strong])
    )
    assert np.sqrt(np.mean((post - true) ** 2)) < 0.5 * np.sqrt(np.mean((estimate - true) ** 2))
    assert np.sqrt(np.mean((post - true) ** 2)) < np.sqrt(np.mean((normal - true) ** 2))
    assert 0.93 <= np.mean(np.abs(post - true) < 1.96 * np.sqrt(post_var)) <= 0.97  # intervals cover
    # a noisy estimate among near-0 effects is shrunk hard
    noisy, _ = adaptive_shrink(np.append(estimate, 0.8), np.append(var, 1.0))
    assert abs(noisy[-1]) < 0.2
    assert adaptive_shrink(np.array([]), np.array([]))[0].size == 0
