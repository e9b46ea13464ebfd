"""Validation in parts on a Dask cluster (flows/lake/validation_parts.py through flows.fanout): the
summary of the local validate_lake, the Data Docs one site per part behind one index page."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

from data_contracts.schemas import ASSORTMENT
from data_contracts.validate import ValidationSummary
from flows import fanout
from flows.lake.paths import LakePaths
from flows.lake.validation import validate_lake
from flows.lake.validation_parts import PARTS_DIR, plan_parts, validate_in_parts
from tests.flows.lake.test_validation import (
    AS_OF,
    FACT_BREAKS,
    _break_month,
    _clean_tables,
    _shift_month,
    _write_lake,
)

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two workers of one thread each (threads of this process: no second import of GX)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _on_cluster(client: Any, lake: LakePaths, **kwargs: Any) -> ValidationSummary:
    """fanout.validate_lake run as a task on the cluster, the way the validate task's pieces go."""
    return client.submit(fanout.validate_lake, lake, as_of=AS_OF, **kwargs, pure=False).result(timeout=300)


def _runs(docs: Path) -> list[str]:
    """The batches a Data Docs site shows (validations/<suite>/<run name>/<run time>/<batch>.html)."""
    return sorted(p.parent.parent.name for p in (docs / "validations").rglob("*.html"))


def _check_docs(lake: LakePaths, summary: ValidationSummary, local_runs: list[str]) -> None:
    """The index links every part's site; together the parts show the local run's batches, once each."""
    assert summary.docs_index == str(lake.docs / "index.html")
    links = re.findall(r'href="([^"]+)"', Path(summary.docs_index).read_text())
    parts = sorted(p.name for p in (lake.docs / PARTS_DIR).iterdir())
    assert len(parts) == 2
    assert sorted(links) == [f"{PARTS_DIR}/{p}/index.html" for p in parts]
    assert all((lake.docs / link).is_file() for link in links)
    assert ("FAILED" in Path(summary.docs_index).read_text()) is not summary.success  # each part's verdict
    shown = [run for p in parts for run in _runs(lake.docs / PARTS_DIR / p)]
    assert sorted(shown) == local_runs  # no batch on two sites, none missing


class DaskTaskRunner:
    """Stands in for prefect-dask's runner (flows.runners.on_dask goes by the name): like it, its
    client is made on first use of ``client``, so ``_client`` is None before its first submission."""

    def __init__(self, client: Any) -> None:
        self._made, self._client = client, None

    @property
    def client(self) -> Any:
        self._client = self._made
        return self._client


def test_clean_lake_in_parts_from_the_flows_process_gives_the_local_summary(
    tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.context import FlowRunContext

    local_lake = _write_lake(tmp_path / "local", _clean_tables())
    want = validate_lake(local_lake, as_of=AS_OF)
    lake = _write_lake(tmp_path / "dask", _clean_tables())
    # the validate task is called in the flow's process, before anything was submitted to the runner
    flow_run = SimpleNamespace(task_runner=DaskTaskRunner(client))
    monkeypatch.setattr(FlowRunContext, "get", classmethod(lambda cls: flow_run))
    got = fanout.validate_lake(lake, as_of=AS_OF)
    assert got.success and want.success
    assert got.failure_lines() == want.failure_lines() == []
    assert got.tables == want.tables
    _check_docs(lake, got, _runs(local_lake.docs))


def _broken_tables() -> dict[str, pl.DataFrame]:
    """The clean lake, plus months with an unknown store id and bad dates, and an unknown store in
    the assortment."""
    tables = _clean_tables()
    picked = [b for b in FACT_BREAKS if b[2] & {"store_id exists in stores.store_id", "date >= 2000-01-01"}]
    picked += [b for b in FACT_BREAKS if "order_date <= 2024-06-30" in b[2]]
    for i, (table, change, _) in enumerate(picked):
        year, month = _break_month(i)
        tables[f"{table}/{year}/{month}"] = change(_shift_month(tables[f"{table}/2024/6"], year, month))
    tables["store_sales/2022/5"] = _shift_month(tables["store_sales/2024/6"], 2022, 5)  # a clean month
    tables["assortment"] = pl.DataFrame(
        {"store_id": ["001", "999"], "sku": ["A", "A"]}, schema=ASSORTMENT.schema
    )
    return tables


BATCHINGS: dict[str, dict[str, Any]] = {
    "per-partition": {"per_partition": True},
    "grouped": {"max_batch_rows": 4},  # two months a batch
}


@pytest.fixture(scope="module")
def broken_local(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ValidationSummary, list[str]]]:
    """The broken lake validated locally, batched either way: the summary and the batches its site shows."""
    out = {}
    for name, batching in BATCHINGS.items():
        lake = _write_lake(tmp_path_factory.mktemp(name), _broken_tables())
        out[name] = (validate_lake(lake, as_of=AS_OF, **batching), _runs(lake.docs))
    return out


