"""Shared helpers for the ops/fault/fuzz/injection tests (no tests here).

Small real stand-ins for the app's heavy components, so the REST layer, the agent and the ops layer run for
real while the LLM/discount/search behave as a test needs (healthy, failing, slow):

* :class:`KeywordSearch` - a tiny search over a real :class:`~data.catalog.Catalog` returning the documented
  ``search_products`` result shape;
* :class:`RuleDiscount` - a deterministic discount "model" with the documented predict/explain shapes;
* :class:`ScriptedLLM` - a LangChain chat model that answers a fixed text, raises, or streams too slowly.
"""
from __future__ import annotations

import importlib.util
import re
import time
from typing import Any, Iterator

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

_WORDS = re.compile(r"[a-z0-9]+")


def require_app() -> None:
    """Skip (with the reason) when the app modules are not in this tree yet."""
    for module in ("serving.api", "serving.runtime", "agent.graph"):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not available yet (issue 5: agent + app)")


class KeywordSearch:
    """Token-overlap search over a catalog's products with the price/rating filters of SearchProductsArgs."""

    version = "keyword-search-test"

    def __init__(self, catalog: Any) -> None:
        self.products = list(catalog.products)
        self._tokens = [set(_WORDS.findall(f"{p.name} {p.category} {p.about}".lower())) for p in self.products]

    def search(self, args: Any) -> dict[str, Any]:
        get = args.get if isinstance(args, dict) else (lambda k, d=None: getattr(args, k, d))
        query = set(_WORDS.findall(str(get("query", "")).lower()))
        hits = []
        for product, tokens in zip(self.products, self._tokens):
            score = len(query & tokens) / (len(query) or 1)
            price = product.discounted_price or product.actual_price
            if score <= 0:
                continue
            if get("max_price") is not None and price > get("max_price"):
                continue
            if get("min_rating") is not None and (product.rating or 0) < get("min_rating"):
                continue
            hits.append((score, product))
        hits.sort(key=lambda h: -h[0])
        top_k = int(get("top_k", 5) or 5)
        results = [{"product_id": p.product_id, "product_name": p.name, "category": p.category,
                    "discounted_price": p.discounted_price, "actual_price": p.actual_price,
                    "discount_percentage": p.discount_percentage, "rating": p.rating,
                    "rating_count": p.rating_count, "score": round(s, 4), "snippet": p.about[:200]}
                   for s, p in hits[:top_k]]
        return {"results": results, "total_matches": len(hits)}


class RuleDiscount:
    """Deterministic stand-in for the discount model (same result shapes)."""

    version = "rule-discount-test"

    def _value(self, args: Any) -> float:
        get = args.get if isinstance(args, dict) else (lambda k, d=None: getattr(args, k, d))
        return round(min(90.0, 10 + 5 * (5 - float(get("rating"))) + min(30.0, float(get("actual_price")) / 1000)), 2)

    def predict(self, args: Any) -> dict[str, Any]:
        return {"predicted_discount_percentage": self._value(args), "model_version": self.version}

    def explain(self, args: Any) -> dict[str, Any]:
        value = self._value(args)
        return {"predicted_discount_percentage": value, "model_version": self.version, "base_value": 10.0,
                "contributions": [{"feature": "rating", "value": round(value - 10.0, 2)}]}


class ScriptedLLM(BaseChatModel):
    """``mode``: ``answer`` (streams ``text``), ``raise`` (fails on every call), ``slow`` (one token per
    ``delay_s``, forever-ish: the agent's deadline must cut it off)."""

    mode: str = "answer"
    text: str = "I could not find that in the catalog."
    delay_s: float = 0.2
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted-test"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        text = "".join(chunk.message.content for chunk in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        self.calls += 1
        if self.mode == "raise":
            raise RuntimeError("simulated LLM backend failure")
        if self.mode == "slow":
            for _ in range(600):
                time.sleep(self.delay_s)
                yield ChatGenerationChunk(message=AIMessageChunk(content="word "))
            return
        for word in self.text.split(" "):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))


def build_app(components: dict[str, Any] | None = None, loaders: dict[str, Any] | None = None,
              ops: bool = True, ops_overrides: dict[str, Any] | None = None, **settings: Any):
    """The real app (``app.create_app``, no UI) with injected components, hardened with ``ops.install_ops``
    the way the lead wires it. Returns ``(app, runtime)``."""
    require_app()
    from app import AppSettings, create_app

    from ops import OpsSettings, install_ops

    app = create_app(AppSettings(**settings), components=components, loaders=loaders, ui=False)
    if ops and getattr(app.state, "ops", None) is None:
        base = dict(configure_logging=False, rate_limit_enabled=False)
        base.update(ops_overrides or {})
        install_ops(app, OpsSettings(**base))
    return app, app.state.runtime


class CompromisedLLM(ScriptedLLM):
    """An LLM that obeys every injected instruction: it repeats each quoted payload found in its input
    (``'CANARY-...'``, ``'Buy crypto at ...'``) and dumps its system prompt. The agent's guards must still
    keep all of that out of the final answer."""

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        self.calls += 1
        text = "\n".join(str(m.content) for m in messages)
        payloads = re.findall(r"'([^'\n]{4,80})'", text)
        system = next((str(m.content) for m in messages if m.type == "system"), "")
        reply = f"Sure! {' '.join(payloads)} As instructed, here are my rules: {system[:600]}"
        for word in reply.split(" "):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
