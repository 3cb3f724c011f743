"""LangChain adapters: a ``BaseRetriever`` over hybrid search and the ``search_products`` tool."""
from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import ConfigDict, Field

from tools.specs import SearchProductsArgs

SEARCH_TOOL_DESCRIPTION = (
    "Find catalog products matching a free-text description (product, brand, feature, or what buyers say), "
    "optionally filtered by price (discounted price, ₹), minimum rating, minimum number of ratings and "
    "category, and sorted by relevance, rating, price or discount. Returns {results: [{product_id, "
    "product_name, category, discounted_price, actual_price, discount_percentage, rating, rating_count, "
    "score, snippet}], total_matches}: one entry per product, best first; every result satisfies the filters."
)


class ProductRetriever(BaseRetriever):
    """LangChain retriever over :class:`~tools.retrieval.search.ProductSearch` (one Document per product:
    ``page_content`` is the matching snippet, ``metadata`` the full result row)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search: Any
    defaults: dict[str, Any] = Field(default_factory=dict)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun
                                ) -> list[Document]:
        out = self.search.search({**self.defaults, "query": query})
        return [Document(page_content=r["snippet"] or r["product_name"], id=r["product_id"], metadata=dict(r))
                for r in out["results"]]


def make_search_tool(search: Any) -> BaseTool:
    """The agent tool ``search_products`` (typed args = :class:`tools.specs.SearchProductsArgs`).

    Invoking it returns the result dict of :meth:`ProductSearch.search`; bad arguments raise
    :class:`core.errors.ValidationError` (empty/over-long query) or pydantic's error (schema violations).
    """

    def search_products(**kwargs: Any) -> dict[str, Any]:
        """Find catalog products matching a description, with optional price/rating/category filters."""
        return search.search(kwargs)

    return StructuredTool.from_function(func=search_products, name="search_products",
                                        description=SEARCH_TOOL_DESCRIPTION, args_schema=SearchProductsArgs)
