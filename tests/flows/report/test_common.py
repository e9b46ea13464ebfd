"""Numbers a person reads: at most three significant digits, units and currency, words for offsets."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from flows.report import common

PAGE = Path("/runs/a/out/report.html")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (0.456, "0.456"),
        (5.0, "5"),
        (12.34, "12.3"),
        (99.96, "100"),
        (1234, "1,230"),
        (9999, "10k"),
        (12345, "12.3k"),
        (999600, "1M"),
        (1234567, "1.23M"),
        (-4567.8, "\u22124,570"),
        (2.5e9, "2.5B"),
        (None, "\u2013"),
        (float("nan"), "\u2013"),
        ("n/a", "n/a"),
        (True, "True"),
    ],
)
def test_fmt_sig(value: Any, expected: str) -> None:
    assert common.fmt_sig(value) == expected


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (36.789, "USD", "$36.8"),
        (24123.456, "EUR", "\u20ac24.1k"),
        (-1500, "GBP", "\u2212\u00a31,500"),
        (950, "CHF", "CHF 950"),
        (None, "USD", "\u2013"),
    ],
)
def test_fmt_money(value: Any, currency: str, expected: str) -> None:
    assert common.fmt_money(value, currency) == expected


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (common.fmt_num, 1234.56, "1,230"),
        (common.fmt_num, 0.4567, "0.46"),
        (common.fmt_num, None, "\u2013"),
        (common.fmt_times, 6.84, "6.8x"),
        (common.fmt_times, 0.4, "0.4x"),
        (common.fmt_times, 12.3, "12x"),
        (common.fmt_pct, 0.6292931735647641, "63%"),
        (common.fmt_pct, 0.052, "5.2%"),
        (common.fmt_p, 0.0001, "<0.001"),
        (common.fmt_p, 0.0123, "0.012"),
        (common.fmt_offset, -2, "2 days before"),
        (common.fmt_offset, 0, "on the day"),
        (common.fmt_offset, 1, "1 day after"),
    ],
)
def test_formatting(fn: Any, value: Any, expected: str) -> None:
    assert fn(value) == expected


def test_quality_puts_the_model_in_words() -> None:
    q = common.quality({"model": {"valid_wape": 0.6292931735647641, "best_iteration": 184.0}})
    assert q["model"] == [
        ("error on held-back days, share of units (WAPE)", "63%"),
        ("boosting rounds", "184"),
    ]


def test_validation_details_count_failures() -> None:
    q = common.quality(
        {
            "validation": {
                "success": False,
                "tables": {"t": {"success": False, "rows": 10, "failed": ["a", "b"]}},
            }
        }
    )
    assert q["validation"]["tables"][0]["details"] == {"rows": 10, "failed": 2}


@pytest.mark.parametrize(
    ("docs", "href"),
    [
        ("/runs/a/lake/_docs/index.html", "../lake/_docs/index.html"),  # relative: the run folder moves
        ("s3://bucket/lake/_docs/index.html", None),  # shown, not linked: a browser cannot open it
        ("https://host/lake/_docs/index.html", "https://host/lake/_docs/index.html"),
    ],
)
def test_validation_links_the_data_docs_where_they_are(docs: str, href: str | None) -> None:
    q = common.quality({"validation": {"success": True, "tables": {}, "docs_index": docs}}, page=PAGE)
    assert q["validation"]["docs"] == docs
    assert q["validation"]["docs_href"] == href


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2025, 7, 14), date(2025, 7, 17), "14\u201317 Jul"),
        (date(2025, 6, 30), date(2025, 7, 2), "30 Jun \u2013 2 Jul"),
        (date(2025, 7, 14), None, "14 Jul"),
        (None, None, ""),
    ],
)
def test_fmt_span(start: date | None, end: date | None, expected: str) -> None:
    assert common.fmt_span(start, end) == expected


def test_exact_counts_for_tooltips() -> None:
    assert (common.fmt_exact(1006), common.fmt_num(1006)) == ("1,006", "1,010")
