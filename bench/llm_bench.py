"""LLM speed: decode tokens/s and time-to-first-token of the served default vs plain transformers, one run.

    .venv/bin/python -m bench.llm_bench [--runs 5] [--new-tokens 64] [--llm-threads 2]

Prompt: the agent's real SYSTEM_PROMPT (agent/prompts.py) + a catalog question (~320 tokens with the chat
template). Per round, interleaved so both see the same machine load:

* baseline: the same GGUF de-quantized to fp32 in transformers, plain ``model.generate`` (greedy, exactly
  ``--new-tokens`` tokens), TTFT measured by a streamer at the first generated token;
* served: ``llm.factory.load_chat_model()`` (default settings: llama.cpp, the adapter if shipped, merged into
  the weights) through LangChain ``.stream()``: TTFT cold (empty KV cache: the whole prompt is evaluated) and
  warm (another question after the same system prompt: llama.cpp reuses the cached system-prompt prefix),
  decode tok/s;
* ``--compare-modes``: also the other ``llm_adapter_mode`` (the adapter applied at run time when the default
  merges it, or merged when ``--llm-adapter-mode runtime``), in the same rounds;
* ``--compare-lookup N``: also the served model with prompt-lookup drafting of N tokens (``llm_lookup_draft``;
  or without drafting when the settings already draft), in the same rounds;
* ``--until-end``: served generations stop at the end of the turn (at most ``--new-tokens``), so decode speed is
  measured on what the model really writes (drafting's gain depends on it); by default every side writes exactly
  ``--new-tokens`` tokens with end-of-turn banned. The baseline always writes exactly ``--new-tokens``.

Prints medians over ``--runs`` rounds (after one warm-up round), the served/baseline ratios, the load average,
and a final JSON line. Other processes on the machine slow both sides; compare the ratio.
"""
from __future__ import annotations

import os

# before torch / llama_cpp load libgomp: idle OpenMP workers sleep instead of spinning (both sides get it)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from core.offline import enforce_offline  # noqa: E402
from core.settings import load_settings  # noqa: E402
from llm.settings import LLMSettings  # noqa: E402

QUESTIONS = [
    "Which USB-C cables under ₹500 have at least 4 stars and more than 1,000 ratings?",
    "What discount would a ₹2,499 smartwatch rated 4.1 with 3.2k reviews get?",
    "Show me the best rated wireless earbuds below ₹1,999 and compare their discounts.",
    "Which category has the highest average discount, and how many products does it have?",
    "Find a 55 inch smart TV with a rating of 4.3 or more and tell me its list price.",
    "Recommend a budget mixer grinder under ₹3,000 with good reviews for my campaign.",
]


