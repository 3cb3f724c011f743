"""PEFT LoRA -> llama.cpp: the GGUF adapter and the merged GGUF. File formats (fast, synthetic tensors on the
real base GGUF) and (slow) equivalence: a random LoRA applied by PEFT on the transformers model vs the exported
adapter / the merged model in llama.cpp give the same logits (up to the base quantization noise) and the same
greedy tokens."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.artifacts import write_manifest
from core.errors import ArtifactError, ConfigError
from llm import factory
from llm.gguf_adapter import (export_lora_to_gguf, gguf_adapter_info, gguf_adapter_is_current, permute_rows,
                              read_base_info)
from llm.gguf_merge import merge_lora_into_gguf, merged_gguf_info, merged_gguf_is_current
from llm.settings import LLMSettings, bundled_gguf_path

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def base_gguf() -> Path:
    return bundled_gguf_path()


def _write_peft(folder: Path, tensors: dict[str, np.ndarray], **config) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"], "bias": "none",
           **config}
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def _synthetic(rank: int = 2, layers=(0, 29), modules=("q_proj", "k_proj", "v_proj")) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out_dims = {"q_proj": 576, "k_proj": 192, "v_proj": 192}
    tensors = {}
    for layer in layers:
        for mod in modules:
            key = f"base_model.model.model.layers.{layer}.self_attn.{mod}"
            tensors[f"{key}.lora_A.weight"] = rng.normal(size=(rank, 576)).astype(np.float32)
            tensors[f"{key}.lora_B.weight"] = rng.normal(size=(out_dims[mod], rank)).astype(np.float32)
    return tensors


def _read(path: Path) -> dict[str, np.ndarray]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    return {t.name: np.array(t.data).reshape(tuple(reversed([int(d) for d in t.shape]))) for t in reader.tensors}


def test_base_info_of_bundled_gguf(base_gguf):
    info = read_base_info(base_gguf)
    assert (info.arch, info.n_head, info.n_head_kv, info.n_layers) == ("llama", 9, 3, 30)
    assert info.tensor_shapes["blk.0.attn_k.weight"] == (192, 576)


def test_permute_rows_is_llamacpp_rotary_layout():
    w = np.arange(8)[:, None]  # one head of dim 8: halves (0..3 | 4..7) -> interleaved pairs
    assert permute_rows(w, 1)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_export_format_names_shapes_permutation_and_scale(tmp_path, base_gguf):
    tensors = _synthetic()
    peft = _write_peft(tmp_path / "peft", tensors, r=2, lora_alpha=4, rank_pattern={"v_proj": 2},
                       alpha_pattern={"v_proj": 8})
    out = export_lora_to_gguf(peft, base_gguf, tmp_path / "a.gguf")
    info = gguf_adapter_info(out)
    assert (info["type"], info["adapter_type"], info["alpha"]) == ("adapter", "lora", 4.0)
    assert info["architecture"] == "llama"
    assert info["n_tensors"] == 12 and info["exporter_version"] == 1
    got = _read(out)
    pre = "base_model.model.model.layers.29.self_attn"
    np.testing.assert_array_equal(got["blk.29.attn_q.weight.lora_a"], tensors[f"{pre}.q_proj.lora_A.weight"])
    np.testing.assert_array_equal(got["blk.29.attn_q.weight.lora_b"],
                                  permute_rows(tensors[f"{pre}.q_proj.lora_B.weight"], 9))
    np.testing.assert_array_equal(got["blk.29.attn_k.weight.lora_b"],
                                  permute_rows(tensors[f"{pre}.k_proj.lora_B.weight"], 3))
    # v_proj: alpha_pattern 8 vs global alpha 4 at the same rank -> B doubled, not permuted
    np.testing.assert_allclose(got["blk.29.attn_v.weight.lora_b"], 2 * tensors[f"{pre}.v_proj.lora_B.weight"])
    assert gguf_adapter_is_current(peft, base_gguf, out)


def test_float16_export(tmp_path, base_gguf):
    tensors = _synthetic(layers=(3,), modules=("v_proj",))
    peft = _write_peft(tmp_path / "peft", tensors)
    got = _read(export_lora_to_gguf(peft, base_gguf, tmp_path / "a16.gguf", dtype="float16"))
    a = got["blk.3.attn_v.weight.lora_a"]
    assert a.dtype == np.float16
    np.testing.assert_allclose(a.astype(np.float32), tensors["base_model.model.model.layers.3.self_attn.v_proj.lora_A.weight"],
                               rtol=1e-3, atol=1e-3)
    with pytest.raises(ConfigError, match="dtype"):
        export_lora_to_gguf(peft, base_gguf, tmp_path / "x.gguf", dtype="int8")


def test_rslora_scale_folded(tmp_path, base_gguf):
    tensors = _synthetic(rank=4, layers=(0,), modules=("v_proj",))
    peft = _write_peft(tmp_path / "peft", tensors, r=4, lora_alpha=8, use_rslora=True)
    got = _read(export_lora_to_gguf(peft, base_gguf, tmp_path / "a.gguf"))
    # PEFT scale 8/sqrt(4)=4, llama.cpp scale 8/4=2 -> B x2
    np.testing.assert_allclose(got["blk.0.attn_v.weight.lora_b"],
                               2 * tensors["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"])


def test_export_refuses_unsupported_and_mismatched(tmp_path, base_gguf):
    with pytest.raises(ConfigError, match="DoRA"):
        export_lora_to_gguf(_write_peft(tmp_path / "dora", _synthetic(), use_dora=True), base_gguf, tmp_path / "x")
    emb = {"base_model.model.model.embed_tokens.lora_A.weight": np.zeros((2, 49152), np.float32),
           "base_model.model.model.embed_tokens.lora_B.weight": np.zeros((576, 2), np.float32)}
    with pytest.raises(ConfigError, match="supported target modules"):
        export_lora_to_gguf(_write_peft(tmp_path / "emb", emb), base_gguf, tmp_path / "x")
    bad = _synthetic()
    bad["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] = np.zeros((64, 2), np.float32)
    with pytest.raises(ArtifactError, match="another base model"):
        export_lora_to_gguf(_write_peft(tmp_path / "bad", bad), base_gguf, tmp_path / "x")
    with pytest.raises(ArtifactError, match="adapter_config.json"):
        export_lora_to_gguf(tmp_path / "empty", base_gguf, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_factory_autoexports_and_detects_stale(tmp_path, base_gguf):
    folder = _write_peft(tmp_path / "adapter", _synthetic())
    base = factory.resolve_base_model(LLMSettings())
    with pytest.raises(ArtifactError, match="missing or stale"):
        factory.gguf_adapter_for(folder, base, autoexport=False)
    path = factory.gguf_adapter_for(folder, base)
    assert path == folder / "adapter.gguf" and gguf_adapter_is_current(folder, base_gguf)
    _write_peft(folder, _synthetic(rank=3))  # retrained -> the old export is stale
    assert not gguf_adapter_is_current(folder, base_gguf)
    factory.gguf_adapter_for(folder, base)
    assert gguf_adapter_is_current(folder, base_gguf)


def test_factory_never_overwrites_a_manifest_listed_export(tmp_path, base_gguf):
    folder = _write_peft(tmp_path / "adapter", _synthetic())
    (folder / "adapter.gguf").write_bytes(b"old export")  # e.g. an older exporter version, listed in the manifest
    write_manifest(folder, kind="lora_adapter", schema_version=1, data_sha256="",
                   files=["adapter_config.json", "adapter_model.safetensors", "adapter.gguf"], libraries=[],
                   metadata=factory.base_model_identity(LLMSettings()))
    base = factory.resolve_base_model(LLMSettings())
    path = factory.gguf_adapter_for(folder, base, cache_dir=tmp_path / "cache")
    assert path.parent == tmp_path / "cache" and gguf_adapter_is_current(folder, base_gguf, path)
    assert (folder / "adapter.gguf").read_bytes() == b"old export"
    assert factory.resolve_adapter(LLMSettings(llm_adapter=str(folder)), base) == folder.resolve()  # still valid


# ---------------------------------------------------------------------------------------------- merged GGUF
def _dequant(tensor) -> np.ndarray:
    import gguf

    return gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)


@pytest.fixture(scope="module")
def merged_q8(tmp_path_factory, base_gguf):
    """A synthetic LoRA-sized adapter (layers 0 and 29, q/k/v) merged into the bundled base as Q8_0, and both
    files' readers (parsing a GGUF header takes seconds: once per module)."""
    import gguf

    tensors = _synthetic(layers=(0, 29))
    for key in tensors:  # LoRA-sized values: the delta is small next to the weights
        tensors[key] = tensors[key] * (0.1 if "lora_A" in key else 0.05)
    folder = tmp_path_factory.mktemp("merge")
    peft = _write_peft(folder / "peft", tensors, r=2, lora_alpha=4, alpha_pattern={"v_proj": 8})
    out = merge_lora_into_gguf(peft, base_gguf, folder / "m.gguf")
    return {"tensors": tensors, "peft": peft, "out": out, "base": gguf.GGUFReader(str(base_gguf)),
            "merged": gguf.GGUFReader(str(out))}


