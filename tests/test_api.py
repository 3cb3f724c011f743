"""REST contract: every status code of every endpoint, with fake components (TestClient, no UI)."""
from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from agent.fakes import FormulaDiscount, KeywordSearch, ScriptedChatModel
from agent.protocol import format_tool_call
from app import AppSettings, create_app
from core.errors import ArtifactError

DISCOUNT_BODY = {"category": "SmartWatches", "actual_price": 2499, "rating": 4.1, "rating_count": 3200}


def _llm():
    def script(messages):
        last = str(messages[-1].content)
        if last.startswith("<tool_response"):
            return "From the catalog: " + last.split("\n")[1]
        return format_tool_call("search_products", {"query": last})
    return ScriptedChatModel(script=script)


@pytest.fixture(scope="module")
def components(demo_catalog):
    return {"catalog": demo_catalog, "discount": FormulaDiscount(), "search": KeywordSearch(demo_catalog.frame),
            "llm": _llm()}


@pytest.fixture(scope="module")
def client(components):
    app = create_app(AppSettings(agent_max_input_chars=300), components=components, ui=False)
    with TestClient(app) as c:
        yield c


def _assert_400(resp, *, required=None, invalid=None):
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert set(body) == {"error", "required_fields", "invalid_fields"} and body["error"]
    if required is not None:
        assert set(required) <= set(body["required_fields"])
    if invalid is not None:
        assert set(invalid) <= set(body["invalid_fields"])
    return body


# ------------------------------------------------------------------------------------------ happy paths
def test_health_ready_docs(client):
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["versions"]["discount"] == "formula-fake-1"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/predict_discount", "/explain_discount", "/answer_question", "/health", "/ready"} <= set(paths)
    schema = paths["/predict_discount"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"category", "actual_price", "rating", "rating_count"}


def test_predict_and_explain(client):
    r = client.post("/predict_discount", json=DISCOUNT_BODY)
    assert r.status_code == 200
    expected = FormulaDiscount().predict(__import__("tools.specs", fromlist=["x"]).PredictDiscountArgs(**DISCOUNT_BODY))
    assert r.json() == {"predicted_discount_percentage": expected["predicted_discount_percentage"],
                        "model_version": "formula-fake-1"}
    r = client.post("/explain_discount", json={**DISCOUNT_BODY, "product_name": "Auralis Plus 950"})
    body = r.json()
    assert r.status_code == 200 and set(body) == {"predicted_discount_percentage", "model_version", "base_value",
                                                  "contributions"}
    assert 1 <= len(body["contributions"]) <= 5
    assert body["base_value"] + sum(c["value"] for c in body["contributions"]) == pytest.approx(
        body["predicted_discount_percentage"], abs=0.05)


