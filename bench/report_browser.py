"""Open the HTML reports in headless Chromium, as a merchandiser would, and record what happened.

For each page: screenshots at 1400 and 800 px wide (first screen and whole page), every network request
the page attempted (only file:, data:, blob: and about: URLs are local), script errors, whether the page
is wider than the window (a horizontal scrollbar), and, where the page has a search box, that typing
into it hides table rows. Chromium is driven over its DevTools protocol with the `websockets` package
(already installed as a dependency); no browser is downloaded: Debian's /usr/bin/chromium is used.

    .venv/bin/python bench/report_browser.py OUT/report.html OUT/backtest/report.html --shots DIR

prints one JSON summary and exits 1 when a page made a network request, threw a script error, or its
filter did not hide rows.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:")
WIDTHS = (1400, 800)
SCREEN_HEIGHT = 900
START_TIMEOUT_S = 60
# Counts the table rows a person can see (display not none, and every ancestor displayed).
VISIBLE_ROWS = """(() => [...document.querySelectorAll('table[data-filterable] tbody tr')]
  .filter(r => r.offsetParent !== null).length)()"""


@dataclass
class Page:
    """One DevTools session on one tab; events are kept for inspection."""

    ws: ClientConnection
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def call(self, method: str, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        """Return the first event named ``method`` (already received or arriving within ``timeout``)."""
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if msg.get("method") == method:
                return msg
            self.events.append(msg)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def settle(self, seconds: float = 0.3) -> None:
        """Let the page handle what was typed or clicked (collecting the events it causes)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                break


