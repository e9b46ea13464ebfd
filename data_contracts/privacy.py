"""How customer ids become the lake's ``customer_key``: declared once, used by ingest and the demo."""

from __future__ import annotations

import hashlib
import hmac


def customer_key(customer_id: str, secret: bytes) -> str:
    """Return HMAC-SHA256 of ``customer_id`` keyed by ``secret``, as hex (the lake never sees the id)."""
    return hmac.new(secret, customer_id.encode(), hashlib.sha256).hexdigest()
