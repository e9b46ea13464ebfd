"""Test worlds: the one place that builds lake tables for tests.

* ``lake``: the builder. ``lake_tables(...)`` turns plain frames into a LakeTables in the lake's schemas
  (a table not given is an empty frame of its schema); ``as_lake`` conforms one frame. No other test
  module calls ``LakeTables(`` (tests/test_architecture.py checks).
* ``chains``: the one seeded generator of synthetic chains as lake tables, ``seeded_chain(spec, seed)``:
  a ``ChainSpec`` (stores, regions, SKUs, levels, weekday profile, planted lifts, stock-outs, online
  rate) and a seed.
* ``weekly``: ``weekly_chain(...)``, a preset of the generator with a strong weekday profile, for the
  feature and demand-model tests.
* ``planted``: ``planted_chain(plant=..., seed=..., names=...)``, a preset with event uplift, local
  affinity and latent demand planted at known places, for the pattern-mining tests.
* ``shelves``: hand-made (not seeded) three-store shelves for the advice tests, where each test writes
  every row itself; flat forecasts and patterns in the output contract's columns.

``tests/models/mining/event_world.py`` is not here: it draws bare frames (no lake tables) with real
data's confounders for the event-uplift estimator's own tests.
"""
