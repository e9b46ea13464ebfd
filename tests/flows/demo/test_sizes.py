"""Demo sizes up to M5 scale, and STORESxSKUSxDAYS overrides."""

from __future__ import annotations

import pytest

from flows.demo.catalog import SIZE_SPECS, scaled_size, size_spec
from flows.demo.facts import store_batches
from flows.demo.world import AS_OF, build_world


def test_m5_has_the_competitions_shape() -> None:
    world = build_world("m5", seed=3)
    assert world.stores.height == 72
    assert world.products.height == 420
    assert world.n_days == 1941
    assert world.as_of == AS_OF
    # generated a batch of whole stores at a time: memory bounded by batch_cells, not by the world
    cap = SIZE_SPECS["m5"].batch_cells
    for batch in store_batches(world):
        assert len(batch) * world.n_days <= cap or len(set(batch[:, 0])) == 1


def test_a_scaled_size_reads_its_shape_from_its_name() -> None:
    name = scaled_size(stores=12, skus=90, days=450)
    assert name == "12x90x450"
    world = build_world(name, seed=1)
    assert (world.stores.height, world.products.height, world.n_days) == (12, 90, 450)
    assert world.stores.get_column("region").n_unique() == 6  # 2 stores in each of 6 regions
    assert build_world(name, seed=1).stores.equals(world.stores)  # a function of (size, seed)


@pytest.mark.parametrize("bad", ["huge", "12x90", "0x90x450", "12x10x450", "12x90x30"])
def test_unknown_or_too_small_sizes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="demo size"):
        size_spec(bad)


def test_named_sizes_keep_two_years() -> None:
    assert {SIZE_SPECS[s].days for s in ("small", "medium", "large")} == {731}
