"""Both reports in a real headless Chromium (Debian's /usr/bin/chromium; skipped when absent): no
network request, no script error, no sideways scrolling at 800 px, and typing in the search box hides
rows. Screenshots are written for a person to look at (bench/report_browser.py does the same on a run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report_browser
from flows.report import backtest_page, report
from tests.flows.report import frames
from tests.flows.report.test_backtest_page import BACKTEST_FILES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not report_browser.CHROMIUM.exists(),
        reason="needs Debian's chromium (apt-get install -y chromium) at /usr/bin/chromium",
    ),
]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("run")
    lake = frames.write_lake(root / "lake")
    out = frames.write_outputs(root / "out")
    main = report.render_report(out, frames.run_info(), lake=lake)
    out.backtest.mkdir()
    for name, make in BACKTEST_FILES.items():
        make().write_parquet(out.backtest / name)
    backtest = backtest_page.render_backtest_report(out.backtest, frames.run_info(cutoffs=["2025-05-01"]))
    return [main, backtest]


def test_reports_in_headless_chromium(pages: list[Path], tmp_path: Path) -> None:
    with report_browser.chromium() as devtools:
        results = [report_browser.check_page(devtools, page, tmp_path) for page in pages]
    assert [p for r in results for p in report_browser.problems(r)] == []
    main = results[0]["widths"]
    for width in report_browser.WIDTHS:
        seen = main[width]
        assert seen["requests"] == [] and seen["errors"] == []
        assert 0 < seen["filter"]["rows_after"] < seen["filter"]["rows_before"]
        assert Path(seen["screen"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert results[1]["widths"][800]["horizontal_scroll"] is False
