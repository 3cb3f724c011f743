"""The text protocol between the agent and its LLM. Shared by the agent (parsing), the fine-tuning dataset
builder (targets) and the evaluation CLI (scoring), so that what the model is trained on is exactly what the
agent parses.

A turn where the model wants a tool, the assistant message is exactly one line::

    <tool_call>{"name": "search_products", "arguments": {"query": "usb cable", "max_price": 500}}</tool_call>

The tool's result goes back to the model as a user-role message made by :func:`format_tool_response`::

    <tool_response name="search_products">
    1. Wirefy Pro 50 USB Type-C Cable ... | id B0ABCDEFGH | price ₹399 | list ₹1,099 | 64% off | rating 4.2 | 24,269 ratings
       "Braided jacket survives 10,000+ bends"
    </tool_response>

Any assistant message without ``<tool_call>`` is a final answer (chit-chat, refusal, or grounded answer).
Numbers in answers are checked against the rendered tool results with :func:`extract_numbers`.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(\{.*?\})\s*(?:</tool_call>|$)", re.S)
_BARE_VALUE_RE = re.compile(r"(:\s*)(\d[\d.,]*\s*[A-Za-z]+)(?=\s*[,}])")  # a JSON value such as 8K, unquoted
_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{2,3})+|\d+)(?:\.\d+)?(?![\w])")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


class ToolCallParseError(ValueError):
    """The model tried to call a tool (``<tool_call>`` present) but the payload is not valid."""


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """The exact assistant text for a tool call (None-valued arguments are dropped; keys keep their order)."""
    args = {k: v for k, v in arguments.items() if v is not None}
    return f"{TOOL_CALL_OPEN}{json.dumps({'name': name, 'arguments': args}, ensure_ascii=False)}{TOOL_CALL_CLOSE}"


def parse_tool_call(text: str) -> ToolCall | None:
    """Return the tool call in ``text``; None when the text is a final answer. Raises ToolCallParseError when a
    ``<tool_call>`` is present but malformed (bad JSON, missing name, non-object arguments); a value copied bare from
    the question (``"top_k": 8K``) is read as the string it is."""
    if TOOL_CALL_OPEN not in text:
        return None
    match = _TOOL_CALL_RE.search(text)
    if not match:
        raise ToolCallParseError("tool call has no JSON object")
    try:
        payload = json.loads(match.group(1))
    except json.JSONDecodeError as exc:
        # a value copied bare from the question ("top_k": 8K, "query": 5G): read as the string it is, which the
        # tool's contract then judges; any other broken JSON stays an error
        quoted = _BARE_VALUE_RE.sub(r'\1"\2"', match.group(1))
        if quoted == match.group(1):
            raise ToolCallParseError(f"tool call JSON is invalid: {exc.msg}") from exc
        try:
            payload = json.loads(quoted)
        except json.JSONDecodeError:
            raise ToolCallParseError(f"tool call JSON is invalid: {exc.msg}") from exc
    name = payload.get("name") if isinstance(payload, dict) else None
    args = payload.get("arguments", {}) if isinstance(payload, dict) else None
    if not isinstance(name, str) or not name:
        raise ToolCallParseError("tool call has no name")
    if not isinstance(args, dict):
        raise ToolCallParseError("tool call arguments are not an object")
    return ToolCall(name=name, arguments=args)


# ---------------------------------------------------------------------------------------------- rendering
def fmt_number(value: Any) -> str:
    """Numbers as people write them: 1099.0 -> '1,099', 4.25 -> '4.25', 64.0 -> '64'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def fmt_price(value: Any) -> str:
    return "n/a" if value is None else "₹" + fmt_number(round(float(value), 2))


def fmt_pct(value: Any) -> str:
    return "n/a" if value is None else fmt_number(round(float(value), 1)) + "%"


