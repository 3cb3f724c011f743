"""Training and evaluation of the discount model.

Protocol (all splits group rows by ``product_id``, so duplicate listings of a product never straddle a split):

1. GroupShuffleSplit holds out ``test_size`` of the products (the held-out test split; never used for tuning).
2. Randomised hyper-parameter search on the rest with 5-fold GroupKFold; every fold fits its own encoders.
   The best candidate (lowest mean MAE) gives the reported CV metrics; a median predictor fitted on each
   training fold is scored on the same folds as the baseline.
3. The best candidate is refitted on the development part and scored on the held-out split (with the median
   baseline), then refitted on all rows: that final model is what the artifact holds.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, ParameterSampler
from tqdm.auto import tqdm

from core.errors import ValidationError
from tools.discount.features import TARGET
from tools.discount.model import DEFAULT_PARAMS, DiscountModel

log = logging.getLogger(__name__)

MIN_PRODUCTS = 15

# Small default search: trains on the demo catalog in well under a minute on 2 cores.
SMALL_SPACE: dict[str, list[Any]] = {
    "n_estimators": [300, 600, 1000],
    "learning_rate": [0.02, 0.03, 0.05],
    "max_depth": [3, 4, 5, 6],
    "min_child_weight": [1.0, 3.0, 5.0],
    "subsample": [0.7, 0.8, 1.0],
    "colsample_bytree": [0.6, 0.8, 1.0],
    "reg_lambda": [1.0, 5.0],
    "te_smoothing": [3.0, 10.0],
    "ridge_alpha": [1.0, 3.0],
}
# Bigger search (``--search big``): also varies the text encoders and the loss.
BIG_SPACE: dict[str, list[Any]] = {
    **SMALL_SPACE,
    "n_estimators": [300, 500, 800, 1200],
    "learning_rate": [0.01, 0.02, 0.03, 0.05, 0.08],
    "max_depth": [3, 4, 5, 6, 7, 8],
    "gamma": [0.0, 0.5, 2.0],
    "reg_alpha": [0.0, 1.0],
    "svd_components": [0, 8, 16],
    "ridge_alpha": [0.5, 1.0, 3.0, 10.0],
    "te_smoothing": [1.0, 3.0, 10.0, 30.0],
    "ridge_meta": [True, False],
    "name_chars": [True, False],
    "objective": ["reg:squarederror", "reg:absoluteerror"],
}
# Smoke-test search (tests, quick checks): shallow, few trees.
TINY_SPACE: dict[str, list[Any]] = {"n_estimators": [60], "learning_rate": [0.1], "max_depth": [3, 4],
                                    "te_smoothing": [10.0]}
SEARCH_SPACES = {"tiny": TINY_SPACE, "small": SMALL_SPACE, "big": BIG_SPACE}


@dataclass
class TrainConfig:
    n_iter: int = 6
    search: str = "small"
    folds: int = 5
    test_size: float = 0.2
    seed: int = 42
    n_jobs: int = 1
    progress: bool = True
    cv_all_rows: bool = True  # also cross-validate the chosen configuration on all rows (grouped folds)


@dataclass
class TrainResult:
    model: DiscountModel
    params: dict[str, Any]
    metrics: dict[str, Any]
    search: list[dict[str, Any]] = field(default_factory=list)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R² (R² is NaN for fewer than two rows or a constant target)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    r2 = float(r2_score(y_true, y_pred)) if len(y_true) > 1 and np.ptp(y_true) > 0 else math.nan
    return {"mae": float(mean_absolute_error(y_true, y_pred)),
            "rmse": float(math.sqrt(mean_squared_error(y_true, y_pred))), "r2": r2, "n": int(len(y_true))}


def _mean_metrics(per_fold: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("mae", "rmse", "r2"):
        vals = np.array([m[key] for m in per_fold], dtype=float)
        out[key] = float(np.nanmean(vals))
        out[f"{key}_std"] = float(np.nanstd(vals))
    out["folds"] = len(per_fold)
    return out


def training_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows usable for training: a known target. Raises ValidationError when too few products remain."""
    usable = frame[frame[TARGET].notna()].reset_index(drop=True)
    n_products = usable["product_id"].nunique()
    if n_products < MIN_PRODUCTS:
        raise ValidationError(
            f"need at least {MIN_PRODUCTS} products with a discount_percentage to train, got {n_products}",
            invalid_fields={"discount_percentage": f"only {n_products} products have a value"})
    return usable


