"""PEFT LoRA training on the agent's chat format: ``python -m finetune.train --recipe finetune/recipes/default.yaml``.

One YAML file per recipe; any key can be overridden on the command line (``--lr 5e-4 --lora.r 4 --max-steps 10``).
The recipe builds its dataset from a catalog (``finetune.dataset``) unless ``data_dir`` points at a built one,
trains a LoRA adapter with the loss on assistant tokens only, checkpoints every ``save_every`` steps (resumed
automatically from ``<out>/checkpoint``), and writes the adapter folder:

* ``adapter_model.safetensors`` + ``adapter_config.json`` (PEFT),
* ``adapter.gguf`` (llama.cpp LoRA, via ``llm.gguf_adapter.export_lora_to_gguf``) when the base is a GGUF,
* ``manifest.json`` (``kind="lora_adapter"``): base model id + base file sha256, recipe, dataset hash and
  manifest, system-prompt hash, training metrics.

Speed on CPU: every example starts with the same system prompt, so each micro-batch runs that shared prefix
once (batch 1) and the rest of every example on top of its key/value cache (``share_prefix``); gradients still
flow through the prefix. Logits are computed only where there are labels.
"""
from __future__ import annotations

import json
import logging
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.artifacts import load_manifest, write_manifest
from core.errors import ArtifactError, ConfigError
from core.hashing import sha256_file, sha256_text
from core.settings import REPO_ROOT

log = logging.getLogger(__name__)

ADAPTER_KIND = "lora_adapter"
ADAPTER_SCHEMA_VERSION = 1
CODE_VERSION = "train-v1"
PEFT_FILES = ("adapter_model.safetensors", "adapter_config.json")
DEFAULT_RECIPE = REPO_ROOT / "finetune" / "recipes" / "default.yaml"

