"""LLM layer: settings, factory refusals, chat model over a fake engine, stop handling, GGUF adapter export
format, the openai backend against a loopback fake server, and (slow) the real llama.cpp / transformers
backends on the bundled SmolLM2 GGUF."""
from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from starlette.requests import Request  # module level: FastAPI resolves string annotations here

from core.artifacts import write_manifest
from core.errors import ArtifactError, ConfigError
from core.settings import load_settings
from llm import factory
from llm.chat_model import LocalChatModel, to_chat_dicts
from llm.engines import GenParams, GenStats, StopScanner, render_template
from llm.settings import SMOLLM2_MODEL_ID, LLMSettings


def settings(**kw) -> LLMSettings:
    return LLMSettings(**kw)


# ---------------------------------------------------------------------------------------------- settings
def test_settings_env_and_cli(monkeypatch):
    monkeypatch.setenv("MDI_LLM_BACKEND", "transformers")
    monkeypatch.setenv("MDI_LLM_MAX_NEW_TOKENS", "33")
    s = load_settings(LLMSettings, ["--llm-temperature", "0.7", "--llm-adapter", "none"], log_start=False)
    assert (s.llm_backend, s.llm_max_new_tokens, s.llm_temperature, s.llm_adapter) == ("transformers", 33, 0.7, "none")


def test_settings_defaults_and_invalid(monkeypatch):
    for var in ("MDI_LLM_BACKEND", "MDI_LLM_TEMPERATURE", "MDI_LLM_ADAPTER", "MDI_LLM_ADAPTER_MODE",
                "MDI_LLM_MERGE_QTYPE"):
        monkeypatch.delenv(var, raising=False)
    s = LLMSettings()
    assert s.llm_backend == "llamacpp" and s.llm_temperature == 0.0 and s.llm_adapter == "auto"
    with pytest.raises(ConfigError, match="llm_backend"):
        load_settings(LLMSettings, ["--llm-backend", "nope"], log_start=False)
    with pytest.raises(ConfigError, match="llm_max_new_tokens"):
        load_settings(LLMSettings, ["--llm-max-new-tokens", "0"], log_start=False)
    assert "secret" not in json.dumps(LLMSettings(llm_api_key="secret").describe())
    assert (s.llm_adapter_mode, s.llm_merge_qtype) == ("merged", "Q8_0")
    assert load_settings(LLMSettings, ["--llm-merge-qtype", "f16"], log_start=False).llm_merge_qtype == "F16"
    with pytest.raises(ConfigError, match="llm_merge_qtype"):
        load_settings(LLMSettings, ["--llm-merge-qtype", "Q2_K"], log_start=False)
    with pytest.raises(ConfigError, match="llm_adapter_mode"):
        load_settings(LLMSettings, ["--llm-adapter-mode", "fused"], log_start=False)


def test_threads_auto_leaves_a_core_free(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(2)))
    assert LLMSettings().threads == 1
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert LLMSettings().threads == 8
    assert LLMSettings(llm_threads=3).threads == 3


# ---------------------------------------------------------------------------------------------- refusals
def _adapter_dir(tmp_path: Path, **metadata) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4}))
    write_manifest(folder, kind="lora_adapter", schema_version=1, data_sha256="0" * 64,
                   files=["adapter_config.json"], libraries=["peft"], metadata=metadata)
    return folder


def test_llamacpp_model_params_are_set_for_one_construction():
    """The engine builds its llama.cpp model without the extra weight buffers (AMX) unless asked: the wrapper sets
    the field only inside the block and puts llama-cpp-python's own default back afterwards."""
    import llama_cpp.llama as high

    from llm.engines import _model_params

    default = high.llama_cpp.llama_model_default_params
    assert default().use_extra_bufts is True  # llama.cpp's default, which the engine turns off
    with _model_params(use_extra_bufts=False):
        assert high.llama_cpp.llama_model_default_params().use_extra_bufts is False
    assert high.llama_cpp.llama_model_default_params is default and default().use_extra_bufts is True
    with pytest.raises(RuntimeError), _model_params(use_extra_bufts=False):
        raise RuntimeError("construction failed")
    assert high.llama_cpp.llama_model_default_params is default
    assert LLMSettings().llm_extra_buffers is False


