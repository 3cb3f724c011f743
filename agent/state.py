"""The agent's data: the graph state, the steps shown in the UI, and the public answer object."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict

Path = Literal["model", "fallback"]


@dataclass
class Step:
    """One tool invocation, as shown to users (a collapsible step in the chat UI)."""

    name: str
    args: dict[str, Any]
    result: dict[str, Any]
    rendered: str
    origin: Literal["model", "router"] = "model"
    seconds: float = 0.0

    @property
    def title(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"🛠️ {self.name}({shown})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AgentAnswer:
    """What :meth:`agent.graph.MarketingAgent.answer` returns (and REST ``/answer_question`` serialises)."""

    answer: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    path: Path = "fallback"
    grounded: bool = True
    refused: bool = False
    steps: list[Step] = field(default_factory=list)
    fallback_reason: str | None = None
    session_id: str | None = None
    resolved_question: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (REST body)."""
        out = asdict(self)
        out["steps"] = [s.to_dict() for s in self.steps]
        return out


class AgentState(TypedDict, total=False):
    """LangGraph state of one request (every node returns a partial update)."""

    question: str              # as asked
    resolved_question: str     # follow-ups rewritten against history
    focus_product_id: str | None  # the earlier product a follow-up refers to
    session_id: str | None
    top_k: int
    deadline: float            # time.monotonic() bound of the request
    messages: list[dict[str, str]]   # text-protocol conversation with the LLM: {"role", "content"}
    pending_call: dict[str, Any] | None   # {"name", "arguments", "origin"} waiting for the tool node
    steps: list[Step]
    draft: str                 # the model's final text (before the output guard)
    answer: str
    path: Path
    grounded: bool
    refused: bool
    fallback_reason: str | None
    done: bool
