"""Retrieval quality on a catalog: Recall@1/5/10 and MRR@10 for dense, BM25 and hybrid, plus filter checks.

    python -m eval.retrieval_eval --catalog ../shared/data/amazon.csv [--per-kind 300] [--filter-queries 200]
                                  [--out report.json]

Builds (or reuses) the index under ``<artifacts>/<catalog>/index`` via ``ensure_index``, generates the query
set with :mod:`eval.queries`, and prints markdown tables. Strict metrics count only the target product_id;
lenient ones also accept near-duplicate listings (same base name) — see :mod:`eval.queries`.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from tqdm.auto import tqdm

from core.errors import MDIError
from core.logging import setup_logging
from core.offline import enforce_offline
from core.settings import CatalogSettings, load_settings
from data.schema import ProductRecord
from eval.queries import IDENTIFICATION_KINDS, EvalQuery, QueryBuilder
from tools.retrieval.settings import RetrievalSettings

log = logging.getLogger("retrieval_eval")
MODES = ("dense", "bm25", "hybrid")
KS = (1, 5, 10)
DEPTH = 10


class EvalSettings(CatalogSettings, RetrievalSettings):
    per_kind: int = 300
    filter_queries: int = 200
    seed: int = 13
    out: Path | None = None
    force: bool = False
    index_dir: Path | None = None  # evaluate this index folder as is (no ensure_index)


@dataclass
class Metrics:
    n: int = 0
    hits: dict[int, int] | None = None
    rr: float = 0.0

    def add(self, rank: int | None) -> None:
        self.hits = self.hits or {k: 0 for k in KS}
        self.n += 1
        if rank is not None:
            for k in KS:
                self.hits[k] += rank <= k
            self.rr += 1.0 / rank

    def as_dict(self) -> dict[str, float]:
        hits = self.hits or {k: 0 for k in KS}
        n = max(self.n, 1)
        return {"n": self.n, **{f"recall@{k}": round(hits[k] / n, 4) for k in KS}, "mrr": round(self.rr / n, 4)}


def first_rank(ranked: Sequence[str], relevant: Iterable[str]) -> int | None:
    """1-based rank of the first relevant id in ``ranked`` (None when absent)."""
    relevant = set(relevant)
    for i, pid in enumerate(ranked, start=1):
        if pid in relevant:
            return i
    return None


def evaluate_ranking(search: Any, queries: Sequence[EvalQuery], modes: Sequence[str] = MODES,
                     progress: bool = True) -> dict[str, Any]:
    """Strict and lenient metrics per mode, per query kind and for the identification group."""
    table: dict[tuple[str, str, str], Metrics] = {}
    misses: list[dict[str, Any]] = []
    for q in tqdm(queries, desc="ranking queries", disable=not progress):
        for mode in modes:
            ranked = search.rank_ids(q.text, mode=mode, top_k=DEPTH)
            strict = first_rank(ranked, [q.target])
            lenient = first_rank(ranked, {q.target} | set(q.also_ok))
            for group in {q.kind, q.group}:
                table.setdefault((mode, group, "strict"), Metrics()).add(strict)
                table.setdefault((mode, group, "lenient"), Metrics()).add(lenient)
            if mode == "hybrid" and q.group == "identification" and (strict is None or strict > 5):
                misses.append({"kind": q.kind, "query": q.text, "target": q.target, "rank": strict,
                               "lenient_rank": lenient, "top3": ranked[:3]})
    out: dict[str, Any] = {}
    for (mode, group, variant), m in sorted(table.items()):
        out.setdefault(mode, {}).setdefault(group, {})[variant] = m.as_dict()
    return {"metrics": out, "hybrid_identification_misses": misses}


def _price(p: ProductRecord) -> float:
    return p.discounted_price if p.discounted_price is not None else p.actual_price


def satisfies(p: ProductRecord, args: dict[str, Any]) -> bool:
    """Independent re-statement of the documented filter semantics (used to audit search results)."""
    if args.get("max_price") is not None and not _price(p) <= args["max_price"]:
        return False
    if args.get("min_price") is not None and not _price(p) >= args["min_price"]:
        return False
    if args.get("min_rating") is not None and (p.rating is None or p.rating < args["min_rating"]):
        return False
    if args.get("min_rating_count") is not None and (p.rating_count is None
                                                      or p.rating_count < args["min_rating_count"]):
        return False
    if args.get("category"):
        wanted = args["category"].strip().lower()
        key = re.sub(r"[^a-z0-9]+", "", wanted)
        levels = [re.sub(r"[^a-z0-9]+", "", lv.lower()) for lv in p.category_path]
        if wanted not in p.category.lower() and not (key and any(key in lv for lv in levels)):
            return False
    return True


_SORT_KEYS = {
    "rating": (lambda r: -(r["rating"] if r["rating"] is not None else -1)),
    "price_low": (lambda r: r["discounted_price"] if r["discounted_price"] is not None else r["actual_price"]),
    "price_high": (lambda r: -(r["discounted_price"] if r["discounted_price"] is not None else r["actual_price"])),
    "discount": (lambda r: -(r["discount_percentage"] if r["discount_percentage"] is not None else -1)),
}


def evaluate_filters(search: Any, products: Sequence[ProductRecord], queries: Sequence[EvalQuery],
                     progress: bool = True) -> dict[str, Any]:
    """Every result must satisfy its filters (satisfaction must be 1.0); also on-topic rate and sort order."""
    by_id = {p.product_id: p for p in products}
    n_results = n_ok = n_on_topic = n_sorted = n_empty = n_feasible_empty = 0
    violations = []
    per_sort: dict[str, list[int]] = {}
    for q in tqdm(queries, desc="filter queries", disable=not progress):
        args = {k: v for k, v in q.args.items() if not k.startswith("_")}
        results = search.search(args)["results"]
        feasible = [p for p in products if satisfies(p, args) and p.leaf_category == q.args["_leaf"]]
        if not results:
            n_empty += 1
            n_feasible_empty += bool(feasible)
        for r in results:
            n_results += 1
            ok = satisfies(by_id[r["product_id"]], args)
            n_ok += ok
            on_topic = by_id[r["product_id"]].leaf_category == q.args["_leaf"]
            n_on_topic += on_topic
            per_sort.setdefault(args["sort_by"], [0, 0])[0] += on_topic
            per_sort[args["sort_by"]][1] += 1
            if not ok:
                violations.append({"query": args, "product_id": r["product_id"]})
        key = _SORT_KEYS.get(args["sort_by"])
        n_sorted += key is None or all(key(a) <= key(b) for a, b in zip(results, results[1:]))
    return {
        "queries": len(queries), "results": n_results,
        "constraint_satisfaction": round(n_ok / n_results, 4) if n_results else 1.0,
        "on_topic_rate": round(n_on_topic / n_results, 4) if n_results else 0.0,
        "correctly_sorted_rate": round(n_sorted / max(len(queries), 1), 4),
        "on_topic_rate_by_sort": {k: round(v[0] / v[1], 4) for k, v in sorted(per_sort.items())},
        "empty_result_queries": n_empty, "empty_but_feasible": n_feasible_empty,
        "violations": violations[:20],
    }


def format_report(report: dict[str, Any]) -> str:
    """Markdown tables of the report (identification group first)."""
    lines = [f"catalog: {report['catalog']} ({report['products']} products, {report['queries']} ranking queries)",
             "", "| group / kind | mode | R@1 | R@5 | R@10 | MRR | lenient R@5 | lenient MRR | n |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    metrics = report["ranking"]["metrics"]
    groups = ["identification", *IDENTIFICATION_KINDS, "review_quote"]
    for group in groups:
        for mode in MODES:
            cell = metrics.get(mode, {}).get(group)
            if not cell:
                continue
            s, le = cell["strict"], cell["lenient"]
            lines.append(f"| {group} | {mode} | {s['recall@1']:.3f} | {s['recall@5']:.3f} | {s['recall@10']:.3f} | "
                         f"{s['mrr']:.3f} | {le['recall@5']:.3f} | {le['mrr']:.3f} | {s['n']} |")
    f = report["filters"]
    lines += ["", f"filter queries: {f['queries']}, results {f['results']}, constraint satisfaction "
                  f"{f['constraint_satisfaction']:.4f}, on-topic (same leaf category) {f['on_topic_rate']:.3f}, "
                  f"correctly sorted {f['correctly_sorted_rate']:.3f}, empty {f['empty_result_queries']} "
                  f"(of which feasible {f['empty_but_feasible']})",
              f"on-topic rate by sort: {f['on_topic_rate_by_sort']}"]
    return "\n".join(lines)


def run(settings: EvalSettings, progress: bool = True) -> dict[str, Any]:
    """Build/reuse the index, generate the queries, evaluate; returns the report dict."""
    from data.catalog import load_catalog
    from tools.retrieval.build import INDEX_DIRNAME, ensure_index
    from tools.retrieval.search import load_product_search

    retrieval = RetrievalSettings(**{k: getattr(settings, k) for k in RetrievalSettings.model_fields})
    catalog = load_catalog(settings.catalog)
    index_dir = settings.index_dir
    if index_dir is None:
        status = ensure_index(settings.catalog, settings.artifact_dir, settings.force, retrieval)
        log.info("retrieval index: %s", status)
        index_dir = settings.artifact_dir / INDEX_DIRNAME
    search = load_product_search(index_dir, catalog, retrieval)
    builder = QueryBuilder(catalog.products, seed=settings.seed)
    queries = builder.build(per_kind=settings.per_kind)
    filters = builder.filter_queries(settings.filter_queries)
    start = time.perf_counter()
    ranking = evaluate_ranking(search, queries, progress=progress)
    filter_report = evaluate_filters(search, catalog.products, filters, progress=progress)
    return {
        "catalog": Path(settings.catalog).name, "catalog_sha256": catalog.sha256, "products": len(catalog),
        "queries": len(queries), "seed": settings.seed, "per_kind": settings.per_kind,
        "embedding_model": search.index.model_id, "eval_seconds": round(time.perf_counter() - start, 1),
        "ranking": ranking, "filters": filter_report,
        "examples": [{"kind": q.kind, "query": q.text, "target": q.target} for q in queries[:: max(1, len(queries) // 12)]],
    }


def main(argv: list[str] | None = None) -> int:
    enforce_offline()
    setup_logging()
    try:
        settings = load_settings(EvalSettings, sys.argv[1:] if argv is None else argv,
                                 prog="python -m eval.retrieval_eval")
        report = run(settings)
    except MDIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if settings.out:
        settings.out.parent.mkdir(parents=True, exist_ok=True)
        settings.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"report written to {settings.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