def test_refuses_missing_model_file(tmp_path, no_default_adapter):
    with pytest.raises(ArtifactError, match="model file not found"):
        factory.load_chat_model(settings(llm_model=str(tmp_path / "missing.gguf")))
    with pytest.raises(ArtifactError, match="model folder not found"):
        factory.load_chat_model(settings(llm_backend="transformers", llm_model=str(tmp_path / "nofolder")))


def test_refuses_missing_adapter(tmp_path, no_default_adapter):
    with pytest.raises(ArtifactError, match="LoRA adapter not found"):
        factory.load_chat_model(settings(llm_adapter=str(tmp_path / "nowhere")))


def test_refuses_adapter_without_manifest(tmp_path, no_default_adapter):
    (tmp_path / "bare").mkdir()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        factory.load_chat_model(settings(llm_adapter=str(tmp_path / "bare")))


def test_refuses_adapter_for_another_base(tmp_path, no_default_adapter):
    folder = _adapter_dir(tmp_path, base_model=SMOLLM2_MODEL_ID, base_model_sha256="ab" * 32)
    with pytest.raises(ArtifactError, match="trained on base file sha256 ababab") as info:
        factory.load_chat_model(settings(llm_adapter=str(folder)))
    assert info.value.details["expected"] == "ab" * 32


