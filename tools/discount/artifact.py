"""The discount model artifact: ``<out>/discount_model/`` with

* ``model.json``    XGBoost's native JSON model,
* ``features.json`` the fitted feature encoder (vocabularies, idf, SVD, ridge weights, target encodings, lookup),
* ``metrics.json``  grouped-CV and held-out metrics with median baselines, and the search summary,
* ``card.md``       a short model card,
* ``manifest.json`` (``core.artifacts``): kind ``discount_model``, schema version, training-data sha256,
  file checksums, library versions, metadata (feature list + groups, encoder config, params,
  ``input_distribution`` for drift checks, ``code_version``) and metrics.

Everything is plain JSON/markdown; nothing is pickled. :func:`load_artifact` verifies checksums and raises
:class:`core.errors.ArtifactError` naming what is wrong.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from core.artifacts import Manifest, load_manifest, write_manifest
from core.errors import ArtifactError
from tools.discount.features import FeatureEncoder
from tools.discount.model import DiscountModel

KIND = "discount_model"
SCHEMA_VERSION = 1
FOLDER_NAME = "discount_model"
MODEL_FILE, FEATURES_FILE, METRICS_FILE, CARD_FILE = "model.json", "features.json", "metrics.json", "card.md"
FILES = (MODEL_FILE, FEATURES_FILE, METRICS_FILE, CARD_FILE)
LIBRARIES = ("xgboost", "scikit-learn", "numpy", "pandas", "scipy")
# Bump to force a rebuild even when the source hash would not change (e.g. a data-handling change elsewhere).
CODE_REVISION = 1
_SOURCES = ("features.py", "model.py", "train.py", "artifact.py")
DISTRIBUTION_NUMERIC = ("actual_price", "rating", "rating_count")


def code_version() -> str:
    """Hash of this package's training/encoding source files plus CODE_REVISION (changes trigger rebuilds)."""
    h = hashlib.sha256(f"rev{CODE_REVISION}".encode())
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def resolve_model_dir(path: str | Path) -> Path:
    """Accept either the ``discount_model`` folder itself or its parent (an artifacts folder)."""
    path = Path(path)
    if not (path / "manifest.json").exists() and (path / FOLDER_NAME).is_dir():
        return path / FOLDER_NAME
    return path


# ------------------------------------------------------------------------------------------------------------
# Drift reference
# ------------------------------------------------------------------------------------------------------------

def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Share of non-missing ``values`` per bin. Bins are right-closed: bin 0 = (-inf, e0], bin i =
    (e[i-1], e[i]], last bin = (e[-1], inf); there are ``len(edges) + 1`` bins."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=float), values, side="left"),
                         minlength=len(edges) + 1)
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]


def input_distribution(frame: pd.DataFrame) -> dict[str, Any]:
    """Training distribution of the model inputs, for PSI-style drift checks.

    Numeric inputs: decile edges (unique) and the training share per bin (see :func:`bin_shares`), plus the
    share of missing values. ``cat_0`` (top-level category): share per value.
    """
    out: dict[str, Any] = {"binning": "right-closed; bin0=(-inf,e0], bin i=(e[i-1],e[i]], last=(e[-1],inf)",
                           "rows": int(len(frame))}
    for col in DISTRIBUTION_NUMERIC:
        values = frame[col].to_numpy(dtype=float)
        present = values[~np.isnan(values)]
        edges = sorted(set(float(x) for x in np.quantile(present, np.linspace(0.1, 0.9, 9)))) if len(present) else []
        out[col] = {"edges": edges, "shares": bin_shares(present, edges),
                    "missing_share": float(np.isnan(values).mean()) if len(values) else 0.0}
    shares = frame["cat_0"].fillna("").astype(str).value_counts(normalize=True)
    out["cat_0"] = {"shares": {str(k): float(v) for k, v in shares.items()}}
    return out


# ------------------------------------------------------------------------------------------------------------
# Save / load
# ------------------------------------------------------------------------------------------------------------

def model_card(metrics: dict[str, Any], *, data_source: str, data_sha256: str, feature_groups: list[str],
               version: str) -> str:
    """A short markdown model card."""
    def row(name: str, m: dict[str, Any]) -> str:
        return f"| {name} | {m['mae']:.2f} | {m['rmse']:.2f} | {_fmt(m['r2'])} |"

    return "\n".join([
        f"# Discount model `{version}`",
        "",
        "XGBoost regressor for `discount_percentage` (0-100) from category path, list price, rating, rating "
        "count, brand and product-name/description text. `discounted_price` is never used (it leaks the target).",
        "",
        f"- Training data: `{data_source}` (sha256 `{data_sha256[:16]}…`), {metrics['rows']} rows / "
        f"{metrics['products']} products",
        f"- Inputs (grouped): {', '.join(feature_groups)}",
        f"- Validation: held-out {metrics['test_rows']} rows (GroupShuffleSplit on product_id); "
        f"{metrics['cv']['folds']}-fold GroupKFold random search ({metrics['search']['n_iter']} candidates) "
        "on the rest; final model refitted on all rows.",
        "",
        "| split | MAE | RMSE | R² |",
        "| --- | --- | --- | --- |",
        row("grouped CV (best candidate)", metrics["cv"]),
        row("grouped CV, median baseline", metrics["cv_baseline_median"]),
        row("held-out test", metrics["test"]),
        row("held-out test, median baseline", metrics["test_baseline_median"]),
        *([row("grouped CV on all rows (chosen config)", metrics["cv_all_rows"]),
           row("grouped CV on all rows, median baseline", metrics["cv_all_rows_baseline_median"])]
          if metrics.get("cv_all_rows") else []),
        "",
        f"Best parameters: `{json.dumps(metrics['best_params'], sort_keys=True)}`",
        "",
        "Limits: trained on one marketplace snapshot; discounts of unseen categories/brands fall back to the "
        "training average for those features; predictions are clipped to 0-100.",
        "",
    ])


