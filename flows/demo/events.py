"""Events of the demo world: when storms, heat waves, holidays and no-effect drills strike which regions,
and what each does to demand (the planted event uplift).

History events are scheduled inside their season, at least `BASELINE_DAYS` after the first sales date
(so a miner has a baseline) and never within `GAP_DAYS` of another event in the same region (so each
effect is measured on its own). Every effective (type, region) gets at least `MIN_EVENTS` events.
One hurricane and the next holidays lie after the last sales date: the upcoming events pre-stock plans
are made for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from data_contracts.schemas import EVENTS
from flows.demo.catalog import EVENT_TYPES, HOLIDAY_LIFTS, HURRICANE_NAMES, EventTypeSpec, RegionSpec

MIN_EVENTS = 4
BASELINE_DAYS = 56
GAP_DAYS = 7
UPCOMING_DAYS = 28  # events are listed up to this many days after the last sales date
HOLIDAY = EventTypeSpec("holiday", "ALL", ((1, 1), (12, 31)), (0, 0), (3, 3), HOLIDAY_LIFTS)


@dataclass(frozen=True)
class EventInstance:
    """One event: its type, the regions it strikes and its window as day indexes from the first date."""

    spec: EventTypeSpec
    name: str
    regions: tuple[int, ...]  # () = chain-wide (region ALL)
    t0: int
    days: int


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """Return the n-th `weekday` (0 = Monday) of a month; n = -1 for the last one."""
    if n < 0:
        last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def holidays(first: date, last: date) -> list[tuple[str, date]]:
    """Return (name, date) of the chain's selling holidays between first and last, by calendar rule."""
    out: list[tuple[str, date]] = []
    for y in range(first.year, last.year + 1):
        for name, day in (
            ("Super Bowl Sunday", _nth_weekday(y, 2, 6, 2)),
            ("Memorial Day", _nth_weekday(y, 5, 0, -1)),
            ("Independence Day", date(y, 7, 4)),
            ("Labor Day", _nth_weekday(y, 9, 0, 1)),
            ("Thanksgiving", _nth_weekday(y, 11, 3, 4)),
            ("Christmas", date(y, 12, 25)),
        ):
            if first <= day <= last:
                out.append((f"{name} {y}", day))
    return out


def _season_windows(spec: EventTypeSpec, first: date, last: date) -> list[tuple[date, date]]:
    """Return the (from, to) stretches of `spec`'s season that lie between first and last."""
    (m1, d1), (m2, d2) = spec.season
    out = []
    for y in range(first.year - 1, last.year + 1):
        a = max(date(y, m1, d1), first)
        b = min(date(y + int((m2, d2) < (m1, d1)), m2, d2), last)
        if (b - a).days >= spec.days[1]:
            out.append((a, b))
    return out


def _free(busy: list[tuple[int, int]], t0: int, t1: int) -> bool:
    return all(t1 + GAP_DAYS < a or b + GAP_DAYS < t0 for a, b in busy)


class _Scheduler:
    """Places events in free slots of each region's calendar."""

    def __init__(self, rng: np.random.Generator, n_regions: int, origin: date) -> None:
        self.rng, self.origin = rng, origin
        self.busy: list[list[tuple[int, int]]] = [[] for _ in range(n_regions)]
        self.placed: list[EventInstance] = []
        self.names = iter(HURRICANE_NAMES * 4)

    def add(self, spec: EventTypeSpec, name: str, regions: tuple[int, ...], t0: int, days: int) -> None:
        for r in regions or range(len(self.busy)):
            self.busy[r].append((t0, t0 + days - 1))
        self.placed.append(EventInstance(spec, name, regions, t0, days))

    def place(self, spec: EventTypeSpec, r: int, window: tuple[date, date], eligible: list[int]) -> None:
        """Try to put one `spec` event striking region r (and maybe a second region) in `window`."""
        for _ in range(60):
            days = int(self.rng.integers(spec.days[0], spec.days[1] + 1))
            span = (window[1] - window[0]).days - (days - 1)
            t0 = (window[0] - self.origin).days + int(self.rng.integers(0, max(span, 0) + 1))
            if spec.month_start:  # on to the next 1st of a month
                day = self.origin + timedelta(days=t0)
                first = day if day.day == 1 else (day.replace(day=28) + timedelta(days=4)).replace(day=1)
                t0 += (first - day).days
                if first + timedelta(days=days - 1) > window[1]:
                    continue
            if span < 0 or not _free(self.busy[r], t0, t0 + days - 1):
                continue
            others = [o for o in eligible if o != r and _free(self.busy[o], t0, t0 + days - 1)]
            regions: tuple[int, ...] = (r,)
            if others and self.rng.random() < spec.multi_region_share:
                regions = tuple(sorted((r, int(self.rng.choice(others)))))
            self.add(spec, self._name(spec, t0), regions, t0, days)
            return

    def _name(self, spec: EventTypeSpec, t0: int) -> str:
        if spec.name in ("hurricane", "winter_storm"):
            return f"{spec.label} {next(self.names)}"
        return f"{spec.label} {(self.origin + timedelta(days=t0)).strftime('%b %Y')}"

    def count(self, spec: EventTypeSpec, r: int) -> int:
        return sum(1 for e in self.placed if e.spec.name == spec.name and r in e.regions)