def test_refuses_adapter_for_another_model_id(tmp_path, no_default_adapter):
    folder = _adapter_dir(tmp_path, base_model="Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(ArtifactError, match="trained on 'Qwen/Qwen2.5-0.5B-Instruct'"):
        factory.load_chat_model(settings(llm_backend="transformers", llm_adapter=str(folder)))


def test_refuses_tampered_adapter(tmp_path, no_default_adapter):
    folder = _adapter_dir(tmp_path, **factory.base_model_identity(settings()))
    (folder / "adapter_config.json").write_text("{}")
    with pytest.raises(ArtifactError, match="checksum"):
        factory.resolve_adapter(settings(llm_adapter=str(folder)), factory.resolve_base_model(settings()))


def test_matching_adapter_accepted_and_missing_files_refused(tmp_path, no_default_adapter):
    ident = factory.base_model_identity(settings())
    assert ident["base_model"] == SMOLLM2_MODEL_ID and len(ident["base_model_sha256"]) == 64
    folder = _adapter_dir(tmp_path, **ident)
    base = factory.resolve_base_model(settings())
    assert factory.resolve_adapter(settings(llm_adapter=str(folder)), base) == folder.resolve()
    # llamacpp: neither adapter.gguf nor adapter_model.safetensors -> refused before loading anything
    for mode in ("merged", "runtime"):
        with pytest.raises(ArtifactError, match="neither adapter.gguf nor PEFT files"):
            factory.load_chat_model(settings(llm_adapter=str(folder), llm_adapter_mode=mode))
    (folder / "adapter.gguf").write_bytes(b"GGUF")  # only a llama.cpp adapter: cannot be merged
    with pytest.raises(ArtifactError, match="MDI_LLM_ADAPTER_MODE=runtime"):
        factory.load_chat_model(settings(llm_adapter=str(folder)))
    with pytest.raises(ArtifactError, match="adapter_model.safetensors"):
        factory.load_chat_model(settings(llm_backend="transformers", llm_adapter=str(folder)))


def test_auto_adapter_resolution(tmp_path, monkeypatch, no_default_adapter):
    base = factory.resolve_base_model(settings())
    assert factory.resolve_adapter(settings(), base) is None  # default folder absent
    folder = _adapter_dir(tmp_path, **factory.base_model_identity(settings()))
    monkeypatch.setattr(factory, "DEFAULT_ADAPTER_DIR", folder)
    assert factory.resolve_adapter(settings(), base) == folder.resolve()
    assert factory.resolve_adapter(settings(llm_adapter="none"), base) is None
    other = factory.BaseModelRef(model_id="some/other-model")
    assert factory.resolve_adapter(settings(), other) is None  # auto skips an adapter of another base


def test_openai_backend_needs_base_url(no_default_adapter):
    with pytest.raises(ConfigError, match="MDI_LLM_BASE_URL"):
        factory.load_chat_model(settings(llm_backend="openai"))


# ---------------------------------------------------------------------------------------------- chat model
class FakeEngine:
    """Yields a fixed text in pieces, obeying stop strings; records what it was asked."""

    backend = "fake"
    model_name = "fake"

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.calls: list[tuple[list[dict], GenParams]] = []

    def render(self, messages):
        return render_template(None, messages)

    def tokenize(self, text):
        return text.split()

    def stream(self, messages, params: GenParams, stats: GenStats) -> Iterator[str]:
        self.calls.append((messages, params))
        scanner = StopScanner(params.stop)
        stats.prompt_tokens = 7
        for piece in self.pieces[: params.max_new_tokens]:
            stats.completion_tokens += 1
            out, stopped = scanner.feed(piece)
            if out:
                yield out
            if stopped:
                break
        else:
            if scanner.pending:
                yield scanner.flush()
        stats.ttft_s, stats.total_s = 0.01, 0.1


def test_local_chat_model_invoke_stream_and_metadata():
    engine = FakeEngine(["<tool_call>", '{"name": "x"}', "</tool_call>", " tail"])
    model = LocalChatModel(engine=engine, model_name="fake", max_new_tokens=10)
    msgs = [SystemMessage("sys"), HumanMessage("hi"), AIMessage("a"), ToolMessage("r", tool_call_id="1")]
    out = model.invoke(msgs)
    assert out.content == '<tool_call>{"name": "x"}</tool_call> tail'
    assert out.response_metadata["completion_tokens"] == 4 and out.response_metadata["backend"] == "fake"
    assert out.usage_metadata == {"input_tokens": 7, "output_tokens": 4, "total_tokens": 11}
    assert [m["role"] for m in engine.calls[0][0]] == ["system", "user", "assistant", "user"]
    chunks = list(model.stream(msgs, stop=["</tool_call>"]))
    assert len(chunks) >= 3
    text = "".join(c.content for c in chunks)
    assert text == '<tool_call>{"name": "x"}'
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.response_metadata["tokens_per_s"] == pytest.approx(30.0)
    assert model.invoke(msgs, max_new_tokens=1).content == "<tool_call>"


def test_stop_scanner_holds_back_partial_stop():
    s = StopScanner(["</tool_call>"])
    assert s.feed("abc</to") == ("abc", False)
    assert s.feed("ol_call> more") == ("", True)
    s = StopScanner(["END"])
    assert s.feed("xE") == ("x", False)
    assert s.feed("Nx") == ("ENx", False)
    assert StopScanner([]).feed("free") == ("free", False)


def test_chatml_fallback_template():
    text = render_template(None, [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    assert to_chat_dicts([HumanMessage("q")]) == [{"role": "user", "content": "q"}]


# ---------------------------------------------------------------------------------------------- openai backend
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def fake_openai_server():
    """A tiny OpenAI-compatible chat completions server on 127.0.0.1 (canned reply, SSE streaming)."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse

    app = FastAPI()
    seen: list[dict] = []
    canned = '<tool_call>{"name": "search_products", "arguments": {"query": "usb cable"}}</tool_call>'

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await request.json()
        seen.append(body)
        base = {"id": "cmpl-1", "created": int(time.time()), "model": body["model"]}
        if body.get("stream"):
            def events():
                for i in range(0, len(canned), 20):
                    chunk = {**base, "object": "chat.completion.chunk", "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": canned[i:i + 20]},
                         "finish_reason": None}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                end = {**base, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}
                yield f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse({**base, "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": canned}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}})

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "fake OpenAI server did not start"
    yield f"http://127.0.0.1:{port}/v1", seen, canned
    server.should_exit = True
    thread.join(timeout=5)


def test_openai_backend_talks_to_local_server(fake_openai_server, no_default_adapter):
    base_url, seen, canned = fake_openai_server
    model = factory.load_chat_model(settings(llm_backend="openai", llm_base_url=base_url, llm_model="smollm2",
                                             llm_max_new_tokens=64, llm_timeout_s=10))
    assert factory.load_chat_model(settings(llm_backend="openai", llm_base_url=base_url, llm_model="smollm2",
                                            llm_max_new_tokens=64, llm_timeout_s=10)) is model  # memoized
    out = model.invoke([SystemMessage("sys"), HumanMessage("usb cable?")])
    assert out.content == canned
    body = seen[-1]
    assert body["model"] == "smollm2" and body["temperature"] == 0.0 and body["max_tokens"] == 64
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    chunks = [c.content for c in model.stream([HumanMessage("again")])]
    assert len([c for c in chunks if c]) > 1 and "".join(chunks) == canned


# ---------------------------------------------------------------------------------------------- real backends
PROMPT = [SystemMessage("You are a helpful assistant. Answer briefly."), HumanMessage("What is the capital of France?")]


@pytest.mark.slow
def test_llamacpp_backend_generates_streams_and_caches_prefix(no_default_adapter):
    model = factory.load_chat_model(settings(llm_max_new_tokens=12))
    assert factory.load_chat_model(settings(llm_max_new_tokens=12)) is model
    out = model.invoke(PROMPT)
    meta = out.response_metadata
    assert out.content.strip() and meta["backend"] == "llamacpp" and 1 <= meta["completion_tokens"] <= 12
    assert meta["prompt_tokens"] == model.count_tokens(PROMPT) and meta["tokens_per_s"] > 0
    assert model.invoke(PROMPT).content == out.content  # greedy = deterministic
    again = model.invoke(PROMPT[:1] + [HumanMessage("And of Italy?")])
    assert again.response_metadata["cached_prompt_tokens"] >= 10  # system prompt reused from the KV cache
    chunks = list(model.stream(PROMPT))
    assert len([c for c in chunks if c.content]) >= 2
    assert "".join(c.content for c in chunks) == out.content
    first_word = out.content.strip().split()[0]
    cut = model.invoke(PROMPT, stop=[first_word])
    assert first_word not in cut.content and cut.response_metadata["finish_reason"] == "stop"


@pytest.mark.slow
def test_transformers_backend_matches_plain_generate(no_default_adapter):
    import torch

    model = factory.load_chat_model(settings(llm_backend="transformers", llm_max_new_tokens=10))
    engine = model.engine
    out = model.invoke(PROMPT)
    assert out.response_metadata["backend"] == "transformers" and out.content.strip()
    ids = engine.tokenize(engine.render(to_chat_dicts(PROMPT)))
    with torch.inference_mode():
        ref = engine.model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False)[0, len(ids):]
    ref_text = engine.tokenizer.decode(ref, skip_special_tokens=True)
    assert out.content == ref_text
    chunks = [c.content for c in model.stream(PROMPT)]
    assert len([c for c in chunks if c]) >= 2 and "".join(chunks) == out.content
    # both local backends render a conversation byte-identically (the GGUF's template == the tokenizer's)
    llama_engine = factory.load_chat_model(settings(llm_max_new_tokens=4)).engine
    for conv in (PROMPT + [AIMessage("Paris."), HumanMessage("And ₹ prices?")], [HumanMessage("no system")]):
        dicts = to_chat_dicts(conv)
        assert llama_engine.render(dicts) == engine.render(dicts)
        assert llama_engine.tokenize(llama_engine.render(dicts)) == engine.tokenize(engine.render(dicts))


@pytest.mark.slow
def test_llm_bench_measures_both_adapter_modes(tmp_path, monkeypatch, capsys):
    """The speed benchmark runs end to end on the shipped adapter: merged (default) and run-time side by side.
    (Its figures are reported in docs/llm.md, not asserted: speed lives in benchmarks.)"""
    from bench import llm_bench

    if not factory.DEFAULT_ADAPTER_DIR.is_dir():
        pytest.skip(f"no shipped adapter at {factory.DEFAULT_ADAPTER_DIR}")
    monkeypatch.setattr(factory, "ARTIFACTS_DIR", tmp_path)  # the merged GGUF is built here
    assert llm_bench.main(["--runs", "1", "--new-tokens", "4", "--skip-baseline", "--compare-modes",
                           "--compare-lookup", "4"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["adapter_mode"] == "merged" and result["adapter"]
    assert result["cold_tps"] > 0 and result["runtime_cold_tps"] > 0 and result["warm_cached"] > 100
    assert result["lookup4_cold_tps"] > 0 and result["lookup4_warm_cached"] > 100
    assert "served, cold prompt (runtime)" in out and "served, cold prompt (lookup4)" in out
    assert len(list((tmp_path / "llm").glob("merged-*-q8_0.gguf"))) == 1
