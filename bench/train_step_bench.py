"""LoRA training-step speed by compute variant: ``python -m bench.train_step_bench [--variants ...]``.

A variant is a base dtype with optional ``+autocast`` (recipe key ``autocast``: the LoRA matmuls in the base's
dtype) and ``+batched`` (``prefix_attention: batched``, finetune.prefix_attention), e.g.
``float32,bfloat16,bfloat16+autocast,bfloat16+autocast+batched`` (the default; the first is the baseline).
Builds the default recipe's data (or reads ``--data``), encodes its training sample as training does (but
without the recipe's decision weights: they rescale per-token losses, not the work) and takes
the first ``--batches`` micro-batches of epoch 0 (``finetune.train.make_batches``: the same length-sorted
batches of mixed kinds a run sees), then times a forward + backward pass of each in every variant,
alternating variants batch by batch ``--repeats`` times in one process so that machine noise hits every
variant alike. Prints, per variant, the median over repeats of the summed seconds for those batches, the
ratio to the baseline, the summed loss and how far the LoRA gradient of the first batch is from the
baseline's (relative norm of the difference: what the variant's rounding moves). OpenMP's wait policy is the
default recipe's ``omp_wait_policy``, as training sets it (``--omp-wait-policy`` to compare). Nothing here is
asserted.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.train_step_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="train.jsonl (default: build the default recipe's data)")
    ap.add_argument("--variants", default="float32,bfloat16,bfloat16+autocast,bfloat16+autocast+batched")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=8, help="micro-batches of epoch 0 to time")
    ap.add_argument("--omp-wait-policy", default=None,
                    help="active | passive | inherit (default: the default recipe's omp_wait_policy, as training)")
    args = ap.parse_args(argv)

    import tempfile

    from finetune.train import DEFAULT_RECIPE, apply_omp_wait_policy, load_recipe

    recipe = load_recipe(DEFAULT_RECIPE)
    wait_policy = apply_omp_wait_policy(args.omp_wait_policy or recipe["omp_wait_policy"])  # before torch loads
    import torch

    from core.offline import enforce_offline
    from finetune.dataset import read_jsonl
    from finetune.modeling import load_model, load_tokenizer, resolve_base
    from finetune.train import (
        batch_loss,
        compute_context,
        encode_rows,
        make_batches,
        prepare_data,
        select_examples,
        system_prefix_ids,
        token_chunks,
        with_lora,
    )

    enforce_offline()
    torch.set_num_threads(args.threads)
    data = args.data
    if data is None:
        data_dir, _ = prepare_data(recipe, Path(tempfile.mkdtemp(prefix="mdi-bench-")))
        data = data_dir / "train.jsonl"
    ref = resolve_base(recipe["base_model"])
    tok = load_tokenizer(ref)
    rows = select_examples(read_jsonl(data), int(recipe["train_examples"]), recipe["mix"], recipe["seed"])
    encoded, _ = encode_rows(tok, rows, int(recipe["max_length"]))
    prefix = system_prefix_ids(tok)
    micro = int(recipe["micro_batch_size"])
    order = make_batches(len(encoded), micro, int(recipe["seed"]), 0, [len(e.ids) for e in encoded],
                         int(recipe["length_window"]))
    batches = [[encoded[i] for i in b] for b in order[: args.batches]]
    from finetune.modeling import check_dtype
    from finetune.prefix_attention import register

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    specs = {}
    for v in variants:
        dt, *flags = v.split("+")
        check_dtype(dt)
        if set(flags) - {"autocast", "batched"}:
            ap.error(f"unknown flag in variant {v!r} (known: autocast, batched)")
        specs[v] = (dt, "autocast" in flags, "batched" in flags)
    models = {}
    for dt, _, _ in specs.values():
        if dt not in models:
            torch.manual_seed(int(recipe["seed"]))  # the same LoRA initialisation for every dtype
            models[dt] = with_lora(load_model(ref, "cpu", dt), recipe["lora"])
            models[dt].train()
    batched_impl = register()

    def step(variant, batch) -> tuple[float, float, "torch.Tensor"]:
        dt, autocast, batched = specs[variant]
        model = models[dt]
        model.get_base_model().set_attn_implementation(batched_impl if batched else "sdpa")
        start, total = time.perf_counter(), 0.0
        for chunk in token_chunks(batch, int(recipe["max_batch_tokens"]), len(prefix)):
            with compute_context(model, "cpu", dt, autocast):
                loss, _ = batch_loss(model, chunk, tok.pad_token_id, "cpu", prefix)
            loss.backward()
            total += float(loss.detach())
        seconds = time.perf_counter() - start
        grad = torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])
        model.zero_grad(set_to_none=True)
        return seconds, total, grad

    grads = {v: step(v, batches[0])[2] for v in variants}  # warm-up, not timed
    times: dict[str, list[float]] = {v: [] for v in variants}
    losses: dict[str, float] = {}
    for _ in range(args.repeats):
        run = {v: 0.0 for v in variants}
        for batch in batches:
            for v in variants:
                seconds, loss, _ = step(v, batch)
                run[v] += seconds
                losses[v] = losses.get(v, 0.0) + loss
        for v in variants:
            times[v].append(run[v])
    tokens = sum(len(e.ids) - len(prefix) for b in batches for e in b)
    out = {"threads": args.threads, "omp_wait_policy": wait_policy, "repeats": args.repeats,
           "batches": len(batches), "examples": sum(len(b) for b in batches), "tokens_after_prefix": tokens,
           "suffix_widths": [max(len(e.ids) for e in b) - len(prefix) for b in batches], "rows": []}
    base = statistics.median(times[variants[0]])
    g0 = grads[variants[0]]
    for v in variants:
        med = statistics.median(times[v])
        out["rows"].append({"variant": v, "median_s": round(med, 2), "s_per_batch": round(med / len(batches), 2),
                            "speedup_vs_" + variants[0]: round(base / med, 2),
                            "loss_sum_per_repeat": round(losses[v] / args.repeats, 2),
                            "grad_rel_diff": round(float((grads[v] - g0).norm() / g0.norm()), 5)})
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
