"""The one function that makes feature names (a test pins them, so models saved today load tomorrow)."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^a-z0-9_]+")


def feature_name(
    kind: str, *, lag: int | None = None, window: int | None = None, key: str | None = None
) -> str:
    """Return the column name of a feature.

    ``kind`` says what is measured (``units``, ``units_mean``, ``sku_region_rate``, ``dow``, ``event``...);
    ``lag`` (days back the feature ends) and ``window`` (days it spans) follow mlforecast's
    ``rolling_mean_lag7_window_size10`` spelling, shortened; ``key`` names a data-driven variant such as
    an event type, lower-cased and reduced to ``[a-z0-9_]`` so any retailer's label makes a safe column.

    >>> feature_name("units_mean", lag=28, window=7)
    'units_mean_lag28_window7'
    >>> feature_name("event", key="Winter Storm")
    'event_winter_storm'
    """
    parts = [kind]
    if key is not None:
        parts.append(_UNSAFE.sub("_", key.strip().lower()).strip("_") or "unnamed")
    if lag is not None:
        parts.append(f"lag{lag}")
    if window is not None:
        parts.append(f"window{window}")
    return "_".join(parts)
