"""Retrieval benchmark: index build time and query latency (query embedding included), with baselines.

    python -m bench.retrieval_bench --catalog ../shared/data/amazon.csv [--build-repeats 1] [--rounds 5]
                                    [--queries 60] [--build-sample 0] [--torch-threads 0] [--index-dir DIR]

Prints, each as the median over repetitions:

* index build: total seconds, split into documents / embedding / FAISS+write, and embedding throughput.
  ``--build-sample N`` builds from the first N products only (the full-catalog time is then extrapolated
  from chunks/s and marked as such).
* query latency p50/p95 in ms over ``--queries`` distinct generated queries, ``--rounds`` rounds:
  ``hybrid (cold)`` = full ``ProductSearch.search`` with the query-embedding cache disabled (embedding included),
  ``hybrid + filters`` = same with price/rating filters and a rating sort, ``hybrid (cached)`` = repeated
  queries hitting the LRU cache, and two baselines measured in the same run: ``embed only`` (the
  sentence-transformers query embedding alone, the floor) and ``langchain FAISS`` (LangChain's own
  ``similarity_search_with_score``, dense only, k=5, embedding included).
"""
from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.logging import setup_logging
from core.offline import enforce_offline
from core.settings import CatalogSettings, load_settings
from tools.retrieval.settings import RetrievalSettings


class BenchSettings(CatalogSettings, RetrievalSettings):
    build_repeats: int = 1  # 0 = skip the build (latency only, needs --index-dir)
    build_sample: int = 0  # 0 = the whole catalog
    rounds: int = 5
    queries: int = 60
    seed: int = 7
    index_dir: Path | None = None  # measure latency on this existing index (default: the one just built)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype="float64"), q))


def time_calls(fn: Callable[[str], object], queries: Sequence[str], rounds: int) -> dict[str, float]:
    """p50/p95 (ms) of ``fn(query)`` per round; medians over rounds."""
    p50s, p95s = [], []
    for _ in range(rounds):
        times = []
        for q in queries:
            start = time.perf_counter()
            fn(q)
            times.append(1000 * (time.perf_counter() - start))
        p50s.append(percentile(times, 50))
        p95s.append(percentile(times, 95))
    return {"p50_ms": statistics.median(p50s), "p95_ms": statistics.median(p95s), "rounds": rounds,
            "n": len(queries)}


def bench_build(catalog_path: Path, settings: BenchSettings, workdir: Path) -> dict[str, float]:
    from data.catalog import catalog_from_frame, load_catalog, read_raw_csv
    from tools.retrieval.documents import build_documents
    from tools.retrieval.embeddings import get_embedder
    from tools.retrieval.index import build_index, embed_chunks

    catalog = load_catalog(catalog_path)
    full_chunks = len(build_documents(catalog.products)[1])
    if settings.build_sample:
        raw = read_raw_csv(catalog_path)
        keep = list(dict.fromkeys(raw["product_id"]))[: settings.build_sample]
        catalog = catalog_from_frame(raw[raw["product_id"].isin(keep)], source=f"{catalog_path.name}[:{len(keep)}]")
    embedder = get_embedder(settings)
    runs = []
    for i in range(settings.build_repeats):
        t0 = time.perf_counter()
        _, chunks = build_documents(catalog.products)
        t1 = time.perf_counter()
        vectors = embed_chunks(chunks, embedder, batch_size=settings.embedding_batch_size)
        t2 = time.perf_counter()
        build_index(catalog, workdir / f"index{i}", embedder, vectors=vectors, progress=False)
        t3 = time.perf_counter()
        runs.append({"documents_s": t1 - t0, "embedding_s": t2 - t1, "faiss_write_s": t3 - t2, "total_s": t3 - t0,
                     "chunks": len(chunks), "chunks_per_s": len(chunks) / (t2 - t1)})
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["products"] = len(catalog)
    out["full_catalog_chunks"] = full_chunks
    out["full_catalog_total_s_estimate"] = full_chunks / out["chunks_per_s"] + out["documents_s"] + out["faiss_write_s"]
    return out


