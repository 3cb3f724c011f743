"""Input and output guards.

Input: prompt injection (also inside product text returned by tools), requests for secrets or the system prompt,
harmful and off-topic requests are refused politely with a fixed message (no LLM involved, so the refusal cannot
be talked around). Output: every number in an answer must appear in the tool results (or the question), product
ids must be ones the tools returned, and the answer must not echo the system prompt or protocol tags.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

from agent.protocol import TOOL_CALL_OPEN, UNIT_SCALE, extract_numbers, ungrounded_numbers

GuardKind = Literal["ok", "injection", "secrets", "harmful", "off_topic"]

_DEFAULT_REFUSALS: dict[str, str] = {
    "injection": "I can't follow instructions that try to change how I work. I can help with questions about "
                 "the product catalog, discounts and catalog statistics.",
    "secrets": "I can't share secrets, credentials or my internal instructions. I can help with questions about "
               "the product catalog, discounts and catalog statistics.",
    "harmful": "I can't help with that. I can help with questions about the product catalog, discounts and "
               "catalog statistics.",
    "off_topic": "That is outside what I can help with: I answer questions about this store's product catalog "
                 "(products, prices, ratings, reviews), discount estimates and catalog statistics.",
}


def refusal_message(kind: str) -> str:
    """The polite refusal for a guard kind (texts from ``agent.answers`` when it defines ``REFUSAL_<KIND>``)."""
    try:
        from agent import answers
    except ImportError:  # pragma: no cover - answers.py is part of the product
        answers = None  # type: ignore[assignment]
    text = getattr(answers, f"REFUSAL_{kind.upper()}", None) if answers else None
    return text if isinstance(text, str) and text else _DEFAULT_REFUSALS[kind]


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I | re.S)


INJECTION_RE = _rx(
    r"\b(ignore|disregard|forget|override|bypass|skip)\b[^.?!\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the|these|those|system)\b[^.?!\n]{0,30}\b(instructions?|rules?|prompts?|guidelines?|directions?|guardrails?|policies|policy|restrictions?)",
    r"\bnew (system )?instructions?\s*:",
    r"\byou are (now|no longer)\b",
    r"\b(pretend|act|behave) (to be|as if|like you are|as an? (?!marketing|analyst))",
    r"\bjailbreak|\bDAN mode\b|\bdeveloper mode\b|\bdo anything now\b",
    r"(^|\n)\s*(system|assistant)\s*:",
    r"<\s*/?\s*(tool_call|tool_response|system|im_start|im_end)",
    r"\b(from now on|instead),? (you|respond|reply|answer|say)\b",
    r"\b(reply|respond|answer) only with\b",
)
SECRETS_RE = _rx(
    r"\bsystem[\s_-]?prompt\b",
    r"\b(reveal|show|print|repeat|tell|give|share|display|dump|leak|output|what (are|is|were))\b[^.?!\n]{0,30}\b(your|the)\b[^.?!\n]{0,20}\b(instructions|prompt|rules|guidelines|configuration|config)\b",
    r"\b(api[\s_-]?keys?|passwords?|passwd|credentials?|secret[\s_-]?keys?|private[\s_-]?keys?|access[\s_-]?tokens?|auth(entication)?[\s_-]?tokens?|bearer tokens?|ssh keys?)\b",
    r"\b(environment variables?|env vars?|\.env\b|/etc/passwd|hf_token|openai_api_key)",
    r"\b(your|the|any|share|reveal|tell me|show me)\b[^.?!\n]{0,15}\bsecrets?\b",
    r"\brepeat\b[^.?!\n]{0,40}\b(above|before|earlier|previous|verbatim)\b",
    r"\bstarting with\b[^.?!\n]{0,5}['\"]?you are\b",
)
HARMFUL_RE = _rx(
    r"\b(bombs?|explosives?|detonat\w*|nerve agent|bioweapon|napalm|molotov)\b",
    r"\b(how (to|do i|can i)|help me|ways to)\b[^.?!\n]{0,40}\b(kill|murder|hurt|poison|stab|shoot|kidnap|stalk)\b",
    r"\b(make|build|buy|get)\b[^.?!\n]{0,20}\b(guns?|weapons?|meth|cocaine|heroin|drugs)\b",
    r"\b(malware|ransomware|keylogger|ddos|botnet|phishing|credit card numbers|carding)\b",
    r"\bhack(ing)? (into|someone|an? account|the)\b",
    r"\b(fake|fraudulent|bogus|paid)\b[^.?!\n]{0,20}\breviews?\b",
    r"\b(suicide|self[\s-]?harm)\b",
    r"\b(steal|shoplift|launder)\w*\b",
)
OFF_TOPIC_RE = _rx(
    r"\bweather\b", r"\bcapital (city )?of\b", r"\b(poem|haiku|song lyrics|limerick|essay|short story)\b",
    r"\b(tell me a )?joke\b", r"\brecipe\b", r"\bwho (won|is the (president|prime minister|king|ceo))\b",
    r"\btranslate\b", r"\b(write|fix|debug) (some |a |my )?(python|javascript|java|sql|c\+\+|code|program)\b",
    r"\bhomework\b", r"\b(movie|film|football|cricket|election|horoscope|stock market|bitcoin|crypto)\b",
    r"\bmeaning of life\b", r"\b(solve|integrate|differentiate) (this|the)?\b", r"\bhistory of\b",
)
DOMAIN_RE = _rx(
    r"\b(products?|items?|price[sd]?|pricing|cost|₹|rs\.?|rupees?|inr|discounts?|deals?|offers?|sale|ratings?|rated|"
    r"reviews?|reviewers?|customers?|buyers?|catalog(ue)?|categor(y|ies)|brands?|buy|sell|stock|cheap\w*|"
    r"expensive|marketing|campaign|average|bestsell\w*|top[- ]rated|recommend\w*|compare|amazon|listing)\b",
)

# shopping words that keep a question naming an off-topic subject on topic ("movie-night smart TV deals"); the
# generic words of DOMAIN_RE (price, cost, average, rated...) do not: "what's the bitcoin price now?" is off topic
SHOPPING_RE = _rx(
    r"\b(products?|items?|₹|rs\.?|rupees?|inr|discounts?|deals?|offers?|sale|reviews?|reviewers?|catalog(ue)?|"
    r"categor(y|ies)|brands?|buy|sell|cheap\w*|expensive|marketing|campaign|bestsell\w*|top[- ]rated|recommend\w*|"
    r"compare|amazon|listing)\b",
)

# Injection phrasing inside product text (descriptions, reviews) returned by tools.
HIDDEN_INSTRUCTION_RE = INJECTION_RE
REDACTED = "[instruction-like text removed]"
_SENTENCE_RE = re.compile(r"[^.!?\n|]*[.!?\n|]?")


@dataclass(frozen=True)
class InputVerdict:
    kind: GuardKind
    reason: str = ""

    @property
    def refused(self) -> bool:
        return self.kind != "ok"

    @property
    def message(self) -> str:
        return refusal_message(self.kind) if self.refused else ""


def _on_topic(text: str, domain_words: Iterable[str], words: re.Pattern[str] = DOMAIN_RE) -> bool:
    """Whether the text has a shop word (``words``) or a catalog word (``domain_words``: brands, categories)."""
    if words.search(text):
        return True
    lowered = text.lower()
    return any(w and re.search(rf"\b{re.escape(w)}\b", lowered) for w in domain_words)


def check_input(question: str, domain_words: Iterable[str] = ()) -> InputVerdict:
    """Classify a user question. Combines the shared heuristic (``agent.answers.classify_request``, also used to
    build the fine-tuning refusals) with this module's broader patterns. ``domain_words``: in-domain vocabulary
    (e.g. catalog brands/categories) that keeps a question on-topic when it matches an off-topic pattern."""
    from agent.answers import classify_request

    text = question.strip()
    shared = classify_request(text)
    if shared in ("injection", "secrets", "harmful"):
        return InputVerdict(shared, "shared classifier")  # type: ignore[arg-type]
    for kind, rx in (("injection", INJECTION_RE), ("secrets", SECRETS_RE), ("harmful", HARMFUL_RE)):
        m = rx.search(text)
        if m:
            return InputVerdict(kind, f"matched {m.group(0)[:60]!r}")  # type: ignore[arg-type]
    if shared == "off_topic" and not _on_topic(text, domain_words):
        return InputVerdict("off_topic", "shared classifier")
    m = OFF_TOPIC_RE.search(text)
    if m and not _on_topic(text, domain_words, SHOPPING_RE):
        return InputVerdict("off_topic", f"matched {m.group(0)[:60]!r}")
    return InputVerdict("ok")


def _hidden_instruction(text: str) -> bool:
    from agent.answers import contains_injection
    return bool(HIDDEN_INSTRUCTION_RE.search(text) or SECRETS_RE.search(text) or contains_injection(text))


def sanitize_text(text: str) -> tuple[str, bool]:
    """Remove sentences that read like instructions to the assistant from product text. Returns (clean, found)."""
    if not text or not _hidden_instruction(text):
        return text, False
    pieces = []
    for sentence in _SENTENCE_RE.findall(text):
        if sentence and _hidden_instruction(sentence):
            pieces.append(REDACTED + " ")
        else:
            pieces.append(sentence)
    return "".join(pieces).strip(), True


def sanitize_result(result: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Copy of a tool result with instruction-like text removed from every string field of its products.
    Returns (clean result, number of fields changed)."""
    changed = 0

    def clean(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, str):
            new, found = sanitize_text(value)
            changed += found
            return new
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(result), changed


