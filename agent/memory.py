"""Conversation memory behind an interface, keyed by session_id.

The agent only needs the recent turns of a session (to resolve follow-ups such as "and its reviews?").
:class:`InProcessMemory` keeps them in this process (bounded LRU over sessions, bounded turns per session); a
shared store (Redis, a database) can implement :class:`ConversationMemory` for replicas behind a load balancer.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Turn:
    """One question/answer exchange and what it was about."""

    question: str
    answer: str
    resolved_question: str = ""
    tool_name: str | None = None
    tool_args: dict[str, Any] = field(default_factory=dict)
    products: tuple[dict[str, Any], ...] = ()  # sources shown with the answer: {"product_id", "product_name", ...}


class ConversationMemory(ABC):
    """Stores the turns of each conversation."""

    @abstractmethod
    def history(self, session_id: str) -> list[Turn]:
        """The session's turns, oldest first (empty for an unknown session)."""

    @abstractmethod
    def append(self, session_id: str, turn: Turn) -> None:
        """Record a finished turn."""

    @abstractmethod
    def clear(self, session_id: str) -> None:
        """Forget a session."""

    def last_products(self, session_id: str) -> tuple[dict[str, Any], ...]:
        """Products of the most recent turn that had any (what "it" refers to)."""
        for turn in reversed(self.history(session_id)):
            if turn.products:
                return turn.products
        return ()


class InProcessMemory(ConversationMemory):
    """Thread-safe in-process memory: at most ``max_sessions`` sessions (least recently used evicted) of at
    most ``max_turns`` turns each."""

    def __init__(self, max_sessions: int = 1000, max_turns: int = 20) -> None:
        self.max_sessions = max_sessions
        self.max_turns = max_turns
        self._sessions: OrderedDict[str, list[Turn]] = OrderedDict()
        self._lock = threading.Lock()

    def history(self, session_id: str) -> list[Turn]:
        with self._lock:
            turns = self._sessions.get(session_id)
            if turns is None:
                return []
            self._sessions.move_to_end(session_id)
            return list(turns)

    def append(self, session_id: str, turn: Turn) -> None:
        with self._lock:
            turns = self._sessions.setdefault(session_id, [])
            turns.append(turn)
            del turns[: -self.max_turns]
            self._sessions.move_to_end(session_id)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)

    def clear(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