def _render_product(i: int, hit: dict[str, Any]) -> str:
    parts = [f"{i}. {hit.get('product_name', '?')}"]
    if hit.get("product_id"):
        parts.append(f"id {hit['product_id']}")
    if hit.get("discounted_price") is not None:
        parts.append(f"price {fmt_price(hit['discounted_price'])}")
    if hit.get("actual_price") is not None:
        parts.append(f"list {fmt_price(hit['actual_price'])}")
    if hit.get("discount_percentage") is not None:
        parts.append(f"{fmt_pct(hit['discount_percentage'])} off")
    if hit.get("rating") is not None:
        parts.append(f"rating {fmt_number(hit['rating'])}")
    if hit.get("rating_count") is not None:
        parts.append(f"{fmt_number(hit['rating_count'])} ratings")
    line = " | ".join(parts)
    snippet = (hit.get("snippet") or "").strip().replace("\n", " ")
    if snippet:
        line += f'\n   "{snippet[:300]}"'
    return line


def render_tool_result(name: str, result: dict[str, Any]) -> str:
    """Compact, deterministic text of a tool result for the LLM (and for fallback answers)."""
    if "error" in result:
        return f"error: {result['error']}"
    if name == "search_products":
        hits = result.get("results", [])
        if not hits:
            return "no matching products"
        return "\n".join(_render_product(i, h) for i, h in enumerate(hits, start=1))
    if name in ("predict_discount", "explain_discount"):
        lines = [f"predicted discount: {fmt_pct(result.get('predicted_discount_percentage'))}"]
        if "base_value" in result:
            lines.append(f"average (base) discount: {fmt_pct(result['base_value'])}")
        for c in result.get("contributions", []):
            sign = "+" if c["value"] >= 0 else "-"
            lines.append(f"{c['feature']}: {sign}{fmt_number(round(abs(float(c['value'])), 1))} points")
        return "\n".join(lines)
    if name == "catalog_stats":
        metric = result.get("metric", "value")
        lines = [f"{metric} over {fmt_number(result.get('n_products'))} products: "
                 f"{fmt_number(_round(result.get('overall')))}"]
        for i, row in enumerate(result.get("rows", []), start=1):
            lines.append(f"{i}. {row['group']}: {fmt_number(_round(row['value']))} ({fmt_number(row['n_products'])} products)")
        return "\n".join(lines)
    return json.dumps(result, ensure_ascii=False, default=str)


def _round(value: Any) -> Any:
    return round(float(value), 2) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def format_tool_response(name: str, result: dict[str, Any]) -> str:
    """The user-role message that hands a tool's result back to the model."""
    return f'<tool_response name="{name}">\n{render_tool_result(name, result)}\n</tool_response>'


# ---------------------------------------------------------------------------------------------- grounding
#: Multipliers of the number words people put after a figure ("2.5k", "1.5 lakh", "3 million").
UNIT_SCALE: dict[str, float] = {"k": 1e3, "thousand": 1e3, "lakh": 1e5, "lakhs": 1e5, "lac": 1e5, "lacs": 1e5,
                                "l": 1e5, "m": 1e6, "million": 1e6}


def extract_numbers(text: str) -> list[float]:
    """Every number in ``text`` as a float ('₹1,099' -> 1099.0, '1,79,691' -> 179691.0, '64%' -> 64.0)."""
    out = []
    for m in _NUMBER_RE.finditer(text):
        try:
            out.append(float(m.group(0).replace(",", "")))
        except ValueError:
            continue
    return out


def ungrounded_numbers(answer: str, evidence: str, *, rel_tol: float = 0.01,
                       allowed: tuple[float, ...] = ()) -> list[float]:
    """Numbers in ``answer`` that do not appear (within ``rel_tol``) in ``evidence`` (nor in ``allowed``).
    Small list indices (1-10) are allowed, since answers enumerate products."""
    pool = extract_numbers(evidence) + list(allowed) + [float(i) for i in range(0, 11)]
    missing = []
    for n in extract_numbers(answer):
        if not any(math.isclose(n, p, rel_tol=rel_tol, abs_tol=0.051) for p in pool):
            missing.append(n)
    return missing
