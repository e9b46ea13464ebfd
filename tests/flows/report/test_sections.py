"""The rows of report.html: plain sentences, the region summary, what each table lists, and the columns
other stages add (name, region, replaces, event windows, order units) used when present."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from flows.report import sections
from tests.flows.report import frames


@pytest.mark.parametrize(
    ("sentence", "plain", "stats"),
    [
        (
            "Storms lift A1 6.5x (95% CI 4.0-9.0x, 5 events), about 104.6 units a week.",
            "Storms lift A1 6.5x, about 105 units a week.",
            "95% CI 4.0-9.0x, 5 events",
        ),
        ("Water 1.125L sold 7.034x its normal rate.", "Water 1.125L sold 7.03x its normal rate.", ""),
        ("Keeps its place: 13.2 units/week (q=0.0004).", "Keeps its place: 13.2 units/week.", "q=0.0004"),
        (None, "", ""),
    ],
)
def test_plain_sentences_keep_statistics_apart(sentence: str | None, plain: str, stats: str) -> None:
    assert sections.plain(sentence) == plain
    assert sections.stats_of(sentence) == stats


def test_findings_take_the_strongest_pattern_of_each_kind() -> None:
    found = sections.findings(frames.patterns())
    assert [f["text"] for f in found] == [
        "Storms lift A1 6.5x, about 105 units a week.",
        "HILLS loves A3.",
        "COAST wants A4.",
    ]
    assert found[0]["stats"] == "95% CI 4.0-9.0x, 5 events"
    only_affinity = frames.patterns().filter(pl.col("kind") == "local_affinity")
    assert [f["text"] for f in sections.findings(only_affinity)] == ["HILLS loves A3.", "COAST shuns A2."]


def test_region_summary_counts_money_and_strongest_pattern() -> None:
    advice = frames.assortment().with_columns(
        pl.col("store_id").replace_strict(frames.STORES).alias("region")
    )
    rows = sections.region_summary(advice, frames.patterns(), frames.stores())
    assert [r["region"] for r in rows] == ["COAST", "HILLS"]  # most revenue at stake first
    coast, hills = rows
    assert (coast["stores"], coast["adds"], coast["drops"]) == (2, 2, 1)
    assert coast["add_revenue"] == pytest.approx(46.789) and coast["drop_revenue"] == pytest.approx(1.5)
    assert coast["at_stake"] == pytest.approx(48.289)
    assert coast["finding"]["text"].startswith("Storms lift A1")
    # a region with stores but no advice is still listed, with nothing at stake
    assert (hills["stores"], hills["adds"], hills["at_stake"]) == (1, 0, 0)
    assert hills["finding"]["text"] == "HILLS loves A3."


def test_advice_rows_list_changes_first_and_the_best_keeps() -> None:
    n = 5
    df = pl.DataFrame(
        {
            "store_id": ["S1"] * (n + 1),
            "sku": [f"K{i}" for i in range(n)] + ["NEW"],
            "category": ["c"] * (n + 1),
            "action": ["keep"] * n + ["add"],
            "expected_weekly_units": [float(i) for i in range(n)] + [1.0],
            "expected_weekly_revenue": [float(i) for i in range(n)] + [1.0],
            "reason": ["r"] * (n + 1),
            "name": [None] * n + ["New thing"],
            "region": ["R"] * (n + 1),
            "replaces": [None] * n + ["K0"],
        }
    )
    rows, hidden = sections.advice_rows(df, keeps=2, changes=10)
    assert [r["sku"] for r in rows] == ["NEW", "K4", "K3"]
    assert hidden == 3
    assert rows[0]["replaces_name"] == "K0"  # no name known for K0: its SKU


def test_advice_rows_name_what_an_add_replaces() -> None:
    df = frames.assortment().with_columns(
        pl.when(pl.col("sku") == "A1").then(pl.lit("A2")).alias("replaces"),
        pl.col("sku").replace_strict({k: n for k, (n, _) in frames.PRODUCTS.items()}).alias("name"),
    )
    rows, _ = sections.advice_rows(df, keeps=10, changes=10)
    add = next(r for r in rows if r["sku"] == "A1")
    assert (add["replaces"], add["replaces_name"]) == ("A2", "Salted crisps")


def test_prestock_rows_sum_stores_and_use_new_columns_when_present() -> None:
    old = frames.prestock()  # a run from before issue 10: window, stock-by and order columns are null
    rows, hidden = sections.prestock_rows(old, limit=10)
    assert hidden == 0 and len(rows) == 1
    assert (rows[0]["stores"], rows[0]["extra_units"], rows[0]["baseline_units"]) == (2, 77.0, 14.0)
    assert "stock_by" not in rows[0] and "order_units" not in rows[0]
    new = old.with_columns(
        pl.lit("Storm Cid").alias("event_name"),
        pl.lit(date(2025, 7, 10)).alias("window_start"),
        pl.lit(date(2025, 7, 12)).alias("window_end"),
        pl.Series("stock_by", [date(2025, 7, 8), date(2025, 7, 9)]),
        pl.Series("order_units", [60, 24]),
    )
    (row,), _ = sections.prestock_rows(new, limit=10)
    assert (row["event_name"], row["stock_by"], row["order_units"]) == ("Storm Cid", date(2025, 7, 8), 84)


def test_kind_counts_show_discovered_events_only_when_found() -> None:
    kinds = [k["kind"] for k in sections.kind_counts(frames.patterns())]
    assert kinds == ["event_uplift", "local_affinity", "latent_demand"]
    discovered = frames.patterns().head(1).with_columns(pl.lit("discovered_event").alias("kind"))
    with_discovered = pl.concat([frames.patterns(), discovered])
    counts = {k["kind"]: k["count"] for k in sections.kind_counts(with_discovered)}
    assert counts["discovered_event"] == 1


def test_store_index_groups_stores_by_region() -> None:
    index = sections.store_index(frames.assortment(), frames.stores())
    assert [(g["region"], [s["store_id"] for s in g["stores"]]) for g in index] == [("COAST", ["S01", "S02"])]
    s01 = index[0]["stores"][0]
    assert (s01["adds"], s01["drops"], s01["changed"]) == (1, 1, ["snacks"])
