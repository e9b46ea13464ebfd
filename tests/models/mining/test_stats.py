"""Tests for the miner's shared statistics not covered by the moderated test's own file."""

from __future__ import annotations

import numpy as np
import pytest

from models.mining.stats import median_variance


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
