"""Data Docs pages point at local copies of their assets: no request leaves the machine."""

from __future__ import annotations

import re
from pathlib import Path

from flows.lake.docs_offline import LOCAL, make_offline, rewrite_page

GX_HEAD = """<html><head>
<link rel="shortcut icon" href="../../../../static/images/favicon.ico"/>
<link rel="stylesheet" href="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css">
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/bootstrap-dark/bootstrap-prefers-dark.css"/>
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css">
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="https://cdnjs.cloudflare.com/popper/umd/popper.min.js" integrity="x" crossorigin></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js"></script>
</head><body>
<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1" alt="GX">
<img src="https://example.com/pixel.gif" alt="pixel">
<a href="https://greatexpectations.io">a link is not a request</a>
</body></html>"""
REQUESTS = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.IGNORECASE)


def test_rewrite_page_points_assets_at_local_copies() -> None:
    page = rewrite_page(GX_HEAD, "../../static")
    assert REQUESTS.search(page) is None
    assert '<script src="../../static/vendor/jquery.min.js"></script>' in page
    assert '<link rel="stylesheet" href="../../static/vendor/icons.css">' in page
    assert "integrity" not in page and "vega" not in page and "prefers-dark" not in page
    assert 'src="../../static/images/logo-long.png"' in page
    assert 'href="../../static/images/favicon.ico"' in page
    assert '<img alt="pixel">' in page or '<img  alt="pixel">' in page
    assert '<a href="https://greatexpectations.io">' in page


def test_make_offline_copies_assets_and_rewrites_every_page_once(tmp_path: Path) -> None:
    docs = tmp_path / "_docs"
    deep = docs / "validations" / "suite" / "run 1" / "20250101"
    deep.mkdir(parents=True)
    (docs / "index.html").write_text(GX_HEAD)
    (deep / "page.html").write_text(GX_HEAD)
    assert make_offline(docs) == 2
    assert make_offline(docs) == 0  # already offline: nothing to do
    for asset in set(LOCAL.values()):
        assert (docs / "static" / "vendor" / asset).stat().st_size > 0
    page = (deep / "page.html").read_text()
    assert REQUESTS.search(page) is None
    for src in re.findall(r'(?:src|href)="(\.\./[^"]+)"', page):
        if "vendor" in src:
            assert (deep / src).resolve().exists(), src


def test_make_offline_without_a_site_does_nothing(tmp_path: Path) -> None:
    assert make_offline(tmp_path / "missing") == 0
