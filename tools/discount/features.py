"""Feature encoding for the discount model: raw catalog rows -> a numeric matrix, with JSON-serialisable state.

Inputs used (never ``discounted_price``, which together with ``actual_price`` *is* the target):

* category: the ``|``-joined path -> levels ``cat_0..cat_3``, ``leaf_category`` and depth. Each level is
  target-encoded (smoothed mean discount) and frequency-encoded.
* ``actual_price`` (log), its price-point shape (ends in 99 / round hundreds), and its position relative to the
  leaf category's median price.
* ``rating`` and ``rating_count`` (log1p); missing stays NaN (XGBoost learns a default direction).
* brand (first word of the product name): target encoding + frequency.
* product name and ``about_product`` text: text lengths, optional TF-IDF -> TruncatedSVD components, and a
  ridge regression on the TF-IDF of both plus "meta" tokens (brand, category levels, price/rating buckets),
  giving one out-of-fold linear "text score" column.

Every fitted piece (vocabularies, idf weights, SVD components, ridge weights, target encodings, category
lookup) lives in :class:`FeatureEncoder` and round-trips through plain JSON (:meth:`FeatureEncoder.to_json`).
``fit`` sees only the rows it is given (a training fold), and the target-derived features of those training
rows are computed out-of-fold with an inner GroupKFold on ``product_id`` so the trees never see a row's own
target through its encoding.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold

from data.cleaning import extract_brand
from data.schema import CATEGORY_SEP, MAX_CATEGORY_LEVELS, category_levels

TARGET = "discount_percentage"
LEAKY_COLUMNS = frozenset({"discounted_price", TARGET})  # never read by the encoder
CAT_LEVELS = tuple(f"cat_{i}" for i in range(MAX_CATEGORY_LEVELS))
TE_COLUMNS = (*CAT_LEVELS, "leaf_category", "brand")
TEXT_FIELDS = ("product_name", "about_product")
UNKNOWN = "<unknown>"
ENCODER_FORMAT = 1

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_NON_WORD = re.compile(r"\W+")
META = "meta"
NAME_CHARS = "name_chars"


def _token(prefix: str, value: object) -> str:
    return f"{prefix}_{_NON_WORD.sub('_', str(value).strip().lower()).strip('_')}"


def _strings(column: pd.Series) -> np.ndarray:
    """``column.fillna("").astype(str).to_numpy()`` without pandas' per-call overhead (~0.1 ms a column, which
    dominated one-row predictions)."""
    return np.array(["" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)
                     for v in column.to_numpy()], dtype=object)


def meta_text(frame: pd.DataFrame) -> pd.Series:
    """Category levels, brand and price/rating buckets as tokens ("leaf_smartwatches brand_noise pb_16 ..."), so
    the ridge score can combine them with the text words (bigrams give brand x category interactions)."""
    out = []
    columns = [frame[c].to_numpy() for c in ("brand", "leaf_category", *CAT_LEVELS[1:], "actual_price", "rating")]
    for brand, leaf, c1, c2, c3, price, rating in zip(*columns):  # plain zip: itertuples costs ~1 ms per call
        toks = [_token("brand", brand) if brand else "", _token("leaf", leaf) if leaf else "",
                _token("ca", c1) if c1 else "", _token("cb", c2) if c2 else "", _token("cc", c3) if c3 else ""]
        if price == price and price and price > 0:
            toks.append(f"pb_{int(round(math.log(float(price)) * 2))}")
        if rating == rating and rating is not None:
            toks.append(f"rt_{int(round(float(rating) * 2))}")
        out.append(" ".join(t for t in toks if t))
    return pd.Series(out, index=frame.index, dtype=object)


@dataclass(frozen=True)
class EncoderConfig:
    """Hyper-parameters of the feature encoder (searched alongside the XGBoost ones)."""

    svd_components: int = 12
    tfidf_max_features: int = 4000
    tfidf_min_df: int = 2
    te_smoothing: float = 10.0
    ridge_alpha: float = 3.0
    inner_folds: int = 5
    use_about: bool = True
    ridge_meta: bool = True
    name_chars: bool = False
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ----------------------------------------------------------------------------------------------------------------
# Row preparation: one frame layout for training rows (clean catalog) and prediction requests
# ----------------------------------------------------------------------------------------------------------------

def split_category(category: str) -> tuple[str, ...]:
    """``"A | B|C"`` -> ("A", "B", "C"); empty levels dropped."""
    return tuple(p.strip() for p in str(category).split(CATEGORY_SEP) if p.strip())


def _leaf_keys(name: str) -> list[str]:
    """Spellings a user may give a leaf category: case, spaces and punctuation ignored, singular or plural
    ("Smart Watches", "smartwatch" and "SmartWatches" share a key)."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    keys = [key]
    for suffix in ("es", "s"):
        if key.endswith(suffix) and len(key) > len(suffix) + 2:
            keys.append(key[: -len(suffix)])
    return keys


