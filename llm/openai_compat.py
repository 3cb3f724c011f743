"""``ChatOpenAI`` for OpenAI-*compatible* servers (vLLM, TGI, llama.cpp server): the scale-out backend.

langchain-openai sends OpenAI's newer ``max_completion_tokens``; several compatible servers (TGI, older vLLM /
llama.cpp servers) only read ``max_tokens``, so the payload uses that name.
"""
from __future__ import annotations

from typing import Any

from langchain_openai import ChatOpenAI


class OpenAICompatibleChat(ChatOpenAI):
    """ChatOpenAI that sends ``max_tokens`` (the field every OpenAI-compatible server understands)."""

    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        if "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        return payload
