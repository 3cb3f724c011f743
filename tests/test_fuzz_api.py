"""Fuzzing the app's OpenAPI schema (schemathesis + Hypothesis): no 5xx, and every 4xx is a JSON object with an
``error`` string. Positive (schema-valid) and negative (schema-violating) cases for every operation, plus
raw garbage bodies (not JSON, wrong content types, deep nesting, huge numbers) for the POST endpoints.

The app is the real one (``app.create_app`` + ``ops.install_ops``: REST layer, validation, agent, guards,
ops middleware) over small real stand-ins for the heavy models (tests/test_ops_support.py), so the run is
fast and every 5xx found is a bug in the serving code. ``MDI_FUZZ_EXAMPLES`` raises the example count.
"""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st

from tests.test_ops_support import KeywordSearch, RuleDiscount, ScriptedLLM, build_app, require_app

EXAMPLES = int(os.environ.get("MDI_FUZZ_EXAMPLES", "40"))
POST_PATHS = ("/predict_discount", "/explain_discount", "/answer_question")


@pytest.fixture(scope="module")
def served(demo_catalog):
    require_app()
    from fastapi.testclient import TestClient

    app, runtime = build_app(components={"catalog": demo_catalog, "search": KeywordSearch(demo_catalog),
                                         "discount": RuleDiscount(), "llm": ScriptedLLM()})
    with TestClient(app, raise_server_exceptions=False) as client:
        assert runtime.wait(30), runtime.readiness()
        yield app, client


def _check(status: int, headers, body: bytes, what: str) -> None:
    assert status < 500, f"{what} -> {status}: {body[:300]!r}"
    if 400 <= status < 500:
        content_type = headers.get("content-type", "")
        content_type = content_type[0] if isinstance(content_type, list) else content_type  # schemathesis: lists
        assert content_type.startswith("application/json"), f"{what} -> {status} not JSON"
        payload = json.loads(body)
        assert isinstance(payload, dict) and isinstance(payload.get("error"), str) and payload["error"], (
            f"{what} -> {status} without an 'error' string: {payload}")


def _operations(app):
    import schemathesis

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ops = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in ops}
    assert {f"POST {p}" for p in POST_PATHS} | {"GET /health", "GET /ready"} <= labels, labels
    return ops


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_openapi_operations_never_5xx_and_4xx_are_json(served, mode):
    from schemathesis import GenerationMode

    app, _client = served
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    seen: dict[str, set[int]] = {}
    for operation in _operations(app):
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=generation))
        def run(case):
            response = case.call()
            # run() is called inside this iteration, so the loop variable is the current operation
            seen.setdefault(operation.label, set()).add(response.status_code)  # noqa: B023
            _check(response.status_code, response.headers, response.content,
                   f"{mode} {operation.label} body={str(case.body)[:200]}")  # noqa: B023

        try:
            run()
        except Unsatisfiable:  # nothing to violate (e.g. GET /health has no parameters)
            assert generation is GenerationMode.NEGATIVE, operation.label
    if mode == "negative":  # invalid input was really produced and rejected with 400
        assert 400 in seen["POST /predict_discount"] and 400 in seen["POST /answer_question"], seen
    else:
        assert 200 in seen["POST /predict_discount"], seen


garbage_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                 max_leaves=20).map(lambda v: json.dumps(v).encode()),
    st.just(b"[" * 5000 + b"]" * 5000),
    st.just(b'{"category": "A", "actual_price": 1e999, "rating": 4, "rating_count": 1}'),
    st.just(b'{"question": "' + b"x" * 5000 + b'"}'),
    st.just(b'{"question": "\\u0000\\ud800 ignore"}'),
    st.just(b'{"question": "hi", "session_id": "\\udfff"}'),
    st.just(b'{"category": "\\ud800", "actual_price": 10, "rating": 4, "rating_count": 1}'),
    st.just(b'{"category": "A", "actual_price": Infinity, "rating": NaN, "rating_count": -0}'),
)


@settings(max_examples=EXAMPLES * 2, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(POST_PATHS), body=garbage_bodies,
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]))
def test_garbage_bodies_get_json_400s(served, path, body, content_type):
    _app, client = served
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(path, content=body, headers=headers)
    _check(response.status_code, response.headers, response.content, f"garbage {path} {body[:80]!r}")
