"""Pattern mining cut into independent parts (for a Dask cluster), with the answer of mine_patterns.

``models.mining.patterns.mine_patterns`` tests every hypothesis of the run, then adjusts them all in
one false-discovery-rate step (``apply_fdr``), then scans for unlabeled events against what passed.
The hypotheses of its kinds are computed independently of one another: event uplift (``PARTS[0]``)
and the weekly kinds, local affinity and latent demand (``PARTS[1]``). So
``hypotheses(tables, part)`` can run for each part on its own worker, and ``patterns_from`` applies
the one FDR step over all of them, then the discovery scan and the ordering: the same patterns as
mine_patterns (tests/models/test_mining_parts.py).

Why not per region: the event miner's counterfactual takes its controls from the other regions on the
same dates (the SKU x date shock, difference in differences), its test moderates each variance across
every region's hypotheses of the event type (empirical Bayes) and pools every region for chain-wide
events; affinity compares a region with the chain. A region's p-values depend on the other regions, so
a per-region cut would change the answer.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from data_contracts.outputs import conform
from data_contracts.tables import LakeTables
from features.signals import clean_store_sales
from models.mining.discovery import DiscoverySettings
from models.mining.discovery_rows import discovered_event_rows
from models.mining.patterns import _HYPOTHESIS_SCHEMA, _event_rows, _finish, _weekly_rows, apply_fdr
from models.mining.settings import MiningSettings

PARTS = ("event_uplift", "weekly")


def _sales(tables: LakeTables, as_of: date) -> pl.LazyFrame:
    return clean_store_sales(tables.store_sales, tables.stores.lazy(), as_of=as_of).cache()


def hypotheses(tables: LakeTables, part: str, *, as_of: date, settings: MiningSettings) -> pl.DataFrame:
    """The hypotheses (before FDR) of one of PARTS, in mine_patterns' columns and order."""
    sales = _sales(tables, as_of)
    first = sales.select(pl.col("date").min()).collect().item()
    if first is None:
        return pl.DataFrame(schema=_HYPOTHESIS_SCHEMA)
    if part == PARTS[0]:
        frames = [_event_rows(tables, sales, as_of=as_of, settings=settings)]
    elif part == PARTS[1]:
        frames = _weekly_rows(tables, sales, first=first, as_of=as_of, settings=settings)
    else:
        raise ValueError(f"unknown mining part {part!r}; one of {PARTS}")
    return pl.concat([conform(p, _HYPOTHESIS_SCHEMA).select(_HYPOTHESIS_SCHEMA.names()) for p in frames])


def patterns_from(
    tables: LakeTables, parts: list[pl.DataFrame], *, as_of: date, settings: MiningSettings
) -> pl.DataFrame:
    """The patterns of mine_patterns from every part's hypotheses (in PARTS order): one FDR step
    over all of them, the discovery scan, strongest first."""
    every = pl.concat(parts)
    passed = apply_fdr(every, settings)
    if every.height == 0 and _sales(tables, as_of).select(pl.len()).collect().item() == 0:
        return _finish(passed, tables.products)  # no history: mine_patterns scans nothing either
    discovery = DiscoverySettings(fdr_alpha=settings.fdr_alpha, lead_days=settings.event_lead_days)
    discovered = discovered_event_rows(tables, as_of=as_of, mined=passed, settings=discovery)
    return _finish(pl.concat([passed, discovered], how="diagonal_relaxed"), tables.products)
