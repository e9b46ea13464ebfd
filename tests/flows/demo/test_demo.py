"""The demo generator: the drop follows the input contract, the planted truth is really in the raw data."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.privacy import customer_key
from data_contracts.schemas import CONTRACTS, LAKE_ONLINE_ORDERS, LAKE_STORE_SALES
from data_contracts.tables import LakeTables
from flows.demo.events import holidays, window_profile
from flows.demo.generate import DemoPaths, demo_lake_tables, generate_demo
from flows.demo.world import build_world

SEED = 42


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoPaths, float]:
    """The small demo written once for the module, with the seconds it took."""
    started = time.perf_counter()
    paths = generate_demo(tmp_path_factory.mktemp("demo"), size="small", seed=SEED)
    return paths, time.perf_counter() - started


@pytest.fixture(scope="module")
def demo(generated: tuple[DemoPaths, float]) -> DemoPaths:
    return generated[0]


@pytest.fixture(scope="module")
def truth(demo: DemoPaths) -> dict[str, Any]:
    return json.loads(demo.truth.read_text())


@pytest.fixture(scope="module")
def lake() -> LakeTables:
    return demo_lake_tables(size="small", seed=SEED, secret="demo")


@pytest.fixture(scope="module")
def sales(lake: LakeTables) -> pl.DataFrame:
    return lake.store_sales.collect().join(lake.stores.select("store_id", "region"), on="store_id")


def _raw_bytes(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


def _read_fact(path: Path) -> pl.DataFrame:
    """Read a fact file as strings, header lower-cased and stripped, as the contract reads it."""
    if path.suffix == ".parquet":
        df = pl.read_parquet(path)
        return df.cast(dict.fromkeys(df.columns, pl.String))
    df = pl.read_csv(_raw_bytes(path).removeprefix(b"\xef\xbb\xbf"), infer_schema=False)
    return df.rename(lambda c: c.strip().lower())


def _fact_paths(demo: DemoPaths, table: str) -> list[Path]:
    return sorted(p for p in (demo.drop / table).iterdir() if p.is_file())


def test_small_generation_is_fast(generated: tuple[DemoPaths, float]) -> None:
    assert generated[1] < 15.0


def test_same_seed_same_bytes_other_seed_other_world(demo: DemoPaths, tmp_path: Path) -> None:
    again = generate_demo(tmp_path, size="small", seed=SEED)
    files = sorted(p.relative_to(demo.drop) for p in demo.drop.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.drop) for p in again.drop.rglob("*") if p.is_file())
    for rel in files:
        digest = hashlib.sha256((demo.drop / rel).read_bytes()).hexdigest()
        assert digest == hashlib.sha256((again.drop / rel).read_bytes()).hexdigest(), rel
    assert demo.truth.read_text() == again.truth.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", again.secret.read_text())
    other = build_world("small", SEED + 1)
    assert other.products["sku"].to_list() != build_world("small", SEED).products["sku"].to_list()


@pytest.mark.parametrize(
    "name", ["stores", "products", "postal_regions", "assortment", "shelf_capacity", "events"]
)
def test_reference_files_have_the_contract_columns(demo: DemoPaths, name: str) -> None:
    df = pl.read_csv(demo.drop / f"{name}.csv", infer_schema=False)
    assert set(CONTRACTS[name].required) <= set(df.columns)
    assert df.height > 0
    assert df.select(CONTRACTS[name].key).is_unique().all()


@pytest.mark.parametrize("table", ["store_sales", "online_orders"])
def test_fact_files_mix_formats_and_keep_the_contract(demo: DemoPaths, table: str) -> None:
    paths = _fact_paths(demo, table)
    assert {p.name.split(".", 1)[1] for p in paths} == {"csv", "csv.gz", "parquet"}
    for path in paths:
        assert set(CONTRACTS[table].required) <= set(_read_fact(path).columns), path.name


def test_sales_files_carry_the_quirks_of_real_exports(demo: DemoPaths) -> None:
    headers = [
        _raw_bytes(p).split(b"\n", 1)[0] for p in _fact_paths(demo, "store_sales") if p.suffix != ".parquet"
    ]
    assert any(h.startswith(b"\xef\xbb\xbf") for h in headers)
    assert any(h != h.lower() for h in headers)
    assert any(b"register_id" in h for h in headers)


def test_identifiers_keep_leading_zeros(demo: DemoPaths) -> None:
    stores = pl.read_csv(demo.drop / "stores.csv", infer_schema=False)
    assert stores["store_id"].str.len_chars().eq(4).all() and stores["store_id"].str.starts_with("0").any()
    postal = pl.read_csv(demo.drop / "postal_regions.csv", infer_schema=False)["postal_code"]
    assert postal.str.len_chars().eq(5).all() and postal.str.starts_with("0").any()
    products = pl.read_csv(demo.drop / "products.csv", infer_schema=False)
    assert products["sku"].str.starts_with("0").all()
    parquet = pl.read_parquet(next(p for p in _fact_paths(demo, "store_sales") if p.suffix == ".parquet"))
    assert parquet.schema["store_id"] == pl.String and parquet.schema["sku"] == pl.String
    events = pl.read_csv(demo.drop / "events.csv", infer_schema=False)
    assert events["event_id"].str.starts_with("0").all()


def test_lake_tables_match_the_drop_row_for_row(
    demo: DemoPaths, truth: dict[str, Any], lake: LakeTables
) -> None:
    assert lake.store_sales.collect_schema() == LAKE_STORE_SALES
    assert lake.online_orders.collect_schema() == LAKE_ONLINE_ORDERS
    for table, frame in (("store_sales", lake.store_sales), ("online_orders", lake.online_orders)):
        per_file = dict(frame.group_by("_source_file").len().collect().iter_rows())
        on_disk = {f"{table}/{p.name}": _read_fact(p).height for p in _fact_paths(demo, table)}
        assert per_file == on_disk
        assert sum(on_disk.values()) == truth["counts"][f"{table}_rows"]
    for name in ("stores", "products", "assortment", "events"):
        assert getattr(lake, name).height == truth["counts"][name]


def test_lake_orders_hash_customers_and_keep_the_local_date(demo: DemoPaths, lake: LakeTables) -> None:
    raw = _read_fact(next(p for p in _fact_paths(demo, "online_orders") if p.suffix == ".csv"))
    assert raw["ordered_at"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$").all()
    guests = raw["customer_id"].is_null().mean()
    assert 0.15 < guests < 0.25
    got = (
        raw.head(200)
        .with_columns(pl.col("line_number").cast(pl.Int64))
        .join(lake.online_orders.collect(), on=["order_id", "line_number"])
    )
    expected = [None if c is None else customer_key(c, b"demo") for c in got["customer_id"]]
    assert got["customer_key"].to_list() == expected
    assert_frame_equal(
        got.select(pl.col("ordered_at").str.slice(0, 10).str.to_date().alias("d")),
        got.select(pl.col("order_date").alias("d")),
    )


def test_online_orders_have_returns_pickups_and_some_unmapped_postal_codes(lake: LakeTables) -> None:
    orders = lake.online_orders.collect()
    mapped = orders.join(lake.postal_regions, left_on="ship_postal_code", right_on="postal_code", how="left")
    assert 0.003 < mapped["region"].null_count() / orders.height < 0.03
    assert (orders["units"] < 0).any() and ((orders["units"] < 0) == (orders["revenue"] < 0)).all()
    pickups = orders.filter(pl.col("fulfillment") == "pickup")
    assert pickups.height > 0 and pickups["pickup_store_id"].is_in(lake.stores["store_id"].implode()).all()
    assert orders.select("order_id", "line_number").is_unique().all()


def test_store_sales_look_like_a_pos_export(sales: pl.DataFrame, lake: LakeTables) -> None:
    stockout = sales.filter((pl.col("on_hand") == 0) & (pl.col("units") == 0))
    assert stockout.height > 1000
    assert sales.filter((pl.col("units") == 0) & (pl.col("on_hand") > 0)).height > 1000  # explicit zeros
    assert sales.filter(pl.col("units") < 0).height > 0  # net-return days
    assert ((sales["units"] < 0) == (sales["revenue"] < 0)).all()
    assert sales.select("date", "store_id", "sku").is_unique().all()
    assert sales["date"].max() == date(2025, 6, 30) and sales["date"].min() == date(2023, 7, 1)
    # only what a store carries sells there: pairs outside today's assortment stopped selling long ago
    last = sales.group_by("store_id", "sku").agg(pl.col("date").max())
    gone = last.join(lake.assortment, on=["store_id", "sku"], how="anti")
    assert gone.height > 0 and (gone["date"] < date(2025, 5, 31)).all()


def test_shelf_capacity_fits_todays_assortment(lake: LakeTables) -> None:
    today = (
        lake.assortment.join(lake.products.select("sku", "category"), on="sku")
        .group_by("store_id", "category")
        .len()
    )
    both = today.join(lake.shelf_capacity, on=["store_id", "category"], how="left")
    assert both["max_skus"].null_count() == 0
    assert (both["max_skus"] >= both["len"]).all() and (both["max_skus"] == both["len"]).any()


def _event_ratios(sales: pl.DataFrame, events: pl.DataFrame, pattern: dict[str, Any]) -> list[float]:
    """Return, per past event, mean units in the window / mean units over the 28 days before it."""
    s = sales.filter((pl.col("sku") == pattern["sku"]) & (pl.col("region") == pattern["region"]))
    past = events.filter(
        (pl.col("event_type") == pattern["event_type"])
        & pl.col("region").is_in([pattern["region"], "ALL"])
        & (pl.col("end_date") <= s["date"].max())
    )
    ratios = []
    for start, end in past.select("start_date", "end_date").iter_rows():
        window = s.filter(pl.col("date").is_between(start, end))["units"].sum() / ((end - start).days + 1)
        base = s.filter(pl.col("date").is_between(start - timedelta(days=28), start - timedelta(days=1)))
        ratios.append(window / max(base["units"].sum() / 28, 1e-9))
    return ratios


def test_the_strongest_planted_event_really_lifts_the_raw_sales(
    sales: pl.DataFrame, lake: LakeTables, truth: dict[str, Any]
) -> None:
    strongest = max(truth["event_uplift"], key=lambda p: p["lift"])
    assert strongest["event_type"] == "hurricane" and strongest["lift"] > 6
    ratios = _event_ratios(sales, lake.events, strongest)
    assert len(ratios) >= 4
    # the raw sales rise, but read the lift short: the stores sell out (next test)
    assert 2.0 < float(np.median(ratios)) < 1.4 * strongest["lift"]


def test_event_peaks_sell_out_and_normal_days_rarely_do(
    sales: pl.DataFrame, lake: LakeTables, truth: dict[str, Any]
) -> None:
    strongest = max(truth["event_uplift"], key=lambda p: p["lift"])
    s = sales.filter((pl.col("sku") == strongest["sku"]) & (pl.col("region") == strongest["region"]))
    windows = lake.events.filter(
        (pl.col("event_type") == strongest["event_type"]) & (pl.col("region") == strongest["region"])
    )
    during = pl.any_horizontal(
        pl.col("date").is_between(a, b) for a, b in windows.select("start_date", "end_date").iter_rows()
    )
    sold_out = (pl.col("on_hand") == 0) & (pl.col("units") > 0)
    assert s.filter(during).select(sold_out.mean()).item() > 0.3
    assert sales.filter(sold_out).height / sales.height < 0.05


def test_the_null_event_type_leaves_sales_alone(
    sales: pl.DataFrame, lake: LakeTables, truth: dict[str, Any]
) -> None:
    assert set(truth["null_event_types"]) == {"power_outage_drill", "summer_fair"}
    strongest = max(truth["event_uplift"], key=lambda p: p["lift"])
    for null_type in truth["null_event_types"]:
        region = lake.events.filter(pl.col("event_type") == null_type)["region"][0]
        pattern = {**strongest, "event_type": null_type, "region": region}
        ratios = _event_ratios(sales, lake.events, pattern)
        assert len(ratios) >= 4 and 0.6 < float(np.median(ratios)) < 1.5, null_type


def test_null_events_fall_on_paydays_and_in_the_summer_peak(lake: LakeTables) -> None:
    drills = lake.events.filter(pl.col("event_type") == "power_outage_drill")
    assert drills.height >= 4 and (drills["start_date"].dt.day() == 1).all()
    fairs = lake.events.filter(pl.col("event_type") == "summer_fair")
    assert fairs.height >= 4 and fairs["start_date"].dt.month().is_between(5, 9).all()


def test_every_effective_event_type_strikes_often_enough(lake: LakeTables, truth: dict[str, Any]) -> None:
    as_of = date.fromisoformat(truth["as_of"])
    for p in truth["event_uplift"]:
        assert p["events"] >= 4 and p["peak_offset_days"] >= 0
    past = lake.events.filter(pl.col("end_date") <= as_of)
    per_pair = past.filter(pl.col("region") != "ALL").group_by("event_type", "region").len()
    assert per_pair["len"].min() >= 4
    assert lake.events.filter(pl.col("start_date") > as_of).height >= 1  # something to pre-stock for
    assert set(truth["null_event_types"]) <= set(past["event_type"])


def test_latent_demand_is_online_only(sales: pl.DataFrame, lake: LakeTables, truth: dict[str, Any]) -> None:
    assert len(truth["latent_demand"]) >= 3
    carried = lake.assortment.join(lake.stores.select("store_id", "region"), on="store_id")
    orders = lake.online_orders.collect().join(
        lake.postal_regions, left_on="ship_postal_code", right_on="postal_code"
    )
    for p in truth["latent_demand"]:
        here = (pl.col("sku") == p["sku"]) & (pl.col("region") == p["region"])
        assert carried.filter(here).height == 0
        assert sales.filter(here).height == 0
        weeks = (orders["order_date"].max() - orders["order_date"].min()).days / 7
        assert orders.filter(here)["units"].sum() / weeks > 1.0, p  # a clear weekly online rate
        assert p["weekly_units"] > 0


def test_local_affinity_skus_are_carried_in_both_regions(lake: LakeTables, truth: dict[str, Any]) -> None:
    carried = lake.assortment.join(lake.stores.select("store_id", "region"), on="store_id")
    lifts = sorted(p["lift"] for p in truth["local_affinity"])
    assert lifts[0] < 0.5 and lifts[-1] > 2
    for p in truth["local_affinity"]:
        stores = lake.stores.filter(pl.col("region") == p["region"]).height
        assert (
            carried.filter((pl.col("sku") == p["sku"]) & (pl.col("region") == p["region"])).height == stores
        )


@pytest.mark.parametrize("days", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("lift", [2.0, 7.0])
def test_window_profile_averages_the_lift_and_peaks_before_the_end(days: int, lift: float) -> None:
    profile = window_profile(days, lift)
    assert profile.mean() == pytest.approx(lift)
    assert int(np.argmax(profile)) == days - 2
    assert (profile > 1).all()


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("Thanksgiving 2024", date(2024, 11, 28)),
        ("Memorial Day 2025", date(2025, 5, 26)),
        ("Labor Day 2024", date(2024, 9, 2)),
        ("Super Bowl Sunday 2025", date(2025, 2, 9)),
        ("Independence Day 2024", date(2024, 7, 4)),
    ],
)
def test_holidays_follow_the_calendar(name: str, day: date) -> None:
    assert (name, day) in holidays(date(2024, 1, 1), date(2025, 12, 31))


def test_unknown_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size"):
        generate_demo(tmp_path, size="huge")
    with pytest.raises(ValueError, match="size"):
        demo_lake_tables(size="huge")
