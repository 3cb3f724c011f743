"""What the agent does with the model's routing reply: send its call (as vetted), send its own short reply, or let
the rules choose (:mod:`agent.router`). Shared by the graph's ``route`` node (:mod:`agent.graph`) and the
evaluator's "as served" score (``finetune.evaluate``), so the figure is the agent's own behaviour."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agent import answers
from agent.arguments import vet_arguments
from agent.protocol import ToolCall, ToolCallParseError, parse_tool_call
from agent.router import CatalogVocabulary, asks_for_estimate, understand
from agent.stated import price_bounds, stated_sort, stated_top_k

MAX_CHITCHAT_CHARS = 400
# the tools' argument and field names ("avg_price", "metric:", "top_k"): never words for a person
_SCHEMA_WORDS = re.compile(r"\b[a-z]+_[a-z_]+\b|\b(metric|group_by|sort_by|query)\s*:", re.I)
MAX_TOP_K = 20  # the most results a request may ask for (tools.specs.SearchProductsArgs.top_k)


@dataclass(frozen=True)
class RouteDecision:
    """One of: ``call`` (the model's call, arguments as the agent sends them), ``reply`` (the model's own text,
    sent as it is: small talk or a refusal), or ``fallback`` (why the rules choose instead)."""

    call: ToolCall | None = None
    reply: str | None = None
    fallback: str | None = None


def request_cap(question: str, requested: int, call: ToolCall | None = None) -> int:
    """The most results a request gets: its ``top_k``, or the larger count the question asks for ("show me 10
    HDMI cables": as ``agent.stated.stated_top_k`` reads it, or as the model's call has it where the question
    writes that number as a whole token), at most :data:`MAX_TOP_K`."""
    asked = list(stated_top_k(question))
    k = call.arguments.get("top_k") if call is not None else None
    if isinstance(k, int) and not isinstance(k, bool) and re.search(rf"(?<![\w.,]){k}(?![\w.,])", question):
        asked.append(k)
    return max([requested, *[k for k in asked if 0 < k <= MAX_TOP_K]])


def capped_top_k(name: str, args: dict[str, Any], limit: int) -> dict[str, Any]:
    """A search call's ``top_k`` capped by the request's (the request's when the call has none or a bad one)."""
    if name == "search_products":
        k = args.get("top_k")
        args["top_k"] = min(k, limit) if isinstance(k, int) and k > 0 else limit
    return args


def decide_route(text: str, question: str, vocab: CatalogVocabulary, top_k: int) -> RouteDecision:
    """The agent's decision on the model's reply ``text`` to ``question`` (``top_k``: the request's cap, raised
    to a count the model's call reads from the question, :func:`request_cap`)."""
    try:
        call = parse_tool_call(text)
    except ToolCallParseError:
        return RouteDecision(fallback="unparseable_tool_call")
    if call is None:
        kind = answers.classify_request(question)
        is_refusal = any(text.strip().startswith(r[:40]) for r in answers.REFUSALS.values())
        if is_refusal and kind is None and (vocab.match_category(question) or vocab.match_brand(question)):
            # the input guard passed and the question names catalog products: a false refusal
            return RouteDecision(fallback="model_refused_on_topic")
        if is_refusal or (kind == "chitchat" and len(text) <= MAX_CHITCHAT_CHARS and not _SCHEMA_WORDS.search(text)):
            return RouteDecision(reply=text)
        if kind == "chitchat":  # rambling, or the tools' field names in a reply to a person: the agent's own words
            return RouteDecision(fallback="chitchat_reply_replaced")
        return RouteDecision(fallback="no_tool_call")
    top_k = request_cap(question, top_k, call)
    call = switched_tool(call, question, vocab, top_k)
    args, rejected = vet_call(call, question, vocab, top_k)
    return RouteDecision(fallback=rejected) if rejected else RouteDecision(call=ToolCall(call.name, args))


def switched_tool(call: ToolCall, question: str, vocab: CatalogVocabulary, top_k: int) -> ToolCall:
    """The model's call, or the rules' discount call where the model searched for a question that asks for a
    discount estimate or its explanation (``agent.router.asks_for_estimate``), states every field the discount
    tools need, and words nothing a search would use: no price bound, order or result count ("how much off would
    a USB cable at ₹349, rated 4.0 with 40k ratings get?")."""
    if call.name != "search_products" or not asks_for_estimate(question):
        return call
    if price_bounds(question) or stated_sort(question) is not None or stated_top_k(question):
        return call
    intent = understand(question, vocab, top_k)
    if intent.call.name in ("predict_discount", "explain_discount") and not intent.missing:
        return ToolCall(intent.call.name, dict(intent.call.arguments))
    return call


def vet_call(call: ToolCall, question: str, vocab: CatalogVocabulary, top_k: int) -> tuple[dict[str, Any], str | None]:
    """A model call's arguments as sent (``agent.arguments.vet_arguments``: ``(arguments, reason)`` where the rules
    must choose instead), ``top_k`` capped by the request's before the checks and after them (they may set the
    number the question asks for)."""
    args = capped_top_k(call.name, dict(call.arguments), top_k)
    args, rejected = vet_arguments(call.name, args, question, vocab)
    return (args if rejected else capped_top_k(call.name, args, top_k)), rejected


def rules_call(question: str, vocab: CatalogVocabulary, top_k: int) -> tuple[ToolCall | None, str | None]:
    """The rules' call for ``question``, or ``(None, answer)`` where the agent answers without a tool: small talk,
    or a discount question missing some of the fields the discount tools need."""
    if answers.classify_request(question) == "chitchat":
        return None, answers.chitchat_reply(question)
    intent = understand(question, vocab, top_k)
    if intent.missing and intent.call.name in ("predict_discount", "explain_discount"):
        return None, missing_fields_message(intent.missing)
    return ToolCall(intent.call.name, dict(intent.call.arguments)), None


def missing_fields_message(missing: tuple[str, ...]) -> str:
    labels = {"category": "the category", "actual_price": "the list price (₹)", "rating": "the star rating",
              "rating_count": "the number of ratings"}
    wanted = ", ".join(labels.get(f, f) for f in missing)
    return (f"To estimate a discount I need the category, list price, rating and number of ratings. "
            f"Please tell me {wanted}.")
