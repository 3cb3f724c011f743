"""The discount regressor: a :class:`FeatureEncoder` plus an XGBoost booster, as one sklearn-style estimator.

Fitting the estimator fits the encoder on exactly the rows it is given, so inside cross-validation every fold
fits its own vocabularies, SVD and target encodings (no leakage across GroupKFold folds).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from tools.discount.features import EncoderConfig, FeatureEncoder

ENCODER_PARAMS = ("svd_components", "te_smoothing", "ridge_alpha", "use_about", "tfidf_max_features", "ridge_meta",
                  "name_chars")
XGB_PARAMS = ("n_estimators", "learning_rate", "max_depth", "min_child_weight", "subsample", "colsample_bytree",
              "reg_lambda", "reg_alpha", "gamma", "objective")

DEFAULT_PARAMS: dict[str, Any] = {
    "svd_components": 0, "te_smoothing": 3.0, "ridge_alpha": 1.0, "use_about": True, "tfidf_max_features": 4000,
    "ridge_meta": True, "name_chars": False,
    "n_estimators": 600, "learning_rate": 0.03, "max_depth": 5, "min_child_weight": 3.0, "subsample": 0.8,
    "colsample_bytree": 0.6, "reg_lambda": 1.0, "reg_alpha": 0.0, "gamma": 0.0, "objective": "reg:absoluteerror",
}


def split_params(params: dict[str, Any]) -> tuple[EncoderConfig, dict[str, Any]]:
    """Split a flat parameter dict into the encoder config and the XGBoost keyword arguments."""
    merged = {**DEFAULT_PARAMS, **params}
    unknown = set(merged) - set(ENCODER_PARAMS) - set(XGB_PARAMS) - {"seed", "n_jobs"}
    if unknown:
        raise ValueError(f"unknown discount-model parameter(s): {sorted(unknown)}")
    seed = int(merged.get("seed", 0))
    enc = EncoderConfig(**{k: merged[k] for k in ENCODER_PARAMS}, seed=seed)
    xgb_kwargs = {k: merged[k] for k in XGB_PARAMS}
    xgb_kwargs.update(random_state=seed, n_jobs=int(merged.get("n_jobs", 1)), tree_method="hist")
    return enc, xgb_kwargs


class DiscountModel:
    """Encoder + booster. ``fit(frame, y)`` on clean catalog rows; ``predict(frame)`` returns clipped 0-100."""

    def __init__(self, params: dict[str, Any] | None = None, *, encoder: FeatureEncoder | None = None,
                 booster: xgb.Booster | None = None) -> None:
        self.params = dict(params or {})
        self.encoder = encoder
        self.booster = booster
        if booster is not None:  # one thread: predictions are tiny and OpenMP spin-waits hurt on shared cores
            booster.set_param({"nthread": int(self.params.get("n_jobs", 1) or 1)})

    def fit(self, frame: pd.DataFrame, y: np.ndarray, *, encoder_cache: dict | None = None,
            cache_key: Any = None) -> "DiscountModel":
        config, xgb_kwargs = split_params(self.params)
        key = (cache_key, config) if cache_key is not None else None
        if encoder_cache is not None and key in encoder_cache:
            self.encoder, matrix = encoder_cache[key]
        else:
            self.encoder, matrix = FeatureEncoder.fit(frame, y, config)
            if encoder_cache is not None and key is not None:
                encoder_cache[key] = (self.encoder, matrix)
        reg = xgb.XGBRegressor(**xgb_kwargs)
        reg.fit(matrix, np.asarray(y, dtype=np.float64))
        self.booster = reg.get_booster()
        self.booster.feature_names = self.encoder.feature_names
        self.booster.set_param({"nthread": int(self.params.get("n_jobs", 1) or 1)})
        return self

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        assert self.encoder is not None, "model is not fitted"
        return self.encoder.transform(frame)

    def raw_predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Unclipped booster output (in-place prediction: no DMatrix for plain scoring)."""
        assert self.booster is not None, "model is not fitted"
        return self.booster.inplace_predict(self.matrix(frame), missing=np.nan)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.clip(self.raw_predict(frame), 0.0, 100.0)

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """TreeSHAP contributions (rows x (features + 1)); the last column is the bias."""
        return self.booster.predict(self._dmatrix(frame), pred_contribs=True)

    def _dmatrix(self, frame: pd.DataFrame) -> xgb.DMatrix:
        threads = int(self.params.get("n_jobs", 1) or 1)
        return xgb.DMatrix(self.matrix(frame), feature_names=self.encoder.feature_names, missing=np.nan,
                           nthread=threads)
