"""The discount model as a service for the agent tools and the REST layer.

    service = load_discount_service(artifacts / "discount_model")     # raises ArtifactError
    service.predict(PredictDiscountArgs(...))  -> {"predicted_discount_percentage": 61.3, "model_version": "..."}
    service.explain(ExplainDiscountArgs(...))  -> {... "base_value", "contributions": [{"feature", "value"}] (top 5)}
    parse_discount_request(json_body)          -> PredictDiscountArgs, or ValidationError listing every bad field
"""
from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from pydantic import ValidationError as PydanticValidationError

from core.errors import ValidationError
from data import cleaning
from tools.discount.artifact import LoadedArtifact, load_artifact
from tools.discount.features import request_frame
from tools.specs import PredictDiscountArgs

REQUIRED_FIELDS = [name for name, f in PredictDiscountArgs.model_fields.items() if f.is_required()]
OPTIONAL_FIELDS = [name for name, f in PredictDiscountArgs.model_fields.items() if not f.is_required()]
TOP_CONTRIBUTIONS = 5


# ------------------------------------------------------------------------------------------------------------
# Request validation
# ------------------------------------------------------------------------------------------------------------

def _number_field(value: Any, parser, what: str) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return None, f"must be a number, got {str(value).lower()}"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None, f"must be a finite number, got {value}"
        return value, None
    if isinstance(value, str):
        try:
            parsed = parser(value)
        except cleaning.CellError as exc:
            return None, str(exc)
        if parsed is None:
            return None, f"{what} is empty"
        return parsed, None
    return None, f"must be a number, got {type(value).__name__}"


_PARSERS = {
    "actual_price": (lambda v: cleaning.parse_price(v, required=False), "price"),
    "rating": (cleaning.parse_rating, "rating"),
    "rating_count": (cleaning.parse_count, "rating count"),
}


def parse_discount_request(payload: Any, model: type[PredictDiscountArgs] = PredictDiscountArgs
                           ) -> PredictDiscountArgs:
    """Validate a raw JSON body into ``model`` (PredictDiscountArgs or ExplainDiscountArgs).

    Accepts numbers or numeric strings (``"₹2,499"``, ``"1,79,691"``). Raises
    :class:`core.errors.ValidationError` whose ``invalid_fields`` names EVERY problem field (missing, malformed,
    out of range, unknown) and whose ``required_fields`` lists all required field names.
    """
    required = [n for n, f in model.model_fields.items() if f.is_required()]
    if not isinstance(payload, Mapping):
        raise ValidationError(f"request body must be a JSON object, got {type(payload).__name__}",
                              required_fields=required,
                              invalid_fields={"body": f"expected a JSON object, got {type(payload).__name__}"})
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in model.model_fields:
        value = payload.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if name in required:
                problems[name] = "required"
            continue
        if name in _PARSERS:
            parser, what = _PARSERS[name]
            parsed, problem = _number_field(value, parser, what)
            if problem:
                problems[name] = problem
                continue
            if name == "rating_count" and isinstance(parsed, float):
                if parsed != int(parsed):
                    problems[name] = f"must be a whole number, got {value}"
                    continue
                parsed = int(parsed)
            clean[name] = parsed
        elif not isinstance(value, str):
            problems[name] = f"must be a string, got {type(value).__name__}"
        else:
            clean[name] = value
    for extra in sorted(set(payload) - set(model.model_fields)):
        problems[str(extra)] = "unknown field"
    try:
        args = model(**clean)
    except PydanticValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "body"
            if field not in problems and field in clean:
                problems[field] = err["msg"]
        args = None
    if problems:
        listed = ", ".join(f"{k} ({v})" for k, v in problems.items())
        raise ValidationError(f"invalid discount request: {listed}", required_fields=required,
                              invalid_fields=problems)
    assert args is not None
    return args


# ------------------------------------------------------------------------------------------------------------
# Service
# ------------------------------------------------------------------------------------------------------------

