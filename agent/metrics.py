"""Counters of what the agent did: answers by path (model vs fallback) and fallback reason, guard refusals, tool
calls, errors. Thread-safe; :meth:`AgentMetrics.snapshot` gives plain numbers and listeners (e.g. a Prometheus
exporter) are called on every event, so the ops layer can export them without touching the agent.
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Callable

Listener = Callable[[str, dict[str, Any]], None]


class AgentMetrics:
    """Events: ``answer`` {path, reason, refused, seconds}, ``tool`` {name, origin}, ``refusal`` {kind},
    ``error`` {kind}."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers = Counter()           # path -> n
        self.fallback_reasons = Counter()  # reason -> n
        self.refusals = Counter()          # guard kind -> n
        self.tools = Counter()             # "name:origin" -> n
        self.errors = Counter()            # kind -> n
        self.total_seconds = 0.0
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event, labels)`` on every event (exceptions in listeners are swallowed)."""
        self._listeners.append(listener)

    def _emit(self, event: str, labels: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, labels)
            except Exception:  # noqa: BLE001 - metrics must never break answers
                pass

    def record_answer(self, path: str, reason: str | None, refused: bool, seconds: float) -> None:
        with self._lock:
            self.answers[path] += 1
            if path == "fallback":
                self.fallback_reasons[reason or "unknown"] += 1
            self.total_seconds += seconds
        self._emit("answer", {"path": path, "reason": reason, "refused": refused, "seconds": seconds})

    def record_refusal(self, kind: str) -> None:
        with self._lock:
            self.refusals[kind] += 1
        self._emit("refusal", {"kind": kind})

    def record_tool(self, name: str, origin: str) -> None:
        with self._lock:
            self.tools[f"{name}:{origin}"] += 1
        self._emit("tool", {"name": name, "origin": origin})

    def record_error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1
        self._emit("error", {"kind": kind})

    def snapshot(self) -> dict[str, Any]:
        """Plain-number copy: answers by path, model share, fallback reasons, refusals, tools, errors."""
        with self._lock:
            total = sum(self.answers.values())
            return {
                "answers_total": total,
                "answers_by_path": dict(self.answers),
                "model_share": (self.answers["model"] / total) if total else None,
                "fallback_reasons": dict(self.fallback_reasons),
                "refusals": dict(self.refusals),
                "tool_calls": dict(self.tools),
                "errors": dict(self.errors),
                "mean_seconds": (self.total_seconds / total) if total else None,
            }
