"""LoRA training-step speed by base dtype: ``python -m bench.train_step_bench [--dtypes float32,bfloat16]``.

Builds the default recipe's data (or reads ``--data``), encodes its training sample as training does (but
without the recipe's decision weights: they rescale per-token losses, not the work) and takes
the first ``--batches`` micro-batches of epoch 0 (``finetune.train.make_batches``: the same length-sorted
batches of mixed kinds a run sees), then times a forward + backward pass of each with the base model loaded in
every ``--dtypes`` entry, alternating dtypes batch by batch ``--repeats`` times in one process so that machine
noise hits every dtype alike. Prints, per dtype, the median over repeats of the summed seconds for those
batches, the ratio to the first dtype (the baseline) and the summed loss (how far its rounding moves it).
Nothing here is asserted; bfloat16 matmuls are only fast on CPUs that compute them natively (AMX).
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
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=8, help="micro-batches of epoch 0 to time")
    args = ap.parse_args(argv)

    import tempfile

    import torch

    from core.offline import enforce_offline
    from finetune.dataset import read_jsonl
    from finetune.modeling import load_model, load_tokenizer, resolve_base
    from finetune.train import (
        DEFAULT_RECIPE,
        batch_loss,
        encode_rows,
        load_recipe,
        make_batches,
        prepare_data,
        select_examples,
        system_prefix_ids,
        token_chunks,
        with_lora,
    )

    enforce_offline()
    torch.set_num_threads(args.threads)
    recipe = load_recipe(DEFAULT_RECIPE)
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
    order = make_batches(len(encoded), micro, int(recipe["seed"]), 0, [len(e.ids) for e in encoded])
    batches = [[encoded[i] for i in b] for b in order[: args.batches]]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    models = {}
    for dt in dtypes:
        model = with_lora(load_model(ref, "cpu", dt), recipe["lora"])
        model.train()
        models[dt] = model

    def step(model, batch) -> tuple[float, float]:
        start, total = time.perf_counter(), 0.0
        for chunk in token_chunks(batch, int(recipe["max_batch_tokens"]), len(prefix)):
            loss, _ = batch_loss(model, chunk, tok.pad_token_id, "cpu", prefix)
            loss.backward()
            total += float(loss.detach())
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start, total

    for dt in dtypes:  # warm-up, not timed
        step(models[dt], batches[0])
    times: dict[str, list[float]] = {dt: [] for dt in dtypes}
    losses: dict[str, float] = {}
    for _ in range(args.repeats):
        run = {dt: 0.0 for dt in dtypes}
        for batch in batches:
            for dt in dtypes:
                seconds, loss = step(models[dt], batch)
                run[dt] += seconds
                losses[dt] = losses.get(dt, 0.0) + loss
        for dt in dtypes:
            times[dt].append(run[dt])
    tokens = sum(len(e.ids) - len(prefix) for b in batches for e in b)
    out = {"threads": args.threads, "repeats": args.repeats,
           "batches": len(batches), "examples": sum(len(b) for b in batches), "tokens_after_prefix": tokens,
           "rows": []}
    base = statistics.median(times[dtypes[0]])
    for dt in dtypes:
        med = statistics.median(times[dt])
        out["rows"].append({"dtype": dt, "median_s": round(med, 2), "s_per_batch": round(med / len(batches), 2),
                            "speedup_vs_" + dtypes[0]: round(base / med, 2),
                            "loss_sum_per_repeat": round(losses[dt] / args.repeats, 2)})
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
