"""Micro-batching of /predict_discount: concurrent requests are scored together and get exactly what one-by-one
scoring gives; a failing row only fails its own request."""
from __future__ import annotations

import asyncio
import threading
import time

import pandas as pd
import pytest

from agent.fakes import FormulaDiscount
from core.errors import ValidationError
from serving.batching import PredictBatcher
from tools.specs import PredictDiscountArgs


class BatchingFormula(FormulaDiscount):
    """FormulaDiscount with a slow batch scorer that records batch sizes."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        time.sleep(0.02)  # per-call overhead dominates, as with the real model
        with self.lock:
            self.sizes.append(len(frame))
        out = frame.copy()
        out["predicted_discount_percentage"] = [
            self.predict(PredictDiscountArgs(**{k: v for k, v in row.items() if v is not None and v == v}))
            ["predicted_discount_percentage"] for row in frame.to_dict("records")]
        return out


def _args(i: int) -> PredictDiscountArgs:
    return PredictDiscountArgs(category="SmartWatches" if i % 2 else "USBCables", actual_price=100 + 37 * i,
                               rating=round(3 + (i % 20) / 10, 1), rating_count=10 * i)


def test_concurrent_requests_are_batched_with_identical_results():
    service = BatchingFormula()
    batcher = PredictBatcher(service)

    async def run():
        return await asyncio.gather(*(batcher.predict(_args(i)) for i in range(40)))

    results = asyncio.run(run())
    assert results == [service.predict(_args(i)) for i in range(40)]
    assert sum(service.sizes) == 40 and len(service.sizes) < 40 and max(service.sizes) > 1


def test_lone_request_is_scored_at_once_and_errors_are_isolated():
    service = BatchingFormula()
    batcher = PredictBatcher(service)
    assert asyncio.run(batcher.predict(_args(3))) == service.predict(_args(3))
    assert service.sizes == [] and (batcher.batches, batcher.items) == (1, 1)  # a lone request: one-row predict

    bad = PredictDiscountArgs(category="unknowncategory", actual_price=10, rating=4, rating_count=1)

    async def run():
        return await asyncio.gather(batcher.predict(_args(1)), batcher.predict(bad), batcher.predict(_args(2)),
                                    return_exceptions=True)

    ok1, err, ok2 = asyncio.run(run())
    assert ok1 == service.predict(_args(1)) and ok2 == service.predict(_args(2))
    assert isinstance(err, ValidationError)


def test_services_without_batch_scoring_are_called_directly():
    service = FormulaDiscount()
    assert asyncio.run(PredictBatcher(service).predict(_args(5))) == service.predict(_args(5))


@pytest.mark.slow
def test_real_model_batch_equals_single(demo_catalog_path):
    from scripts.build_artifacts import BuildSettings, build_all
    from tools.discount.service import load_discount_service

    settings = BuildSettings(catalog=demo_catalog_path)
    build_all(settings)
    service = load_discount_service(settings.artifact_dir / "discount_model")
    batcher = PredictBatcher(service)
    named = PredictDiscountArgs(category="Electronics|WearableTechnology|SmartWatches", actual_price=2499,
                                rating=4.1, rating_count=3200, product_name="Auralis Plus 950 Calling Smartwatch")
    cases = [_args(i) for i in range(12)] + [named]

    async def run():
        return await asyncio.gather(*(batcher.predict(a) for a in cases))

    assert asyncio.run(run()) == [service.predict(a) for a in cases]
