"""``load_chat_model(settings)``: the configured LLM as a LangChain chat model, loaded once and reused.

* ``llamacpp`` (default): :class:`~llm.chat_model.LocalChatModel` over llama-cpp-python; the LoRA adapter merged
  into a copy of the base GGUF (``llm_adapter_mode=merged``, ``artifacts/llm/merged-*.gguf``) or applied at run
  time as ``<adapter>/adapter.gguf`` (``runtime``); either is made from the PEFT files on first use when
  missing or stale.
* ``transformers``: :class:`~llm.chat_model.LocalChatModel` over a float transformers model (HF id, local folder
  or ``.gguf`` file); the LoRA adapter as the PEFT folder (merged into the weights by default).
* ``openai``: ``langchain_openai.ChatOpenAI`` (sending ``max_tokens``) at ``llm_base_url`` (vLLM / TGI /
  llama.cpp server...).

Refusals (raised before anything heavy loads): a missing model file -> ArtifactError; a missing adapter
folder or files -> ArtifactError; an adapter whose ``manifest.json`` (``kind="lora_adapter"``) names another
base model (``metadata.base_model`` / ``metadata.base_model_sha256``) -> ArtifactError; an ``openai`` backend
without ``llm_base_url`` -> ConfigError.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from core.artifacts import MANIFEST_NAME, load_manifest
from core.errors import ArtifactError, ConfigError
from core.settings import ARTIFACTS_DIR
from core.offline import enforce_offline
from llm.gguf_adapter import (ADAPTER_GGUF_NAME, PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME, _sha256_cached,
                              export_lora_to_gguf, gguf_adapter_info, gguf_adapter_is_current)
from llm.gguf_merge import DEFAULT_MERGE_QTYPE, merge_lora_into_gguf, merged_gguf_is_current
from llm.settings import DEFAULT_ADAPTER_DIR, SMOLLM2_MODEL_ID, LLMSettings, bundled_gguf_path

log = logging.getLogger(__name__)

ADAPTER_KIND = "lora_adapter"
_BASE_ID_KEYS = ("base_model", "base_model_id", "base_model_name_or_path")
_BASE_SHA_KEYS = ("base_model_sha256", "base_sha256", "base_file_sha256", "base_gguf_sha256")

_CACHE: dict[str, BaseChatModel] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class BaseModelRef:
    """What the base model is: a GGUF file (``gguf_path``), a local HF folder, or a hub id."""

    model_id: str
    gguf_path: Path | None = None
    folder: Path | None = None

    @property
    def sha256(self) -> str | None:
        return _sha256_cached(str(self.gguf_path)) if self.gguf_path else None

    @property
    def is_default(self) -> bool:
        return self.model_id == SMOLLM2_MODEL_ID


def resolve_base_model(settings: LLMSettings) -> BaseModelRef:
    """The configured base model; ArtifactError when a local file/folder named in settings is missing."""
    value = settings.llm_model.strip()
    if not value:
        return BaseModelRef(model_id=SMOLLM2_MODEL_ID, gguf_path=bundled_gguf_path().resolve())
    path = Path(value).expanduser()
    if value.endswith(".gguf"):
        if not path.is_file():
            raise ArtifactError(f"model file not found: {path} (MDI_LLM_MODEL)", path=str(path))
        path = path.resolve()
        is_bundled = path == bundled_gguf_path().resolve()
        return BaseModelRef(model_id=SMOLLM2_MODEL_ID if is_bundled else str(path), gguf_path=path)
    if path.exists() or value.startswith((".", "/", "~")):
        if not path.is_dir():
            raise ArtifactError(f"model folder not found: {path} (MDI_LLM_MODEL)", path=str(path))
        if settings.llm_backend == "llamacpp":
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) != 1:
                raise ConfigError(f"llamacpp backend needs a .gguf file: {path} holds {len(ggufs)}; name the file")
            return BaseModelRef(model_id=str(ggufs[0].resolve()), gguf_path=ggufs[0].resolve())
        return BaseModelRef(model_id=str(path.resolve()), folder=path.resolve())
    if settings.llm_backend == "llamacpp":
        raise ConfigError(f"llamacpp backend needs a local .gguf file, got {value!r}")
    return BaseModelRef(model_id=value)  # a hub id (must be in the local HF cache: we run offline)


def base_model_identity(settings: LLMSettings | None = None) -> dict[str, Any]:
    """Metadata an adapter manifest should carry so the factory accepts it on this base model:
    ``{"base_model": <id>, "base_model_sha256": <sha256 of the GGUF or None>}``."""
    ref = resolve_base_model(settings or LLMSettings())
    return {"base_model": ref.model_id, "base_model_sha256": ref.sha256}


def resolve_adapter(settings: LLMSettings, base: BaseModelRef) -> Path | None:
    """The adapter folder to apply (None: no adapter), its manifest checked against ``base``."""
    value = settings.llm_adapter.strip()
    if value.lower() in ("", "none", "off", "false", "0"):
        return None
    if value.lower() == "auto":
        if not DEFAULT_ADAPTER_DIR.is_dir():
            log.info("no adapter at %s: serving the base model", DEFAULT_ADAPTER_DIR)
            return None
        if not base.is_default:
            log.info("default adapter %s is for %s, not %s: serving without it",
                     DEFAULT_ADAPTER_DIR, SMOLLM2_MODEL_ID, base.model_id)
            return None
        folder = DEFAULT_ADAPTER_DIR
    else:
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise ArtifactError(f"LoRA adapter not found: {folder} does not exist (MDI_LLM_ADAPTER; "
                                "use 'none' to serve the base model)", path=str(folder))
    check_adapter_manifest(folder, base)
    return folder.resolve()


def check_adapter_manifest(folder: Path, base: BaseModelRef) -> dict[str, Any]:
    """Verify ``folder/manifest.json`` (kind ``lora_adapter``, file checksums) and that it was trained on
    ``base``. Returns the manifest metadata. Raises ArtifactError with the reason."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise ArtifactError(f"LoRA adapter at {folder} has no {MANIFEST_NAME}: cannot tell which base model it "
                            "was trained on", path=str(folder))
    try:
        schema_version = int(json.loads(path.read_text()).get("schema_version", -1))
    except (OSError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"adapter manifest {path} is unreadable: {exc}", path=str(path)) from exc
    manifest = load_manifest(folder, kind=ADAPTER_KIND, schema_version=schema_version)
    meta = manifest.metadata
    want_id = next((str(meta[k]) for k in _BASE_ID_KEYS if meta.get(k)), None)
    want_sha = next((str(meta[k]) for k in _BASE_SHA_KEYS if meta.get(k)), None)
    if want_id is None and want_sha is None:
        raise ArtifactError(f"adapter manifest {path} names no base model (metadata.base_model / "
                            "base_model_sha256)", path=str(path))
    have_sha = base.sha256
    if want_sha and have_sha:
        if want_sha != have_sha:
            raise ArtifactError(
                f"LoRA adapter {folder} was trained on base file sha256 {want_sha[:12]}..., but the configured base "
                f"model {base.model_id} has sha256 {have_sha[:12]}...: retrain it or set MDI_LLM_ADAPTER=none",
                path=str(folder), expected=want_sha, actual=have_sha)
    elif want_id and not _same_model_id(want_id, base.model_id):
        raise ArtifactError(
            f"LoRA adapter {folder} was trained on {want_id!r}, but the configured base model is "
            f"{base.model_id!r}: retrain it or set MDI_LLM_ADAPTER=none", path=str(folder),
            expected=want_id, actual=base.model_id)
    return meta


