"""The demo world's store and online draws, replayed for bench/mining_oracle.py (issue 8).

The oracle needs what each window's store-day and online units were drawn from: the window's own
planted multiplier, each store-day's normal demand and shelf stock, each region-day's online mean.
They are replayed from ``flows.demo.facts``' own random streams, in its order (``--check`` compares
the replayed units with ``facts.sales_block``'s export).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flows.demo import facts  # noqa: E402
from flows.demo.events import window_profile  # noqa: E402
from flows.demo.world import World  # noqa: E402


def own_multiplier(world: World, rows: pl.DataFrame) -> np.ndarray:
    """(R, S, D) float32: on each scored window row, the multiplier of that row's own event type (the
    planted lifts over ``window_profile``, as ``flows.demo.events.apply_events`` applies them); 1
    elsewhere."""
    n_r, (n_s, n_d) = len(world.regions), world.season.shape
    regions = {r.name: i for i, r in enumerate(world.regions)}
    skus = {s: i for i, s in enumerate(world.products["sku"].to_list())}
    lifts: dict[str, list[tuple[int, int, float]]] = {}
    for p in world.truth["event_uplift"]:
        lifts.setdefault(p["event_type"], []).append((regions[p["region"]], skus[p["sku"]], p["lift"]))
    own = np.ones((n_r, n_s, n_d), dtype=np.float32)
    for etype, group in world.events.partition_by("event_type", as_dict=True, maintain_order=True).items():
        mult = np.ones_like(own)
        for _event_id, inst in group.partition_by("event_id", as_dict=True, maintain_order=True).items():
            start, end = inst["start_date"][0], inst["end_date"][0]
            t0, days = (start - world.start).days, (end - start).days + 1
            if t0 < 0 or t0 + days > n_d:
                continue
            hit = (
                set(range(n_r)) if "ALL" in inst["region"].to_list() else {regions[x] for x in inst["region"]}
            )
            for r, k, lift in lifts.get(str(etype[0]), []):
                if r in hit:
                    mult[r, k, t0 : t0 + days] *= window_profile(days, lift).astype(np.float32)
        on = rows.filter(pl.col("event_type") == etype[0])
        ri, ki, ti = (on[c].to_numpy() for c in ("r", "k", "t"))
        own[ri, ki, ti] = mult[ri, ki, ti]
    return own


def store_cells(world: World, rows: pl.DataFrame, own: np.ndarray, *, check: bool) -> dict[str, np.ndarray]:
    """Every carried, not-out-of-stock store-day on a window row: its row, null mean m0 (negative
    binomial of size 4), stock c and observed units y = min(demand, stock) (before returns)."""
    n_r, (n_s, n_d) = len(world.regions), world.season.shape
    lookup = np.full((n_r, n_s, n_d), -1, dtype=np.int64)
    lookup[rows["r"].to_numpy(), rows["k"].to_numpy(), rows["t"].to_numpy()] = rows["row"].to_numpy()
    traffic = facts.store_traffic(world)
    local = facts.regional_factors(world)
    days = np.arange(n_d)
    parts: dict[str, list[np.ndarray]] = {"row": [], "m0": [], "c": [], "y": []}
    for b, pairs in enumerate(facts.store_batches(world)):
        rng = facts._rng(world, 3, b)  # replays facts.sales_block's draws, in its order
        normal, lam = facts._demand(world, rng, pairs, traffic, local)
        demand = rng.poisson(lam).astype(np.int64)
        stock = np.ceil(normal * rng.uniform(*facts.STOCK_COVER, size=normal.shape)).astype(np.int64) + 3
        out = facts._stockouts(rng, len(pairs), n_d)
        units = np.minimum(demand, stock)
        if check and b == 0:
            _check_batch(world, rng, pairs, traffic, units, out)
        s, k = pairs[:, 0], pairs[:, 1]
        r = world.store_region[s]
        row = lookup[r[:, None], k[:, None], days[None, :]]
        carried = (days >= pairs[:, 2, None]) & (days < pairs[:, 3, None])
        p_i, t_i = np.nonzero((row >= 0) & carried & ~out)
        m_full = normal[p_i, t_i] * world.event_mult[r[p_i], k[p_i], t_i] * traffic[s[p_i], t_i]
        parts["row"].append(row[p_i, t_i])
        parts["m0"].append((m_full / own[r[p_i], k[p_i], t_i]).astype(np.float64))
        parts["c"].append(stock[p_i, t_i])
        parts["y"].append(units[p_i, t_i])
    return {key: np.concatenate(v) for key, v in parts.items()}


def _check_batch(
    world: World,
    rng: np.random.Generator,
    pairs: np.ndarray,
    traffic: np.ndarray,
    units: np.ndarray,
    out: np.ndarray,
) -> None:
    """The replayed units, with the returns drawn next, must be the sales rows ``sales_block`` exports."""
    units = units.copy()
    returns = (rng.random(units.shape) < 0.0025) & ~out
    units -= returns * (1 + rng.poisson(0.4, size=units.shape))
    units[out] = 0
    block = facts.sales_block(world, 0, pairs, traffic)
    s = {v: i for i, v in enumerate(world.stores["store_id"].to_list())}
    k = {v: i for i, v in enumerate(world.products["sku"].to_list())}
    pos = {(int(a), int(b)): i for i, (a, b) in enumerate(pairs[:, :2])}
    p = np.array([pos[(s[a], k[b])] for a, b in zip(block["store_id"], block["sku"], strict=True)])
    t = (block["date"].to_numpy() - np.datetime64(world.start)).astype("timedelta64[D]").astype(np.int64)
    if not np.array_equal(units[p, t], block["units"].to_numpy()):
        raise AssertionError("replayed store draws differ from flows.demo.facts.sales_block")
    print(f"check: {block.height:,} store-sales rows of batch 0 replayed exactly")


def online_rows(world: World, rows: pl.DataFrame, own: np.ndarray) -> dict[str, np.ndarray]:
    """Per window row: the null mean of online order lines and the online units (before returns)."""
    n_r, (n_s, n_d) = len(world.regions), world.season.shape
    noise = facts._rng(world, 4).lognormal(-(0.1**2) / 2, 0.1, size=(n_r, 1, n_d)).astype(np.float32)
    lines = facts._online_lines(world, facts._rng(world, 4))  # the same stream: the same lines
    flat = (lines["region"] * n_s + lines["sku"]) * n_d + lines["day"]
    units = np.bincount(flat, lines["units"], minlength=n_r * n_s * n_d).reshape(n_r, n_s, n_d)
    weight = np.array([world.store_scale[world.store_region == r].sum() for r in range(n_r)])
    r, k, t = (rows[c].to_numpy() for c in ("r", "k", "t"))
    lam = world.sku_base[k] * world.taste[r, k] * weight[r] * world.season[k, t]
    lam = lam * facts.regional_factors(world)[r, k, t] * world.event_mult[r, k, t] * noise[r, 0, t]
    lam = lam * np.where(world.promo[k, t], world.promo_lift[k], 1.0)
    share = facts.online_shares(world)[r]
    return {"mu": lam / own[r, k, t] * share / facts.UNITS_PER_LINE, "y": units[r, k, t]}
