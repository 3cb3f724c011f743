"""Catalog analytics tool: averages / counts / top-N by category, brand or price band, computed with pandas.

``catalog_stats(frame, CatalogStatsArgs(...))`` works on the cleaned catalog frame (``Catalog.frame``), which keeps
duplicate listings; statistics are computed over ONE row per product (the first listing), so a product listed
three times is counted once. The result shape is documented on :class:`tools.specs.CatalogStatsArgs`.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from data.names import CategoryFilter
from tools.specs import CatalogStatsArgs

# Upper bounds (exclusive) of the price bands, in rupees, on the selling (discounted) price.
PRICE_BAND_EDGES: tuple[float, ...] = (500, 1_000, 2_000, 5_000, 10_000, 20_000)

_METRIC_COLUMNS: dict[str, str] = {
    "avg_discount": "discount_percentage",
    "avg_rating": "rating",
    "avg_price": "price",
    "max_discount": "discount_percentage",
    "total_ratings": "rating_count",
}


def _rupees(value: float) -> str:
    return f"₹{int(value):,}"


def price_band_labels() -> list[str]:
    """The band names in ascending price order: 'under ₹500', '₹500-1,000', ..., '₹20,000 and above'."""
    labels = [f"under {_rupees(PRICE_BAND_EDGES[0])}"]
    for low, high in zip(PRICE_BAND_EDGES, PRICE_BAND_EDGES[1:]):
        labels.append(f"{_rupees(low)}-{int(high):,}")
    labels.append(f"{_rupees(PRICE_BAND_EDGES[-1])} and above")
    return labels


def price_band(price: float | None) -> str | None:
    """The band label of one selling price (None for a missing price)."""
    if price is None or (isinstance(price, float) and math.isnan(price)):
        return None
    labels = price_band_labels()
    for edge, label in zip(PRICE_BAND_EDGES, labels):
        if price < edge:
            return label
    return labels[-1]


def products_frame(catalog_frame: pd.DataFrame) -> pd.DataFrame:
    """One row per product_id (first listing kept) with a ``price`` column: selling price, else list price."""
    products = catalog_frame.drop_duplicates("product_id", keep="first").copy()
    products["price"] = products["discounted_price"].fillna(products["actual_price"])
    return products


def _aggregate(values: pd.Series, metric: str) -> float | None:
    if metric == "count":
        return float(len(values))
    clean = values.dropna()
    if clean.empty:
        return None
    if metric == "max_discount":
        return float(clean.max())
    if metric == "total_ratings":
        return float(clean.sum())
    return float(clean.mean())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def catalog_stats(catalog_frame: pd.DataFrame, args: CatalogStatsArgs) -> dict[str, Any]:
    """Compute ``args.metric`` over the catalog (optionally filtered by category text / brand), overall and per
    group, one row per product. Groups with no value for the metric are left out; rows are sorted by value
    (``args.order``, ties by group name) and cut to ``args.top_n``. ``overall`` is None when nothing matches."""
    products = products_frame(catalog_frame)
    filters: dict[str, str] = {}
    if args.category:
        filters["category"] = args.category
        wanted = CategoryFilter.of(args.category)
        products = products[products["category"].fillna("").map(wanted.matches)]
    if args.brand:
        filters["brand"] = args.brand
        products = products[products["brand"].str.casefold() == args.brand.casefold()]

    column = _METRIC_COLUMNS.get(args.metric, "product_id")
    values = products[column] if len(products) else pd.Series(dtype="float64")
    overall = _aggregate(values, args.metric) if len(products) else None

    rows: list[dict[str, Any]] = []
    if args.group_by != "none" and len(products):
        if args.group_by == "category":
            keys = products["leaf_category"]
        elif args.group_by == "brand":
            keys = products["brand"].replace("", "(no brand)")
        else:
            keys = products["price"].map(price_band)
        for group, part in products.groupby(keys, sort=True, dropna=True):
            value = _aggregate(part[column], args.metric)
            if value is not None:
                rows.append({"group": str(group), "value": _round(value), "n_products": int(len(part))})
        descending = args.order == "desc"
        rows.sort(key=lambda r: r["group"])
        rows.sort(key=lambda r: r["value"], reverse=descending)
        rows = rows[: args.top_n]

    return {
        "metric": args.metric,
        "group_by": args.group_by,
        "filters": filters,
        "overall": _round(overall),
        "n_products": int(len(products)),
        "rows": rows,
    }