class DiscountService:
    """Loaded discount model: predictions, TreeSHAP explanations, metrics and card for the UI."""

    def __init__(self, artifact: LoadedArtifact) -> None:
        self._artifact = artifact
        self._model = artifact.model
        self._encoder = artifact.model.encoder
        self._card_markdown = (artifact.folder / "card.md").read_text(encoding="utf-8")  # checksum-verified

    # ---- descriptors -------------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._artifact.version

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._artifact.manifest.metadata)

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self._artifact.manifest.metrics)

    @property
    def data_sha256(self) -> str:
        """sha256 of the catalog file the model was trained on."""
        return self._artifact.manifest.data_sha256

    @property
    def folder(self) -> Path:
        return self._artifact.folder

    @cached_property
    def card(self) -> dict[str, Any]:
        """Summary for the UI: version, creation time, data, test/CV metrics and baselines."""
        m = self._artifact.manifest.metrics
        return {
            "model_version": self.version,
            "created_at": self._artifact.manifest.created_at,
            "data_sha256": self._artifact.manifest.data_sha256,
            "data_source": self._artifact.manifest.metadata.get("data_source"),
            "rows": m.get("rows"), "products": m.get("products"),
            "test": m.get("test"), "test_baseline_median": m.get("test_baseline_median"),
            "cv": m.get("cv"), "cv_baseline_median": m.get("cv_baseline_median"),
            "feature_groups": sorted(set(self._encoder.feature_groups().values())),
            "markdown": self._card_markdown,
        }

    # ---- inputs ------------------------------------------------------------------------------------------
    def _coerce(self, args: PredictDiscountArgs | Mapping[str, Any]) -> PredictDiscountArgs:
        if isinstance(args, PredictDiscountArgs):
            return args
        return parse_discount_request(args)

    def _frame(self, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
        return request_frame(rows, self._encoder.leaf_lookup)

    # ---- predictions -------------------------------------------------------------------------------------
    def predict(self, args: PredictDiscountArgs | Mapping[str, Any]) -> dict[str, Any]:
        """``{"predicted_discount_percentage": float (0-100), "model_version": str}``."""
        args = self._coerce(args)
        value = float(self._model.predict(self._frame([args.model_dump()]))[0])
        return {"predicted_discount_percentage": round(value, 2), "model_version": self.version}

    def explain_all(self, args: PredictDiscountArgs | Mapping[str, Any]) -> dict[str, Any]:
        """Every grouped contribution plus ``raw_prediction`` (unclipped) and ``base_value``:
        ``base_value + sum(contributions) == raw_prediction`` (TreeSHAP additivity)."""
        args = self._coerce(args)
        frame = self._frame([args.model_dump()])
        contribs = self._model.contributions(frame)[0]
        raw = float(self._model.raw_predict(frame)[0])
        names = self._encoder.feature_names
        grouped: dict[str, float] = {}
        for name, value in zip(names, contribs[:-1]):
            label = self._label(self._encoder.feature_group(name), frame.iloc[0])
            grouped[label] = grouped.get(label, 0.0) + float(value)
        items = [{"feature": k, "value": v} for k, v in grouped.items()]
        items.sort(key=lambda d: abs(d["value"]), reverse=True)
        return {"raw_prediction": raw, "predicted_discount_percentage": round(min(max(raw, 0.0), 100.0), 2),
                "base_value": float(contribs[-1]), "model_version": self.version, "contributions": items}

    def explain(self, args: PredictDiscountArgs | Mapping[str, Any]) -> dict[str, Any]:
        """Prediction with its top-5 TreeSHAP contributions grouped by original input, human-named."""
        full = self.explain_all(args)
        return {
            "predicted_discount_percentage": full["predicted_discount_percentage"],
            "base_value": round(full["base_value"], 4),
            "model_version": full["model_version"],
            "contributions": [{"feature": c["feature"], "value": round(c["value"], 4)}
                              for c in full["contributions"][:TOP_CONTRIBUTIONS]],
        }

    @staticmethod
    def _label(group: str, row: pd.Series) -> str:
        if group == "category":
            return f"category: {row['leaf_category'] or 'unknown'}"
        if group == "brand":
            return f"brand: {row['brand'] or 'unknown'}"
        return group

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Batch prediction. ``frame`` has the input columns (``category``, ``actual_price``, ``rating``,
        ``rating_count``, optional ``product_name``/``about_product``) as numbers or raw strings (``₹1,099``);
        a clean or raw catalog frame works too. Missing rating/rating_count are allowed (treated as missing).
        Returns a copy with ``predicted_discount_percentage`` added. Raises ValidationError naming bad cells."""
        missing = [c for c in ("category", "actual_price") if c not in frame.columns]
        if missing:
            raise ValidationError(f"prediction input lacks column(s): {', '.join(missing)}",
                                  required_fields=REQUIRED_FIELDS,
                                  invalid_fields={c: "missing column" for c in missing})
        rows, problems = [], {}
        for i, rec in enumerate(frame.to_dict("records"), start=1):
            row = {"category": rec.get("category"), "product_name": rec.get("product_name"),
                   "about_product": rec.get("about_product")}
            if not str(row["category"] or "").strip() or _is_nan(row["category"]):
                problems[f"row {i}: category"] = "required"
            for name, parser in (("actual_price", cleaning.parse_price), ("rating", cleaning.parse_rating),
                                 ("rating_count", cleaning.parse_count)):
                value = rec.get(name)
                if _is_nan(value):
                    value = None
                try:
                    row[name] = parser(value) if not isinstance(value, (int, float)) or isinstance(value, bool) \
                        else float(value)
                except cleaning.CellError as exc:
                    problems[f"row {i}: {name}"] = str(exc)
            for text in ("product_name", "about_product"):
                if _is_nan(row[text]):
                    row[text] = None
            rows.append(row)
        if problems:
            shown = "; ".join(f"{k}: {v}" for k, v in list(problems.items())[:5])
            raise ValidationError(f"{len(problems)} invalid prediction input cell(s): {shown}",
                                  required_fields=REQUIRED_FIELDS, invalid_fields=problems)
        out = frame.copy()
        out["predicted_discount_percentage"] = np.round(self._model.predict(self._frame(rows)).astype(np.float64), 2)
        return out


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def load_discount_service(model_dir: Path | str) -> DiscountService:
    """Load the artifact at ``model_dir`` (``.../discount_model`` or its parent). Raises ArtifactError."""
    return DiscountService(load_artifact(model_dir))
