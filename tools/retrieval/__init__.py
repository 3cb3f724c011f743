"""Product retrieval (RAG layer): documents, offline embeddings, pickle-free FAISS index, hybrid search.

Public API (see docs/retrieval.md)::

    from tools.retrieval import load_product_search, make_search_tool
    search = load_product_search(artifact_dir / "index")          # ProductSearch
    search.search(SearchProductsArgs(query="earphones", max_price=700, sort_by="rating"))
    tool = make_search_tool(search)                                  # LangChain tool "search_products"
    retriever = search.as_retriever(top_k=5)                         # LangChain BaseRetriever

Build/refresh the index with ``tools.retrieval.build.ensure_index`` (or ``python -m scripts.build_artifacts``).
Nothing heavy is imported here; the names below are loaded on first use.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ProductSearch", "load_product_search", "make_search_tool", "ensure_index", "RetrievalSettings"]

_LAZY = {
    "ProductSearch": "tools.retrieval.search",
    "load_product_search": "tools.retrieval.search",
    "make_search_tool": "tools.retrieval.lc",
    "ensure_index": "tools.retrieval.build",
    "RetrievalSettings": "tools.retrieval.settings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
