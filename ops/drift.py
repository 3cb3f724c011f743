"""Input drift of the discount model: PSI for numeric inputs, category-share shift for ``cat_0``.

The reference is the training distribution stored in the discount model's manifest
(``metadata["input_distribution"]``, see :func:`compute_input_distribution` for the format): decile bin edges
and the training share per bin for ``actual_price``, ``rating`` and ``rating_count``; the share per value for
``cat_0``.

* PSI (population stability index) = sum over bins of ``(live - train) * ln(live / train)`` (shares floored
  at 1e-4). Reading: < 0.1 no shift, 0.1-0.2 moderate, **> 0.2 significant** (the default threshold).
* Category shift: total-variation distance ``0.5 * sum |live - train|`` over ``cat_0`` values (values unseen
  in training pooled as ``__other__``), i.e. the share of traffic that would have to move to match training;
  **> 0.2 significant**. The category PSI is reported too.

Live: :class:`DriftMonitor` keeps a sliding window of prediction requests, exposes the figures as metrics and
at ``GET /admin/drift``, and logs a warning when a feature crosses its threshold. Offline:
``python -m ops.drift --catalog NEW.csv --model DIR`` (or ``--reference TRAIN.csv``) prints a drift report.
"""
from __future__ import annotations

import json
import logging
import math
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from core.errors import ArtifactError, MDIError
from core.settings import BaseAppSettings

log = logging.getLogger(__name__)

NUMERIC_FEATURES: tuple[str, ...] = ("actual_price", "rating", "rating_count")
CATEGORY_FEATURES: tuple[str, ...] = ("cat_0",)
OTHER = "__other__"
EPS = 1e-4
PSI_THRESHOLD = 0.2
SHARE_THRESHOLD = 0.2


# ------------------------------------------------------------------------------------------ reference
RIGHT_CLOSED = "right-closed; bin0=(-inf,e0], bin i=(e[i-1],e[i]], last=(e[-1],inf)"


@dataclass(frozen=True)
class NumericReference:
    """Training shares per bin. ``edges`` are the inner cut points (len = bins - 1); the outer bins are open
    so live values beyond the training range land in them. ``right_closed`` (the discount model's convention):
    bin ``i`` holds ``edges[i-1] < x <= edges[i]``; otherwise ``edges[i-1] <= x < edges[i]`` (np.histogram)."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    right_closed: bool = True

    def bin_shares(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        arr = np.asarray(values, dtype="float64")
        arr = arr[~np.isnan(arr)]
        if arr.size == 0:
            return np.zeros(len(self.shares))
        idx = np.searchsorted(np.asarray(self.edges), arr, side="left" if self.right_closed else "right")
        return np.bincount(idx, minlength=len(self.shares))[: len(self.shares)] / arr.size


@dataclass(frozen=True)
class CategoryReference:
    shares: Mapping[str, float]

    def value_shares(self, values: Iterable[str]) -> dict[str, float]:
        counts: dict[str, int] = {}
        n = 0
        for v in values:
            key = v if v in self.shares else OTHER
            counts[key] = counts.get(key, 0) + 1
            n += 1
        return {k: c / n for k, c in counts.items()} if n else {}


@dataclass(frozen=True)
class InputDistribution:
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoryReference]
    n_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The manifest form: ``{feature: {"edges": [...], "shares": [...]}, "cat_0": {"shares": {...}}}``."""
        out: dict[str, Any] = {"binning": RIGHT_CLOSED, "rows": self.n_rows}
        for name, ref in self.numeric.items():
            if not ref.right_closed:
                raise ValueError("to_dict writes the right-closed convention only")
            out[name] = {"edges": list(ref.edges), "shares": list(ref.shares)}
        out.update({name: {"shares": dict(ref.shares)} for name, ref in self.categorical.items()})
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "InputDistribution":
        """Parse the manifest form. Tolerates ``bin_edges``/``edges`` with either the inner cut points
        (bins - 1 values) or the full edges including min and max (bins + 1), ``shares``/``share``/``fractions``
        or raw ``counts``, and categorical shares given directly as ``{value: share}``. Bins are right-closed
        when ``binning`` says so (the discount model's format), else left-closed like ``np.histogram``."""
        if not isinstance(raw, Mapping):
            raise ArtifactError("input_distribution is not an object")
        right_closed = str(raw.get("binning", "")).startswith("right-closed")
        numeric: dict[str, NumericReference] = {}
        categorical: dict[str, CategoryReference] = {}
        for name in NUMERIC_FEATURES:
            spec = raw.get(name)
            if spec is None:
                continue
            edges = next((spec[k] for k in ("edges", "bin_edges", "bins") if k in spec), None)
            shares = next((spec[k] for k in ("shares", "share", "fractions", "proportions", "counts")
                           if k in spec), None)
            if edges is None or shares is None:
                raise ArtifactError(f"input_distribution.{name} needs bin edges and shares")
            edges_f = [float(e) for e in edges]
            shares_f = np.asarray([float(s) for s in shares], dtype="float64")
            if len(edges_f) == len(shares_f) + 1:
                edges_f = edges_f[1:-1]
            if len(edges_f) != len(shares_f) - 1 or shares_f.sum() <= 0:
                raise ArtifactError(f"input_distribution.{name}: {len(edges)} edges do not fit {len(shares_f)} bins")
            numeric[name] = NumericReference(tuple(edges_f), tuple((shares_f / shares_f.sum()).tolist()),
                                             right_closed)
        for name in CATEGORY_FEATURES:
            spec = raw.get(name)
            if spec is None:
                continue
            shares = spec.get("shares", spec) if isinstance(spec, Mapping) else None
            if not isinstance(shares, Mapping) or not shares:
                raise ArtifactError(f"input_distribution.{name} needs a {{value: share}} object")
            total = float(sum(float(v) for v in shares.values()))
            categorical[name] = CategoryReference({str(k): float(v) / total for k, v in shares.items()})
        if not numeric and not categorical:
            raise ArtifactError("input_distribution has none of " + ", ".join(NUMERIC_FEATURES + CATEGORY_FEATURES))
        return cls(numeric, categorical, int(raw.get("rows", raw.get("n_rows", 0)) or 0))


