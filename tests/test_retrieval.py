"""Retrieval index and hybrid search with the real embedding model on small slices of the demo catalog.

One index (30 demo products, a few seconds to embed) is built per session; rebuild tests use 3 products.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from core.errors import ArtifactError, ValidationError
from data.catalog import load_catalog, read_raw_csv
from eval.retrieval_eval import satisfies
from tools.retrieval.build import INDEX_DIRNAME, ensure_index
from tools.retrieval.documents import build_documents
from tools.retrieval.embeddings import default_model_path, resolve_model
from tools.retrieval.index import CHUNKS_FILE, FAISS_FILE, load_index, read_manifest
from tools.retrieval.lc import make_search_tool
from tools.retrieval.search import load_product_search, variant_key
from tools.retrieval.settings import RetrievalSettings
from tools.specs import MAX_QUERY_CHARS, SearchProductsArgs

RESULT_KEYS = {"product_id", "product_name", "category", "discounted_price", "actual_price",
               "discount_percentage", "rating", "rating_count", "score", "snippet"}


def _slice_catalog(src: Path, dest: Path, n_products: int) -> Path:
    raw = read_raw_csv(src)
    keep = list(dict.fromkeys(raw["product_id"]))[:n_products]
    raw[raw["product_id"].isin(keep)].to_csv(dest, index=False)
    return dest


@pytest.fixture(scope="session")
def small_catalog_path(demo_catalog_path, tmp_path_factory) -> Path:
    return _slice_catalog(demo_catalog_path, tmp_path_factory.mktemp("cat") / "small.csv", 30)


@pytest.fixture(scope="session")
def built(small_catalog_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("art")
    status = ensure_index(small_catalog_path, out, False, RetrievalSettings())
    return out / INDEX_DIRNAME, status


@pytest.fixture(scope="session")
def search(built, small_catalog_path):
    return load_product_search(built[0], load_catalog(small_catalog_path), RetrievalSettings())


@pytest.fixture(scope="session")
def small_catalog(small_catalog_path):
    return load_catalog(small_catalog_path)


def test_build_save_load_round_trip(built, search, small_catalog):
    index_dir, status = built
    assert status.startswith("built")
    assert {p.name for p in index_dir.iterdir()} == {FAISS_FILE, CHUNKS_FILE, "products.json", "manifest.json"}
    manifest = read_manifest(index_dir)
    meta = manifest.metadata
    metas, chunks = build_documents(small_catalog.products)
    assert manifest.data_sha256 == small_catalog.sha256
    assert meta["embedding_model"] == resolve_model("").model_id
    assert meta["dimension"] == 384 and meta["doc_count"] == len(chunks) and meta["product_count"] == 30
    assert meta["code_version"]
    loaded = load_index(index_dir)
    assert [c.to_dict() for c in loaded.chunks] == [c.to_dict() for c in chunks]
    assert [m.to_dict() for m in loaded.products] == [m.to_dict() for m in metas]
    assert loaded.faiss_index.ntotal == len(chunks)
    # stored vectors are the (unit-length) embeddings of the stored texts
    for i in (0, len(chunks) // 2, len(chunks) - 1):
        stored = loaded.faiss_index.reconstruct(i)
        fresh = search.embedder.embed_documents([chunks[i].text])[0]
        assert abs(np.linalg.norm(stored) - 1) < 1e-4
        assert float(stored @ fresh) > 0.999
    # no pickle anywhere in the folder
    for path in index_dir.iterdir():
        assert not path.read_bytes().startswith(b"\x80")


def test_ensure_index_reuses_then_rebuilds_on_catalog_model_or_code_change(demo_catalog_path, tmp_path,
                                                                           monkeypatch):
    catalog = _slice_catalog(demo_catalog_path, tmp_path / "tiny.csv", 3)
    out = tmp_path / "art"
    assert ensure_index(catalog, out, False).startswith("built")
    assert ensure_index(catalog, out, False).startswith("up to date")
    assert ensure_index(catalog, out, True).startswith("built (forced)")

    chunks = out / INDEX_DIRNAME / CHUNKS_FILE  # tampered -> refused on load, rebuilt by ensure_index
    chunks.write_text(chunks.read_text().replace("Brand", "Bland", 1))
    with pytest.raises(ArtifactError, match="checksum"):
        load_index(out / INDEX_DIRNAME)
    status = ensure_index(catalog, out, False)
    assert status.startswith("built") and "checksum" in status
    load_index(out / INDEX_DIRNAME)

    raw = read_raw_csv(catalog)
    raw.loc[0, "rating"] = "1.1"
    raw.to_csv(catalog, index=False)
    assert ensure_index(catalog, out, False).startswith("built (catalog changed)")
    assert load_index(out / INDEX_DIRNAME).products[0].rating == 1.1 or \
        any(p.rating == 1.1 for p in load_index(out / INDEX_DIRNAME).products)

    import tools.retrieval.build as build_module
    monkeypatch.setattr(build_module, "CODE_VERSION", "something-else")
    assert ensure_index(catalog, out, False).startswith("built (indexing code changed)")
    monkeypatch.undo()

    # "another" model: the same weights under another name (a link) -> other model id -> rebuild
    link = tmp_path / "other-minilm"
    os.symlink(default_model_path(), link)
    other = RetrievalSettings(embedding_model=str(link))
    assert ensure_index(catalog, out, False, other).startswith("built (embedding model changed")
    assert read_manifest(out / INDEX_DIRNAME).metadata["embedding_model"] == "local:model"
    with pytest.raises(ArtifactError, match="embedding model"):
        load_product_search(out / INDEX_DIRNAME, settings=RetrievalSettings())


def test_index_from_another_catalog_version_is_refused_on_load(built, demo_catalog):
    with pytest.raises(ArtifactError, match="another catalog"):
        load_product_search(built[0], demo_catalog)


@pytest.mark.parametrize("victim, damage", [
    (CHUNKS_FILE, lambda p: p.write_text(p.read_text().replace("Brand", "Bland", 1))),
    (FAISS_FILE, lambda p: p.write_bytes(p.read_bytes()[:-64])),
    ("products.json", lambda p: p.unlink()),
    ("manifest.json", lambda p: p.write_text("{not json")),
])
def test_tampered_index_is_refused(built, tmp_path, victim, damage):
    copy = tmp_path / "art" / INDEX_DIRNAME
    shutil.copytree(built[0], copy)
    damage(copy / victim)
    with pytest.raises(ArtifactError):
        load_product_search(copy)


CATEGORIES = ["Electronics", "smart watches", "USBCables", "Home&Kitchen", "kettle", "In-Ear",
              "Computers&Accessories|Accessories", "mixer", "nothing-like-this"]
QUERIES = ["wireless earphones", "electric kettle", "fast charging cable", "smartwatch with calling", "pens"]


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.sampled_from(QUERIES),
       max_price=st.one_of(st.none(), st.sampled_from([150.0, 500.0, 700.0, 1500.0, 5000.0])),
       min_price=st.one_of(st.none(), st.sampled_from([0.0, 300.0, 800.0, 2000.0])),
       min_rating=st.one_of(st.none(), st.sampled_from([0.0, 3.5, 4.0, 4.3, 4.8])),
       min_rating_count=st.one_of(st.none(), st.sampled_from([0, 100, 1000, 20000])),
       category=st.one_of(st.none(), st.sampled_from(CATEGORIES)),
       sort_by=st.sampled_from(["relevance", "rating", "price_low", "price_high", "discount"]),
       top_k=st.integers(1, 20))
def test_filters_are_honoured_exactly(search, small_catalog, query, max_price, min_price, min_rating,
                                      min_rating_count, category, sort_by, top_k):
    args = dict(query=query, max_price=max_price, min_price=min_price, min_rating=min_rating,
                min_rating_count=min_rating_count, category=category, sort_by=sort_by, top_k=top_k)
    out = search.search(SearchProductsArgs(**args))
    by_id = {p.product_id: p for p in small_catalog.products}
    feasible = {p.product_id for p in small_catalog.products if satisfies(p, args)}
    ids = [r["product_id"] for r in out["results"]]
    assert set(ids) <= feasible, "a result violates the filters"
    assert len(ids) == len(set(ids)) <= top_k
    assert all(set(r) == RESULT_KEYS for r in out["results"])
    assert len({variant_key(by_id[i].name) for i in ids}) == len(ids), "colour variants are collapsed"
    assert len(ids) == min(top_k, out["total_matches"])
    assert out["total_matches"] <= min(len(feasible), search.settings.candidate_pool)
    best = search.search({"query": query, "top_k": 1})["results"][0]["product_id"]
    if best in feasible:  # the catalog's best match passes the filters: never an empty answer
        assert ids
    if sort_by == "relevance":
        scores = [r["score"] for r in out["results"]]
        assert scores == sorted(scores, reverse=True)
    prices = [by_id[i].discounted_price or by_id[i].actual_price for i in ids]
    if sort_by == "price_low":
        assert prices == sorted(prices)
    if sort_by == "price_high":
        assert prices == sorted(prices, reverse=True)
    if sort_by == "rating":
        ratings = [by_id[i].rating or -1 for i in ids]
        assert ratings == sorted(ratings, reverse=True)


def test_filters_that_exclude_every_on_topic_product_give_an_empty_answer(search):
    out = search.search({"query": "electric kettle", "category": "Mice", "sort_by": "rating"})
    assert out == {"results": [], "total_matches": 0}
    assert search.search({"query": "electric kettle", "category": "Mice", "sort_by": "relevance"})["results"] == []


def test_rating_sort_stays_on_topic(search, small_catalog):
    out = search.search({"query": "earphones", "sort_by": "rating", "top_k": 10})
    leaves = [next(p for p in small_catalog.products if p.product_id == r["product_id"]).leaf_category
              for r in out["results"]]
    assert leaves and sum(leaf in ("In-Ear", "Over-Ear") for leaf in leaves) / len(leaves) >= 0.8


def test_every_product_is_found_by_its_own_name(search, small_catalog):
    for product in small_catalog.products[:8]:
        ids = [r["product_id"] for r in search.search({"query": product.name[:120]})["results"]]
        assert product.product_id in ids[:3], product.name


@pytest.mark.parametrize("query, fragment", [("", "empty"), ("   ", "empty"),
                                             ("q" * (MAX_QUERY_CHARS + 1), "too long")])
def test_empty_or_overlong_query_gets_a_clear_error(search, query, fragment):
    with pytest.raises(ValidationError, match=fragment):
        search.search({"query": query})


def test_langchain_tool_returns_the_documented_shape(search):
    tool = make_search_tool(search)
    assert tool.name == "search_products"
    assert tool.args_schema is SearchProductsArgs
    assert "filter" in tool.description and "snippet" in tool.description
    out = tool.invoke({"query": "electric kettle", "max_price": 3000, "top_k": 3})
    assert set(out) == {"results", "total_matches"}
    assert 1 <= len(out["results"]) <= 3 and isinstance(out["total_matches"], int)
    for r in out["results"]:
        assert set(r) == RESULT_KEYS
        assert r["discounted_price"] <= 3000
        assert isinstance(r["score"], float) and 0 < r["score"] <= 1 and isinstance(r["snippet"], str)
    json.dumps(out)  # JSON-able as is
    with pytest.raises(Exception, match="query"):
        tool.invoke({"query": ""})


def test_langchain_retriever_and_vectorstore(search):
    docs = search.as_retriever(top_k=4, max_price=2000).invoke("smart watch")
    assert 1 <= len(docs) <= 4
    assert all(d.metadata["discounted_price"] <= 2000 and d.metadata["product_id"] for d in docs)
    hits = search.vectorstore.similarity_search("electric kettle", k=3)
    assert len(hits) == 3 and all("product_id" in h.metadata and h.page_content for h in hits)


def test_query_embeddings_are_cached(search):
    search.search({"query": "a query for the cache test"})
    hits = search.embedder.hits
    search.search({"query": "A query for the   cache test"})
    assert search.embedder.hits == hits + 1