# ------------------------------------------------------------------------------------------------ output
_PRODUCT_ID_RE = re.compile(r"\bB0[A-Z0-9]{8}\b")
_LEAK_MARKERS = ("To use a tool, reply with only", "Answer only from tool results", "You are the catalog assistant",
                 "Refuse requests for secrets")


@dataclass(frozen=True)
class OutputVerdict:
    ok: bool
    problems: list[str] = field(default_factory=list)
    ungrounded: list[float] = field(default_factory=list)


def check_output(answer: str, evidence: str, question: str = "", *,
                 allowed_numbers: tuple[float, ...] = ()) -> OutputVerdict:
    """Is ``answer`` grounded in ``evidence`` (rendered tool results)? Numbers stated in the question count as
    grounded (the user said them)."""
    problems: list[str] = []
    text = answer.strip()
    if not text:
        return OutputVerdict(False, ["empty answer"])
    if TOOL_CALL_OPEN in text or "<tool_response" in text:
        problems.append("protocol tags in answer")
    if any(marker.lower() in text.lower() for marker in _LEAK_MARKERS):
        problems.append("answer echoes the system prompt")
    missing = ungrounded_numbers(text, evidence, allowed=tuple(extract_numbers(question)) + allowed_numbers)
    if missing:
        problems.append(f"numbers not in tool results: {missing[:5]}")
    unknown_ids = sorted(set(_PRODUCT_ID_RE.findall(text)) - set(_PRODUCT_ID_RE.findall(evidence)))
    if unknown_ids:
        problems.append(f"product ids not in tool results: {unknown_ids[:5]}")
    misattributed = misattributed_numbers(text, evidence, allowed=tuple(extract_numbers(question)) + allowed_numbers)
    if misattributed and not missing:
        problems.append(f"numbers stated for the wrong product: {misattributed[:5]}")
    return OutputVerdict(not problems, problems, missing)


