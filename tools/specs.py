"""Argument contracts of the agent-callable tools: one pydantic model per tool.

These models are THE contract shared by the tool implementations (``tools/``), the agent's tool-call parser
(``agent/``), the fine-tuning dataset builder (``finetune/``) and the REST layer. Change them in one place.
Tool functions return plain JSON-able dicts (documented on each model) so results can be rendered to the LLM
(``agent.protocol.render_tool_result``), returned over REST and logged without custom encoders.
"""
from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_QUERY_CHARS = 500


def literal_choices(annotation: Any) -> tuple[str, ...]:
    """The allowed strings of a ``Literal`` field (also inside ``Optional``), else ()."""
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(a for a in typing.get_args(annotation) if isinstance(a, str))
    return tuple(c for arg in typing.get_args(annotation) for c in literal_choices(arg))


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SearchProductsArgs(_Args):
    """Find catalog products matching a free-text description, with optional structured filters.

    Returns ``{"results": [{"product_id", "product_name", "category", "discounted_price", "actual_price",
    "discount_percentage", "rating", "rating_count", "score", "snippet"}], "total_matches": int}``
    (one entry per product, best first).
    """

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS,
                       description="What the user is looking for, in their words (product, brand, feature, complaint).")
    max_price: float | None = Field(default=None, gt=0, description="Only products whose discounted price is at most this (₹).")
    min_price: float | None = Field(default=None, ge=0, description="Only products whose discounted price is at least this (₹).")
    min_rating: float | None = Field(default=None, ge=0, le=5, description="Only products rated at least this (0-5).")
    min_rating_count: int | None = Field(default=None, ge=0, description="Only products with at least this many ratings.")
    category: str | None = Field(default=None, description="Only products whose category path contains this text.")
    sort_by: Literal["relevance", "rating", "price_low", "price_high", "discount"] = Field(
        default="relevance", description="Order of results within the filtered set.")
    top_k: int = Field(default=5, ge=1, le=20, description="How many products to return.")


class PredictDiscountArgs(_Args):
    """Estimate the discount percentage a product would carry, from its category, list price, rating and count.

    Returns ``{"predicted_discount_percentage": float, "model_version": str}``.
    """

    category: str = Field(min_length=1, description="Category path (A|B|C) or a leaf category name, e.g. 'SmartWatches'.")
    actual_price: float = Field(gt=0, allow_inf_nan=False, description="List (undiscounted) price in ₹.")
    rating: float = Field(ge=0, le=5, allow_inf_nan=False, description="Average star rating, 0-5.")
    rating_count: int = Field(ge=0, description="Number of ratings.")
    product_name: str | None = Field(default=None, description="Optional product name (adds brand/text signal).")
    about_product: str | None = Field(default=None, description="Optional product description.")


class ExplainDiscountArgs(PredictDiscountArgs):
    """Explain a discount estimate: the top feature contributions (TreeSHAP) that sum, with the base value, to it.

    Returns ``{"predicted_discount_percentage": float, "base_value": float, "model_version": str,
    "contributions": [{"feature": str, "value": float}]}`` (top 5 by absolute value).
    """


class CatalogStatsArgs(_Args):
    """Aggregate statistics over the loaded catalog (computed with pandas, one row per product).

    Returns ``{"metric": str, "group_by": str, "filters": {...}, "overall": float, "n_products": int,
    "rows": [{"group": str, "value": float, "n_products": int}]}`` (rows sorted by value, at most top_n).
    """

    metric: Literal["count", "avg_discount", "avg_rating", "avg_price", "max_discount", "total_ratings"] = Field(
        description="What to compute per group.")
    group_by: Literal["none", "category", "brand", "price_band"] = Field(
        default="none", description="How to group products (category = leaf category).")
    category: str | None = Field(default=None, description="Only products whose category path contains this text.")
    brand: str | None = Field(default=None, description="Only products of this brand (case-insensitive).")
    top_n: int = Field(default=5, ge=1, le=50, description="How many groups to return.")
    order: Literal["desc", "asc"] = Field(default="desc", description="Sort groups by value, descending or ascending.")


TOOL_ARGS: dict[str, type[_Args]] = {
    "search_products": SearchProductsArgs,
    "predict_discount": PredictDiscountArgs,
    "explain_discount": ExplainDiscountArgs,
    "catalog_stats": CatalogStatsArgs,
}
