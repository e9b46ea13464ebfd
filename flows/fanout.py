"""Independent pieces inside a stage: each on a worker of the run's Dask cluster, locally in turn.

flows/runners.py fans whole stages out (train beside mine; the three backtests). This module cuts a
stage into its independent pieces when the run's tasks go to Dask (``--runner dask``), and calls the
same models functions as one piece when they do not (memory stays that of one piece):

- mining: event uplift apart from the weekly kinds (affinity, latent demand), then one two-level
  false-discovery-rate step over every hypothesis (models/mining_parts.py: the answer of
  mine_patterns);
- training: LightGBM through lightgbm.dask when the training set exceeds the memory budget
  (models/dask_training.py; not bit-identical to the local booster), else the local booster;
- the forecast one feature chunk per worker (models/dask_forecast.py: forecast_demand's rows);
- the forecast backtest one window per worker, the assortment backtest one cutoff per worker (each
  window and cutoff is independent: the concatenation is the whole backtest);
- validation: the touched partitions' batches in about one part per worker, each read from the lake,
  checked and documented there (flows/lake/validation_parts.py: validate_lake's summary, the Data
  Docs one site per part under lake.docs/parts/ behind one index page).

Inside a task that runs on a Dask worker, ``dask_client`` secedes the task's thread while it waits for
its pieces (``distributed.worker_client``): a worker of one thread would otherwise sit blocked, and
train and mine waiting side by side on a two-worker cluster would wait for ever.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any

import polars as pl

from flows.runners import on_dask

if TYPE_CHECKING:
    from collections.abc import Callable

    from distributed import Client

    from data_contracts.tables import LakeTables
    from data_contracts.validate import ValidationSummary
    from flows.lake.paths import LakePaths
    from models.demand import DemandModel, DemandSettings
    from models.evaluation.forecast_backtest import BacktestConfig
    from models.mining.settings import MiningSettings


@contextmanager
def dask_client() -> Iterator[Client | None]:
    """A client of the run's Dask cluster (None when the run's tasks do not go to Dask)."""
    try:
        from distributed import get_worker, worker_client

        get_worker()  # raises ValueError outside a Dask worker
    except (ImportError, ValueError):
        pass
    else:
        with worker_client() as client:  # this task's thread secedes while it waits
            yield client
        return
    if not on_dask():
        yield None
        return
    # the flow's own process (a task called in the flow, not submitted): a client of the runner's
    # cluster, at the address prefect_dask's own get_dask_client reads (which, called inside a task
    # run, looks for a worker's client and finds none here). The runner's ``client`` property, not
    # its ``_client``: that is None until the runner's first submission (validation comes first)
    from distributed import Client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    assert ctx is not None  # on_dask() saw it
    with Client(ctx.task_runner.client.scheduler.address) as client:  # type: ignore[attr-defined]
        yield client


def _gather(client: Client, fn: Callable[..., Any], calls: Sequence[dict[str, Any]]) -> list[Any]:
    """``fn(**kwargs)`` for each of ``calls``, each on a worker; results in order."""
    return client.gather([client.submit(fn, **kwargs, pure=False) for kwargs in calls])


def train_demand(tables: LakeTables, *, as_of: date, settings: DemandSettings) -> DemandModel:
    """The demand model: lightgbm.dask on the cluster when the training set exceeds the memory
    budget, else the local booster (models/dask_training.py)."""
    from models.dask_training import fit_demand

    with dask_client() as client:
        return fit_demand(tables, as_of=as_of, settings=settings, client=client)


def mine_patterns(tables: LakeTables, *, as_of: date, settings: MiningSettings) -> pl.DataFrame:
    """models.mining.patterns.mine_patterns; on Dask its parts side by side, one FDR step after."""
    from models.mining.patterns import mine_patterns as mine_all
    from models.mining_parts import PARTS, hypotheses, patterns_from

    with dask_client() as client:
        if client is None:
            return mine_all(tables, as_of=as_of, settings=settings)
        shared = client.scatter(tables, broadcast=True, hash=False)
        calls = [{"tables": shared, "part": p, "as_of": as_of, "settings": settings} for p in PARTS]
        parts = _gather(client, hypotheses, calls)
    return patterns_from(tables, parts, as_of=as_of, settings=settings)


def cross_validate(tables: LakeTables, *, config: BacktestConfig, settings: DemandSettings) -> pl.DataFrame:
    """models.evaluation.forecast_backtest.cross_validate; on Dask one window per worker."""
    from models.evaluation.forecast_backtest import cross_validate as all_windows

    with dask_client() as client:
        if client is None or config.n_windows < 2:
            return all_windows(tables, config=config, settings=settings)
        shared = client.scatter(tables, broadcast=True, hash=False)
        calls = [
            {"tables": shared, "config": config, "settings": settings, "windows": [k]}
            for k in range(config.n_windows)
        ]
        parts = _gather(client, all_windows, calls)
    return pl.concat(parts)  # windows oldest first, each sorted: the order of all_windows


def assortment_backtest(tables: LakeTables, *, cutoffs: Sequence[date], **kwargs: Any) -> pl.DataFrame:
    """models.evaluation.advice_backtest.assortment_backtest; on Dask one cutoff per worker."""
    from models.evaluation.advice_backtest import assortment_backtest as all_cutoffs

    with dask_client() as client:
        if client is None or len(set(cutoffs)) < 2:
            return all_cutoffs(tables, cutoffs=cutoffs, **kwargs)
        shared = client.scatter(tables, broadcast=True, hash=False)
        calls = [{"tables": shared, "cutoffs": [c], **kwargs} for c in sorted(set(cutoffs))]
        parts = _gather(client, all_cutoffs, calls)
    return pl.concat(parts)  # cutoffs in order, each sorted: the order of all_cutoffs


def forecast_demand(
    model: DemandModel, tables: LakeTables, pairs: pl.DataFrame, *, horizon: int, chunk_rows: int
) -> pl.DataFrame:
    """models.demand.forecast_demand; on Dask a feature chunk per worker (models/dask_forecast.py)."""
    from models.dask_forecast import forecast_demand_dask

    with dask_client() as client:
        return forecast_demand_dask(
            model, tables, pairs, horizon=horizon, client=client, chunk_rows=chunk_rows
        )


def validate_lake(lake: LakePaths, **kwargs: Any) -> ValidationSummary:
    """flows.lake.validation.validate_lake (its keyword arguments); on Dask in about one part per
    worker, each part's partitions read, checked and documented on its worker (the same summary;
    flows/lake/validation_parts.py)."""
    from flows.lake.validation import validate_lake as validate_here

    with dask_client() as client:
        if client is None:
            return validate_here(lake, **kwargs)
        from flows.lake.validation_parts import validate_in_parts

        n_workers = len(client.nthreads())
        return validate_in_parts(
            lake, run=lambda fn, calls: _gather(client, fn, calls), n_parts=n_workers, **kwargs
        )
