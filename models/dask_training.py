"""The demand model trained on a Dask cluster (``lightgbm.dask``) when its training set outgrows the budget.

On one machine the training set is cut to the memory budget (models/training_set.py: recent days whole,
older days sampled). With a Dask client and a training set the budget would cut (``over_budget``), the
same model is trained on the cluster instead: every feature chunk (features/chunked.py, sized by the
budget) is built on a worker and stays there as its part of the training matrices, the older days are
sampled only down to ``model.max_train_rows`` (not to the budget), and LightGBM trains data-parallel on
the parts through ``lightgbm.dask.DaskLGBMRegressor``. What comes back is an ordinary ``DemandModel``
(a ``lgb.Booster`` per horizon block): saving, loading and forecasting take it unchanged.

The blocks are fitted as in models/demand.py: one early-stopping pass on the days before the held-out
ones (rounds and interval width), then each block refit with those rounds. lightgbm.dask evaluates a
validation set only on the workers' local parts, so the pass trains ``num_boost_round`` rounds and the
best round is found here, on the gathered held-out rows (LightGBM's own rule: the objective's metric,
stop after ``early_stopping_rounds`` rounds without gain). The held-out rows are gathered (28 days of
every series: ~500,000 rows at M5 scale), nothing else.

**Not bit-identical to the local booster**: data-parallel LightGBM finds its histogram bins and splits
from the workers' parts (bins per worker sample, histograms summed over the network), the cold-start
mask is drawn per chunk and the sample differs (more rows). The forecasts are close, not equal
(tests/models/test_dask_training.py: WAPE within a few percent of the local model's on a test world).
Nor is it reproducible run to run: which worker gets which part (and so the bins) may change between
runs (the small demo's validation WAPE 0.5739 in one run, 0.5748 in the next; bench/README.md).
"""

from __future__ import annotations

import operator
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import polars as pl

from data_contracts.tables import LakeTables
from features.chunked import ChunkPlan, chunk_features
from features.panel import FeatureSpec
from models.demand import (
    COLD_START_SHARE,
    DemandModel,
    HorizonBlock,
    _Holdout,
    _inside,
    _lgb_params,
    _specs,
    _valid_metrics,
    fit_demand_model,
    to_matrix,
)
from models.demand_intervals import calibrate_dispersion
from models.demand_settings import DemandSettings
from models.training_set import ScaleSettings, training_filter, training_plan

if TYPE_CHECKING:
    from distributed import Client

# the cluster's training set is bounded by model.max_train_rows, not by one machine's budget
UNBOUNDED = ScaleSettings(memory_gb=1e6)
PART_KEYS = ("xt", "yt", "xv", "yv", "xvm")  # train rows (masked), held-out rows, held-out rows masked


def _columns(specs: list[FeatureSpec]) -> list[str]:
    """Every block's feature columns, the last block's first."""
    return list(dict.fromkeys(n for s in (specs[-1], *specs[:-1]) for n in s.feature_names()))


def _wanted_rows(plan: ChunkPlan, *, as_of: date, since: date | None) -> int:
    """Rows with known demand in the training period (before any sampling)."""
    totals = plan.totals.filter(pl.col("date") <= as_of, pl.col("date") >= (since or date.min))
    return int(totals.get_column("_d").sum())


def _since(settings: DemandSettings, as_of: date) -> date | None:
    days = settings.model.train_days
    return as_of - timedelta(days=days - 1) if days else None


def over_budget(tables: LakeTables, *, as_of: date, settings: DemandSettings) -> bool:
    """Whether the memory budget (settings.scale) would cut the training set below what the model
    wants (every known row since train_days, at most model.max_train_rows)."""
    specs, _ = _specs(settings, tables)
    plan = training_plan(tables, specs[-1], as_of=as_of, scale=settings.scale)
    cap = settings.model.max_train_rows
    wanted = min(cap, _wanted_rows(plan, as_of=as_of, since=_since(settings, as_of)))
    return wanted > settings.scale.train_rows(len(_columns(specs)), cap=cap)


def fit_demand(
    tables: LakeTables, *, as_of: date, settings: DemandSettings, client: Client | None = None
) -> DemandModel:
    """The demand model: on the cluster behind ``client`` when the training set exceeds the memory
    budget (``over_budget``), else models.demand.fit_demand_model in this process."""
    if client is not None and over_budget(tables, as_of=as_of, settings=settings):
        return fit_demand_model_dask(tables, as_of=as_of, settings=settings, client=client)
    return fit_demand_model(tables, as_of=as_of, settings=settings)


