"""The LLM serving layer: settings, a LangChain chat-model factory over llama.cpp / transformers / a remote
OpenAI-compatible endpoint, and the PEFT-LoRA -> llama.cpp GGUF adapter exporter.

Nothing heavy is imported here: ``from llm import load_chat_model`` costs nothing until it is called.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["LLMSettings", "load_chat_model", "export_lora_to_gguf"]

if TYPE_CHECKING:  # pragma: no cover
    from llm.factory import load_chat_model
    from llm.gguf_adapter import export_lora_to_gguf
    from llm.settings import LLMSettings


def __getattr__(name: str) -> Any:
    if name == "LLMSettings":
        from llm.settings import LLMSettings
        return LLMSettings
    if name == "load_chat_model":
        from llm.factory import load_chat_model
        return load_chat_model
    if name == "export_lora_to_gguf":
        from llm.gguf_adapter import export_lora_to_gguf
        return export_lora_to_gguf
    raise AttributeError(name)