def compute_input_distribution(frame: Any, n_bins: int = 10) -> InputDistribution:
    """Training distribution from a cleaned catalog frame (``Catalog.frame``): unique decile cut points and
    right-closed shares per bin for the numeric inputs, share per ``cat_0`` value - the same format and
    convention as ``tools.discount.artifact.input_distribution`` (stored in the model's manifest), so a
    reference computed from a training CSV and one read from the model agree."""
    numeric = {}
    for name in NUMERIC_FEATURES:
        values = np.asarray(frame[name], dtype="float64")
        values = values[~np.isnan(values)]
        if values.size == 0:
            continue
        edges = sorted({float(e) for e in np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1])})
        ref = NumericReference(tuple(edges), tuple([1.0] + [0.0] * len(edges)))
        numeric[name] = NumericReference(ref.edges, tuple(ref.bin_shares(values).tolist()))
    categorical = {}
    for name in CATEGORY_FEATURES:
        counts = frame[name].astype(str).value_counts(normalize=True)
        categorical[name] = CategoryReference({str(k): float(v) for k, v in counts.items()})
    return InputDistribution(numeric, categorical, int(len(frame)))


def load_reference(model_dir: str | Path) -> InputDistribution:
    """The training input distribution from a discount model artifact folder's manifest."""
    path = Path(model_dir) / "manifest.json"
    if not path.is_file():
        raise ArtifactError(f"no discount model manifest at {path}", path=str(path))
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"discount model manifest {path} is unreadable: {exc}", path=str(path)) from exc
    raw = (manifest.get("metadata") or {}).get("input_distribution")
    if raw is None:
        raise ArtifactError(f"discount model manifest {path} has no metadata.input_distribution; rebuild it",
                            path=str(path))
    return InputDistribution.from_dict(raw)


