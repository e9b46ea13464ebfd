"""The LightGBM demand model: expected daily units per store x SKU, were the shelf never empty.

Horizon-aware, direct: the horizon is cut into blocks (days 1-7 and 8-28 by default) and each block
has its own model whose features all end at least the block's last day before the row (lags from 7
for the first week, from 28 for the rest). Day 1 thus sees last week's demand, day 28 what was known
four weeks earlier, and no model feeds on its own predictions.

What a model sees: the pair's own lags, rolling and same-weekday means; the SKU's rate in the other
stores of the chain and of the region; the region's online orders; the actual shelf price (revenue /
units) against the regular price, the recent price and the year's high (over the forecast days: the
last known price); the calendar; and the events of events.csv, future ones included where they are
planned (holidays, SNAP days). ``units`` is demand with those events in it; ``units_no_event`` is the
same model with the event features neutralised (the counterfactual mining and pre-stock compare
against). Store, SKU, region, category (subcategory, brand, format where present) are categoricals.

Training: stockout days are left out (censored, not zero). One block (the first by default) is fitted
on the days up to ``as_of - valid_days`` with early stopping on the held-out days after; its held-out
residuals place the interval width (models/demand_intervals) and every block is then trained on all
days, the held-out ones included, with the rounds it found (``early_stopping="shared"``, ``refit``).
With ``early_stopping="each"`` every block has its own pass and its own width (on the M5 bench, four
weekly blocks fitted that way were no more accurate, for 3x the CPU: bench/README.md). (LightGBM's
leaf-value refit was tried instead of retraining: with categorical splits it made the forecast far
worse, MAE 2.12 vs 1.55 on the test world.) The blocks share one training set holding every block's
columns (one panel, features/panel.py), and each block bins its rows once.

Cold start: a seeded share of training rows has its own history hidden so the model
also learns to predict a never-sold pair from the cross-sectional signals.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from data_contracts.outputs import FORECAST_COLUMNS
from data_contracts.tables import LakeTables
from features.calendar import event_types
from features.chunked import chunk_features, plan_chunks
from features.panel import (
    OPTIONAL_STORE,
    PAIR,
    FeatureSpec,
    add_history_features,
    demand_base,
)
from models.demand_intervals import calibrate_dispersion, interval_coverage, nb_interval
from models.demand_settings import DemandSettings, ModelSettings
from models.training_set import ScaleSettings, training_plan, training_set

COLD_START_SHARE = 0.15  # share of training rows whose own history is hidden (see module docstring)
NO_EVENT = "units_no_event"


@dataclass
class HorizonBlock:
    """One direct model: serves days ``first_day`` .. ``spec.horizon`` after the as-of date."""

    first_day: int
    spec: FeatureSpec
    booster: lgb.Booster
    dispersion: float  # negative-binomial a of the block's p10-p90 interval

    @property
    def last_day(self) -> int:
        return self.spec.horizon


@dataclass
class DemandModel:
    """A fitted demand model and everything needed to forecast with it later."""

    blocks: list[HorizonBlock]
    as_of: date
    metrics: dict[str, float]
    categories: dict[str, list[str]] = field(default_factory=dict)  # levels behind the integer codes

    @property
    def spec(self) -> FeatureSpec:
        """The last block's features (lag floor = the horizon)."""
        return self.blocks[-1].spec

    @property
    def horizon(self) -> int:
        return self.blocks[-1].last_day

    @property
    def feature_names(self) -> list[str]:
        return self.spec.feature_names()

    def save(self, path: Path) -> None:
        """Write the model to folder ``path``: block_<k>.txt (LightGBM text) and meta.json."""
        path.mkdir(parents=True, exist_ok=True)
        for k, block in enumerate(self.blocks):
            block.booster.save_model(str(path / f"block_{k}.txt"))
        meta = {
            "as_of": self.as_of.isoformat(),
            "metrics": self.metrics,
            "categories": self.categories,
            "blocks": [
                {"first_day": b.first_day, "spec": asdict(b.spec), "dispersion": b.dispersion}
                for b in self.blocks
            ],
        }
        (path / "meta.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: Path) -> DemandModel:
        """Return the model saved in folder ``path``."""
        meta = json.loads((path / "meta.json").read_text())
        blocks = []
        for k, b in enumerate(meta["blocks"]):
            fields: dict[str, Any] = {n: tuple(v) if isinstance(v, list) else v for n, v in b["spec"].items()}
            spec = FeatureSpec(**fields)
            booster = lgb.Booster(model_file=str(path / f"block_{k}.txt"))
            blocks.append(HorizonBlock(int(b["first_day"]), spec, booster, float(b["dispersion"])))
        return cls(
            blocks=blocks,
            as_of=date.fromisoformat(meta["as_of"]),
            metrics={k: float(v) for k, v in meta["metrics"].items()},
            categories={k: list(v) for k, v in meta["categories"].items()},
        )


def block_floors(horizon: int, blocks: tuple[int, ...]) -> list[int]:
    """Return the last day of each horizon block: the settings' blocks below the horizon, then the horizon."""
    return sorted({b for b in blocks if 0 < b < horizon} | {horizon})


def feature_spec(
    settings: DemandSettings,
    events: pl.DataFrame,
    *,
    floor: int | None = None,
    categorical: tuple[str, ...] = (),
) -> FeatureSpec:
    """Return the features of the block whose lags start at ``floor`` (default: the horizon): lags below
    it are dropped (they would need forecasts of the block's own days), windows end ``floor`` days back."""
    m = settings.model
    floor = settings.horizon if floor is None else floor
    lags = {n for n in m.lags if n >= floor} | {floor + i for i in range(m.recent_days)}
    return FeatureSpec(
        lags=tuple(sorted(lags)),
        windows=tuple(sorted(set(m.windows))),
        horizon=floor,
        event_types=tuple(event_types(events)),
        event_lead_days=settings.event_lead_days,
        stale_days=m.stale_days,
        dow_weeks=tuple(sorted(set(m.dow_weeks))),
        price_window=m.price_window,
        categorical=categorical or ("region", "category"),
        planned_event_types=tuple(m.planned_event_types),
    )


def categories(tables: LakeTables, wanted: tuple[str, ...]) -> dict[str, list[str]]:
    """Return the sorted levels of each wanted categorical the reference tables have (non-empty)."""
    out: dict[str, list[str]] = {}
    for name in wanted:
        source = tables.stores if name in ("store_id", "region", *OPTIONAL_STORE) else tables.products
        if name in source.columns:
            levels = sorted(source.get_column(name).drop_nulls().cast(pl.String).unique().to_list())
            if levels:
                out[name] = levels
    return out


def to_matrix(df: pl.DataFrame, names: list[str], levels: dict[str, list[str]]) -> np.ndarray:
    """Return ``df[names]`` as a float32 matrix (NaN for missing; categorical levels as integer codes,
    unseen levels missing). The one place polars data becomes LightGBM input."""
    exprs = []
    for name in names:
        col = pl.col(name)
        if name in levels:
            col = col.cast(pl.String).replace_strict(
                levels[name], list(range(len(levels[name]))), default=None, return_dtype=pl.Int32
            )
        exprs.append(col.cast(pl.Float32))
    return df.select(exprs).to_numpy().astype(np.float32, copy=False)


def _lgb_params(settings: DemandSettings) -> dict[str, object]:
    """Return LightGBM parameters from settings; deterministic given the seed."""
    m = settings.model
    params: dict[str, object] = {
        "objective": m.objective,
        "num_leaves": m.num_leaves,
        "learning_rate": m.learning_rate,
        "min_data_in_leaf": m.min_data_in_leaf,
        "feature_fraction": m.feature_fraction,
        "seed": settings.seed,
        "num_threads": settings.num_threads,
        "deterministic": True,
        "force_row_wise": True,  # many rows, few features: row-wise histograms, and no timing probe
        "max_bin": m.max_bin,  # daily counts and rates need few split points
        "cat_smooth": 10,
        "verbosity": -1,
    }
    if m.bagging_fraction < 1:
        params |= {"bagging_fraction": m.bagging_fraction, "bagging_freq": 1}
    if m.objective == "tweedie":
        params["tweedie_variance_power"] = m.tweedie_variance_power
    return params


def _specs(settings: DemandSettings, tables: LakeTables) -> tuple[list[FeatureSpec], dict[str, list[str]]]:
    """Return each horizon block's feature spec and the categorical levels they share."""
    levels = categories(tables, tuple(settings.model.categorical))
    floors = block_floors(settings.horizon, settings.model.horizon_blocks)
    specs = [feature_spec(settings, tables.events, floor=f, categorical=tuple(levels)) for f in floors]
    return specs, levels


def training_rows(
    tables: LakeTables, spec: FeatureSpec, *, as_of: date, base: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Return the rows a model as of ``as_of`` learns from: dated <= as_of with known (uncensored)
    demand, every feature of ``spec``, sorted by store_id, sku, date (so seeded sampling is stable).
    ``base`` is demand_base's history frame when several blocks share it."""
    lf = base.lazy() if base is not None else demand_base(tables, spec, as_of=as_of)
    rows = add_history_features(lf, tables, spec, as_of=as_of)
    return rows.filter(~pl.col("is_future"), pl.col("units").is_not_null()).sort(*PAIR, "date").collect()


def _sample_and_mask(
    n: int, is_valid: np.ndarray, *, max_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return the rows to train on (every held-out row, a seeded sample of at most ``max_rows`` of the
    others) and, per kept row, whether its own history is hidden (COLD_START_SHARE of them: what a
    never-sold pair looks like)."""
    keep = np.arange(n)
    train = np.flatnonzero(~is_valid)
    if len(train) > max_rows:
        keep = np.sort(
            np.concatenate([rng.choice(train, size=max_rows, replace=False), np.flatnonzero(is_valid)])
        )
    return keep, rng.random(len(keep)) < COLD_START_SHARE


def _dataset(settings: DemandSettings, spec: FeatureSpec, x: np.ndarray, y: np.ndarray) -> lgb.Dataset:
    """Return the LightGBM Dataset of (x, y), binned now: the early-stopping pass trains on a subset of
    it and the refit on all of it, both with these bins (binning once, not twice)."""
    names = spec.feature_names()
    cat_idx = [names.index(c) for c in spec.categorical]
    params = _lgb_params(settings)
    data = lgb.Dataset(
        x, y, feature_name=names, categorical_feature=cat_idx, params=params, free_raw_data=True
    )
    return data.construct()


def _train(
    settings: DemandSettings, train_set: lgb.Dataset, *, rounds: int, valid: lgb.Dataset | None
) -> lgb.Booster:
    """Return a booster on ``train_set``: early-stopped on ``valid`` when given, else ``rounds`` rounds."""
    if valid is None:
        return lgb.train(_lgb_params(settings), train_set, num_boost_round=rounds)
    return lgb.train(
        _lgb_params(settings),
        train_set,
        num_boost_round=rounds,
        valid_sets=[valid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(settings.model.early_stopping_rounds, verbose=False)],
    )


def _valid_metrics(y: np.ndarray, mu: np.ndarray) -> dict[str, float]:
    """Return WAPE, MAE, RMSE and relative bias of predictions ``mu`` on held-out ``y``."""
    total = float(np.sum(y))
    return {
        "valid_wape": float(np.sum(np.abs(y - mu)) / total) if total > 0 else float("nan"),
        "valid_mae": float(np.mean(np.abs(y - mu))) if len(y) else float("nan"),
        "valid_rmse": float(np.sqrt(np.mean((y - mu) ** 2))) if len(y) else float("nan"),
        "valid_bias": float((np.sum(mu) - total) / total) if total > 0 else float("nan"),
    }


@dataclass
class _Holdout:
    """One block's held-out days: actuals, predictions, and which of them the block serves."""

    y: np.ndarray
    mu: np.ndarray
    served: np.ndarray


def _fit_block(
    rows: pl.DataFrame,
    spec: FeatureSpec,
    first_day: int,
    levels: dict[str, list[str]],
    *,
    as_of: date,
    settings: DemandSettings,
    shared: tuple[int, float] | None = None,
) -> tuple[HorizonBlock, _Holdout | None, int]:
    """Return one block fitted on ``rows`` (training_rows), its holdout and the rounds it kept.
    ``shared`` (rounds, dispersion): another block's early-stopping pass found them; this block has no
    pass of its own and no holdout (None)."""
    m = settings.model
    names = spec.feature_names()
    origin = as_of - timedelta(days=m.valid_days)
    dates = rows.get_column("date")
    is_valid = (dates > origin).to_numpy()
    if is_valid.all() or not is_valid.any():
        # too little history to hold days out: validate on a seeded tenth of the rows instead
        is_valid = np.random.default_rng(settings.seed + 1).random(rows.height) < 0.1
    ahead = (dates - origin).dt.total_days().to_numpy()
    served = is_valid & (ahead >= first_day) & (ahead <= spec.horizon)
    if m.early_stopping == "shared":  # one pass sets every block's width: calibrate on all held-out days
        served = is_valid
    rng = np.random.default_rng(settings.seed)
    keep, hidden = _sample_and_mask(rows.height, is_valid, max_rows=m.max_train_rows, rng=rng)
    x, y = to_matrix(rows, names, levels), rows.get_column("units").to_numpy().astype(np.float32)
    if len(keep) < rows.height:
        x, y, is_valid, served = x[keep], y[keep], is_valid[keep], served[keep]
    x_valid, y_valid = x[is_valid], y[is_valid]  # held out as they are: no history hidden
    x[np.ix_(hidden, np.asarray([names.index(n) for n in spec.own_history()], dtype=np.intp))] = np.nan
    full = _dataset(settings, spec, x, y)
    del x
    if shared is not None:
        rounds, dispersion = shared
        data = full if m.refit == "full" else full.subset(np.flatnonzero(~is_valid).tolist())
        return (
            HorizonBlock(first_day, spec, _train(settings, data, rounds=rounds, valid=None), dispersion),
            None,
            rounds,
        )
    valid = lgb.Dataset(x_valid, y_valid, reference=full)
    first = _train(
        settings, full.subset(np.flatnonzero(~is_valid).tolist()), rounds=m.num_boost_round, valid=valid
    )
    rounds = max(1, first.best_iteration or m.num_boost_round)
    mu = np.clip(first.predict(x_valid, num_iteration=rounds), 0, None)
    holdout = _Holdout(y_valid, mu, served[is_valid])
    if not holdout.served.any():  # a block past the held-out days: calibrate on all of them
        holdout.served = np.ones(len(mu), dtype=bool)
    dispersion = calibrate_dispersion(
        holdout.y[holdout.served],
        holdout.mu[holdout.served],
        coverage=m.interval_coverage,
        seed=settings.seed,
    )
    booster = first
    if m.refit == "full":
        booster = _train(settings, full, rounds=rounds, valid=None)
    return HorizonBlock(first_day, spec, booster, dispersion), holdout, rounds


def fit_demand_model(tables: LakeTables, *, as_of: date, settings: DemandSettings) -> DemandModel:
    """Return a model trained on history up to ``as_of``, one direct model per horizon block (see the
    module docstring). Raises ValueError without history."""
    specs, levels = _specs(settings, tables)
    started = time.perf_counter()
    # features one chunk of SKUs at a time, each cut to the training set (models/training_set.py)
    plan = training_plan(tables, specs[-1], as_of=as_of, scale=settings.scale)
    if plan.totals.get_column("_d").sum() == 0:
        raise ValueError(f"No store sales on or before {as_of}: nothing to train the demand model on.")
    m = settings.model
    since = as_of - timedelta(days=m.train_days - 1) if m.train_days else None
    holdouts: list[tuple[_Holdout, float]] = []
    metrics: dict[str, float] = {}
    # one training set holds every block's columns (one panel, not one per block)
    rows = training_set(
        tables, specs[-1], as_of=as_of, valid_days=m.valid_days, max_rows=m.max_train_rows,
        seed=settings.seed, scale=settings.scale, plan=plan, since=since, also=specs[:-1],
    )  # fmt: skip
    features_s = time.perf_counter() - started
    first_days = [1, *(spec.horizon + 1 for spec in specs[:-1])]
    order = list(range(len(specs)))
    shared: tuple[int, float] | None = None
    if m.early_stopping == "shared":  # the early-stopped block first: the others reuse its rounds
        order.insert(0, order.pop(m.stopping_block % len(specs)))
    fitted: dict[int, HorizonBlock] = {}
    for k in order:
        block, holdout, rounds = _fit_block(
            rows, specs[k], first_days[k], levels, as_of=as_of, settings=settings, shared=shared
        )
        fitted[k] = block
        if holdout is not None:
            holdouts.append((holdout, block.dispersion))
        if m.early_stopping == "shared":
            shared = (rounds, block.dispersion)
        metrics[f"best_iteration_block{k + 1}"] = float(rounds)
        metrics[f"dispersion_block{k + 1}"] = block.dispersion
    metrics["train_rows"] = float(rows.height)  # the training set's rows (models/training_set.py)
    blocks = [fitted[k] for k in range(len(specs))]
    y = np.concatenate([h.y[h.served] for h, _ in holdouts])
    mu = np.concatenate([h.mu[h.served] for h, _ in holdouts])
    metrics |= _valid_metrics(y, mu)
    metrics["interval_coverage_valid"] = float(np.mean(np.concatenate([_inside(h, a) for h, a in holdouts])))
    metrics["best_iteration"] = metrics[f"best_iteration_block{len(blocks)}"]
    metrics["dispersion"] = blocks[-1].dispersion
    metrics["valid_rows"] = float(len(y))
    metrics["features_s"] = round(features_s, 3)
    metrics["train_s"] = round(time.perf_counter() - started - features_s, 3)
    return DemandModel(blocks, as_of, metrics, levels)


def _inside(holdout: _Holdout, dispersion: float) -> np.ndarray:
    """Return per served held-out day whether it fell inside its p10-p90 interval."""
    lo, hi = nb_interval(holdout.mu[holdout.served], dispersion)
    y = holdout.y[holdout.served]
    return (y >= lo) & (y <= hi)


def forecast_demand(
    model: DemandModel,
    tables: LakeTables,
    pairs: pl.DataFrame,
    *,
    horizon: int,
    chunk_rows: int = ScaleSettings().chunk_rows(),
) -> pl.DataFrame:
    """Return store_id, sku, date, units, p10, p90 (outputs.FORECAST_COLUMNS) and units_no_event for
    every (store_id, sku) in ``pairs`` and each day as_of+1 .. as_of+horizon, sorted. ``units`` is the
    expected demand were the shelf never empty, the calendar's known events included; ``units_no_event``
    the same with every event feature neutralised. Never negative. Pairs never sold in their store are
    forecast from the cross-sectional signals (cold start). Features are built one chunk of SKUs of
    about ``chunk_rows`` panel rows at a time (features/chunked.py: the same values, bounded memory)."""
    if horizon > model.horizon:
        raise ValueError(
            f"The model was trained for a {model.horizon}-day horizon; refit with settings.horizon >= "
            f"{horizon} to forecast {horizon} days."
        )
    wanted = pairs.select(*PAIR).unique()
    if wanted.height == 0:
        return pl.DataFrame(schema={**FORECAST_COLUMNS, NO_EVENT: pl.Float64})
    # forecast rows only need the features' reach of history: skip older rows for speed
    start = model.as_of - timedelta(days=max(b.spec.reach for b in model.blocks) + 1)
    plan = plan_chunks(tables, model.spec, as_of=model.as_of, max_rows=chunk_rows, pairs=wanted, start=start)
    frames = []
    served = [b for b in model.blocks if b.first_day <= horizon]
    for i in range(len(plan.chunks)):
        rows = (
            chunk_features(
                tables,
                model.spec,
                plan,
                i,
                as_of=model.as_of,
                pairs=wanted,
                start=start,
                also=[b.spec for b in served if b.spec != model.spec],
            )  # fmt: skip
            .filter(pl.col("is_future"))
            .join(wanted.lazy(), on=list(PAIR), how="semi")
            .collect()
        )  # every block's columns on one panel: each block takes its own days and columns
        for block in served:
            first = model.as_of + timedelta(days=block.first_day)
            last = model.as_of + timedelta(days=min(block.last_day, horizon))
            days = rows.filter(pl.col("date") >= first, pl.col("date") <= last)
            frames.append(_forecast_block(block, days, levels=model.categories))
    return pl.concat(frames).sort(*PAIR, "date")


def _forecast_block(block: HorizonBlock, rows: pl.DataFrame, *, levels: dict[str, list[str]]) -> pl.DataFrame:
    """Return the forecast columns of ``rows``: the feature rows of the days one block serves."""
    names = block.spec.feature_names()
    x = to_matrix(rows, names, levels)
    mu = np.clip(block.booster.predict(x), 0, None)
    event_idx = [names.index(n) for n in block.spec.event_features()]
    x[:, event_idx] = np.nan  # the counterfactual: no event known on any forecast day
    mu0 = np.clip(block.booster.predict(x), 0, None) if event_idx else mu
    p10, p90 = nb_interval(mu, block.dispersion)
    return rows.select(*PAIR, "date").with_columns(
        pl.Series("units", mu, dtype=pl.Float64),
        pl.Series("p10", p10, dtype=pl.Float64),
        pl.Series("p90", p90, dtype=pl.Float64),
        pl.Series(NO_EVENT, mu0, dtype=pl.Float64),
    )


__all__ = [
    "DemandModel",
    "DemandSettings",
    "HorizonBlock",
    "ModelSettings",
    "block_floors",
    "feature_spec",
    "fit_demand_model",
    "forecast_demand",
    "interval_coverage",
    "training_rows",
]
