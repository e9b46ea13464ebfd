"""Pattern mining in parts (one worker each on Dask): the same patterns as mine_patterns in one go."""

from __future__ import annotations

import pytest
from polars.testing import assert_frame_equal

from models.mining.patterns import mine_patterns
from models.mining.settings import MiningSettings
from models.mining_parts import PARTS, hypotheses, patterns_from
from tests.worlds.planted import AS_OF, planted_chain

SETTINGS = MiningSettings()


def test_parts_then_one_fdr_step_give_the_patterns_of_one_run() -> None:
    world = planted_chain(plant=True)
    parts = [hypotheses(world, part, as_of=AS_OF, settings=SETTINGS) for part in PARTS]
    assert all(p.height > 0 for p in parts)  # each part tests hypotheses of its own
    assert set(parts[0]["kind"]) == {"event_uplift"}
    assert set(parts[1]["kind"]) == {"local_affinity", "latent_demand"}
    whole = mine_patterns(world, as_of=AS_OF, settings=SETTINGS)
    assert whole.height > 0
    assert_frame_equal(patterns_from(world, parts, as_of=AS_OF, settings=SETTINGS), whole)


def test_an_unknown_part_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mining part"):
        hypotheses(planted_chain(plant=True), "regions", as_of=AS_OF, settings=SETTINGS)
