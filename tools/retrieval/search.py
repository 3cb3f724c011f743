"""Hybrid product search: dense (FAISS) + BM25 fused by reciprocal rank, exact filters, per-product results.

How a query is answered (:meth:`ProductSearch.search`):

1. **Filters first, exactly.** ``max_price``/``min_price`` (on the discounted price, or the list price where a
   product has none), ``min_rating``, ``min_rating_count`` and ``category`` (case-insensitive; matches the
   full ``A|B|C`` path text or any single level's name key, ``data.names``: case, spaces and punctuation
   ignored, "&" read as "and", so ``smart watches`` matches ``SmartWatches``) become a boolean mask over products. A product with an unknown rating (or count) never
   passes a rating (count) filter. Only products in the mask are ranked, so no result can violate a filter.
2. **Two rankings over every chunk.** Dense: cosine between the query embedding and every chunk (flat FAISS
   index, exhaustive). BM25: sparse Okapi BM25 over the same chunks. Each is reduced to products (the best
   chunk of a product stands for it).
3. **Reciprocal-rank fusion** of the two product rankings: ``sum w/(rrf_k + rank)`` (weights
   ``dense_weight``/``bm25_weight``); a product that BM25 does not match at all only gets the dense term. ``score`` is this sum divided by its maximum possible
   value (1.0 = first in both rankings).
4. **Relevance gate, then sorting.** Candidates are the ``candidate_pool`` most relevant filtered products,
   minus the clearly off-topic ones: dense similarity more than ``relevance_margin`` below the best match
   in the whole (unfiltered) catalog, unless BM25 scores them at least ``bm25_keep_ratio`` of the catalog's
   best. ``relevance`` keeps the fused order; ``rating``/``price_low``/``price_high``/``discount`` sort the
   candidates. "best rated earphones under ₹700" therefore sorts earphones, not cables, and when the
   filters leave no earphones the answer is empty rather than a list of cables.
5. **Variants collapsed** (``collapse_variants``): the real catalog lists some items several times (one
   product_id per colour, often with identical reviews); only the first listing of a name (ignoring a
   trailing "(colour, pack)") is returned.
6. **Snippet.** The product's best chunk (fused chunk-level rank), cut to the sentence/bullet sharing most
   words with the query.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import ValidationError as PydanticValidationError

from core.errors import ArtifactError, ValidationError
from data.catalog import Catalog
from data.names import CategoryFilter, name_key
from tools.retrieval.bm25 import BM25Index, tokenize
from tools.retrieval.documents import Chunk
from tools.retrieval.embeddings import QueryEmbedder, get_embedder, resolve_model
from tools.retrieval.index import RetrievalIndex, load_index
from tools.retrieval.settings import RetrievalSettings
from tools.specs import MAX_QUERY_CHARS, SearchProductsArgs

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
SNIPPET_CHARS = 240
_SEGMENTS = re.compile(r"(?<=[.!?])\s+|\s*\|\s*|\s+—\s+")
_HAS_WORD = re.compile(r"\w")
_VARIANT_SUFFIX = re.compile(r"\s*\([^()]*\)\s*$")


def variant_key(name: str) -> str:
    """Products listed several times as colour/pack variants share this key: the name without its final
    parenthesised part, lower-case alphanumerics only."""
    stripped = _VARIANT_SUFFIX.sub("", name) or name
    return re.sub(r"[^a-z0-9]+", " ", stripped.lower()).strip()


@dataclass(frozen=True)
class Ranking:
    """Products passing the filters in relevance order, with fused scores, dense similarity and best chunk."""

    order: np.ndarray       # product indices, most relevant first (only those with any signal)
    score: np.ndarray       # normalised fused score per product (0 where unranked)
    dense: np.ndarray       # best-chunk cosine per product (-inf where filtered out)
    bm25: np.ndarray        # best-chunk BM25 per product (0 where no match / filtered out)
    best_chunk: np.ndarray  # chunk index per product
    top_dense: float = 0.0  # best chunk cosine over the whole catalog (filters ignored)
    top_bm25: float = 0.0   # best chunk BM25 over the whole catalog (filters ignored)


def validate_args(args: SearchProductsArgs | Mapping[str, Any]) -> SearchProductsArgs:
    """Check search arguments; raises :class:`core.errors.ValidationError` with a readable message."""
    if isinstance(args, SearchProductsArgs):
        raw = args.model_dump()
    elif isinstance(args, Mapping):
        raw = dict(args)
    else:
        raise ValidationError(f"search arguments must be an object, got {type(args).__name__}")
    query = raw.get("query")
    if query is None:
        raise ValidationError("query is required: say what you are looking for", required_fields=["query"])
    if not isinstance(query, str):
        raise ValidationError("query must be text", invalid_fields={"query": "must be a string"})
    if not query.strip():
        raise ValidationError("query must not be empty: say what you are looking for",
                              invalid_fields={"query": "empty"})
    if len(query.strip()) > MAX_QUERY_CHARS:
        raise ValidationError(
            f"query is too long ({len(query.strip())} characters; at most {MAX_QUERY_CHARS}): shorten it",
            invalid_fields={"query": f"longer than {MAX_QUERY_CHARS} characters"})
    if not _HAS_WORD.search(query):
        raise ValidationError("query has no letters or digits to search for", invalid_fields={"query": "no words"})
    try:
        return SearchProductsArgs.model_validate(raw)
    except PydanticValidationError as exc:
        invalid = {".".join(map(str, e["loc"])) or "arguments": e["msg"] for e in exc.errors()}
        missing = [k for k, e in zip(invalid, exc.errors()) if e["type"] == "missing"]
        problems = "; ".join(f"{k}: {v}" for k, v in invalid.items())
        raise ValidationError(f"invalid search arguments: {problems}", required_fields=missing,
                              invalid_fields=invalid) from exc


class ProductSearch:
    """Hybrid search over a loaded :class:`~tools.retrieval.index.RetrievalIndex`."""

    def __init__(self, index: RetrievalIndex, embedder: QueryEmbedder,
                 settings: RetrievalSettings | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()
        index.embeddings = embedder.lc
        chunks = index.chunks
        products = index.products
        self.bm25 = BM25Index([c.text for c in chunks])
        cp = index.chunk_product
        if len(cp) and (np.any(np.diff(cp) < 0) or len(np.unique(cp)) != len(products)):
            raise ArtifactError("retrieval index chunks are not grouped by product; rebuild it")
        self._chunk_product = cp
        self._snippet_ok = np.array([c.kind != "title" for c in chunks], dtype=bool)
        self._starts = np.searchsorted(cp, np.arange(len(products)))
        self._price = np.array([p.price for p in products], dtype="float64")
        self._rating = np.array([np.nan if p.rating is None else p.rating for p in products], dtype="float64")
        self._count = np.array([np.nan if p.rating_count is None else p.rating_count for p in products],
                               dtype="float64")
        self._discount = np.array([np.nan if p.discount_percentage is None else p.discount_percentage
                                   for p in products], dtype="float64")
        self._category_lower = [p.category.lower() for p in products]
        self._category_levels = [[name_key(level) for level in p.category.split("|")] for p in products]
        self._category_cache: dict[str, np.ndarray] = {}
        self._variant_keys = [variant_key(p.product_name) for p in products]
        self._pid_to_index = {p.product_id: i for i, p in enumerate(products)}

    # ------------------------------------------------------------------------------------------ filters
    def filter_mask(self, args: SearchProductsArgs) -> np.ndarray:
        """Boolean mask of products satisfying every structured filter in ``args``."""
        mask = np.ones(len(self.index.products), dtype=bool)
        with np.errstate(invalid="ignore"):
            if args.max_price is not None:
                mask &= self._price <= args.max_price
            if args.min_price is not None:
                mask &= self._price >= args.min_price
            if args.min_rating is not None:
                mask &= self._rating >= args.min_rating  # NaN compares False: unknown ratings excluded
            if args.min_rating_count is not None:
                mask &= self._count >= args.min_rating_count
        if args.category:
            mask &= self._category_mask(args.category)
        return mask

    def _category_mask(self, wanted: str) -> np.ndarray:
        key = wanted.strip().lower()
        cached = self._category_cache.get(key)
        if cached is None:
            n = len(self.index.products)
            wanted_filter = CategoryFilter.of(wanted)
            cached = np.fromiter((wanted_filter.matches(self._category_lower[i], self._category_levels[i])
                                  for i in range(n)), dtype=bool, count=n)
            if len(self._category_cache) >= 256:
                self._category_cache.clear()
            self._category_cache[key] = cached
        return cached


    # ------------------------------------------------------------------------------------------ ranking
    def _dense_chunk_scores(self, query: str) -> np.ndarray:
        vector = self.embedder.embed_query(query)
        n = self.index.faiss_index.ntotal
        distances, ids = self.index.faiss_index.search(vector.reshape(1, -1), n)
        scores = np.full(n, -1.0, dtype="float64")
        valid = ids[0] >= 0
        scores[ids[0][valid]] = distances[0][valid]
        return scores

    def rank(self, query: str, mask: np.ndarray | None = None, mode: Mode = "hybrid") -> Ranking:
        """Rank products (restricted to ``mask``) for ``query`` with the dense, BM25 or hybrid retriever."""
        n_products = len(self.index.products)
        mask = np.ones(n_products, dtype=bool) if mask is None else mask
        chunk_ok = mask[self._chunk_product]
        k = float(self.settings.rrf_k)
        use_dense, use_bm25 = mode in ("hybrid", "dense"), mode in ("hybrid", "bm25")
        n_chunks = len(self._chunk_product)

        dense_c = self._dense_chunk_scores(query) if use_dense else np.zeros(n_chunks)
        bm25_c = self.bm25.scores(query) if use_bm25 else np.zeros(n_chunks)
        top_dense = float(dense_c.max()) if use_dense and n_chunks else 0.0
        top_bm25 = float(bm25_c.max()) if use_bm25 and n_chunks else 0.0
        dense_c = np.where(chunk_ok, dense_c, -np.inf)
        bm25_c = np.where(chunk_ok, bm25_c, 0.0)
        dense_p = np.maximum.reduceat(dense_c, self._starts) if n_chunks else np.zeros(0)
        bm25_p = np.maximum.reduceat(bm25_c, self._starts) if n_chunks else np.zeros(0)

        fused = np.zeros(n_products)
        max_fused = 0.0
        chunk_fused = np.zeros(n_chunks)
        w_dense = self.settings.dense_weight if mode == "hybrid" else 1.0
        w_bm25 = self.settings.bm25_weight if mode == "hybrid" else 1.0
        if use_dense:
            fused += w_dense * _rrf(dense_p, mask, k)
            chunk_fused += _rrf(dense_c, chunk_ok, k)
            max_fused += w_dense / (k + 1)
        if use_bm25:
            fused += w_bm25 * _rrf(bm25_p, mask & (bm25_p > 0), k)
            chunk_fused += _rrf(bm25_c, chunk_ok & (bm25_c > 0), k)
            max_fused += w_bm25 / (k + 1)
        fused /= max_fused
        chunk_fused = np.where(self._snippet_ok, chunk_fused, -1.0)  # titles repeat the name: no snippet
        # ties (e.g. BM25-only zero signal) broken by dense similarity, then catalog order
        candidates = np.flatnonzero(mask & (fused > 0))
        order = candidates[np.lexsort((candidates, -np.where(np.isfinite(dense_p[candidates]),
                                                             dense_p[candidates], -2.0),
                                       -fused[candidates]))]
        # best chunk per product: highest chunk-level fused score (chunks are grouped by product)
        chunk_order = np.lexsort((-chunk_fused, self._chunk_product))
        best_chunk = chunk_order[self._starts] if n_chunks else np.zeros(0, dtype=int)
        return Ranking(order=order, score=fused, dense=dense_p, bm25=bm25_p, best_chunk=best_chunk,
                       top_dense=top_dense, top_bm25=top_bm25)

    def rank_ids(self, query: str, mode: Mode = "hybrid", top_k: int = 10) -> list[str]:
        """The ``top_k`` product ids for ``query`` (no filters): what the evaluation scores."""
        ranking = self.rank(query, mode=mode)
        return [self.index.products[i].product_id for i in ranking.order[:top_k]]

    def _gate(self, ranking: Ranking) -> np.ndarray:
        """The relevance-gated candidate set (in relevance order): among the ``candidate_pool`` best filtered
        products, those whose dense similarity is within ``relevance_margin`` of the best match in the WHOLE
        catalog, or whose BM25 score is at least ``bm25_keep_ratio`` of the catalog's best. Judging against the
        unfiltered best means that when the filters exclude every on-topic product, nothing is returned
        instead of the least-bad off-topic ones."""
        pool = ranking.order[: self.settings.candidate_pool]
        if not len(pool):
            return pool
        keep = ranking.dense[pool] >= ranking.top_dense - self.settings.relevance_margin
        if ranking.top_bm25 > 0:
            keep |= ranking.bm25[pool] >= self.settings.bm25_keep_ratio * ranking.top_bm25
        return pool[keep]

    def _collapse(self, candidates: np.ndarray) -> np.ndarray:
        """Keep the first of several listings of the same item (same name up to a trailing "(colour)")."""
        seen: set[str] = set()
        keep = []
        for i in candidates:
            key = self._variant_keys[i]
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return np.asarray(keep, dtype=candidates.dtype)

    def _sort(self, candidates: np.ndarray, sort_by: str) -> np.ndarray:
        if sort_by == "relevance" or not len(candidates):
            return candidates
        pos = np.arange(len(candidates))  # relevance position breaks ties
        if sort_by == "rating":
            rating = np.nan_to_num(self._rating[candidates], nan=-1.0)
            count = np.nan_to_num(self._count[candidates], nan=-1.0)
            keys = (pos, -count, -rating)
        elif sort_by == "price_low":
            keys = (pos, self._price[candidates])
        elif sort_by == "price_high":
            keys = (pos, -self._price[candidates])
        elif sort_by == "discount":
            keys = (pos, -np.nan_to_num(self._discount[candidates], nan=-1.0))
        else:  # pragma: no cover - Literal in the args model
            raise ValidationError(f"unknown sort_by {sort_by!r}", invalid_fields={"sort_by": "unknown"})
        return candidates[np.lexsort(keys)]

    # ------------------------------------------------------------------------------------------ public
    def search(self, args: SearchProductsArgs | Mapping[str, Any]) -> dict[str, Any]:
        """Run one search. Returns ``{"results": [...], "total_matches": int}`` as documented in
        :class:`tools.specs.SearchProductsArgs`. Raises :class:`core.errors.ValidationError` on bad input.

        ``total_matches`` counts the products that satisfy the filters and pass the relevance gate (at most
        ``candidate_pool``); ``results`` are its first ``top_k`` in the requested order.
        """
        args = validate_args(args)
        start = time.perf_counter()
        mask = self.filter_mask(args)
        ranking = self.rank(args.query, mask)
        candidates = self._sort(self._gate(ranking), args.sort_by)
        if self.settings.collapse_variants:
            candidates = self._collapse(candidates)
        results = [self._result(i, ranking, args.query) for i in candidates[: args.top_k]]
        log.debug("search %r -> %d results in %.1f ms", args.query, len(results),
                  1000 * (time.perf_counter() - start))
        return {"results": results, "total_matches": int(len(candidates))}

    def _result(self, product_index: int, ranking: Ranking, query: str) -> dict[str, Any]:
        p = self.index.products[product_index]
        chunk = self.index.chunks[int(ranking.best_chunk[product_index])]
        return {
            "product_id": p.product_id,
            "product_name": p.product_name,
            "category": p.category,
            "discounted_price": p.discounted_price,
            "actual_price": p.actual_price,
            "discount_percentage": p.discount_percentage,
            "rating": p.rating,
            "rating_count": p.rating_count,
            "score": round(float(ranking.score[product_index]), 4),
            "snippet": make_snippet(chunk, query),
        }

    def product(self, product_id: str):
        """Metadata of one indexed product (None when unknown)."""
        i = self._pid_to_index.get(product_id)
        return None if i is None else self.index.products[i]

    @property
    def vectorstore(self):
        """The LangChain ``FAISS`` vector store (dense only, chunk-level)."""
        return self.index.vectorstore

    def as_retriever(self, **defaults: Any):
        """A LangChain ``BaseRetriever`` over hybrid search; ``defaults`` are fixed search arguments
        (``top_k``, ``max_price``, ``category``...). Documents carry the result dict as metadata."""
        from tools.retrieval.lc import ProductRetriever

        return ProductRetriever(search=self, defaults=defaults)


def _rrf(scores: np.ndarray, eligible: np.ndarray, k: float) -> np.ndarray:
    """Reciprocal-rank contributions 1/(k + rank) for eligible entries ranked by score (rank 1 = best)."""
    out = np.zeros(len(scores))
    idx = np.flatnonzero(eligible)
    if not len(idx):
        return out
    ordered = idx[np.argsort(-scores[idx], kind="stable")]
    out[ordered] = 1.0 / (k + np.arange(1, len(ordered) + 1))
    return out


def make_snippet(chunk: Chunk, query: str, limit: int = SNIPPET_CHARS) -> str:
    """The sentence/bullet of ``chunk`` sharing most words with ``query`` (review chunks say so)."""
    text = chunk.text
    label = ""
    for marker, name in ((" — buyers say: ", "Buyers say: "), (" — about: ", "")):
        if marker in text:
            text, label = text.split(marker, 1)[1], name
            break
    segments = [s.strip() for s in _SEGMENTS.split(text) if s and s.strip()]
    if not segments:
        return ""
    if chunk.kind == "profile" and len(segments) > 1:
        body = [s for s in segments[1:] if not s.startswith(("Brand:", "Category:", "price ", "rated "))]
        segments = body or segments
    words = set(tokenize(query))
    best = max(range(len(segments)), key=lambda i: (len(words & set(tokenize(segments[i]))), -i))
    snippet = segments[best]
    if len(snippet) > limit:
        cut = snippet.rfind(" ", 0, limit - 1)
        snippet = snippet[: cut if cut > limit // 2 else limit - 1].rstrip(" ,;:") + "…"
    return label + snippet


def load_product_search(index_dir: Path, catalog: Catalog | None = None,
                        settings: RetrievalSettings | None = None) -> ProductSearch:
    """Load the index at ``index_dir`` and the embedding model; ready to :meth:`ProductSearch.search`.

    Raises :class:`core.errors.ArtifactError` when the index is missing, tampered, built with another
    embedding model, or (when ``catalog`` is given) built from another version of the catalog.
    """
    settings = settings or RetrievalSettings()
    model_id = resolve_model(settings.embedding_model).model_id
    index = load_index(Path(index_dir), expected_model_id=model_id,
                       expected_data_sha256=catalog.sha256 if catalog is not None else None)
    return ProductSearch(index, get_embedder(settings), settings)
