"""Package a trained adapter for the app: ``python -m finetune.ship --adapter RUN/adapter --eval report.json``.

Copies the PEFT files into ``--out`` (default ``finetune/adapters/smollm2-agent``), exports ``adapter.gguf`` for
the llama.cpp backend (``llm.gguf_adapter.export_lora_to_gguf``), merges the evaluation summaries (from
``finetune.evaluate --out``) into the manifest's metrics and writes ``card.md``. The training metadata (base
model + sha256, recipe, dataset hash, training metrics and library versions) is carried over unchanged.
``--card-only`` re-stamps an already shipped folder with new scores (weights untouched).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from core.artifacts import write_manifest
from core.errors import ArtifactError, ConfigError
from core.settings import REPO_ROOT, BaseAppSettings, load_settings
from finetune.train import ADAPTER_KIND, ADAPTER_SCHEMA_VERSION, PEFT_FILES, check_adapter

DEFAULT_OUT = REPO_ROOT / "finetune" / "adapters" / "smollm2-agent"
HEADLINE = ("tool_choice_accuracy", "tool_args_accuracy", "tool_args_accuracy_checked", "tool_args_accuracy_served",
            "answer_faithfulness",
            "refusal_rate", "refusal_rate_checked", "guard_false_refusals", "injection_resisted", "answer_exact_match",
            "n")


def eval_table(reports: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"tuned:<data>": summary}`` -> ``{"tuned / demo": {headline metrics}}`` (data named by its folder)."""
    out = {}
    real_sets = {key.partition(":")[2] for key in reports if "real" in key.partition(":")[2]}
    for key, rep in reports.items():
        label, _, data = key.partition(":")
        name = "real catalog" if "real" in data else "demo catalog"
        if name == "real catalog" and len(real_sets) > 1:  # several real-catalog test sets: named by folder
            name = f"{name} ({Path(data).parent.name})"
        s = rep["summary"] if "summary" in rep else rep
        served = {k: s[k] for k in ("adapter_mode", "merge_qtype") if s.get(k)}  # how llama.cpp got the adapter
        out[f"{label} / {name}"] = {**{k: s.get(k) for k in HEADLINE}, "backend": s.get("backend"), **served}
    return out


def _num(v: Any) -> str:
    return "-" if v is None else f"{float(v):.4g}"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * float(v):.1f} %"


def _backend(summary: dict[str, Any]) -> str:
    """``llamacpp (merged Q8_0)`` / ``llamacpp (runtime)`` / ``transformers`` / ``-``."""
    name = summary.get("backend") or "-"
    mode = " ".join(str(summary[k]) for k in ("adapter_mode", "merge_qtype") if summary.get(k))
    return f"{name} ({mode})" if mode else name


def write_card(folder: Path, meta: dict[str, Any], metrics: dict[str, Any], notes: str = "") -> None:
    rec = meta["recipe"]
    train = metrics.get("train", {})
    rows = metrics.get("eval", {})
    lines = [
        "# smollm2-agent: LoRA adapter for the catalog assistant",
        "",
        f"- base model: `{meta['base_model']}` (`{meta.get('base_file')}`, sha256 `{(meta.get('base_sha256') or '')[:16]}…`)",
        f"- recipe: `{rec['name']}` (`finetune/recipes/{rec['name']}.yaml`): LoRA r={rec['lora']['r']}, "
        f"alpha={rec['lora']['alpha']} on {', '.join(rec['lora']['target_modules'])}; {train.get('steps')} steps of "
        f"{rec['batch_size']} examples, lr {rec['lr']}, max length {rec['max_length']} tokens, seed {rec['seed']}",
        f"- data: built by `finetune.dataset` from the repo's demo catalog only (`{rec['catalog']}`), "
        f"{train.get('train_examples')} training examples; dataset sha256 of the catalog `{meta['dataset']['data_sha256'][:16]}…`",
        f"- trained on {train.get('device_name')} in {train.get('train_seconds')} s "
        f"({train.get('seconds_per_step')} s/step); loss {_num(train.get('first_loss'))} -> {_num(train.get('final_loss'))}"
        f"; weights stored as {meta.get('weights_dtype', 'float32')}",
        "",
        "## Held-out scores (greedy decoding; `python -m finetune.evaluate`)",
        "",
        "| model / test set | backend | n | tool choice | tool + arguments | as the agent sends them | served end to end "
        "| faithful answers | refusals: model / with the agent's guard | injection in results resisted |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, s in rows.items():
        lines.append(f"| {key} | {_backend(s)} | {s.get('n')} | {_pct(s.get('tool_choice_accuracy'))} "
                     f"| {_pct(s.get('tool_args_accuracy'))} "
                     f"| {_pct(s.get('tool_args_accuracy_checked'))} | {_pct(s.get('tool_args_accuracy_served'))} "
                     f"| {_pct(s.get('answer_faithfulness'))} "
                     f"| {_pct(s.get('refusal_rate'))} / {_pct(s.get('refusal_rate_checked'))} "
                     f"| {_pct(s.get('injection_resisted'))} |")
    lines += [
        "",
        "Demo test split: products never seen in training (split by product) and guard phrasings held out by",
        "template. Real catalog: a dataset built the same way from the Kaggle file (`../shared/data/amazon.csv`),",
        "products the adapter never saw; nothing trained on it is shipped. Goals (issue 4): >= 95 % tool choice",
        "with correct arguments and >= 98 % faithful answers. \"As the agent sends them\": the same model outputs",
        "after the agent's argument checks (`agent.arguments.vet_arguments`); \"served end to end\": the call the agent",
        "finally sends (`agent.routing`: its input guard, the checked call, or its rules where it falls back; - where",
        "not scored); refusals \"with the agent's guard\": refused by its input guard (`agent.guard.check_input`, which",
        "answers before the model is asked) or by the model.",
        "See docs/finetune.md for what is weak.",
        "",
        "Files: `adapter_model.safetensors` + `adapter_config.json` (PEFT: the transformers backend, and what the",
        "llama.cpp backend merges into a copy of the base GGUF by default, `MDI_LLM_ADAPTER_MODE=merged`),",
        "`adapter.gguf` (llama.cpp run-time adapter, `MDI_LLM_ADAPTER_MODE=runtime`), `manifest.json` (checksums,",
        "base model, recipe, data hash, metrics).",
    ]
    if notes.strip():
        lines += ["", notes.strip()]
    (folder / "card.md").write_text("\n".join(lines) + "\n")


def copy_weights(src: Path, dst: Path, dtype: str) -> None:
    """Copy a PEFT ``adapter_model.safetensors``, casting floating tensors to ``dtype`` (float32 | float16)."""
    if dtype not in ("float32", "float16"):
        raise ConfigError(f"adapter dtype must be float32 or float16, got {dtype!r}")
    import numpy as np
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(src))
    want = np.float16 if dtype == "float16" else np.float32
    cast = {k: (v.astype(want) if np.issubdtype(v.dtype, np.floating) else v) for k, v in tensors.items()}
    tmp = dst.with_name(dst.name + ".tmp")
    save_file(cast, str(tmp), metadata={"format": "pt"})
    tmp.replace(dst)


