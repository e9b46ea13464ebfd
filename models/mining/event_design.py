"""The event miner's design: the daily panel as arrays (counts, exposure, censored parts, every fixed
effect's level codes, each event type's window rows), and the fit of every effect on every row that
sets the store-days' negative binomial size (``with_dispersion``). ``models.mining.event_uplift``
fits its counterfactuals on it; ``models.mining.discovery_baseline`` builds its cube's from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from typing import cast

import numpy as np
import polars as pl

from features.signals import PHASES
from models.mining.dispersion import row_dispersion, store_size
from models.mining.effects import Censored, Effect, fit_effects, linear_predictor

BASE_EFFECTS = ("delta", "drift", "dow", "dom")
# pseudo-counts at "no deviation": a block with no sale stays finite, weekdays and days of month of a
# slow seller stay near flat (the event counterfactual's shock has its own, by empirical Bayes:
# ``models.mining.dispersion.shock_prior``; the discovery scan's keeps "gamma")
PRIORS = {"delta": 0.1, "drift": 5.0, "dow": 0.5, "dom": 0.5, "gamma": 0.5, "promo": 0.5}
# a row's promo state: the share of its exposure on promotion, in this many equal bins (0: no promo)
PROMO_BINS = 4
# a block's level may drift at most e^(1/2) ~ 1.65x between its centre and either end
DRIFT_BOUND = 1.0


@dataclass(frozen=True)
class Design:
    """The panel as arrays: counts, exposure, censored parts, every effect's level codes, and per event
    type the panel rows inside its windows (row, region, sku, offset, cluster, chain_wide)."""

    y: np.ndarray
    exposure: np.ndarray
    censored: Censored
    codes: dict[str, np.ndarray]
    windows: dict[str, pl.DataFrame]
    block_position: np.ndarray  # where in its block a row lies, -0.5 .. 0.5 (the drift's covariate)
    # uncensored store-days: their panel row, units and part of the row's exposure (for the dispersion)
    store_row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    store_units: np.ndarray = field(default_factory=lambda: np.zeros(0))
    store_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    store_pair: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # store x SKU code
    # per row: the sum of the squared shares of the stores whose demand it observes in full, days
    # without a sales row included (empty: the store-days' own rows only)
    square_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # per row: sum over its stores of share^2 / their size (``with_dispersion``; empty: not yet)
    square_kappa: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fitted: tuple[Effect, ...] = ()  # every effect and type fitted on every row (``with_dispersion``)

    @property
    def base(self) -> list[str]:
        """The effects of every counterfactual: ``BASE_EFFECTS``, plus ``promo`` where a row has one."""
        return [*BASE_EFFECTS, *(["promo"] if (self.codes["promo"] >= 0).any() else [])]

    def outside_windows(self) -> np.ndarray:
        """True on the rows outside every event type's windows (ordinary days)."""
        outside = np.ones(len(self.y), dtype=bool)
        for w in self.windows.values():
            outside[w["row"].to_numpy()] = False
        return outside

    def effects(self, names: list[str], start: dict[str, Effect] | None = None) -> list[Effect]:
        """Fresh effects (or copies of ``start``'s) for ``names``."""
        start = start or {}
        return [start[n].warm() if n in start else self._new(n) for n in names]

    def _new(self, name: str) -> Effect:
        if name == "drift":  # a log-linear trend inside each region x SKU block
            return Effect(
                name, self.codes["delta"], PRIORS[name], slope_of=self.block_position, bound=DRIFT_BOUND
            )
        return Effect(name, self.codes[name], PRIORS.get(name, 0.5))


def _dense(col: str) -> pl.Expr:
    return (pl.col(col).rank("dense") - 1).cast(pl.Int64)


def _promo_code(panel: pl.DataFrame, bins: int) -> pl.Expr:
    """SKU x promo state: ``k * bins + bin`` for a row whose ``promo_share`` (of its exposure) lies in
    ((bin) / bins, (bin + 1) / bins], -1 without a promotion (or without the column)."""
    if "promo_share" not in panel.columns:
        return pl.lit(-1, pl.Int64)
    share = pl.col("promo_share").fill_null(0.0).clip(0.0, 1.0)
    state = (share * bins).ceil().cast(pl.Int64).clip(1, bins) - 1
    return pl.when(share > 0).then(pl.col("k") * bins + state).otherwise(-1).cast(pl.Int64)