def _part(
    tables: LakeTables,
    specs: list[FeatureSpec],
    plan: ChunkPlan,
    i: int,
    keep: pl.Expr,
    *,
    as_of: date,
    origin: date,
    levels: dict[str, list[str]],
    seed: int,
) -> dict[str, np.ndarray]:
    """Chunk ``i``'s training rows as matrices (run on a worker): PART_KEYS."""
    cols = _columns(specs)
    rows = chunk_features(tables, specs[-1], plan, i, as_of=as_of, also=specs[:-1]).filter(keep).collect()
    x = to_matrix(rows, cols, levels)
    y = rows.get_column("units").to_numpy().astype(np.float32)
    valid = (rows.get_column("date") > origin).to_numpy()
    hidden = np.random.default_rng([seed, i]).random(rows.height) < COLD_START_SHARE
    xv = x[valid]  # a copy: held out as it is, no history hidden
    own = sorted({cols.index(n) for s in specs for n in s.own_history()})
    x[np.ix_(hidden, np.asarray(own, dtype=np.intp))] = np.nan
    return {"xt": x[~valid], "yt": y[~valid], "xv": xv, "yv": y[valid], "xvm": x[valid]}


class _Parts:
    """The workers' parts as dask arrays (futures stay where they were computed)."""

    def __init__(self, client: Client, futures: list[Any], n_cols: int) -> None:
        import dask
        import dask.array as da

        shapes = client.gather(
            [client.submit(lambda d: {k: v.shape[0] for k, v in d.items()}, f) for f in futures]
        )
        self.client, self.futures, self.shapes = client, futures, shapes

        def stack(key: str) -> Any:
            pieces = []
            for f, s in zip(futures, shapes, strict=True):
                if s[key]:
                    item = dask.delayed(operator.getitem)(f, key)
                    shape = (s[key], n_cols) if key.startswith("x") else (s[key],)
                    pieces.append(da.from_delayed(item, shape=shape, dtype=np.float32))
            return da.concatenate(pieces) if pieces else None

        self.arrays = {k: stack(k) for k in PART_KEYS}

    def rows(self, key: str) -> int:
        return sum(s[key] for s in self.shapes)

    def gather(self, key: str) -> np.ndarray:
        array = self.arrays[key]
        return np.asarray(array.compute()) if array is not None else np.empty((0,), np.float32)


def _loss(y: np.ndarray, raw: np.ndarray, params: dict[str, Any]) -> float:
    """LightGBM's default metric of the objective (tweedie, poisson; else l2) at raw scores ``raw``."""
    objective = params["objective"]
    if objective in ("tweedie", "poisson"):
        p = np.maximum(np.exp(raw), 1e-10)
        if objective == "poisson":
            return float(np.mean(p - y * np.log(p)))
        rho = float(params.get("tweedie_variance_power", 1.5))
        return float(np.mean(-y * p ** (1 - rho) / (1 - rho) + p ** (2 - rho) / (2 - rho)))
    return float(np.mean((y - raw) ** 2))


def best_round(booster: lgb.Booster, x: np.ndarray, y: np.ndarray, *, patience: int, params: dict) -> int:
    """The round LightGBM's early stopping on (x, y) would keep: the best metric so far once
    ``patience`` rounds brought no gain (1-based)."""
    raw = np.zeros(len(y))
    best, best_score = 0, np.inf
    for i in range(booster.num_trees()):
        raw += booster.predict(x, start_iteration=i, num_iteration=1, raw_score=True)
        score = _loss(y, raw, params)
        if score < best_score:
            best, best_score = i, score
        elif i - best >= patience:
            break
    return best + 1


def _booster(
    client: Client, settings: DemandSettings, x: Any, y: Any, spec: FeatureSpec, cols: list[str], rounds: int
) -> lgb.Booster:
    """A booster trained data-parallel on the cluster: ``rounds`` rounds on (x, y)'s ``spec`` columns."""
    from lightgbm.dask import DaskLGBMRegressor

    names = spec.feature_names()
    # the workers' own threads (lightgbm.dask sets n_jobs from them): num_threads would be ignored
    params: dict[str, Any] = {k: v for k, v in _lgb_params(settings).items() if k != "num_threads"}
    model = DaskLGBMRegressor(client=client, n_estimators=rounds, **params)
    model.fit(
        x[:, [cols.index(n) for n in names]],
        y,
        feature_name=names,
        categorical_feature=[names.index(c) for c in spec.categorical],
    )
    return model.booster_