DEFAULTS: dict[str, Any] = {
    "name": "default",
    "base_model": "smollm2-135m-gguf",
    "base_gguf_file": None,
    "catalog": "data/demo_catalog.csv",
    "data_dir": None,
    "dataset": {"seed": 13, "test_fraction": 0.2, "scale": 1.0, "arg_order": "question", "price_mix": "v3"},
    "train_examples": 0,  # 0 = all of the train split
    "mix": {},  # optional {kind: fraction} for the sampled training set
    "max_length": 640,
    "lora": {"r": 8, "alpha": 16, "dropout": 0.0,
             "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
    "epochs": 1.0,
    "max_steps": 0,  # 0 = from epochs
    "batch_size": 8,
    "micro_batch_size": 8,
    "lr": 1e-3,
    "warmup_ratio": 0.05,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "seed": 13,
    "save_every": 50,
    "share_prefix": True,
    # with a bfloat16/float16 base: run the LoRA matmuls in that dtype under torch.autocast instead of
    # casting every activation to float32 for them (LoRA weights, AdamW state and the loss stay float32)
    "autocast": False,
    # attention of the suffixes over the shared prefix: "batched" (finetune.prefix_attention: one matmul
    # against one copy of the prefix keys), "sdpa" (PyTorch's fused kernel on the batch-expanded cache) or
    # "auto" (batched with a half-precision base, where it was measured faster, sdpa with float32)
    "prefix_attention": "sdpa",
    # micro-batches per length-sorted window (make_batches): larger windows pad less (8: ~21 % of the
    # default recipe's suffix tokens are padding, 64: ~3 %) but group examples of similar length in a step
    "length_window": 8,
    # loss weight on the tokens of a tool call's decisions (argument names, choice values; see
    # finetune.modeling.encode_weighted) against 1 for the other labelled tokens; 1 = plain mean. With
    # decision_norm "example" each example's weights are scaled back to its labelled-token count, so the weight
    # moves inside a call and every example (answers, refusals) keeps its share of the step; "step" leaves
    # them as they are (calls then outweigh answers)
    "decision_weight": 1.0,
    "decision_norm": "example",
    # memory knob: a micro-batch whose padded tokens (after the shared prefix) exceed this runs in several
    # forward/backward chunks; the gradient is the same (the loss is normalised over the whole step). 0 = off
    "max_batch_tokens": 2048,
    "device": "auto",
    "dtype": "float32",
    "threads": 0,  # 0 = torch default
    # how idle OpenMP threads wait (OMP_WAIT_POLICY, set by `python -m finetune.train` before torch loads):
    # "active" spins, which suits a training run that has the cores to itself (1.12x faster steps than "passive"
    # on the 2-core CPU, docs/finetune.md "Training"); "passive" sleeps, for a machine shared with other CPU work
    # (what core.offline sets for serving); "inherit" leaves the environment's value
    "omp_wait_policy": "active",
    "out": "runs/smollm2-agent",
    "export_gguf": True,
}


# ------------------------------------------------------------------------------------------------ recipe
PREFIX_ATTENTIONS = ("auto", "sdpa", "batched")
OMP_WAIT_POLICIES = ("active", "passive", "inherit")


def apply_omp_wait_policy(policy: str, environ: dict[str, str] | None = None, torch_loaded: bool | None = None
                          ) -> str | None:
    """Set ``OMP_WAIT_POLICY`` for the recipe's ``omp_wait_policy`` (unless "inherit") and return the value in
    the environment. OpenMP reads it once, when torch loads: the script calls this before importing torch; an
    in-process caller that already imported it gets a warning that the policy cannot apply."""
    import os

    env = os.environ if environ is None else environ
    loaded = "torch" in sys.modules if torch_loaded is None else torch_loaded
    if policy not in OMP_WAIT_POLICIES:
        raise ConfigError(f"omp_wait_policy must be one of {', '.join(OMP_WAIT_POLICIES)}, got {policy!r}")
    if policy != "inherit":
        want = policy.upper()
        if loaded and env.get("OMP_WAIT_POLICY") != want:
            log.warning("omp_wait_policy %s not applied: torch is already loaded (OMP_WAIT_POLICY=%s)", policy,
                        env.get("OMP_WAIT_POLICY"))
            return env.get("OMP_WAIT_POLICY")
        env["OMP_WAIT_POLICY"] = want
    return env.get("OMP_WAIT_POLICY")


def resolve_prefix_attention(attention: str, dtype: str) -> str:
    """The prefix attention to train with: "auto" is "batched" with a half-precision base and "sdpa" with float32
    (batched measured slower there on CPU: 10.1 vs 7.35 s per micro-batch, docs/finetune.md "Training")."""
    if attention == "auto":
        return "sdpa" if dtype == "float32" else "batched"
    if attention == "batched" and dtype == "float32":
        log.warning("prefix_attention: batched with a float32 base measured slower than sdpa on CPU (10.1 vs "
                    "7.35 s per micro-batch, docs/finetune.md): it pays off with a bfloat16 base")
    return attention


def _coerce(value: str) -> Any:
    """A CLI value as YAML would read it ('5e-4' -> 0.0005, 'true' -> True, '[a, b]' -> list)."""
    try:
        out = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if isinstance(out, str):
        try:
            return float(out)
        except ValueError:
            return out
    return out


def load_recipe(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Defaults <- YAML recipe <- ``--key value`` / ``--key=value`` overrides (dotted keys for nested ones).

    A recipe may start from another one with ``extends: <name>`` (a YAML file beside it, ``.yaml`` optional).
    """
    recipe = json.loads(json.dumps(DEFAULTS))
    if path:
        for layer in _recipe_chain(Path(path)):
            _merge(recipe, layer)
    args = list(overrides or [])
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r} (use --key value)")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ConfigError(f"missing value for --{key}")
            value = args[i + 1]
            i += 1
        i += 1
        _set_dotted(recipe, key.replace("-", "_"), _coerce(value))
    _validate(recipe)
    return recipe


def _recipe_chain(p: Path, seen: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """The YAML mappings to merge for recipe ``p``: its ``extends`` chain first, ``p`` last."""
    if not p.is_file():
        raise ConfigError(f"recipe not found: {p}")
    if p.resolve() in seen:
        raise ConfigError(f"recipe {p} extends itself (via {' -> '.join(str(x.name) for x in seen)})")
    loaded = yaml.safe_load(p.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"recipe {p} is not a mapping")
    parent = loaded.pop("extends", None)
    if not parent:
        return [loaded]
    name = str(parent) if str(parent).endswith((".yaml", ".yml")) else f"{parent}.yaml"
    return _recipe_chain(p.parent / name, seen + (p.resolve(),)) + [loaded]


def _merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = d
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown recipe key --{key}")
        node = node[part]
    if parts[-1] not in node and parts[:-1] != ["mix"]:  # mix: shares by example kind, any subset of kinds
        raise ConfigError(f"unknown recipe key --{key} (known: {', '.join(sorted(node))})")
    node[parts[-1]] = value


def _validate(r: dict[str, Any]) -> None:
    problems = []
    if r["micro_batch_size"] < 1 or r["batch_size"] < r["micro_batch_size"] or r["batch_size"] % r["micro_batch_size"]:
        problems.append("batch_size must be a multiple of micro_batch_size >= 1")
    if not (r["lr"] > 0):
        problems.append("lr must be > 0")
    if r["lora"]["r"] < 1:
        problems.append("lora.r must be >= 1")
    if r["max_steps"] <= 0 and r["epochs"] <= 0:
        problems.append("set epochs > 0 or max_steps > 0")
    if not (float(r["decision_weight"]) > 0):
        problems.append("decision_weight must be > 0")
    from finetune.modeling import check_dtype

    try:
        check_dtype(r["dtype"])
    except ConfigError as exc:
        problems.append(str(exc))
    if not isinstance(r["autocast"], bool):
        problems.append("autocast must be true or false")
    if not isinstance(r["length_window"], int) or r["length_window"] < 1:
        problems.append("length_window must be an integer >= 1")
    if r["prefix_attention"] not in PREFIX_ATTENTIONS:
        problems.append(f"prefix_attention must be one of {', '.join(PREFIX_ATTENTIONS)}")
    if r["decision_norm"] not in ("example", "step"):
        problems.append("decision_norm must be 'example' or 'step'")
    if r["omp_wait_policy"] not in OMP_WAIT_POLICIES:
        problems.append(f"omp_wait_policy must be one of {', '.join(OMP_WAIT_POLICIES)}")
    from finetune.dataset import KINDS

    mix = r.get("mix") or {}
    if not isinstance(mix, dict) or set(mix) - set(KINDS) or not all(
            isinstance(v, (int, float)) and 0 <= v <= 1 for v in mix.values()):
        problems.append(f"mix must map example kinds ({', '.join(KINDS)}) to shares in [0, 1]")
    if problems:
        raise ConfigError("invalid recipe: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------------- data
def prepare_data(recipe: dict[str, Any], out: Path) -> tuple[Path, dict[str, Any]]:
    """The dataset folder (built under ``<out>/data`` from the recipe's catalog unless ``data_dir`` is set)."""
    from finetune.dataset import DATASET_KIND, DATASET_SCHEMA_VERSION, build_dataset

    if recipe.get("data_dir"):
        data_dir = Path(recipe["data_dir"])
    else:
        data_dir = out / "data"
        ds = recipe["dataset"]
        catalog = Path(recipe["catalog"])
        if not catalog.is_absolute():
            catalog = REPO_ROOT / catalog
        try:
            man = load_manifest(data_dir, kind=DATASET_KIND, schema_version=DATASET_SCHEMA_VERSION)
            from finetune.dataset import CODE_VERSION as DS_CODE
            from agent.prompts import SYSTEM_PROMPT
            current = (man.metadata.get("seed") == ds["seed"] and man.metadata.get("scale") == ds["scale"]
                       and man.metadata.get("test_fraction") == ds["test_fraction"]
                       and man.metadata.get("arg_order") == ds["arg_order"]
                       and man.metadata.get("price_mix", "v3") == ds["price_mix"]
                       and man.metadata.get("code_version") == DS_CODE
                       and man.metadata.get("system_prompt_sha256") == sha256_text(SYSTEM_PROMPT)
                       and man.data_sha256 == sha256_file(catalog))
        except ArtifactError:
            current = False
        if not current:
            build_dataset(catalog, data_dir, seed=ds["seed"], test_fraction=ds["test_fraction"], scale=ds["scale"],
                          arg_order=ds["arg_order"], price_mix=ds["price_mix"])
    man = load_manifest(data_dir, kind=DATASET_KIND, schema_version=DATASET_SCHEMA_VERSION)
    return data_dir, {"data_sha256": man.data_sha256, "train_sha256": man.files.get("train.jsonl"),
                      "metadata": man.metadata}


def select_examples(rows: list[dict[str, Any]], n: int, mix: dict[str, float], seed: int) -> list[dict[str, Any]]:
    """``n`` training rows (all when n <= 0), stratified by kind: ``mix`` fractions, else the natural shares."""
    if n <= 0 or n >= len(rows):
        return list(rows)
    rng = random.Random(seed)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r)
    total = len(rows)
    chosen: list[dict[str, Any]] = []
    for kind, items in sorted(by_kind.items()):
        share = mix.get(kind, len(items) / total) if mix else len(items) / total
        k = min(len(items), max(1, int(round(n * share))))
        chosen.extend(rng.sample(items, k))
    rng.shuffle(chosen)
    return chosen[:n]


@dataclass
class Encoded:
    ids: list[int]
    labels: list[int]
    weights: list[float] | None = None  # per-token loss weights; None = all 1

    def label_weight(self) -> float:
        """What this example adds to a step's normaliser: its labelled tokens (after the first), weighted."""
        w = self.weights or [1.0] * len(self.ids)
        return sum(w[j] for j in range(1, len(self.ids)) if self.labels[j] != -100)


def encode_rows(tokenizer, rows: list[dict[str, Any]], max_length: int, decision_weight: float = 1.0,
                decision_norm: str = "example") -> tuple[list[Encoded], int]:
    from finetune.modeling import encode_weighted

    out, dropped = [], 0
    for r in rows:
        ids, labels, weights = encode_weighted(tokenizer, r["messages"], decision_weight=decision_weight)
        if len(ids) > max_length:
            dropped += 1
            continue
        e = Encoded(ids, labels, weights if decision_weight != 1.0 else None)
        if e.weights is not None and decision_norm == "example":
            scale = Encoded(ids, labels).label_weight() / e.label_weight()
            e.weights = [w * scale for w in e.weights]
        out.append(e)
    return out, dropped


def system_prefix_ids(tokenizer) -> list[int]:
    """Token ids of the shared system turn that starts every example."""
    from agent.prompts import SYSTEM_PROMPT
    from finetune.modeling import chat_text

    text = chat_text(tokenizer, [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "x"}])
    head = text[: text.index("<|im_start|>user")]
    return list(tokenizer(head, add_special_tokens=False)["input_ids"])


def make_batches(n: int, micro: int, seed: int, epoch: int, lengths: list[int], window: int = 8
                 ) -> list[list[int]]:
    """Micro-batches of example indices: shuffled per epoch, length-sorted within windows of ``window``
    micro-batches to cut padding (like transformers' ``group_by_length`` mega-batches), batches shuffled."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(n))
    rng.shuffle(order)
    window = micro * max(1, int(window))
    batches = []
    for w in range(0, n, window):
        chunk = sorted(order[w:w + window], key=lambda i: lengths[i])
        batches.extend(chunk[j:j + micro] for j in range(0, len(chunk), micro))
    rng.shuffle(batches)
    return batches


def token_chunks(batch: list[Encoded], max_tokens: int, prefix_len: int = 0) -> list[list[Encoded]]:
    """Split a micro-batch so that (examples x longest suffix) stays within ``max_tokens`` (0 = no split).

    Order is kept and every example lands in exactly one chunk, so summing the chunks' losses gives the
    micro-batch's loss: the split bounds memory (activations grow with padded tokens) without changing training.
    """
    if max_tokens <= 0 or len(batch) <= 1:
        return [batch]
    chunks: list[list[Encoded]] = []
    cur: list[Encoded] = []
    width = 0
    for e in batch:
        n = len(e.ids) - prefix_len
        if cur and max(width, n) * (len(cur) + 1) > max_tokens:
            chunks.append(cur)
            cur, width = [], 0
        cur.append(e)
        width = max(width, n)
    chunks.append(cur)
    return chunks


# ------------------------------------------------------------------------------------------------- loss
def _prefix_kwargs(base, prefix_len: int) -> dict[str, int]:
    """What the suffix pass tells finetune.prefix_attention (only when it is the model's attention: other
    architectures need not accept unknown keyword arguments)."""
    from finetune.prefix_attention import NAME

    return {"shared_prefix_len": prefix_len} if getattr(base.config, "_attn_implementation", None) == NAME else {}


def compute_context(model, device: str, dtype: str, autocast: bool):
    """Context for a forward pass: mixed precision (``autocast``) when the base is in a half dtype, else none.

    PEFT casts a LoRA layer's input to the adapter's float32 before its two small matmuls and the sum back to
    the base's dtype: with a bfloat16 base that is two full-size casts per adapted linear, forward and
    backward. Under autocast the adapter's (small) weights are cast instead and the activations stay in the
    base's dtype; the gradients still land in the float32 LoRA weights.
    """
    import contextlib

    if not autocast or dtype == "float32":
        return contextlib.nullcontext()
    import torch
    from peft.helpers import disable_input_dtype_casting

    stack = contextlib.ExitStack()
    stack.enter_context(disable_input_dtype_casting(model))
    stack.enter_context(torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu",
                                       dtype=getattr(torch, dtype)))
    return stack


def batch_loss(model, batch: list[Encoded], pad_id: int, device: str, prefix: list[int] | None):
    """Sum of token cross-entropies over labelled positions (each times its weight, where the examples carry
    weights), and their count.

    With ``prefix`` (ids every example starts with), the prefix runs once and the rest of each example runs
    on its (batch-expanded) KV cache; the result equals the plain computation up to float rounding.
    """
    import torch
    import torch.nn.functional as F

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder, lm_head = base.model, base.lm_head
    P = len(prefix) if prefix else 0
    seqs = [(e.ids[P:], e.labels[P:]) for e in batch]
    width = max(len(s[0]) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    weighted = any(e.weights is not None for e in batch)
    weights = torch.ones((len(seqs), width), dtype=torch.float32)
    for i, (s, lab) in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        labels[i, : len(s)] = torch.tensor(lab)
        mask[i, : len(s)] = 1
        if batch[i].weights is not None:
            weights[i, : len(s)] = torch.tensor(batch[i].weights[P:], dtype=torch.float32)
    ids, labels, mask, weights = ids.to(device), labels.to(device), mask.to(device), weights.to(device)
    if P:
        from transformers import DynamicCache

        cache = DynamicCache(config=base.config)
        pre = torch.tensor([prefix], dtype=torch.long, device=device)
        pre_out = decoder(input_ids=pre, cache=cache, use_cache=True)
        cache = pre_out.cache
        for layer in cache.layers:
            layer.keys = layer.keys.expand(len(seqs), -1, -1, -1)
            layer.values = layer.values.expand(len(seqs), -1, -1, -1)
        full_mask = torch.cat([torch.ones((len(seqs), P), dtype=torch.long, device=device), mask], dim=1)
        pos = torch.arange(P, P + width, device=device).unsqueeze(0).expand(len(seqs), -1)
        out = decoder(input_ids=ids, attention_mask=full_mask, cache=cache, use_cache=True,
                      position_ids=pos, cache_position=torch.arange(P, P + width, device=device),
                      **_prefix_kwargs(base, P))
        hidden = out.last_hidden_state
        # the first suffix token is predicted from the prefix's last hidden state
        first_hidden = pre_out.last_hidden_state[:, -1:, :].expand(len(seqs), -1, -1)
        hidden = torch.cat([first_hidden, hidden[:, :-1, :]], dim=1)
        targets = labels
    else:
        out = decoder(input_ids=ids, attention_mask=mask)
        hidden = out.last_hidden_state[:, :-1, :]
        targets, weights = labels[:, 1:], weights[:, 1:]
    sel = targets != -100
    logits = lm_head(hidden[sel])
    if not weighted:
        return F.cross_entropy(logits.float(), targets[sel], reduction="sum"), int(sel.sum())
    per_token = F.cross_entropy(logits.float(), targets[sel], reduction="none")
    return (per_token * weights[sel]).sum(), int(sel.sum())


# ------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(folder: Path, model, optimizer, scheduler, step: int, extra: dict[str, Any]) -> None:
    """Adapter weights + optimizer state (safetensors, no pickle) + JSON state, written atomically."""
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    tensors, meta = {}, {}
    for pid, st in optimizer.state_dict()["state"].items():
        for k, v in st.items():
            if hasattr(v, "shape") and getattr(v, "dim", lambda: 0)() > 0:
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                meta[f"{pid}.{k}"] = float(v)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    state = {"step": step, "optimizer_scalars": meta, "param_groups": optimizer.state_dict()["param_groups"],
             "scheduler": scheduler.state_dict(), **extra}
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1, default=str))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> dict[str, Any]:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = json.loads((folder / "trainer_state.json").read_text())
    weights = load_file(str(folder / "adapter_model.safetensors"))
    set_peft_model_state_dict(model, weights)
    opt_tensors = load_file(str(folder / "optimizer.safetensors"))
    sd = optimizer.state_dict()
    new_state: dict[int, dict[str, Any]] = {}
    for key, v in opt_tensors.items():
        pid, k = key.split(".", 1)
        new_state.setdefault(int(pid), {})[k] = v
    for key, v in state["optimizer_scalars"].items():
        pid, k = key.split(".", 1)
        new_state.setdefault(int(pid), {})[k] = torch.tensor(v)
    sd["state"] = new_state
    sd["param_groups"] = state["param_groups"]  # the scheduled lr lives here, not in the scheduler state
    optimizer.load_state_dict(sd)
    scheduler.load_state_dict(state["scheduler"])
    return state


# ------------------------------------------------------------------------------------------------ adapter
def check_adapter(adapter_dir: str | Path, ref=None) -> Any:
    """Load and verify an adapter folder's manifest (files, kind, schema); with ``ref``, that it was trained on
    that base model (same base weights sha256). Raises ArtifactError naming the problem."""
    man = load_manifest(adapter_dir, kind=ADAPTER_KIND, schema_version=ADAPTER_SCHEMA_VERSION)
    for name in PEFT_FILES:
        if name not in man.files:
            raise ArtifactError(f"adapter {adapter_dir} manifest does not list {name}", path=str(adapter_dir))
    if ref is not None:
        want = man.metadata.get("base_sha256")
        path = ref.weights_path
        if want and path is not None and path.is_file():
            have = sha256_file(path)
            if have != want:
                raise ArtifactError(
                    f"adapter {adapter_dir} was trained on base weights {want[:12]}..., but {path} is "
                    f"{have[:12]}...; use the matching base model", path=str(adapter_dir))
    return man


def write_adapter(folder: Path, model, *, recipe: dict[str, Any], ref, data_info: dict[str, Any],
                  metrics: dict[str, Any], export_gguf: bool) -> list[str]:
    """Save the PEFT adapter, export adapter.gguf (GGUF bases), write the manifest. Returns the file list."""
    from agent.prompts import SYSTEM_PROMPT

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    files = list(PEFT_FILES)
    base_path = ref.weights_path
    gguf_status = "skipped"
    if export_gguf and ref.gguf_file:
        try:
            from llm.gguf_adapter import ADAPTER_GGUF_NAME, export_lora_to_gguf

            export_lora_to_gguf(folder, base_path, folder / ADAPTER_GGUF_NAME)
            files.append(ADAPTER_GGUF_NAME)
            gguf_status = "exported"
        except ImportError as exc:  # exporter or the gguf package missing on this machine
            gguf_status = f"not exported: {exc}"
            log.warning("adapter.gguf %s (run `python -m llm.gguf_adapter --peft-dir %s` later)", gguf_status, folder)
    meta = {
        "base_model": ref.model_id,
        "base_file": Path(base_path).name if base_path else None,
        "base_sha256": sha256_file(base_path) if base_path and Path(base_path).is_file() else None,
        "recipe": recipe,
        "dataset": data_info,
        "system_prompt_sha256": sha256_text(SYSTEM_PROMPT),
        "code_version": CODE_VERSION,
        "gguf_export": gguf_status,
    }
    write_manifest(folder, kind=ADAPTER_KIND, schema_version=ADAPTER_SCHEMA_VERSION,
                   data_sha256=data_info.get("data_sha256") or "", files=files,
                   libraries=["torch", "transformers", "peft", "gguf"], metadata=meta, metrics=metrics)
    return files


# ------------------------------------------------------------------------------------------------- train
def with_lora(model, lcfg: dict[str, Any]):
    """``model`` wrapped in a fresh PEFT LoRA as a recipe's ``lora`` section describes it."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=int(lcfg["r"]), lora_alpha=int(lcfg["alpha"]),
                                            lora_dropout=float(lcfg["dropout"]),
                                            target_modules=list(lcfg["target_modules"]), task_type="CAUSAL_LM"))


