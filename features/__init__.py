"""Pure polars feature pipes: LazyFrame -> LazyFrame, no I/O, no Prefect."""
