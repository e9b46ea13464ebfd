"""Unlabeled events of the demo world: spikes events.csv does not list, for the discovery miner to find.

A few per region (a street festival, a water main break, a storm nobody labeled: some resemble a
labeled event type's SKU signature, some do not) and one chain-wide spike (a viral post, every region at
once). Each lifts 4-7 steadily selling SKUs to 2.5-5x for 2-5 days, well away from labeled events of its
region and from the SKUs' promo weeks, so what the truth says was planted is what the data show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from flows.demo.events import EventInstance

PER_REGION = 2
CLEAR_DAYS = 16  # days kept free between an unlabeled window and a labeled one (lead days included)
CHAIN_CLEAR_DAYS = 10  # the same for the chain-wide one, which needs a gap in every region's calendar
EDGE_DAYS = 45  # days kept free at either end of the history (a baseline on both sides)
STREAM = 15  # random streams of a world: 1 (world), 2-4 (facts); this one for the unlabeled events
HURRICANE_ROLES = ("pastry", "water1", "water2", "batt1", "batt2", "beer1", "beer2")


@dataclass(frozen=True)
class Planted:
    """One unlabeled event: region index (None = every region), SKU indexes, lifts, first day, days."""

    label: str
    region: int | None
    skus: tuple[int, ...]
    lifts: tuple[float, ...]
    t0: int
    days: int


def _busy(instances: list[EventInstance], n_regions: int) -> list[list[tuple[int, int]]]:
    busy: list[list[tuple[int, int]]] = [[] for _ in range(n_regions)]
    for e in instances:
        for r in e.regions or range(n_regions):
            busy[r].append((e.t0, e.t0 + e.days - 1))
    return busy


def _clear(busy: list[tuple[int, int]], t0: int, t1: int, gap: int) -> bool:
    return all(t1 + gap < a or b + gap < t0 for a, b in busy)


def _pick_skus(
    rng: np.random.Generator, label: str, steady: np.ndarray, roles: dict[str, int], n: int
) -> list[int]:
    """A storm nobody labeled takes most of the hurricane SKUs; the others a random steady set."""
    if label == "unlabeled_storm":
        core = [roles[r] for r in HURRICANE_ROLES[:5] if r in roles]
        rest = [int(k) for k in rng.permutation(steady) if k not in core][: max(0, n - len(core))]
        return core + rest
    anchors = set(roles.values())
    return [int(k) for k in rng.permutation(steady) if k not in anchors][:n]


def plant_unlabeled(
    seed: int,
    instances: list[EventInstance],
    event_mult: np.ndarray,
    sku_base: np.ndarray,
    promo: np.ndarray,
    roles: dict[str, int],
    carried: np.ndarray,
    store_region: np.ndarray,
) -> list[Planted]:
    """Multiply the unlabeled events into ``event_mult`` (R, S, D) in place and return them.

    ``carried`` (N, S) is today's assortment, ``store_region`` (N,) each store's region: the SKUs of
    a regional event are carried by most of its stores (an online-only trickle shows no spike). Draws
    from its own stream of ``seed``, so the rest of the world is the same with or without them.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM]))
    n_regions, _, n_days = event_mult.shape
    carried_share = np.stack([carried[store_region == r].mean(axis=0) for r in range(n_regions)])
    busy = _busy(instances, n_regions)
    selling = sku_base >= np.quantile(sku_base, 0.6)
    plans = [(None, "viral_post")] + [
        (r, label) for r in range(n_regions) for label in ("unlabeled_storm", "street_festival")[:PER_REGION]
    ]
    planted: list[Planted] = []
    for r, label in plans:
        hit = list(range(n_regions)) if r is None else [r]
        steady = np.flatnonzero(selling & (carried_share[hit].min(axis=0) >= 0.5))
        gap = CHAIN_CLEAR_DAYS if r is None else CLEAR_DAYS
        for _ in range(2000):
            days = int(rng.integers(2, 6))
            t0 = int(rng.integers(EDGE_DAYS, n_days - EDGE_DAYS - days))
            t1 = t0 + days - 1
            mine = [p for p in planted if p.region is None or p.region in hit or r is None]
            if not all(_clear(busy[h], t0, t1, gap) for h in hit) or any(abs(p.t0 - t0) < 30 for p in mine):
                continue
            skus = _pick_skus(rng, label, steady, roles, int(rng.integers(4, 8)))
            skus = [k for k in skus if not promo[k, max(t0 - 3, 0) : t1 + 4].any()]
            if len(skus) < 4:
                continue
            lifts = tuple(round(float(x), 2) for x in rng.uniform(2.5, 5.0, size=len(skus)))
            for k, lift in zip(skus, lifts, strict=True):
                event_mult[hit, k, t0 : t1 + 1] *= np.float32(lift)
            planted.append(Planted(label, r, tuple(skus), lifts, t0, days))
            break
    return planted