LEAF_TYPO_CUTOFF = 0.9  # difflib ratio of a misspelt leaf name to a known one ("therrmometers" ~ "thermometers": 0.96;
#                         "external hard drives" ~ "InternalHardDrives" is 0.89 and must not match)
LEAF_TYPO_MIN_CHARS = 6   # shorter names are too easily one letter away from another word ("cases" / "cables")


def resolve_leaf(name: str, lookup: Mapping[str, str], names: Mapping[str, str] | None = None) -> str | None:
    """The category path of the known leaf ``name`` spells, or None. ``lookup``: every :func:`_leaf_keys` key ->
    path; ``names``: each leaf's whole key (no plural ending stripped) -> path, the names a typo is matched to.

    An exact key first (case, spaces, punctuation and a plural ending ignored); failing that, a misspelling of one
    known leaf ("therrmometers", "baby moniitors"): the closest whole name at least ``LEAF_TYPO_CUTOFF`` alike,
    when the name has ``LEAF_TYPO_MIN_CHARS`` letters or more and no name of another path is as close.
    """
    keys = _leaf_keys(name)
    exact = next((lookup[k] for k in keys if k in lookup), None)
    if exact is not None or len(keys[0]) < LEAF_TYPO_MIN_CHARS or not names:
        return exact
    best: dict[str, float] = {}
    for known in difflib.get_close_matches(keys[0], list(names), n=5, cutoff=LEAF_TYPO_CUTOFF):
        path = names[known]
        best[path] = max(best.get(path, 0.0), difflib.SequenceMatcher(None, keys[0], known).ratio())
    if not best:
        return None
    ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
    if len(ranked) > 1 and ranked[1][1] >= ranked[0][1]:
        return None  # two leaves as close: not ours to pick
    return ranked[0][0]