def bench_queries(index_dir: Path, settings: BenchSettings) -> dict[str, dict[str, float]]:
    from data.catalog import load_catalog
    from eval.queries import IDENTIFICATION_KINDS, QueryBuilder
    from tools.retrieval.search import load_product_search

    catalog = load_catalog(settings.catalog)
    cold = settings.model_copy(update={"query_cache_size": 0})
    search = load_product_search(index_dir, catalog, cold)
    per_kind = max(1, settings.queries // len(IDENTIFICATION_KINDS))
    queries = [q.text for q in QueryBuilder(catalog.products, seed=settings.seed).build(
        per_kind=per_kind, kinds=IDENTIFICATION_KINDS)][: settings.queries]
    client = search.embedder.lc._client
    store = search.vectorstore
    for q in queries[:5]:  # warm-up outside the timings
        search.search({"query": q})
    results = {
        "embed only (baseline)": time_calls(lambda q: client.encode([q], normalize_embeddings=True), queries,
                                            settings.rounds),
        "langchain FAISS k=5 (baseline)": time_calls(lambda q: store.similarity_search_with_score(q, k=5), queries,
                                                     settings.rounds),
        "hybrid (cold)": time_calls(lambda q: search.search({"query": q}), queries, settings.rounds),
        "hybrid + filters, rating sort": time_calls(
            lambda q: search.search({"query": q, "max_price": 1500, "min_rating": 4.0, "sort_by": "rating"}),
            queries, settings.rounds),
    }
    cached = load_product_search(index_dir, catalog, settings)
    for q in queries:
        cached.search({"query": q})
    results["hybrid (cached embedding)"] = time_calls(lambda q: cached.search({"query": q}), queries, settings.rounds)
    return results


def main(argv: list[str] | None = None) -> int:
    enforce_offline()
    setup_logging("WARNING")
    settings = load_settings(BenchSettings, sys.argv[1:] if argv is None else argv, prog="bench.retrieval_bench")
    import torch

    import os

    threads = settings.torch_threads or torch.get_num_threads()
    print(f"catalog {settings.catalog}; torch threads {threads}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    workdir = Path(tempfile.mkdtemp(prefix="retrieval-bench-"))
    try:
        if settings.build_repeats > 0:
            build = bench_build(Path(settings.catalog), settings, workdir)
            label = "sample" if settings.build_sample else "full catalog"
            print(f"\nindex build ({label}: {build['products']:.0f} products, {build['chunks']:.0f} chunks; "
                  f"median of {settings.build_repeats}):")
            print(f"  total {build['total_s']:.1f}s = documents {build['documents_s']:.2f}s + embedding "
                  f"{build['embedding_s']:.1f}s + FAISS/write {build['faiss_write_s']:.2f}s; "
                  f"{build['chunks_per_s']:.1f} chunks/s")
            if settings.build_sample:
                print(f"  full catalog ({build['full_catalog_chunks']:.0f} chunks) estimate: "
                      f"{build['full_catalog_total_s_estimate']:.0f}s")
        elif settings.index_dir is None:
            raise SystemExit("--build-repeats 0 needs --index-dir")
        index_dir = settings.index_dir or workdir / "index0"
        if settings.build_sample and settings.index_dir is None:  # latency is measured on the full index
            from tools.retrieval.build import INDEX_DIRNAME, ensure_index

            ensure_index(Path(settings.catalog), settings.artifact_dir, False, settings)
            index_dir = settings.artifact_dir / INDEX_DIRNAME
        lat = bench_queries(index_dir, settings)
        print(f"\nquery latency (ms; medians over {settings.rounds} rounds of {next(iter(lat.values()))['n']} queries):")
        print(f"  {'path':34s} {'p50':>8s} {'p95':>8s}")
        for name, r in lat.items():
            print(f"  {name:34s} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
