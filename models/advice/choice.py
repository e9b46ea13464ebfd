"""The assortment decision of one store x category: which SKUs to drop, add or swap.

Revenue with demand transference (the exogenous-demand model of the assortment literature, e.g.
Kok & Fisher 2007): every SKU on the shelf sells its expected weekly units. When a SKU leaves the shelf,
a share delta (``transference_share``) of its units moves to the SKUs left in its subcategory,
``same_brand_share`` of that to the same brand first, each recipient in proportion to its own units;
the rest is lost. An added SKU's expected units are its demand when carried, of which the share delta
was bought until now as a substitute in its subcategory: it comes off those SKUs the same way. A change
is valued by replaying it on the shelf's units (add first, then the drop, so a swap never counts a
customer twice) and comparing weekly revenue before and after.

Greedy, one change at a time, best net revenue gain first:

1. Over capacity: drop the SKU whose loss net of transference is smallest (never a must-carry; a SKU
   whose recent sales contradict its forecast, or the last of its subcategory, only when nothing else can
   go).
2. Then, while the change budget lasts, the best add into a free slot while there is one, else the
   best swap of an add for a kept SKU of the *same subcategory*. An add needs evidence: the lower bound
   (p10) of its weekly revenue beats the weakest kept SKU (free slot; with ``free_slot_bar`` =
   ``positive`` it need only be above zero) or the SKU it replaces (swap). A
   swap must gain at least ``min_gain_share`` of the replaced SKU's revenue. Never dropped by a swap:
   must-carry SKUs and SKUs whose own recent sales exceed their forecast's p90. A subcategory is never
   emptied: swaps stay inside it, and only forced drops may take its last SKU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.advice.settings import AssortmentSettings


@dataclass(frozen=True)
class Change:
    """One decision: ``add`` (a row index, or None) replacing ``drop`` (a row index, or None)."""

    add: int | None
    drop: int | None
    gain: float  # weekly revenue change net of transference (negative for a forced drop)
    forced: bool = False


@dataclass(frozen=True)
class Group:
    """One store x category as arrays (row order of the group's frame)."""

    carried: np.ndarray  # bool
    units: np.ndarray  # expected weekly units when carried
    low: np.ndarray  # p10 of weekly units
    price: np.ndarray
    sub: np.ndarray  # subcategory codes
    brand: np.ndarray  # brand codes, -1 unknown
    must: np.ndarray  # bool: never dropped
    protected: np.ndarray  # bool: own recent sales contradict the forecast

    @property
    def revenue(self) -> np.ndarray:
        return self.units * self.price


@dataclass
class Shelf:
    """The SKUs on the shelf and the weekly units each sells given the others (transference applied)."""

    members: np.ndarray  # bool
    sold: np.ndarray  # weekly units, 0 off the shelf

    def copy(self) -> Shelf:
        return Shelf(self.members.copy(), self.sold.copy())

    def revenue(self, g: Group) -> float:
        return float(np.sum(self.sold * g.price))


def _weights(g: Group, shelf: Shelf, i: int, s: AssortmentSettings) -> np.ndarray:
    """How SKU i's transferred units split over the shelf's SKUs of its subcategory (sums to delta, or
    to 0 when i's subcategory has nothing else on the shelf)."""
    recv = shelf.members & (g.sub == g.sub[i])
    recv[i] = False
    w = np.zeros(len(g.units))
    if not recv.any():
        return w

    def split(mask: np.ndarray) -> np.ndarray:
        base = np.where(mask, g.units, 0.0)
        return base / base.sum() if base.sum() > 0 else mask / mask.sum()

    same = recv & (g.brand == g.brand[i]) & (g.brand[i] >= 0)
    w = split(recv)
    if same.any():
        w = s.same_brand_share * split(same) + (1 - s.same_brand_share) * w
    return s.transference_share * w


def add(g: Group, shelf: Shelf, a: int, s: AssortmentSettings) -> Shelf:
    """Return the shelf with a added: a sells its units, delta of them come off its substitutes."""
    out = shelf.copy()
    out.sold = np.maximum(out.sold - _weights(g, shelf, a, s) * g.units[a], 0.0)
    out.members[a], out.sold[a] = True, g.units[a]
    return out


def drop(g: Group, shelf: Shelf, j: int, s: AssortmentSettings) -> Shelf:
    """Return the shelf without j: delta of what j sold moves to its subcategory's SKUs."""
    out = shelf.copy()
    out.sold = out.sold + _weights(g, shelf, j, s) * shelf.sold[j]
    out.members[j], out.sold[j] = False, 0.0
    return out


def _forced_drop(g: Group, shelf: Shelf, s: AssortmentSettings) -> int | None:
    """The SKU to drop to make room: smallest loss, preferring droppable SKUs (see module docstring)."""
    members = shelf.members
    subs, counts = np.unique(g.sub[members], return_counts=True)
    last = members & np.isin(g.sub, subs[counts == 1])
    base = members & ~g.must
    before = shelf.revenue(g)
    for tier in (base & ~g.protected & ~last, base & ~last, base):
        if tier.any():
            idx = np.flatnonzero(tier)
            losses = [before - drop(g, shelf, int(j), s).revenue(g) for j in idx]
            return int(idx[int(np.argmin(losses))])
    return None


def _best_change(
    g: Group, shelf: Shelf, touched: np.ndarray, capacity: int, s: AssortmentSettings
) -> Change | None:
    """The best admissible add or same-subcategory swap for ``shelf``, or None."""
    best: Change | None = None
    members = shelf.members
    rev, low_rev = g.revenue, g.low * g.price
    weakest = float(rev[members].min()) if members.any() and s.free_slot_bar == "weakest_kept" else 0.0
    before = shelf.revenue(g)
    room = capacity - int(members.sum()) > 0
    for a in np.flatnonzero(~g.carried & ~members & ~touched):
        added = add(g, shelf, int(a), s)
        if room and low_rev[a] > weakest:
            gain = added.revenue(g) - before
            if gain > 1e-9 and (best is None or gain > best.gain):
                best = Change(int(a), None, gain)
        if room:  # a free slot is filled before anything on the shelf is replaced
            continue
        droppable = members & (g.sub == g.sub[a]) & ~g.must & ~g.protected & ~touched
        for j in np.flatnonzero(droppable & (rev < low_rev[a])):
            gain = drop(g, added, int(j), s).revenue(g) - before
            if gain > max(s.min_gain_share * float(rev[j]), 1e-9) and (best is None or gain > best.gain):
                best = Change(int(a), int(j), gain)
    return best


def choose(g: Group, *, capacity: int, budget: int, s: AssortmentSettings) -> list[Change]:
    """Return the group's changes in the order they were chosen: forced drops first, then adds and swaps
    by falling gain (at most ``budget`` of them)."""
    shelf = Shelf(g.carried.copy(), np.where(g.carried, g.units, 0.0))
    touched = np.zeros_like(g.carried)
    changes: list[Change] = []
    while int(shelf.members.sum()) > capacity:
        j = _forced_drop(g, shelf, s)
        if j is None:  # only must-carry SKUs left: they stay, the shelf is over-committed
            break
        after = drop(g, shelf, j, s)
        changes.append(Change(None, j, after.revenue(g) - shelf.revenue(g), forced=True))
        shelf, touched[j] = after, True
    for _ in range(budget):
        change = _best_change(g, shelf, touched, capacity, s)
        if change is None:
            break
        changes.append(change)
        if change.add is not None:
            shelf, touched[change.add] = add(g, shelf, change.add, s), True
        if change.drop is not None:
            shelf, touched[change.drop] = drop(g, shelf, change.drop, s), True
    return changes
