"""Limits: per-client token-bucket rate limiting (429), request body size (413), and a bounded gate for LLM
work (fast 503 when full, never a pile-up), plus the matching Gradio queue settings.

All refusals are JSON ``{"error": str, ...}`` with ``Retry-After`` where waiting helps.
"""
from __future__ import annotations

import asyncio
import functools
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import MDIError
from ops.asgi import client_key, header, match_route_template, send_json

T = TypeVar("T")


# ------------------------------------------------------------------------------------------ rate limiting
class TokenBucketLimiter:
    """One token bucket per client key: ``rate`` tokens/s refill up to ``burst``. Thread-safe, bounded memory
    (least recently seen clients beyond ``max_clients`` are forgotten, i.e. start again with a full bucket)."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self.max_clients, self.clock = float(rate), float(burst), max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens. Returns 0.0 when allowed, else the seconds until enough tokens are back."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (cost - tokens) / self.rate
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimitMiddleware:
    """ASGI middleware: 429 + ``Retry-After`` (whole seconds, >= 1) when a client's bucket is empty."""

    def __init__(self, app: ASGIApp, *, limiter: TokenBucketLimiter, exempt: str | None = None,
                 trust_forwarded_for: bool = False, on_limited: Callable[[str], None] | None = None,
                 route_app: Any = None) -> None:
        self.app, self.limiter = app, limiter
        self.exempt = re.compile(exempt) if exempt else None
        self.trust_forwarded_for = trust_forwarded_for
        self.on_limited = on_limited
        self.route_app = route_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exempt and self.exempt.search(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        wait = self.limiter.acquire(client_key(scope, trust_forwarded_for=self.trust_forwarded_for))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        if self.on_limited is not None:
            self.on_limited(match_route_template(self.route_app, scope) if self.route_app else "<any>")
        await send_json(send, 429, {"error": "rate limit exceeded: too many requests from this client",
                                    "retry_after_s": retry}, [("Retry-After", str(retry))])


# ------------------------------------------------------------------------------------------ body size
class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """ASGI middleware: 413 JSON when ``Content-Length`` (or the streamed body) exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: str | None = None,
                 on_rejected: Callable[[str], None] | None = None, route_app: Any = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.exempt = re.compile(exempt) if exempt else None
        self.on_rejected = on_rejected
        self.route_app = route_app

    def _error(self) -> dict[str, Any]:
        return {"error": f"request body too large: the limit is {self.max_bytes} bytes", "max_bytes": self.max_bytes}

    def _count(self, scope: Scope) -> None:
        if self.on_rejected is not None:
            self.on_rejected(match_route_template(self.route_app, scope) if self.route_app else "<any>")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exempt and self.exempt.search(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await send_json(send, 400, {"error": "invalid Content-Length header"})
                return
            if too_big:
                self._count(scope)
                await send_json(send, 413, self._error())
                return
        received = 0
        started = exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            # the app may turn the aborted read into its own error (FastAPI answers 400): replace it with 413
            nonlocal started
            if message["type"] == "http.response.start":
                if started:
                    return
                started = True
                if exceeded:
                    self._count(scope)
                    await send_json(send, 413, self._error())
                    return
            elif exceeded:
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:  # pragma: no cover - already answered
                return
            started = True
            self._count(scope)
            await send_json(send, 413, self._error())


# ------------------------------------------------------------------------------------------ LLM gate
class GateFullError(MDIError):
    """The LLM gate is full (all slots busy and the waiting line full, or the wait timed out)."""

    def __init__(self, message: str, *, retry_after_s: int, reason: str) -> None:
        super().__init__(message, retry_after_s=retry_after_s, reason=reason)
        self.retry_after_s = retry_after_s
        self.reason = reason


class ConcurrencyGate:
    """Bounded concurrency for slow work (LLM generation) usable from async and sync code alike::

        async with gate:            # in an async endpoint
            ...
        with gate:                  # in a sync endpoint (FastAPI runs it in a worker thread)
            ...
        @gate.guard                 # decorator for sync or async functions
        def answer(...): ...

    At most ``max_concurrent`` holders run; at most ``max_waiting`` more wait (up to ``wait_timeout_s``).
    Anyone beyond that gets :class:`GateFullError` at once, so a burst never piles up threads or memory.
    ``install_ops`` maps the error to a 503 JSON with ``Retry-After``.
    """

    def __init__(self, max_concurrent: int, max_waiting: int = 0, *, wait_timeout_s: float = 20.0,
                 retry_after_s: int = 5, on_change: Callable[[int, int], None] | None = None,
                 on_reject: Callable[[str], None] | None = None) -> None:
        if max_concurrent < 1 or max_waiting < 0:
            raise ValueError("max_concurrent must be >= 1 and max_waiting >= 0")
        self.max_concurrent, self.max_waiting = max_concurrent, max_waiting
        self.wait_timeout_s, self.retry_after_s = wait_timeout_s, retry_after_s
        self._cond = threading.Condition()
        self._active = 0
        self._waiting = 0
        self._on_change, self._on_reject = on_change, on_reject

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return self._waiting

    def _notify(self) -> None:
        if self._on_change is not None:
            self._on_change(self._active, self._waiting)

    def _reject(self, reason: str) -> GateFullError:
        if self._on_reject is not None:
            self._on_reject(reason)
        what = "busy" if reason == "full" else "timed out waiting"
        return GateFullError(f"the assistant is {what}: {self._active} answers in progress; retry shortly",
                             retry_after_s=self.retry_after_s, reason=reason)

    def _try_enter(self) -> bool | None:
        """Take a slot (True), join the waiting line (False) or be refused (raises). Caller holds no lock."""
        with self._cond:
            if self._active < self.max_concurrent and self._waiting == 0:
                self._active += 1
                self._notify()
                return True
            if self._waiting >= self.max_waiting:
                raise self._reject("full")
            self._waiting += 1
            self._notify()
            return False

    def _leave_line(self, got_slot: bool) -> None:
        with self._cond:
            self._waiting -= 1
            if got_slot:
                self._active += 1
            self._notify()

    def release(self) -> None:
        with self._cond:
            self._active -= 1
            self._notify()
            self._cond.notify()

    # sync
    def acquire(self) -> None:
        if self._try_enter():
            return
        deadline = time.monotonic() + self.wait_timeout_s
        with self._cond:
            while self._active >= self.max_concurrent:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._waiting -= 1
                    self._notify()
                    raise self._reject("timeout")
                self._cond.wait(left)
            self._waiting -= 1
            self._active += 1
            self._notify()

    def __enter__(self) -> "ConcurrencyGate":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # async: never blocks the event loop; waits by polling the slot count (cross-thread safe)
    async def acquire_async(self) -> None:
        if self._try_enter():
            return
        deadline = time.monotonic() + self.wait_timeout_s
        delay = 0.005
        try:
            while True:
                with self._cond:
                    if self._active < self.max_concurrent:
                        self._waiting -= 1
                        self._active += 1
                        self._notify()
                        return
                if time.monotonic() >= deadline:
                    with self._cond:
                        self._waiting -= 1
                        self._notify()
                    raise self._reject("timeout")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
        except asyncio.CancelledError:
            with self._cond:
                self._waiting -= 1
                self._notify()
            raise

    async def __aenter__(self) -> "ConcurrencyGate":
        await self.acquire_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def guard(self, fn: Callable[..., T]) -> Callable[..., T]:
        """Decorator running ``fn`` (sync or async) inside the gate."""
        if asyncio.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await fn(*args, **kwargs)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> T:
            with self:
                return fn(*args, **kwargs)
        return sync_wrapper


# ------------------------------------------------------------------------------------------ Gradio queue
@dataclass(frozen=True)
class GradioQueueSettings:
    """Keyword arguments for ``demo.queue(**gradio_queue_kwargs(settings))``: the UI's LLM work is bounded
    like the REST path (``default_concurrency_limit`` runs at once, ``max_size`` wait, the rest are told the
    queue is full)."""

    default_concurrency_limit: int
    max_size: int

    def kwargs(self) -> dict[str, int]:
        return {"default_concurrency_limit": self.default_concurrency_limit, "max_size": self.max_size}


def gradio_queue_kwargs(settings: Any) -> dict[str, int]:
    """``{"default_concurrency_limit": ..., "max_size": ...}`` from :class:`~ops.settings.OpsSettings`."""
    return GradioQueueSettings(settings.gradio_concurrency_limit, settings.gradio_max_size).kwargs()



class GatePathsMiddleware:
    """ASGI middleware putting whole requests to ``paths`` (exact match, e.g. ``/answer_question``) through a
    :class:`ConcurrencyGate`, so the REST path's LLM work is bounded without touching the endpoint code. A full
    gate answers 503 JSON + ``Retry-After`` at once."""

    def __init__(self, app: ASGIApp, *, gate: ConcurrencyGate, paths: tuple[str, ...]) -> None:
        self.app, self.gate, self.paths = app, gate, frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        try:
            await self.gate.acquire_async()
        except GateFullError as exc:
            await send_json(send, 503, {"error": exc.message, "retry_after_s": exc.retry_after_s},
                            [("Retry-After", str(exc.retry_after_s))])
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.release()
