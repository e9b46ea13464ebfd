"""The table bundle every stage takes: frames only, no paths, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class LakeTables:
    """Every table a run needs, the facts lazily."""

    stores: pl.DataFrame
    products: pl.DataFrame
    postal_regions: pl.DataFrame
    assortment: pl.DataFrame
    shelf_capacity: pl.DataFrame
    events: pl.DataFrame
    store_sales: pl.LazyFrame
    online_orders: pl.LazyFrame

    def has_shelf_capacity(self) -> bool:
        return self.shelf_capacity.height > 0
