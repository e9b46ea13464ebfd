"""The LightGBM demand model: expected daily units per store x SKU, were the shelf never empty.

Direct forecasting: every feature of a row ends at least ``horizon`` days before it (features/), so one
model serves each of the next ``horizon`` days without feeding on its own predictions. Stockout days
are left out of the target (censored, not zero), so the model learns demand rather than sales.

Cold start: a pair the store never sold has no own history. Training masks the own-history features
on a seeded random share of rows so the model learns to predict from the cross-sectional signals
(the SKU's rate in other stores of the chain and of the region, the region's online orders, the
store's volume, category, price), which exist for any pair.

Intervals: p10/p90 are quantiles of a negative binomial around the predicted mean, Var = mu + a mu^2,
with the dispersion ``a`` estimated by moments from the early-stopping (validation) residuals.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
from pydantic import BaseModel, Field
from scipy import stats

from data_contracts.outputs import FORECAST_COLUMNS
from data_contracts.tables import LakeTables
from features.calendar import event_types
from features.panel import CATEGORICAL, PAIR, FeatureSpec, demand_features

COLD_START_SHARE = 0.15  # share of training rows whose own history is hidden (see module docstring)


class ModelSettings(BaseModel):
    """LightGBM demand model."""

    lags: tuple[int, ...] = Field((28, 35, 42, 56, 364), description="Own-history lags in days (>= horizon).")
    windows: tuple[int, ...] = Field((7, 28, 91), description="Rolling-mean windows in days.")
    num_leaves: int = 63
    learning_rate: float = 0.1
    num_boost_round: int = 500
    early_stopping_rounds: int = 30
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    objective: str = Field("tweedie", description="LightGBM objective; tweedie suits sparse daily counts.")
    max_train_rows: int = Field(3_000_000, gt=0, description="Sample training rows above this count.")
    valid_days: int = Field(28, gt=0, description="Most recent days held out for early stopping.")


class DemandSettings(BaseModel):
    """What the demand model is told: its own settings plus the run's horizon, seed and threads."""

    model: ModelSettings = ModelSettings()
    horizon: int = Field(28, gt=0, description="Forecast horizon in days.")
    seed: int = 42
    num_threads: int = Field(1, gt=0, description="Threads for LightGBM.")
    event_lead_days: int = Field(7, ge=0, description="Days before an event's start counted in its window.")


@dataclass
class DemandModel:
    """A fitted demand model and everything needed to forecast with it later."""

    booster: lgb.Booster
    feature_names: list[str]
    as_of: date
    metrics: dict[str, float]
    spec: FeatureSpec
    categories: dict[str, list[str]] = field(default_factory=dict)  # levels behind the integer codes
    dispersion: float = 0.0  # negative-binomial a in Var = mu + a mu^2

    def save(self, path: Path) -> None:
        """Write the model to folder ``path``: booster.txt (LightGBM text) and meta.json."""
        path.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(path / "booster.txt"))
        meta = {
            "feature_names": self.feature_names,
            "as_of": self.as_of.isoformat(),
            "metrics": self.metrics,
            "spec": asdict(self.spec),
            "categories": self.categories,
            "dispersion": self.dispersion,
        }
        (path / "meta.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: Path) -> DemandModel:
        """Return the model saved in folder ``path``."""
        meta = json.loads((path / "meta.json").read_text())
        spec = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["spec"].items()}
        return cls(
            booster=lgb.Booster(model_file=str(path / "booster.txt")),
            feature_names=list(meta["feature_names"]),
            as_of=date.fromisoformat(meta["as_of"]),
            metrics={k: float(v) for k, v in meta["metrics"].items()},
            spec=FeatureSpec(**spec),
            categories={k: list(v) for k, v in meta["categories"].items()},
            dispersion=float(meta["dispersion"]),
        )


def feature_spec(settings: DemandSettings, events: pl.DataFrame) -> FeatureSpec:
    """Return the features a model trained with ``settings`` uses: lags shorter than the horizon are
    dropped (they would need forecasts of the horizon's own days), windows end ``horizon`` days back."""
    horizon = settings.horizon
    return FeatureSpec(
        lags=tuple(sorted({n for n in settings.model.lags if n >= horizon})),
        windows=tuple(sorted(set(settings.model.windows))),
        horizon=horizon,
        event_types=tuple(event_types(events)),
        event_lead_days=settings.event_lead_days,
        stale_days=max(settings.model.windows),
    )