def _same_model_id(a: str, b: str) -> bool:
    norm = lambda s: s.rstrip("/").lower()  # noqa: E731
    return norm(a) == norm(b) or norm(a).endswith("/" + norm(b).rsplit("/", 1)[-1]) and "/" not in norm(b)


def _threads(settings: LLMSettings) -> int:
    return settings.threads


def _cache_key(settings: LLMSettings) -> str:
    data = settings.model_dump(mode="json", exclude={"log_level"})
    data["llm_api_key"] = hashlib.sha256(settings.llm_api_key.get_secret_value().encode()).hexdigest()
    return json.dumps(data, sort_keys=True)


def load_chat_model(settings: LLMSettings | None = None, *, reuse: bool = True) -> BaseChatModel:
    """Build (or reuse, memoized by settings) the configured chat model. See the module docstring."""
    settings = settings or LLMSettings()
    key = _cache_key(settings)
    if reuse:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
    builders = {"llamacpp": _build_llamacpp, "transformers": _build_transformers, "openai": _build_openai}
    model = builders[settings.llm_backend](settings)
    if reuse:
        with _CACHE_LOCK:
            model = _CACHE.setdefault(key, model)
    return model


def clear_cache() -> None:
    """Forget memoized models (tests)."""
    with _CACHE_LOCK:
        _CACHE.clear()


