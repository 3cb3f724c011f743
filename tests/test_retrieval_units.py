"""Retrieval pieces that need no embedding model: chunking, BM25, snippets, query builder, validation."""
from __future__ import annotations

import pytest

from core.errors import ValidationError
from data.schema import ProductRecord, Review
from eval.queries import QueryBuilder, base_name, name_head
from tools.retrieval.bm25 import BM25Index, stem, tokenize
from tools.retrieval.documents import CHUNK_CHARS, Chunk, build_documents, humanize_category, product_chunks
from tools.retrieval.search import make_snippet, validate_args, variant_key
from tools.specs import MAX_QUERY_CHARS


def _record(pid: str = "B000000001", n_reviews: int = 3, review_len: int = 40, about: str = "Fast charging|Braided") -> ProductRecord:
    words = " ".join(f"word{i}." for i in range(review_len))
    reviews = tuple(Review(f"R{i}", f"Title {i}", f"Review {i} says {words}") for i in range(n_reviews))
    return ProductRecord(product_id=pid, name="Wirefy Pro 50 Braided USB Cable, Type-C (Black)", brand="Wirefy",
                         category_path=("Computers&Accessories", "Cables", "USBCables"), discounted_price=399.0,
                         actual_price=1099.0, discount_percentage=64.0, rating=4.2, rating_count=24269,
                         about=about, reviews=reviews)


def test_profile_chunk_carries_name_brand_category_prices_and_about():
    chunks = product_chunks(_record(), 0)
    title, profile = chunks[0], chunks[1]
    assert title.kind == "title" and title.text == "Wirefy Pro 50 Braided USB Cable, Type-C (Black). Wirefy USB Cables."
    assert profile.kind == "profile" and profile.chunk_id.endswith(":p")
    for text in ("Wirefy Pro 50 Braided USB Cable", "Brand: Wirefy", "USB Cables", "₹399", "₹1,099", "64% off",
                 "4.2/5", "24,269 ratings", "Fast charging", "Braided"):
        assert text in profile.text


def test_long_reviews_are_split_into_bounded_chunks_that_cover_every_review():
    record = _record(n_reviews=12, review_len=400)  # ~12 x 3.5k chars, like the 18k-char products
    chunks = product_chunks(record, 7)
    reviews = [c for c in chunks if c.kind == "review"]
    assert len(reviews) > 12
    assert all(len(c.text) <= CHUNK_CHARS for c in chunks if c.kind not in ("title", "profile"))
    assert all(c.product_index == 7 and c.product_id == record.product_id for c in chunks)
    assert all(c.text.startswith("Wirefy Pro 50") for c in reviews)  # header names the product
    joined = " ".join(c.text for c in reviews)
    for i in range(12):
        assert f"Review {i} says" in joined
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_build_documents_groups_chunks_by_product_in_order():
    metas, chunks = build_documents([_record("A"), _record("B", about="")])
    assert [m.product_id for m in metas] == ["A", "B"]
    assert [c.product_index for c in chunks] == sorted(c.product_index for c in chunks)
    assert metas[1].price == 399.0 and metas[0].category_levels[2] == "USBCables"


def test_variant_key_ignores_trailing_colour_part():
    assert variant_key("Fire-Boltt Ninja Smart Watch (Black)") == variant_key("Fire-Boltt  Ninja smart watch (Gold)")
    assert variant_key("Fire-Boltt Ninja Smart Watch (Black)") != variant_key("Fire-Boltt Ninja 2 Smart Watch")


def test_humanize_category():
    assert humanize_category("USBCables") == "USB Cables"
    assert humanize_category("Home&Kitchen") == "Home & Kitchen"
    assert humanize_category("SmartWatches") == "Smart Watches"


def test_tokenizer_stems_plurals_and_drops_stop_words():
    assert tokenize("The Cables for iPhones") == ["cable", "iphone"]
    assert stem("batteries") == "battery" and stem("s23") == "s23" and stem("glass") == "glass"


def test_bm25_ranks_matching_doc_first_and_corrects_typos():
    texts = ["braided usb cable type c", "electric kettle stainless steel", "wireless earphones with mic",
             "usb wall charger 20w"]
    bm25 = BM25Index(texts)
    assert bm25.scores("stainless kettle").argmax() == 1
    assert bm25.correct(stem("earphnoes")) == "earphone"  # transposition
    assert bm25.correct("kettel") == "kettle"
    assert bm25.scores("wireles earphones").argmax() == 2  # deletion typo
    assert not bm25.scores("zzzz qqqq").any()


def test_snippet_picks_the_sentence_sharing_most_query_words():
    chunk = Chunk("X:r0", 0, "X", "review",
                  "Wirefy Pro — buyers say: Good product. The cable stopped charging after a week. Fast delivery.")
    snippet = make_snippet(chunk, "cable stopped charging")
    assert snippet == "Buyers say: The cable stopped charging after a week."
    assert len(make_snippet(Chunk("X:a0", 0, "X", "about", "H — about: " + "long " * 200), "x")) <= 241


@pytest.mark.parametrize("args, fragment", [
    ({"query": ""}, "empty"),
    ({"query": "   "}, "empty"),
    ({"query": "x" * (MAX_QUERY_CHARS + 1)}, "too long"),
    ({"query": "?!?"}, "no letters"),
    ({}, "required"),
    ({"query": "cable", "top_k": 0}, "top_k"),
    ({"query": "cable", "sort_by": "popularity"}, "sort_by"),
    ({"query": "cable", "max_price": -3}, "max_price"),
])
def test_invalid_search_arguments_raise_a_clear_validation_error(args, fragment):
    with pytest.raises(ValidationError) as info:
        validate_args(args)
    assert fragment in str(info.value)
    assert info.value.invalid_fields or info.value.required_fields


def test_query_builder_is_deterministic_and_targets_real_products(demo_catalog):
    a = QueryBuilder(demo_catalog.products, seed=5).build(per_kind=10)
    b = QueryBuilder(demo_catalog.products, seed=5).build(per_kind=10)
    assert [(q.text, q.target) for q in a] == [(q.text, q.target) for q in b]
    ids = {p.product_id for p in demo_catalog.products}
    assert all(q.target in ids and q.text for q in a)
    assert {q.kind for q in a} >= {"name", "attributes", "typo", "complaint"}


def test_base_name_and_name_head():
    assert base_name("Wayona Cable (3 FT, Grey)") == base_name("Wayona  cable (3 FT, Black)") == "wayona cable"
    assert name_head("boAt Rockerz 255 Pro+ Bluetooth Earphones with Mic, 40H (Black)") == \
        "boAt Rockerz 255 Pro+ Bluetooth Earphones"