@contextmanager
def chromium(binary: Path = CHROMIUM) -> Iterator[str]:
    """Start headless Chromium with a throwaway profile; yield the DevTools HTTP address."""
    profile = tempfile.mkdtemp(prefix="report-browser-")
    args = [
        str(binary),
        "--headless=new",
        "--no-sandbox",  # we run as root in a container
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",  # the browser's own update/phone-home traffic, not the page's
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        address = None
        assert proc.stderr is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while address is None and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stderr], [], [], 1.0)
            line = proc.stderr.readline() if ready else ""
            if m := re.search(r"DevTools listening on ws://([^/]+)/", line):
                address = m.group(1)
        if address is None:
            raise RuntimeError(f"chromium did not start within {START_TIMEOUT_S} s (exit {proc.poll()})")
        yield f"http://{address}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def open_tab(devtools: str) -> Iterator[Page]:
    """Open a new tab with network, runtime and page events on."""
    req = urllib.request.Request(f"{devtools}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (our own local browser)
        target = json.load(resp)
    with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
        page = Page(ws)
        for domain in ("Page", "Network", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        yield page


def _load(page: Page, url: str, width: int) -> None:
    page.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=SCREEN_HEIGHT,
        deviceScaleFactor=1,
        mobile=False,
    )
    page.call("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired")
    page.settle(0.5)


def _screenshot(page: Page, path: Path, *, full: bool) -> None:
    params: dict[str, Any] = {"format": "png"}
    if full:
        metrics = page.call("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        # a very long page is cut at 12,000 px: the first screens are what matters
        params |= {
            "captureBeyondViewport": True,
            "clip": {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": min(size["height"], 12000),
                "scale": 1,
            },
        }
    data = page.call("Page.captureScreenshot", **params)["data"]
    path.write_bytes(base64.b64decode(data))


def _section_shots(page: Page, shots: Path, prefix: str) -> list[str]:
    """Scroll to each headline (h2 with an id) and screenshot the screen there; returns the files."""
    ids = page.evaluate("[...document.querySelectorAll('h2[id]')].map(h => h.id)") or []
    files = []
    for anchor in ids:
        page.evaluate(f"document.getElementById({json.dumps(anchor)}).scrollIntoView()")
        page.settle(0.2)
        shot = shots / f"{prefix}-at-{re.sub(r'[^A-Za-z0-9]+', '-', anchor)}.png"
        _screenshot(page, shot, full=False)
        files.append(str(shot))
    page.evaluate("window.scrollTo(0, 0)")
    return files


def _type(page: Page, selector: str, text: str) -> None:
    page.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
    for ch in text:  # key by key, as a person types: input events fire after each character
        page.call("Input.dispatchKeyEvent", type="keyDown", text=ch, key=ch)
        page.call("Input.dispatchKeyEvent", type="keyUp", key=ch)
    page.settle(0.5)


# Clicks the first numeric sortable header of the page and returns that column's values, top to bottom.
SORT_FIRST_NUMERIC = """(() => { const th = document.querySelector('th[data-sort="num"]');
  if (!th) { return null; }
  th.click();
  const col = th.cellIndex;
  return [...th.closest('table').tBodies[0].rows].filter(r => !r.classList.contains('empty'))
    .map(r => parseFloat(r.cells[col].getAttribute('data-v'))).filter(v => !isNaN(v)); })()"""


def _check_sort(page: Page) -> bool | None:
    """Return whether clicking a numeric column's header sorts it largest first (None: no such column)."""
    values = page.evaluate(SORT_FIRST_NUMERIC)
    if values is None:
        return None
    return all(a >= b for a, b in zip(values, values[1:], strict=False))


def _requests(events: list[dict[str, Any]]) -> list[str]:
    return [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        if e.get("method") == "Runtime.exceptionThrown":
            details = e["params"]["exceptionDetails"]
            out.append(details.get("exception", {}).get("description") or details.get("text", "?"))
        elif e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
            out.append(e["params"]["entry"]["text"])
    return out


def search_term(page: Page) -> str | None:
    """Return a word that should match some but not all rows: the value of the first choice of the
    page's store filter (a store id), else of its first filter; None when there is no filter."""
    return page.evaluate(
        """(() => { const o = document.querySelector('select[data-filter="store"] option:not([value=""])')
          || document.querySelector('select[data-filter] option:not([value=""])');
        return o ? o.value : null; })()"""
    )


def check_page(devtools: str, html: Path, shots: Path) -> dict[str, Any]:
    """Open ``html`` at each width; return what was seen (screenshots written to ``shots``)."""
    url = html.resolve().as_uri()
    stem = re.sub(r"[^A-Za-z0-9]+", "-", f"{html.parent.name}-{html.stem}").strip("-")
    result: dict[str, Any] = {"page": str(html), "bytes": html.stat().st_size, "widths": {}}
    with open_tab(devtools) as page:
        for width in WIDTHS:
            page.events.clear()
            _load(page, url, width)
            seen: dict[str, Any] = {
                "height_px": page.evaluate("document.documentElement.scrollHeight"),
                "scroll_width_px": page.evaluate("document.documentElement.scrollWidth"),
            }
            seen["horizontal_scroll"] = seen["scroll_width_px"] > width
            for full in (False, True):
                shot = shots / f"{stem}-{width}{'-full' if full else ''}.png"
                _screenshot(page, shot, full=full)
                seen["full" if full else "screen"] = str(shot)
            seen["sections"] = _section_shots(page, shots, f"{stem}-{width}")
            has_search = page.evaluate("!!document.querySelector('input[data-search]')")
            if has_search:
                before = page.evaluate(VISIBLE_ROWS)
                term = search_term(page) or "a"
                _type(page, "input[data-search]", term)
                after = page.evaluate(VISIBLE_ROWS)
                shot = shots / f"{stem}-{width}-filtered.png"
                _screenshot(page, shot, full=False)
                seen["filter"] = {
                    "typed": term,
                    "rows_before": before,
                    "rows_after": after,
                    "shot": str(shot),
                }
            seen["sort"] = _check_sort(page)
            seen["requests"] = [u for u in _requests(page.events) if not u.startswith(LOCAL_SCHEMES)]
            seen["local_requests"] = len([u for u in _requests(page.events) if u.startswith(LOCAL_SCHEMES)])
            seen["errors"] = _errors(page.events)
            result["widths"][width] = seen
    return result


def problems(result: dict[str, Any]) -> list[str]:
    """Return what is wrong with one page's result, in words (empty when all is well)."""
    out = []
    for width, seen in result["widths"].items():
        where = f"{result['page']} at {width}px"
        out += [f"{where}: network request to {u}" for u in seen["requests"]]
        out += [f"{where}: script error {e}" for e in seen["errors"]]
        f = seen.get("filter")
        if f is not None and not (f["rows_after"] < f["rows_before"]):
            out.append(f"{where}: typing {f['typed']!r} left {f['rows_after']} of {f['rows_before']} rows")
        if seen.get("sort") is False:
            out.append(f"{where}: clicking a number column's header did not sort it")
        if seen["horizontal_scroll"]:
            out.append(f"{where}: page is {seen['scroll_width_px']}px wide (horizontal scrolling)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path, help="HTML files to open")
    parser.add_argument("--shots", type=Path, default=Path("report-shots"), help="folder for screenshots")
    parser.add_argument("--chromium", type=Path, default=Path(os.environ.get("CHROMIUM", CHROMIUM)))
    args = parser.parse_args(argv)
    if not args.chromium.exists():
        print(f"{args.chromium} not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    args.shots.mkdir(parents=True, exist_ok=True)
    with chromium(args.chromium) as devtools:
        results = [check_page(devtools, p, args.shots) for p in args.pages]
    found = [p for r in results for p in problems(r)]
    print(json.dumps({"pages": results, "problems": found}, indent=2))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
