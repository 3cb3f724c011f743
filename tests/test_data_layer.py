"""Catalog loading and cleaning, with edge cases taken from the real file's quirks."""
from __future__ import annotations

import pandas as pd
import pytest

from core.errors import CatalogError
from data import cleaning
from data.catalog import catalog_from_frame, load_catalog
from data.demo import generate_demo_rows, indian_grouping, write_demo_catalog
from data.schema import RAW_COLUMNS, REQUIRED_COLUMNS


@pytest.mark.parametrize("raw,expected", [("₹1,099", 1099.0), ("₹399", 399.0), ("1,099.50", 1099.5), ("₹ 79", 79.0)])
def test_parse_price(raw, expected):
    assert cleaning.parse_price(raw) == expected


@pytest.mark.parametrize("raw", ["", "abc", "₹-5", "₹0"])
def test_parse_price_rejects(raw):
    with pytest.raises(cleaning.CellError):
        cleaning.parse_price(raw)


@pytest.mark.parametrize("raw,expected", [("24,269", 24269), ("1,79,691", 179691), ("7", 7), ("", None)])
def test_parse_count_handles_indian_grouping_and_empty(raw, expected):
    assert cleaning.parse_count(raw) == expected


@pytest.mark.parametrize("raw,expected", [("4.2", 4.2), ("4", 4.0), ("|", None), ("", None)])
def test_parse_rating_quirks(raw, expected):
    assert cleaning.parse_rating(raw) == expected


@pytest.mark.parametrize("raw", ["5.5", "great", "-1"])
def test_parse_rating_rejects(raw):
    with pytest.raises(cleaning.CellError):
        cleaning.parse_rating(raw)


def test_parse_percentage_and_category():
    assert cleaning.parse_percentage("64%") == 64.0
    assert cleaning.parse_category("A|B| |C") == ("A", "B", "C")
    with pytest.raises(cleaning.CellError):
        cleaning.parse_percentage("164%")


def test_reviews_split_on_unspaced_commas():
    reviews = cleaning.parse_reviews("R1,R2", "Good, really,Bad", "Works well, fast.,Broke in a week",
                                     "Asha,Ravi")
    assert [r.review_id for r in reviews] == ["R1", "R2"]
    assert reviews[1].content == "Broke in a week"
    assert reviews[0].content == "Works well, fast."


def test_brand_heuristic():
    assert cleaning.extract_brand("boAt Rockerz 450 Bluetooth") == "boAt"
    assert cleaning.extract_brand("The Wayona Cable") == "Wayona"


def _row(**over):
    base = {c: "" for c in RAW_COLUMNS}
    base.update(product_id="P1", product_name="Zentro Cable", category="A|B|C", discounted_price="₹399",
                actual_price="₹1,099", discount_percentage="64%", rating="4.2", rating_count="24,269")
    base.update(over)
    return base


def test_malformed_cells_are_reported_with_column_and_row():
    frame = pd.DataFrame([_row(), _row(product_id="P2", actual_price="lots"), _row(product_id="P3", rating="x")])
    with pytest.raises(CatalogError) as err:
        catalog_from_frame(frame)
    problems = err.value.details["problems"]
    assert {(p["row"], p["column"]) for p in problems} == {(2, "actual_price"), (3, "rating")}
    assert "row 2, column 'actual_price'" in str(err.value)


def test_missing_required_columns_are_listed_and_extra_ignored():
    frame = pd.DataFrame([_row()]).drop(columns=["rating", "actual_price"]).assign(extra_col="x")
    with pytest.raises(CatalogError) as err:
        catalog_from_frame(frame)
    assert set(err.value.details["missing_columns"]) == {"rating", "actual_price"}
    ok = catalog_from_frame(pd.DataFrame([_row()]).assign(extra_col="x"))
    assert "extra_col" not in ok.frame.columns


def test_duplicates_kept_in_frame_merged_in_records():
    frame = pd.DataFrame([_row(review_id="R1", review_content="Nice"),
                          _row(review_id="R2", review_content="Bad"), _row(product_id="P2")])
    catalog = catalog_from_frame(frame)
    assert catalog.n_rows == 3 and len(catalog) == 2
    assert [r.review_id for r in catalog.get("P1").reviews] == ["R1", "R2"]


def test_unreadable_files_give_domain_errors(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.csv")
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CatalogError):
        load_catalog(bad)


def test_demo_catalog_is_committed_deterministic_and_quirky(demo_catalog_path, tmp_path, demo_catalog):
    regenerated = write_demo_catalog(tmp_path / "demo.csv")
    assert regenerated.read_bytes() == demo_catalog_path.read_bytes(), "run `python -m data demo` and commit"
    assert 250 <= len(demo_catalog) <= 500
    assert demo_catalog.n_rows > len(demo_catalog)  # repeated product_ids
    assert demo_catalog.frame["rating"].isna().sum() >= 1
    assert demo_catalog.frame["rating_count"].isna().sum() >= 1
    assert demo_catalog.frame["cat_0"].nunique() >= 3
    raw = pd.read_csv(demo_catalog_path, dtype=str, keep_default_na=False)
    assert list(raw.columns) == list(RAW_COLUMNS)
    assert raw["actual_price"].str.startswith("₹").all()
    assert raw["rating_count"].str.match(r"^\d{1,2},\d{2},\d{3}$").any()  # Indian grouping present


def test_indian_grouping():
    assert indian_grouping(179691) == "1,79,691"
    assert indian_grouping(999) == "999"
    assert indian_grouping(12345678) == "1,23,45,678"


def test_generator_is_seeded():
    assert generate_demo_rows(30, seed=1) == generate_demo_rows(30, seed=1)
    assert generate_demo_rows(30, seed=1) != generate_demo_rows(30, seed=2)


@pytest.mark.real_data
def test_real_catalog_loads_with_known_quirks(real_catalog_path):
    catalog = load_catalog(real_catalog_path)
    assert catalog.n_rows == 1465 and len(catalog) == 1351
    assert catalog.frame["rating"].isna().sum() == 1
    assert catalog.frame["rating_count"].isna().sum() == 2
    assert catalog.frame["rating_count"].max() > 100_000
    assert set(REQUIRED_COLUMNS) <= set(pd.read_csv(real_catalog_path, nrows=1).columns)