def to_matrix(df: pl.DataFrame, names: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """Return ``df[names]`` as a float32 matrix (NaN for missing; categorical levels as integer codes,
    unseen levels missing). The one place polars data becomes LightGBM input."""
    exprs = []
    for name in names:
        col = pl.col(name)
        if name in categories:
            levels = categories[name]
            col = col.replace_strict(levels, list(range(len(levels))), default=None, return_dtype=pl.Int32)
        exprs.append(col.cast(pl.Float32))
    return df.select(exprs).to_numpy().astype(np.float32, copy=False)


def _categories(tables: LakeTables) -> dict[str, list[str]]:
    """Return the sorted levels of each categorical feature, from the reference tables."""
    source = {"region": tables.stores, "category": tables.products}
    return {c: sorted(source[c].get_column(c).drop_nulls().unique().to_list()) for c in CATEGORICAL}


def _lgb_params(settings: DemandSettings) -> dict[str, object]:
    """Return LightGBM parameters from settings; deterministic given the seed."""
    m = settings.model
    return {
        "objective": m.objective,
        "num_leaves": m.num_leaves,
        "learning_rate": m.learning_rate,
        "min_data_in_leaf": m.min_data_in_leaf,
        "feature_fraction": m.feature_fraction,
        "bagging_fraction": m.bagging_fraction,
        "bagging_freq": 1 if m.bagging_fraction < 1 else 0,
        "seed": settings.seed,
        "num_threads": settings.num_threads,
        "deterministic": True,
        "force_row_wise": True,  # many rows, few features: row-wise histograms, and no timing probe
        "max_bin": 63,  # daily counts and rates need few split points; halves histogram work
        "verbosity": -1,
    }


def training_rows(tables: LakeTables, spec: FeatureSpec, *, as_of: date) -> pl.DataFrame:
    """Return the rows a model as of ``as_of`` learns from: dated <= as_of with known (uncensored)
    demand, every feature of ``spec``, sorted by store_id, sku, date (so seeded sampling is stable)."""
    lf = demand_features(tables, spec, as_of=as_of)
    return lf.filter(~pl.col("is_future"), pl.col("units").is_not_null()).sort(*PAIR, "date").collect()


def _sample_and_mask(
    x: np.ndarray, y: np.ndarray, own_idx: list[int], *, max_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return a seeded sample of at most ``max_rows`` rows, with the own-history columns hidden
    on COLD_START_SHARE of them (NaN: what a never-sold pair looks like)."""
    if len(y) > max_rows:
        keep = np.sort(rng.choice(len(y), size=max_rows, replace=False))
        x, y = x[keep], y[keep]
    else:
        x = x.copy()
    masked = rng.random(len(y)) < COLD_START_SHARE
    x[np.ix_(masked, own_idx)] = np.nan
    return x, y


def nb_dispersion(y: np.ndarray, mu: np.ndarray) -> float:
    """Return the moment estimate of a in Var(y) = mu + a mu^2 (0 when no overdispersion shows)."""
    denom = float(np.sum(mu**2))
    if denom <= 0:
        return 0.0
    return max(0.0, float(np.sum((y - mu) ** 2 - mu)) / denom)


def _valid_metrics(y: np.ndarray, mu: np.ndarray) -> dict[str, float]:
    """Return WAPE, MAE, RMSE and relative bias of predictions ``mu`` on held-out ``y``."""
    total = float(np.sum(y))
    return {
        "valid_wape": float(np.sum(np.abs(y - mu)) / total) if total > 0 else float("nan"),
        "valid_mae": float(np.mean(np.abs(y - mu))),
        "valid_rmse": float(np.sqrt(np.mean((y - mu) ** 2))),
        "valid_bias": float((np.sum(mu) - total) / total) if total > 0 else float("nan"),
    }


def fit_demand_model(tables: LakeTables, *, as_of: date, settings: DemandSettings) -> DemandModel:
    """Return a model trained on history up to ``as_of``; the last ``settings.model.valid_days`` days
    are held out for early stopping and for the interval dispersion. Raises ValueError without history.
    """
    spec = feature_spec(settings, tables.events)
    names = spec.feature_names()
    cats = _categories(tables)
    started = time.perf_counter()
    rows = training_rows(tables, spec, as_of=as_of)
    if rows.height == 0:
        raise ValueError(f"No store sales on or before {as_of}: nothing to train the demand model on.")
    is_valid = (rows.get_column("date") > as_of - timedelta(days=settings.model.valid_days)).to_numpy()
    if is_valid.all() or not is_valid.any():
        # too little history to hold days out: validate on a seeded tenth of the rows instead
        is_valid = np.random.default_rng(settings.seed + 1).random(rows.height) < 0.1
    x_all, y_all = to_matrix(rows, names, cats), rows.get_column("units").to_numpy().astype(np.float32)
    features_s = time.perf_counter() - started
    rng = np.random.default_rng(settings.seed)
    own_idx = [names.index(n) for n in spec.own_history()]
    x_tr, y_tr = _sample_and_mask(
        x_all[~is_valid], y_all[~is_valid], own_idx, max_rows=settings.model.max_train_rows, rng=rng
    )
    x_va, y_va = x_all[is_valid], y_all[is_valid]
    cat_features = [names.index(c) for c in CATEGORICAL]
    train_set = lgb.Dataset(
        x_tr, y_tr, feature_name=names, categorical_feature=cat_features, free_raw_data=True
    )
    valid_set = lgb.Dataset(x_va, y_va, reference=train_set)
    evals: dict[str, dict[str, list[float]]] = {}
    booster = lgb.train(
        _lgb_params(settings),
        train_set,
        num_boost_round=settings.model.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(settings.model.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(evals),
        ],
    )
    mu = np.clip(booster.predict(x_va, num_iteration=booster.best_iteration), 0, None)
    metrics = {
        **_valid_metrics(y_va, mu),
        "best_iteration": float(booster.best_iteration),
        "train_rows": float(len(y_tr)),
        "valid_rows": float(len(y_va)),
        "features_s": round(features_s, 3),
        "train_s": round(time.perf_counter() - started - features_s, 3),
    }
    dispersion = nb_dispersion(y_va, mu)
    metrics["dispersion"] = dispersion
    return DemandModel(booster, names, as_of, metrics, spec, cats, dispersion)


def forecast_demand(
    model: DemandModel, tables: LakeTables, pairs: pl.DataFrame, *, horizon: int
) -> pl.DataFrame:
    """Return store_id, sku, date, units, p10, p90 (outputs.FORECAST_COLUMNS) for every (store_id, sku)
    in ``pairs`` and each day as_of+1 .. as_of+horizon, sorted. ``units`` is the expected demand were
    the shelf never empty, with no event on (the no-event baseline); never negative. Pairs never sold
    in their store are forecast from the cross-sectional signals (cold start)."""
    if horizon > model.spec.horizon:
        raise ValueError(
            f"The model was trained for a {model.spec.horizon}-day horizon (its shortest lag); "
            f"refit with settings.horizon >= {horizon} to forecast {horizon} days."
        )
    wanted = pairs.select(*PAIR).unique()
    if wanted.height == 0:
        return pl.DataFrame(schema=FORECAST_COLUMNS)
    # forecast rows only need the features' reach of history: skip older rows for speed
    start = model.as_of - timedelta(days=model.spec.reach + 1)
    lf = demand_features(tables, model.spec, as_of=model.as_of, pairs=wanted, start=start)
    end = model.as_of + timedelta(days=horizon)
    rows = (
        lf.filter(pl.col("is_future"), pl.col("date") <= end)
        .join(wanted.lazy(), on=list(PAIR), how="semi")
        .sort(*PAIR, "date")
        .collect()
    )
    x = to_matrix(rows, model.feature_names, model.categories)
    mu = np.clip(model.booster.predict(x, num_iteration=model.booster.best_iteration or None), 0, None)
    p10, p90 = nb_interval(mu, model.dispersion)
    return rows.select(*PAIR, "date").with_columns(
        pl.Series("units", mu, dtype=pl.Float64),
        pl.Series("p10", p10, dtype=pl.Float64),
        pl.Series("p90", p90, dtype=pl.Float64),
    )


def nb_interval(mu: np.ndarray, dispersion: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (p10, p90) of a negative binomial with mean ``mu`` and Var = mu + dispersion mu^2
    (Poisson when dispersion is 0). Counts are discrete, so for a very slow seller both quantiles can
    be 0 while the mean is 0.2: the interval is widened to contain the mean, so p10 <= units <= p90."""
    mu = np.asarray(mu, dtype=np.float64)
    if dispersion < 1e-9:
        lo, hi = stats.poisson.ppf(0.1, mu), stats.poisson.ppf(0.9, mu)
    else:
        n = 1.0 / dispersion
        p = n / (n + mu)
        lo, hi = stats.nbinom.ppf(0.1, n, p), stats.nbinom.ppf(0.9, n, p)
    lo = np.nan_to_num(lo, nan=0.0)
    hi = np.nan_to_num(hi, nan=0.0)
    return np.minimum(lo, mu), np.maximum(hi, mu)