def grouped_folds(frame: pd.DataFrame, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold on product_id (shuffled by seed); fewer folds when there are few products."""
    groups = frame["product_id"].to_numpy()
    k = max(2, min(n_folds, len(np.unique(groups))))
    return list(GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(frame, groups=groups))


def holdout_split(frame: pd.DataFrame, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(development rows, held-out test rows), grouped by product_id."""
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    dev, test = next(splitter.split(frame, groups=frame["product_id"].to_numpy()))
    return dev, test


def candidates(config: TrainConfig) -> list[dict[str, Any]]:
    """The default parameters first, then ``n_iter - 1`` random draws from the search space."""
    space = SEARCH_SPACES.get(config.search)
    if space is None:
        raise ValidationError(f"unknown search {config.search!r}",
                              invalid_fields={"search": f"use one of {', '.join(SEARCH_SPACES)}"})
    base = {k: DEFAULT_PARAMS[k] for k in space}
    if all(base[k] in v for k, v in space.items()):
        drawn = list(ParameterSampler(space, n_iter=max(config.n_iter - 1, 0), random_state=config.seed))
        out = [base] + [dict(d) for d in drawn if dict(d) != base]
    else:
        out = [dict(d) for d in ParameterSampler(space, n_iter=config.n_iter, random_state=config.seed)]
    return [{**c, "seed": config.seed, "n_jobs": config.n_jobs} for c in out[: max(config.n_iter, 1)]]


def search(frame: pd.DataFrame, config: TrainConfig) -> tuple[dict[str, Any], list[dict[str, Any]], dict]:
    """Grouped-CV random search on ``frame``. Returns (best params, per-candidate results, baseline CV)."""
    y = frame[TARGET].to_numpy(dtype=float)
    folds = grouped_folds(frame, config.folds, config.seed)
    baseline_folds = [regression_metrics(y[va], np.full(len(va), np.median(y[tr]))) for tr, va in folds]
    cands = candidates(config)
    cache: dict = {}
    results = []
    bar = tqdm(total=len(cands) * len(folds), desc="discount search", unit="fit", disable=not config.progress)
    for i, params in enumerate(cands):
        per_fold = []
        for f, (tr, va) in enumerate(folds):
            model = DiscountModel(params).fit(frame.iloc[tr], y[tr], encoder_cache=cache, cache_key=f)
            per_fold.append(regression_metrics(y[va], model.predict(frame.iloc[va])))
            bar.update(1)
        summary = _mean_metrics(per_fold)
        results.append({"candidate": i, "params": _public(params), "cv": summary, "per_fold": per_fold})
        bar.set_postfix(best_mae=f"{min(r['cv']['mae'] for r in results):.2f}")
        log.info("candidate %d/%d: CV MAE %.2f RMSE %.2f R2 %.3f %s", i + 1, len(cands), summary["mae"],
                 summary["rmse"], summary["r2"], _public(params))
    bar.close()
    best = min(results, key=lambda r: r["cv"]["mae"])
    return cands[best["candidate"]], results, _mean_metrics(baseline_folds)


def cross_validate(frame: pd.DataFrame, params: dict[str, Any], config: TrainConfig) -> tuple[dict, dict]:
    """Grouped K-fold CV of one configuration: (model metrics, median-baseline metrics), fold means."""
    y = frame[TARGET].to_numpy(dtype=float)
    folds = grouped_folds(frame, config.folds, config.seed)
    model_folds, base_folds = [], []
    for tr, va in tqdm(folds, desc="discount CV (all rows)", unit="fold", disable=not config.progress):
        model = DiscountModel(params).fit(frame.iloc[tr], y[tr])
        model_folds.append(regression_metrics(y[va], model.predict(frame.iloc[va])))
        base_folds.append(regression_metrics(y[va], np.full(len(va), np.median(y[tr]))))
    return _mean_metrics(model_folds), _mean_metrics(base_folds)


def _public(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "n_jobs"}


def train(frame: pd.DataFrame, config: TrainConfig | None = None) -> TrainResult:
    """Search, evaluate (grouped CV + held-out split, with median baselines) and fit the final model."""
    config = config or TrainConfig()
    start = time.perf_counter()
    data = training_rows(frame)
    y = data[TARGET].to_numpy(dtype=float)
    dev_idx, test_idx = holdout_split(data, config.test_size, config.seed)
    dev, test = data.iloc[dev_idx].reset_index(drop=True), data.iloc[test_idx].reset_index(drop=True)
    log.info("discount model: %d rows / %d products; development %d rows, held-out test %d rows",
             len(data), data["product_id"].nunique(), len(dev), len(test))
    best, results, baseline_cv = search(dev, config)
    best_cv = min(results, key=lambda r: r["cv"]["mae"])["cv"]

    log.info("refitting best candidate on the development split, scoring the held-out split")
    dev_model = DiscountModel(best).fit(dev, y[dev_idx])
    test_metrics = regression_metrics(y[test_idx], dev_model.predict(test))
    baseline_test = regression_metrics(y[test_idx], np.full(len(test_idx), np.median(y[dev_idx])))

    cv_all = None
    if config.cv_all_rows:
        log.info("grouped %d-fold CV of the chosen configuration on all rows", config.folds)
        cv_all, cv_all_baseline = cross_validate(data, best, config)
    log.info("fitting the final model on all %d rows", len(data))
    final = DiscountModel(best).fit(data, y)
    metrics = {
        "target": TARGET,
        "cv": best_cv,
        "cv_baseline_median": baseline_cv,
        "test": test_metrics,
        "test_baseline_median": baseline_test,
        **({"cv_all_rows": cv_all, "cv_all_rows_baseline_median": cv_all_baseline} if cv_all else {}),
        "rows": int(len(data)),
        "products": int(data["product_id"].nunique()),
        "dev_rows": int(len(dev)),
        "test_rows": int(len(test)),
        "train_median": float(np.median(y)),
        "search": {"space": config.search, "n_iter": len(results), "folds": best_cv["folds"],
                   "seed": config.seed, "test_size": config.test_size},
        "best_params": _public(best),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    log.info("discount model: CV MAE %.2f RMSE %.2f R2 %.3f (baseline MAE %.2f); held-out MAE %.2f R2 %.3f "
             "(baseline MAE %.2f)", best_cv["mae"], best_cv["rmse"], best_cv["r2"], baseline_cv["mae"],
             test_metrics["mae"], test_metrics["r2"], baseline_test["mae"])
    summary = [{"candidate": r["candidate"], "params": r["params"], "cv": r["cv"]} for r in results]
    return TrainResult(model=final, params=_public(best), metrics=metrics, search=summary)


def evaluate(model_predict, frame: pd.DataFrame, baseline_value: float) -> dict[str, Any]:
    """Score predictions on a labelled frame next to a constant (training median) baseline."""
    data = frame[frame[TARGET].notna()].reset_index(drop=True)
    if data.empty:
        raise ValidationError("no rows with a discount_percentage to evaluate",
                              invalid_fields={"discount_percentage": "all values missing"})
    y = data[TARGET].to_numpy(dtype=float)
    return {"model": regression_metrics(y, model_predict(data)),
            "baseline_median": regression_metrics(y, np.full(len(y), baseline_value)),
            "rows": int(len(data)), "products": int(data["product_id"].nunique())}