def request_frame(rows: Iterable[Mapping[str, Any]], leaf_lookup: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Turn prediction inputs (``category``, ``actual_price``, ``rating``, ``rating_count``, optional
    ``product_name`` / ``about_product``) into the column layout of the clean catalog frame.

    ``category`` may be a full ``|``-joined path or a leaf name; a known leaf name (case-insensitive) is
    expanded to the path seen in training via ``leaf_lookup`` (lower-cased leaf -> path), a misspelt one too
    (:func:`resolve_leaf`). An unknown single name becomes a one-level path whose levels the encoder treats as
    unknown.
    """
    lookup: dict[str, str] = {}
    names: dict[str, str] = {}
    for leaf, path in (leaf_lookup or {}).items():
        keys = _leaf_keys(leaf)
        names.setdefault(keys[0], path)
        for key in keys:
            lookup.setdefault(key, path)
    out = []
    for row in rows:
        parts = split_category(row.get("category") or "")
        if len(parts) == 1:
            match = resolve_leaf(parts[0], lookup, names)
            if match is not None:
                parts = split_category(match)
        levels = category_levels(parts)
        name = str(row.get("product_name") or "").strip()
        out.append({
            "product_name": name,
            "about_product": str(row.get("about_product") or "").strip(),
            "brand": extract_brand(name) if name else "",
            "category": CATEGORY_SEP.join(parts),
            "leaf_category": parts[-1] if parts else "",
            "category_depth": len(parts),
            **{f"cat_{i}": levels[i] for i in range(MAX_CATEGORY_LEVELS)},
            "actual_price": _float(row.get("actual_price")),
            "rating": _float(row.get("rating")),
            "rating_count": _float(row.get("rating_count")),
        })
    return pd.DataFrame(out)


def _float(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ----------------------------------------------------------------------------------------------------------------
# JSON-serialisable text pieces
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class TextVectorizer:
    """TF-IDF (word 1-2 grams, sublinear tf, l2 norm) with its vocabulary and idf stored as JSON lists."""

    vocabulary: list[str]
    idf: list[float]
    analyzer: str = "word"

    @staticmethod
    def _options(analyzer: str) -> dict[str, Any]:
        if analyzer == "char_wb":
            return {"analyzer": "char_wb", "ngram_range": (3, 5)}
        return {"analyzer": "word", "token_pattern": _TOKEN_PATTERN, "ngram_range": (1, 2)}

    @classmethod
    def fit(cls, texts: Iterable[str], *, max_features: int, min_df: int, analyzer: str = "word") -> "TextVectorizer":
        texts = list(texts)
        vec = TfidfVectorizer(lowercase=True, sublinear_tf=True, max_features=max_features,
                              min_df=min(min_df, max(len(texts), 1)), dtype=np.float64, **cls._options(analyzer))
        try:
            vec.fit(texts)
        except ValueError:  # empty vocabulary (all texts blank)
            return cls(vocabulary=[], idf=[], analyzer=analyzer)
        vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
        return cls(vocabulary=vocab, idf=[float(x) for x in vec.idf_], analyzer=analyzer)

    def _counter(self) -> tuple[CountVectorizer, sparse.dia_matrix]:
        cached = self.__dict__.get("_cache")
        if cached is None:  # built once per instance: re-validating a 4000-term vocabulary per call is slow
            counter = CountVectorizer(lowercase=True, vocabulary={t: i for i, t in enumerate(self.vocabulary)},
                                      dtype=np.float64, **self._options(self.analyzer))
            cached = self.__dict__["_cache"] = (counter, sparse.diags(np.asarray(self.idf)))
        return cached

    def _counts(self, counter: CountVectorizer, texts: list[str]) -> sparse.csr_matrix:
        """``counter.transform(texts)`` (term counts over the fixed vocabulary, indices sorted) built directly from
        its analyzer: the same matrix without scikit-learn's per-call validation (~1 ms, most of a one-row
        prediction)."""
        cached = self.__dict__.get("_analyzer")
        if cached is None:
            cached = self.__dict__["_analyzer"] = (counter.build_analyzer(), counter.vocabulary)
        analyze, index = cached
        indptr, indices, values = [0], [], []
        for text in texts:
            counts: dict[int, int] = {}
            for token in analyze(text):
                j = index.get(token)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            for j in sorted(counts):
                indices.append(j)
                values.append(counts[j])
            indptr.append(len(indices))
        return sparse.csr_matrix((np.asarray(values, dtype=np.float64), np.asarray(indices, dtype=np.int32),
                                  np.asarray(indptr, dtype=np.int32)), shape=(len(texts), len(self.vocabulary)))

    def transform(self, texts: Iterable[str]) -> sparse.csr_matrix:
        texts = list(texts)
        if not self.vocabulary:
            return sparse.csr_matrix((len(texts), 0))
        counter, idf = self._counter()
        counts = self._counts(counter, texts)
        counts.data = 1.0 + np.log(counts.data)
        tfidf = counts @ idf
        norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1.0 / norms) @ tfidf)

    def to_json(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary, "idf": self.idf, "analyzer": self.analyzer}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "TextVectorizer":
        return cls(vocabulary=list(raw["vocabulary"]), idf=[float(x) for x in raw["idf"]],
                   analyzer=str(raw.get("analyzer", "word")))


def _fit_svd(matrix: sparse.csr_matrix, k: int, seed: int) -> np.ndarray:
    """Components (k x vocab) of a truncated SVD; fewer when the matrix is too small."""
    k = min(k, matrix.shape[1] - 1, matrix.shape[0] - 1)
    if k < 1:
        return np.zeros((0, matrix.shape[1]))
    return TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=5).fit(matrix).components_


# ----------------------------------------------------------------------------------------------------------------
# The encoder
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class FeatureEncoder:
    """Fitted state that turns frames into the model matrix. Build with :meth:`fit`; persist with to_json."""

    config: EncoderConfig
    prior: float = 0.0
    target_maps: dict[str, dict[str, float]] = field(default_factory=dict)
    count_maps: dict[str, dict[str, int]] = field(default_factory=dict)
    leaf_price: dict[str, float] = field(default_factory=dict)
    global_log_price: float = 0.0
    leaf_lookup: dict[str, str] = field(default_factory=dict)
    vectorizers: dict[str, TextVectorizer] = field(default_factory=dict)
    svd: dict[str, list[list[float]]] = field(default_factory=dict)
    ridge_coef: dict[str, list[float]] = field(default_factory=dict)
    ridge_intercept: float = 0.0

    # ---- layout ------------------------------------------------------------------------------------------
    @property
    def text_fields(self) -> tuple[str, ...]:
        return TEXT_FIELDS if self.config.use_about else TEXT_FIELDS[:1]

    @property
    def ridge_fields(self) -> tuple[str, ...]:
        return (self.text_fields + ((NAME_CHARS,) if self.config.name_chars else ())
                + ((META,) if self.config.ridge_meta else ()))

    @staticmethod
    def field_texts(frame: pd.DataFrame, fld: str) -> pd.Series:
        if fld == META:
            return meta_text(frame)
        if fld == NAME_CHARS:
            fld = "product_name"
        if fld not in frame:
            return pd.Series([""] * len(frame), index=frame.index, dtype=object)
        return frame[fld].fillna("").astype(str)

    @property
    def feature_names(self) -> list[str]:
        names = ["log_actual_price", "price_ends_99", "price_round_100", "log_price_vs_leaf_median",
                 "rating", "log1p_rating_count", "category_depth"]
        for col in TE_COLUMNS:
            names += [f"te_{col}", f"freq_{col}"]
        names.append("text_ridge")
        for fld in self.text_fields:
            names.append(f"len_{fld}")
            names += [f"svd_{fld}_{i}" for i in range(len(self.svd.get(fld, [])))]
        return names

    def feature_group(self, name: str) -> str:
        """The original input a model column derives from (used to group TreeSHAP contributions)."""
        if name in ("log_actual_price", "price_ends_99", "price_round_100"):
            return "actual_price"
        if name == "log_price_vs_leaf_median":
            return "price vs category"
        if name == "rating":
            return "rating"
        if name == "log1p_rating_count":
            return "rating_count"
        if name == "category_depth" or any(name in (f"te_{c}", f"freq_{c}") for c in (*CAT_LEVELS, "leaf_category")):
            return "category"
        if name in ("te_brand", "freq_brand"):
            return "brand"
        if name == "text_ridge":
            return "text score"
        if name.endswith("product_name") or "_product_name_" in name:
            return "name text"
        if name.endswith("about_product") or "_about_product_" in name:
            return "description text"
        return name

    def feature_groups(self) -> dict[str, str]:
        return {n: self.feature_group(n) for n in self.feature_names}

    # ---- fitting -----------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, frame: pd.DataFrame, y: np.ndarray, config: EncoderConfig | None = None,
            groups: np.ndarray | None = None) -> tuple["FeatureEncoder", np.ndarray]:
        """Fit on training rows; returns (encoder, training matrix with out-of-fold target features)."""
        config = config or EncoderConfig()
        y = np.asarray(y, dtype=np.float64)
        frame = frame.reset_index(drop=True)
        groups = np.asarray(frame["product_id"] if groups is None and "product_id" in frame else
                            (groups if groups is not None else np.arange(len(frame))))
        enc = cls._fit_state(frame, y, config)
        matrix = enc.transform(frame)
        # Replace the target-derived columns of training rows with out-of-fold values (inner grouped folds).
        n_groups = len(np.unique(groups))
        folds = min(config.inner_folds, n_groups)
        if folds >= 2:
            names = enc.feature_names
            te_idx = [names.index(f"te_{c}") for c in TE_COLUMNS] + [names.index("text_ridge")]
            for tr, va in GroupKFold(n_splits=folds).split(frame, y, groups):
                inner = cls._fit_state(frame.iloc[tr], y[tr], config, text_svd=enc.svd,
                                       vectorizers=enc.vectorizers)
                part = inner.transform(frame.iloc[va])
                matrix[np.ix_(va, te_idx)] = part[:, te_idx]
        return enc, matrix

    @classmethod
    def _fit_state(cls, frame: pd.DataFrame, y: np.ndarray, config: EncoderConfig,
                   text_svd: dict[str, list[list[float]]] | None = None,
                   vectorizers: dict[str, TextVectorizer] | None = None) -> "FeatureEncoder":
        prior = float(np.mean(y)) if len(y) else 0.0
        enc = cls(config=config, prior=prior)
        for col in TE_COLUMNS:
            values = frame[col].fillna("").astype(str).to_numpy()
            stats = pd.DataFrame({"v": values, "y": y}).groupby("v")["y"].agg(["sum", "count"])
            stats = stats[stats.index != ""]
            smooth = config.te_smoothing
            enc.target_maps[col] = {str(k): float((s + smooth * prior) / (c + smooth))
                                    for k, s, c in zip(stats.index, stats["sum"], stats["count"])}
            enc.count_maps[col] = {str(k): int(c) for k, c in zip(stats.index, stats["count"])}
        log_price = np.log(frame["actual_price"].astype(float).to_numpy())
        enc.global_log_price = float(np.median(log_price)) if len(log_price) else 0.0
        leaf_med = pd.Series(log_price).groupby(frame["leaf_category"].to_numpy()).median()
        enc.leaf_price = {str(k): float(v) for k, v in leaf_med.items() if str(k)}
        paths = frame[["leaf_category", "category"]].astype(str)
        enc.leaf_lookup = {str(leaf): str(grp.value_counts().index[0])
                           for leaf, grp in paths.groupby("leaf_category")["category"] if str(leaf)}
        # text: vectorizers + SVD are unsupervised; the outer fit's ones are reused by the inner folds
        if vectorizers is None:
            for fld in enc.ridge_fields:
                enc.vectorizers[fld] = TextVectorizer.fit(
                    cls.field_texts(frame, fld), max_features=config.tfidf_max_features, min_df=config.tfidf_min_df,
                    analyzer="char_wb" if fld == NAME_CHARS else "word")
        else:
            enc.vectorizers = dict(vectorizers)
        all_mats = {f: enc.vectorizers[f].transform(cls.field_texts(frame, f)) for f in enc.ridge_fields}
        mats = [all_mats[f] for f in enc.text_fields]
        if text_svd is None:
            for fld, mat in zip(enc.text_fields, mats):
                enc.svd[fld] = _fit_svd(mat, config.svd_components, config.seed).tolist()
        else:
            enc.svd = text_svd
        ridge_mats = [all_mats[f] for f in enc.ridge_fields]
        stacked = sparse.hstack(ridge_mats).tocsr() if ridge_mats else sparse.csr_matrix((len(frame), 0))
        if stacked.shape[1] and len(y) > 1:
            ridge = Ridge(alpha=config.ridge_alpha).fit(stacked, y)
            coef = np.asarray(ridge.coef_, dtype=np.float64)
            offset = 0
            for fld, mat in zip(enc.ridge_fields, ridge_mats):
                enc.ridge_coef[fld] = coef[offset: offset + mat.shape[1]].tolist()
                offset += mat.shape[1]
            enc.ridge_intercept = float(ridge.intercept_)
        else:
            enc.ridge_coef = {f: [0.0] * m.shape[1] for f, m in zip(enc.ridge_fields, ridge_mats)}
            enc.ridge_intercept = prior
        return enc

    # ---- transform ---------------------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Model matrix (rows x feature_names), float64 with NaN for missing inputs."""
        n = len(frame)
        cols: list[np.ndarray] = []
        price = frame["actual_price"].astype(float).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            log_price = np.where(price > 0, np.log(price), np.nan)
        rounded = np.round(price)
        cols += [log_price,
                 np.where(np.isnan(price), np.nan, (rounded % 100 == 99).astype(float)),
                 np.where(np.isnan(price), np.nan, (rounded % 100 == 0).astype(float))]
        leaf = _strings(frame["leaf_category"])
        leaf_ref = np.array([self.leaf_price.get(v, self.global_log_price) for v in leaf], dtype=float)
        cols.append(log_price - leaf_ref)
        cols.append(frame["rating"].astype(float).to_numpy())
        count = frame["rating_count"].astype(float).to_numpy()
        cols.append(np.log1p(np.where(count >= 0, count, np.nan)))
        cols.append(frame["category_depth"].astype(float).to_numpy())
        for col in TE_COLUMNS:
            values = _strings(frame[col])
            tmap, cmap = self.target_maps.get(col, {}), self.count_maps.get(col, {})
            cols.append(np.array([tmap.get(v, self.prior) for v in values], dtype=float))
            cols.append(np.array([cmap.get(v, 0) for v in values], dtype=float))
        ridge = np.full(n, self.ridge_intercept)
        text_cols: list[np.ndarray] = []
        for fld in self.ridge_fields:
            texts = self.field_texts(frame, fld)
            values = texts.to_numpy()  # plain loops, not .str: pandas' accessors are slow for a few rows
            lengths = np.array([len(t) for t in values], dtype=float)
            has_text = np.array([bool(t.strip()) for t in values], dtype=bool)
            width = len(self.vectorizers[fld].vocabulary) if fld in self.vectorizers else 0
            # blank texts (a request without product name or description) have an all-zero vector: skip the
            # vectorizer, which costs ~1 ms per call even for one row
            mat = (self.vectorizers[fld].transform(texts) if fld in self.vectorizers and has_text.any()
                   else sparse.csr_matrix((n, width)))
            coef = self._array("ridge", fld, self.ridge_coef.get(fld, []))
            if coef.size:
                ridge = ridge + mat @ coef
            if fld in (META, NAME_CHARS):
                continue
            text_cols.append(np.where(has_text, np.log1p(lengths), np.nan))
            comps = self._array("svd", fld, self.svd.get(fld, []))
            if comps.size:
                proj = np.asarray(mat @ comps.T)
                proj[~has_text] = np.nan
                text_cols += list(proj.T)
        cols.append(ridge)
        cols += text_cols
        matrix = np.column_stack(cols) if cols else np.zeros((n, 0))
        return matrix.astype(np.float64)

    def _array(self, kind: str, fld: str, values: list) -> np.ndarray:
        """Fitted list -> ndarray, converted once and cached on the instance (not part of the JSON state)."""
        cache = self.__dict__.setdefault("_arrays", {})
        key = (kind, fld)
        if key not in cache:
            cache[key] = np.asarray(values, dtype=float)
        return cache[key]

    # ---- persistence -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": ENCODER_FORMAT,
            "config": self.config.to_dict(),
            "feature_names": self.feature_names,
            "feature_groups": self.feature_groups(),
            "prior": self.prior,
            "target_maps": self.target_maps,
            "count_maps": self.count_maps,
            "leaf_price": self.leaf_price,
            "global_log_price": self.global_log_price,
            "leaf_lookup": self.leaf_lookup,
            "vectorizers": {k: v.to_json() for k, v in self.vectorizers.items()},
            "svd": self.svd,
            "ridge_coef": self.ridge_coef,
            "ridge_intercept": self.ridge_intercept,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "FeatureEncoder":
        """Rebuild from :meth:`to_json` output. Raises KeyError/ValueError/TypeError on malformed input."""
        if raw.get("format") != ENCODER_FORMAT:
            raise ValueError(f"feature encoder format {raw.get('format')!r}, expected {ENCODER_FORMAT}")
        enc = cls(
            config=EncoderConfig(**raw["config"]),
            prior=float(raw["prior"]),
            target_maps={k: {str(a): float(b) for a, b in v.items()} for k, v in raw["target_maps"].items()},
            count_maps={k: {str(a): int(b) for a, b in v.items()} for k, v in raw["count_maps"].items()},
            leaf_price={str(k): float(v) for k, v in raw["leaf_price"].items()},
            global_log_price=float(raw["global_log_price"]),
            leaf_lookup={str(k): str(v) for k, v in raw["leaf_lookup"].items()},
            vectorizers={k: TextVectorizer.from_json(v) for k, v in raw["vectorizers"].items()},
            svd={k: [list(map(float, row)) for row in v] for k, v in raw["svd"].items()},
            ridge_coef={k: [float(x) for x in v] for k, v in raw["ridge_coef"].items()},
            ridge_intercept=float(raw["ridge_intercept"]),
        )
        if enc.feature_names != list(raw["feature_names"]):
            raise ValueError("feature list in the encoder does not match its state")
        return enc

