"""Where a flow's tasks run: in the flow's own process (``local``) or on a Dask cluster (``dask``).

``--runner dask`` gives the flow prefect-dask's DaskTaskRunner: on the cluster at ``--dask-address``
(``tcp://scheduler:8786``), or on a LocalCluster of worker processes started for the run. The flow
reads the same whether or not Dask is there: it hands its independent stages to `fan_out`, which runs
them one after the other on the local runner (memory stays that of the biggest stage) and submits
them together on Dask (each on a worker, the flow waiting for all). Same inputs, same seed, same
answers: the tasks are the same functions either way (tests/flows/test_runners.py). Inside a stage,
flows/fanout.py cuts the independent pieces (mining parts, backtest windows) the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports Runner: Prefect loads only when a flow runs
    from prefect.task_runners import TaskRunner


class Runner(StrEnum):
    local = "local"
    dask = "dask"


@dataclass(frozen=True)
class RunnerChoice:
    """The runner a run was asked for: ``address`` of an existing Dask scheduler, else ``workers``
    local worker processes of ``threads`` threads and ``memory_gb`` each (Dask pauses a worker near it)."""

    runner: Runner = Runner.local
    address: str | None = None
    workers: int = 2
    threads: int = 1
    memory_gb: float | None = None

    def task_runner(self) -> TaskRunner | None:
        """Return the Prefect task runner for this choice (None: the flow's own, for ``local``)."""
        if self.runner is Runner.local:
            return None
        from prefect_dask import DaskTaskRunner  # only a Dask run needs Dask installed

        if self.address:
            return DaskTaskRunner(address=self.address)
        kwargs: dict[str, Any] = {"n_workers": self.workers, "threads_per_worker": self.threads}
        if self.memory_gb is not None:
            kwargs["memory_limit"] = f"{self.memory_gb}GiB"
        return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)


def with_runner(flow: Any, choice: RunnerChoice) -> Any:
    """Return ``flow`` set to run its tasks on ``choice``'s task runner (``flow`` itself for local)."""
    runner = choice.task_runner()
    if runner is not None and not choice.address:
        share_temporary_server()
    return flow if runner is None else flow.with_options(task_runner=runner)


def share_temporary_server() -> None:
    """Without a Prefect server (PREFECT_API_URL unset) a flow starts a temporary one, and so would each
    Dask worker process of a local cluster, on its own (on a busy machine that timed out: "Timed out
    while attempting to connect to ephemeral Prefect API server"). Start the flow's temporary server now
    and put its address in the environment the workers inherit. Workers of a cluster at --dask-address
    need PREFECT_API_URL set on their machines."""
    import os

    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value() or os.environ.get("PREFECT_API_URL"):
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # one per process: the flow's own client takes this one too
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url


def on_dask() -> bool:
    """Whether the running flow's tasks go to a Dask cluster."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx is not None and type(ctx.task_runner).__name__ == "DaskTaskRunner"


Stage = tuple[str, Any, Sequence[Any]]  # (stage name, Prefect task, positional arguments)


def fan_out(stage: Callable[..., Any], *stages: Stage) -> list[Any]:
    """Run independent ``stages`` and return their results in order. ``stage(name, fn, *args)`` times
    one (flows.pipeline.StageTimer): locally each task is called in turn; on Dask all are submitted
    first, then each is timed until its result is back (so its time includes waiting for a worker)."""
    if not on_dask():
        return [stage(name, task, *args) for name, task, args in stages]
    futures = [task.submit(*args) for _, task, args in stages]
    return [stage(name, future.result) for (name, _, _), future in zip(stages, futures, strict=True)]
