"""localshelf on a real Prefect server, the way the README's Scheduling section sets it up.

Starts `prefect server start` on a free loopback port with its own PREFECT_HOME, creates the process work
pool, runs `prefect deploy --all` with the paths in the environment, checks that the cron schedules create
runs, starts a worker with the HMAC key in its environment, runs `localshelf-run/weekly` on the small demo
and waits for Completed. Everything it starts is stopped at the end.

The in-process `prefect_test_harness` cannot catch what this catches: it runs neither the scheduler service
(SQLAlchemy 2.1 breaks it) nor the CLI's requests (fastapi 0.151+ rejects them with 422).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCHEDULED = ("localshelf-ingest/nightly", "localshelf-run/weekly")
ON_DEMAND = ("localshelf-backtest/on-demand", "localshelf-prestock/on-demand")
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# The run itself is checked for results by test_pipeline_e2e; here a small model keeps the worker's run
# short on a shared CI machine while exercising every task.
FAST_MODEL_ENV = {
    "LOCALSHELF_NUM_THREADS": "1",
    "LOCALSHELF_MODEL__NUM_BOOST_ROUND": "30",
    "LOCALSHELF_MODEL__MAX_TRAIN_ROWS": "200000",
}
T = TypeVar("T")


@dataclass(frozen=True)
class Server:
    api: str
    env: dict[str, str]
    logs: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(what: str, probe: Callable[[], T | None], *, timeout_s: float, every_s: float = 1.0) -> T:
    """Return probe()'s first truthy value; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def _tail(path: Path, n: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Own process group: the server and worker start children (uvicorn, flow-run processes).
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "prefect", *args],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started by _start and its children: SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children left behind by a process that did exit
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _cli(server: Server, *args: str, env: dict[str, str] | None = None, timeout_s: float = 120) -> str:
    """Run a prefect CLI command against the server; returns its output, fails on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        cwd=REPO,
        env=env or server.env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"prefect {' '.join(args)} exited {done.returncode}:\n{output[-4000:]}"
    return output


def _post(server: Server, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{server.api}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LOCALSHELF_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",
        GX_ANALYTICS_ENABLED="false",
    )
    logs = home / "server.log"
    proc = _start(["server", "start", "--host", "127.0.0.1", "--port", str(port)], env, logs)

    def healthy() -> bool:
        assert proc.poll() is None, f"prefect server exited {proc.returncode}:\n{_tail(logs)}"
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait_for("the Prefect server to answer /health", healthy, timeout_s=120)
        yield Server(api=api, env=env, logs=logs)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    from flows.demo.generate import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo"), size="small", seed=7)


@pytest.fixture(scope="module")
def deployed(server: Server, demo) -> dict[str, str]:
    """Pool + `prefect deploy --all` as in the README; returns deployment ids by 'flow/deployment' name."""
    _cli(server, "work-pool", "create", "localshelf", "--type", "process")
    root = demo.root
    env = {
        **server.env,
        "LOCALSHELF_DROP": str(demo.drop),
        "LOCALSHELF_OUT": str(root / "out"),
        "LOCALSHELF_LAKE": str(root / "lake"),
    }
    _cli(server, "deploy", "--all", env=env, timeout_s=180)
    flows = {f["id"]: f["name"] for f in _post(server, "/flows/filter", {})}
    return {f"{flows[d['flow_id']]}/{d['name']}": d["id"] for d in _post(server, "/deployments/filter", {})}


def test_every_deployment_is_registered_with_paths_from_the_environment(
    server: Server, deployed: dict[str, str], demo
) -> None:
    assert set(deployed) == {*SCHEDULED, *ON_DEMAND}
    listing = _cli(server, "deployment", "ls")  # fastapi 0.151+ answers the CLI's lists with 422
    assert "localshelf-run" in listing
    weekly = httpx.get(f"{server.api}/deployments/{deployed['localshelf-run/weekly']}", timeout=30).json()
    assert weekly["parameters"]["drop"] == str(demo.drop)
    assert "hmac" not in str(weekly["parameter_openapi_schema"]).lower()


def test_the_schedules_create_runs(server: Server, deployed: dict[str, str]) -> None:
    def scheduled_by_deployment() -> dict[str, int] | None:
        runs = _post(
            server,
            "/flow_runs/filter",
            {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}, "limit": 200},
        )
        counts = {name: 0 for name in deployed}
        by_id = {v: k for k, v in deployed.items()}
        for run in runs:
            if run["auto_scheduled"] and run["deployment_id"] in by_id:
                counts[by_id[run["deployment_id"]]] += 1
        return counts if all(counts[name] for name in SCHEDULED) else None

    # SQLAlchemy 2.1 makes the scheduler service fail every loop: no run would ever appear.
    counts = _wait_for("the scheduler to create cron runs", scheduled_by_deployment, timeout_s=90)
    assert all(counts[name] == 0 for name in ON_DEMAND)


def test_a_worker_runs_the_weekly_job_to_completion(
    server: Server, deployed: dict[str, str], demo, tmp_path: Path
) -> None:
    output = _cli(server, "deployment", "run", "localshelf-run/weekly")
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert run_id, output
    worker_env = {
        **server.env,
        "LOCALSHELF_HMAC_SECRET": demo.secret.read_text().strip(),
        **FAST_MODEL_ENV,
    }
    worker_log = tmp_path / "worker.log"
    worker = _start(["worker", "start", "--pool", "localshelf", "--limit", "1"], worker_env, worker_log)
    try:

        def final_state() -> str | None:
            assert worker.poll() is None, f"worker exited {worker.returncode}:\n{_tail(worker_log)}"
            run = httpx.get(f"{server.api}/flow_runs/{run_id[1]}", timeout=30).json()
            state = run["state"]["type"]
            return state if state in FINAL_STATES else None

        state = _wait_for("the weekly run to finish", final_state, timeout_s=480, every_s=2)
    finally:
        _stop(worker)
    assert state == "COMPLETED", f"run ended {state}; worker log:\n{_tail(worker_log, 120)}"
    assert (demo.root / "out" / "report.html").stat().st_size > 0
    artifacts = _post(server, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id[1]]}}})
    kinds = {a["key"]: a["type"] for a in artifacts}
    # Prefect stores link artifacts as markdown
    assert kinds.get("localshelf-top-recommendations") == "table", kinds
    assert {"localshelf-load", "localshelf-data-docs", "localshelf-report"} <= set(kinds), kinds
    report_link = next(a for a in artifacts if a["key"] == "localshelf-report")
    assert (demo.root / "out" / "report.html").as_uri() in report_link["data"]
    # the CLI's list commands, which fastapi 0.151+ broke
    _cli(server, "flow-run", "ls", "--limit", "50")
    assert "done: report at" in _cli(server, "flow-run", "logs", run_id[1])
    _cli(server, "artifact", "ls")
    _cli(server, "work-pool", "ls")
