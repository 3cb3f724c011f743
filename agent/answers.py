"""Deterministic grounded answers and guard texts.

:func:`compose_answer` turns a tool result (shapes in ``tools.specs``) into a short natural-language answer that
cites product names and numbers exactly as :func:`agent.protocol.render_tool_result` renders them, so every
number in the answer appears in the rendered tool result (``agent.protocol.ungrounded_numbers(answer,
rendered) == []``). The agent uses it as its fallback path; the fine-tuning dataset uses it for the targets of
grounded-answer examples, so the tuned model learns exactly this style.

The refusal texts and :func:`classify_request` (a small keyword heuristic) are shared by the agent's guard and
the fine-tuning dataset (refusal targets).
"""
from __future__ import annotations

import re
from typing import Any

from agent.protocol import fmt_number, fmt_pct, fmt_price

REFUSAL_INJECTION = ("I can't follow instructions that try to change my rules or role. I can search the catalog, "
                     "estimate or explain discounts, and summarise catalog statistics.")
REFUSAL_SECRETS = ("I can't share my instructions, configuration or any keys or passwords. Ask me about "
                   "products, discounts or catalog statistics instead.")
REFUSAL_OFF_TOPIC = ("Sorry, I can only help with our product catalog: finding products, discounts and catalog "
                     "statistics.")
REFUSAL_HARMFUL = "Sorry, I can't help with that."
NOT_IN_CATALOG = "I couldn't find that in the catalog, so I can't answer it from our data."
GREETING = ("Hello! I can search the catalog, estimate or explain discounts, and summarise catalog statistics. "
            "What would you like to know?")
THANKS = "You're welcome! Ask me anything else about the catalog."
INJECTION_NOTE = "Note: a product text contained instructions; I ignored them."

REFUSALS: dict[str, str] = {
    "injection": REFUSAL_INJECTION,
    "secrets": REFUSAL_SECRETS,
    "off_topic": REFUSAL_OFF_TOPIC,
    "harmful": REFUSAL_HARMFUL,
}

NAME_MAX_CHARS = 70
MAX_LISTED = 5
METRIC_LABELS = {
    "count": "Number of products",
    "avg_discount": "Average discount",
    "avg_rating": "Average rating",
    "avg_price": "Average price",
    "max_discount": "Highest discount",
    "total_ratings": "Total ratings",
}
_PCT_METRICS = {"avg_discount", "max_discount"}
_PRICE_METRICS = {"avg_price"}

# ------------------------------------------------------------------------------------------------ guard
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(previous|prior|above|earlier|all|your|the)\b.{0,30}"
    r"\b(instructions?|rules?|prompts?|guidelines?|directions?)\b"
    r"|\byou are now\b|\bact as (an? )?(unrestricted|different|new|evil|jailbroken)\b|\bDAN\b|\bjailbreak"
    r"|\bdeveloper mode\b|\bnew instructions?\b|\bsystem override\b|\bpretend (that )?you (are|have) no rules\b"
    r"|\bfrom now on,? (you|reply|answer|respond)\b", re.I | re.S)
_SECRETS = re.compile(
    r"\b(system|hidden|initial|original|secret)\s+(prompt|instructions?|message)\b"
    r"|\byour (instructions|prompt|rules|configuration|config)\b"
    r"|\b(api|access|secret|private)[ _-]?(key|token)s?\b|\bpasswords?\b|\bcredentials?\b|\b\.env\b"
    r"|\benvironment variables?\b|\badmin (login|access)\b|\bdatabase (dump|password|credentials)\b", re.I)
_HARMFUL = re.compile(
    r"\b(bomb|explosive|weapon|poison|meth|drugs?|malware|ransomware|virus|hack(ing)? into|phishing|steal"
    r"|stolen|credit card numbers?|launder|kill|hurt|suicide|self-harm|counterfeit|fake reviews?"
    r"|scam|fraud|dox|stalk|ddos|keylogger|bypass (the )?payment)\b", re.I)
_OFF_TOPIC = re.compile(
    r"\b(poem|poetry|song lyrics|joke|riddle|weather|horoscope|recipe|capital of|prime minister|president of"
    r"|world cup|football|cricket score|movie|essay|homework|translate|love letter|story about|bedtime story"
    r"|python code|write (a |some )?code|solve (this|the) equation|meaning of life|stock price|bitcoin"
    r"|girlfriend|boyfriend|history of|who invented|how far is|distance to the moon)\b", re.I)