def test_merge_writes_base_plus_delta(merged_q8):
    import gguf

    base_t = {t.name: t for t in merged_q8["base"].tensors}
    got_t = {t.name: t for t in merged_q8["merged"].tensors}
    assert list(got_t) == list(base_t)  # same tensors, same order
    tensors, pre = merged_q8["tensors"], "base_model.model.model.layers.29.self_attn"
    a, b = tensors[f"{pre}.q_proj.lora_A.weight"], tensors[f"{pre}.q_proj.lora_B.weight"]
    base_q = _dequant(base_t["blk.29.attn_q.weight"])
    want = base_q + 2.0 * permute_rows(b @ a, 9)  # llama.cpp scale alpha/r = 2, rotary row order
    merged = got_t["blk.29.attn_q.weight"]
    assert merged.tensor_type == gguf.GGMLQuantizationType.Q8_0
    err = np.abs(_dequant(merged) - want)
    step = np.abs(want).max(axis=1, keepdims=True) / 127  # Q8_0: one scale per 32 values, <= row max / 127
    assert float((err <= 0.6 * step + 1e-6).mean()) == 1.0  # half a step, plus the float16 scale rounding
    assert err.mean() < np.abs(want - base_q).mean() / 4, "the merged tensor must carry the delta"
    v = f"{pre}.v_proj"  # alpha_pattern 8 at r=2 -> scale 4, no permutation
    np.testing.assert_allclose(_dequant(got_t["blk.29.attn_v.weight"]), _dequant(base_t["blk.29.attn_v.weight"])
                               + 4.0 * tensors[f"{v}.lora_B.weight"] @ tensors[f"{v}.lora_A.weight"], atol=0.02)
    for name in ("blk.5.attn_q.weight", "token_embd.weight", "blk.29.ffn_down.weight", "output_norm.weight"):
        assert got_t[name].tensor_type == base_t[name].tensor_type  # not adapted: byte for byte
        np.testing.assert_array_equal(np.asarray(got_t[name].data), np.asarray(base_t[name].data))


