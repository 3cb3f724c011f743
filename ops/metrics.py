"""Prometheus metrics on a private :class:`CollectorRegistry` (tests and several apps stay isolated).

Every name is prefixed with the namespace (``mdi_`` by default). See ``docs/operations.md`` for the list.
Label values are bounded: routes are templates (``/items/{id}``, never raw paths), agent paths and refusal
reasons are folded into a fixed set.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TOKENS_PER_S_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500)
AGENT_PATHS = ("model", "fallback", "retrieval_only", "refused", "error")
REFUSAL_REASONS = ("injection", "secrets", "system_prompt", "harmful", "off_topic", "too_long", "other")
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.:/@+-]")


def _fold(value: str | None, allowed: Iterable[str], default: str = "other") -> str:
    value = (value or "").strip().lower()
    return value if value in allowed else default


class _VersionsCollector(Collector):
    """``<ns>_versions_info``: one info sample whose labels come from ``versions()`` at scrape time, so versions
    that appear after start-up (a model loaded in the background) show up without re-registration."""

    def __init__(self, namespace: str, versions: Callable[[], Mapping[str, Any]] | None) -> None:
        self.namespace = namespace
        self.versions = versions

    def collect(self):
        info = InfoMetricFamily(f"{self.namespace}_versions", "Model, adapter, index and code versions served")
        labels: dict[str, str] = {}
        if self.versions is not None:
            try:
                raw = dict(self.versions() or {})
            except Exception as exc:  # a failing callback must never break /metrics
                log.warning("versions callback failed: %s", exc)
                raw = {"error": type(exc).__name__}
            for key, value in raw.items():
                name = re.sub(r"[^A-Za-z0-9_]", "_", str(key)).strip("_") or "key"
                if name[0].isdigit():
                    name = f"v_{name}"
                labels[name] = _LABEL_SAFE.sub("_", str(value))[:120]
        info.add_metric([], labels)
        yield info


class _CallbackGaugeCollector(Collector):
    """Gauges computed at scrape time by a callback returning ``{(label values...): value}``."""

    def __init__(self, name: str, doc: str, labels: list[str],
                 callback: Callable[[], Mapping[tuple[str, ...], float]]) -> None:
        self.name, self.doc, self.labels, self.callback = name, doc, labels, callback

    def collect(self):
        family = GaugeMetricFamily(self.name, self.doc, labels=self.labels)
        try:
            values = self.callback()
        except Exception as exc:
            log.warning("metrics callback %s failed: %s", self.name, exc)
            values = {}
        for key, value in values.items():
            family.add_metric(list(key), float(value))
        yield family


class OpsMetrics:
    """All product metrics. Thread-safe (prometheus-client is); cheap enough for the hot path."""

    def __init__(self, namespace: str = "mdi", *, registry: CollectorRegistry | None = None,
                 versions: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.namespace = namespace
        self.registry = registry or CollectorRegistry(auto_describe=True)
        ns, reg = namespace, self.registry
        self.requests = Counter(f"{ns}_http_requests", "HTTP requests by method, route template and status",
                                ["method", "route", "status"], registry=reg)
        self.latency = Histogram(f"{ns}_http_request_duration_seconds", "HTTP request latency (to last byte)",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=reg)
        self.errors = Counter(f"{ns}_http_errors", "HTTP responses with status >= 400, by class",
                              ["method", "route", "status_class"], registry=reg)
        self.in_progress = Gauge(f"{ns}_http_requests_in_progress", "Requests being served now", registry=reg)
        self.predictions = Counter(f"{ns}_predictions", "Discount predictions served", ["endpoint"], registry=reg)
        self.agent_answers = Counter(f"{ns}_agent_answers", "Agent answers by producing path "
                                     "(model, fallback, retrieval_only, refused, error)", ["path"], registry=reg)
        self.refusals = Counter(f"{ns}_guard_refusals", "Requests refused by the agent's guard", ["reason"],
                                registry=reg)
        self.llm_tokens_per_s = Histogram(f"{ns}_llm_tokens_per_second", "LLM generation speed per call",
                                          buckets=TOKENS_PER_S_BUCKETS, registry=reg)
        self.llm_tokens_per_s_last = Gauge(f"{ns}_llm_tokens_per_second_last", "Speed of the latest LLM call",
                                           registry=reg)
        self.llm_tokens = Counter(f"{ns}_llm_generated_tokens", "Tokens generated by the LLM", registry=reg)
        self.rate_limited = Counter(f"{ns}_rate_limited", "Requests answered 429 by the rate limiter", ["route"],
                                    registry=reg)
        self.body_too_large = Counter(f"{ns}_body_too_large", "Requests answered 413 (body over the limit)",
                                      ["route"], registry=reg)
        self.gate_rejections = Counter(f"{ns}_llm_gate_rejections", "LLM work turned away with 503",
                                       ["reason"], registry=reg)
        self.gate_in_use = Gauge(f"{ns}_llm_gate_in_use", "LLM slots busy", registry=reg)
        self.gate_waiting = Gauge(f"{ns}_llm_gate_waiting", "Requests waiting for an LLM slot", registry=reg)
        self.drift_alerts = Counter(f"{ns}_drift_alerts", "Times a feature's drift crossed its threshold",
                                    ["feature"], registry=reg)
        self.registry.register(_VersionsCollector(ns, versions))

    # -- recording helpers used by the app -------------------------------------------------------------
    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status >= 400:
            self.errors.labels(method, route, f"{status // 100}xx").inc()

    def record_prediction(self, endpoint: str = "predict_discount") -> None:
        self.predictions.labels(_fold(endpoint, ("predict_discount", "explain_discount", "agent"))).inc()

    def record_agent_path(self, path: str) -> None:
        """Count one agent answer by the path that produced it (unknown values count as ``error``)."""
        self.agent_answers.labels(_fold(path, AGENT_PATHS, "error")).inc()

    def record_refusal(self, reason: str | None = None) -> None:
        self.refusals.labels(_fold(reason, REFUSAL_REASONS)).inc()

    def record_llm_speed(self, tokens_per_s: float, tokens: int | None = None) -> None:
        """One LLM call's generation speed (and, optionally, how many tokens it produced)."""
        if tokens_per_s >= 0:
            self.llm_tokens_per_s.observe(tokens_per_s)
            self.llm_tokens_per_s_last.set(tokens_per_s)
        if tokens:
            self.llm_tokens.inc(tokens)

    def agent_listener(self, event: str, labels: Mapping[str, Any]) -> None:
        """Bridge for ``agent.metrics.AgentMetrics.add_listener``: ``answer`` events count the agent path
        (refused answers as ``refused``), ``refusal`` events count guard refusals by kind. Other events are
        ignored. Wire it with ``runtime.metrics.add_listener(ops.metrics.agent_listener)``."""
        if event == "answer":
            self.record_agent_path("refused" if labels.get("refused") else str(labels.get("path")))
        elif event == "refusal":
            self.record_refusal(str(labels.get("kind")))

    def add_gauge_callback(self, name: str, doc: str, labels: list[str],
                           callback: Callable[[], Mapping[tuple[str, ...], float]]) -> None:
        """Register gauges computed at scrape time (used for drift figures)."""
        self.registry.register(_CallbackGaugeCollector(f"{self.namespace}_{name}", doc, labels, callback))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """Current value of one sample (tests, admin pages)."""
        return self.registry.get_sample_value(name, dict(labels or {}))
