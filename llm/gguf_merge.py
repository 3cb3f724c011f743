"""PEFT LoRA merged into the base GGUF's weights: one GGUF that llama.cpp serves without a run-time adapter.

llama.cpp applies a LoRA adapter at run time as two extra small matmuls per adapted layer and token (they cost
the served model ~30 % of its decode speed on an earlier 2-core machine; docs/llm.md). Merging writes ``W' = W + scale * B @ A``
into a copy of the base GGUF instead:

* every adapted tensor (``blk.N.attn_q.weight`` ...) is de-quantized (``gguf.quants``), the delta added in
  GGUF row order (the q/k permutation and PEFT's per-module scale come from
  :func:`llm.gguf_adapter.lora_layers_for_gguf`, the same mapping the adapter export uses) and re-quantized to
  ``qtype``; every other tensor and every metadata key (tokenizer, chat template...) is copied byte for byte;
* ``qtype`` defaults to ``Q8_0``: a LoRA delta is small next to a 4-bit quantization step, so re-quantizing the
  merged weights to the base's Q4_1 rounds much of the adapter away (on the shipped adapter Q4_1 changed the
  tool calls; Q8_0 gave the run-time adapter's text and its scores; docs/llm.md), while Q8_0 evaluates prompts
  about twice as fast as Q4_1 + a run-time adapter on these CPUs and decodes as fast (1 thread) or faster
  (2 threads: +28 %);
* provenance keys (``mdi.merged.*``): sha256 of the PEFT weights and of the base GGUF, merger version and
  qtype, so :func:`merged_gguf_is_current` detects a stale file.

CLI: ``python -m llm.gguf_merge --peft-dir finetune/adapters/smollm2-agent [--qtype Q8_0] [--out FILE]``.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import sys
from pathlib import Path

import numpy as np

from core.errors import ArtifactError, ConfigError
from core.settings import BaseAppSettings, load_settings
from llm.gguf_adapter import PEFT_WEIGHTS_NAME, _sha256_cached, base_info_of, lora_layers_for_gguf

log = logging.getLogger(__name__)

#: Bump when the merge changes (stored in the GGUF; the factory re-merges older files).
MERGER_VERSION = 1
#: Storage types a merged tensor can be written in (gguf-py can quantize these).
MERGE_QTYPES = ("Q8_0", "F16", "F32", "Q5_1", "Q5_0", "Q4_1", "Q4_0")
DEFAULT_MERGE_QTYPE = "Q8_0"
KEY_SOURCE_SHA = "mdi.merged.adapter_sha256"
KEY_BASE_SHA = "mdi.merged.base_sha256"
KEY_MERGER = "mdi.merged.merger_version"
KEY_QTYPE = "mdi.merged.qtype"
_FILE_TYPES = {"F32": "ALL_F32", "F16": "MOSTLY_F16", "Q8_0": "MOSTLY_Q8_0", "Q5_1": "MOSTLY_Q5_1",
               "Q5_0": "MOSTLY_Q5_0", "Q4_1": "MOSTLY_Q4_1", "Q4_0": "MOSTLY_Q4_0"}


def check_qtype(qtype: str) -> str:
    """``qtype`` upper-cased when it is one of :data:`MERGE_QTYPES`; ConfigError otherwise."""
    value = str(qtype).strip().upper()
    if value not in MERGE_QTYPES:
        raise ConfigError(f"merged GGUF type must be one of {', '.join(MERGE_QTYPES)}, got {qtype!r}")
    return value


def _encode(weights: np.ndarray, qtype: str):
    """(data, raw_dtype) of float32 ``weights`` stored as ``qtype``."""
    import gguf

    kind = gguf.GGMLQuantizationType[qtype]
    if qtype == "F32":
        return np.ascontiguousarray(weights, dtype=np.float32), kind
    if qtype == "F16":
        return np.ascontiguousarray(weights, dtype=np.float16), kind
    block = gguf.GGML_QUANT_SIZES[kind][0]
    if weights.shape[-1] % block:
        raise ConfigError(f"cannot store a tensor of {weights.shape[-1]} columns as {qtype} (blocks of {block}): "
                          "store it as F16 (MDI_LLM_MERGE_QTYPE / --qtype)")
    return gguf.quants.quantize(weights, kind), kind


def merge_lora_into_gguf(peft_adapter_dir: str | Path, base_gguf_path: str | Path, out_path: str | Path, *,
                         qtype: str = DEFAULT_MERGE_QTYPE) -> Path:
    """Write ``out_path`` (atomically): the base GGUF with the PEFT LoRA merged into its weights, the merged
    tensors stored as ``qtype``. Raises what :func:`lora_layers_for_gguf` raises (unsupported or mismatched
    adapters) and ConfigError for an unknown ``qtype``."""
    import gguf

    qtype = check_qtype(qtype)
    folder, base_path = Path(peft_adapter_dir), Path(base_gguf_path)
    try:
        reader = gguf.GGUFReader(str(base_path))  # parsing the header (tokenizer arrays) takes seconds: once
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad artifact
        raise ArtifactError(f"cannot read base GGUF {base_path}: {exc}", path=str(base_path)) from exc
    base = base_info_of(reader)
    _, layers = lora_layers_for_gguf(folder, base_path, base=base)
    deltas = {layer.name: layer for layer in layers}

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    writer = gguf.GGUFWriter(str(tmp), arch=base.arch)
    try:
        # provenance first, right after the architecture: merged_gguf_info reads only the start of the file
        writer.add_string(KEY_SOURCE_SHA, _sha256_cached(str((folder / PEFT_WEIGHTS_NAME).resolve())))
        writer.add_string(KEY_BASE_SHA, _sha256_cached(str(base_path.resolve())))
        writer.add_uint32(KEY_MERGER, MERGER_VERSION)
        writer.add_string(KEY_QTYPE, qtype)
        for key, field in reader.fields.items():
            if key.startswith("GGUF.") or key == gguf.Keys.General.ARCHITECTURE:
                continue  # written by the writer itself
            if key == gguf.Keys.General.FILE_TYPE:
                writer.add_uint32(key, int(gguf.LlamaFileType[_FILE_TYPES[qtype]]))
                continue
            if key == gguf.Keys.General.ALIGNMENT:  # the writer must pad tensor data the same way
                writer.add_custom_alignment(int(field.contents()))
                continue
            sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), field.types[0], sub)
        for tensor in reader.tensors:
            layer = deltas.pop(tensor.name, None)
            if layer is None:
                writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
                continue
            weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
            data, kind = _encode(weights + layer.delta(), qtype)
            writer.add_tensor(tensor.name, data, raw_dtype=kind)
        if deltas:  # mapped by lora_layers_for_gguf from the header, so only a corrupt file gets here
            raise ArtifactError(f"base GGUF {base_path} lacks tensors {sorted(deltas)}", path=str(base_path))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=False)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp, out)
    log.info("merged %d LoRA layers of %s into %s (%s)", len(layers), folder, out, qtype)
    return out


def merged_gguf_info(path: str | Path) -> dict[str, object]:
    """The merged GGUF's provenance (``source_sha256``, ``base_sha256``, ``merger_version``, ``qtype``), its
    ``architecture`` and ``n_tensors``, read from the start of the file (milliseconds, not the seconds a full
    ``gguf.GGUFReader`` parse of the tokenizer takes). Missing keys are None."""
    keys = {"general.architecture": "architecture", KEY_SOURCE_SHA: "source_sha256", KEY_BASE_SHA: "base_sha256",
            KEY_MERGER: "merger_version", KEY_QTYPE: "qtype"}
    try:
        n_tensors, found = _read_kv(Path(path), set(keys))
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot read merged GGUF {path}: {exc}", path=str(path)) from exc
    return {**{name: found.get(key) for key, name in keys.items()}, "n_tensors": n_tensors}


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _read_kv(path: Path, wanted: set[str]) -> tuple[int, dict[str, object]]:
    """(tensor count, the ``wanted`` scalar/string keys) of a little-endian GGUF v2+ file, reading key/value
    pairs from the start only until every wanted key is found."""
    with path.open("rb") as f:
        def take(fmt: str):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            return f.read(take("<Q")).decode("utf-8")

        def skip(kind: int) -> None:
            if kind == _STRING:
                f.seek(take("<Q"), os.SEEK_CUR)
            elif kind == _ARRAY:
                sub, count = take("<I"), take("<Q")
                if sub in _SCALARS:
                    f.seek(count * struct.calcsize(_SCALARS[sub]), os.SEEK_CUR)
                else:
                    for _ in range(count):
                        skip(sub)
            elif kind in _SCALARS:
                f.seek(struct.calcsize(_SCALARS[kind]), os.SEEK_CUR)
            else:
                raise ValueError(f"unknown GGUF value type {kind}")

        if f.read(4) != b"GGUF":
            raise ValueError("not a GGUF file")
        if take("<I") < 2:
            raise ValueError("GGUF version 1 is not supported")
        n_tensors, n_kv = take("<Q"), take("<Q")
        found: dict[str, object] = {}
        for _ in range(n_kv):
            if wanted <= found.keys():
                break
            key, kind = string(), take("<I")
            if key in wanted and kind == _STRING:
                found[key] = string()
            elif key in wanted and kind in _SCALARS:
                found[key] = take(_SCALARS[kind])
            else:
                skip(kind)
        return n_tensors, found


def merged_gguf_is_current(peft_adapter_dir: str | Path, base_gguf_path: str | Path, path: str | Path,
                           qtype: str = DEFAULT_MERGE_QTYPE) -> bool:
    """True when ``path`` was merged by this merger version from these PEFT weights into this base, as ``qtype``."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        info = merged_gguf_info(path)
    except ArtifactError:  # truncated / not a GGUF: stale
        return False
    return (info["merger_version"] == MERGER_VERSION and info["qtype"] == check_qtype(qtype)
            and info["source_sha256"] == _sha256_cached(str((Path(peft_adapter_dir) / PEFT_WEIGHTS_NAME).resolve()))
            and info["base_sha256"] == _sha256_cached(str(Path(base_gguf_path).resolve())))


class MergeSettings(BaseAppSettings):
    """``python -m llm.gguf_merge --peft-dir DIR [--base FILE.gguf] [--out FILE] [--qtype Q8_0]``."""

    peft_dir: Path
    base: Path | None = None  # default: the bundled SmolLM2 GGUF
    out: Path | None = None  # default: <peft_dir>/merged-<qtype>.gguf
    qtype: str = DEFAULT_MERGE_QTYPE


def main(argv: list[str] | None = None) -> int:
    from core.cli import run_cli
    from llm.settings import bundled_gguf_path

    def body() -> None:
        settings = load_settings(MergeSettings, sys.argv[1:] if argv is None else argv, prog="llm.gguf_merge")
        qtype = check_qtype(settings.qtype)
        out = settings.out or settings.peft_dir / f"merged-{qtype.lower()}.gguf"
        out = merge_lora_into_gguf(settings.peft_dir, settings.base or bundled_gguf_path(), out, qtype=qtype)
        print(json.dumps({"out": str(out), **merged_gguf_info(out)}, indent=2, default=str))

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