class BenchSettings(LLMSettings):
    runs: int = 3
    new_tokens: int = 64
    skip_baseline: bool = False
    #: also measure the other llm_adapter_mode (merged vs runtime) in the same rounds
    compare_modes: bool = False
    #: also measure served with llm_lookup_draft = this (or 0 when the settings already draft); 0 = no
    compare_lookup: int = 0
    #: served generations stop at end of turn (real outputs) instead of exactly new_tokens
    until_end: bool = False


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_baseline(model, input_ids, new_tokens: int) -> tuple[float, float]:
    """(ttft_s, decode tok/s) of plain ``model.generate`` greedy with exactly ``new_tokens`` new tokens."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    class FirstToken(BaseStreamer):
        def __init__(self) -> None:
            self.calls, self.first = 0, None

        def put(self, value) -> None:  # first call: the prompt; second: the first new token
            self.calls += 1
            if self.calls == 2:
                self.first = time.perf_counter()

        def end(self) -> None:
            pass

    streamer = FirstToken()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             streamer=streamer, pad_token_id=model.generation_config.eos_token_id)
    end = time.perf_counter()
    n = out.shape[1] - input_ids.shape[1]
    return streamer.first - start, (n - 1) / (end - streamer.first)


def run_served(chat, messages, new_tokens: int, *, cold: bool, until_end: bool = False) -> tuple[float, float, int]:
    """(ttft_s measured at the first streamed chunk, decode tok/s, cached prompt tokens) through LangChain."""
    engine = chat.engine
    if cold and hasattr(engine, "llama"):
        engine.llama.reset()  # forget the KV cache: the whole prompt is evaluated
    start = time.perf_counter()
    first = None
    meta = {}
    for chunk in chat.stream(messages, max_new_tokens=new_tokens, ignore_eos=not until_end):
        if first is None and chunk.content:
            first = time.perf_counter()
        meta = chunk.response_metadata or meta
    end = time.perf_counter()
    n = meta["completion_tokens"]
    return first - start, (n - 1) / (end - first), meta.get("cached_prompt_tokens", 0)


def main(argv: list[str] | None = None) -> int:
    enforce_offline()
    from langchain_core.messages import HumanMessage, SystemMessage

    from agent.prompts import SYSTEM_PROMPT
    from llm.chat_model import to_chat_dicts
    from llm.factory import load_chat_model, load_transformers_model, resolve_base_model

    settings = load_settings(BenchSettings, sys.argv[1:] if argv is None else argv, prog="bench.llm_bench",
                             log_start=False)
    threads = settings.threads
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()} (other processes share these cores); "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    served = {}
    # variant name -> settings changes; the first is the configured default
    variants: dict[str, dict[str, object]] = {settings.llm_adapter_mode: {}}
    if settings.compare_modes:
        other = "runtime" if settings.llm_adapter_mode == "merged" else "merged"
        variants[other] = {"llm_adapter_mode": other}
    if settings.compare_lookup:
        draft = 0 if settings.llm_lookup_draft else settings.compare_lookup
        variants[f"lookup{draft}"] = {"llm_lookup_draft": draft}
    modes = list(variants)
    for mode, update in variants.items():
        t0 = time.perf_counter()
        served[mode] = load_chat_model(settings.model_copy(update=update))
        print(f"served ({mode}): backend={settings.llm_backend} model={served[mode].model_name} "
              f"adapter={getattr(served[mode], 'adapter', None)} threads={threads} "
              f"lookup_draft={update.get('llm_lookup_draft', settings.llm_lookup_draft)} "
              f"(loaded in {time.perf_counter() - t0:.1f}s)")
    chat = served[modes[0]]
    base_model = None
    if not settings.skip_baseline:
        import torch

        torch.set_num_threads(settings.llm_threads or os.cpu_count() or 1)  # baseline: torch default, all cores
        t0 = time.perf_counter()
        base_model, tokenizer = load_transformers_model(resolve_base_model(settings))
        print(f"baseline: transformers {base_model.dtype} model.generate, same GGUF de-quantized, "
              f"{torch.get_num_threads()} threads (loaded in {time.perf_counter() - t0:.1f}s)")

    def messages(i: int):
        return [SystemMessage(SYSTEM_PROMPT), HumanMessage(QUESTIONS[i % len(QUESTIONS)])]

    n_prompt = chat.count_tokens(messages(0))
    print(f"prompt: SYSTEM_PROMPT + question = {n_prompt} tokens; {settings.new_tokens} new tokens; "
          f"{settings.runs} measured rounds after 1 warm-up")
    # rows of the other mode are prefixed with its name ("runtime_cold_tps"...)
    prefixes = {mode: "" if i == 0 else f"{mode}_" for i, mode in enumerate(modes)}
    rows: dict[str, list[float]] = {"base_ttft": [], "base_tps": []}
    for pre in prefixes.values():
        rows.update({pre + k: [] for k in ("cold_ttft", "cold_tps", "warm_ttft", "warm_tps", "warm_cached")})
    for r in range(settings.runs + 1):
        record = r > 0
        if base_model is not None:
            import torch

            text = tokenizer.apply_chat_template(to_chat_dicts(messages(2 * r)), tokenize=False,
                                                 add_generation_prompt=True)
            ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
            ttft, tps = run_baseline(base_model, ids, settings.new_tokens)
            if record:
                rows["base_ttft"].append(ttft)
                rows["base_tps"].append(tps)
        for mode, pre in prefixes.items():
            ttft, tps, _ = run_served(served[mode], messages(2 * r), settings.new_tokens, cold=True,
                                      until_end=settings.until_end)
            if record:
                rows[pre + "cold_ttft"].append(ttft)
                rows[pre + "cold_tps"].append(tps)
            ttft, tps, cached = run_served(served[mode], messages(2 * r + 1), settings.new_tokens, cold=False,
                                           until_end=settings.until_end)
            if record:
                rows[pre + "warm_ttft"].append(ttft)
                rows[pre + "warm_tps"].append(tps)
                rows[pre + "warm_cached"].append(cached)
        print(f"  round {r}{'' if record else ' (warm-up)'}: " + ", ".join(
            f"{k}={v[-1]:.3f}" for k, v in rows.items() if v and record))

    med = {k: _median(v) for k, v in rows.items()}
    print()
    print(f"{'':28}{'TTFT s (median)':>18}{'decode tok/s (median)':>24}")
    if base_model is not None:
        print(f"{'baseline transformers fp32':28}{med['base_ttft']:>18.3f}{med['base_tps']:>24.1f}")
    for mode, pre in prefixes.items():
        tag = f" ({mode})" if chat.adapter or len(prefixes) > 1 else ""
        print(f"{'served, cold prompt' + tag:28}{med[pre + 'cold_ttft']:>18.3f}{med[pre + 'cold_tps']:>24.1f}")
        print(f"{'served, cached system' + tag:28}{med[pre + 'warm_ttft']:>18.3f}{med[pre + 'warm_tps']:>24.1f}"
              f"   ({med[pre + 'warm_cached']:.0f} of ~{n_prompt} prompt tokens from cache)")
    result = {"prompt_tokens": n_prompt, "new_tokens": settings.new_tokens, "runs": settings.runs,
              "threads": threads, "backend": settings.llm_backend, "adapter": getattr(chat, "adapter", None),
              "adapter_mode": settings.llm_adapter_mode if getattr(chat, "adapter", None) else None,
              "loadavg_end": os.getloadavg(), **{k: round(v, 4) for k, v in med.items()}}
    if base_model is not None:
        decode_ratio = med["cold_tps"] / med["base_tps"]
        result.update(decode_speedup=round(decode_ratio, 2),
                      ttft_speedup_cold=round(med["base_ttft"] / med["cold_ttft"], 2))
        print(f"decode speed-up served/baseline: {decode_ratio:.1f}x (goal >= 3x); "
              f"TTFT cold {med['cold_ttft']:.3f}s, cached-system {med['warm_ttft']:.3f}s (goal <= 0.5s); "
              f"load average now {os.getloadavg()}")
        for mode, pre in list(prefixes.items())[1:]:
            other = med[pre + "cold_tps"] / med["base_tps"]
            result[f"{mode}_decode_speedup"] = round(other, 2)
            print(f"  {mode}: decode speed-up {other:.1f}x, cached-system TTFT {med[pre + 'warm_ttft']:.3f}s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