# "1. <name> | id ... | price ₹... | ..." (agent.protocol's rendering); the name ends at the first field label
_RESULT_LINE_RE = re.compile(
    r"^\s*\d+\.\s+(?P<name>.+?)\s*\|(?P<facts>\s*(?:id |price |list |rating |[\d.,]+%? (?:off|ratings)).*)$")
_LIST_PRICE_RE = re.compile(r"\blist(?: price)?\s*(?:of\s*)?₹\s*([\d,]+(?:\.\d+)?)", re.I)


_RUPEES_RE = re.compile(r"₹\s*(\d[\d,]*(?:\.\d+)?)")


def _amount(m: re.Match[str]) -> float:
    """The rupee amount a ``_RUPEES_RE`` / ``_LIST_PRICE_RE`` match holds ("₹1,099" -> 1099.0)."""
    return float(m.group(1).replace(",", ""))


def _result_products(evidence: str) -> list[tuple[str, str]]:
    """(name, its rendered line and the snippet line below it) for each product line of a search result."""
    lines = evidence.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = _RESULT_LINE_RE.match(line)
        if m:
            snippet = lines[i + 1] if i + 1 < len(lines) and not _RESULT_LINE_RE.match(lines[i + 1]) else ""
            name = m.group("name").strip()
            out.append((name, name + " | " + m.group("facts") + "\n" + snippet))
    return out


