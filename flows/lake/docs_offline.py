"""Great Expectations Data Docs that open without network.

GX writes its Data Docs pages with scripts and style sheets from CDNs (jQuery, Bootstrap,
bootstrap-table, Font Awesome, Vega) and its logo from S3: offline the index page is blank, because
its tables are filled by bootstrap-table. ``make_offline`` copies the assets the pages use, vendored in
``docs_assets/`` (see LICENSES.txt there), into ``_docs/static/vendor/`` and points every page at them;
CDN assets the pages do not use (Vega: no chart in our suites; the dark theme) are dropped, and the
logo comes from the site's own static images. Run it after each Data Docs build: a page already
rewritten is left as it is.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from flows.lake.outputs import write_text

ASSETS = Path(__file__).parent / "docs_assets"
VENDOR = Path("static") / "vendor"
# CDN file name (the end of the URL, before any query) -> local asset; None: not used, dropped
LOCAL = {
    "jquery-3.7.1.min.js": "jquery.min.js",
    "popper.min.js": "popper.min.js",
    "bootstrap.min.js": "bootstrap.min.js",
    "bootstrap.min.css": "bootstrap.min.css",
    "bootstrap-table.min.js": "bootstrap-table.min.js",
    "bootstrap-table.min.css": "bootstrap-table.min.css",
    "bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "bootstrap-table-filter-control.css": "bootstrap-table-filter-control.min.css",
    "bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    "bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    "all.min.css": "icons.css",
}
_EXTERNAL = r"(?:https?:)?//[^\"'\s>]+"
_TAG = re.compile(
    rf"""<script\b[^>]*\bsrc=["'](?P<js>{_EXTERNAL})["'][^>]*>\s*</script>"""
    rf"""|<link\b[^>]*\bhref=["'](?P<css>{_EXTERNAL})["'][^>]*>""",
    re.IGNORECASE,
)
_LOGO = re.compile(rf"""(<img\b[^>]*\bsrc=["']){_EXTERNAL}logo-long\.png[^"']*(["'])""", re.IGNORECASE)
# GX links the validation pages' icon one folder too high: point it at the site's own
_FAVICON = re.compile(r"""(<link\b[^>]*\bhref=["'])[^"']*static/images/favicon\.ico(["'])""", re.IGNORECASE)
_IMG = re.compile(rf"""(<img\b[^>]*\b)src=["']{_EXTERNAL}["']""", re.IGNORECASE)


def _file_name(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def rewrite_page(html: str, static: str) -> str:
    """Return ``html`` with every script, style sheet and image from the network replaced by the local
    copy under ``static`` (the page's relative path to the site's static/ folder) or removed."""

    def local_tag(m: re.Match[str]) -> str:
        url = m.group("js") or m.group("css")
        asset = LOCAL.get(_file_name(url))
        if asset is None:
            return ""  # an asset the pages do not need (or we do not ship): no request for it
        href = f"{static}/vendor/{asset}"
        return (
            f'<script src="{href}"></script>' if m.group("js") else f'<link rel="stylesheet" href="{href}">'
        )

    html = _TAG.sub(local_tag, html)
    html = _LOGO.sub(lambda m: f"{m.group(1)}{static}/images/logo-long.png{m.group(2)}", html)
    html = _FAVICON.sub(lambda m: f"{m.group(1)}{static}/images/favicon.ico{m.group(2)}", html)
    return _IMG.sub(lambda m: m.group(1), html)  # any other remote image: no src, its alt text shows


def make_offline(docs: Path) -> int:
    """Copy the vendored assets into ``docs``/static/vendor and rewrite every HTML page under ``docs``
    to use them; returns how many pages changed (0 when the site is absent or already offline)."""
    if not docs.exists():
        return 0
    vendor = docs / VENDOR
    vendor.mkdir(parents=True, exist_ok=True)
    for asset in set(LOCAL.values()):
        if not (vendor / asset).exists():
            shutil.copyfile(ASSETS / asset, vendor / asset)
    changed = 0
    for page in docs.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        static = Path(os.path.relpath(docs / "static", page.parent)).as_posix()
        new = rewrite_page(html, static)
        if new != html:
            write_text(page, new)
            changed += 1
    return changed