# ---------------------------------------------------------------------------------------------- builders
def gguf_adapter_for(folder: Path, base: BaseModelRef, *, autoexport: bool = True,
                     cache_dir: Path | None = None) -> Path:
    """The llama.cpp adapter of PEFT folder ``folder``: ``folder/adapter.gguf`` when current; else (re-)exported
    from the PEFT files when ``autoexport`` -- into ``folder`` when its manifest does not list ``adapter.gguf``
    (so the manifest stays valid), otherwise into ``cache_dir`` (default ``artifacts/llm/``)."""
    assert base.gguf_path is not None
    target = folder / ADAPTER_GGUF_NAME
    has_peft = (folder / PEFT_CONFIG_NAME).is_file() and (folder / PEFT_WEIGHTS_NAME).is_file()
    if has_peft:
        if gguf_adapter_is_current(folder, base.gguf_path, target):
            return target
        if not autoexport:
            raise ArtifactError(f"{target} is missing or stale: run `python -m llm.gguf_adapter --peft-dir {folder}`",
                                path=str(target))
        if _listed_in_manifest(folder, ADAPTER_GGUF_NAME):
            source = _sha256_cached(str(folder / PEFT_WEIGHTS_NAME))
            target = (cache_dir or ARTIFACTS_DIR / "llm") / f"adapter-{source[:16]}-{base.sha256[:12]}.gguf"
            if gguf_adapter_is_current(folder, base.gguf_path, target):
                return target
        log.info("exporting the PEFT adapter in %s to %s", folder, target)
        try:
            return export_lora_to_gguf(folder, base.gguf_path, target)
        except PermissionError as exc:
            raise ArtifactError(f"cannot write {target}: {exc}; export it where writable with "
                                "`python -m llm.gguf_adapter --peft-dir ... --out ...`", path=str(target)) from exc
    if not target.is_file():
        raise ArtifactError(f"LoRA adapter {folder} has neither {ADAPTER_GGUF_NAME} nor PEFT files "
                            f"({PEFT_CONFIG_NAME}, {PEFT_WEIGHTS_NAME})", path=str(folder))
    info = gguf_adapter_info(target)
    if info["type"] != "adapter" or info["adapter_type"] != "lora":
        raise ArtifactError(f"{target} is not a llama.cpp LoRA adapter", path=str(target))
    if info["base_sha256"] and info["base_sha256"] != base.sha256:
        raise ArtifactError(f"{target} was exported for another base GGUF", path=str(target))
    return target


#: merged GGUFs kept in the cache folder (~145 MB each for SmolLM2-135M at Q8_0): a new one evicts the least
#: recently used beyond this many (every retrain or re-ship of an adapter makes a new file)
MERGED_CACHE_KEEP = 3


