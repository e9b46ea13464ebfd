"""What a flow run needs from where it runs: its secret, one writer per folder, its own work folder.

The HMAC key for customer ids comes from the worker's environment (``LOCALSHELF_HMAC_SECRET``) or, when
that is unset, from the Prefect Secret block ``localshelf-hmac-secret``. It is never a flow parameter:
the server stores parameters with each run and shows them in clear.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from prefect import get_run_logger
from prefect.concurrency.sync import concurrency
from pydantic import SecretStr

from flows.lake.outputs import OutPaths
from flows.settings import Settings

HMAC_SECRET_BLOCK = "localshelf-hmac-secret"
# How long a run waits for another run that writes the same lake or output folder.
WRITER_WAIT_S = 6 * 3600.0


def with_hmac_secret(settings: Settings, block: str = HMAC_SECRET_BLOCK) -> Settings:
    """Return ``settings`` with the HMAC key: the environment's if set, else the Secret block's, else
    none (a drop whose orders carry no customer ids needs no key; one that does fails its load)."""
    if settings.hmac_secret is not None:
        return settings
    from prefect.blocks.system import Secret

    try:
        value = cast(Secret, Secret.load(block)).get()  # a sync call: not the coroutine
    except ValueError:  # no such block
        return settings
    get_run_logger().info(f"HMAC key from the Prefect Secret block {block!r}")
    return settings.model_copy(update={"hmac_secret": SecretStr(str(value))})


def writer_limit_name(kind: str, folder: Path | str) -> str:
    """The concurrency-limit name of a folder, e.g. ``localshelf-lake:data:shelf:lake``, or of a URL,
    e.g. ``localshelf-lake:s3:bucket:lake`` (Prefect names may not hold ``/ % & < >``)."""
    from flows.lake.fs import is_url, local_path

    text = str(folder).rstrip("/")
    if is_url(text):
        protocol, _, rest = text.partition("://")
        name = f"{protocol.lower()}:{rest.strip('/')}"
    else:
        name = str(local_path(folder).resolve()).strip("/")
    return f"localshelf-{kind}:" + re.sub(r"[/%&<>]", ":", name)


def _ensure_limit(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:  # look first: creating one that exists makes the server log an error with a traceback
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:  # another run created it in between
            pass


@contextmanager
def one_writer(folders: dict[str, Path | str], *, timeout_s: float = WRITER_WAIT_S) -> Iterator[None]:
    """Hold, for the block, the Prefect global concurrency limit (one slot, created on first use) of
    every folder in ``folders`` (kind -> folder). All slots are taken in one request, so two runs that
    share only some folders cannot deadlock. Raises TimeoutError after ``timeout_s`` of waiting."""
    names = sorted({writer_limit_name(kind, folder) for kind, folder in folders.items()})
    for name in names:
        _ensure_limit(name)
    logger = get_run_logger()
    logger.info(f"waiting for the writer slot of {', '.join(names)}")
    started = time.perf_counter()
    with concurrency(names, occupy=1, timeout_seconds=timeout_s, strict=True):
        logger.info(f"writer slot held after {time.perf_counter() - started:.1f} s")
        yield


def run_work_folder(out: OutPaths) -> Path:
    """This run's own folder for intermediate files: OUT/_work/<flow run id>."""
    from prefect.runtime import flow_run

    return out.work / str(flow_run.get_id() or uuid.uuid4().hex)


@contextmanager
def heartbeat(what: str, *, every_s: float = 30.0) -> Iterator[None]:
    """Log ``<what>: still running (N s)`` every ``every_s`` seconds while the block runs, so a long
    model fit shows in the run's log that it is alive."""
    logger = get_run_logger()
    stop = threading.Event()
    started = time.perf_counter()

    def beat() -> None:
        while not stop.wait(every_s):
            logger.info(f"{what}: still running ({time.perf_counter() - started:.0f} s)")

    thread = threading.Thread(target=beat, name=f"heartbeat-{what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
