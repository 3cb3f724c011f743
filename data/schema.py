"""The raw Kaggle "Amazon Sales Dataset" schema and the typed product record used downstream."""
from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 1

RAW_COLUMNS: tuple[str, ...] = (
    "product_id", "product_name", "category", "discounted_price", "actual_price", "discount_percentage",
    "rating", "rating_count", "about_product", "user_id", "user_name", "review_id", "review_title",
    "review_content", "img_link", "product_link",
)
# Columns without which the catalog is unusable. The rest are optional and filled with "" when absent.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "product_id", "product_name", "category", "discounted_price", "actual_price", "discount_percentage",
    "rating", "rating_count",
)
CATEGORY_SEP = "|"
MAX_CATEGORY_LEVELS = 4  # levels kept as model features (deeper paths are truncated, shallow ones padded)


@dataclass(frozen=True, slots=True)
class Review:
    review_id: str
    title: str
    content: str
    user_name: str = ""


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """One product, cleaned. Prices in rupees, discount in percent (0-100), rating 0-5 or None."""

    product_id: str
    name: str
    brand: str
    category_path: tuple[str, ...]
    discounted_price: float | None
    actual_price: float
    discount_percentage: float | None
    rating: float | None
    rating_count: int | None
    about: str = ""
    reviews: tuple[Review, ...] = field(default_factory=tuple)
    img_link: str = ""
    product_link: str = ""

    @property
    def category(self) -> str:
        """The full ``|``-joined category path."""
        return CATEGORY_SEP.join(self.category_path)

    @property
    def leaf_category(self) -> str:
        return self.category_path[-1] if self.category_path else ""

    @property
    def top_category(self) -> str:
        return self.category_path[0] if self.category_path else ""

    def category_levels(self, n: int = MAX_CATEGORY_LEVELS) -> tuple[str, ...]:
        return category_levels(self.category_path, n)


def category_levels(path: tuple[str, ...] | list[str], n: int = MAX_CATEGORY_LEVELS) -> tuple[str, ...]:
    """First ``n`` levels of a category path, padded with "" (the leaf is reported separately)."""
    levels = list(path[:n])
    return tuple(levels + [""] * (n - len(levels)))
