"""Settings of the hardening layer (env prefix ``MDI_OPS_``, e.g. ``MDI_OPS_RATE_LIMIT_PER_S=50``)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from core.settings import BaseAppSettings

# Paths never rate limited: probes, metrics, docs, and the static files a browser loads for the Gradio UI
# (a single page load fetches dozens of them). Matched with ``re.search`` against the request path.
DEFAULT_RATE_LIMIT_EXEMPT = (
    r"^/(health|ready|metrics)/?$"
    r"|^/(docs|redoc|openapi\.json)"
    r"|/(assets|static|svelte|_app)/"
    r"|/gradio_api/(file=|heartbeat|queue/data|info|upload_progress|startup-events)"
    r"|\.(js|mjs|css|png|jpe?g|svg|ico|woff2?|ttf|map)$"
    r"|/(config|theme\.css|manifest\.json|favicon\.ico)$"
)


class OpsSettings(BaseAppSettings):
    """Observability, limits and drift settings. All have production-sane defaults."""

    model_config = SettingsConfigDict(**{**BaseAppSettings.model_config, "env_prefix": "MDI_OPS_"})

    # logging
    configure_logging: bool = Field(True, description="install_ops calls core.logging.setup_logging")
    json_logs: bool = Field(True, description="one JSON object per log line on stdout")
    access_log: bool = Field(True, description="one INFO line per request (method, route, status, duration)")
    # metrics
    metrics_path: str = "/metrics"
    metrics_namespace: str = "mdi"
    # rate limiting (token bucket per client)
    rate_limit_enabled: bool = True
    rate_limit_per_s: float = Field(20.0, gt=0, description="tokens refilled per second per client")
    rate_limit_burst: int = Field(40, ge=1, description="bucket size: requests a client may burst")
    rate_limit_exempt: str = Field(DEFAULT_RATE_LIMIT_EXEMPT, description="regex of paths never limited")
    rate_limit_max_clients: int = Field(10_000, ge=1, description="buckets kept (least recently used evicted)")
    trust_forwarded_for: bool = Field(
        False, description="key clients by the first X-Forwarded-For address (only behind a trusted proxy)")
    # request size
    max_body_bytes: int = Field(64 * 1024, ge=1, description="larger request bodies get 413")
    body_limit_exempt: str = Field(r"/gradio_api/upload", description="regex of paths with no body limit")
    # LLM work: bounded concurrency for the REST path, and the matching Gradio queue
    llm_max_concurrent: int = Field(2, ge=1, description="LLM generations at once (one per core is sane)")
    llm_max_waiting: int = Field(8, ge=0, description="requests allowed to wait for a slot; more get 503")
    llm_wait_timeout_s: float = Field(20.0, gt=0, description="a waiter gives up (503) after this long")
    llm_retry_after_s: int = Field(5, ge=1, description="Retry-After sent with the gate's 503")
    llm_gate_paths: list[str] = Field(["/answer_question"],
                                      description="POST paths whose requests go through the LLM gate")
    gradio_concurrency_limit: int = Field(2, ge=1, description="queue(default_concurrency_limit=...)")
    gradio_max_size: int = Field(16, ge=1, description="queue(max_size=...): more waiting users are turned away")
    # drift
    drift_enabled: bool = True
    prediction_paths: dict[str, str] = Field(
        {"/predict_discount": "predict_discount", "/explain_discount": "explain_discount"},
        description="POST paths whose 2xx request bodies are counted as predictions and fed to the drift window")
    drift_model_dir: Path | None = Field(
        None, description="discount model artifact folder whose manifest holds metadata.input_distribution")
    drift_window: int = Field(1000, ge=10, description="live prediction requests kept in the sliding window")
    drift_min_samples: int = Field(100, ge=1, description="no drift figures before this many requests")
    drift_check_every: int = Field(100, ge=1, description="re-evaluate (and maybe warn) every N requests")
    drift_psi_threshold: float = Field(0.2, gt=0, description="PSI above this is significant drift")
    drift_share_threshold: float = Field(
        0.2, gt=0, description="category total-variation distance above this is significant")
    # admin endpoints
    admin_path: str = "/admin/drift"
    admin_token: str | None = Field(
        None, description="when set, /admin/* needs 'Authorization: Bearer <token>' (never logged)")

    def describe(self) -> dict[str, object]:
        out = super().describe()
        if out.get("admin_token"):
            out["admin_token"] = "***"
        return out
