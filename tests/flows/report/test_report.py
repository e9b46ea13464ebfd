"""report.html: self-contained, escaped, complete, numbers a person reads, filters wired, and robust to
empty or missing inputs and to a run without a lake."""

from __future__ import annotations

import html as html_lib
import json
import re
from pathlib import Path

import polars as pl
import pytest

from flows.lake.outputs import write_table
from flows.report import report
from flows.report.settings import ReportSettings
from tests.flows.report import frames

# Anything that would fetch from elsewhere: absolute or protocol-relative src/href/url(), external
# scripts or style sheets, CSS imports. (matplotlib's own url(#clip-id) references are local.)
EXTERNAL = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//|<script[^>]+src=|<link[^>]+href=|@import"""
    r"""|url\(\s*["']?\s*(?:[a-z]+:)?//"""
)
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def visible_text(page: str) -> str:
    """Return the text a person reads: no script, style, chart markup or tags."""
    for tag in ("script", "style", "svg"):
        page = re.sub(rf"<{tag}\b.*?</{tag}>", " ", page, flags=re.DOTALL)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", page))


def significant_digits(number: str) -> int:
    digits = number.replace(",", "")
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0"))
    return len(digits.strip("0")) if digits.strip("0") else 1


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory):
    return frames.write_lake(tmp_path_factory.mktemp("lake"))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, lake) -> str:
    out = frames.write_outputs(tmp_path_factory.mktemp("out"))
    path = report.render_report(out, frames.run_info(), lake=lake, settings=ReportSettings(currency="EUR"))
    assert path == out.report
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="x.js">',
        '<link rel="stylesheet" href="https://cdn/x.css">',
        '<img src="http://x/y.png">',
        "<img src=//x/y.png>",
        "background: url('https://x/y.png')",
        "@import 'x.css';",
    ],
)
def test_external_reference_pattern_catches(snippet: str) -> None:
    assert EXTERNAL.search(snippet) is not None


def test_report_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert EXTERNAL.search(page) is None
    assert "<?xml" not in page  # SVG prolog stripped: invalid inside HTML
    assert "<script>" in page and "data-search" in page  # the filter script is inline


@pytest.mark.parametrize(
    "text",
    [
        "Strawberry tarts",  # names from the lake's products
        "Slow seller: half a unit a week.",
        "Storms lift A1 6.5x, about 105 units a week.",  # statistics out of the sentence ...
        "95% CI 4.0-9.0x, 5 events",  # ... and behind its details toggle
        "HILLS loves A3.",
        "Stock 55 extra A1 before storms.",
        "\u20ac24.1k",  # revenue with the currency of the settings, 3 significant digits
        "12.3",  # units per week
        "unknown store_id",
        "many postal codes without region",
        "2 days before",  # peak offset in words
        "63%",  # model error in words, not valid_wape 0.6292931735647641
        "Demand around events",
        "Demand forecast",
    ],
)
def test_report_shows(page: str, text: str) -> None:
    assert text in visible_text(page)


def test_report_charts_over_time_from_the_lake(page: str) -> None:
    # event curves, regional index, pattern lifts (3 kinds), pre-stock, chain forecast, one example
    assert page.count("<svg") == 8
    assert 'data-group="example"' in page


def test_report_escapes_text_from_the_data(page: str) -> None:
    assert "Online demand &lt;b&gt;high&lt;/b&gt; &amp; rising" in page
    assert "<b>high</b>" not in page


def test_no_number_has_more_than_three_significant_digits(page: str) -> None:
    text = DATE.sub(" ", visible_text(page))
    identifiers = {"2025", "0.1.0", "2.1.0"}  # the as-of year in headings, package versions
    too_long = [
        n
        for n in NUMBER.findall(text)
        if significant_digits(n) > 3 and n not in identifiers and "." not in n[-1:]
    ]
    assert too_long == []


