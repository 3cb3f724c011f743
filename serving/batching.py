"""Opportunistic micro-batching of discount predictions.

Scoring one row costs about as much as scoring dozens (pandas feature building and the XGBoost call dominate),
so concurrent ``/predict_discount`` requests are gathered while the previous batch runs and scored together with
``DiscountService.predict_frame``. No request ever waits for a batch to fill: an idle server scores a lone
request at once (batch of 1, through the one-row ``predict``), a busy one scores everything that queued
meanwhile. Must be used from one event loop (the server's).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import pandas as pd
from fastapi.concurrency import run_in_threadpool

from tools.specs import PredictDiscountArgs

log = logging.getLogger(__name__)


class PredictBatcher:
    """``await batcher.predict(args)`` == ``service.predict(args)``, batched across concurrent callers."""

    def __init__(self, service: Any, max_batch: int = 64) -> None:
        self.service = service
        self.max_batch = max_batch
        self._queue: list[tuple[PredictDiscountArgs, asyncio.Future]] = []
        self._running = False
        self.batches = 0
        self.items = 0

    @property
    def batched(self) -> bool:
        return callable(getattr(self.service, "predict_frame", None))

    async def predict(self, args: PredictDiscountArgs) -> dict[str, Any]:
        if not self.batched:
            return await run_in_threadpool(self.service.predict, args)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append((args, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
                await self._score(batch)
        finally:
            self._running = False

    async def _score(self, batch: list[tuple[PredictDiscountArgs, asyncio.Future]]) -> None:
        self.batches += 1
        self.items += len(batch)
        if len(batch) == 1:  # a lone request: the one-row path skips building and validating a frame (~1 ms)
            await self._one_by_one(batch)
            return
        frame = pd.DataFrame([args.model_dump() for args, _ in batch])
        try:
            out = await run_in_threadpool(self.service.predict_frame, frame)
            values = [float(v) for v in out["predicted_discount_percentage"]]
        except Exception:  # noqa: BLE001 - isolate the failing request: score one by one
            log.debug("batch of %d failed; scoring one by one", len(batch), exc_info=True)
            await self._one_by_one(batch)
            return
        version = str(getattr(self.service, "version", ""))
        for (_, future), value in zip(batch, values):
            if not future.done():
                future.set_result({"predicted_discount_percentage": round(value, 2), "model_version": version})

    async def _one_by_one(self, batch: list[tuple[PredictDiscountArgs, asyncio.Future]]) -> None:
        for args, future in batch:
            try:
                result = await run_in_threadpool(self.service.predict, args)
            except Exception as exc:  # noqa: BLE001 - the error belongs to its own request only
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