def _eligible(rng: np.random.Generator, spec: EventTypeSpec, regions: tuple[RegionSpec, ...]) -> list[int]:
    """Return the indexes of the regions `spec` strikes."""
    if spec.where == "some":
        n = max(2, len(regions) // 2)
        return sorted(int(r) for r in rng.choice(len(regions), size=n, replace=False))
    return [r for r, reg in enumerate(regions) if getattr(reg, spec.where)]


def schedule(
    rng: np.random.Generator, regions: tuple[RegionSpec, ...], start: date, as_of: date
) -> list[EventInstance]:
    """Return every event of the world, history and upcoming, sorted by start."""
    sched = _Scheduler(rng, len(regions), start)
    for name, day in holidays(start, as_of + timedelta(days=UPCOMING_DAYS)):
        sched.add(HOLIDAY, name, (), (day - start).days - 2, 3)  # the run-up to the day and the day
    first, last = start + timedelta(days=BASELINE_DAYS), as_of - timedelta(days=7)
    plans = [
        (spec, _eligible(rng, spec, regions), _season_windows(spec, first, last)) for spec in EVENT_TYPES
    ]
    for i in range(200):  # first the minimum for every struck region, types taking turns for the slots
        for spec, eligible, windows in plans:
            for r in eligible:
                if sched.count(spec, r) < MIN_EVENTS:
                    sched.place(spec, r, windows[(i + r) % len(windows)], eligible)
    for spec, eligible, windows in plans:  # then a few more, at random, season by season
        for r in eligible:
            for window in windows:
                for _ in range(int(rng.integers(spec.per_season[0], spec.per_season[1] + 1))):
                    sched.place(spec, r, window, eligible)
    coastal = [r for r, reg in enumerate(regions) if reg.coastal]
    hurricane = next(s for s in EVENT_TYPES if s.name == "hurricane")
    if coastal:  # the storm the pre-stock plan is for: two weeks after the last sales date
        t0 = (as_of - start).days + 14
        sched.add(hurricane, f"{hurricane.label} {next(sched.names)}", (coastal[0],), t0, 4)
    return sorted(sched.placed, key=lambda e: (e.t0, e.spec.name))


def events_frame(
    instances: list[EventInstance], regions: tuple[RegionSpec, ...], start: date
) -> pl.DataFrame:
    """Return events.csv: one row per (event, region), `ALL` for chain-wide events; ids keep zeros."""
    rows = []
    for i, e in enumerate(instances):
        first = start + timedelta(days=e.t0)
        for r in e.regions or (None,):
            rows.append(
                {
                    "event_id": f"{i + 1:05d}",
                    "event_type": e.spec.name,
                    "name": e.name,
                    "region": "ALL" if r is None else regions[r].name,
                    "start_date": first,
                    "end_date": first + timedelta(days=e.days - 1),
                }
            )
    return pl.DataFrame(rows, schema=EVENTS.schema)


def window_profile(days: int, lift: float) -> np.ndarray:
    """Return the multiplier on each day of an event window: it ramps up from the warning to a peak the
    day before the end (landfall, the holiday), eases on the last day, and averages exactly `lift`."""
    w = np.ones(days)
    if days > 2:
        w[: days - 1] = np.linspace(0.5, 1.0, days - 1)
    if days > 1:
        w[-1] = 0.7
    return 1 + (lift - 1) * w / w.mean()


def apply_events(
    rng: np.random.Generator,
    instances: list[EventInstance],
    roles: dict[str, int],
    shape: tuple[int, int, int],
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Return event multipliers (R, S, D) float32 and the planted event_uplift truth (indexes, not ids)."""
    n_regions, _, n_days = shape
    mult = np.ones(shape, dtype=np.float32)
    lifts: dict[tuple[str, int, int], float] = {}
    seen: dict[tuple[str, int], list[int]] = {}
    for e in instances:
        if e.t0 < 0 or e.t0 + e.days > n_days:
            continue  # upcoming (or cut by the first date): no sales to show it
        for r in e.regions or range(n_regions):
            seen.setdefault((e.spec.name, r), []).append(e.days)
            for role, lift in e.spec.lifts:
                key = (e.spec.name, r, roles[role])
                if key not in lifts:  # each (type, region, SKU) gets its own lift near the catalogue's
                    lifts[key] = round(float(lift * np.exp(rng.normal(0, 0.05))), 2)
                mult[r, key[2], e.t0 : e.t0 + e.days] *= window_profile(e.days, lifts[key]).astype(np.float32)
    truth = [
        {
            "event_type": t,
            "region": r,
            "sku": k,
            "lift": lift,
            "peak_offset_days": int(np.floor(np.median(seen[(t, r)]))) - 2,
            "events": len(seen[(t, r)]),
        }
        for (t, r, k), lift in lifts.items()
    ]
    return mult, truth