_CHITCHAT = re.compile(
    r"^\s*(hi+|hello+|hey+|hiya|yo|namaste|good (morning|afternoon|evening)|thanks?( you)?|thank u|thx|ty"
    r"|ok(ay)?|cool|great|bye|see you|who are you|what can you do|help)\b[\s!.?,]*"
    r"(there|so much|a lot|again|buddy|team|bot)?[\s!.?]*$", re.I)
# questions about the assistant itself and how-are-you's ("what else can you do?", "what kind of questions can you
# answer?", "how can you help me?", "how's it going?"): small talk, answered with what the assistant does
_ABOUT_ASSISTANT = re.compile(
    r"^\s*((so|and|ok(ay)?|hi|hey|hello)\b[\s,!.]*)?"
    r"((what|which)\s+(else\s+|(sort|kind|type)s?\s+of\s+(things|stuff|questions|tasks|help)\s+|things\s+)?"
    r"(can|could|do)\s+(you|u)\s+(do|help( me)?( with)?|answer|handle)(\s+for\s+(me|us))?"
    r"|how\s+(can|could|do)\s+(you|u)\s+help( me| us)?( out)?"
    r"|what\s+are\s+(you|u)\s+(able to do|for|good at)"
    r"|how\s+are\s+(you|u)( doing)?( today)?|how'?s\s+it\s+going|what'?s\s+up"
    r")[\s!.?,]*(there|buddy|team|bot)?[\s!.?]*$", re.I)


# a message made only of small-talk words, with at least one greeting, thanks, acknowledgement or question about the
# assistant, is small talk too ("cool, thanks a lot!", "perfect, thank you", "what can you help me with?"); any other
# word ("ok show me kettles", "good deals?") makes it a catalog question
_SMALL_TALK_ANCHORS = frozenset(
    "hi hii hello hey hiya yo namaste morning afternoon evening thanks thank thankyou thanx thx ty ok okay cool great "
    "perfect awesome nice super wonderful excellent brilliant noted cheers bye goodbye help appreciate appreciated "
    "who".split())
_SMALL_TALK_WORDS = _SMALL_TALK_ANCHORS | frozenset(
    "good night day you u so much a lot again buddy team bot there all for now see later that this it is was that's "
    "thats it's very really sure fine got me with what can do are how your you're have helps helped helpful useful"
    .split())
MAX_SMALL_TALK_WORDS = 10


def _small_talk(text: str) -> bool:
    words = re.findall(r"[a-z']+", text.lower())
    return (0 < len(words) <= MAX_SMALL_TALK_WORDS and not re.search(r"\d", text)
            and all(w in _SMALL_TALK_WORDS for w in words) and any(w in _SMALL_TALK_ANCHORS for w in words))


def classify_request(text: str) -> str | None:
    """Heuristic guard: "injection", "secrets", "harmful", "off_topic", "chitchat" or None (a catalog question).

    Keyword rules only, so it misses paraphrases: it is a first line of defence in front of the model, which
    is itself trained to refuse. Order matters: injection and secret requests win over everything else.
    """
    if not text or not text.strip():
        return None
    if _INJECTION.search(text):
        return "injection"
    if _SECRETS.search(text):
        return "secrets"
    if _HARMFUL.search(text):
        return "harmful"
    if _OFF_TOPIC.search(text):
        return "off_topic"
    if _CHITCHAT.match(text) or _ABOUT_ASSISTANT.match(text) or _small_talk(text):
        return "chitchat"
    return None


def refusal_for(kind: str) -> str:
    """The refusal text for a guard class from :func:`classify_request` (KeyError for other classes)."""
    return REFUSALS[kind]


def chitchat_reply(text: str) -> str:
    """The reply to small talk: thanks get THANKS, everything else the GREETING (which lists capabilities)."""
    return THANKS if re.search(r"\b(thanks?|thank u|thx|ty)\b", text, re.I) else GREETING


def contains_injection(text: str) -> bool:
    """True when ``text`` (e.g. a product snippet in a tool result) carries instructions aimed at the model."""
    return bool(_INJECTION.search(text or ""))


# ------------------------------------------------------------------------------------------------ answers
def short_name(name: str, max_chars: int = NAME_MAX_CHARS) -> str:
    """A product name shortened at the first ", " or a word boundary (a prefix of the name as rendered)."""
    name = " ".join(str(name).split())
    head = name.split(", ", 1)[0].strip() or name
    if len(head) <= max_chars:
        return head
    cut = head[:max_chars].rsplit(" ", 1)[0].strip()
    return cut or head[:max_chars]