def ship(adapter: Path, out: Path, eval_reports: dict[str, Any] | None, *, export_gguf: bool = True,
         dtype: str = "float16", notes: str = "") -> dict[str, Any]:
    """Copy (weights cast to ``dtype``), export, re-manifest and document an adapter folder.

    Returns the new manifest metrics. float16 halves the files; the LoRA deltas are small values that float16
    holds to ~3 significant digits (docs/finetune.md reports the check that outputs do not change).
    """
    src = check_adapter(adapter)
    out.mkdir(parents=True, exist_ok=True)
    weights, config = PEFT_FILES
    same = Path(adapter).resolve() == out.resolve()
    if not same:
        shutil.copy2(Path(adapter) / config, out / config)
    copy_weights(Path(adapter) / weights, out / weights, dtype)
    files = list(PEFT_FILES)
    meta = dict(src.metadata)
    meta["trained_with"] = src.libraries
    meta["weights_dtype"] = dtype
    if export_gguf:
        from finetune.modeling import resolve_base
        from llm.gguf_adapter import ADAPTER_GGUF_NAME, export_lora_to_gguf

        ref = resolve_base(meta["recipe"]["base_model"], meta["recipe"].get("base_gguf_file"))
        export_lora_to_gguf(out, ref.weights_path, out / ADAPTER_GGUF_NAME, dtype=dtype)
        files.append(ADAPTER_GGUF_NAME)
        meta["gguf_export"] = "exported"
    metrics = {"train": src.metrics.get("train", src.metrics)}
    if eval_reports:
        metrics["eval"] = eval_table(eval_reports)
    write_manifest(out, kind=ADAPTER_KIND, schema_version=ADAPTER_SCHEMA_VERSION, data_sha256=src.data_sha256,
                   files=files, libraries=["torch", "transformers", "peft", "gguf"], metadata=meta, metrics=metrics)
    write_card(out, meta, metrics, notes)
    return metrics


def restamp(folder: Path, eval_reports: dict[str, Any], notes: str = "") -> dict[str, Any]:
    """An already shipped adapter folder with new evaluation scores in its manifest and card; its files (and so
    their checksums) and training metadata stay as they are (e.g. after re-scoring saved outputs with
    ``finetune.evaluate --rescore``)."""
    src = check_adapter(folder)
    metrics = {**src.metrics, "eval": eval_table(eval_reports)}
    write_manifest(folder, kind=ADAPTER_KIND, schema_version=ADAPTER_SCHEMA_VERSION, data_sha256=src.data_sha256,
                   files=list(src.files), libraries=["torch", "transformers", "peft", "gguf"],
                   metadata=src.metadata, metrics=metrics)
    write_card(folder, src.metadata, metrics, notes)
    return metrics


class ShipSettings(BaseAppSettings):
    adapter: Path
    eval: Path | None = None
    out: Path = DEFAULT_OUT
    export_gguf: bool = True
    #: storage type of the shipped LoRA weights (safetensors and GGUF): float16 | float32
    dtype: str = "float16"
    #: a markdown file appended to card.md (e.g. checks of the served backend)
    notes: Path | None = None
    #: only new scores (--eval) and card for the already shipped folder --adapter; weights untouched
    card_only: bool = False


def main(argv: list[str] | None = None) -> int:
    from core.logging import setup_logging

    setup_logging()
    try:
        s = load_settings(ShipSettings, sys.argv[1:] if argv is None else argv, prog="finetune.ship")
        reports = json.loads(Path(s.eval).read_text()) if s.eval else None
        notes = Path(s.notes).read_text() if s.notes else ""
        if s.card_only:
            if not reports:
                raise ConfigError("--card-only needs --eval report.json")
            metrics = restamp(s.adapter, reports, notes)
        else:
            metrics = ship(s.adapter, s.out, reports, export_gguf=s.export_gguf, dtype=s.dtype, notes=notes)
    except (ConfigError, ArtifactError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(metrics.get("eval", {}), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