def misattributed_numbers(answer: str, evidence: str, *, allowed: tuple[float, ...] = ()) -> list[float]:
    """Numbers an answer states next to one product that belong to another. Each answer line that names exactly
    one product of the search results (its full name, its short name or its first four words; the longest match
    wins) may only state that product's numbers (plus ``allowed`` and small list indices); a "list ₹X" must be
    that product's list price, and a rupee amount ("₹1,500") one of that product's prices even where the question
    states it (a bound the user gave is no product's price: "JBL Go 2 - ₹1500" for "JBL headphones over ₹1500")."""
    products = _result_products(evidence)
    if not products:
        return []
    from agent.answers import short_name

    # trailing punctuation is not part of a name: "Wireless -" would otherwise match the answer's "Wireless - (list"
    keys = [(key, facts) for name, facts in products
            for key in {k.rstrip(" -|,.;:") for k in (" ".join(name.lower().split()), short_name(name).lower(),
                                                     " ".join(name.lower().split()[:4]))}
            if len(key) >= 6 and re.search(r"[a-z]{3}", key)]  # too short to name a product unambiguously
    wrong: list[float] = []
    for line in answer.splitlines():
        low = " ".join(line.lower().split())
        named = [(key, facts) for key, facts in keys if key and re.search(rf"(?<!\w){re.escape(key)}(?!\w)", low)]
        longest = max((len(key) for key, _ in named), default=0)
        named = [(key, facts) for key, facts in named if len(key) == longest]
        if len({facts for _, facts in named}) != 1:
            continue  # no product, or an ambiguous one, named on this line
        facts = named[0][1]
        wrong += ungrounded_numbers(line, facts, allowed=allowed)
        prices = {_amount(m) for m in _RUPEES_RE.finditer(facts)}
        wrong += [v for v in (_amount(m) for m in _RUPEES_RE.finditer(line)) if v not in prices and v not in wrong]
        list_price = _LIST_PRICE_RE.search(facts)
        for m in _LIST_PRICE_RE.finditer(line):
            if list_price is None or _amount(m) != _amount(list_price):
                wrong.append(_amount(m))
    return wrong


# ------------------------------------------------------------------------------------------ tool arguments
# "l" is left out on purpose: after a bare number it usually means litres ("1.5 l kettle")
_SCALED_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(k|thousand|lakh|lakhs|lac|lacs|m|million)\b", re.I)
UNCHECKED_ARGUMENTS = frozenset({"top_k"})


def question_numbers(text: str) -> list[float]:
    """Numbers a user wrote, including scaled forms ('2.5k' -> 2500, '1.5 lakh' -> 150000)."""
    numbers = extract_numbers(text)
    for m in _SCALED_RE.finditer(text):
        numbers.append(float(m.group(1)) * UNIT_SCALE[m.group(2).lower()])
    return numbers


def ungrounded_arguments(arguments: dict[str, Any], question: str) -> list[str]:
    """Names of numeric tool arguments whose value the question never states (the model invented a filter or
    misread a number). ``top_k`` is exempt: it has a default the agent sets anyway."""
    pool = question_numbers(question)
    bad = []
    for key, value in arguments.items():
        if key in UNCHECKED_ARGUMENTS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not any(abs(value - p) <= max(0.051, 0.01 * abs(p)) for p in pool):
            bad.append(key)
    return bad