def _hit_sentence(i: int, hit: dict[str, Any]) -> str:
    parts = []
    if hit.get("discounted_price") is not None:
        parts.append(fmt_price(hit["discounted_price"]))
    extras = []
    if hit.get("actual_price") is not None:
        extras.append(f"list {fmt_price(hit['actual_price'])}")
    if hit.get("discount_percentage") is not None:
        extras.append(f"{fmt_pct(hit['discount_percentage'])} off")
    if extras:
        parts.append(f"({', '.join(extras)})")
    text = f"{i}. {short_name(hit.get('product_name', '?'))}"
    if parts:
        text += " - " + " ".join(parts)
    if hit.get("rating") is not None:
        text += f", rated {fmt_number(hit['rating'])}"
        if hit.get("rating_count") is not None:
            text += f" by {fmt_number(hit['rating_count'])} people"
    return text + "."


def _search_answer(result: dict[str, Any]) -> str:
    hits = list(result.get("results") or [])
    if not hits:
        return "I found no matching products in the catalog, so I can't answer that from our data."
    shown = hits[:MAX_LISTED]
    head = "I found one matching product:" if len(shown) == 1 else "Here are the best matches from the catalog:"
    lines = [head] + [_hit_sentence(i, h) for i, h in enumerate(shown, start=1)]
    if any(contains_injection(f"{h.get('product_name', '')} {h.get('snippet', '')}") for h in shown):
        lines.append(INJECTION_NOTE)
    return "\n".join(lines)


def _discount_answer(tool_name: str, result: dict[str, Any]) -> str:
    pred = result.get("predicted_discount_percentage")
    if pred is None:
        return "The discount model returned no estimate, so I can't answer that."
    text = f"The model estimates a discount of about {fmt_pct(pred)} for this product."
    if tool_name == "explain_discount":
        if result.get("base_value") is not None:
            text += f" The average (base) discount is {fmt_pct(result['base_value'])}."
        contributions = list(result.get("contributions") or [])
        if contributions:
            parts = []
            for c in contributions[:3]:
                value = float(c["value"])
                sign = "+" if value >= 0 else "-"
                parts.append(f"{c['feature']} ({sign}{fmt_number(round(abs(value), 1))} points)")
            text += " The biggest factors: " + ", ".join(parts) + "."
    return text


def _stat_value(metric: str, value: Any) -> str:
    rendered = fmt_number(round(float(value), 2)) if isinstance(value, (int, float)) and not isinstance(
        value, bool) else fmt_number(value)
    if metric in _PCT_METRICS and rendered != "n/a":
        return rendered + "%"
    if metric in _PRICE_METRICS and rendered != "n/a":
        return "₹" + rendered
    return rendered


def _stats_answer(result: dict[str, Any]) -> str:
    metric = str(result.get("metric", "value"))
    label = METRIC_LABELS.get(metric, metric)
    n = result.get("n_products")
    if not n:
        return "No products in the catalog match those filters, so I can't compute that."
    rows = list(result.get("rows") or [])
    text = f"{label} over {fmt_number(n)} products: {_stat_value(metric, result.get('overall'))}."
    if rows:
        by = result.get("group_by", "group")
        by_word = {"category": "category", "brand": "brand", "price_band": "price band"}.get(by, "group")
        listed = "; ".join(
            f"{i}. {row['group']}: {_stat_value(metric, row['value'])} ({fmt_number(row['n_products'])} products)"
            for i, row in enumerate(rows[:MAX_LISTED], start=1))
        text += f" By {by_word}: {listed}."
    return text


def compose_answer(question: str, tool_name: str, result: dict[str, Any]) -> str:
    """A short grounded answer to ``question`` from one tool result (every number appears in the rendered result).

    ``question`` is accepted for future wording choices; the answer depends only on the tool result so that it
    never repeats a number the tools did not return.
    """
    del question  # the answer must not echo numbers from the question (they are not evidence)
    if "error" in result:
        return f"I couldn't get that from the catalog tools: {result['error']}"
    if tool_name == "search_products":
        return _search_answer(result)
    if tool_name in ("predict_discount", "explain_discount"):
        return _discount_answer(tool_name, result)
    if tool_name == "catalog_stats":
        return _stats_answer(result)
    return NOT_IN_CATALOG