def test_merge_copies_metadata_and_records_provenance(merged_q8, base_gguf):
    import gguf

    base_f, got_f = merged_q8["base"].fields, merged_q8["merged"].fields
    for key in ("tokenizer.chat_template", "tokenizer.ggml.tokens", "tokenizer.ggml.merges", "llama.block_count",
                "tokenizer.ggml.eos_token_id"):
        assert got_f[key].contents() == base_f[key].contents()
    assert got_f["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_Q8_0)
    info = merged_gguf_info(merged_q8["out"])
    assert info == {"architecture": "llama", "source_sha256": got_f["mdi.merged.adapter_sha256"].contents(),
                    "base_sha256": got_f["mdi.merged.base_sha256"].contents(), "merger_version": 1,
                    "qtype": "Q8_0", "n_tensors": len(merged_q8["merged"].tensors)}
    assert info["base_sha256"] == factory.resolve_base_model(LLMSettings()).sha256
    peft, out = merged_q8["peft"], merged_q8["out"]
    assert merged_gguf_is_current(peft, base_gguf, out)
    assert not merged_gguf_is_current(peft, base_gguf, out, "F16")  # another storage type
    with pytest.raises(ArtifactError, match="not a GGUF"):
        merged_gguf_info(peft / "adapter_config.json")


def test_merge_qtypes_and_refusals(tmp_path, base_gguf):
    import gguf

    peft = _write_peft(tmp_path / "peft", _synthetic(layers=(3,), modules=("v_proj",)))
    reader = gguf.GGUFReader(str(merge_lora_into_gguf(peft, base_gguf, tmp_path / "f16.gguf", qtype="f16")))
    kinds = {t.name: t.tensor_type for t in reader.tensors}
    assert kinds["blk.3.attn_v.weight"] == gguf.GGMLQuantizationType.F16
    assert kinds["blk.3.attn_q.weight"] == gguf.GGMLQuantizationType.Q4_1  # not adapted: the base's type
    with pytest.raises(ConfigError, match="Q8_0, F16"):
        merge_lora_into_gguf(peft, base_gguf, tmp_path / "x.gguf", qtype="Q2_K")
    with pytest.raises(ConfigError, match="DoRA"):
        merge_lora_into_gguf(_write_peft(tmp_path / "dora", _synthetic(), use_dora=True), base_gguf,
                             tmp_path / "x.gguf")
    assert not list(tmp_path.glob("x.gguf*"))


def _tiny_llama_gguf(path: Path, alignment: int) -> dict[str, np.ndarray]:
    """A one-block llama GGUF (float32 tensors, hidden 64, 2 heads) written with a custom data alignment."""
    import gguf

    rng = np.random.default_rng(1)
    tensors = {"rope_freqs.weight": rng.normal(size=(8,)),  # 32 bytes: later offsets depend on the alignment
               "token_embd.weight": rng.normal(size=(10, 64)), "blk.0.attn_q.weight": rng.normal(size=(64, 64)),
               "blk.0.attn_v.weight": rng.normal(size=(32, 64)), "output_norm.weight": np.ones(64)}
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_custom_alignment(alignment)
    writer.add_block_count(1)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    for name, value in tensors.items():
        writer.add_tensor(name, value.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {k: v.astype(np.float32) for k, v in tensors.items()}


def test_merge_float_base_with_custom_alignment(tmp_path):
    import gguf

    base = _tiny_llama_gguf(tmp_path / "tiny.gguf", alignment=64)
    rng = np.random.default_rng(2)
    lora = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": rng.normal(size=(2, 64)),
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": rng.normal(size=(64, 2))}
    peft = _write_peft(tmp_path / "peft", {k: v.astype(np.float32) for k, v in lora.items()})
    out = merge_lora_into_gguf(peft, tmp_path / "tiny.gguf", tmp_path / "m.gguf", qtype="F32")
    reader = gguf.GGUFReader(str(out))
    assert reader.fields["general.alignment"].contents() == 64
    got = {t.name: np.array(t.data) for t in reader.tensors}
    a, b = (lora[f"base_model.model.model.layers.0.self_attn.q_proj.lora_{x}.weight"] for x in "AB")
    np.testing.assert_allclose(got["blk.0.attn_q.weight"], base["blk.0.attn_q.weight"] + 2.0 * permute_rows(b @ a, 2),
                               rtol=1e-5, atol=1e-5)
    for name in ("rope_freqs.weight", "token_embd.weight", "blk.0.attn_v.weight", "output_norm.weight"):
        np.testing.assert_array_equal(got[name], base[name])


def test_factory_merges_once_and_rebuilds_when_stale(tmp_path, base_gguf, monkeypatch):
    pruned = []
    prune = factory.prune_merged_cache
    monkeypatch.setattr(factory, "prune_merged_cache", lambda cache, **kw: pruned.append(kw["current"]) or
                        prune(cache, **kw))
    folder = _write_peft(tmp_path / "adapter", _synthetic(layers=(1,)))
    base = factory.resolve_base_model(LLMSettings())
    cache = tmp_path / "cache"
    with pytest.raises(ArtifactError, match="python -m llm.gguf_merge"):
        factory.merged_gguf_for(folder, base, autoexport=False, cache_dir=cache)
    path = factory.merged_gguf_for(folder, base, cache_dir=cache)
    assert path.parent == cache and path.name.endswith("-q8_0.gguf")
    inode = path.stat().st_ino
    assert factory.merged_gguf_for(folder, base, autoexport=False, cache_dir=cache) == path
    assert path.stat().st_ino == inode  # reused, not rebuilt (a build writes a new file and renames it)
    _write_peft(folder, _synthetic(layers=(1,), rank=3))  # retrained: a new file; the old one is stale
    newer = factory.merged_gguf_for(folder, base, cache_dir=cache)
    assert newer != path and merged_gguf_is_current(folder, base_gguf, newer)
    assert not merged_gguf_is_current(folder, base_gguf, path)
    assert pruned == [path, newer] and path.exists()  # every build prunes; two files are within the default 3
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_merged_cache_keeps_the_most_recently_used(tmp_path):
    import os

    cache = tmp_path / "cache"
    cache.mkdir()
    files = [cache / f"merged-{i:016d}-base-q8_0.gguf" for i in range(5)]
    for age, p in enumerate(files):  # files[0] is the oldest
        p.write_bytes(b"x")
        os.utime(p, ns=(10**9 * (age + 1), 10**9 * (age + 1)))
    (cache / "other.gguf").write_bytes(b"y")  # not a merged file: never touched
    # the oldest file is the one in use: kept, with the two newest
    assert factory.prune_merged_cache(cache, keep=3, current=files[0]) == [files[2], files[1]]
    assert sorted(p.name for p in cache.iterdir()) == sorted([files[0].name, files[3].name, files[4].name,
                                                              "other.gguf"])
    assert factory.prune_merged_cache(cache, keep=3) == []
    assert factory.prune_merged_cache(cache, keep=1) == [files[3], files[0]]


# ---------------------------------------------------------------------------------------------- equivalence (slow)
PROMPT_TEXT = ("<|im_start|>system\nYou are the catalog assistant of an online store's marketing team.<|im_end|>\n"
               "<|im_start|>user\nFind a USB-C cable under ₹500 with at least 4 stars.<|im_end|>\n"
               "<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def random_adapter(tmp_path_factory, base_gguf):
    """A PEFT LoRA (r=8, all seven llama linears, random non-zero A and B) on the float model transformers
    de-quantizes from the base GGUF, saved with a manifest naming that base."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model, tokenizer = factory.load_transformers_model(factory.resolve_base_model(LLMSettings()))
    ids = tokenizer(PROMPT_TEXT, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        base_logits = model(torch.tensor([ids])).logits[0].numpy().copy()
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                param.normal_(0.0, 0.04)
    peft_model.eval()
    with torch.inference_mode():
        lora_logits = peft_model(torch.tensor([ids])).logits[0].numpy().copy()
    folder = tmp_path_factory.mktemp("adapter") / "smollm2-random"
    peft_model.save_pretrained(str(folder))
    write_manifest(folder, kind="lora_adapter", schema_version=1, data_sha256="0" * 64,
                   files=["adapter_config.json", "adapter_model.safetensors"], libraries=["peft", "torch"],
                   metadata=factory.base_model_identity(LLMSettings()))
    return {"folder": folder, "ids": ids, "base_logits": base_logits, "lora_logits": lora_logits,
            "peft_model": peft_model}


def _llama(base_gguf: Path, lora: Path | None):
    from llm.engines import new_llama

    return new_llama(str(base_gguf), n_ctx=256, n_threads=2, logits_all=True, verbose=False,
                     lora_path=str(lora) if lora else None)


def _llama_logits(llama, ids: list[int]) -> np.ndarray:
    llama.reset()
    llama.eval(ids)
    return np.array(llama.scores[: len(ids)])


@pytest.mark.slow
def test_exported_adapter_matches_peft_logits_and_greedy_tokens(random_adapter, base_gguf, tmp_path):
    import torch

    ra = random_adapter
    good = export_lora_to_gguf(ra["folder"], base_gguf, tmp_path / "good.gguf")
    no_perm = export_lora_to_gguf(ra["folder"], base_gguf, tmp_path / "noperm.gguf", permute_qk=False)
    ll_base = _llama_logits(_llama(base_gguf, None), ra["ids"])
    ll_noperm = _llama_logits(_llama(base_gguf, no_perm), ra["ids"])
    served = _llama(base_gguf, good)
    assert served.tokenize(PROMPT_TEXT.encode(), add_bos=False, special=True) == ra["ids"]  # same tokenizer
    ll_lora = _llama_logits(served, ra["ids"])
    mad = lambda a, b: float(np.abs(a - b).mean())  # noqa: E731
    quant_noise = mad(ra["base_logits"], ll_base)     # float vs Q4_1 base, no adapter
    err = mad(ra["lora_logits"], ll_lora)             # PEFT vs exported adapter
    effect = mad(ra["lora_logits"], ra["base_logits"])  # what the adapter changes
    err_noperm = mad(ra["lora_logits"], ll_noperm)
    print(f"quant_noise={quant_noise:.3f} err={err:.3f} effect={effect:.3f} no_qk_permutation={err_noperm:.3f}")
    assert effect > 4 * err, "the adapter must change the logits far more than the export error"
    assert err < 1.5 * quant_noise + 0.05, "export error must stay at the base quantization noise level"
    assert err_noperm > 1.5 * err, "q/k row permutation must matter (and be right)"
    assert float((ra["lora_logits"].argmax(-1) == ll_lora.argmax(-1)).mean()) >= 0.85

    # greedy decoding along PEFT's path: llama.cpp picks the same token at every step, except where PEFT's own
    # top-2 are within the quantization noise (a near tie), where PEFT's pick must still be llama.cpp's near-top.
    peft_model, seq, same, steps = ra["peft_model"], list(ra["ids"]), 0, 12
    for _ in range(steps):
        with torch.inference_mode():
            ref = peft_model(torch.tensor([seq])).logits[0, -1].numpy()
        got = _llama_logits(served, seq)[-1]
        top2 = np.sort(ref)[-2:]
        pick = int(ref.argmax())
        if top2[1] - top2[0] > 0.5:
            assert int(got.argmax()) == pick
        assert got[pick] >= got.max() - 0.5
        same += int(got.argmax()) == pick
        seq.append(pick)
    assert same >= steps - 2


@pytest.mark.slow
def test_merged_gguf_matches_peft_logits(random_adapter, base_gguf, tmp_path):
    ra = random_adapter
    mad = lambda a, b: float(np.abs(a - b).mean())  # noqa: E731
    quant_noise = mad(ra["base_logits"], _llama_logits(_llama(base_gguf, None), ra["ids"]))
    errs = {}
    for qtype in ("Q8_0", "Q4_1"):
        merged = merge_lora_into_gguf(ra["folder"], base_gguf, tmp_path / f"m-{qtype}.gguf", qtype=qtype)
        errs[qtype] = mad(ra["lora_logits"], _llama_logits(_llama(merged, None), ra["ids"]))
    runtime = mad(ra["lora_logits"], _llama_logits(_llama(base_gguf, export_lora_to_gguf(
        ra["folder"], base_gguf, tmp_path / "a.gguf")), ra["ids"]))
    effect = mad(ra["lora_logits"], ra["base_logits"])
    print(f"quant_noise={quant_noise:.3f} runtime={runtime:.3f} merged={errs} effect={effect:.3f}")
    assert effect > 4 * errs["Q8_0"], "the merged model must carry the adapter"
    assert errs["Q8_0"] < 1.5 * quant_noise + 0.05, "merging must stay at the base quantization noise level"


@pytest.mark.slow
def test_factory_serves_the_adapter_in_both_backends(random_adapter, monkeypatch, tmp_path):
    from langchain_core.messages import HumanMessage, SystemMessage

    monkeypatch.setattr(factory, "DEFAULT_ADAPTER_DIR", tmp_path / "absent")
    folder = random_adapter["folder"]
    msgs = [SystemMessage("You are the catalog assistant of an online store's marketing team."),
            HumanMessage("Find a USB-C cable under ₹500 with at least 4 stars.")]

    def answer(**kw):
        return factory.load_chat_model(LLMSettings(llm_max_new_tokens=8, **kw), reuse=False).invoke(msgs)

    monkeypatch.setattr(factory, "ARTIFACTS_DIR", tmp_path / "artifacts")
    served = answer(llm_adapter=str(folder))  # default: merged into a copy of the base
    assert len(list((tmp_path / "artifacts" / "llm").glob("merged-*-q8_0.gguf"))) == 1  # built on first use
    assert served.response_metadata["adapter"] == str(folder.resolve())
    bare = answer(llm_adapter="none").content
    assert served.content != bare
    at_runtime = answer(llm_adapter=str(folder), llm_adapter_mode="runtime")
    assert gguf_adapter_is_current(folder, bundled_gguf_path())  # exported on first use
    assert at_runtime.content != bare
    reference = answer(llm_adapter=str(folder), llm_backend="transformers")
    assert reference.content != answer(llm_adapter="none", llm_backend="transformers").content
    print(repr(served.content), repr(at_runtime.content), repr(reference.content))
