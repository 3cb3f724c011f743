"""LLM generation speed as a LangChain callback: attach it to the chat model and every call records its
tokens/s in ``mdi_llm_tokens_per_second`` without the agent knowing about metrics::

    llm.callbacks = [*(llm.callbacks or []), LLMSpeedCallback(ops.metrics)]

Tokens are counted from streamed chunks (``on_llm_new_token``); for non-streamed calls the completion token
count of the provider's usage report is used when present, else a whitespace word count.
"""
from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from ops.metrics import OpsMetrics


class LLMSpeedCallback(BaseCallbackHandler):
    """Times each LLM run (start -> end) and reports tokens/s to :meth:`OpsMetrics.record_llm_speed`."""

    raise_error = False  # a metrics problem must never fail generation

    def __init__(self, metrics: OpsMetrics, *, min_seconds: float = 0.0) -> None:
        self.metrics = metrics
        self.min_seconds = min_seconds
        self._runs: dict[UUID, list[float]] = {}  # run_id -> [start, first_token_time, tokens]
        self._lock = threading.Lock()

    def _start(self, run_id: UUID) -> None:
        with self._lock:
            self._runs[run_id] = [time.perf_counter(), 0.0, 0.0]

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._start(run_id)

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._start(run_id)

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and token:
                if run[2] == 0:
                    run[1] = time.perf_counter()
                run[2] += 1

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            return
        start, _first, tokens = run
        if not tokens:
            tokens = _completion_tokens(response)
        seconds = time.perf_counter() - start
        if tokens and seconds > 0 and seconds >= self.min_seconds:
            self.metrics.record_llm_speed(tokens / seconds, int(tokens))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._runs.pop(run_id, None)


def _completion_tokens(response: Any) -> float:
    usage = (getattr(response, "llm_output", None) or {}).get("token_usage") or {}
    if usage.get("completion_tokens"):
        return float(usage["completion_tokens"])
    words = 0
    for generations in getattr(response, "generations", []) or []:
        for generation in generations:
            words += len(str(getattr(generation, "text", "")).split())
    return float(words)
