"""Tiny hand-written drops for the ingest tests (one helper, shared by tests/localshelf/test_ingest*.py)."""

from __future__ import annotations

from pathlib import Path

from flows.lake.paths import LakePaths
from flows.settings import Settings

SECRET = "test-secret-not-for-production"

STORES = "store_id,region,state,postal_code\n001,GULF,FL,02134\n002,NORTH,MN,55401\n"
PRODUCTS = "sku,name,category,regular_price\nA1,Apple,fruit,1.5\nB2,Bread,bakery,2.0\n"
POSTAL = "postal_code,region\n02134,GULF\n55401,NORTH\n"
ASSORTMENT = "store_id,sku\n001,A1\n001,B2\n002,A1\n"
SALES = (
    "date,store_id,sku,units,revenue,on_hand,promo\n"
    "2024-08-01,001,A1,3,4.5,10,no\n"
    "2024-08-01,001,B2,1,2.0,5,yes\n"
    "2024-08-02,002,A1,-1,-1.5,7,0\n"
    "2024-09-01,001,A1,2,3.0,8,1\n"
)
ORDERS = (
    "order_id,line_number,ordered_at,sku,units,revenue,ship_postal_code,customer_id,fulfillment,pickup_store_id\n"
    "o1,1,2024-08-29T23:03:11-05:00,A1,2,3.0,02134,CUST-SECRET-4711,ship,\n"
    "o1,2,2024-08-29T23:03:11-05:00,B2,1,2.0,02134,CUST-SECRET-4711,pickup,001\n"
    "o2,1,2024-08-30T08:00:00+02:00,A1,1,1.5,55401,,ship,\n"
)


def write(path: Path, text: str | bytes) -> Path:
    """Write a file, creating its folder; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def make_drop(root: Path, *, sales: str | None = SALES, orders: str | None = ORDERS, **refs: str) -> Path:
    """A valid small drop in ``root``; ``refs`` override reference files by stem (e.g. stores=...)."""
    files = {"stores": STORES, "products": PRODUCTS, "postal_regions": POSTAL, "assortment": ASSORTMENT}
    files.update(refs)
    for stem, text in files.items():
        write(root / f"{stem}.csv", text)
    if sales is not None:
        write(root / "store_sales" / "pos.csv", sales)
    if orders is not None:
        write(root / "online_orders" / "web.csv", orders)
    return root


def settings(**ingest: object) -> Settings:
    """Settings for tests: a known secret, no future dates beyond 2030, small batches."""
    return Settings(hmac_secret=SECRET, ingest={"lock_timeout_s": 5, "batch_rows": 2, **ingest})


def lake_at(root: Path) -> LakePaths:
    return LakePaths(root)
