"""Retrieval quality on whole catalogs (slow: the demo index embeds ~960 chunks; the real catalog is read)."""
from __future__ import annotations

import numpy as np
import pytest

from data.catalog import load_catalog
from eval.queries import IDENTIFICATION_KINDS, QueryBuilder
from eval.retrieval_eval import evaluate_filters, evaluate_ranking
from tools.retrieval.bm25 import BM25Index
from tools.retrieval.build import INDEX_DIRNAME, ensure_index
from tools.retrieval.documents import build_documents
from tools.retrieval.search import load_product_search
from tools.retrieval.settings import RetrievalSettings

pytestmark = pytest.mark.slow

# hand-written paraphrases of demo products (the demo catalog is generated deterministically and committed)
PARAPHRASES = [
    ("penmark fineliner pen set of 20 with 0.5 mm tip", "B0CEY5NTCR"),
    ("auralis plus 950 smart watch in rose gold that can take calls", "B05PFZBLUL"),
    ("lumetra pro 80 hd ready television 43 inch", "B0LKVM8ZBX"),
    ("sonique x 450 wired earbuds with microphone", "B0U8W0SDJB"),
    ("heatwave lite 25 room heater 2000 watt", "B0BGSF12NB"),
    ("red grindwell neo 95 mixie with a whisk", "B0D2E6X264"),
]


@pytest.fixture(scope="module")
def demo_search(demo_catalog_path, demo_catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-art")
    ensure_index(demo_catalog_path, out, False, RetrievalSettings())
    return load_product_search(out / INDEX_DIRNAME, demo_catalog, RetrievalSettings())


@pytest.mark.parametrize("query, product_id", PARAPHRASES)
def test_known_demo_products_are_found_by_paraphrase(demo_search, query, product_id):
    ids = [r["product_id"] for r in demo_search.search({"query": query, "top_k": 5})["results"]]
    assert product_id in ids, (query, ids)


def test_best_rated_earphones_under_700_are_earphones_sorted_by_rating(demo_search, demo_catalog):
    out = demo_search.search({"query": "best rated earphones", "max_price": 700, "sort_by": "rating", "top_k": 5})
    products = [demo_catalog.get(r["product_id"]) for r in out["results"]]
    assert products and all(p.discounted_price <= 700 for p in products)
    assert sum(p.leaf_category in ("In-Ear", "Over-Ear") for p in products) / len(products) >= 0.8
    ratings = [p.rating for p in products]
    assert ratings == sorted(ratings, reverse=True)


def test_generated_identification_queries_meet_the_goal_on_the_demo_catalog(demo_search, demo_catalog):
    queries = QueryBuilder(demo_catalog.products, seed=3).build(per_kind=40, kinds=IDENTIFICATION_KINDS)
    report = evaluate_ranking(demo_search, queries, modes=("hybrid",), progress=False)
    strict = report["metrics"]["hybrid"]["identification"]["strict"]
    assert strict["recall@5"] >= 0.95 and strict["mrr"] >= 0.8, strict


def test_generated_filter_queries_are_always_satisfied(demo_search, demo_catalog):
    queries = QueryBuilder(demo_catalog.products, seed=4).filter_queries(60)
    report = evaluate_filters(demo_search, demo_catalog.products, queries, progress=False)
    assert report["results"] > 0
    assert report["constraint_satisfaction"] == 1.0, report["violations"]
    assert report["correctly_sorted_rate"] == 1.0
    assert report["on_topic_rate"] >= 0.7


@pytest.mark.real_data
def test_real_catalog_documents_and_bm25_identify_products(real_catalog_path):
    catalog = load_catalog(real_catalog_path)
    metas, chunks = build_documents(catalog.products)
    assert len(metas) == len(catalog) and {c.product_id for c in chunks} == {m.product_id for m in metas}
    assert max(len(c.text) for c in chunks if c.kind in ("about", "review")) <= 700
    bm25 = BM25Index([c.text for c in chunks])
    owner = np.array([c.product_index for c in chunks])
    starts = np.searchsorted(owner, np.arange(len(metas)))
    queries = QueryBuilder(catalog.products, seed=11).build(per_kind=25, kinds=IDENTIFICATION_KINDS)
    hits = 0
    for q in queries:
        per_product = np.maximum.reduceat(bm25.scores(q.text), starts)
        top5 = {metas[i].product_id for i in np.argsort(-per_product, kind="stable")[:5]}
        hits += q.target in top5 or bool(top5 & q.also_ok)
    assert hits / len(queries) >= 0.9
