"""The table bundle every stage takes: frames only, no paths, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from data_contracts.schemas import MUST_CARRY


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
    # optional in the drop (must_carry.csv): empty when the retailer gave none
    must_carry: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=MUST_CARRY.schema))

    def has_shelf_capacity(self) -> bool:
        return self.shelf_capacity.height > 0
