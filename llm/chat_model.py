"""A LangChain chat model over a local engine (llama.cpp or transformers): plain text in, text out.

The agent does not use native tool calling: it parses ``<tool_call>{json}</tool_call>`` from the text
(``agent/protocol.py``), so this model only renders the conversation with the model's chat template and
streams tokens back. Roles: SystemMessage -> system, HumanMessage -> user, AIMessage -> assistant, ToolMessage ->
user (the protocol hands tool results back as user turns). Generation stats (prompt / cached / completion
tokens, TTFT, seconds, tokens/s) are in ``response_metadata`` and token counts in ``usage_metadata``.
"""
from __future__ import annotations

from typing import Any, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (AIMessage, AIMessageChunk, BaseMessage, ChatMessage, HumanMessage,
                                     SystemMessage, ToolMessage)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from core.errors import ValidationError
from llm.engines import GenParams, GenStats


def to_chat_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages -> ``[{"role", "content"}]`` for a chat template."""
    out = []
    for m in messages:
        if isinstance(m, SystemMessage):
            role = "system"
        elif isinstance(m, (HumanMessage, ToolMessage)):
            role = "user"
        elif isinstance(m, AIMessage):
            role = "assistant"
        elif isinstance(m, ChatMessage):
            role = {"human": "user", "ai": "assistant", "tool": "user"}.get(m.role, m.role)
        else:
            raise ValidationError(f"unsupported message type {type(m).__name__}",
                                  invalid_fields={"messages": type(m).__name__})
        content = m.content if isinstance(m.content, str) else m.text
        out.append({"role": role, "content": content})
    return out


class LocalChatModel(BaseChatModel):
    """Chat model over an :class:`llm.engines.Engine`. Build it with :func:`llm.factory.load_chat_model`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Any = Field(exclude=True)
    model_name: str = ""
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 0.95
    seed: int = 0
    adapter: str | None = None

    @property
    def _llm_type(self) -> str:
        return f"mdi-{self.engine.backend}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"backend": self.engine.backend, "model_name": self.model_name, "adapter": self.adapter,
                "max_new_tokens": self.max_new_tokens, "temperature": self.temperature}

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> GenParams:
        return GenParams(
            max_new_tokens=int(kwargs.get("max_new_tokens", kwargs.get("max_tokens", self.max_new_tokens))),
            temperature=float(kwargs.get("temperature", self.temperature)),
            top_p=float(kwargs.get("top_p", self.top_p)),
            seed=int(kwargs.get("seed", self.seed)),
            stop=list(stop or kwargs.get("stop") or []),
            ignore_eos=bool(kwargs.get("ignore_eos", False)),
        )

    def _metadata(self, stats: GenStats) -> dict[str, Any]:
        return {"model_name": self.model_name, "backend": self.engine.backend, "adapter": self.adapter,
                **stats.as_metadata()}

    @staticmethod
    def _usage(stats: GenStats) -> dict[str, int]:
        return {"input_tokens": stats.prompt_tokens, "output_tokens": stats.completion_tokens,
                "total_tokens": stats.prompt_tokens + stats.completion_tokens}

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        stats = GenStats()
        for piece in self.engine.stream(to_chat_dicts(messages), self._params(stop, kwargs), stats):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata=self._metadata(stats),
                                   usage_metadata=self._usage(stats), chunk_position="last"),
            generation_info={"finish_reason": stats.finish_reason})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        stats = GenStats()
        pieces = []
        for piece in self.engine.stream(to_chat_dicts(messages), self._params(stop, kwargs), stats):
            if run_manager:
                run_manager.on_llm_new_token(piece)
            pieces.append(piece)
        message = AIMessage(content="".join(pieces), response_metadata=self._metadata(stats),
                            usage_metadata=self._usage(stats))
        return ChatResult(generations=[ChatGeneration(message=message,
                                                      generation_info={"finish_reason": stats.finish_reason})])

    def warmup(self, system_prompt: str) -> GenStats:
        """Evaluate ``system_prompt`` once (one token generated) so later calls reuse its KV cache (llama.cpp)."""
        stats = GenStats()
        for _ in self.engine.stream([{"role": "system", "content": system_prompt}, {"role": "user", "content": ""}],
                                    GenParams(max_new_tokens=1), stats):
            pass
        return stats

    def count_tokens(self, messages: list[BaseMessage]) -> int:
        """Prompt tokens of ``messages`` once rendered with the chat template."""
        return len(self.engine.tokenize(self.engine.render(to_chat_dicts(messages))))
