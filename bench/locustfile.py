"""Locust load profile: mixed /predict_discount, /explain_discount and /answer_question traffic.

Run it through ``bench/load_test.sh`` (starts the app on 127.0.0.1, 50 users for 60 s, prints the summary).
Each simulated user is its own client (``X-Forwarded-For: 10.0.x.y``; the script starts the app with
``MDI_OPS_TRUST_FORWARDED_FOR=true`` so the per-client rate limiter sees 50 clients, not one).

Outcomes are classified per response: 2xx = ok; 429 and 503 = refused **by design** (rate limit, LLM gate
full, warming up), counted separately and not failures; anything else (4xx on valid input, 5xx, connection
errors) = unexpected error (a locust failure). Latency percentiles are computed over 2xx responses only, so
fast 429s cannot flatter them. At exit the summary is written as JSON to ``$LOAD_SUMMARY`` (if set).
"""
from __future__ import annotations

import csv
import itertools
import json
import os
import random
import threading
from collections import Counter, defaultdict
from pathlib import Path

from locust import HttpUser, between, events, task

REPO = Path(__file__).resolve().parent.parent
CATALOG = Path(os.environ.get("LOAD_CATALOG", REPO / "data" / "demo_catalog.csv"))
BY_DESIGN = (429, 503)
# task weights (env): the default mix is 6 predict : 3 explain : 1 question; LOAD_ANSWER_WEIGHT=0 isolates the
# discount endpoints from LLM load
WEIGHTS = {name: int(os.environ.get(f"LOAD_{name.upper()}_WEIGHT", default))
           for name, default in (("predict", 6), ("explain", 3), ("answer", 1))}
QUESTIONS = (
    "What are the best rated earbuds under 2000 rupees?",
    "Show me USB cables with at least 4 stars",
    "Which smartwatch has the biggest discount?",
    "What is the average discount for Electronics?",
    "Find a cheap electric kettle",
    "What do customers say about the most popular power bank?",
    "How many products are in the Home&Kitchen category?",
    "Recommend a laptop stand with good reviews",
)

_lock = threading.Lock()
_latencies: dict[str, list[float]] = defaultdict(list)
_outcomes: dict[str, Counter] = defaultdict(Counter)
_client_ids = itertools.count(1)


def _rows() -> list[dict[str, object]]:
    """Realistic prediction bodies from the catalog's own rows (prices/ratings/counts as numbers)."""
    out = []
    with CATALOG.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                price = float(row["actual_price"].replace("₹", "").replace(",", ""))
                rating = float(row["rating"])
                count = int(row["rating_count"].replace(",", "") or 0)
            except (ValueError, KeyError):
                continue
            out.append({"category": row["category"], "actual_price": price, "rating": rating,
                        "rating_count": count, "product_name": row["product_name"][:120]})
    if not out:
        raise RuntimeError(f"no usable rows in {CATALOG}")
    return out


ROWS = _rows()


def _record(name: str, response) -> None:
    status = response.status_code
    with _lock:
        if 200 <= status < 300:
            _outcomes[name]["ok"] += 1
            _latencies[name].append(response.elapsed.total_seconds() * 1000)
        elif status in BY_DESIGN:
            _outcomes[name][f"by_design_{status}"] += 1
        else:
            _outcomes[name][f"unexpected_{status or 'conn'}"] += 1
    if 200 <= status < 300 or status in BY_DESIGN:
        response.success()
    else:
        response.failure(f"unexpected status {status}: {response.text[:200]}")


class MarketingUser(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        n = next(_client_ids)
        self.client.headers.update({"X-Forwarded-For": f"10.0.{n // 250}.{n % 250 + 1}"})
        self.session_id = f"load-{n}"

    @task(WEIGHTS["predict"])
    def predict(self) -> None:
        with self.client.post("/predict_discount", json=random.choice(ROWS), name="/predict_discount",
                              catch_response=True) as response:
            _record("/predict_discount", response)

    @task(WEIGHTS["explain"])
    def explain(self) -> None:
        with self.client.post("/explain_discount", json=random.choice(ROWS), name="/explain_discount",
                              catch_response=True) as response:
            _record("/explain_discount", response)

    @task(WEIGHTS["answer"])
    def answer(self) -> None:
        body = {"question": random.choice(QUESTIONS), "session_id": self.session_id}
        with self.client.post("/answer_question", json=body, name="/answer_question", catch_response=True,
                              timeout=120) as response:
            _record("/answer_question", response)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def summary() -> dict[str, object]:
    """Per-endpoint outcome counts and 2xx latency percentiles (ms)."""
    with _lock:
        out: dict[str, object] = {}
        for name in sorted(set(_outcomes) | set(_latencies)):
            lat = _latencies[name]
            outcomes = dict(_outcomes[name])
            out[name] = {
                "outcomes": outcomes,
                "unexpected": sum(v for k, v in outcomes.items() if k.startswith("unexpected")),
                "by_design": sum(v for k, v in outcomes.items() if k.startswith("by_design")),
                "p50_ms": _percentile(lat, 50), "p95_ms": _percentile(lat, 95), "p99_ms": _percentile(lat, 99),
                "max_ms": round(max(lat), 2) if lat else None,
            }
        return out


@events.quitting.add_listener
def _write_summary(environment, **_kwargs) -> None:
    data = summary()
    target = os.environ.get("LOAD_SUMMARY")
    if target:
        Path(target).write_text(json.dumps(data, indent=2))
    print("LOAD SUMMARY " + json.dumps(data))
