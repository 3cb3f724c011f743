"""Discount model CLI.

    python -m tools.discount train    --data PATH --out DIR [--n-iter N] [--seed S] [--search tiny|small|big]
    python -m tools.discount evaluate --model DIR --data PATH
    python -m tools.discount predict  --model DIR --input rows.csv|rows.json [--explain]

``train`` accepts any CSV in the raw catalog schema and writes ``DIR/discount_model``. ``evaluate`` scores a
labelled CSV in the raw schema (MAE/RMSE/R² next to the training-median baseline). ``predict`` reads rows in
the prediction input contract (category, actual_price, rating, rating_count, optional product_name,
about_product) as CSV or JSON (a list of objects, one object, or {"rows": [...]}); a raw-schema CSV works too.
Results are printed as JSON. Domain errors print ``error: ...`` and exit with code 2.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Literal, Sequence

import pandas as pd

from core.errors import MDIError, ValidationError
from core.logging import setup_logging
from core.settings import BaseAppSettings, load_settings

log = logging.getLogger("tools.discount")
COMMANDS = ("train", "evaluate", "predict")


class TrainSettings(BaseAppSettings):
    """``train``: data CSV (raw schema), output folder, search size."""

    data: Path
    out: Path
    n_iter: int = 6
    search: Literal["tiny", "small", "big"] = "small"
    seed: int = 42
    test_size: float = 0.2
    n_jobs: int = 1
    progress: bool = True


class EvaluateSettings(BaseAppSettings):
    """``evaluate``: a trained model folder and a labelled CSV in the raw schema."""

    model: Path
    data: Path


class PredictSettings(BaseAppSettings):
    """``predict``: a trained model folder and a CSV/JSON of input rows."""

    model: Path
    input: Path
    explain: bool = False


def _train(argv: Sequence[str]) -> dict[str, Any]:
    from tools.discount.build import train_and_save
    from tools.discount.train import TrainConfig

    s = load_settings(TrainSettings, argv, prog="python -m tools.discount train")
    if s.n_iter < 1:
        raise ValidationError("--n-iter must be at least 1", invalid_fields={"n_iter": "must be >= 1"})
    if not 0 < s.test_size < 1:
        raise ValidationError("--test-size must be between 0 and 1", invalid_fields={"test_size": "not in (0, 1)"})
    config = TrainConfig(n_iter=s.n_iter, search=s.search, seed=s.seed, test_size=s.test_size, n_jobs=s.n_jobs,
                         progress=s.progress)
    folder, metrics = train_and_save(s.data, s.out, config)
    return {"model_dir": str(folder), "model_version": metrics.get("model_version"),
            **{k: metrics[k] for k in ("cv", "cv_baseline_median", "test", "test_baseline_median", "cv_all_rows",
                                       "cv_all_rows_baseline_median", "best_params", "rows", "products",
                                       "train_seconds") if k in metrics}}


def _evaluate(argv: Sequence[str]) -> dict[str, Any]:
    from data.catalog import load_catalog
    from tools.discount.service import load_discount_service
    from tools.discount.train import evaluate

    s = load_settings(EvaluateSettings, argv, prog="python -m tools.discount evaluate")
    service = load_discount_service(s.model)
    catalog = load_catalog(s.data)
    baseline = float(service.metadata.get("train_median") or service.metrics.get("train_median"))

    def predict(frame: pd.DataFrame):
        return service.predict_frame(frame)["predicted_discount_percentage"].to_numpy()

    result = evaluate(predict, catalog.frame, baseline)
    return {"model_version": service.version, "data": str(s.data), "data_sha256": catalog.sha256,
            "trained_on_same_data": catalog.sha256 == service.data_sha256, **result}


def read_rows(path: Path) -> pd.DataFrame:
    """Rows from a CSV (all cells as text) or JSON (list of objects, one object, or {"rows": [...]})."""
    if not path.is_file():
        raise ValidationError(f"input file not found: {path}", invalid_fields={"input": "file not found"})
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"input {path} is not valid JSON: {exc}",
                                  invalid_fields={"input": "bad JSON"}) from exc
        if isinstance(raw, dict):
            raw = raw.get("rows", [raw])
        if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
            raise ValidationError(f"input {path} must hold a list of JSON objects",
                                  invalid_fields={"input": "expected a list of objects"})
        return pd.DataFrame(raw)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValidationError(f"input {path} is not a readable CSV: {exc}",
                              invalid_fields={"input": "bad CSV"}) from exc


def _predict(argv: Sequence[str]) -> dict[str, Any]:
    from tools.discount.service import load_discount_service, parse_discount_request

    s = load_settings(PredictSettings, argv, prog="python -m tools.discount predict")
    service = load_discount_service(s.model)
    frame = read_rows(s.input)
    if frame.empty:
        raise ValidationError(f"input {s.input} has no rows", invalid_fields={"input": "no rows"})
    ids = frame["product_id"].tolist() if "product_id" in frame.columns else [None] * len(frame)
    results: list[dict[str, Any]] = []
    if s.explain:
        fields = ("category", "actual_price", "rating", "rating_count", "product_name", "about_product")
        problems: dict[str, str] = {}
        for i, rec in enumerate(frame.to_dict("records"), start=1):
            payload = {k: rec[k] for k in fields if k in rec and not _blank(rec[k])}
            try:
                args = parse_discount_request(payload)
            except ValidationError as exc:
                problems.update({f"row {i}: {k}": v for k, v in exc.invalid_fields.items()})
                continue
            results.append({"row": i, **({"product_id": ids[i - 1]} if ids[i - 1] else {}), **service.explain(args)})
        if problems:
            shown = "; ".join(f"{k}: {v}" for k, v in list(problems.items())[:5])
            raise ValidationError(f"{len(problems)} invalid input field(s): {shown}", invalid_fields=problems)
    else:
        out = service.predict_frame(frame)
        for i, value in enumerate(out["predicted_discount_percentage"].tolist(), start=1):
            results.append({"row": i, **({"product_id": ids[i - 1]} if ids[i - 1] else {}),
                            "predicted_discount_percentage": float(value), "model_version": service.version})
    return {"model_version": service.version, "predictions": results}


def _blank(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, float) and value != value)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 domain/usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    from core.offline import enforce_offline
    enforce_offline()
    setup_logging()
    try:
        result = {"train": _train, "evaluate": _evaluate, "predict": _predict}[command](rest)
    except MDIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        invalid = getattr(exc, "invalid_fields", None) or exc.details.get("problems")
        if invalid and isinstance(invalid, dict) and len(invalid) > 1:
            for key, reason in list(invalid.items())[:20]:
                print(f"  {key}: {reason}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False, default=_default))
    return 0


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
