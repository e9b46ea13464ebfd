"""localshelf on a real Prefect server, the way the README's Scheduling section sets it up.

Starts `prefect server start` on a free loopback port with its own PREFECT_HOME, creates the process work
pool, runs `prefect deploy --all` with the paths in the environment, checks that the cron schedules create
runs, starts a worker with the HMAC key in its environment, runs `localshelf-run/weekly` on the small demo
and then `localshelf-prestock/on-demand` from its outputs, each to Completed. Everything it starts is
stopped at the end.

The in-process `prefect_test_harness` cannot catch what this catches: it runs neither the scheduler service
(SQLAlchemy 2.1 breaks it) nor the CLI's requests (fastapi 0.151+ rejects them with 422).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCHEDULED = ("localshelf-ingest/nightly", "localshelf-run/weekly")
ON_DEMAND = ("localshelf-backtest/on-demand", "localshelf-prestock/on-demand")
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# What the run computes is checked by test_pipeline_e2e; here a one-week horizon (one direct model) and a
# small model keep the worker's run short on a shared CI machine while every task still runs.
FAST_MODEL_ENV = {
    "LOCALSHELF_NUM_THREADS": "1",
    "LOCALSHELF_HORIZON": "7",
    "LOCALSHELF_MODEL__NUM_BOOST_ROUND": "20",
    "LOCALSHELF_MODEL__MAX_TRAIN_ROWS": "100000",
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


@pytest.fixture(scope="module")
def worker(server: Server, deployed: dict[str, str], demo, tmp_path_factory: pytest.TempPathFactory):
    """A process worker on the pool, with the HMAC key in its environment (never a parameter)."""
    env = {**server.env, "LOCALSHELF_HMAC_SECRET": demo.secret.read_text().strip(), **FAST_MODEL_ENV}
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = _start(["worker", "start", "--pool", "localshelf", "--limit", "1"], env, log)
    try:
        yield proc, log
    finally:
        _stop(proc)


def _run_deployment(server: Server, worker, name: str, *params: str, timeout_s: float) -> str:
    """`prefect deployment run NAME [-p k=v ...]`, then wait for the worker to finish it; returns the
    flow run's id once Completed."""
    output = _cli(server, "deployment", "run", name, *params)
    found = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert found, output
    proc, log = worker

    def final_state() -> str | None:
        assert proc.poll() is None, f"worker exited {proc.returncode}:\n{_tail(log)}"
        state = httpx.get(f"{server.api}/flow_runs/{found[1]}", timeout=30).json()["state"]["type"]
        return state if state in FINAL_STATES else None

    state = _wait_for(f"{name} to finish", final_state, timeout_s=timeout_s, every_s=2)
    assert state == "COMPLETED", f"{name} ended {state}; worker log:\n{_tail(log, 120)}"
    return found[1]


def _artifacts(server: Server, run_id: str) -> dict[str, dict[str, Any]]:
    found = _post(server, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    return {a["key"]: a for a in found}


def test_a_worker_runs_the_weekly_job_to_completion(server: Server, worker, demo) -> None:
    run_id = _run_deployment(server, worker, "localshelf-run/weekly", timeout_s=900)
    report = demo.root / "out" / "report.html"
    assert report.stat().st_size > 0
    artifacts = _artifacts(server, run_id)
    assert artifacts["localshelf-top-recommendations"]["type"] == "table"
    assert "store_sales" in artifacts["localshelf-load"]["data"]
    assert "Data Docs" in artifacts["localshelf-data-docs"]["data"]
    assert report.as_uri() in artifacts["localshelf-report"]["data"]  # links are stored as markdown
    # the CLI's list commands, which fastapi 0.151+ broke
    _cli(server, "flow-run", "ls", "--limit", "50")
    assert "done: report at" in _cli(server, "flow-run", "logs", run_id)
    _cli(server, "artifact", "ls")
    _cli(server, "work-pool", "ls")


def test_a_worker_plans_prestock_for_an_upcoming_event(server: Server, worker, demo) -> None:
    as_of = date.fromisoformat(json.loads((demo.root / "out" / "run.json").read_text())["as_of"])
    start, end = as_of + timedelta(days=60), as_of + timedelta(days=62)
    run_id = _run_deployment(
        server,
        worker,
        "localshelf-prestock/on-demand",
        *("-p", "event_type=hurricane", "-p", "region=GULF_COAST"),
        *("-p", f"start={start.isoformat()}", "-p", f"end={end.isoformat()}"),
        timeout_s=240,
    )
    plan = demo.root / "out" / f"prestock-hurricane-GULF_COAST-{start.isoformat()}" / "prestock.parquet"
    assert plan.exists(), sorted(p.name for p in (demo.root / "out").iterdir())
    assert "localshelf-prestock" in _artifacts(server, run_id)