def build_design(
    panel: pl.DataFrame,
    parts: pl.DataFrame,
    days: pl.DataFrame,
    *,
    first: date,
    block_days: int,
    stores: pl.DataFrame | None = None,
) -> Design:
    """Arrays for the fits from the panel, its censored parts and the event window days (and the
    uncensored store-days, ``models.mining.dispersion.uncensored_store_days``)."""
    p = panel.sort("region", "sku", "date").with_row_index("row", offset=0)
    p = p.with_columns(
        _dense("region").alias("r"),
        _dense("sku").alias("k"),
        (pl.col("date") - first).dt.total_days().cast(pl.Int64).alias("t"),
    )
    n_k, n_t = int(cast(int, p["k"].max() or 0)) + 1, int(cast(int, p["t"].max() or 0)) + 1
    rk = pl.col("r") * n_k + pl.col("k")
    coded = p.select(
        (rk * (n_t // block_days + 1) + pl.col("t") // block_days).alias("delta"),
        (pl.col("k") * 7 + pl.col("date").dt.weekday() - 1).alias("dow"),
        (pl.col("k") * 31 + pl.col("date").dt.day() - 1).alias("dom"),
        (pl.col("k") * n_t + pl.col("t")).alias("gamma"),
        _promo_code(p, PROMO_BINS).alias("promo"),
    )
    codes = {c: coded[c].to_numpy().astype(np.int64) for c in coded.columns}
    windows: dict[str, pl.DataFrame] = {}
    for (etype,), d in days.partition_by("event_type", as_dict=True).items():
        w = p.select("row", "region", "sku", "date", "r", "k").join(
            d.select("region", "date", "offset", "phase", "cluster", "chain_wide"), on=["region", "date"]
        )
        code = np.full(p.height, -1, dtype=np.int64)
        phase = w["phase"].replace_strict(list(PHASES), list(range(len(PHASES))), return_dtype=pl.Int64)
        code[w["row"].to_numpy()] = ((w["r"] * n_k + w["k"]) * len(PHASES) + phase).to_numpy()
        codes[f"event:{etype}"] = code
        windows[str(etype)] = w.drop("r", "k", "date")
    at = parts.join(p.select("region", "sku", "date", "row", "exposure"), on=["region", "sku", "date"])
    censored = Censored(
        at["row"].to_numpy().astype(np.int64),
        at["sold"].to_numpy().astype(np.float64),
        (at["weight"] / at["exposure"]).clip(upper_bound=1.0).to_numpy(),
    )
    position = ((p["t"] % block_days).to_numpy() + 0.5) / block_days - 0.5
    design = Design(p["y"].to_numpy(), p["exposure"].to_numpy(), censored, codes, windows, position)
    if stores is None:
        return design
    st = stores.join(p.select("region", "sku", "date", "row", "exposure"), on=["region", "sku", "date"])
    square = (
        (p["square_weight"] / p["exposure"] ** 2).to_numpy() if "square_weight" in p.columns else np.zeros(0)
    )
    return replace(
        design,
        store_row=st["row"].to_numpy().astype(np.int64),
        store_units=st["units"].to_numpy().astype(np.float64),
        store_share=(st["weight"] / st["exposure"]).clip(upper_bound=1.0).to_numpy(),
        store_pair=st.select(pl.struct("store_id", "sku").rank("dense").cast(pl.Int64) - 1)
        .to_series()
        .to_numpy(),
        square_share=square,
    )


def with_dispersion(design: Design, *, max_sweeps: int = 100) -> Design:
    """``design`` whose censored parts are negative binomial of the store-days' size
    (``models.mining.dispersion.store_size``: every carried store-day, those without a sales row and
    those that sold out included), estimated from a Poisson fit of every effect on the rows outside
    all event windows; unchanged without store-days. The size also sets the window cells' excess
    variance (``nb_excess``, so it is estimated without a single sell-out too), there with each store
    x SKU's own where its days read it wider (``dispersion.row_dispersion``, under ``fitted``)."""
    if not len(design.store_row):
        return design
    outside = design.outside_windows()
    offset = float(np.log(max(design.y.sum(), 1e-9) / max(design.exposure.sum(), 1e-9)))
    effects = design.effects(design.base)
    fit = partial(
        fit_effects, design.y, design.exposure, censored=design.censored, offset=offset, max_sweeps=max_sweeps
    )
    fit(effects, mask=outside)
    mu = design.exposure * np.exp(linear_predictor(effects, np.arange(len(design.y)), offset))
    kept, cens = outside[design.store_row], design.censored
    sold_out = outside[cens.row]
    size = store_size(
        design.store_units[kept],
        (design.store_share * mu[design.store_row])[kept],
        square=float(np.sum((mu**2 * design.square_share)[outside])) if len(design.square_share) else None,
        censored_expected=(cens.share * mu[cens.row])[sold_out],
        sold=cens.sold[sold_out],
    )
    cens = replace(cens, size=size)
    every = design.effects([*design.base, *(f"event:{t}" for t in sorted(design.windows))])
    fit(every, censored=cens)
    mu = design.exposure * np.exp(linear_predictor(every, np.arange(len(design.y)), offset))
    expected = design.store_share * mu[design.store_row]
    square = row_dispersion(
        design.store_units, expected, design.store_pair, design.store_row, design.store_share,
        design.square_share, size, rows=len(design.y),
    )  # fmt: skip
    return replace(design, censored=cens, square_kappa=square, fitted=tuple(every))
