"""The persisted vector index: FAISS binary + JSON documents + manifest. No pickle anywhere.

Folder layout (``<artifacts>/<catalog>/index/``)::

    index.faiss     faiss.write_index of an IndexFlatIP over unit-length chunk embeddings (inner product = cosine)
    chunks.json     [{"chunk_id", "product_index", "product_id", "kind", "text"}], row i = FAISS id i
    products.json   [ProductMeta...] one per product (filters, sorting, result rows)
    manifest.json   core.artifacts manifest: checksums of the three files, catalog sha256, and metadata
                    {embedding_model, dimension, doc_count, product_count, code_version, chunking}

LangChain's ``FAISS.save_local`` pickles its docstore (and ``load_local`` needs
``allow_dangerous_deserialization``); here the LangChain ``FAISS`` vector store is re-assembled from these
plain files at load time instead.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from core.artifacts import Manifest, load_manifest, write_manifest
from core.errors import ArtifactError
from core.hashing import sha256_text
from data.catalog import Catalog
from tools.retrieval import documents as documents_module
from tools.retrieval.documents import Chunk, ProductMeta, build_documents

log = logging.getLogger(__name__)

INDEX_KIND = "retrieval_index"
INDEX_SCHEMA_VERSION = 1
FAISS_FILE = "index.faiss"
CHUNKS_FILE = "chunks.json"
PRODUCTS_FILE = "products.json"
LIBRARIES = ("faiss-cpu", "sentence-transformers", "langchain-community", "langchain-huggingface", "torch")


def _code_version() -> str:
    """Hash of the source that decides what goes into the index (documents + this module)."""
    sources = [Path(documents_module.__file__), Path(__file__)]
    return sha256_text("".join(p.read_text(encoding="utf-8") for p in sources))[:16]


CODE_VERSION = _code_version()


def _faiss():
    import faiss  # local import: keeps `import tools.retrieval` light

    return faiss


@dataclass
class RetrievalIndex:
    """A loaded index: product metadata, chunks, the FAISS index and its manifest."""

    products: list[ProductMeta]
    chunks: list[Chunk]
    faiss_index: Any
    manifest: Manifest
    embeddings: Any = field(default=None, repr=False)  # LangChain Embeddings, for the vector store

    @property
    def model_id(self) -> str:
        return str(self.manifest.metadata["embedding_model"])

    @cached_property
    def chunk_product(self) -> np.ndarray:
        """Product index of every chunk (int array aligned with FAISS ids)."""
        return np.fromiter((c.product_index for c in self.chunks), dtype="int64", count=len(self.chunks))

    @cached_property
    def vectorstore(self):
        """The LangChain ``FAISS`` vector store over this index (documents carry product metadata)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.docstore.in_memory import InMemoryDocstore
            from langchain_community.vectorstores import FAISS
            from langchain_community.vectorstores.utils import DistanceStrategy
        from langchain_core.documents import Document

        docs = {}
        for chunk in self.chunks:
            meta = self.products[chunk.product_index].to_dict()
            docs[chunk.chunk_id] = Document(
                page_content=chunk.text, id=chunk.chunk_id,
                metadata={**meta, "chunk_id": chunk.chunk_id, "chunk_kind": chunk.kind})
        return FAISS(embedding_function=self.embeddings, index=self.faiss_index, docstore=InMemoryDocstore(docs),
                     index_to_docstore_id={i: c.chunk_id for i, c in enumerate(self.chunks)},
                     distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)