def _fmt(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _json_safe(obj: Any) -> Any:
    """NaN/inf -> None so the files are strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return _json_safe(obj.item())
    return obj


def save_artifact(out_dir: str | Path, model: DiscountModel, *, metrics: dict[str, Any], data_sha256: str,
                  data_source: str, training_frame: pd.DataFrame, params: dict[str, Any],
                  search: list[dict[str, Any]] | None = None) -> Path:
    """Write ``<out_dir>/discount_model/`` atomically (temp folder, then rename). Returns the folder."""
    assert model.encoder is not None and model.booster is not None, "model is not fitted"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / FOLDER_NAME
    tmp = Path(tempfile.mkdtemp(prefix=".discount_model.", dir=out_dir))
    tmp.chmod(0o755)
    try:
        model.booster.save_model(str(tmp / MODEL_FILE))
        encoder_json = model.encoder.to_json()
        (tmp / FEATURES_FILE).write_text(json.dumps(_json_safe(encoder_json)))
        groups = list(dict.fromkeys(encoder_json["feature_groups"].values()))
        from core.hashing import sha256_file
        version = f"discount-xgb-{sha256_file(tmp / MODEL_FILE)[:10]}"
        full_metrics = {**metrics, "model_version": version}
        (tmp / METRICS_FILE).write_text(json.dumps(_json_safe({**full_metrics, "search_results": search or []}),
                                                   indent=2))
        (tmp / CARD_FILE).write_text(model_card(metrics, data_source=data_source, data_sha256=data_sha256,
                                                feature_groups=groups, version=version))
        metadata = {
            "model_version": version,
            "code_version": code_version(),
            "target": "discount_percentage",
            "feature_names": encoder_json["feature_names"],
            "feature_groups": encoder_json["feature_groups"],
            "encodings": {
                "category_levels": "smoothed target encoding (out-of-fold on training rows) + frequency",
                "brand": "first word of product_name; smoothed target encoding + frequency",
                "actual_price": "log; ends-in-99 and round-100 flags; log price minus leaf median log price",
                "rating_count": "log1p",
                "text": "TF-IDF (word 1-2 grams) -> ridge score (out-of-fold) and TruncatedSVD components",
                "encoder_config": encoder_json["config"],
            },
            "params": params,
            "data_source": data_source,
            "train_median": metrics.get("train_median"),
            "input_distribution": input_distribution(training_frame),
            "known_leaf_categories": len(encoder_json["leaf_lookup"]),
        }
        write_manifest(tmp, kind=KIND, schema_version=SCHEMA_VERSION, data_sha256=data_sha256, files=FILES,
                       libraries=LIBRARIES, metadata=_json_safe(metadata), metrics=_json_safe(full_metrics))
        if target.exists():
            old = out_dir / f".{FOLDER_NAME}.old"
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@dataclass
class LoadedArtifact:
    model: DiscountModel
    manifest: Manifest
    folder: Path

    @property
    def version(self) -> str:
        return str(self.manifest.metadata.get("model_version", "unknown"))


def load_artifact(model_dir: str | Path) -> LoadedArtifact:
    """Load and verify ``model_dir`` (the discount_model folder or its parent). Raises ArtifactError."""
    folder = resolve_model_dir(model_dir)
    manifest = load_manifest(folder, kind=KIND, schema_version=SCHEMA_VERSION, verify_files=True)
    missing = [f for f in FILES if f not in manifest.files]
    if missing:
        raise ArtifactError(f"discount model manifest at {folder} does not list {', '.join(missing)}; rebuild it",
                            path=str(folder))
    try:
        encoder = FeatureEncoder.from_json(json.loads((folder / FEATURES_FILE).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"discount model encoder {folder / FEATURES_FILE} is unusable: {exc}",
                            path=str(folder)) from exc
    booster = xgb.Booster()
    try:
        booster.load_model(str(folder / MODEL_FILE))
    except xgb.core.XGBoostError as exc:
        raise ArtifactError(f"discount model {folder / MODEL_FILE} cannot be loaded by xgboost "
                            f"{xgb.__version__}: {str(exc).splitlines()[0]}", path=str(folder)) from exc
    if booster.num_features() != len(encoder.feature_names):
        raise ArtifactError(f"discount model at {folder} expects {booster.num_features()} features, the encoder "
                            f"makes {len(encoder.feature_names)}; rebuild it", path=str(folder))
    booster.feature_names = encoder.feature_names
    return LoadedArtifact(model=DiscountModel(manifest.metadata.get("params"), encoder=encoder, booster=booster),
                          manifest=manifest, folder=folder)
