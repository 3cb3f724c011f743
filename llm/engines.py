"""Local text-generation engines behind :class:`llm.chat_model.LocalChatModel`.

Each engine renders chat messages with the model's own chat template (ChatML for SmolLM2, read from the GGUF /
tokenizer so the served prompt is byte-identical to what fine-tuning trains on), generates token by token and
yields text pieces, filling a :class:`GenStats` as it goes. Engines serialize generation with a lock (one
llama.cpp context / one torch model are not safe to share between concurrent generations).
"""
from __future__ import annotations

import codecs
import contextlib
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Protocol

from core.errors import ValidationError

CHATML_FALLBACK = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
#: Token texts that end an assistant turn in ChatML models.
END_OF_TURN_TEXTS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>")


@dataclass
class GenParams:
    """Per-call generation parameters."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 0.95
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    #: benchmarks only: never stop at end-of-turn, always generate ``max_new_tokens``.
    ignore_eos: bool = False


@dataclass
class GenStats:
    """What one generation cost. ``ttft_s`` = call -> first token (prompt evaluation included)."""

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float = 0.0
    total_s: float = 0.0
    finish_reason: str = "stop"
    #: prompt-lookup drafting (llama.cpp, greedy): draft tokens evaluated / kept
    draft_tokens: int = 0
    accepted_draft_tokens: int = 0

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second of the whole call."""
        return self.completion_tokens / self.total_s if self.total_s > 0 else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        """Decode speed: tokens after the first, per second after the first token."""
        span = self.total_s - self.ttft_s
        return (self.completion_tokens - 1) / span if self.completion_tokens > 1 and span > 0 else 0.0

    def as_metadata(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_s"] = round(self.tokens_per_s, 2)
        out["decode_tokens_per_s"] = round(self.decode_tokens_per_s, 2)
        out["ttft_s"] = round(self.ttft_s, 4)
        out["total_s"] = round(self.total_s, 4)
        return out


class Engine(Protocol):
    backend: str
    model_name: str

    def render(self, messages: list[dict[str, str]]) -> str: ...

    def stream(self, messages: list[dict[str, str]], params: GenParams, stats: GenStats) -> Iterator[str]: ...


class StopScanner:
    """Cuts streamed text at the first stop string, holding back a tail that could be a stop's beginning."""

    def __init__(self, stops: list[str] | None) -> None:
        self.stops = [s for s in (stops or []) if s]
        self.pending = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """Add ``piece``; return (text safe to emit, stopped)."""
        self.pending += piece
        if not self.stops:
            out, self.pending = self.pending, ""
            return out, False
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.pending = self.pending[:min(hits)], ""
            return out, True
        hold = 0
        for s in self.stops:  # longest suffix of pending that is a prefix of a stop
            for k in range(min(len(s) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def render_template(template: str | None, messages: list[dict[str, str]], **extra: Any) -> str:
    """Render a Jinja chat template the way transformers does (sandboxed, trim/lstrip blocks)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise ValidationError(f"chat template: {message}", invalid_fields={"messages": message})

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template or CHATML_FALLBACK).render(
        messages=messages, add_generation_prompt=True, **extra)


def _check_length(n_prompt: int, n_ctx: int) -> None:
    if n_prompt >= n_ctx:
        raise ValidationError(
            f"the conversation is {n_prompt} tokens, over the model's context of {n_ctx}: shorten it",
            invalid_fields={"messages": f"{n_prompt} tokens >= context {n_ctx}"})


# ---------------------------------------------------------------------------------------------- llama.cpp
_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _model_params(**fields: Any) -> Iterator[None]:
    """Within the block, ``llama_cpp.Llama(...)`` builds its model with these ``llama_model_params`` fields set
    (llama-cpp-python 0.3 has no constructor argument for them: it starts from
    ``llama_model_default_params()``, which is wrapped here for the duration of one construction)."""
    import llama_cpp.llama as high

    with _PARAMS_LOCK:
        low = high.llama_cpp
        default = low.llama_model_default_params

        def params() -> Any:
            out = default()
            for name, value in fields.items():
                setattr(out, name, value)
            return out

        low.llama_model_default_params = params
        try:
            yield
        finally:
            low.llama_model_default_params = default


def new_llama(model_path: str, *, extra_buffers: bool = False, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(model_path, **kwargs)`` built without llama.cpp's extra weight buffer types unless
    ``extra_buffers`` (see :class:`LlamaCppEngine`): every llama.cpp model of the project is made here."""
    from llama_cpp import Llama

    with _model_params(use_extra_bufts=extra_buffers):
        return Llama(model_path=model_path, **kwargs)


class LlamaCppEngine:
    """A GGUF model in llama-cpp-python, optionally with a GGUF LoRA adapter.

    ``extra_buffers`` lets llama.cpp put weights in its extra CPU buffer types (repacked layouts; AMX tiles on
    CPUs that report them). Off by default: on this project's 2-core machines, which report AMX, the AMX path
    of llama.cpp 0.3.36 (built with its default native flags) dies with SIGILL on the first token
    (``tilezero``), taking the server with it; with the plain CPU buffers the same build runs (docs/llm.md).

    Prefix caching: llama-cpp-python keeps the KV cache of the previous call and re-evaluates only the tokens
    after the longest common prefix, so the (long, constant) system prompt is evaluated once; ``warmup``
    primes it at start-up.
    """

    backend = "llamacpp"

    def __init__(self, model_path: str, *, lora_path: str | None = None, n_ctx: int = 4096, n_threads: int = 2,
                 n_batch: int = 512, seed: int = 0, model_name: str | None = None,
                 extra_buffers: bool = False, lookup_draft: int = 0, lookup_ngram: int = 3) -> None:
        # llama.cpp's OpenMP workers spin-wait by default, which collapses speed when the cores are shared;
        # passive waiting only takes effect if set before libgomp loads (before torch / llama_cpp imports), so
        # entry points should set it at start (see docs/llm.md); this is the best effort.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.llama = new_llama(model_path, extra_buffers=extra_buffers, lora_path=lora_path, n_ctx=n_ctx,
                               n_threads=n_threads, n_threads_batch=n_threads, n_batch=n_batch, seed=seed,
                               verbose=False)
        self.model_name = model_name or model_path
        self.lora_path = lora_path
        #: greedy calls draft up to this many tokens by prompt lookup (``llm.speculative``); 0 = off
        self.lookup_draft = lookup_draft
        self.lookup_ngram = lookup_ngram
        meta = self.llama.metadata
        self._template = meta.get("tokenizer.chat_template")
        self._add_bos = str(meta.get("tokenizer.ggml.add_bos_token", "false")).lower() == "true"
        self._bos = self._piece(self.llama.token_bos())
        self._eos = self._piece(self.llama.token_eos())
        self._end_ids = {self.llama.token_eos()}
        for text in END_OF_TURN_TEXTS:
            ids = self.llama.tokenize(text.encode(), add_bos=False, special=True)
            if len(ids) == 1:
                self._end_ids.add(ids[0])
        self._lock = threading.Lock()

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llama.detokenize([token], special=True).decode("utf-8", "replace")

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_template(self._template, messages, bos_token=self._bos, eos_token=self._eos)

    def tokenize(self, text: str) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=True)

    def stream(self, messages: list[dict[str, str]], params: GenParams, stats: GenStats) -> Iterator[str]:
        import numpy as np
        from llama_cpp import LogitsProcessorList

        start = time.perf_counter()
        tokens = self.tokenize(self.render(messages))
        n_ctx = self.llama.n_ctx()
        _check_length(len(tokens), n_ctx)
        max_new = min(params.max_new_tokens, n_ctx - len(tokens))
        stats.prompt_tokens = len(tokens)
        end_ids = sorted(self._end_ids)
        processors = None
        if params.ignore_eos:
            def ban_end(_ids: Any, scores: Any) -> Any:
                scores[end_ids] = -np.inf
                return scores
            processors = LogitsProcessorList([ban_end])
        scanner = StopScanner(params.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        cut_by_stop = False
        with self._lock:
            cached = self.llama.longest_token_prefix(self.llama._input_ids.tolist(), tokens)
            stats.cached_prompt_tokens = min(cached, len(tokens) - 1) if self.llama.n_tokens else 0
            if params.temperature <= 0 and self.lookup_draft > 0:
                gen = self._lookup_tokens(tokens, keep=stats.cached_prompt_tokens,
                                          banned=end_ids if params.ignore_eos else [], stats=stats)
            else:
                if params.temperature > 0:
                    self.llama.set_seed(params.seed)
                gen = self.llama.generate(
                    tokens, temp=params.temperature, top_p=params.top_p if params.temperature > 0 else 1.0,
                    top_k=0, min_p=0.0, repeat_penalty=1.0, reset=True, logits_processor=processors)
            stats.finish_reason = "length"
            try:
                for token in gen:
                    if token in self._end_ids and not params.ignore_eos:
                        stats.finish_reason = "stop"
                        break
                    stats.completion_tokens += 1
                    if stats.completion_tokens == 1:
                        stats.ttft_s = time.perf_counter() - start
                    text, stopped = scanner.feed(decoder.decode(self.llama.detokenize([token])))
                    if text:
                        yield text
                    if stopped:
                        stats.finish_reason = "stop"
                        cut_by_stop = True
                        break
                    if stats.completion_tokens >= max_new:
                        break
            finally:
                gen.close()
                stats.total_s = time.perf_counter() - start
        tail = "" if cut_by_stop else scanner.flush() + decoder.decode(b"", final=True)
        if tail:
            yield tail

    def _lookup_tokens(self, tokens: list[int], *, keep: int, banned: list[int],
                       stats: GenStats) -> Iterator[int]:
        """Greedy tokens after ``tokens`` with prompt-lookup drafts (``llm.speculative``), reusing the first
        ``keep`` cached tokens and keeping llama-cpp-python's record of the KV cache (``input_ids[:n_tokens]``)
        exact, so the next call reuses the cached prefix as ``Llama.generate`` does."""
        import numpy as np

        from llm.speculative import DraftStats, speculative_greedy

        llama = self.llama
        n_vocab = llama.n_vocab()
        if keep and not llama._ctx.kv_cache_seq_rm(-1, keep, -1):
            keep = 0  # this model's memory cannot drop a suffix: evaluate the whole prompt
        llama.n_tokens = keep
        llama.eval(tokens[keep:])  # removes the stale cache after ``keep`` first
        first = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(n_vocab,)).copy()

        def decode(batch: list[int]) -> Any:
            n_past = llama.n_tokens
            llama._batch.set_batch(batch=batch, n_past=n_past, logits_all=True)
            llama._ctx.decode(llama._batch)
            llama.input_ids[n_past:n_past + len(batch)] = batch
            llama.n_tokens += len(batch)
            return np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(batch) * n_vocab,)).reshape(
                len(batch), n_vocab)

        def rollback(n: int) -> None:
            llama.n_tokens -= n
            llama._ctx.kv_cache_seq_rm(-1, llama.n_tokens, -1)

        drafts = DraftStats()
        try:
            yield from speculative_greedy(tokens, first, decode, rollback, capacity=llama.n_ctx() - len(tokens),
                                          n_draft=self.lookup_draft, max_ngram=self.lookup_ngram,
                                          banned=banned, stats=drafts)
        finally:
            stats.draft_tokens, stats.accepted_draft_tokens = drafts.drafted, drafts.accepted
            llama._requires_eval = True  # the context's logits are a batch's rows, not those after n_tokens


