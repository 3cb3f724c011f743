"""REST API (FastAPI). The only place where domain errors become HTTP status codes:

* :class:`~core.errors.ValidationError` -> 400 ``{"error", "required_fields", "invalid_fields"}`` (non-JSON and
  non-object bodies included);
* :class:`~core.errors.ModelUnavailableError` -> 503 ``{"error"}`` + ``Retry-After`` (warming up / unavailable);
* anything else -> 500 ``{"error": "internal error"}`` (logged with its traceback).

Endpoints: ``POST /predict_discount``, ``POST /explain_discount``, ``POST /answer_question``, ``GET /health``,
``GET /ready``; OpenAPI docs at ``/docs``.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from core.errors import ModelUnavailableError, ValidationError
from serving.batching import PredictBatcher
from serving.runtime import Runtime
from tools.specs import ExplainDiscountArgs, PredictDiscountArgs

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


# ------------------------------------------------------------------------------------ documented shapes
class ErrorBody(BaseModel):
    error: str
    required_fields: list[str] = Field(default_factory=list)
    invalid_fields: dict[str, str] = Field(default_factory=dict)


class UnavailableBody(BaseModel):
    error: str


class DiscountRequest(BaseModel):
    """Body of /predict_discount and /explain_discount."""

    category: str = Field(description="Category path (A|B|C) or a leaf category name, e.g. 'SmartWatches'.")
    actual_price: float = Field(gt=0, description="List price in ₹.")
    rating: float = Field(ge=0, le=5, description="Average star rating, 0-5.")
    rating_count: int = Field(ge=0, description="Number of ratings.")
    product_name: str | None = Field(default=None, description="Optional product name.")


class PredictResponse(BaseModel):
    predicted_discount_percentage: float
    model_version: str


class Contribution(BaseModel):
    feature: str
    value: float


class ExplainResponse(PredictResponse):
    base_value: float
    contributions: list[Contribution]


class QuestionRequest(BaseModel):
    question: str = Field(min_length=1, description="The question, in plain language.")
    top_k: int = Field(default=5, ge=1, le=20, description="How many products to return as sources.")
    session_id: str | None = Field(default=None, max_length=128,
                                   description="Conversation id: follow-ups are resolved against its history.")


class Source(BaseModel):
    product_id: str
    product_name: str
    score: float | None = None
    discounted_price: float | None = None
    actual_price: float | None = None
    discount_percentage: float | None = None
    rating: float | None = None
    rating_count: int | None = None
    category: str | None = None


class ToolCallBody(BaseModel):
    name: str
    args: dict[str, Any]


class AnswerResponse(BaseModel):
    answer: str
    sources: list[Source]
    tool_calls: list[ToolCallBody]
    path: str = Field(description="'model' (the LLM's answer passed the grounding check) or 'fallback'.")
    grounded: bool
    refused: bool = False
    fallback_reason: str | None = None
    session_id: str | None = None


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


_ERRORS = {400: {"model": ErrorBody, "description": "Missing or malformed input"},
           503: {"model": UnavailableBody, "description": "Warming up or unavailable (see Retry-After)"}}


# ---------------------------------------------------------------------------------------------- helpers
async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or ValidationError (empty, too large, not JSON, not an object)."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ValidationError(f"request body is larger than {MAX_BODY_BYTES} bytes",
                              invalid_fields={"body": "too large"})
    if not raw.strip():
        raise ValidationError("request body is empty: send a JSON object", invalid_fields={"body": "empty"})
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValidationError("request body is not valid JSON", invalid_fields={"body": f"not JSON: {exc}"}) from exc
    if not isinstance(payload, dict):
        raise ValidationError("request body must be a JSON object",
                              invalid_fields={"body": f"got {type(payload).__name__}"})
    return payload


def parse_discount_payload(payload: dict[str, Any], model: type[PredictDiscountArgs] = PredictDiscountArgs):
    """Validate a discount body with the discount package's parser (numbers or numeric strings like "₹2,499";
    ValidationError naming every bad field)."""
    from tools.discount.service import parse_discount_request

    return parse_discount_request(payload, model)


def _is_unicode(text: str) -> bool:
    """False for strings holding lone surrogates (valid JSON escapes, but not encodable text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_question(payload: dict[str, Any], max_chars: int) -> QuestionRequest:
    """Validate an /answer_question body (400 for empty, over-long, wrong types)."""
    required, invalid = [], {}
    question = payload.get("question")
    if question is None:
        required.append("question")
    elif not isinstance(question, str):
        invalid["question"] = "must be a string"
    elif not question.strip():
        invalid["question"] = "must not be empty"
    elif len(question.strip()) > max_chars:
        invalid["question"] = f"at most {max_chars} characters"
    elif not _is_unicode(question):
        invalid["question"] = "must be valid Unicode text"
    top_k = payload.get("top_k", 5)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 20:
        invalid["top_k"] = "must be an integer from 1 to 20"
    session_id = payload.get("session_id")
    if session_id is not None and (not isinstance(session_id, str) or not 0 < len(session_id) <= 128
                                   or not _is_unicode(session_id)):
        invalid["session_id"] = "must be a string of 1-128 characters"
    unknown = sorted(set(payload) - {"question", "top_k", "session_id"})
    for name in unknown:
        invalid[name] = "unknown field"
    if required or invalid:
        raise ValidationError("invalid question request", required_fields=required, invalid_fields=invalid)
    return QuestionRequest(question=question.strip(), top_k=top_k, session_id=session_id)


def error_response(status: int, body: dict[str, Any], retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


# --------------------------------------------------------------------------------------------------- app
def install_error_handlers(app: FastAPI) -> None:
    """Translate domain errors to HTTP (the only place this happens)."""

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> JSONResponse:
        return error_response(400, {"error": exc.message, "required_fields": exc.required_fields,
                                    "invalid_fields": exc.invalid_fields})

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        invalid = {".".join(str(p) for p in e["loc"][1:]) or "body": e["msg"] for e in exc.errors()}
        return error_response(400, {"error": "invalid request", "required_fields": [], "invalid_fields": invalid})

    @app.exception_handler(ModelUnavailableError)
    async def _unavailable(_: Request, exc: ModelUnavailableError) -> JSONResponse:
        retry = int(exc.details.get("retry_after", 5))
        return error_response(503, {"error": exc.message}, retry_after=retry)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", exc)
        return error_response(500, {"error": "internal error"})


def add_routes(app: FastAPI, runtime: Runtime, *, max_question_chars: int = 1000) -> None:
    """The REST endpoints over ``runtime``."""

    batchers: dict[int, PredictBatcher] = {}

    def _batcher(service: Any) -> PredictBatcher:
        batcher = batchers.get(id(service))
        if batcher is None or batcher.service is not service:
            batchers.clear()
            batcher = batchers[id(service)] = PredictBatcher(service)
        return batcher

    @app.get("/health", tags=["ops"], summary="Liveness: the process is serving")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - runtime.started_at, 1)}

    @app.get("/ready", tags=["ops"], summary="Readiness: 200 with versions once model, index and LLM are loaded",
             responses={503: {"model": UnavailableBody, "description": "Warming up or a component is unavailable"}})
    async def ready() -> JSONResponse:
        info = runtime.readiness()
        if info["ready"]:
            return JSONResponse({k: v for k, v in info.items() if k != "retry_after"})
        body = {"error": info["reason"], **{k: v for k, v in info.items() if k != "retry_after"}}
        return error_response(503, body, retry_after=info["retry_after"])

    @app.post("/predict_discount", tags=["discount"], response_model=PredictResponse, responses=_ERRORS,
              openapi_extra=_body_doc(DiscountRequest), summary="Predict a product's discount percentage")
    async def predict_discount(request: Request) -> dict[str, Any]:
        args = parse_discount_payload(await read_json_object(request))
        (service,) = runtime.require("discount")
        result = await _batcher(service).predict(args)  # concurrent requests are scored together
        return {"predicted_discount_percentage": float(result["predicted_discount_percentage"]),
                "model_version": str(result.get("model_version", getattr(service, "version", "")))}

    @app.post("/explain_discount", tags=["discount"], response_model=ExplainResponse, responses=_ERRORS,
              openapi_extra=_body_doc(DiscountRequest), summary="Prediction plus its top-5 SHAP contributions")
    async def explain_discount(request: Request) -> dict[str, Any]:
        args = parse_discount_payload(await read_json_object(request), ExplainDiscountArgs)
        (service,) = runtime.require("discount")
        result = await run_in_threadpool(service.explain, args)
        return {"predicted_discount_percentage": float(result["predicted_discount_percentage"]),
                "model_version": str(result.get("model_version", getattr(service, "version", ""))),
                "base_value": float(result["base_value"]),
                "contributions": [{"feature": str(c["feature"]), "value": float(c["value"])}
                                  for c in result.get("contributions", [])[:5]]}

    @app.post("/answer_question", tags=["agent"], response_model=AnswerResponse, responses=_ERRORS,
              openapi_extra=_body_doc(QuestionRequest), summary="Ask the agent a question about the catalog")
    async def answer_question(request: Request) -> dict[str, Any]:
        body = parse_question(await read_json_object(request), max_question_chars)
        agent = runtime.agent()
        result = await run_in_threadpool(agent.answer, body.question, body.session_id, body.top_k)
        out = result.to_dict()
        return {k: out[k] for k in ("answer", "sources", "tool_calls", "path", "grounded", "refused",
                                    "fallback_reason", "session_id")}


def create_api(runtime: Runtime, *, title: str = "Marketing Data Intelligence", max_question_chars: int = 1000,
               lifespan: Any = None) -> FastAPI:
    """The FastAPI app with the REST endpoints and error translation (no UI)."""
    app = FastAPI(title=title, version="1.0", lifespan=lifespan,
                  description="Offline marketing assistant over an Amazon-style product catalog. "
                              "REST endpoints below; the Gradio UI is mounted at /ui.")
    app.state.runtime = runtime
    install_error_handlers(app)
    add_routes(app, runtime, max_question_chars=max_question_chars)
    return app
