"""Load and validate a catalog CSV in the raw Kaggle schema.

``load_catalog(path)`` returns a :class:`Catalog`: the cleaned frame (every raw row, duplicates kept, so the
discount model can group them) and one :class:`~data.schema.ProductRecord` per product_id (reviews merged).
Problems are collected for the whole file and raised together as one :class:`~core.errors.CatalogError`
naming each column and row; unknown extra columns are ignored.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from core.errors import CatalogError
from core.hashing import sha256_file, sha256_text
from data import cleaning
from data.schema import (CATEGORY_SEP, MAX_CATEGORY_LEVELS, RAW_COLUMNS, REQUIRED_COLUMNS, ProductRecord,
                         Review, category_levels)

log = logging.getLogger(__name__)
MAX_REPORTED_PROBLEMS = 20

CLEAN_COLUMNS: tuple[str, ...] = (
    "row", "product_id", "product_name", "brand", "category", "leaf_category", "category_depth",
    *[f"cat_{i}" for i in range(MAX_CATEGORY_LEVELS)],
    "discounted_price", "actual_price", "discount_percentage", "rating", "rating_count",
    "about_product", "review_title", "review_content",
)


@dataclass(frozen=True)
class Problem:
    row: int  # 1-based data row (the header is row 0)
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.reason}"


@dataclass
class Catalog:
    """A validated catalog. ``frame`` keeps every raw row; ``products`` has one record per product_id."""

    frame: pd.DataFrame
    source: str
    sha256: str
    _records: dict[str, ProductRecord] = field(default_factory=dict, repr=False)

    @cached_property
    def products(self) -> list[ProductRecord]:
        return list(self._records.values())

    def get(self, product_id: str) -> ProductRecord | None:
        return self._records.get(product_id)

    def __len__(self) -> int:
        return len(self._records)

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    def summary(self) -> dict[str, object]:
        f = self.frame
        return {
            "source": self.source,
            "sha256": self.sha256,
            "rows": int(len(f)),
            "products": len(self),
            "duplicate_rows": int(f["product_id"].duplicated().sum()),
            "top_categories": f.drop_duplicates("product_id")["cat_0"].value_counts().head(10).to_dict(),
            "missing_rating": int(f["rating"].isna().sum()),
            "missing_rating_count": int(f["rating_count"].isna().sum()),
        }


def read_raw_csv(path: str | Path) -> pd.DataFrame:
    """Read the CSV as strings (no type guessing). Raises CatalogError for unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"catalog file not found: {path}", path=str(path))
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"catalog {path} is not UTF-8 text: {exc.reason} at byte {exc.start}",
                           path=str(path)) from exc
    except (pd.errors.ParserError, csv.Error) as exc:
        raise CatalogError(f"catalog {path} is not a well-formed CSV: {exc}", path=str(path)) from exc
    except pd.errors.EmptyDataError as exc:
        raise CatalogError(f"catalog {path} is empty", path=str(path)) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def clean_frame(raw: pd.DataFrame, *, source: str = "<frame>") -> tuple[pd.DataFrame, dict[str, ProductRecord]]:
    """Validate and clean raw rows. Returns (clean frame, records by product_id) or raises CatalogError."""
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise CatalogError(
            f"catalog {source} lacks required column(s): {', '.join(missing)}",
            missing_columns=missing, source=source)
    if raw.empty:
        raise CatalogError(f"catalog {source} has no rows", source=source)
    raw = raw.copy()
    for col in RAW_COLUMNS:
        if col not in raw.columns:
            raw[col] = ""
    raw = raw[list(RAW_COLUMNS)].fillna("")

    problems: list[Problem] = []
    rows: list[dict[str, object]] = []
    records: dict[str, ProductRecord] = {}
    review_ids_seen: dict[str, set[str]] = {}

    def parse(fn, value, column: str, row: int, *args):
        try:
            return fn(value, *args), True
        except cleaning.CellError as exc:
            problems.append(Problem(row, column, str(value)[:80], str(exc)))
            return None, False

    for idx, r in enumerate(raw.itertuples(index=False), start=1):
        pid, ok1 = parse(cleaning.parse_required_text, r.product_id, "product_id", idx, "product_id")
        name, ok2 = parse(cleaning.parse_required_text, r.product_name, "product_name", idx, "product_name")
        path, ok3 = parse(cleaning.parse_category, r.category, "category", idx)
        actual, ok4 = parse(cleaning.parse_price, r.actual_price, "actual_price", idx)
        disc_price, ok5 = parse(lambda v: cleaning.parse_price(v, required=False), r.discounted_price,
                                "discounted_price", idx)
        pct, ok6 = parse(cleaning.parse_percentage, r.discount_percentage, "discount_percentage", idx)
        rating, ok7 = parse(cleaning.parse_rating, r.rating, "rating", idx)
        count, ok8 = parse(cleaning.parse_count, r.rating_count, "rating_count", idx)
        if not all((ok1, ok2, ok3, ok4, ok5, ok6, ok7, ok8)):
            continue
        brand = cleaning.extract_brand(name)
        levels = category_levels(path)
        rows.append({
            "row": idx, "product_id": pid, "product_name": name, "brand": brand,
            "category": CATEGORY_SEP.join(path), "leaf_category": path[-1], "category_depth": len(path),
            **{f"cat_{i}": levels[i] for i in range(MAX_CATEGORY_LEVELS)},
            "discounted_price": disc_price, "actual_price": actual, "discount_percentage": pct,
            "rating": rating, "rating_count": count,
            "about_product": str(r.about_product).strip(), "review_title": str(r.review_title).strip(),
            "review_content": str(r.review_content).strip(),
        })
        reviews = cleaning.parse_reviews(r.review_id, r.review_title, r.review_content, r.user_name)
        if pid in records:  # duplicate listing of a product: merge new reviews into the first record
            seen = review_ids_seen[pid]
            extra = tuple(rv for rv in reviews if rv.review_id not in seen)
            if extra:
                first = records[pid]
                records[pid] = _with_reviews(first, first.reviews + extra)
                seen.update(rv.review_id for rv in extra)
            continue
        review_ids_seen[pid] = {rv.review_id for rv in reviews}
        records[pid] = ProductRecord(
            product_id=pid, name=name, brand=brand, category_path=path, discounted_price=disc_price,
            actual_price=actual, discount_percentage=pct, rating=rating, rating_count=count,
            about=str(r.about_product).strip(), reviews=reviews, img_link=str(r.img_link).strip(),
            product_link=str(r.product_link).strip())

    if problems:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CatalogError(
            f"catalog {source} has {len(problems)} invalid cell(s): {shown}{more}",
            problems=[p.__dict__ for p in problems[:MAX_REPORTED_PROBLEMS]], source=source)
    frame = pd.DataFrame(rows, columns=list(CLEAN_COLUMNS))
    for col in ("discounted_price", "actual_price", "discount_percentage", "rating"):
        frame[col] = frame[col].astype("float64")
    frame["rating_count"] = frame["rating_count"].astype("Float64").astype("float64")
    return frame, records


def _with_reviews(record: ProductRecord, reviews: tuple[Review, ...]) -> ProductRecord:
    from dataclasses import replace
    return replace(record, reviews=reviews)


def load_catalog(path: str | Path) -> Catalog:
    """Read, validate and clean a catalog CSV in the raw schema."""
    path = Path(path)
    raw = read_raw_csv(path)
    frame, records = clean_frame(raw, source=str(path))
    catalog = Catalog(frame=frame, source=str(path), sha256=sha256_file(path), _records=records)
    log.info("loaded catalog %s: %d rows, %d products", path, catalog.n_rows, len(catalog))
    return catalog


def catalog_from_frame(raw: pd.DataFrame, *, source: str = "<frame>") -> Catalog:
    """Build a Catalog from an in-memory raw-schema frame (tests, uploads). Hash covers the CSV text."""
    frame, records = clean_frame(raw.astype(str), source=source)
    return Catalog(frame=frame, source=source, sha256=sha256_text(raw.to_csv(index=False)), _records=records)
