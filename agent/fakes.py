"""Small, real-enough stand-ins for tests and demos (no model files needed).

* :class:`KeywordSearch` - word-overlap product search over a catalog frame, honouring every filter of
  :class:`~tools.specs.SearchProductsArgs` and returning the documented result shape.
* :class:`FormulaDiscount` - a transparent discount "model" (a fixed formula) with predict/explain shapes.
* :class:`ScriptedChatModel` - a LangChain chat model whose reply is computed by a Python function of the
  conversation (simulates a good, a broken or a hallucinating LLM), with token streaming.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterator

import pandas as pd
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from core.errors import ValidationError
from tools.specs import ExplainDiscountArgs, PredictDiscountArgs, SearchProductsArgs

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    out = set()
    for w in _WORD.findall(str(text).lower()):
        out.add(w)
        if len(w) > 4 and w.endswith("s"):
            out.add(w[:-1])
    return out


class KeywordSearch:
    """Product search by word overlap with name/category/about (score in 0-1), with the contract's filters."""

    version = "keyword-fake-1"

    def __init__(self, catalog_frame: pd.DataFrame) -> None:
        self.products = catalog_frame.drop_duplicates("product_id").reset_index(drop=True)
        self._docs = [
            _words(f"{r.product_name} {r.category} {r.brand} {r.about_product}")
            for r in self.products.itertuples(index=False)
        ]
        self._names = [_words(n) for n in self.products["product_name"]]

    def search(self, args: SearchProductsArgs) -> dict[str, Any]:
        q = _words(args.query)
        p = self.products
        keep = pd.Series(True, index=p.index)
        if args.max_price is not None:
            keep &= p["discounted_price"] <= args.max_price
        if args.min_price is not None:
            keep &= p["discounted_price"] >= args.min_price
        if args.min_rating is not None:
            keep &= p["rating"] >= args.min_rating
        if args.min_rating_count is not None:
            keep &= p["rating_count"] >= args.min_rating_count
        if args.category:
            keep &= p["category"].str.contains(args.category, case=False, regex=False)
        scored = []
        for i in p.index[keep]:
            overlap = len(q & self._docs[i]) + 0.5 * len(q & self._names[i])
            if overlap > 0 or args.sort_by != "relevance":
                scored.append((overlap / (1.5 * max(1, len(q))), i))
        key = {
            "relevance": lambda t: (-t[0], t[1]),
            "rating": lambda t: (-(p.at[t[1], "rating"] if not math.isnan(p.at[t[1], "rating"]) else 0), -t[0]),
            "price_low": lambda t: (p.at[t[1], "discounted_price"], -t[0]),
            "price_high": lambda t: (-p.at[t[1], "discounted_price"], -t[0]),
            "discount": lambda t: (-p.at[t[1], "discount_percentage"], -t[0]),
        }[args.sort_by]
        if args.sort_by != "relevance":
            scored = [t for t in scored if t[0] > 0] or scored
        scored.sort(key=key)
        results = []
        for score, i in scored[: args.top_k]:
            r = p.loc[i]
            results.append({
                "product_id": r["product_id"], "product_name": r["product_name"], "category": r["category"],
                "discounted_price": _f(r["discounted_price"]), "actual_price": _f(r["actual_price"]),
                "discount_percentage": _f(r["discount_percentage"]), "rating": _f(r["rating"]),
                "rating_count": None if pd.isna(r["rating_count"]) else int(r["rating_count"]),
                "score": round(float(score), 4),
                "snippet": (r["review_content"] or r["about_product"] or "")[:200],
            })
        return {"results": results, "total_matches": len(scored)}


def _f(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


class FormulaDiscount:
    """discount = 10 + 4*log10(price) + 2*(4 - rating) + log10(1 + count), clipped to 0-90 (transparent)."""

    version = "formula-fake-1"
    card = {"metrics": {"test": {"mae": 1.23, "r2": 0.5}}, "features": ["actual_price", "rating", "rating_count"]}

    def _parts(self, args: PredictDiscountArgs) -> tuple[float, list[dict[str, Any]]]:
        if args.category.lower() == "unknowncategory":
            raise ValidationError("unknown category", invalid_fields={"category": "not in the training data"})
        base = 30.0
        parts = [
            {"feature": "actual_price", "value": round(4 * math.log10(args.actual_price) - 12, 2)},
            {"feature": "rating", "value": round(2 * (4 - args.rating), 2)},
            {"feature": "rating_count", "value": round(math.log10(1 + args.rating_count) - 2, 2)},
            {"feature": "category", "value": 1.5 if "watch" in args.category.lower() else -1.0},
        ]
        return base, parts

    def predict(self, args: PredictDiscountArgs) -> dict[str, Any]:
        base, parts = self._parts(args)
        value = max(0.0, min(90.0, base + sum(p["value"] for p in parts)))
        return {"predicted_discount_percentage": round(value, 2), "model_version": self.version}

    def explain(self, args: ExplainDiscountArgs) -> dict[str, Any]:
        base, parts = self._parts(args)
        out = self.predict(args)
        out.update(base_value=base, contributions=sorted(parts, key=lambda p: -abs(p["value"]))[:5])
        return out


class ScriptedChatModel(BaseChatModel):
    """Chat model whose reply is ``script(messages)``; streams it in small chunks. ``calls`` counts invocations."""

    script: Callable[[list[BaseMessage]], str]
    chunk_chars: int = 8
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        self.calls += 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.script(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        self.calls += 1
        text = self.script(messages)
        for i in range(0, len(text), self.chunk_chars):
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[i:i + self.chunk_chars]))


def searching_chat_model() -> ScriptedChatModel:
    """A well-behaved fake LLM: searches for the question verbatim, then cites the first result line."""

    def script(messages: list[BaseMessage]) -> str:
        from agent.protocol import format_tool_call

        last = str(messages[-1].content)
        if last.startswith("<tool_response"):
            lines = last.split("\n")
            return "From the catalog: " + (lines[1] if len(lines) > 2 else "nothing matched.")
        return format_tool_call("search_products", {"query": last})

    return ScriptedChatModel(script=script)


def fake_components(catalog: Any, llm: BaseChatModel | None = None) -> dict[str, Any]:
    """Runtime components over ``catalog`` (a ``data.catalog.Catalog``) with fakes for every model."""
    return {"catalog": catalog, "discount": FormulaDiscount(), "search": KeywordSearch(catalog.frame),
            "llm": llm or searching_chat_model()}
