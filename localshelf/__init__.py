"""localshelf: localized store assortments and event pre-stock plans."""

from __future__ import annotations

__version__ = "0.1.0"
