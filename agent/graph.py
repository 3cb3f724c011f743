"""The marketing agent: an explicit LangGraph ``StateGraph`` over the text protocol of :mod:`agent.protocol`.

Nodes::

    guard ──refused──────────────────────────────────────────────┐
      │                                                           │
    route (LLM: tool call?) ──no usable call──> rules pick a tool │
      │                                              │            │
    tool (run, sanitise product text) <──────────────┘            │
      │  model's call                      rules' call            │
    answer (LLM writes the answer, streamed) ──> fallback ────────┤
      │  (another tool call: back to tool, up to the step limit)  │
    check (output guard: numbers/ids grounded) ──fail──> fallback │
      │                                                           │
    finish (memory, metrics) <────────────────────────────────────┘

The answer says which path produced it: ``model`` (the LLM's text passed the output guard) or ``fallback``
(composed from the tool results by :func:`agent.answers.compose_answer`, with ``fallback_reason``).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from agent import answers
from agent.guard import check_input, check_output, sanitize_result
from agent.memory import ConversationMemory, InProcessMemory, Turn
from agent.metrics import AgentMetrics
from agent.prompts import SYSTEM_PROMPT
from agent.protocol import (TOOL_CALL_CLOSE, ToolCallParseError, format_tool_call,
                            fmt_number, format_tool_response, parse_tool_call, render_tool_result)
from agent.router import _REVIEW_RE, CatalogVocabulary, resolve_followup, unknown_product_terms
from agent.routing import MAX_CHITCHAT_CHARS, MAX_TOP_K, decide_route, request_cap, rules_call, vet_call
from agent.state import AgentAnswer, AgentState, Step
from agent.tools import AgentTools, validate_args
from core.errors import ModelUnavailableError, ValidationError
from core.settings import BaseAppSettings

log = logging.getLogger(__name__)

SOURCE_FIELDS = ("product_id", "product_name", "score", "discounted_price", "actual_price", "discount_percentage",
                 "rating", "rating_count", "category")
POLITE_FAILURE = ("Sorry, I couldn't answer that just now. Please try again, or ask about products, discounts or "
                  "catalog statistics.")


class AgentSettings(BaseAppSettings):
    """Bounds of one agent request (env ``MDI_AGENT_*``, CLI ``--agent-*``)."""

    agent_max_steps: int = 3             # tool calls per request
    agent_time_limit_s: float = 60.0     # wall-clock bound of one request (LLM generation is cut off)
    agent_max_input_chars: int = 1000    # longer questions are rejected (REST 400)
    agent_model_answers: bool = True     # let the LLM write the final answer (False: always compose)
    #: search results the LLM sees when it writes its answer (the sources list keeps all of them); the shipped
    #: adapter learned answers over 1-3 results and misplaces numbers in longer lists (docs/finetune.md)
    agent_answer_results: int = 3


@dataclass
class AgentEvent:
    """One item of :meth:`MarketingAgent.stream`: ``status`` (text), ``step`` (a tool ran), ``token`` (model text),
    ``reset`` (discard streamed tokens: the model's draft was rejected), ``final`` (the answer)."""

    kind: Literal["status", "step", "token", "reset", "final"]
    text: str = ""
    step: Step | None = None
    answer: AgentAnswer | None = None


class _Timeout(Exception):
    pass


@dataclass
class MarketingAgent:
    """Answers questions with the LLM and the tools; every request is bounded and falls back when needed."""

    llm: BaseChatModel | None
    tools: AgentTools
    memory: ConversationMemory
    settings: AgentSettings
    vocab: CatalogVocabulary = field(default_factory=CatalogVocabulary)
    metrics: AgentMetrics = field(default_factory=AgentMetrics)

    def __post_init__(self) -> None:
        self._llm_lock = threading.Lock()
        self._graph = self._build_graph()

    # ------------------------------------------------------------------------------------------ public API
    def answer(self, question: str, session_id: str | None = None, top_k: int = 5) -> AgentAnswer:
        """Answer one question (ValidationError for empty/over-long input; ModelUnavailableError when a needed
        tool's model/index is not loaded; any other failure becomes a polite message)."""
        final = None
        for event in self.stream(question, session_id=session_id, top_k=top_k):
            if event.kind == "final":
                final = event.answer
        assert final is not None
        return final

    def stream(self, question: str, session_id: str | None = None, top_k: int = 5) -> Iterator[AgentEvent]:
        """Like :meth:`answer`, yielding progress: tool steps, model tokens, and finally the answer."""
        question = self.validate_question(question)
        top_k = request_cap(question, max(1, min(MAX_TOP_K, int(top_k))))  # "show me 10 ...": 10
        start = time.monotonic()
        state: AgentState = {
            "question": question, "resolved_question": question, "session_id": session_id, "top_k": top_k,
            "deadline": start + self.settings.agent_time_limit_s, "messages": [], "pending_call": None,
            "steps": [], "draft": "", "answer": "", "path": "fallback", "grounded": True, "refused": False,
            "fallback_reason": None, "done": False,
        }
        final_state: dict[str, Any] = dict(state)
        try:
            for mode, chunk in self._graph.stream(state, stream_mode=["custom", "values"]):
                if mode == "custom":
                    yield chunk
                else:
                    final_state = chunk
        except ModelUnavailableError:
            self.metrics.record_error("unavailable")
            raise
        except Exception:  # noqa: BLE001 - a failure becomes a polite message, logged with its traceback
            log.exception("agent failed on a question")
            self.metrics.record_error("exception")
            final_state = {**final_state, "answer": POLITE_FAILURE, "path": "fallback",
                           "fallback_reason": "error", "grounded": True, "refused": False}
        seconds = time.monotonic() - start
        result = self._to_answer(final_state, session_id, seconds)
        self.metrics.record_answer(result.path, result.fallback_reason, result.refused, seconds)
        if session_id:
            self._remember(session_id, result)
        yield AgentEvent("final", text=result.answer, answer=result)

    def validate_question(self, question: Any) -> str:
        """The stripped question, or ValidationError (empty, not text, longer than the limit)."""
        if not isinstance(question, str):
            raise ValidationError("question must be a string", invalid_fields={"question": "must be a string"})
        text = question.strip()
        if not text:
            raise ValidationError("question is empty", required_fields=["question"])
        if len(text) > self.settings.agent_max_input_chars:
            raise ValidationError(
                f"question is longer than {self.settings.agent_max_input_chars} characters",
                invalid_fields={"question": f"at most {self.settings.agent_max_input_chars} characters"})
        return text

    # ---------------------------------------------------------------------------------------- the graph
    def _build_graph(self):
        g = StateGraph(AgentState)
        g.add_node("guard", self._node_guard)
        g.add_node("route", self._node_route)
        g.add_node("tool", self._node_tool)
        g.add_node("answer", self._node_answer)
        g.add_node("check", self._node_check)
        g.add_node("fallback", self._node_fallback)
        g.add_edge(START, "guard")
        g.add_conditional_edges("guard", lambda s: END if s.get("done") else "route", ["route", END])
        g.add_conditional_edges("route", self._after_route, ["tool", "check", "fallback"])
        g.add_conditional_edges("tool", self._after_tool, ["answer", "fallback", END])
        g.add_conditional_edges("answer", self._after_answer, ["tool", "check", "fallback"])
        g.add_conditional_edges("check", lambda s: END if s.get("done") else "fallback", ["fallback", END])
        g.add_edge("fallback", END)
        return g.compile()

    def _node_guard(self, state: AgentState) -> dict[str, Any]:
        verdict = check_input(state["question"], self.vocab.domain_words())
        if verdict.refused:
            self.metrics.record_refusal(verdict.kind)
            log.info("guard refused a question", extra={"guard": verdict.kind})
            return {"answer": verdict.message, "refused": True, "path": "fallback",
                    "fallback_reason": f"guard_{verdict.kind}", "grounded": True, "done": True}
        resolved = state["question"]
        session_id = state.get("session_id")
        if session_id:
            resolution = resolve_followup(resolved, self.memory.last_products(session_id), self.vocab)
            resolved = resolution.question
            if resolution.product:
                return {"resolved_question": resolved, "focus_product_id": resolution.product.get("product_id")}
        return {"resolved_question": resolved}

    def _node_route(self, state: AgentState) -> dict[str, Any]:
        writer = get_stream_writer()
        question = state["resolved_question"]
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
        if self.llm is None:
            return self._rules_call(state, messages, "llm_unavailable")
        writer(AgentEvent("status", "thinking"))
        try:
            chitchat = answers.classify_request(question) == "chitchat"
            text = self._generate(messages, state["deadline"], stream_tokens=False,
                                  stop=_too_long_for_chitchat if chitchat else _not_a_tool_call)
        except _Timeout:
            return self._rules_call(state, messages, "timeout")
        except ModelUnavailableError:
            return self._rules_call(state, messages, "llm_unavailable")
        except Exception as exc:  # noqa: BLE001 - the LLM failing must not fail the request
            log.warning("LLM failed while routing: %s", exc)
            return self._rules_call(state, messages, "llm_error")
        decision = decide_route(text, question, self.vocab, state["top_k"])
        if decision.fallback:
            log.info("model routing reply not used (%s): %r", decision.fallback, text[:200])
            return self._rules_call(state, messages, decision.fallback)
        if decision.call is None:
            return {"messages": messages, "draft": decision.reply, "pending_call": None}
        return {"messages": messages, "pending_call": {"name": decision.call.name,
                                                       "arguments": dict(decision.call.arguments), "origin": "model"}}

    def _rules_call(self, state: AgentState, messages: list[dict[str, str]], reason: str) -> dict[str, Any]:
        call, answer = rules_call(state["resolved_question"], self.vocab, state["top_k"])
        if call is None:
            return {"messages": messages, "pending_call": None, "fallback_reason": reason, "answer": answer,
                    "done": True}
        return {"messages": messages, "fallback_reason": reason,
                "pending_call": {"name": call.name, "arguments": dict(call.arguments), "origin": "router"}}

    def _after_route(self, state: AgentState) -> str:
        if state.get("pending_call"):
            return "tool"
        if state.get("done"):
            return "fallback"
        return "check"

    def _node_tool(self, state: AgentState) -> dict[str, Any]:
        writer = get_stream_writer()
        call = state["pending_call"] or {}
        name, arguments, origin = call["name"], call["arguments"], call.get("origin", "model")
        started = time.monotonic()
        try:
            args_model = validate_args(name, arguments)
            raw = self.tools.call(name, args_model.model_dump(exclude_none=True))
        except ValidationError as exc:
            fields = exc.required_fields + list(exc.invalid_fields)
            raw = {"error": f"{exc.message}" + (f" ({', '.join(fields)})" if fields else "")}
            args_model = None
        result, redacted = sanitize_result(raw)
        if redacted:
            log.warning("removed instruction-like text from %d tool result field(s)", redacted)
        shown_args = args_model.model_dump(exclude_none=True) if args_model is not None else dict(arguments)
        step = Step(name=name, args=shown_args, result=result, rendered=render_tool_result(name, result),
                    origin=origin, seconds=round(time.monotonic() - started, 4))
        self.metrics.record_tool(name, origin)
        writer(AgentEvent("step", step.title, step=step))
        update: dict[str, Any] = {"steps": [*state.get("steps", []), step], "pending_call": None}
        if name == "search_products" and "error" not in result:
            unknown = unknown_product_terms(state["resolved_question"], self.vocab)
            if unknown:
                update.update(answer=_not_in_catalog(unknown), path="fallback", fallback_reason="not_in_catalog",
                              grounded=True, done=True)
                return update
        messages = list(state.get("messages", []))
        messages.append({"role": "assistant", "content": format_tool_call(name, shown_args)})
        messages.append({"role": "user", "content": format_tool_response(name, self._for_model(name, result))})
        update["messages"] = messages
        return update

    def _for_model(self, name: str, result: dict[str, Any]) -> dict[str, Any]:
        """The tool result as the LLM sees it: search hits cut to ``agent_answer_results``."""
        limit = self.settings.agent_answer_results
        if name != "search_products" or limit <= 0 or len(result.get("results") or []) <= limit:
            return result
        return {**result, "results": result["results"][:limit]}

    def _after_tool(self, state: AgentState) -> str:
        if state.get("done"):
            return END
        if state.get("fallback_reason") or self.llm is None or not self.settings.agent_model_answers:
            return "fallback"
        return "answer"

    def _node_answer(self, state: AgentState) -> dict[str, Any]:
        try:
            text = self._generate(state["messages"], state["deadline"], stream_tokens=True)
        except _Timeout:
            return {"fallback_reason": "timeout", "draft": ""}
        except Exception as exc:  # noqa: BLE001
            log.warning("LLM failed while answering: %s", exc)
            return {"fallback_reason": "llm_error", "draft": ""}
        try:
            call = parse_tool_call(text)
        except ToolCallParseError:
            return {"fallback_reason": "unparseable_tool_call", "draft": ""}
        if call is not None:
            if len(state.get("steps", [])) >= self.settings.agent_max_steps:
                return {"fallback_reason": "step_limit", "draft": ""}
            args, rejected = vet_call(call, state["resolved_question"], self.vocab, state["top_k"])
            if rejected:
                return {"fallback_reason": rejected, "draft": ""}
            return {"pending_call": {"name": call.name, "arguments": args, "origin": "model"}, "draft": ""}
        if not text.strip():
            return {"fallback_reason": "empty_answer", "draft": ""}
        return {"draft": text.strip()}

    def _after_answer(self, state: AgentState) -> str:
        if state.get("pending_call"):
            return "tool"
        if state.get("fallback_reason"):
            return "fallback"
        return "check"

    def _node_check(self, state: AgentState) -> dict[str, Any]:
        draft = state.get("draft", "").strip()
        evidence = "\n".join(s.rendered for s in state.get("steps", []))
        verdict = check_output(draft, evidence, state["resolved_question"])
        if verdict.ok:
            refused = any(draft.startswith(r[:40]) for r in answers.REFUSALS.values())
            return {"answer": draft, "path": "model", "grounded": True, "refused": refused, "done": True}
        log.info("model answer rejected by the output guard: %s", "; ".join(verdict.problems))
        get_stream_writer()(AgentEvent("reset", "; ".join(verdict.problems)))
        reason = "ungrounded_numbers" if verdict.ungrounded else "output_guard"
        return {"fallback_reason": reason}

    def _node_fallback(self, state: AgentState) -> dict[str, Any]:
        steps = state.get("steps", [])
        question = state["resolved_question"]
        if state.get("answer"):  # a message was already decided (e.g. missing discount inputs)
            text = state["answer"]
        elif steps:
            last = steps[-1]
            text = None
            if last.name == "search_products" and is_reviews_question(question):
                text = reviews_answer(last.result, state.get("focus_product_id"))
            text = text or answers.compose_answer(question, last.name, last.result)
        elif answers.classify_request(question) == "chitchat":
            text = answers.chitchat_reply(question)
        else:
            text = answers.NOT_IN_CATALOG
        evidence = "\n".join(s.rendered for s in steps)
        grounded = check_output(text, evidence).ok
        return {"answer": text, "path": "fallback", "grounded": grounded,
                "fallback_reason": state.get("fallback_reason") or "model_answer_unusable", "done": True}

    # ------------------------------------------------------------------------------------------ helpers
    def _generate(self, messages: list[dict[str, str]], deadline: float, *, stream_tokens: bool,
                  stop: Callable[[str], bool] | None = None) -> str:
        """Run the LLM on protocol messages, cut off at ``deadline`` (raises _Timeout); generation also ends
        as soon as a complete tool call was produced or ``stop(text_so_far)`` is true."""
        if self.llm is None:
            raise ModelUnavailableError("the language model is not loaded")
        if time.monotonic() > deadline:
            raise _Timeout()
        writer = get_stream_writer() if stream_tokens else None
        lc_messages = [_to_lc(m) for m in messages]
        parts: list[str] = []
        # one generation at a time per agent; waiting counts against the request's deadline (no pile-up:
        # a request that cannot get the model in time is answered by the rules, marked as such)
        if not self._llm_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise _Timeout()
        try:
            for chunk in self.llm.stream(lc_messages):
                piece = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
                if piece:
                    parts.append(piece)
                    if writer is not None:
                        writer(AgentEvent("token", piece))
                if time.monotonic() > deadline:
                    raise _Timeout()
                if piece and TOOL_CALL_CLOSE in "".join(parts[-4:]):
                    break
                if stop is not None and piece and stop("".join(parts)):
                    break
        finally:
            self._llm_lock.release()
        return "".join(parts)

    def _to_answer(self, state: dict[str, Any], session_id: str | None, seconds: float) -> AgentAnswer:
        steps: list[Step] = list(state.get("steps") or [])
        sources: list[dict[str, Any]] = []
        seen: set[str] = set()
        for step in steps:
            if step.name != "search_products":
                continue
            for hit in step.result.get("results", []) or []:
                pid = hit.get("product_id")
                if pid in seen:
                    continue
                seen.add(pid)
                sources.append({k: hit.get(k) for k in SOURCE_FIELDS if k in hit})
        if state.get("fallback_reason") == "not_in_catalog":
            sources = []
        focus = state.get("focus_product_id")
        if focus:  # a follow-up about one product: it leads the sources
            sources.sort(key=lambda s: s.get("product_id") != focus)
        return AgentAnswer(
            answer=state.get("answer") or POLITE_FAILURE, sources=sources,
            tool_calls=[{"name": s.name, "args": s.args} for s in steps],
            path=state.get("path", "fallback"), grounded=bool(state.get("grounded", True)),
            refused=bool(state.get("refused", False)), steps=steps,
            fallback_reason=state.get("fallback_reason") if state.get("path") != "model" else None,
            session_id=session_id, resolved_question=state.get("resolved_question"), seconds=round(seconds, 4))

    def _remember(self, session_id: str, result: AgentAnswer) -> None:
        last = result.tool_calls[-1] if result.tool_calls else {"name": None, "args": {}}
        self.memory.append(session_id, Turn(
            question=result.resolved_question or "", answer=result.answer,
            resolved_question=result.resolved_question or "", tool_name=last["name"], tool_args=last["args"],
            products=tuple({"product_id": s.get("product_id"), "product_name": s.get("product_name")}
                           for s in result.sources)))


def _not_a_tool_call(text: str) -> bool:
    """Routing: once the reply is clearly not a tool call (60 characters without ``<tool``), stop generating and
    let the rules take over, instead of paying for a long off-protocol answer."""
    return len(text) >= 60 and "<tool" not in text


def is_reviews_question(question: str) -> bool:
    """Does the question ask what customers say (reviews, feedback, complaints)?"""
    return bool(_REVIEW_RE.search(question))


def reviews_answer(result: dict[str, Any], product_id: str | None = None) -> str | None:
    """A grounded answer quoting the review snippet of the asked-about product (or the best match); None when
    the result has no snippet. The quote is the snippet as rendered to the model (first 300 characters)."""
    hits = list(result.get("results") or [])
    if not hits:
        return None
    hit = next((h for h in hits if product_id and h.get("product_id") == product_id), hits[0])
    snippet = (hit.get("snippet") or "").strip().replace("\n", " ")[:300].strip()
    if not snippet:
        return None
    text = f'What customers say about {answers.short_name(hit.get("product_name", "?"))}: "{snippet}"'
    if hit.get("rating") is not None:
        text += f" It is rated {fmt_number(hit['rating'])}"
        if hit.get("rating_count") is not None:
            text += f" by {fmt_number(hit['rating_count'])} people"
        text += "."
    return text


def _too_long_for_chitchat(text: str) -> bool:
    return len(text) > MAX_CHITCHAT_CHARS


def _to_lc(message: dict[str, str]) -> BaseMessage:
    role, content = message["role"], message["content"]
    if role == "system":
        return SystemMessage(content)
    if role == "assistant":
        return AIMessage(content)
    return HumanMessage(content)


def _not_in_catalog(terms: list[str]) -> str:
    named = ", ".join(f"'{t}'" for t in terms[:3])
    return f"{answers.NOT_IN_CATALOG} (no product matching {named} is in the catalog.)"


def new_session_id() -> str:
    """A fresh conversation id."""
    return uuid.uuid4().hex


def build_agent(llm: BaseChatModel | None, tools: AgentTools, memory: ConversationMemory | None = None,
                settings: AgentSettings | None = None, *, vocab: CatalogVocabulary | None = None,
                metrics: AgentMetrics | None = None) -> MarketingAgent:
    """Assemble the agent. ``vocab`` defaults to one built from the tools' catalog frame."""
    if vocab is None:
        vocab = CatalogVocabulary.from_frame(tools.services.catalog_frame)
    return MarketingAgent(llm=llm, tools=tools, memory=memory or InProcessMemory(),
                          settings=settings or AgentSettings(), vocab=vocab, metrics=metrics or AgentMetrics())
