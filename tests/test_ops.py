"""ops: metrics, request context/logging, rate/body limits, LLM gate, install_ops on a small FastAPI app."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.logging import JsonFormatter, request_id_var
from ops import OpsSettings, install_ops
from ops.limits import ConcurrencyGate, GateFullError, TokenBucketLimiter, gradio_queue_kwargs
from ops.metrics import OpsMetrics


def _settings(**overrides) -> OpsSettings:
    base = dict(configure_logging=False, rate_limit_enabled=True, rate_limit_per_s=1000.0, rate_limit_burst=1000,
                drift_enabled=False, max_body_bytes=65536, llm_max_concurrent=2, llm_max_waiting=8)
    base.update(overrides)
    return OpsSettings(**base)


def _app(settings: OpsSettings, versions=None):
    app = FastAPI()
    seen_ids: list[str | None] = []

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict:
        seen_ids.append(request_id_var.get())
        logging.getLogger("test.handler").info("inside handler")
        return {"id": item_id}

    @app.post("/echo")
    async def echo(body: dict) -> dict:
        return body

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("kaput")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/answer_question")
    async def answer(body: dict) -> dict:  # gated by the middleware (llm_gate_paths), not in code
        await asyncio.sleep(0.3)
        return {"answer": "ok"}

    sub = FastAPI()

    @sub.get("/things/{name}")
    def thing(name: str) -> dict:
        return {"name": name}

    app.mount("/sub", sub)
    ops = install_ops(app, settings, versions=versions)

    @app.post("/slow")
    async def slow() -> dict:
        async with ops.llm_gate:
            await asyncio.sleep(0.3)
        return {"ok": True}

    return app, ops, seen_ids


def _metric(text: str, name: str, **labels) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


# ------------------------------------------------------------------------------------------ metrics
def test_metrics_use_route_templates_and_private_registries():
    app, ops, _ = _app(_settings(), versions=lambda: {"model": "xgb-1.2", "index": "abc123", "adapter": None})
    client = TestClient(app, raise_server_exceptions=False)
    for i in range(3):
        assert client.get(f"/items/{i}").status_code == 200
    assert client.get("/items/notanint").status_code == 422
    assert client.get("/sub/things/a").status_code == 200
    assert client.get("/nowhere").status_code == 404
    assert client.get("/boom").status_code == 500
    text = client.get("/metrics").text
    assert _metric(text, "mdi_http_requests_total", route="/items/{item_id}", status="200") == 3
    assert _metric(text, "mdi_http_requests_total", route="/items/{item_id}", status="422") == 1
    assert _metric(text, "mdi_http_requests_total", route="/sub/things/{name}", status="200") == 1
    assert _metric(text, "mdi_http_requests_total", route="<unmatched>", status="404") == 1
    assert _metric(text, "mdi_http_requests_total", route="/boom", status="500") == 1
    assert _metric(text, "mdi_http_errors_total", route="/boom", status_class="5xx") == 1
    assert _metric(text, "mdi_http_errors_total", route="/items/{item_id}", status_class="4xx") == 1
    assert _metric(text, "mdi_http_request_duration_seconds_count", route="/items/{item_id}") == 4
    assert "/items/1" not in text and "/nowhere" not in text  # raw paths never become labels
    assert _metric(text, "mdi_versions_info", model="xgb-1.2", index="abc123", adapter="None") == 1
    # a second app has its own registry: nothing leaks between them
    app2, _, _ = _app(_settings())
    text2 = TestClient(app2).get("/metrics").text
    assert _metric(text2, "mdi_http_requests_total", route="/items/{item_id}", status="200") is None


def test_domain_recorders_fold_unknown_labels():
    m = OpsMetrics("t")
    m.record_agent_path("model")
    m.record_agent_path("fallback")
    m.record_agent_path("fallback")
    m.record_agent_path("something-new")
    m.record_refusal("injection")
    m.record_refusal("made up reason")
    m.record_prediction("explain_discount")
    m.record_llm_speed(12.5, tokens=40)
    m.record_llm_speed(30.0)
    assert m.sample("t_agent_answers_total", {"path": "fallback"}) == 2
    assert m.sample("t_agent_answers_total", {"path": "error"}) == 1
    assert m.sample("t_guard_refusals_total", {"reason": "other"}) == 1
    assert m.sample("t_predictions_total", {"endpoint": "explain_discount"}) == 1
    assert m.sample("t_llm_tokens_per_second_count") == 2
    assert m.sample("t_llm_tokens_per_second_sum") == 42.5
    assert m.sample("t_llm_tokens_per_second_last") == 30.0
    assert m.sample("t_llm_generated_tokens_total") == 40


def test_failing_versions_callback_does_not_break_metrics():
    def broken():
        raise RuntimeError("no model yet")

    app, _, _ = _app(_settings(), versions=broken)
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200
    assert 'error="RuntimeError"' in response.text


# ------------------------------------------------------------------------------------------ logging
def test_request_id_is_propagated_echoed_and_logged_as_json():
    app, _, seen = _app(_settings())
    stream_records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            stream_records.append(JsonFormatter().format(record))

    handler = Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        client = TestClient(app)
        r1 = client.get("/items/7", headers={"X-Request-ID": "abc-123"})
        r2 = client.get("/items/8", headers={"X-Request-ID": "bad id\nINJECTED"})
        client.post("/echo", json={"secret_prompt": "TOP-SECRET-PROMPT"})
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert r1.headers["x-request-id"] == "abc-123"
    assert seen[0] == "abc-123"
    assert r2.headers["x-request-id"] != "bad id\nINJECTED" and len(r2.headers["x-request-id"]) == 32
    lines = [json.loads(line) for line in stream_records]
    handler_line = next(rec for rec in lines if rec["msg"] == "inside handler")
    assert handler_line["request_id"] == "abc-123"
    access = [rec for rec in lines if rec["logger"] == "mdi.access"]
    assert len(access) == 3
    first = access[0]
    assert first["request_id"] == "abc-123"
    assert (first["method"], first["route"], first["status"]) == ("GET", "/items/{item_id}", 200)
    assert first["duration_ms"] >= 0
    assert not any("TOP-SECRET-PROMPT" in line for line in stream_records)
    assert not any("INJECTED" in line for line in stream_records)


# ------------------------------------------------------------------------------------------ limits
def test_token_bucket_refills_at_rate():
    now = [0.0]
    bucket = TokenBucketLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.acquire("a")
    assert wait == pytest.approx(0.5)
    assert bucket.acquire("b") == 0.0  # other clients are independent
    now[0] += 0.5
    assert bucket.acquire("a") == 0.0
    assert bucket.acquire("a") > 0


def test_token_bucket_memory_is_bounded():
    bucket = TokenBucketLimiter(rate=1.0, burst=1, max_clients=100)
    for i in range(1000):
        bucket.acquire(f"client-{i}")
    assert len(bucket) == 100


def test_rate_limit_429_with_retry_after_and_exemptions():
    app, _, _ = _app(_settings(rate_limit_per_s=0.5, rate_limit_burst=2))
    client = TestClient(app)
    codes = [client.get("/items/1").status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    limited = client.get("/items/1")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/json"
    assert "rate limit" in limited.json()["error"]
    assert limited.headers["x-request-id"]
    # probes and metrics are never limited
    assert all(client.get("/health").status_code == 200 for _ in range(5))
    text = client.get("/metrics").text
    assert _metric(text, "mdi_rate_limited_total", route="/items/{item_id}") == 3
    assert _metric(text, "mdi_http_requests_total", route="/items/{item_id}", status="429") == 3


def test_rate_limit_keys_by_forwarded_for_only_when_trusted():
    trusted, _, _ = _app(_settings(rate_limit_per_s=0.1, rate_limit_burst=1, trust_forwarded_for=True))
    c = TestClient(trusted)
    assert c.get("/items/1", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 200
    assert c.get("/items/1", headers={"X-Forwarded-For": "10.0.0.2, 172.16.0.1"}).status_code == 200
    assert c.get("/items/1", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 429
    untrusted, _, _ = _app(_settings(rate_limit_per_s=0.1, rate_limit_burst=1))
    c = TestClient(untrusted)
    assert c.get("/items/1", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 200
    assert c.get("/items/1", headers={"X-Forwarded-For": "10.0.0.2"}).status_code == 429


def test_body_size_limit_413_json():
    app, _, _ = _app(_settings(max_body_bytes=100))
    client = TestClient(app)
    assert client.post("/echo", json={"a": "x" * 20}).status_code == 200
    big = client.post("/echo", json={"a": "x" * 500})
    assert big.status_code == 413
    assert "too large" in big.json()["error"] and big.json()["max_bytes"] == 100

    def chunks():  # no Content-Length: the streamed body is counted
        for _ in range(10):
            yield b'{"a": "' + b"y" * 30 + b'"}'

    streamed = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert _metric(client.get("/metrics").text, "mdi_body_too_large_total", route="/echo") == 2


def test_gate_rejects_fast_when_full_and_counts():
    app, ops, _ = _app(_settings(llm_max_concurrent=1, llm_max_waiting=1, llm_retry_after_s=3))
    client = TestClient(app)
    results: list[tuple[int, float, dict]] = []

    def call():
        start = time.perf_counter()
        r = client.post("/slow")
        results.append((r.status_code, time.perf_counter() - start, dict(r.headers)))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(code for code, _, _ in results)
    assert codes.count(200) == 2, codes  # one running + one waiting
    assert codes.count(503) == 3
    for code, seconds, headers in results:
        if code == 503:
            assert seconds < 0.25  # turned away at once, not after the 0.3 s of work
            assert headers["retry-after"] == "3"
    assert ops.llm_gate.active == 0 and ops.llm_gate.waiting == 0
    text = client.get("/metrics").text
    assert _metric(text, "mdi_llm_gate_rejections_total", reason="full") == 3
    assert _metric(text, "mdi_http_requests_total", route="/slow", status="503") == 3


def test_gate_middleware_bounds_answer_question_without_endpoint_changes():
    app, ops, _ = _app(_settings(llm_max_concurrent=1, llm_max_waiting=0))
    client = TestClient(app)
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(client.post("/answer_question", json={}).status_code))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 503, 503]
    assert client.get("/items/1").status_code == 200  # other routes are not gated
    assert ops.llm_gate.active == 0
    assert _metric(client.get("/metrics").text, "mdi_http_requests_total", route="/answer_question",
                   status="503") == 2


def test_gate_sync_timeout_and_decorator():
    gate = ConcurrencyGate(1, 2, wait_timeout_s=0.1)
    calls = []

    @gate.guard
    def work(x):
        calls.append(x)
        return x * 2

    assert work(3) == 6
    gate.acquire()
    try:
        start = time.perf_counter()
        with pytest.raises(GateFullError) as err:
            with gate:
                pass
        assert err.value.reason == "timeout" and time.perf_counter() - start < 1
    finally:
        gate.release()
    assert gate.active == 0 and gate.waiting == 0


def test_gate_async_waiter_gets_slot_and_cancellation_frees_line():
    async def scenario():
        gate = ConcurrencyGate(1, 1, wait_timeout_s=2)
        order = []

        async def job(name, hold):
            async with gate:
                order.append(name)
                await asyncio.sleep(hold)

        first = asyncio.create_task(job("a", 0.05))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(job("b", 0))
        await asyncio.gather(first, second)
        assert order == ["a", "b"]
        # a cancelled waiter leaves the line
        await gate.acquire_async()
        waiter = asyncio.create_task(gate.acquire_async())
        await asyncio.sleep(0.02)
        assert gate.waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert gate.waiting == 0
        gate.release()
        assert gate.active == 0

    asyncio.run(scenario())


def test_gradio_queue_settings_from_env(monkeypatch):
    from core.settings import load_settings

    monkeypatch.setenv("MDI_OPS_GRADIO_CONCURRENCY_LIMIT", "3")
    monkeypatch.setenv("MDI_OPS_GRADIO_MAX_SIZE", "20")
    settings = load_settings(OpsSettings, [], log_start=False)
    assert gradio_queue_kwargs(settings) == {"default_concurrency_limit": 3, "max_size": 20}


def test_admin_token_is_required_when_set_and_redacted():
    settings = _settings(drift_enabled=True, admin_token="s3cret")
    app, _, _ = _app(settings)
    client = TestClient(app)
    assert client.get("/admin/drift").status_code == 401
    assert client.get("/admin/drift", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/admin/drift", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["status"] == "no_reference"
    assert settings.describe()["admin_token"] == "***"


def test_agent_metrics_bridge():
    from agent.metrics import AgentMetrics

    m = OpsMetrics("b")
    agent_metrics = AgentMetrics()
    agent_metrics.add_listener(m.agent_listener)
    agent_metrics.record_answer("model", None, False, 1.0)
    agent_metrics.record_answer("fallback", "ungrounded", False, 1.0)
    agent_metrics.record_refusal("secrets")
    agent_metrics.record_answer("fallback", None, True, 0.1)
    agent_metrics.record_tool("search_products", "model")
    assert m.sample("b_agent_answers_total", {"path": "model"}) == 1
    assert m.sample("b_agent_answers_total", {"path": "fallback"}) == 1
    assert m.sample("b_agent_answers_total", {"path": "refused"}) == 1
    assert m.sample("b_guard_refusals_total", {"reason": "secrets"}) == 1


def test_alert_rules_use_existing_metric_names():
    import re as _re

    import yaml

    from core.settings import REPO_ROOT
    from ops.drift import DriftMonitor

    app, ops, _ = _app(_settings(drift_enabled=True))
    client = TestClient(app)
    client.get("/items/1")
    client.get("/nowhere")
    ops.metrics.record_agent_path("model")
    ops.metrics.gate_rejections.labels("full").inc()
    names = {s.name for fam in text_string_to_metric_families(client.get("/metrics").text) for s in fam.samples}
    names |= {"mdi_input_drift"}  # emitted once the drift window is full (tested in test_ops_drift)
    assert isinstance(ops.drift, DriftMonitor)
    rules = yaml.safe_load((REPO_ROOT / "deploy" / "alerts.yml").read_text())
    used = {m for g in rules["groups"] for r in g["rules"] for m in _re.findall(r"\bmdi_[a-z_]+", r["expr"])}
    assert used and used <= names, used - names


def test_llm_speed_callback_records_tokens_per_second():
    from tests.test_ops_support import ScriptedLLM

    from ops.llm_speed import LLMSpeedCallback

    m = OpsMetrics("s")
    llm = ScriptedLLM(text="one two three four five six", callbacks=[LLMSpeedCallback(m)])
    chunks = list(llm.stream("hello"))
    assert len([c for c in chunks if c.content]) == 6
    llm.invoke("again")  # non-streamed path counts too
    assert m.sample("s_llm_tokens_per_second_count") == 2
    assert m.sample("s_llm_generated_tokens_total") >= 12
    assert m.sample("s_llm_tokens_per_second_last") > 0
    broken = ScriptedLLM(mode="raise", callbacks=[LLMSpeedCallback(m)])
    with pytest.raises(RuntimeError):
        broken.invoke("x")
    assert m.sample("s_llm_tokens_per_second_count") == 2  # failed calls record nothing
