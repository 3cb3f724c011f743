"""Production hardening: metrics, request logging, limits, LLM gate, drift. One entry point::

    from ops import OpsSettings, install_ops
    ops = install_ops(app, load_settings(OpsSettings), versions=lambda: {"model": "...", "index": "..."})
    runtime.metrics.add_listener(ops.metrics.agent_listener)                  # agent paths, refusals
    demo.queue(**ops.gradio_queue_kwargs())                                    # Gradio UI

POST /answer_question goes through ``ops.llm_gate`` and 2xx /predict_discount and /explain_discount bodies are
counted and fed to the drift window by middleware (settings ``llm_gate_paths``, ``prediction_paths``), so the
endpoints need no change; other LLM work can use ``async with ops.llm_gate:`` / ``with ops.llm_gate:``.

Nothing heavy is imported here; :func:`install_ops` only touches the app it is given.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from ops.settings import OpsSettings

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

    from ops.drift import DriftMonitor
    from ops.limits import ConcurrencyGate
    from ops.metrics import OpsMetrics

__all__ = ["Ops", "OpsSettings", "install_ops"]


class Ops:
    """What :func:`install_ops` returns: ``.metrics``, ``.llm_gate``, ``.drift`` and ``.settings``."""

    def __init__(self, settings: OpsSettings, metrics: "OpsMetrics", llm_gate: "ConcurrencyGate",
                 drift: "DriftMonitor | None") -> None:
        self.settings = settings
        self.metrics = metrics
        self.llm_gate = llm_gate
        self.drift = drift

    def record_prediction(self, args: Mapping[str, Any] | Any, endpoint: str = "predict_discount") -> None:
        """Count a served prediction and feed its inputs to the drift window (call after a 200)."""
        self.metrics.record_prediction(endpoint)
        if self.drift is not None:
            self.drift.record(args)

    def gradio_queue_kwargs(self) -> dict[str, int]:
        from ops.limits import gradio_queue_kwargs

        return gradio_queue_kwargs(self.settings)


def install_ops(app: "FastAPI", settings: OpsSettings | None = None, *,
                versions: Callable[[], Mapping[str, Any]] | None = None,
                category_resolver: Callable[[str], str | None] | None = None,
                drift_reference: Any = None) -> Ops:
    """Add request context + metrics middleware, body limit, rate limiter, ``/metrics``, ``/admin/drift`` and
    the 503 handler of the LLM gate to ``app``; return the :class:`Ops` handle.

    ``versions()`` is called at scrape time for the ``mdi_versions_info`` labels. ``category_resolver`` maps a
    leaf category name to its ``cat_0`` for drift. ``drift_reference`` overrides the training distribution
    (an :class:`~ops.drift.InputDistribution` or a callable returning one); by default it is read lazily from
    ``settings.drift_model_dir``'s manifest. Call before the app starts serving.
    """
    from core.logging import setup_logging
    from ops.drift import DriftMonitor, load_reference
    from ops.limits import (BodySizeLimitMiddleware, ConcurrencyGate, GatePathsMiddleware, RateLimitMiddleware,
                            TokenBucketLimiter)
    from ops.logging import RequestContextMiddleware
    from ops.metrics import OpsMetrics
    from ops.routes import add_routes
    from ops.tap import PredictionTapMiddleware

    settings = settings or OpsSettings()
    if settings.configure_logging:
        setup_logging(settings.log_level, json_logs=settings.json_logs)
    metrics = OpsMetrics(settings.metrics_namespace, versions=versions)

    def gate_changed(active: int, waiting: int) -> None:
        metrics.gate_in_use.set(active)
        metrics.gate_waiting.set(waiting)

    gate = ConcurrencyGate(settings.llm_max_concurrent, settings.llm_max_waiting,
                           wait_timeout_s=settings.llm_wait_timeout_s, retry_after_s=settings.llm_retry_after_s,
                           on_change=gate_changed,
                           on_reject=lambda reason: metrics.gate_rejections.labels(reason).inc())

    drift: DriftMonitor | None = None
    if settings.drift_enabled:
        reference = drift_reference
        if reference is None and settings.drift_model_dir is not None:
            model_dir = settings.drift_model_dir
            reference = lambda: load_reference(model_dir)  # noqa: E731 - lazy: the model may be built later
        drift = DriftMonitor(reference, window=settings.drift_window, min_samples=settings.drift_min_samples,
                             check_every=settings.drift_check_every, psi_threshold=settings.drift_psi_threshold,
                             share_threshold=settings.drift_share_threshold, category_resolver=category_resolver,
                             on_alert=lambda feature: metrics.drift_alerts.labels(feature).inc())
        metrics.add_gauge_callback("input_drift", "Discount model input drift over the live window "
                                   "(statistic: psi, total_variation, significant)", ["feature", "statistic"],
                                   drift.gauges)

    add_routes(app, settings, metrics, drift)

    ops = Ops(settings, metrics, gate, drift)
    app.state.ops = ops

    # ---- middleware (added last = outermost): context/metrics -> body limit -> rate limit -> LLM gate ->
    #      prediction tap -> app
    if settings.prediction_paths:
        app.add_middleware(PredictionTapMiddleware, paths=settings.prediction_paths,
                           on_prediction=lambda body, label: ops.record_prediction(body, label),
                           max_bytes=settings.max_body_bytes)
    if settings.llm_gate_paths:
        app.add_middleware(GatePathsMiddleware, gate=gate, paths=tuple(settings.llm_gate_paths))
    if settings.rate_limit_enabled:
        limiter = TokenBucketLimiter(settings.rate_limit_per_s, settings.rate_limit_burst,
                                     max_clients=settings.rate_limit_max_clients)
        app.add_middleware(RateLimitMiddleware, limiter=limiter, exempt=settings.rate_limit_exempt,
                           trust_forwarded_for=settings.trust_forwarded_for,
                           on_limited=lambda route: metrics.rate_limited.labels(route).inc(), route_app=app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, exempt=settings.body_limit_exempt,
                       on_rejected=lambda route: metrics.body_too_large.labels(route).inc(), route_app=app)
    app.add_middleware(RequestContextMiddleware, observe=metrics.observe_request,
                       in_progress=lambda delta: metrics.in_progress.inc(delta),
                       access_log_enabled=settings.access_log, skip_log_paths=(settings.metrics_path, "/health"),
                       route_app=app)
    return ops
