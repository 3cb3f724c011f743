"""catalog_stats: counts/averages/top-N per group, one row per product, filters, price bands."""
from __future__ import annotations

import statistics

import pandas as pd
import pytest

from data.catalog import catalog_from_frame
from tools.analytics import catalog_stats, price_band, price_band_labels
from tools.specs import CatalogStatsArgs


def _raw(rows: list[dict]) -> pd.DataFrame:
    base = {"about_product": "", "user_id": "", "user_name": "", "review_id": "", "review_title": "",
            "review_content": "", "img_link": "", "product_link": ""}
    return pd.DataFrame([{**base, **r} for r in rows])


@pytest.fixture()
def tiny():
    rows = [
        dict(product_id="P1", product_name="Acme Cable 1m", category="Electronics|Cables|USBCables",
             discounted_price="₹300", actual_price="₹600", discount_percentage="50%", rating="4.0", rating_count="100"),
        # duplicate listing of P1 must not count twice
        dict(product_id="P1", product_name="Acme Cable 1m", category="Electronics|Cables|USBCables",
             discounted_price="₹300", actual_price="₹600", discount_percentage="50%", rating="4.0", rating_count="100"),
        dict(product_id="P2", product_name="Acme Cable 2m", category="Electronics|Cables|USBCables",
             discounted_price="₹700", actual_price="₹1,000", discount_percentage="30%", rating="3.0", rating_count="1,000"),
        dict(product_id="P3", product_name="Zeta Watch", category="Electronics|Wearables|SmartWatches",
             discounted_price="₹2,500", actual_price="₹5,000", discount_percentage="50%", rating="|", rating_count=""),
        dict(product_id="P4", product_name="Zeta Kettle", category="Home|Kitchen|Kettles",
             discounted_price="₹12,000", actual_price="₹15,000", discount_percentage="20%", rating="4.5", rating_count="10"),
    ]
    return catalog_from_frame(_raw(rows)).frame


def test_count_by_category_dedupes_products(tiny):
    out = catalog_stats(tiny, CatalogStatsArgs(metric="count", group_by="category"))
    assert out["n_products"] == 4 and out["overall"] == 4
    assert out["rows"][0] == {"group": "USBCables", "value": 2.0, "n_products": 2}
    assert {r["group"] for r in out["rows"]} == {"USBCables", "SmartWatches", "Kettles"}


def test_averages_skip_missing_values_and_filters_apply(tiny):
    out = catalog_stats(tiny, CatalogStatsArgs(metric="avg_rating", group_by="brand"))
    assert out["overall"] == pytest.approx((4.0 + 3.0 + 4.5) / 3, abs=0.01)
    zeta = next(r for r in out["rows"] if r["group"] == "Zeta")
    assert zeta == {"group": "Zeta", "value": 4.5, "n_products": 2}  # P3 has no rating but is a Zeta product
    out = catalog_stats(tiny, CatalogStatsArgs(metric="avg_discount", category="cables"))
    assert out["filters"] == {"category": "cables"} and out["n_products"] == 2 and out["overall"] == 40.0
    assert out["rows"] == []
    out = catalog_stats(tiny, CatalogStatsArgs(metric="total_ratings", brand="acme"))
    assert out["overall"] == 1100.0
    # a category as people write it matches the catalog's CamelCase level ("USB cables" = USBCables)
    for spoken in ("USB cables", "usb cable", "smart watches"):
        assert catalog_stats(tiny, CatalogStatsArgs(metric="count", category=spoken))["overall"] >= 1, spoken


def test_price_bands_order_and_top_n(tiny):
    out = catalog_stats(tiny, CatalogStatsArgs(metric="avg_price", group_by="price_band", order="asc", top_n=2))
    assert [r["group"] for r in out["rows"]] == ["under ₹500", "₹500-1,000"]
    assert out["rows"][0]["value"] == 300.0
    assert price_band(12_000) == "₹10,000-20,000" and price_band(25_000) == "₹20,000 and above"
    assert price_band(None) is None and price_band_labels()[0] == "under ₹500"


def test_no_match_gives_null_overall(tiny):
    out = catalog_stats(tiny, CatalogStatsArgs(metric="avg_rating", brand="nobody", group_by="category"))
    assert out["n_products"] == 0 and out["overall"] is None and out["rows"] == []


def test_demo_catalog_matches_independent_computation(demo_catalog):
    products = demo_catalog.products
    out = catalog_stats(demo_catalog.frame, CatalogStatsArgs(metric="max_discount", group_by="category", top_n=50))
    by_leaf: dict[str, list[float]] = {}
    for p in products:
        if p.discount_percentage is not None:
            by_leaf.setdefault(p.leaf_category, []).append(p.discount_percentage)
    expected = sorted(((max(v), k) for k, v in by_leaf.items()), key=lambda t: (-t[0], t[1]))[:50]
    assert [(r["value"], r["group"]) for r in out["rows"]] == [(round(v, 2), k) for v, k in expected]
    out = catalog_stats(demo_catalog.frame, CatalogStatsArgs(metric="avg_rating"))
    ratings = [p.rating for p in products if p.rating is not None]
    assert out["n_products"] == len(products)
    assert out["overall"] == pytest.approx(statistics.mean(ratings), abs=0.005)