@pytest.mark.parametrize("batching", list(BATCHINGS))
def test_planted_breaks_in_parts_give_the_local_failure_lines(
    tmp_path: Path, client: Any, broken_local: dict[str, tuple[ValidationSummary, list[str]]], batching: str
) -> None:
    want, local_runs = broken_local[batching]
    lake = _write_lake(tmp_path, _broken_tables())
    got = _on_cluster(client, lake, **BATCHINGS[batching])
    assert not want.success and not got.success
    lines = want.failure_lines()
    assert any("store_id exists in stores.store_id (observed 999)" in line for line in lines)
    assert any("date >= 2000-01-01 (observed 1999-" in line for line in lines)
    assert any(line.startswith("assortment [all]: store_id exists") for line in lines)
    assert got.failure_lines() == lines
    assert got.tables == want.tables
    _check_docs(lake, got, local_runs)


def test_batches_are_cut_as_locally_and_dealt_out_by_rows(tmp_path: Path) -> None:
    tables = _clean_tables()
    for month in range(1, 6):  # five more two-row months of store sales in 2023
        tables[f"store_sales/2023/{month}"] = _shift_month(tables["store_sales/2024/6"], 2023, month)
    lake = _write_lake(tmp_path, tables)
    parts = plan_parts(lake, None, n_parts=2, max_batch_rows=4)
    units = sorted(u for p in parts for u in p.units)
    assert units == [
        ("online_orders", ((2024, 6),)),
        ("store_sales", ((2023, 1), (2023, 2))),
        ("store_sales", ((2023, 3), (2023, 4))),
        ("store_sales", ((2023, 5), (2024, 5))),
        ("store_sales", ((2024, 6),)),
    ]
    assert [p.references for p in parts] == [True, False]
    assert abs(parts[0].rows - parts[1].rows) <= 4  # 10 reference rows and 16 fact rows, about even
    for part in parts:  # each part in the local walk's order
        assert part.units == sorted(part.units, key=lambda u: (u[0] != "store_sales", u[1]))
    only_june = plan_parts(lake, {"store_sales": [(2024, 6)]}, n_parts=4)
    assert [(p.references, p.units) for p in only_june] == [
        (True, []),
        (False, [("store_sales", ((2024, 6),))]),
    ]


def test_in_parts_without_dask_too(
    tmp_path: Path, broken_local: dict[str, tuple[ValidationSummary, list[str]]]
) -> None:
    """The parts need no cluster: any ``run`` that calls each part (here: in turn, with the arguments
    and results pickled, as on the way to and from a worker process) gives the summary."""

    def in_turn(fn: Callable[..., Any], calls: Sequence[dict[str, Any]]) -> list[Any]:
        return [pickle.loads(pickle.dumps(fn(**pickle.loads(pickle.dumps(c))))) for c in calls]

    want, _ = broken_local["per-partition"]
    lake = _write_lake(tmp_path, _broken_tables())
    stale = lake.docs / "validations" / "store_sales" / "old.html"  # a local run's page, say
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    got = validate_in_parts(lake, run=in_turn, n_parts=3, as_of=AS_OF, per_partition=True)
    assert got.failure_lines() == want.failure_lines()
    assert got.tables == want.tables
    assert len(list((lake.docs / PARTS_DIR).iterdir())) == 3
    assert not (lake.docs / "validations").exists()  # the Data Docs show this run only
    # again, with the reference tables alone (one part): the other parts' sites of the run before are gone
    validate_in_parts(lake, run=in_turn, n_parts=2, as_of=AS_OF, partitions={})
    assert [p.name for p in (lake.docs / PARTS_DIR).iterdir()] == ["0"]
