"""Discount model latency benchmark: ``python -m bench.discount_bench [--model DIR] [--repeats N]``.

Prints medians over ``--repeats`` runs of: one ``predict`` (the agent/REST path: validation, encoding,
booster), one ``explain`` (TreeSHAP), and ``predict_frame`` over every catalog row, next to the baseline of a
bare ``booster.predict`` on a pre-encoded matrix measured in the same run (the floor the service adds to).
Without ``--model`` it trains a tiny model on the demo catalog first (not timed).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path



def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    from core.offline import enforce_offline
    from core.settings import DEMO_CATALOG
    from data.catalog import load_catalog
    from tools.discount.build import train_and_save
    from tools.discount.service import load_discount_service
    from tools.discount.train import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--catalog", type=Path, default=DEMO_CATALOG)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    enforce_offline()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            model_dir, _ = train_and_save(args.catalog, Path(tmp),
                                          TrainConfig(n_iter=1, search="tiny", progress=False, cv_all_rows=False))
        service = load_discount_service(model_dir)
    frame = load_catalog(args.catalog).frame
    request = {"category": "SmartWatches", "actual_price": 4999, "rating": 4.1, "rating_count": 1520,
               "product_name": "Noise ColorFit Smart Watch with Bluetooth Calling"}
    single = service._model.matrix(service._frame([request]))
    booster = service._model.booster
    all_rows = service._model.matrix(frame)
    service.predict(request), service.explain(request)  # warm-up
    rows = [
        ("baseline: booster.inplace_predict, 1 encoded row",
         _median_ms(lambda: booster.inplace_predict(single), args.repeats)),
        ("service.predict (validate+encode+predict)", _median_ms(lambda: service.predict(request), args.repeats)),
        ("service.explain (TreeSHAP, grouped)", _median_ms(lambda: service.explain(request), args.repeats)),
        (f"baseline: booster.inplace_predict, {len(frame)} rows",
         _median_ms(lambda: booster.inplace_predict(all_rows), max(3, args.repeats // 5))),
        (f"service.predict_frame, {len(frame)} rows", _median_ms(lambda: service.predict_frame(frame),
                                                                 max(3, args.repeats // 5))),
    ]
    print(f"model {service.version} ({model_dir}); medians of {args.repeats} runs (batch rows: fewer)")
    for label, ms in rows:
        print(f"  {label:<48} {ms:9.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