# ------------------------------------------------------------------------------------------ statistics
def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, eps: float = EPS) -> float:
    """Population stability index between two share vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype="float64"), eps, None)
    a = np.clip(np.asarray(actual, dtype="float64"), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _category_vectors(ref: CategoryReference, live: Mapping[str, float]) -> tuple[list[str], np.ndarray, np.ndarray]:
    keys = sorted(set(ref.shares) | set(live) | {OTHER})
    return (keys, np.asarray([ref.shares.get(k, 0.0) for k in keys]),
            np.asarray([live.get(k, 0.0) for k in keys]))


@dataclass
class FeatureDrift:
    feature: str
    kind: str  # "numeric" | "category"
    n: int
    psi: float
    significant: bool
    total_variation: float | None = None
    live_shares: dict[str, float] | list[float] = field(default_factory=list)
    reference_shares: dict[str, float] | list[float] = field(default_factory=list)
    top_shifts: list[dict[str, float | str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {"feature": self.feature, "kind": self.kind, "n": self.n, "psi": round(self.psi, 4),
               "significant": self.significant}
        if self.total_variation is not None:
            out["total_variation"] = round(self.total_variation, 4)
            out["top_shifts"] = self.top_shifts
        else:
            out["live_shares"] = [round(float(s), 4) for s in self.live_shares]  # type: ignore[union-attr]
            out["reference_shares"] = [round(float(s), 4) for s in self.reference_shares]  # type: ignore[union-attr]
        return out


def numeric_drift(name: str, ref: NumericReference, values: Sequence[float] | np.ndarray,
                  threshold: float = PSI_THRESHOLD) -> FeatureDrift:
    live = ref.bin_shares(values)
    n = int(np.count_nonzero(~np.isnan(np.asarray(values, dtype="float64"))))
    value = psi(ref.shares, live) if n else 0.0
    return FeatureDrift(name, "numeric", n, value, n > 0 and value > threshold,
                        live_shares=live.tolist(), reference_shares=list(ref.shares))


def category_drift(name: str, ref: CategoryReference, values: Sequence[str], *,
                   psi_threshold: float = PSI_THRESHOLD, share_threshold: float = SHARE_THRESHOLD) -> FeatureDrift:
    live = ref.value_shares(values)
    keys, e, a = _category_vectors(ref, live)
    n = len(values)
    tv = float(0.5 * np.abs(a - e).sum()) if n else 0.0
    value = psi(e, a) if n else 0.0
    diffs = sorted(zip(keys, a - e), key=lambda kv: -abs(kv[1]))[:5]
    top = [{"value": k, "live": round(float(live.get(k, 0.0)), 4), "reference": round(float(ref.shares.get(k, 0.0)), 4)}
           for k, d in diffs if abs(d) > 1e-9]
    return FeatureDrift(name, "category", n, value, n > 0 and (tv > share_threshold or value > psi_threshold),
                        total_variation=tv, top_shifts=top)


@dataclass
class DriftReport:
    features: dict[str, FeatureDrift]
    n: int
    psi_threshold: float = PSI_THRESHOLD
    share_threshold: float = SHARE_THRESHOLD
    note: str = ""

    @property
    def significant(self) -> bool:
        return any(f.significant for f in self.features.values())

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "significant": self.significant, "drifted_features":
                [k for k, f in self.features.items() if f.significant],
                "thresholds": {"psi": self.psi_threshold, "category_total_variation": self.share_threshold},
                "features": {k: f.to_dict() for k, f in self.features.items()}, "note": self.note}

    def render(self) -> str:
        """Human-readable report (the CLI's output)."""
        lines = [f"drift report over {self.n} rows (PSI > {self.psi_threshold} or category shift > "
                 f"{self.share_threshold} = significant)"]
        for name, f in self.features.items():
            flag = "DRIFT" if f.significant else "ok"
            extra = f", category shift {f.total_variation:.3f}" if f.total_variation is not None else ""
            lines.append(f"  {name:<14} PSI {f.psi:8.3f}{extra}  [{flag}]")
            for shift in f.top_shifts[:3]:
                lines.append(f"      {shift['value']}: live {shift['live']:.3f} vs train {shift['reference']:.3f}")
        lines.append("verdict: " + ("SIGNIFICANT DRIFT in " + ", ".join(
            k for k, f in self.features.items() if f.significant) if self.significant else "no significant drift"))
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join(lines)


def compare(reference: InputDistribution, columns: Mapping[str, Sequence[Any]], *,
            psi_threshold: float = PSI_THRESHOLD, share_threshold: float = SHARE_THRESHOLD) -> DriftReport:
    """Drift of ``columns`` (feature -> values; a DataFrame works) against ``reference``."""
    features: dict[str, FeatureDrift] = {}
    n = 0
    for name, ref in reference.numeric.items():
        if name in columns:
            values = np.asarray(columns[name], dtype="float64")
            n = max(n, len(values))
            features[name] = numeric_drift(name, ref, values, psi_threshold)
    for name, ref in reference.categorical.items():
        if name in columns:
            values = [str(v) for v in columns[name] if v is not None and str(v) != ""]
            n = max(n, len(values))
            features[name] = category_drift(name, ref, values, psi_threshold=psi_threshold,
                                            share_threshold=share_threshold)
    return DriftReport(features, n, psi_threshold, share_threshold)


# ------------------------------------------------------------------------------------------ live monitor
def top_category(category: str | None, resolver: Callable[[str], str | None] | None = None) -> str | None:
    """``cat_0`` of a request's category: the first level of a ``|`` path, else ``resolver(leaf)``."""
    if not category:
        return None
    category = str(category).strip()
    if "|" in category:
        return category.split("|", 1)[0].strip() or None
    if resolver is not None:
        try:
            return resolver(category)
        except Exception:  # a resolver problem must never fail a prediction
            return None
    return None


class DriftMonitor:
    """Sliding window of live prediction inputs compared with the training distribution.

    ``record(args)`` is O(1) (a deque append under a lock); every ``check_every`` records the window is
    evaluated and a WARNING is logged for each feature that newly crosses its threshold (and an INFO when it
    recovers). ``report()`` evaluates on demand (admin endpoint, metrics scrape).
    """

    def __init__(self, reference: InputDistribution | Callable[[], InputDistribution | None] | None, *,
                 window: int = 1000, min_samples: int = 100, check_every: int = 100,
                 psi_threshold: float = PSI_THRESHOLD, share_threshold: float = SHARE_THRESHOLD,
                 category_resolver: Callable[[str], str | None] | None = None,
                 on_alert: Callable[[str], None] | None = None) -> None:
        self._reference_source = reference
        self._reference: InputDistribution | None = reference if isinstance(reference, InputDistribution) else None
        self._reference_error: str | None = None
        self.window, self.min_samples, self.check_every = window, min_samples, check_every
        self.psi_threshold, self.share_threshold = psi_threshold, share_threshold
        self.category_resolver = category_resolver
        self.on_alert = on_alert
        self._rows: deque[tuple[float, float, float, str | None]] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._since_check = 0
        self._alerting: set[str] = set()
        self.total_recorded = 0

    def set_reference(self, reference: InputDistribution | None) -> None:
        self._reference, self._reference_error = reference, None

    @property
    def reference(self) -> InputDistribution | None:
        if self._reference is None and callable(self._reference_source):
            try:
                self._reference = self._reference_source()
                self._reference_error = None
            except MDIError as exc:
                self._reference_error = exc.message
            except Exception as exc:  # pragma: no cover - defensive
                self._reference_error = f"{type(exc).__name__}: {exc}"
        return self._reference

    def record(self, args: Mapping[str, Any] | Any) -> None:
        """Add one prediction request (a dict or an object with category, actual_price, rating, rating_count)."""
        get = args.get if isinstance(args, Mapping) else (lambda k, d=None: getattr(args, k, d))

        def num(key: str) -> float:
            try:
                value = float(get(key))
                return value if math.isfinite(value) else math.nan
            except (TypeError, ValueError):
                return math.nan

        cat0 = get("cat_0") or top_category(get("category"), self.category_resolver)
        row = (num("actual_price"), num("rating"), num("rating_count"), cat0)
        with self._lock:
            self._rows.append(row)
            self.total_recorded += 1
            self._since_check += 1
            due = self._since_check >= self.check_every
            if due:
                self._since_check = 0
        if due:
            self.check()

    def _columns(self) -> dict[str, list[Any]]:
        with self._lock:
            rows = list(self._rows)
        return {"actual_price": [r[0] for r in rows], "rating": [r[1] for r in rows],
                "rating_count": [r[2] for r in rows], "cat_0": [r[3] for r in rows if r[3]]}

    def report(self) -> DriftReport | None:
        """Current drift figures, or None (with :attr:`status` saying why) when there is no reference or the
        window holds fewer than ``min_samples`` requests."""
        reference = self.reference
        if reference is None:
            return None
        cols = self._columns()
        if len(cols["actual_price"]) < self.min_samples:
            return None
        report = compare(reference, cols, psi_threshold=self.psi_threshold, share_threshold=self.share_threshold)
        unresolved = len(cols["actual_price"]) - len(cols["cat_0"])
        if unresolved:
            report.note = f"{unresolved} request(s) named a leaf category that could not be mapped to cat_0"
        return report

    def status(self) -> dict[str, Any]:
        """The admin endpoint's body: window state plus the report (or why there is none)."""
        report = self.report()
        body: dict[str, Any] = {"window_size": len(self._rows), "window_capacity": self.window,
                                "min_samples": self.min_samples, "total_recorded": self.total_recorded,
                                "thresholds": {"psi": self.psi_threshold,
                                               "category_total_variation": self.share_threshold}}
        if self._reference is None:
            body["status"] = "no_reference"
            body["reason"] = self._reference_error or "no training distribution configured"
        elif report is None:
            body["status"] = "collecting"
            body["reason"] = f"{len(self._rows)} of {self.min_samples} requests needed before drift is computed"
        else:
            body["status"] = "drift" if report.significant else "ok"
            body["report"] = report.to_dict()
        return body

    def check(self) -> DriftReport | None:
        """Evaluate the window; log a warning for each feature that newly crossed its threshold."""
        report = self.report()
        if report is None:
            return None
        for name, f in report.features.items():
            if f.significant and name not in self._alerting:
                self._alerting.add(name)
                log.warning("input drift on %s: PSI %.3f%s over the last %d requests (threshold %.2f)",
                            name, f.psi, "" if f.total_variation is None else f", shift {f.total_variation:.3f}",
                            f.n, self.psi_threshold, extra={"drift_feature": name, "psi": round(f.psi, 4)})
                if self.on_alert is not None:
                    self.on_alert(name)
            elif not f.significant and name in self._alerting:
                self._alerting.discard(name)
                log.info("input drift on %s back under threshold (PSI %.3f)", name, f.psi)
        return report

    def gauges(self) -> dict[tuple[str, str], float]:
        """``{(feature, statistic): value}`` for the metrics collector (psi, total_variation, significant)."""
        report = self.report()
        if report is None:
            return {}
        out: dict[tuple[str, str], float] = {}
        for name, f in report.features.items():
            out[(name, "psi")] = f.psi
            out[(name, "significant")] = float(f.significant)
            if f.total_variation is not None:
                out[(name, "total_variation")] = f.total_variation
        return out


# ------------------------------------------------------------------------------------------ CLI
class DriftCliSettings(BaseAppSettings):
    """``python -m ops.drift --catalog NEW.csv (--model DIR | --reference TRAIN.csv) [--json-output]``."""

    catalog: Path
    model: Path | None = None
    reference: Path | None = None
    psi_threshold: float = PSI_THRESHOLD
    share_threshold: float = SHARE_THRESHOLD
    json_output: bool = False


def catalog_report(catalog: str | Path, reference: InputDistribution, *, psi_threshold: float = PSI_THRESHOLD,
                   share_threshold: float = SHARE_THRESHOLD) -> DriftReport:
    """Drift of a catalog CSV (raw schema, validated with the project loader) against ``reference``."""
    from data.catalog import load_catalog

    frame = load_catalog(catalog).frame
    return compare(reference, frame, psi_threshold=psi_threshold, share_threshold=share_threshold)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point. Exit code 0: no significant drift, 1: significant drift, 2: error."""
    from core.logging import setup_logging
    from core.settings import load_settings

    setup_logging("WARNING")
    try:
        settings = load_settings(DriftCliSettings, sys.argv[1:] if argv is None else argv, prog="python -m ops.drift",
                                 log_start=False)
        if settings.model is not None:
            reference = load_reference(settings.model)
            source = f"model {settings.model}"
        elif settings.reference is not None:
            from data.catalog import load_catalog

            reference = compute_input_distribution(load_catalog(settings.reference).frame)
            source = f"catalog {settings.reference}"
        else:
            print("error: give --model DIR (discount model artifact) or --reference TRAIN.csv", file=sys.stderr)
            return 2
        report = catalog_report(settings.catalog, reference, psi_threshold=settings.psi_threshold,
                                share_threshold=settings.share_threshold)
    except MDIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.json_output:
        print(json.dumps({"catalog": str(settings.catalog), "reference": source, **report.to_dict()}, indent=2))
    else:
        print(f"catalog {settings.catalog} vs training distribution from {source}")
        print(report.render())
    return 1 if report.significant else 0


if __name__ == "__main__":
    sys.exit(main())