# ---------------------------------------------------------------------------------------------- transformers
class TransformersEngine:
    """A causal LM in transformers (float), generating with its KV cache one token at a time (greedy or
    temperature / top-p sampling)."""

    backend = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, model_name: str, n_ctx: int | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_name = model_name
        cfg_ctx = getattr(model.config, "max_position_embeddings", None) or 4096
        self.n_ctx = min(n_ctx or cfg_ctx, cfg_ctx)
        self._end_ids: set[int] = set()
        eos = getattr(model.generation_config, "eos_token_id", None)
        for value in (eos if isinstance(eos, list) else [eos]) + [tokenizer.eos_token_id]:
            if isinstance(value, int):
                self._end_ids.add(value)
        vocab = tokenizer.get_vocab()
        self._end_ids.update(vocab[t] for t in END_OF_TURN_TEXTS if t in vocab)
        self._lock = threading.Lock()

    def render(self, messages: list[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return render_template(None, messages)

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def stream(self, messages: list[dict[str, str]], params: GenParams, stats: GenStats) -> Iterator[str]:
        import torch

        start = time.perf_counter()
        ids = self.tokenize(self.render(messages))
        _check_length(len(ids), self.n_ctx)
        max_new = min(params.max_new_tokens, self.n_ctx - len(ids))
        stats.prompt_tokens = len(ids)
        scanner = StopScanner(params.stop)
        end_ids = sorted(self._end_ids)
        generator = torch.Generator().manual_seed(params.seed) if params.temperature > 0 else None
        generated: list[int] = []
        emitted = ""
        cut_by_stop = False
        stats.finish_reason = "length"
        with self._lock, torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1)
            try:
                while True:
                    logits = out.logits[0, -1].float()
                    if params.ignore_eos:
                        logits[end_ids] = float("-inf")
                    token = self._pick(logits, params, generator)
                    if token in self._end_ids and not params.ignore_eos:
                        stats.finish_reason = "stop"
                        break
                    generated.append(token)
                    stats.completion_tokens += 1
                    if stats.completion_tokens == 1:
                        stats.ttft_s = time.perf_counter() - start
                    text = self.tokenizer.decode(generated, skip_special_tokens=True)
                    if not text.endswith("\ufffd"):
                        piece, emitted = text[len(emitted):], text
                        piece, stopped = scanner.feed(piece)
                        if piece:
                            yield piece
                        if stopped:
                            stats.finish_reason = "stop"
                            cut_by_stop = True
                            break
                    if stats.completion_tokens >= max_new:
                        break
                    out = self.model(input_ids=torch.tensor([[token]]), cache=out.cache, use_cache=True)
            finally:
                stats.total_s = time.perf_counter() - start
        if not cut_by_stop:
            text = self.tokenizer.decode(generated, skip_special_tokens=True)
            tail = scanner.flush() + text[len(emitted):]
            if tail:
                yield tail

    @staticmethod
    def _pick(logits: Any, params: GenParams, generator: Any) -> int:
        import torch

        if params.temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < params.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
