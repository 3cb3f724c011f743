"""``ensure_index``: (re)build the retrieval index for a catalog when it is missing or stale.

Used by ``python -m scripts.build_artifacts``; also a CLI of its own::

    python -m tools.retrieval.build --catalog ../shared/data/amazon.csv [--force]
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from core.cli import run_cli
from core.errors import ArtifactError
from core.hashing import sha256_file
from core.offline import enforce_offline
from core.settings import CatalogSettings, load_settings
from tools.retrieval.embeddings import get_embedder, resolve_model
from tools.retrieval.index import CODE_VERSION, build_index, read_manifest
from tools.retrieval.settings import RetrievalSettings

log = logging.getLogger(__name__)
INDEX_DIRNAME = "index"


def stale_reason(index_dir: Path, *, catalog_sha256: str, model_id: str) -> str | None:
    """Why the index at ``index_dir`` must be rebuilt, or None when it is current."""
    try:
        manifest = read_manifest(index_dir)
    except ArtifactError as exc:
        return exc.message
    meta = manifest.metadata
    if manifest.data_sha256 != catalog_sha256:
        return "catalog changed"
    if meta.get("embedding_model") != model_id:
        return f"embedding model changed ({meta.get('embedding_model')} -> {model_id})"
    if meta.get("code_version") != CODE_VERSION:
        return "indexing code changed"
    return None


def ensure_index(catalog: Path, out_dir: Path, force: bool = False,
                 settings: RetrievalSettings | None = None) -> str:
    """Make ``<out_dir>/index/`` current for ``catalog``; returns a one-line status."""
    enforce_offline()
    settings = settings or load_settings(RetrievalSettings, None)
    index_dir = Path(out_dir) / INDEX_DIRNAME
    model_id = resolve_model(settings.embedding_model).model_id
    reason = "forced" if force else stale_reason(index_dir, catalog_sha256=sha256_file(catalog), model_id=model_id)
    if reason is None:
        meta = read_manifest(index_dir, verify_files=False).metadata
        return f"up to date ({meta['product_count']} products, {meta['doc_count']} chunks)"
    from data.catalog import load_catalog

    log.info("building retrieval index at %s (%s)", index_dir, reason)
    cat = load_catalog(catalog)
    embedder = get_embedder(settings)
    manifest = build_index(cat, index_dir, embedder, batch_size=settings.embedding_batch_size)
    meta = manifest.metadata
    return f"built ({reason}): {meta['product_count']} products, {meta['doc_count']} chunks"


class BuildIndexSettings(CatalogSettings, RetrievalSettings):
    force: bool = False


def main(argv: list[str] | None = None) -> int:
    def body() -> None:
        settings = load_settings(BuildIndexSettings, sys.argv[1:] if argv is None else argv,
                                 prog="python -m tools.retrieval.build")
        start = time.perf_counter()
        status = ensure_index(settings.catalog, settings.artifact_dir, settings.force,
                              RetrievalSettings(**{k: getattr(settings, k) for k in RetrievalSettings.model_fields}))
        print(f"retrieval index: {status} ({time.perf_counter() - start:.1f}s)")

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
