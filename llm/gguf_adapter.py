"""PEFT LoRA adapter -> llama.cpp LoRA adapter in GGUF, so a tuned adapter reaches the llama.cpp backend.

The PEFT adapter is trained on the float model that transformers de-quantizes from the base GGUF. llama.cpp
applies a GGUF LoRA adapter at run time on top of the (quantized) base weights as
``y = W x + scale * B (A x)`` with ``scale = adapter.lora.alpha / rank``. This module writes exactly that:

* ``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``, ``general.architecture`` of the
  base (llama.cpp refuses an adapter of another architecture);
* one pair of tensors per adapted linear layer, named after the base GGUF tensor:
  ``blk.N.attn_q.weight.lora_a`` (shape ``[r, in]``, PEFT's ``lora_A``) and ``...lora_b`` (``[out, r]``);
* **q/k row permutation**: llama.cpp's converter permutes the output rows of ``q_proj``/``k_proj`` (rotary
  layout: interleaved pairs instead of two halves) and transformers un-permutes them when it loads a GGUF. A
  LoRA delta ``B @ A`` on those layers is in transformers' row order, so ``B``'s rows get the same permutation
  (``A`` is untouched: it acts on the input side). All seven llama linear layers are supported
  (q, k, v, o, gate, up, down); embeddings / lm_head / DoRA / ``modules_to_save`` are refused.
* PEFT's per-module scaling (``lora_alpha / r``, ``/ sqrt(r)`` with rsLoRA, ``rank_pattern`` /
  ``alpha_pattern``) is folded into ``B`` where it differs from llama.cpp's single ``alpha / r``, so every
  layer gets exactly PEFT's scale.

Provenance keys (``mdi.adapter.*``) record the sha256 of the PEFT weights and of the base GGUF, so a stale
export is detected (:func:`gguf_adapter_info`). ``tests/test_llm_gguf_adapter.py`` proves equivalence
(PEFT on transformers vs the exported adapter in llama.cpp: same greedy tokens, close logits).

CLI: ``python -m llm.gguf_adapter --peft-dir finetune/adapters/smollm2-agent`` (writes ``adapter.gguf`` there).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.errors import ArtifactError, ConfigError
from core.hashing import sha256_file
from core.settings import BaseAppSettings, load_settings

log = logging.getLogger(__name__)

#: Bump when the export format changes (stored in the GGUF; the factory re-exports older files).
EXPORTER_VERSION = 1
ADAPTER_GGUF_NAME = "adapter.gguf"
PEFT_CONFIG_NAME = "adapter_config.json"
PEFT_WEIGHTS_NAME = "adapter_model.safetensors"
KEY_SOURCE_SHA = "mdi.adapter.source_sha256"
KEY_BASE_SHA = "mdi.adapter.base_sha256"
KEY_EXPORTER = "mdi.adapter.exporter_version"

#: Linear layers of the llama architecture a LoRA may target (PEFT / transformers module names).
SUPPORTED_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SUPPORTED_ARCHS = ("llama",)
_LORA_KEY_RE = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[\w-]+)?\.weight$")


@dataclass(frozen=True)
class BaseGGUFInfo:
    arch: str
    n_head: int
    n_head_kv: int
    n_layers: int
    tensor_shapes: dict[str, tuple[int, ...]]  # numpy order: (rows=out, cols=in)


def read_base_info(base_gguf_path: str | Path) -> BaseGGUFInfo:
    """Architecture, head counts and tensor shapes of a base model GGUF (header only; memoized per file)."""
    path = Path(base_gguf_path)
    if not path.is_file():
        raise ArtifactError(f"base model GGUF not found: {path}", path=str(path))
    st = path.stat()
    return _read_base_info(str(path.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _read_base_info(path_str: str, _mtime_ns: int, _size: int) -> BaseGGUFInfo:
    import gguf

    path = Path(path_str)
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad artifact
        raise ArtifactError(f"cannot read base GGUF {path}: {exc}", path=str(path)) from exc
    return base_info_of(reader)


def base_info_of(reader) -> BaseGGUFInfo:
    """:class:`BaseGGUFInfo` of an open ``gguf.GGUFReader`` (ConfigError for an unsupported architecture)."""

    def field(key: str):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    arch = field("general.architecture")
    if arch not in SUPPORTED_ARCHS:
        raise ConfigError(f"LoRA export supports architectures {SUPPORTED_ARCHS}, the base GGUF is {arch!r}")
    n_head = int(field(f"{arch}.attention.head_count"))
    n_head_kv = int(field(f"{arch}.attention.head_count_kv") or n_head)
    n_layers = int(field(f"{arch}.block_count"))
    # GGUFReader shapes are ggml order (ne0 = in_features first); flip to numpy/torch order.
    shapes = {t.name: tuple(int(d) for d in reversed(list(t.shape))) for t in reader.tensors}
    return BaseGGUFInfo(arch=arch, n_head=n_head, n_head_kv=n_head_kv, n_layers=n_layers, tensor_shapes=shapes)


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row permutation (transformers' rotate-half layout -> interleaved pairs), on axis 0."""
    rows = weights.shape[0]
    if rows % (2 * n_head):
        raise ArtifactError(f"cannot permute {rows} rows over {n_head} heads")
    return (weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def _module_scale(config: dict, module: str, rank: int) -> float:
    """PEFT's scaling factor for ``module`` (honours rank_pattern / alpha_pattern / use_rslora)."""
    alpha = float(config.get("lora_alpha", 8))
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.search(rf"(^|\.){re.escape(pattern)}$", module) or re.fullmatch(pattern, module):
            alpha = float(value)
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def _check_config(config: dict) -> None:
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise ConfigError(f"only LoRA adapters can be exported, this one is {config.get('peft_type')!r}")
    if config.get("use_dora"):
        raise ConfigError("DoRA adapters cannot be applied by llama.cpp: train with use_dora=False")
    if config.get("modules_to_save"):
        raise ConfigError(f"modules_to_save={config['modules_to_save']} (full tensors) cannot be exported to a "
                          "llama.cpp LoRA adapter: train without them")
    if config.get("bias", "none") != "none":
        raise ConfigError("LoRA bias training cannot be exported: use bias='none'")
    if config.get("fan_in_fan_out"):
        raise ConfigError("fan_in_fan_out adapters (Conv1D models) are not supported")


def load_peft_adapter(peft_adapter_dir: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The adapter's ``adapter_config.json`` and its tensors (float32 numpy) from a PEFT folder."""
    from safetensors.numpy import load_file

    folder = Path(peft_adapter_dir)
    cfg_path, weights_path = folder / PEFT_CONFIG_NAME, folder / PEFT_WEIGHTS_NAME
    for p in (cfg_path, weights_path):
        if not p.is_file():
            raise ArtifactError(f"PEFT adapter file missing: {p}", path=str(p))
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{cfg_path} is not valid JSON: {exc}", path=str(cfg_path)) from exc
    try:
        tensors = load_file(str(weights_path))
    except Exception as exc:  # noqa: BLE001
        raise ArtifactError(f"cannot read {weights_path}: {exc}", path=str(weights_path)) from exc
    # bf16 is stored as a numpy-unsupported dtype by some writers; safetensors.numpy gives float16/32 here
    return config, {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}


@dataclass(frozen=True)
class GGUFLoraLayer:
    """One adapted linear layer in llama.cpp's terms: ``W' = W + scale * b @ a`` on base tensor ``name``
    (``scale = alpha / rank``; PEFT's own per-module scale already folded into ``b``, q/k rows permuted)."""

    name: str  # base GGUF tensor, e.g. blk.3.attn_q.weight
    a: np.ndarray  # [rank, in]
    b: np.ndarray  # [out, rank]
    scale: float

    def delta(self) -> np.ndarray:
        """The layer's weight change ``scale * b @ a`` ([out, in], float32, GGUF row order)."""
        return (self.scale * (self.b @ self.a)).astype(np.float32)


def lora_layers_for_gguf(peft_adapter_dir: str | Path, base_gguf_path: str | Path, *, permute_qk: bool = True,
                         base: BaseGGUFInfo | None = None) -> tuple[float, list[GGUFLoraLayer]]:
    """The PEFT adapter's LoRA layers mapped onto the base GGUF's tensors: ``(alpha, layers)``. ``base``: the
    base GGUF's info when the caller has read it already (parsing a GGUF's header takes seconds).

    Raises ConfigError for unsupported adapters (DoRA, embeddings, ...) and ArtifactError for missing or
    mismatched files (a tensor whose shape does not fit the base GGUF).
    """
    import gguf

    folder = Path(peft_adapter_dir)
    config, tensors = load_peft_adapter(folder)
    _check_config(config)
    base = base or read_base_info(base_gguf_path)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, base.n_layers)

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        m = _LORA_KEY_RE.match(key)
        if not m:
            raise ConfigError(f"unexpected tensor {key!r} in the PEFT adapter (only lora_A/lora_B are exportable)")
        module = m.group("module")
        for prefix in ("base_model.model.", "base_model."):
            if module.startswith(prefix):
                module = module[len(prefix):]
                break
        pairs.setdefault(module, {})[m.group("ab")] = value

    alpha = float(config.get("lora_alpha", 8))
    layers: list[GGUFLoraLayer] = []
    for module in sorted(pairs):
        pair = pairs[module]
        if set(pair) != {"A", "B"}:
            raise ArtifactError(f"LoRA module {module} lacks its lora_{'A' if 'A' not in pair else 'B'} tensor")
        leaf = module.rsplit(".", 1)[-1]
        if leaf not in SUPPORTED_TARGETS:
            raise ConfigError(f"LoRA on {module!r} cannot be exported: supported target modules are "
                              f"{', '.join(SUPPORTED_TARGETS)}")
        gguf_name = name_map.get_name(module + ".weight", try_suffixes=(".weight",))
        if gguf_name is None or gguf_name not in base.tensor_shapes:
            raise ArtifactError(f"LoRA module {module!r} has no tensor in the base GGUF (mapped to {gguf_name!r})")
        a, b = pair["A"], pair["B"]
        rank = a.shape[0]
        out_f, in_f = base.tensor_shapes[gguf_name]
        if a.shape != (rank, in_f) or b.shape != (out_f, rank):
            raise ArtifactError(
                f"LoRA {module}: A{a.shape} B{b.shape} do not fit base tensor {gguf_name} (out={out_f}, in={in_f}); "
                "was the adapter trained on another base model?")
        # fold PEFT's scale into B where llama.cpp's alpha/rank differs from it
        factor = _module_scale(config, module, rank) / (alpha / rank)
        if not math.isclose(factor, 1.0):
            b = b * factor
        if permute_qk and leaf == "q_proj":
            b = permute_rows(b, base.n_head)
        elif permute_qk and leaf == "k_proj":
            b = permute_rows(b, base.n_head_kv)
        layers.append(GGUFLoraLayer(name=gguf_name, a=a, b=b, scale=alpha / rank))
    if not layers:
        raise ArtifactError(f"PEFT adapter at {folder} holds no LoRA tensors")
    return alpha, layers


def export_lora_to_gguf(peft_adapter_dir: str | Path, base_gguf_path: str | Path, out_path: str | Path, *,
                        permute_qk: bool = True, dtype: str = "float32") -> Path:
    """Convert a PEFT LoRA adapter into a llama.cpp GGUF LoRA adapter at ``out_path`` (written atomically).

    ``dtype`` ("float32" or "float16") is the storage type of the LoRA tensors in the GGUF.

    ``permute_qk=False`` skips the q/k row permutation (only to demonstrate in tests that it is needed).
    Raises ConfigError for unsupported adapters (DoRA, embeddings, ...) and ArtifactError for missing or
    mismatched files (a tensor whose shape does not fit the base GGUF).
    """
    import gguf

    if dtype not in ("float32", "float16"):
        raise ConfigError(f"GGUF adapter dtype must be float32 or float16, got {dtype!r}")
    np_dtype = np.float16 if dtype == "float16" else np.float32
    folder = Path(peft_adapter_dir)
    base = read_base_info(base_gguf_path)
    alpha, layers = lora_layers_for_gguf(folder, base_gguf_path, permute_qk=permute_qk, base=base)
    out_tensors: list[tuple[str, np.ndarray]] = []
    for layer in layers:
        out_tensors.append((layer.name + ".lora_a", np.ascontiguousarray(layer.a, dtype=np_dtype)))
        out_tensors.append((layer.name + ".lora_b", np.ascontiguousarray(layer.b, dtype=np_dtype)))

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    writer = gguf.GGUFWriter(str(tmp), arch=base.arch)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_string(KEY_SOURCE_SHA, sha256_file(folder / PEFT_WEIGHTS_NAME))
        writer.add_string(KEY_BASE_SHA, _sha256_cached(str(Path(base_gguf_path).resolve())))
        writer.add_uint32(KEY_EXPORTER, EXPORTER_VERSION)
        for name, data in out_tensors:
            writer.add_tensor(name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(tmp, out)
    log.info("exported %d LoRA tensor pairs from %s to %s", len(out_tensors) // 2, folder, out)
    return out


def gguf_adapter_info(path: str | Path) -> dict[str, object]:
    """The adapter GGUF's type keys and provenance (``source_sha256``, ``base_sha256``, ``exporter_version``)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ArtifactError(f"cannot read adapter GGUF {path}: {exc}", path=str(path)) from exc

    def field(key: str):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    return {
        "type": field("general.type"),
        "adapter_type": field(gguf.Keys.Adapter.TYPE),
        "alpha": field(gguf.Keys.Adapter.LORA_ALPHA),
        "architecture": field("general.architecture"),
        "source_sha256": field(KEY_SOURCE_SHA),
        "base_sha256": field(KEY_BASE_SHA),
        "exporter_version": field(KEY_EXPORTER),
        "n_tensors": len(reader.tensors),
    }


def gguf_adapter_is_current(peft_adapter_dir: str | Path, base_gguf_path: str | Path,
                            gguf_path: str | Path | None = None) -> bool:
    """True when ``adapter.gguf`` exists and was exported by this exporter version from these PEFT weights
    for this base GGUF."""
    folder = Path(peft_adapter_dir)
    path = Path(gguf_path) if gguf_path else folder / ADAPTER_GGUF_NAME
    if not path.is_file():
        return False
    try:
        info = gguf_adapter_info(path)
    except ArtifactError:  # truncated / not a GGUF: treat as stale
        return False
    return (info["exporter_version"] == EXPORTER_VERSION
            and info["source_sha256"] == sha256_file(folder / PEFT_WEIGHTS_NAME)
            and info["base_sha256"] == _sha256_cached(str(Path(base_gguf_path).resolve())))


@lru_cache(maxsize=16)
def _sha256_cached_key(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


def _sha256_cached(path: str) -> str:
    st = os.stat(path)
    return _sha256_cached_key(path, st.st_mtime_ns, st.st_size)


class ExportSettings(BaseAppSettings):
    """``python -m llm.gguf_adapter --peft-dir DIR [--base FILE.gguf] [--out FILE]``."""

    peft_dir: Path
    base: Path | None = None  # default: the bundled SmolLM2 GGUF
    out: Path | None = None  # default: <peft_dir>/adapter.gguf


def main(argv: list[str] | None = None) -> int:
    from core.cli import run_cli
    from llm.settings import bundled_gguf_path

    def body() -> None:
        settings = load_settings(ExportSettings, sys.argv[1:] if argv is None else argv, prog="llm.gguf_adapter")
        base = settings.base or bundled_gguf_path()
        out = export_lora_to_gguf(settings.peft_dir, base, settings.out or settings.peft_dir / ADAPTER_GGUF_NAME)
        print(json.dumps({"out": str(out), **gguf_adapter_info(out)}, indent=2, default=str))

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