def unlabeled_truth(
    planted: list[Planted], region_names: list[str], sku_ids: list[str], start: date
) -> list[dict[str, Any]]:
    """The planted unlabeled events as truth.json rows (region ``ALL`` for the chain-wide one)."""
    return [
        {
            "label": p.label,
            "region": "ALL" if p.region is None else region_names[p.region],
            "window_start": (start + timedelta(days=p.t0)).isoformat(),
            "window_end": (start + timedelta(days=p.t0 + p.days - 1)).isoformat(),
            "skus": [sku_ids[k] for k in p.skus],
            "lifts": list(p.lifts),
            "resembles": "hurricane" if p.label == "unlabeled_storm" else None,
        }
        for p in sorted(planted, key=lambda p: p.t0)
    ]


def discovery_quality(
    patterns: pl.DataFrame, planted: list[dict[str, Any]], *, slack_days: int = 2
) -> dict[str, Any]:
    """Score the ``discovered_event`` rows of ``patterns`` against the planted unlabeled events.

    A discovered window matches a planted one of the same region (``ALL`` for chain-wide) when it
    overlaps the planted window widened by ``slack_days`` on each side. Returns found and planted
    window counts, recall (planted windows matched), precision (found windows matching one), the mean
    Jaccard of the SKU sets of matched pairs (each planted window with its best match), and the
    planted windows missed.
    """
    cols = {"kind", "event_id", "region", "window_start", "window_end", "sku"}
    rows = patterns.filter(pl.col("kind") == "discovered_event") if cols <= set(patterns.columns) else None
    if rows is None:  # a patterns file from before discovery: nothing was reported
        rows = pl.DataFrame(schema={c: pl.Date if c.startswith("window") else pl.String for c in cols})
    found = rows.group_by("event_id").agg(
        pl.col("region").first(),
        pl.col("window_start").first(),
        pl.col("window_end").first(),
        pl.col("sku").unique(),
    )
    slack = timedelta(days=slack_days)
    matched_found: set[str] = set()
    jaccards, missed = [], []
    for p in planted:
        start, end = date.fromisoformat(p["window_start"]), date.fromisoformat(p["window_end"])
        hits = found.filter(
            (pl.col("region") == p["region"])
            & (pl.col("window_start") <= end + slack)
            & (pl.col("window_end") >= start - slack)
        )
        if hits.height == 0:
            missed.append(p)
            continue
        matched_found.update(hits["event_id"].to_list())
        truth = set(p["skus"])
        jaccards.append(max(len(truth & set(s)) / len(truth | set(s)) for s in hits["sku"].to_list()))
    return {
        "planted": len(planted),
        "found": found.height,
        "recall": (len(planted) - len(missed)) / len(planted) if planted else float("nan"),
        "precision": len(matched_found) / found.height if found.height else float("nan"),
        "sku_jaccard": float(np.mean(jaccards)) if jaccards else float("nan"),
        "missed": missed,
    }