def test_answer_question_shape(client):
    r = client.post("/answer_question", json={"question": "Auralis smartwatch with calling", "top_k": 3,
                                              "session_id": "abc"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"answer", "sources", "tool_calls", "path", "grounded"} <= set(body)
    assert body["path"] in ("model", "fallback") and isinstance(body["grounded"], bool)
    assert 1 <= len(body["sources"]) <= 3
    assert {"product_id", "product_name", "score", "discounted_price", "actual_price", "rating"} <= set(body["sources"][0])
    assert body["tool_calls"][0]["name"] == "search_products" and body["tool_calls"][0]["args"]["top_k"] == 3


# ------------------------------------------------------------------------------------------------- 400s
@pytest.mark.parametrize("path", ["/predict_discount", "/explain_discount"])
def test_discount_400s(client, path):
    body = _assert_400(client.post(path, json={"category": "SmartWatches"}),
                       required=["actual_price", "rating", "rating_count"])
    assert {"actual_price", "rating", "rating_count"} <= set(body["invalid_fields"])  # each missing one named
    assert "category" not in body["invalid_fields"]
    _assert_400(client.post(path, json={**DISCOUNT_BODY, "rating": 7, "actual_price": "cheap"}),
                invalid=["rating", "actual_price"])
    _assert_400(client.post(path, content=b"{not json", headers={"content-type": "application/json"}),
                invalid=["body"])
    _assert_400(client.post(path, content=b"category=x", headers={"content-type": "application/x-www-form-urlencoded"}),
                invalid=["body"])
    _assert_400(client.post(path, json=[DISCOUNT_BODY]), invalid=["body"])
    _assert_400(client.post(path, content=b""), invalid=["body"])
    _assert_400(client.post(path, json={**DISCOUNT_BODY, "colour": "red"}), invalid=["colour"])


@pytest.mark.parametrize("body, required, invalid", [
    ({}, ["question"], []),
    ({"question": "kettles", "colour": "red"}, [], ["colour"]),
    ({"question": ""}, [], ["question"]),
    ({"question": "   "}, [], ["question"]),
    ({"question": "x" * 301}, [], ["question"]),
    ({"question": 42}, [], ["question"]),
    ({"question": "kettles", "top_k": 0}, [], ["top_k"]),
    ({"question": "kettles", "top_k": "five"}, [], ["top_k"]),
    ({"question": "kettles", "session_id": ""}, [], ["session_id"]),
])
def test_answer_question_400s(client, body, required, invalid):
    _assert_400(client.post("/answer_question", json=body), required=required, invalid=invalid)


def test_answer_question_non_json(client):
    _assert_400(client.post("/answer_question", content=b"what are the best kettles?"), invalid=["body"])


# ------------------------------------------------------------------------------------------------- 503s
def test_warming_up_answers_503_with_retry_after(components):
    release = threading.Event()

    def slow_discount(_rt):
        release.wait(10)
        return FormulaDiscount()

    comps = {k: v for k, v in components.items() if k != "discount"}
    app = create_app(AppSettings(), components=comps, loaders={"discount": slow_discount}, ui=False)
    try:
        with TestClient(app) as c:
            r = c.get("/ready")
            assert r.status_code == 503 and r.headers["Retry-After"] == "5"
            assert r.json()["status"] == "warming_up" and "warming up" in r.json()["error"]
            for path in ("/predict_discount", "/explain_discount"):
                r = c.post(path, json=DISCOUNT_BODY)
                assert r.status_code == 503 and r.json() == {"error": "warming up: the discount model is loading"}
                assert r.headers["Retry-After"] == "5"
            _assert_400(c.post("/predict_discount", content=b"nope"))  # input is still checked first
            assert c.post("/answer_question", json={"question": "kettles"}).status_code == 200  # others work
            assert c.get("/health").status_code == 200
            release.set()
            app.state.runtime.wait(5)
            assert c.get("/ready").status_code == 200
            assert c.post("/predict_discount", json=DISCOUNT_BODY).status_code == 200
    finally:
        release.set()


def test_missing_artifacts_answer_503_with_reason(components, tmp_path):
    def missing(_rt):
        raise ArtifactError(f"discount_model artifact not found: {tmp_path} does not exist")

    def broken_index(_rt):
        raise ArtifactError("retrieval index file faiss.index fails its checksum (tampered or truncated); rebuild it")

    comps = {"catalog": components["catalog"], "llm": components["llm"]}
    app = create_app(AppSettings(), components=comps, loaders={"discount": missing, "search": broken_index}, ui=False)
    with TestClient(app) as c:
        app.state.runtime.wait(5)
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["status"] == "unavailable" and r.headers["Retry-After"] == "60"
        assert "does not exist" in r.json()["error"] and "checksum" in r.json()["error"]
        r = c.post("/predict_discount", json=DISCOUNT_BODY)
        assert r.status_code == 503 and "build_artifacts" in r.json()["error"]
        r = c.post("/answer_question", json={"question": "kettles"})
        assert r.status_code == 503 and "product search index is unavailable" in r.json()["error"]
        assert c.get("/health").status_code == 200


def test_llm_not_loaded_answer_question_503(components):
    comps = {k: v for k, v in components.items() if k != "llm"}

    def no_llm(_rt):
        raise ModuleNotFoundError("No module named 'llama_cpp'")

    app = create_app(AppSettings(), components=comps, loaders={"llm": no_llm}, ui=False)
    with TestClient(app) as c:
        app.state.runtime.wait(5)
        r = c.post("/answer_question", json={"question": "kettles"})
        assert r.status_code == 503 and "language model" in r.json()["error"] and "Retry-After" in r.headers
        assert c.post("/predict_discount", json=DISCOUNT_BODY).status_code == 200


def test_unexpected_error_is_500_json(components):
    class Exploding(FormulaDiscount):
        def predict(self, args):
            raise RuntimeError("boom")

    app = create_app(AppSettings(), components={**components, "discount": Exploding()}, ui=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/predict_discount", json=DISCOUNT_BODY)
        assert r.status_code == 500 and r.json() == {"error": "internal error"}
