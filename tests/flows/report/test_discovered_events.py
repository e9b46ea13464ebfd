"""Discovered events (one patterns.parquet row per SKU, sharing event_id, window, region and sentence)
show as one card per event: the sentence, the window and region, and the SKUs with their lifts."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from data_contracts.outputs import PATTERN_COLUMNS, conform
from flows.lake.outputs import write_table
from flows.report import report, sections
from flows.report.settings import ReportSettings
from tests.flows.report import frames
from tests.flows.report.test_report import visible_text

WINDOWS = {
    "D1": (
        "COAST",
        date(2025, 5, 20),
        date(2025, 5, 22),
        {"A1": (5.2, 3.1, 8.4), "A2": (4.1, 2.5, 6.6), "A3": (3.3, 2.0, 5.0)},
    ),
    "D2": (
        "ALL",
        date(2025, 6, 14),
        date(2025, 6, 15),
        {"A4": (2.6, 1.8, 3.7), "A3": (2.2, 1.5, 3.1), "A2": (1.9, 1.3, 2.7)},
    ),
}
SENTENCE = {
    "D1": "On 2025-05-20 to 05-22 in COAST, A1, A2 and A3 sold 3-5x their expected rate together; "
    "no event is labeled for these days.",
    "D2": "On 2025-06-14 to 06-15 across the chain (every region at once), A4, A3 and A2 sold 1.9-2.6x "
    "their expected rate together; no event is labeled for these days.",
}


def discovered() -> pl.DataFrame:
    """Two discovered windows of three SKUs each, as models/mining/discovery_rows.py writes them."""
    rows = [
        {
            "kind": "discovered_event",
            "region": region,
            "sku": sku,
            "lift": lift,
            "ci_low": low,
            "ci_high": high,
            "support": (end - start).days + 1,
            "q_value": 0.004,
            "window_start": start,
            "window_end": end,
            "event_id": event_id,
            "explanation": SENTENCE[event_id],
        }
        for event_id, (region, start, end, skus) in WINDOWS.items()
        for sku, (lift, low, high) in skus.items()
    ]
    return conform(pl.DataFrame(rows), PATTERN_COLUMNS)


def with_discovered() -> pl.DataFrame:
    return pl.concat([frames.patterns(), discovered()])


def test_pattern_rows_make_one_card_per_discovered_event() -> None:
    rows, hidden = sections.pattern_rows(with_discovered(), limit=100)
    assert hidden == 0
    cards = [r for r in rows if r.get("card")]
    assert [r["kind"] for r in rows if not r.get("card")] == [k for k in frames.patterns()["kind"]]
    assert [(c["event_id"], c["region"], c["sentence"]) for c in cards] == [
        ("D1", "COAST", SENTENCE["D1"]),
        ("D2", "ALL", SENTENCE["D2"]),
    ]
    assert [[s["sku"] for s in c["skus"]] for c in cards] == [["A1", "A2", "A3"], ["A4", "A3", "A2"]]
    assert cards[0]["skus"][0]["ci_low"] == 3.1
    assert (cards[0]["lift_low"], cards[0]["lift"]) == (3.3, 5.2)
    # the limit counts entries: a card is one, however many SKUs it has
    rows, hidden = sections.pattern_rows(with_discovered(), limit=5)
    assert [r.get("event_id") for r in rows][-1] == "D1" and hidden == 1
    counts = {k["kind"]: k["count"] for k in sections.kind_counts(with_discovered())}
    assert counts["discovered_event"] == 2 and counts["local_affinity"] == 2


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    lake = frames.write_lake(tmp_path_factory.mktemp("lake"))
    out = frames.write_outputs(tmp_path_factory.mktemp("out"))
    write_table(with_discovered(), out.patterns)
    path = report.render_report(out, frames.run_info(), lake=lake, settings=ReportSettings())
    return Path(path).read_text(encoding="utf-8")


def test_report_renders_two_cards_with_their_skus_and_sentence(page: str) -> None:
    table = page[page.index('id="patterns-table"') : page.index('id="prestock"')]
    cards = re.findall(r'<tr class="event-card".*?</tr>', table, flags=re.DOTALL)
    assert len(cards) == 2
    assert table.count('data-kind="discovered_event"') == 2  # no per-SKU rows besides the cards
    names = {sku: name for sku, (name, _) in frames.PRODUCTS.items()}
    for card, event_id in zip(cards, ("D1", "D2"), strict=True):
        text = " ".join(visible_text(card).split())
        assert SENTENCE[event_id] in text
        for sku, (lift, low, high) in WINDOWS[event_id][3].items():
            assert f"{names[sku]} {sku} {lift:.1f}x" in text
            assert f"95% interval {low:.1f}x \u2013 {high:.1f}x" in text
        assert f"event {event_id}" in text and "q-value 0.004" in text
    assert 'data-region="COAST"' in cards[0] and "data-region" not in cards[1]  # chain-wide: every region
    assert "20\u201322 May \u00b7 COAST" in visible_text(cards[0])
    assert "14\u201315 Jun \u00b7 every region at once" in visible_text(cards[1])
    kind_filter = page[page.index('<select data-filter="kind"') :]
    assert '<option value="discovered_event">' in kind_filter[: kind_filter.index("</select>")]