def fit_demand_model_dask(
    tables: LakeTables, *, as_of: date, settings: DemandSettings, client: Client
) -> DemandModel:
    """``fit_demand_model`` trained on the cluster behind ``client`` (see the module docstring).
    Falls back to the local fit when the held-out days leave nothing to train on (or the reverse)."""
    started = time.perf_counter()
    specs, levels = _specs(settings, tables)
    m = settings.model
    since = _since(settings, as_of)
    plan = training_plan(tables, specs[-1], as_of=as_of, scale=settings.scale)  # chunks within the budget
    scale = UNBOUNDED.model_copy(update={"recent_days": settings.scale.recent_days})
    plan, keep = training_filter(
        tables, specs[-1], as_of=as_of, valid_days=m.valid_days, max_rows=m.max_train_rows,
        seed=settings.seed, scale=scale, plan=plan, since=since, also=specs[:-1],
    )  # fmt: skip
    origin = as_of - timedelta(days=m.valid_days)
    kwargs = {"as_of": as_of, "origin": origin, "levels": levels, "seed": settings.seed}
    shared_tables = client.scatter(tables, broadcast=True, hash=False)  # once, not once per chunk
    futures = [
        client.submit(_part, shared_tables, specs, plan, i, keep, **kwargs, pure=False)
        for i in range(len(plan.chunks))
    ]
    cols = _columns(specs)
    parts = _Parts(client, futures, len(cols))
    if not parts.rows("xt") or not parts.rows("xv"):
        client.cancel(futures)
        return fit_demand_model(tables, as_of=as_of, settings=settings)
    features_s = time.perf_counter() - started
    x_valid, y_valid = parts.gather("xv"), parts.gather("yv")
    train = (parts.arrays["xt"], parts.arrays["yt"])
    every = (
        (train[0], train[1])
        if parts.arrays["xvm"] is None
        else (
            _concat(parts.arrays["xt"], parts.arrays["xvm"]),
            _concat(parts.arrays["yt"], parts.arrays["yv"]),
        )
    )
    first_days = [1, *(spec.horizon + 1 for spec in specs[:-1])]
    order = list(range(len(specs)))
    if m.early_stopping == "shared":
        order.insert(0, order.pop(m.stopping_block % len(specs)))
    fitted: dict[int, HorizonBlock] = {}
    holdouts: list[tuple[_Holdout, float]] = []
    metrics: dict[str, float] = {}
    shared: tuple[int, float] | None = None
    for k in order:
        spec, idx = specs[k], [cols.index(n) for n in specs[k].feature_names()]
        if shared is None:  # the early-stopping pass on the days before the held-out ones
            first = _booster(client, settings, *train, spec, cols, m.num_boost_round)
            xk = np.ascontiguousarray(x_valid[:, idx])
            rounds = best_round(
                first, xk, y_valid, patience=m.early_stopping_rounds, params=_lgb_params(settings)
            )
            mu = np.clip(first.predict(xk, num_iteration=rounds), 0, None)
            holdout = _Holdout(y_valid, mu, np.ones(len(mu), dtype=bool))
            dispersion = calibrate_dispersion(y_valid, mu, coverage=m.interval_coverage, seed=settings.seed)
            holdouts.append((holdout, dispersion))
            first.best_iteration = rounds
            booster = first
        else:
            rounds, dispersion = shared
            booster = None
        if m.refit == "full" or booster is None:
            data = every if m.refit == "full" else train
            booster = _booster(client, settings, *data, spec, cols, rounds)
        fitted[k] = HorizonBlock(first_days[k], spec, booster, dispersion)
        if m.early_stopping == "shared":
            shared = (rounds, dispersion)
        metrics[f"best_iteration_block{k + 1}"] = float(rounds)
        metrics[f"dispersion_block{k + 1}"] = dispersion
    blocks = [fitted[k] for k in range(len(specs))]
    y = np.concatenate([h.y for h, _ in holdouts])
    mu = np.concatenate([h.mu for h, _ in holdouts])
    metrics |= _valid_metrics(y, mu)
    metrics["interval_coverage_valid"] = float(np.mean(np.concatenate([_inside(h, a) for h, a in holdouts])))
    metrics["best_iteration"] = metrics[f"best_iteration_block{len(blocks)}"]
    metrics["dispersion"] = blocks[-1].dispersion
    metrics["train_rows"] = float(parts.rows("xt") + parts.rows("xv"))
    metrics["valid_rows"] = float(len(y))
    metrics["dask_workers"] = float(len(client.scheduler_info()["workers"]))
    metrics["dask_parts"] = float(len(futures))
    metrics["features_s"] = round(features_s, 3)
    metrics["train_s"] = round(time.perf_counter() - started - features_s, 3)
    client.cancel([*futures, shared_tables])
    return DemandModel(blocks, as_of, metrics, levels)


def _concat(a: Any, b: Any) -> Any:
    import dask.array as da

    return da.concatenate([a, b])