def embed_chunks(chunks: list[Chunk], embedder: Any, *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Unit-length float32 embeddings of the chunk texts, batch by batch with a tqdm bar."""
    dim = embedder.dimension
    out = np.zeros((len(chunks), dim), dtype="float32")
    # longest first within the run keeps batches of similar length (less padding), then restore order
    order = sorted(range(len(chunks)), key=lambda i: -len(chunks[i].text))
    bar = tqdm(total=len(chunks), desc="embedding chunks", unit="chunk", disable=not progress)
    for start in range(0, len(order), batch_size):
        ids = order[start:start + batch_size]
        out[ids] = embedder.embed_documents([chunks[i].text for i in ids])
        bar.update(len(ids))
    bar.close()
    return out


def build_index(catalog: Catalog, out_dir: Path, embedder: Any, *, batch_size: int = 64,
                progress: bool = True, vectors: np.ndarray | None = None,
                extra_metadata: dict[str, Any] | None = None) -> Manifest:
    """Chunk, embed and write the index folder ``out_dir`` (written beside, then swapped in).

    ``vectors`` may supply precomputed unit-length chunk embeddings (same model, same chunk order), e.g.
    computed on another machine; ``embedder`` then only names the model.
    """
    faiss = _faiss()
    out_dir = Path(out_dir)
    metas, chunks = build_documents(catalog.products)
    if not chunks:
        raise ArtifactError(f"catalog {catalog.source} produced no documents to index")
    if vectors is None:
        vectors = embed_chunks(chunks, embedder, batch_size=batch_size, progress=progress)
    elif vectors.shape != (len(chunks), embedder.dimension):
        raise ArtifactError(f"precomputed vectors have shape {vectors.shape}, expected "
                            f"({len(chunks)}, {embedder.dimension})")
    vectors = np.ascontiguousarray(vectors, dtype="float32")
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)

    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    faiss.write_index(index, str(tmp / FAISS_FILE))
    (tmp / CHUNKS_FILE).write_text(json.dumps([c.to_dict() for c in chunks], ensure_ascii=False), encoding="utf-8")
    (tmp / PRODUCTS_FILE).write_text(json.dumps([m.to_dict() for m in metas], ensure_ascii=False),
                                     encoding="utf-8")
    kinds: dict[str, int] = {}
    for chunk in chunks:
        kinds[chunk.kind] = kinds.get(chunk.kind, 0) + 1
    manifest = write_manifest(
        tmp, kind=INDEX_KIND, schema_version=INDEX_SCHEMA_VERSION, data_sha256=catalog.sha256,
        files=[FAISS_FILE, CHUNKS_FILE, PRODUCTS_FILE], libraries=LIBRARIES,
        metadata={
            "embedding_model": embedder.model_id,
            "dimension": int(vectors.shape[1]),
            "doc_count": len(chunks),
            "product_count": len(metas),
            "chunk_kinds": kinds,
            "chunking": {"profile_chars": documents_module.PROFILE_CHARS,
                         "chunk_chars": documents_module.CHUNK_CHARS},
            "code_version": CODE_VERSION,
            "catalog_source": Path(catalog.source).name,
            **(extra_metadata or {}),
        })
    if out_dir.exists():
        old = out_dir.with_name(f"{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out_dir)
    log.info("retrieval index written to %s: %d products, %d chunks", out_dir, len(metas), len(chunks))
    return manifest


def read_manifest(index_dir: Path, *, verify_files: bool = True) -> Manifest:
    """The index manifest, checked (kind, schema version, file checksums). Raises ArtifactError."""
    return load_manifest(index_dir, kind=INDEX_KIND, schema_version=INDEX_SCHEMA_VERSION, verify_files=verify_files)


def load_index(index_dir: Path, *, expected_model_id: str | None = None,
               expected_data_sha256: str | None = None) -> RetrievalIndex:
    """Load and verify an index folder. Raises ArtifactError when it is missing, tampered or incompatible."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    meta = manifest.metadata
    if expected_model_id is not None and meta.get("embedding_model") != expected_model_id:
        raise ArtifactError(
            f"retrieval index at {index_dir} was built with embedding model {meta.get('embedding_model')!r} "
            f"but {expected_model_id!r} is configured; rebuild it (python -m scripts.build_artifacts)",
            path=str(index_dir))
    if expected_data_sha256 is not None and manifest.data_sha256 != expected_data_sha256:
        raise ArtifactError(
            f"retrieval index at {index_dir} was built from another catalog version; rebuild it",
            path=str(index_dir))
    try:
        chunks = [Chunk.from_dict(d) for d in json.loads((index_dir / CHUNKS_FILE).read_text(encoding="utf-8"))]
        products = [ProductMeta.from_dict(d)
                    for d in json.loads((index_dir / PRODUCTS_FILE).read_text(encoding="utf-8"))]
        faiss_index = _faiss().read_index(str(index_dir / FAISS_FILE))
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise ArtifactError(f"retrieval index at {index_dir} is unreadable: {exc}", path=str(index_dir)) from exc
    problems = []
    if faiss_index.ntotal != len(chunks) or meta.get("doc_count") != len(chunks):
        problems.append(f"{faiss_index.ntotal} vectors, {len(chunks)} chunks, manifest says {meta.get('doc_count')}")
    if faiss_index.d != meta.get("dimension"):
        problems.append(f"dimension {faiss_index.d}, manifest says {meta.get('dimension')}")
    if any(not 0 <= c.product_index < len(products) or products[c.product_index].product_id != c.product_id
           for c in chunks):
        problems.append("chunks point at unknown products")
    if problems:
        raise ArtifactError(f"retrieval index at {index_dir} is inconsistent: {'; '.join(problems)}",
                            path=str(index_dir))
    return RetrievalIndex(products=products, chunks=chunks, faiss_index=faiss_index, manifest=manifest)