def test_summary_cards_and_region_rows(page: str) -> None:
    summary = page[page.index('id="summary"') : page.index('id="advice"')]
    cards = re.findall(r'<span class="n">([^<]+)</span><span class="l">([^<:]+)', summary)
    assert cards[:2] == [("2", "products to add"), ("1", "products to drop")]
    assert cards[2] == ("\u20ac48.3", "revenue at stake a week")
    assert re.findall(r'<tr data-region="([^"]+)" data-text="([^"]*)">', summary) == [
        ("COAST", "S01 S02"),
        ("HILLS", ""),
    ]


def test_rows_carry_the_filter_keys(page: str) -> None:
    advice = page[page.index('id="advice-table"') : page.index('id="patterns"')]
    assert 'data-region="COAST" data-store="S01" data-category="snacks" data-action="add"' in advice
    patterns = page[page.index('id="patterns-table"') :]
    assert 'data-kind="local_affinity" data-region="HILLS" data-category="drinks"' in patterns
    regions = json.loads(re.search(r'id="store-regions">([^<]*)<', page).group(1))
    assert regions == frames.STORES
    for key in ("region", "store", "category", "action", "kind"):
        assert f'<select data-filter="{key}"' in page


@pytest.mark.parametrize(
    ("skip", "empty", "expected"),
    [
        ((), ("patterns", "prestock"), ["No regional pattern passed the significance filter"]),
        (
            ("patterns", "prestock", "forecast"),
            (),
            ["Missing output files", "patterns.parquet", "forecast.parquet"],
        ),
        (("assortment", "patterns", "prestock", "forecast"), (), ["No assortment advice in this run."]),
        ((), ("assortment", "patterns", "prestock", "forecast"), ["no forecast or no sales history"]),
    ],
)
def test_report_copes_with_empty_or_missing_tables(
    tmp_path: Path, skip: tuple[str, ...], empty: tuple[str, ...], expected: list[str]
) -> None:
    out = frames.write_outputs(tmp_path, skip=skip, empty=empty)
    page = report.render_report(out, {"as_of": "2025-06-30"}).read_text(encoding="utf-8")
    for text in expected:
        assert text in page
    assert EXTERNAL.search(page) is None


def test_report_without_a_lake_leaves_out_the_charts_over_time(tmp_path: Path) -> None:
    out = frames.write_outputs(tmp_path)
    page = report.render_report(out, frames.run_info()).read_text(encoding="utf-8")
    assert "no past event with enough sales history" in page
    assert "Slow seller" in page


def test_report_finds_the_lake_run_json_names(tmp_path: Path, lake) -> None:
    out = frames.write_outputs(tmp_path / "out")
    info = frames.run_info(inputs={"lake": str(lake.root)})
    page = report.render_report(out, info).read_text(encoding="utf-8")
    assert "Strawberry tarts" in page and "$48.3" in page  # names from the lake; USD by default


def test_data_docs_link_is_relative(tmp_path: Path) -> None:
    out = frames.write_outputs(tmp_path / "out")
    docs = tmp_path / "lake" / "_docs" / "index.html"
    info = frames.run_info(validation={"success": True, "tables": {}, "docs_index": str(docs)})
    page = report.render_report(out, info).read_text(encoding="utf-8")
    assert 'href="../lake/_docs/index.html"' in page


def test_replaces_column_when_the_advice_has_it(tmp_path: Path) -> None:
    out = frames.write_outputs(tmp_path)
    advice = frames.assortment().with_columns(
        pl.when(pl.col("sku") == "A1").then(pl.lit("A2")).alias("replaces"),
    )
    write_table(advice, out.assortment)
    page = report.render_report(out, frames.run_info()).read_text(encoding="utf-8")
    table = page[page.index('id="advice-table"') : page.index('id="patterns"')]
    assert "<th>Replaces</th>" in table
    assert '<td data-label="Replaces">A2</td>' in table  # no lake: the SKU stands for the name
    assert "a free slot" in table  # S02's add of A4 replaces nothing