def train(recipe: dict[str, Any], *, progress: bool = True, stop_after: int | None = None) -> dict[str, Any]:
    """Run a recipe end to end. Returns the metrics written to the adapter manifest.

    ``stop_after`` (tests) stops after that many steps without writing the adapter, like a crash: the next
    run with the same recipe resumes from the last checkpoint."""
    import torch
    from tqdm.auto import tqdm

    from core.offline import enforce_offline
    from finetune.dataset import read_jsonl
    from finetune.modeling import load_model, load_tokenizer, pick_device, resolve_base, resolve_dtype

    enforce_offline()
    out = Path(recipe["out"])
    if not out.is_absolute():
        out = REPO_ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    random.seed(recipe["seed"])
    torch.manual_seed(recipe["seed"])
    if recipe.get("threads"):
        torch.set_num_threads(int(recipe["threads"]))
    device = pick_device(recipe["device"])
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    ref = resolve_base(recipe["base_model"], recipe.get("base_gguf_file"))
    data_dir, data_info = prepare_data(recipe, out)
    rows = select_examples(read_jsonl(data_dir / "train.jsonl"), int(recipe["train_examples"]),
                           recipe.get("mix") or {}, recipe["seed"])
    tokenizer = load_tokenizer(ref)
    encoded, dropped = encode_rows(tokenizer, rows, int(recipe["max_length"]), float(recipe["decision_weight"]),
                                   recipe["decision_norm"])
    if not encoded:
        raise ConfigError("no training examples fit max_length")
    prefix = system_prefix_ids(tokenizer) if recipe["share_prefix"] else None
    if prefix and any(e.ids[: len(prefix)] != prefix for e in encoded):
        log.warning("not every example starts with the system prompt: share_prefix disabled")
        prefix = None
    dtype = resolve_dtype(recipe["dtype"], device)
    # the prefix attention only exists when the prefix is shared
    attention = resolve_prefix_attention(recipe["prefix_attention"], dtype) if prefix else None
    log.info("base weights in %s (recipe: %s), prefix attention %s (recipe: %s)", dtype, recipe["dtype"],
             attention, recipe["prefix_attention"])
    model = with_lora(load_model(ref, device, dtype), recipe["lora"])
    model.train()
    if attention == "batched":
        from finetune.prefix_attention import register

        model.get_base_model().set_attn_implementation(register())
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    micro = int(recipe["micro_batch_size"])
    accum = int(recipe["batch_size"]) // micro
    lengths = [len(e.ids) for e in encoded]
    per_epoch = math.ceil(len(encoded) / micro)
    total_steps = int(recipe["max_steps"]) or max(1, math.ceil(per_epoch * float(recipe["epochs"]) / accum))
    optimizer = torch.optim.AdamW(params, lr=float(recipe["lr"]), weight_decay=float(recipe["weight_decay"]))
    warmup = max(1, int(total_steps * float(recipe["warmup_ratio"])))

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    ckpt = out / "checkpoint"
    step, losses = 0, []
    if (ckpt / "trainer_state.json").is_file():
        state = load_checkpoint(ckpt, model, optimizer, scheduler)
        if state.get("recipe_sha256") != sha256_text(json.dumps(recipe, sort_keys=True)):
            raise ConfigError(f"checkpoint {ckpt} was made with another recipe; delete it or change --out")
        step, losses = state["step"], state.get("losses", [])
        log.info("resumed from %s at step %d", ckpt, step)
    log.info("training %d examples (%d dropped > max_length), %d trainable params, %d steps of %d on %s (%s)",
             len(encoded), dropped, n_trainable, total_steps, recipe["batch_size"], device, dtype)

    # the stream of micro-batches is a pure function of (seed, epoch): resume skips what was done
    def micro_batches():
        epoch = 0
        while True:
            for b in make_batches(len(encoded), micro, recipe["seed"], epoch, lengths, recipe["length_window"]):
                yield b
            epoch += 1

    stream = micro_batches()
    for _ in range(step * accum):
        next(stream)
    start = time.perf_counter()
    steps_timed = 0
    bar = tqdm(total=total_steps, initial=step, disable=not progress, desc="lora", unit="step")
    while step < total_steps:
        optimizer.zero_grad(set_to_none=True)
        batches = [next(stream) for _ in range(accum)]
        n_tok = sum(encoded[i].label_weight() for b in batches for i in b)
        total = 0.0
        for b in batches:
            for chunk in token_chunks([encoded[i] for i in b], int(recipe.get("max_batch_tokens") or 0),
                                      len(prefix) if prefix else 0):
                with compute_context(model, device, dtype, recipe["autocast"]):
                    loss, _ = batch_loss(model, chunk, tokenizer.pad_token_id, device, prefix)
                (loss / max(1, n_tok)).backward()
                total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(params, float(recipe["max_grad_norm"]))
        optimizer.step()
        scheduler.step()
        step += 1
        steps_timed += 1
        losses.append(round(total / max(1, n_tok), 5))
        bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        bar.update(1)
        if recipe["save_every"] and step % int(recipe["save_every"]) == 0 and step < total_steps:
            save_checkpoint(ckpt, model, optimizer, scheduler, step,
                            {"losses": losses, "recipe_sha256": sha256_text(json.dumps(recipe, sort_keys=True))})
        if stop_after is not None and step >= stop_after:
            bar.close()
            return {"steps": step, "stopped": True}
    bar.close()
    seconds = time.perf_counter() - start
    metrics = {
        "train_examples": len(encoded), "dropped_too_long": dropped, "steps": step,
        "final_loss": float(sum(losses[-10:]) / max(1, len(losses[-10:]))) if losses else None,
        "first_loss": losses[0] if losses else None, "loss_curve": losses[:: max(1, len(losses) // 50)],
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(1, steps_timed), 3), "device": device, "dtype": dtype,
        "prefix_attention": attention, "trainable_params": n_trainable,
        "device_name": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu x{torch.get_num_threads()}",
    }
    adapter_dir = out / "adapter"
    write_adapter(adapter_dir, model, recipe=recipe, ref=ref, data_info=data_info, metrics=metrics,
                  export_gguf=bool(recipe["export_gguf"]))
    if ckpt.exists():
        shutil.rmtree(ckpt)
    log.info("adapter written to %s (%s)", adapter_dir, json.dumps({k: metrics[k] for k in (
        "steps", "final_loss", "train_seconds", "seconds_per_step")}))
    return metrics


def usage(recipe: dict[str, Any] | None = None) -> str:
    """``--help`` text: how to call the script and every recipe key with its value in ``recipe``."""
    def flat(d: dict[str, Any], pre: str = "") -> list[str]:
        out = []
        for k, v in d.items():
            out.extend(flat(v, f"{pre}{k}.") if isinstance(v, dict) and v else [f"  --{pre}{k} {json.dumps(v)}"])
        return out

    head = (__doc__ or "").split("\n\n")[0]
    return "\n".join([head, "", "usage: python -m finetune.train [--recipe FILE] [--key value ...]", "",
                      "recipe keys (with the default recipe's values):", *flat(recipe or DEFAULTS)])


def main(argv: list[str] | None = None) -> int:
    from core.logging import setup_logging

    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        try:
            shown = load_recipe(DEFAULT_RECIPE)
        except ConfigError:
            shown = DEFAULTS
        print(usage(shown))
        return 0
    setup_logging()
    recipe_path: str | None = str(DEFAULT_RECIPE)
    if "--recipe" in args:
        i = args.index("--recipe")
        recipe_path = args[i + 1]
        del args[i:i + 2]
    try:
        recipe = load_recipe(recipe_path, args)
        log.info("recipe %s", json.dumps(recipe))
        log.info("OMP_WAIT_POLICY=%s (recipe: %s)", apply_omp_wait_policy(recipe["omp_wait_policy"]),
                 recipe["omp_wait_policy"])
        train(recipe)
    except (ConfigError, ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