def prune_merged_cache(cache: Path, keep: int = MERGED_CACHE_KEEP, *, current: Path | None = None) -> list[Path]:
    """Delete all but the ``keep`` most recently used ``merged-*.gguf`` in ``cache`` (``current`` is always kept;
    use = modification time, which :func:`merged_gguf_for` refreshes on reuse). Returns what was deleted. A
    process that has a deleted file open keeps reading it (POSIX); the next one to ask for it merges it again."""
    files = sorted(cache.glob("merged-*.gguf"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    stale = [p for p in files if p != current][max(0, keep - (1 if current in files else 0)):]
    for p in stale:
        try:
            p.unlink()
            log.info("removed merged GGUF %s (keeping the %d most recently used)", p, keep)
        except OSError as exc:  # another process removed it first, or read-only: leave it
            log.warning("could not remove %s: %s", p, exc)
    return stale


def merged_gguf_for(folder: Path, base: BaseModelRef, *, qtype: str = DEFAULT_MERGE_QTYPE,
                    autoexport: bool = True, cache_dir: Path | None = None) -> Path:
    """The base GGUF with PEFT folder ``folder``'s LoRA merged into its weights (``qtype`` tensors), in
    ``cache_dir`` (default ``artifacts/llm/``), named by the adapter's and the base's sha256: reused when
    current, (re-)built when ``autoexport``; ArtifactError otherwise or without PEFT files. Building one
    evicts the least recently used beyond :data:`MERGED_CACHE_KEEP` (:func:`prune_merged_cache`)."""
    assert base.gguf_path is not None
    if not ((folder / PEFT_CONFIG_NAME).is_file() and (folder / PEFT_WEIGHTS_NAME).is_file()):
        if (folder / ADAPTER_GGUF_NAME).is_file():
            raise ArtifactError(f"merging LoRA adapter {folder} into the base needs its PEFT files "
                                f"({PEFT_CONFIG_NAME}, {PEFT_WEIGHTS_NAME}); it has only {ADAPTER_GGUF_NAME}: set "
                                "MDI_LLM_ADAPTER_MODE=runtime to apply that", path=str(folder))
        raise ArtifactError(f"LoRA adapter {folder} has neither {ADAPTER_GGUF_NAME} nor PEFT files "
                            f"({PEFT_CONFIG_NAME}, {PEFT_WEIGHTS_NAME})", path=str(folder))
    source = _sha256_cached(str((folder / PEFT_WEIGHTS_NAME).resolve()))
    cache = cache_dir or ARTIFACTS_DIR / "llm"
    target = cache / f"merged-{source[:16]}-{base.sha256[:12]}-{qtype.lower()}.gguf"
    if merged_gguf_is_current(folder, base.gguf_path, target, qtype):
        try:
            os.utime(target)  # used now: what prune_merged_cache keeps
        except OSError:
            pass  # a read-only cache still serves
        return target
    if not autoexport:
        raise ArtifactError(f"{target} is missing or stale: run `python -m llm.gguf_merge --peft-dir {folder} "
                            f"--qtype {qtype} --out {target}`", path=str(target))
    log.info("merging the PEFT adapter in %s into %s (%s)", folder, target, qtype)
    try:
        merged = merge_lora_into_gguf(folder, base.gguf_path, target, qtype=qtype)
        prune_merged_cache(cache, current=merged)
        return merged
    except PermissionError as exc:
        raise ArtifactError(f"cannot write {target}: {exc}; set MDI_LLM_ADAPTER_MODE=runtime or merge it where "
                            "writable with `python -m llm.gguf_merge --peft-dir ... --out ...`",
                            path=str(target)) from exc


def _listed_in_manifest(folder: Path, name: str) -> bool:
    try:
        return name in json.loads((folder / MANIFEST_NAME).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return False


def _build_llamacpp(settings: LLMSettings) -> BaseChatModel:
    from llm.chat_model import LocalChatModel
    from llm.engines import LlamaCppEngine

    base = resolve_base_model(settings)
    adapter = resolve_adapter(settings, base)
    model_path, lora_path = base.gguf_path, None
    if adapter and settings.llm_adapter_mode == "merged":
        model_path = merged_gguf_for(adapter, base, qtype=settings.llm_merge_qtype,
                                     autoexport=settings.llm_adapter_autoexport)
    elif adapter:
        lora_path = gguf_adapter_for(adapter, base, autoexport=settings.llm_adapter_autoexport)
    engine = LlamaCppEngine(str(model_path), lora_path=str(lora_path) if lora_path else None,
                            n_ctx=settings.llm_ctx, n_threads=_threads(settings), n_batch=settings.llm_batch,
                            seed=settings.llm_seed, model_name=base.model_id,
                            extra_buffers=settings.llm_extra_buffers, lookup_draft=settings.llm_lookup_draft,
                            lookup_ngram=settings.llm_lookup_ngram)
    log.info("llama.cpp model %s loaded (adapter %s, %s, %d threads)", model_path, adapter,
             settings.llm_adapter_mode if adapter else "none", _threads(settings))
    return LocalChatModel(engine=engine, model_name=base.model_id, max_new_tokens=settings.llm_max_new_tokens,
                          temperature=settings.llm_temperature, top_p=settings.llm_top_p, seed=settings.llm_seed,
                          adapter=str(adapter) if adapter else None)


def load_transformers_model(base: BaseModelRef, *, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a base model in transformers, float32 by default (offline)."""
    enforce_offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = dtype or torch.float32
    if base.gguf_path is not None:
        where, kwargs = str(base.gguf_path.parent), {"gguf_file": base.gguf_path.name}
    else:
        where, kwargs = str(base.folder or base.model_id), {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kwargs)
    except OSError as exc:
        raise ArtifactError(f"cannot load model {base.model_id!r} with transformers (offline): {exc}") from exc
    return model.eval(), tokenizer


def _build_transformers(settings: LLMSettings) -> BaseChatModel:
    import torch

    from llm.chat_model import LocalChatModel
    from llm.engines import TransformersEngine

    base = resolve_base_model(settings)
    adapter = resolve_adapter(settings, base)
    if adapter is not None:
        for name in (PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME):
            if not (adapter / name).is_file():
                raise ArtifactError(f"PEFT adapter file missing: {adapter / name}", path=str(adapter / name))
    if settings.llm_threads:  # auto leaves torch's own default (all cores) alone
        torch.set_num_threads(settings.llm_threads)
    model, tokenizer = load_transformers_model(base)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
        if settings.llm_merge_adapter:
            model = model.merge_and_unload()
        model.eval()
    engine = TransformersEngine(model, tokenizer, model_name=base.model_id, n_ctx=settings.llm_ctx)
    log.info("transformers model %s loaded (adapter %s)", base.model_id, adapter)
    return LocalChatModel(engine=engine, model_name=base.model_id, max_new_tokens=settings.llm_max_new_tokens,
                          temperature=settings.llm_temperature, top_p=settings.llm_top_p, seed=settings.llm_seed,
                          adapter=str(adapter) if adapter else None)


def _build_openai(settings: LLMSettings) -> BaseChatModel:
    from llm.openai_compat import OpenAICompatibleChat

    if not settings.llm_base_url:
        raise ConfigError("the openai backend needs MDI_LLM_BASE_URL (e.g. http://host:8000/v1)")
    if settings.llm_adapter.strip().lower() not in ("auto", "none", "off", ""):
        log.warning("llm_adapter is ignored by the openai backend: load the adapter in the remote server")
    return OpenAICompatibleChat(base_url=settings.llm_base_url, api_key=settings.llm_api_key,
                                model=settings.llm_model or "default", temperature=settings.llm_temperature,
                                max_tokens=settings.llm_max_new_tokens, timeout=settings.llm_timeout_s,
                                max_retries=settings.llm_max_retries, seed=settings.llm_seed, stream_usage=True)
