"""Retrieval settings (env ``MDI_*``): embedding model, batch size, threads, fusion and candidate depth."""
from __future__ import annotations

from pydantic import Field

from core.settings import BaseAppSettings


class RetrievalSettings(BaseAppSettings):
    """Knobs of the retrieval layer. ``MDI_EMBEDDING_MODEL`` selects any sentence-transformers model (local
    folder or hub id already in the local cache); empty means the packaged all-MiniLM-L6-v2."""

    embedding_model: str = ""
    embedding_batch_size: int = Field(default=32, ge=1)
    embedding_max_seq_length: int = Field(default=256, ge=16, description="word pieces per document chunk")
    query_max_seq_length: int = Field(default=128, ge=16, description="word pieces per query")
    torch_threads: int = Field(default=0, ge=0, description="0 = leave torch's default")
    query_cache_size: int = Field(default=2048, ge=0, description="LRU cache of query embeddings")
    rrf_k: int = Field(default=20, ge=1, description="reciprocal-rank-fusion constant")
    dense_weight: float = Field(default=1.0, ge=0, description="weight of the dense ranking in the fusion")
    bm25_weight: float = Field(default=1.5, ge=0, description="weight of the BM25 ranking in the fusion")
    relevance_margin: float = Field(default=0.10, ge=0, le=2,
                                    description="gate: max cosine gap to the catalog's best match")
    bm25_keep_ratio: float = Field(default=0.7, ge=0, le=1,
                                   description="gate: or BM25 at least this share of the catalog's best")
    candidate_pool: int = Field(default=40, ge=1,
                                description="how many most relevant filtered products non-relevance sorts pick from")
    collapse_variants: bool = Field(default=True, description="return one listing per name (colour variants)")
