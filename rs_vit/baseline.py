"""Honest baselines: a per-pixel classifier trained on the pixels a ``rs-vit train`` run would use.

A transformer (or any deep model) earns its cost only if it beats a classifier that looks at one
pixel at a time. :func:`fit_baseline` trains a scikit-learn random forest
(``random_forest``) or histogram gradient boosting (``gradient_boosting``) on the band values of
the *training* pixels of a training config (same scenes, bands, labels, nodata and ignore values,
same spatial split as :func:`rs_vit.data.scenes.load_scene` makes for that seed and tile size),
optionally with band indices computed from named bands (NDVI, NDWI, MNDWI, NDBI).

Training pixels are a class-balanced sample with a cap (``max_pixels`` in all, at most
``max_pixels // classes`` per class, drawn uniformly within each class by priority sampling while
the training cells are read strip by strip), so memory is bounded whatever the scene size.

**Safe format.** A fitted baseline is not pickled. Its trees are converted into plain arrays
(split feature, threshold, children, leaf values) stored in ``baseline.safetensors`` next to
``baseline.json`` (bands, features, classes, method, how it was trained, and the SHA-256 of the
tensor file). :func:`load_baseline` reads only these arrays and JSON (no code runs), checks the
format tag, the hash and every index (children and features in range), and predicts with its own
tree walk: scikit-learn's compiled ``Tree.apply`` on trees rebuilt from those arrays when
scikit-learn is installed (up to 4× faster than NumPy in the measurements of docs/training.md),
else a vectorised NumPy walk, so prediction does not need scikit-learn at all; both give the
leaves, and so the probabilities, scikit-learn gives (tested). The hash check catches truncated
or edited files; the safety comes from the format itself.

:func:`predict_baseline_scene` writes a georeferenced, nodata-aware class mask strip by strip
(bounded memory) with the same atomic writer as ``rs-vit predict``; :func:`evaluate_baseline`
scores the validation split exactly like :func:`rs_vit.evaluate.evaluator.evaluate_checkpoint`
scores a model. :func:`run_baseline` does all three and is what ``rs-vit baseline`` calls.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rs_vit.errors import CheckpointError, ConfigError, InputError

__all__ = [
    "INDICES", "METHODS", "BaselineOptions", "PixelClassifier", "evaluate_baseline", "fit_baseline",
    "load_baseline", "predict_baseline_scene", "run_baseline", "sample_training_pixels",
]

FORMAT = "rs-vit-baseline"
FORMAT_VERSION = 1
WEIGHTS_FILE = "baseline.safetensors"
META_FILE = "baseline.json"

#: Methods and the scikit-learn estimator each uses.
METHODS = {"random_forest": "sklearn.ensemble.RandomForestClassifier",
           "gradient_boosting": "sklearn.ensemble.HistGradientBoostingClassifier"}

#: Normalised-difference indices ``(a - b) / (a + b)`` by canonical band names (rs_vit.io.bands).
INDICES: dict[str, tuple[str, str]] = {
    "ndvi": ("nir", "red"),  # vegetation
    "ndwi": ("green", "nir"),  # open water (McFeeters)
    "mndwi": ("green", "swir16"),  # open water, built-up suppressed (Xu)
    "ndbi": ("swir16", "nir"),  # built-up
}

INSTALL_HINT = "install it with: pip install scikit-learn (a dependency of rs-vit since the baseline)"


def _sklearn() -> Any:
    try:
        import sklearn.ensemble
    except ImportError:
        raise ConfigError(f"rs-vit baseline needs scikit-learn to fit a classifier; {INSTALL_HINT}.") from None
    return sklearn.ensemble


@dataclass
class BaselineOptions:
    """How the per-pixel baseline is trained.

    Attributes:
        method: ``random_forest`` or ``gradient_boosting``.
        indices: band indices added to the band values (names of :data:`INDICES`).
        max_pixels: cap on training pixels (class-balanced: at most ``max_pixels // classes``
            per class).
        n_estimators: trees of the forest, or boosting iterations.
        max_depth: maximum tree depth (None: unlimited for the forest, 31 leaves per tree for
            boosting).
        min_samples_leaf: minimum training pixels per leaf (None: the estimator's default, 1
            for the forest and 20 for boosting).
        learning_rate: boosting shrinkage (gradient_boosting only).
        seed: seed of the pixel sample and of the estimator.
        n_jobs: worker threads for fitting the forest (-1: all cores).
    """

    method: str = "random_forest"
    indices: tuple[str, ...] = ()
    max_pixels: int = 200_000
    n_estimators: int = 100
    max_depth: int | None = None
    min_samples_leaf: int | None = None
    learning_rate: float = 0.1
    seed: int = 0
    n_jobs: int = -1

    def __post_init__(self) -> None:
        from rs_vit.errors import suggest

        if self.method not in METHODS:
            raise ConfigError(f"Unknown baseline method {self.method!r}.{suggest(self.method, METHODS)} "
                              f"Choose one of {', '.join(METHODS)}.")
        self.indices = tuple(str(i).strip().lower() for i in self.indices if str(i).strip())
        for name in self.indices:
            if name not in INDICES:
                raise ConfigError(f"Unknown band index {name!r}.{suggest(name, INDICES)} "
                                  f"Valid indices: {', '.join(INDICES)}.")
        if self.max_pixels < 2:
            raise ConfigError(f"max_pixels must be at least 2, got {self.max_pixels}.")
        if self.n_estimators < 1:
            raise ConfigError(f"n_estimators must be at least 1, got {self.n_estimators}.")
        if self.max_depth is not None and self.max_depth < 1:
            raise ConfigError(f"max_depth must be at least 1 (or None), got {self.max_depth}.")
        if self.min_samples_leaf is not None and self.min_samples_leaf < 1:
            raise ConfigError(f"min_samples_leaf must be at least 1, got {self.min_samples_leaf}.")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}.")


# -- features ----------------------------------------------------------------------------------


def feature_names(bands: Sequence[str], indices: Sequence[str]) -> list[str]:
    """Names of the classifier's inputs: the bands, then the indices."""
    return [*bands, *indices]


def check_indices(bands: Sequence[str], indices: Sequence[str], *, source: str = "the scenes") -> None:
    """Refuse indices whose bands are missing, naming the bands available."""
    for name in indices:
        missing = [b for b in INDICES[name] if b not in bands]
        if missing:
            raise ConfigError(
                f"Band index {name} needs bands {list(INDICES[name])} but {source} lack {missing} "
                f"(bands: {', '.join(bands)}); drop {name} or name the bands (--bands / --sensor)."
            )


def compute_features(raw: np.ndarray, bands: Sequence[str], indices: Sequence[str]) -> np.ndarray:
    """``(F, n)`` float32 features of ``(C, n)`` raw pixel values: the bands, then the indices
    (``(a - b) / (a + b)``, 0 where ``a + b`` is 0)."""
    x = np.asarray(raw, dtype=np.float32)
    if not indices:
        return np.ascontiguousarray(x)
    out = np.empty((x.shape[0] + len(indices), x.shape[1]), np.float32)
    out[: x.shape[0]] = x
    pos = {b: i for i, b in enumerate(bands)}
    for j, name in enumerate(indices):
        a, b = (x[pos[n]].astype(np.float64) for n in INDICES[name])
        s = a + b
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(s != 0, (a - b) / np.where(s != 0, s, 1.0), 0.0)
        out[x.shape[0] + j] = v
    return out


# -- the safe tree-ensemble model --------------------------------------------------------------


@dataclass
class PixelClassifier:
    """A fitted per-pixel tree ensemble as plain arrays (see the module docstring).

    Nodes of all trees are concatenated; leaves point to themselves, so every tree can be walked
    the same number of steps (``depth``). ``kind`` ``forest``: class probabilities are the mean of
    the trees' leaf distributions; ``boosting``: the raw score of class ``k`` is
    ``baseline[k]`` plus the leaf values of the trees of class ``k``, then softmax (or sigmoid for
    two classes).
    """

    method: str
    kind: str  # "forest" | "boosting"
    bands: list[str]
    indices: list[str]
    classes: list[dict[str, Any]]  # [{id, name, color}] of the training config (all classes)
    class_ids: list[int]  # class id of each output column (classes seen in training)
    feature: np.ndarray  # (N,) int32
    threshold: np.ndarray  # (N,) float64
    left: np.ndarray  # (N,) int32 (global node index; leaves: themselves)
    right: np.ndarray  # (N,) int32
    missing_left: np.ndarray  # (N,) bool: NaN goes left
    value: np.ndarray  # (N, V) float32: leaf class distribution (forest) or leaf score (boosting, V=1)
    roots: np.ndarray  # (T,) int64
    tree_class: np.ndarray  # (T,) int32: output column of each boosting tree (forest: 0)
    base_score: np.ndarray  # (K',) float64 (boosting)
    depth: int
    nodata: float | None = None
    ignore_index: int = 255
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [str(c["name"]) for c in self.classes]

    @property
    def n_features(self) -> int:
        return len(self.bands) + len(self.indices)

    def _is_leaf(self) -> np.ndarray:
        cached = self.__dict__.get("_leaf_cache")
        if cached is None or len(cached) != len(self.left):
            cached = self.left == np.arange(len(self.left))
            self.__dict__["_leaf_cache"] = cached
        return cached

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """``(T, n)`` leaf index of every tree for features ``x`` ``(F, n)``.

        All trees descend together, one level per step, on the (tree, pixel) pairs that have not
        reached a leaf yet (the active set is compacted as pairs finish)."""
        F, n = x.shape
        T = len(self.roots)
        xf = np.ascontiguousarray(x, np.float32).reshape(-1)  # x[f, p] == xf[f * n + p]
        node = np.repeat(self.roots.astype(np.int64)[:, None], n, axis=1).reshape(-1)
        pix = np.tile(np.arange(n, dtype=np.int64), T)
        has_nan = bool(np.isnan(xf).any())
        leaf = self._is_leaf()
        act = np.flatnonzero(~leaf[node])
        for _ in range(self.depth):
            if act.size == 0:
                break
            cur = node[act]
            xv = xf[self.feature[cur] * n + pix[act]]
            go_left = xv <= self.threshold[cur]
            if has_nan:
                go_left |= np.isnan(xv) & self.missing_left[cur]
            nxt = np.where(go_left, self.left[cur], self.right[cur])
            node[act] = nxt
            act = act[~leaf[nxt]]
        return node.reshape(T, n)

    def _compiled_trees(self) -> list[Any] | None:
        """scikit-learn ``Tree`` objects rebuilt from the arrays (plain numbers, nothing unpickled)
        for a compiled tree walk, or None when scikit-learn is missing or its private layout
        differs (then :meth:`leaves` walks the trees in NumPy; both give the same leaves)."""
        if "_compiled" in self.__dict__:
            return self.__dict__["_compiled"]
        trees = None
        try:
            from sklearn.tree._tree import NODE_DTYPE, Tree

            ends = [*self.roots[1:].tolist(), len(self.left)]
            is_leaf = self._is_leaf()
            trees = []
            for r, e in zip(self.roots.tolist(), ends):
                n = e - r
                nodes = np.zeros(n, dtype=NODE_DTYPE)
                leaf = is_leaf[r:e]
                nodes["left_child"] = np.where(leaf, -1, self.left[r:e] - r)
                nodes["right_child"] = np.where(leaf, -1, self.right[r:e] - r)
                nodes["feature"] = np.where(leaf, -2, self.feature[r:e])
                nodes["threshold"] = np.where(leaf, -2.0, self.threshold[r:e])
                nodes["missing_go_to_left"] = self.missing_left[r:e]
                nodes["n_node_samples"] = 1
                nodes["weighted_n_node_samples"] = 1.0
                tree = Tree(self.n_features, np.array([1], dtype=np.intp), 1)
                tree.__setstate__({"max_depth": int(self.depth), "node_count": n, "nodes": nodes,
                                   "values": np.zeros((n, 1, 1))})
                trees.append(tree)
        except Exception:  # noqa: BLE001 - any mismatch: use the NumPy walk
            trees = None
        self.__dict__["_compiled"] = trees
        return trees

    def leaves_fast(self, x: np.ndarray) -> np.ndarray:
        """:meth:`leaves` through scikit-learn's compiled ``Tree.apply`` when available."""
        trees = self._compiled_trees()
        if trees is None:
            return self.leaves(x)
        xt = np.ascontiguousarray(np.asarray(x, np.float32).T)
        return np.stack([t.apply(xt) + r for t, r in zip(trees, self.roots.tolist())])

    def predict_proba_features(self, x: np.ndarray, chunk: int | None = None) -> np.ndarray:
        """``(K, n)`` float32 probabilities over *all* classes for features ``(F, n)``."""
        x = np.asarray(x, np.float32)
        n = x.shape[1]
        T = len(self.roots)
        chunk = chunk or max(256, 4_000_000 // max(T, 1))  # (T, chunk) temporaries of a few MB
        out = np.zeros((self.num_classes, n), np.float32)
        col = {cid: i for i, cid in enumerate(c["id"] for c in self.classes)}
        cols = [col[c] for c in self.class_ids]
        for s in range(0, n, chunk):
            leaves = self.leaves_fast(x[:, s:s + chunk])  # (T, m)
            if self.kind == "forest":
                p = self.value[leaves].sum(0, dtype=np.float64) / T  # (m, V)
            else:
                raw = np.tile(self.base_score[:, None], (1, leaves.shape[1]))  # (K', m)
                vals = self.value[leaves, 0]  # (T, m)
                for k in range(len(self.base_score)):
                    raw[k] += vals[self.tree_class == k].sum(0, dtype=np.float64)
                if len(self.base_score) == 1:  # binary: sigmoid of the positive class's score
                    p1 = 0.5 * (1.0 + np.tanh(0.5 * raw[0]))  # the logistic function, without overflow
                    p = np.stack([1.0 - p1, p1], 1)
                else:
                    raw -= raw.max(0, keepdims=True)
                    e = np.exp(raw)
                    p = (e / e.sum(0, keepdims=True)).T
            out[cols, s:s + chunk] = p.T.astype(np.float32)
        return out

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        """``(K, n)`` probabilities for raw pixel values ``(C, n)`` in the order of :attr:`bands`."""
        return self.predict_proba_features(compute_features(raw, self.bands, self.indices))

    def predict_image(self, image: np.ndarray, invalid: np.ndarray | None = None) -> np.ndarray:
        """Class ids ``(h, w)`` int64 of a raw ``(C, h, w)`` image; ``num_classes`` where invalid."""
        c, h, w = image.shape
        flat = image.reshape(c, -1)
        out = np.full(h * w, self.num_classes, np.int64)
        ok = np.ones(h * w, bool) if invalid is None else ~invalid.reshape(-1)
        if ok.any():
            proba = self.predict_proba(flat[:, ok])
            ids = np.array([c["id"] for c in self.classes], np.int64)
            out[ok] = ids[proba.argmax(0)]
        return out.reshape(h, w)

    # -- persistence -------------------------------------------------------------------------

    def tensors(self) -> dict[str, np.ndarray]:
        return {"feature": self.feature.astype(np.int32), "threshold": self.threshold.astype(np.float64),
                "left": self.left.astype(np.int32), "right": self.right.astype(np.int32),
                "missing_left": self.missing_left.astype(np.uint8), "value": self.value.astype(np.float32),
                "roots": self.roots.astype(np.int64), "tree_class": self.tree_class.astype(np.int32),
                "base_score": self.base_score.astype(np.float64)}

    def meta(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "method": self.method, "kind": self.kind,
                "bands": list(self.bands), "indices": list(self.indices), "classes": self.classes,
                "class_ids": [int(c) for c in self.class_ids], "depth": int(self.depth),
                "nodata": self.nodata, "ignore_index": int(self.ignore_index), "info": self.info}


def _from_forest(est: Any) -> dict[str, Any]:
    """Arrays of a fitted ``RandomForestClassifier`` (leaf class distributions)."""
    feats, thr, left, right, miss, value, roots, depth, off = [], [], [], [], [], [], [], 0, 0
    for tree in est.estimators_:
        t = tree.tree_
        n = t.node_count
        lf, rt = t.children_left.astype(np.int64), t.children_right.astype(np.int64)
        is_leaf = lf < 0
        idx = np.arange(n)
        left.append(np.where(is_leaf, idx, lf) + off)
        right.append(np.where(is_leaf, idx, rt) + off)
        feats.append(np.where(is_leaf, 0, t.feature))
        thr.append(np.where(is_leaf, 0.0, t.threshold))
        mgl = getattr(t, "missing_go_to_left", None)  # scikit-learn >= 1.3 routes NaN per node
        miss.append(np.zeros(n, bool) if mgl is None else (np.asarray(mgl).astype(bool) & ~is_leaf))
        v = t.value[:, 0, :].astype(np.float64)
        v = v / np.maximum(v.sum(1, keepdims=True), 1e-300)  # as DecisionTreeClassifier.predict_proba
        value.append(v)
        roots.append(off)
        depth = max(depth, int(t.max_depth))
        off += n
    return {"kind": "forest", "feature": np.concatenate(feats), "threshold": np.concatenate(thr),
            "left": np.concatenate(left), "right": np.concatenate(right),
            "missing_left": np.concatenate(miss), "value": np.concatenate(value).astype(np.float32),
            "roots": np.array(roots, np.int64), "tree_class": np.zeros(len(roots), np.int32),
            "base_score": np.zeros(0), "depth": depth, "class_ids": [int(c) for c in est.classes_]}


def _from_boosting(est: Any) -> dict[str, Any]:
    """Arrays of a fitted ``HistGradientBoostingClassifier`` (numerical features only)."""
    feats, thr, left, right, miss, value, roots, tclass, depth, off = [], [], [], [], [], [], [], [], 0, 0
    for per_class in est._predictors:
        for k, pred in enumerate(per_class):
            nd = pred.nodes
            n = len(nd)
            is_leaf = nd["is_leaf"].astype(bool)
            if np.any(nd["is_categorical"][~is_leaf]):
                raise ConfigError("gradient_boosting with categorical features cannot be exported.")
            idx = np.arange(n)
            left.append(np.where(is_leaf, idx, nd["left"]).astype(np.int64) + off)
            right.append(np.where(is_leaf, idx, nd["right"]).astype(np.int64) + off)
            feats.append(np.where(is_leaf, 0, nd["feature_idx"]))
            thr.append(np.where(is_leaf, 0.0, nd["num_threshold"]))
            miss.append(nd["missing_go_to_left"].astype(bool) & ~is_leaf)
            value.append(np.where(is_leaf, nd["value"], 0.0)[:, None])
            roots.append(off)
            tclass.append(k)
            depth = max(depth, int(nd["depth"].max()))
            off += n
    base = np.asarray(est._baseline_prediction, np.float64).reshape(-1)
    return {"kind": "boosting", "feature": np.concatenate(feats), "threshold": np.concatenate(thr),
            "left": np.concatenate(left), "right": np.concatenate(right),
            "missing_left": np.concatenate(miss), "value": np.concatenate(value).astype(np.float32),
            "roots": np.array(roots, np.int64), "tree_class": np.array(tclass, np.int32),
            "base_score": base, "depth": depth, "class_ids": [int(c) for c in est.classes_]}


def from_sklearn(est: Any, *, method: str, bands: Sequence[str], indices: Sequence[str],
                 classes: list[dict[str, Any]], nodata: float | None = None, ignore_index: int = 255,
                 info: dict[str, Any] | None = None) -> PixelClassifier:
    """Convert a fitted scikit-learn forest or histogram gradient boosting into a :class:`PixelClassifier`."""
    arrays = _from_forest(est) if hasattr(est, "estimators_") else _from_boosting(est)
    # node indices may be int64 in the conversion; the stored arrays are int32
    if len(arrays["left"]) >= 2**31:
        raise ConfigError("The fitted ensemble has more than 2^31 nodes; lower n_estimators or raise min_samples_leaf.")
    for k in ("feature", "left", "right"):
        arrays[k] = arrays[k].astype(np.int32)
    return PixelClassifier(method=method, bands=list(bands), indices=list(indices), classes=classes,
                           nodata=nodata, ignore_index=ignore_index, info=dict(info or {}), **arrays)


def save_baseline(clf: PixelClassifier, folder: str | Path) -> Path:
    """Write ``baseline.safetensors`` and ``baseline.json`` (with the tensor file's SHA-256) atomically."""
    from safetensors.numpy import save

    from rs_vit.io.atomic import atomic_write_bytes, atomic_write_text

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    blob = save(clf.tensors(), metadata={"format": FORMAT})
    atomic_write_bytes(out / WEIGHTS_FILE, blob)
    meta = {**clf.meta(), "sha256": hashlib.sha256(blob).hexdigest()}
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=2, default=_json_default) + "\n")
    return out


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def is_baseline(folder: str | Path) -> bool:
    """Whether ``folder`` holds a baseline written by :func:`save_baseline`."""
    return (Path(folder) / META_FILE).is_file()


def load_baseline(folder: str | Path) -> PixelClassifier:
    """Load a baseline written by :func:`save_baseline`; no code is unpickled or run.

    Raises:
        CheckpointError: not a baseline folder, another format, a hash mismatch (truncated or
            edited file), or arrays that are inconsistent (indices out of range).
    """
    from safetensors.numpy import load

    d = Path(folder)
    mpath, wpath = d / META_FILE, d / WEIGHTS_FILE
    if not mpath.is_file() or not wpath.is_file():
        raise CheckpointError(f"{d}: is not an rs-vit baseline (needs {META_FILE} and {WEIGHTS_FILE}); "
                              "write one with `rs-vit baseline`.")
    try:
        meta = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{mpath}: is not valid JSON ({exc}); re-create the baseline.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{mpath}: is not an rs-vit baseline file (format {FORMAT!r} expected).")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{mpath}: was written by a newer rs-vit (format {meta['format_version']}); "
                              "upgrade rs-vit.")
    blob = wpath.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise CheckpointError(f"{wpath}: does not match the SHA-256 in {META_FILE} (truncated, corrupt or "
                              "edited); re-create the baseline with `rs-vit baseline`.")
    try:
        t = load(blob)
        clf = PixelClassifier(
            method=str(meta["method"]), kind=str(meta["kind"]), bands=[str(b) for b in meta["bands"]],
            indices=[str(i) for i in meta["indices"]], classes=list(meta["classes"]),
            class_ids=[int(c) for c in meta["class_ids"]], feature=t["feature"].astype(np.int64),
            threshold=t["threshold"], left=t["left"].astype(np.int64), right=t["right"].astype(np.int64),
            missing_left=t["missing_left"].astype(bool), value=t["value"], roots=t["roots"],
            tree_class=t["tree_class"], base_score=t["base_score"], depth=int(meta["depth"]),
            nodata=meta.get("nodata"), ignore_index=int(meta.get("ignore_index", 255)),
            info=dict(meta.get("info") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{d}: incomplete baseline ({type(exc).__name__}: {exc}); re-create it.") from None
    _validate(clf, d)
    return clf


def _validate(clf: PixelClassifier, where: Path) -> None:
    N = len(clf.left)
    ok = (
        clf.kind in ("forest", "boosting") and clf.method in METHODS
        and all(i in INDICES for i in clf.indices)
        and len(clf.right) == N and len(clf.feature) == N and len(clf.threshold) == N
        and len(clf.missing_left) == N and clf.value.ndim == 2 and clf.value.shape[0] == N
        and N > 0 and len(clf.roots) > 0 and len(clf.tree_class) == len(clf.roots)
        and bool(np.all((clf.left >= 0) & (clf.left < N) & (clf.right >= 0) & (clf.right < N)))
        and bool(np.all((clf.roots >= 0) & (clf.roots < N)))
        and bool(np.all((clf.feature >= 0) & (clf.feature < clf.n_features)))
        and 0 <= clf.depth < 10_000
        and len(set(clf.class_ids)) == len(clf.class_ids)
        and set(clf.class_ids) <= {int(c["id"]) for c in clf.classes}
    )
    if ok and clf.kind == "forest":
        ok = clf.value.shape[1] == len(clf.class_ids)
    if ok and clf.kind == "boosting":
        k = len(clf.base_score)
        ok = clf.value.shape[1] == 1 and (k == len(clf.class_ids) or (k == 1 and len(clf.class_ids) == 2)) \
            and bool(np.all((clf.tree_class >= 0) & (clf.tree_class < k)))
    if not ok:
        raise CheckpointError(f"{where}: the baseline's arrays are inconsistent (indices out of range or "
                              "shapes that do not match); re-create it with `rs-vit baseline`.")


# -- training pixels ---------------------------------------------------------------------------


@dataclass
class PixelSample:
    """Training pixels: features ``x`` ``(n, F)``, class ids ``y`` ``(n,)`` and per-class counts."""

    x: np.ndarray
    y: np.ndarray
    available: dict[int, int]  # labelled training pixels of each class (before the cap)
    bands: list[str]
    scenes: list[str]


def _load_training_scenes(config: Any) -> tuple[list[Any], list[str]]:
    """The scenes of a training config, loaded and split exactly as ``rs-vit train`` loads them."""
    from rs_vit.train.loop import load_training_scenes

    if len(config.data.classes) < 2:
        raise ConfigError("data.classes must declare at least two classes (e.g. --classes classes.yaml).")
    return load_training_scenes(config)


def _strips(r0: int, r1: int, c0: int, c1: int, max_pixels: int = 1_000_000) -> list[tuple[int, int]]:
    rows = max(1, max_pixels // max(1, c1 - c0))
    return [(r, min(r1, r + rows)) for r in range(r0, r1, rows)]


def sample_training_pixels(config: Any, *, max_pixels: int = 200_000, indices: Sequence[str] = (),
                           seed: int = 0, role: int | None = None) -> PixelSample:
    """A class-balanced sample of the training pixels of ``config`` (bounded memory).

    Every scene is loaded with :func:`rs_vit.data.scenes.load_scene` (bands by name, labels,
    nodata, ``ignore_index``/``ignore_values``, the spatial split of ``train.seed`` and
    ``train.tile_size``); only pixels of its train cells (``role``, default TRAIN) whose label is a
    declared class count. Each class keeps a uniform random sample of at most
    ``max_pixels // classes`` pixels (priority sampling over strips of at most a megapixel).

    Raises:
        ConfigError: no labelled training pixel, or indices whose bands are missing.
    """
    from rs_vit.data.split import TRAIN

    role = TRAIN if role is None else role
    scenes, bands = _load_training_scenes(config)
    check_indices(bands, indices)
    class_ids = [c.id for c in config.data.classes]
    cap = max(1, max_pixels // len(class_ids))
    rng = np.random.default_rng(seed)
    keep: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # class -> (priorities (m,), features (F, m))
    available = {k: 0 for k in class_ids}
    F = len(bands) + len(indices)
    for s in scenes:
        for r0, r1, c0, c1 in s.split.cells(role):
            for a, b in _strips(r0, r1, c0, c1):
                img, lab, _ = s.read(a, c0, b - a, c1 - c0)
                for k in class_ids:
                    sel = np.flatnonzero(lab.reshape(-1) == k)
                    if sel.size == 0:
                        continue
                    available[k] += int(sel.size)
                    prio = rng.random(sel.size)
                    old_p, old_x = keep.get(k, (np.zeros(0), np.zeros((F, 0), np.float32)))
                    if old_p.size >= cap:  # only pixels that beat the current cap-th priority can enter
                        thresh = old_p.max()
                        m = prio < thresh
                        sel, prio = sel[m], prio[m]
                    if sel.size > cap:
                        part = np.argpartition(prio, cap - 1)[:cap]
                        sel, prio = sel[part], prio[part]
                    if sel.size == 0:
                        continue
                    feats = compute_features(img.reshape(img.shape[0], -1)[:, sel], bands, indices)
                    p = np.concatenate([old_p, prio])
                    x = np.concatenate([old_x, feats], 1)
                    if p.size > cap:
                        part = np.argpartition(p, cap - 1)[:cap]
                        p, x = p[part], x[:, part]
                    keep[k] = (p, x)
    if not keep:
        raise ConfigError("No labelled training pixel: every training pixel is nodata, ignored or of an "
                          "undeclared class; check the labels, data.ignore_values and the split.")
    xs, ys = [], []
    for k in sorted(keep):
        p, x = keep[k]
        order = np.argsort(p, kind="stable")  # deterministic order
        xs.append(x[:, order])
        ys.append(np.full(p.size, k, np.int64))
    return PixelSample(np.ascontiguousarray(np.concatenate(xs, 1).T), np.concatenate(ys), available, bands,
                       [str(s.info.path) for s in scenes])


# -- fit, predict, evaluate ----------------------------------------------------------------------


def _estimator(opts: BaselineOptions) -> Any:
    ens = _sklearn()
    if opts.method == "random_forest":
        return ens.RandomForestClassifier(
            n_estimators=opts.n_estimators, max_depth=opts.max_depth, min_samples_leaf=opts.min_samples_leaf or 1,
            n_jobs=opts.n_jobs, random_state=opts.seed)
    return ens.HistGradientBoostingClassifier(
        max_iter=opts.n_estimators, max_depth=opts.max_depth, min_samples_leaf=opts.min_samples_leaf or 20,
        learning_rate=opts.learning_rate, random_state=opts.seed, early_stopping=False)


def fit_baseline(config: Any, options: BaselineOptions | None = None, *,
                 log: Callable[[str], None] = print) -> PixelClassifier:
    """Fit the per-pixel baseline on the training pixels of a training config.

    Args:
        config: a :class:`rs_vit.config.RunConfig` (the one ``rs-vit train`` would use).
        options: method, indices, pixel cap, estimator settings.
        log: receives one line per step.

    Returns:
        The fitted classifier (``info`` records pixels per class, times, the split and versions).
    """
    import sklearn

    opts = options or BaselineOptions()
    t0 = time.perf_counter()
    sample = sample_training_pixels(config, max_pixels=opts.max_pixels, indices=opts.indices, seed=opts.seed)
    t_sample = time.perf_counter() - t0
    present = sorted(set(sample.y.tolist()))
    if len(present) < 2:
        raise ConfigError(f"The training pixels hold only class {present}; a classifier needs at least two "
                          "classes (check the labels and the split).")
    counts = {int(k): int((sample.y == k).sum()) for k in present}
    log(f"Training pixels (class-balanced sample, cap {opts.max_pixels}): "
        + ", ".join(f"{k}: {counts.get(k, 0)} of {sample.available[k]}" for k in sorted(sample.available))
        + f" | features: {', '.join(feature_names(sample.bands, opts.indices))}")
    est = _estimator(opts)
    t1 = time.perf_counter()
    est.fit(sample.x, sample.y)
    t_fit = time.perf_counter() - t1
    classes = [c.model_dump(mode="json") for c in config.data.classes]
    info = {
        "options": {**asdict(opts), "indices": list(opts.indices)}, "train_pixels": counts,
        "available_pixels": {int(k): int(v) for k, v in sample.available.items()},
        "sample_seconds": round(t_sample, 2), "fit_seconds": round(t_fit, 2), "scenes": sample.scenes,
        "split": {"mode": config.data.split_mode, "val_fraction": config.data.val_fraction,
                  "block_size": config.data.block_size, "tile_size": config.train.tile_size,
                  "seed": config.train.seed},
        "sklearn": sklearn.__version__, "estimator": METHODS[opts.method],
    }
    clf = from_sklearn(est, method=opts.method, bands=sample.bands, indices=opts.indices, classes=classes,
                       nodata=None, ignore_index=config.data.ignore_index, info=info)
    log(f"Fitted {opts.method} ({len(clf.roots)} trees, {len(clf.left)} nodes, depth {clf.depth}) in {t_fit:.1f}s")
    return clf


def evaluate_baseline(clf: PixelClassifier, config: Any, *, tolerance: float = 2.0) -> dict[str, Any]:
    """Score the baseline on the validation split of ``config`` exactly as a model checkpoint is
    scored by :func:`rs_vit.evaluate.evaluator.evaluate_checkpoint` (pooled confusion matrix,
    boundary F1 within each validation rectangle, per-scene metrics)."""
    from rs_vit.evaluate.evaluator import _Accumulator, _validation_scenes
    from rs_vit.io.raster import invalid_mask

    K, names, ignore = clf.num_classes, clf.class_names, config.data.ignore_index
    pooled = _Accumulator(K, ignore, tolerance, None, None)
    scenes: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for info, areas in _validation_scenes(config, clf.bands):
        own = _Accumulator(K, ignore, tolerance, None, None)
        for a in areas:
            h, w = a.labels.shape
            pred = clf.predict_image(a.image, invalid_mask(a.image, info.nodata))
            own.update(pred, a.labels, pred < K, (slice(0, h), slice(0, w)), grid_row=a.row, grid_col=a.col)
        pooled.cm.merge(own.cm)
        pooled.bf.merge(own.bf)
        pooled.unpredicted += own.unpredicted
        m = own.result(names)
        m.update(scene=str(info.path), areas=[[a.row, a.row + a.labels.shape[0], a.col,
                                               a.col + a.labels.shape[1]] for a in areas])
        scenes.append(m)
    if not scenes:
        raise ConfigError("No scene has a validation split; set data.val_fraction > 0 or a scene with split: val.")
    metrics = pooled.result(names)
    metrics.update(baseline=clf.method, seconds=round(time.perf_counter() - t0, 2),
                   scenes=[{k: v for k, v in s.items() if k != "windows"} for s in scenes])
    return metrics


@dataclass
class BaselinePrediction:
    """What :func:`predict_baseline_scene` wrote."""

    scene: Path
    out: Path
    seconds: float
    width: int
    height: int
    strips: int


def predict_baseline_scene(clf: PixelClassifier, scene: str | Path, out: str | Path, *,
                           bands: Sequence[str] | None = None, sensor: str | None = None,
                           nodata: float | None = None, overwrite: bool = False, cog: bool = False,
                           max_pixels: int = 1_000_000,
                           progress: Callable[[int], None] | None = None) -> BaselinePrediction:
    """Predict a whole scene into a class-mask GeoTIFF, strip by strip (at most ``max_pixels``
    pixels read at a time), written atomically with the scene's CRS, transform and size; the
    scene's nodata pixels are nodata (255) in the mask. Bands are matched by name.

    Raises:
        InputError, BandMismatchError, OutputError: with a one-line fix.
    """
    from rasterio.windows import Window

    from rs_vit.infer.engine import mask_dtype_nodata
    from rs_vit.io.atomic import check_output
    from rs_vit.io.bands import match_bands
    from rs_vit.io.raster import invalid_mask, open_raster, scene_info
    from rs_vit.io.writers import RasterSink, output_profile

    out = check_output(out, overwrite=overwrite, label="output mask")
    info = scene_info(scene, bands=bands, sensor=sensor)
    idx = match_bands(info.band_names, clf.bands, scene_label=f"Scene {info.path.name}")
    nd = nodata if nodata is not None else (info.nodata if info.nodata is not None else clf.nodata)
    dtype, out_nodata = mask_dtype_nodata(clf.num_classes)
    names = ",".join(clf.class_names)
    colors = [c.get("color") for c in clf.classes]
    cmap = ({i: (*c, 255) if c else (0, 0, 0, 255) for i, c in enumerate(colors)} if any(colors) else None)
    sink = RasterSink(out, output_profile(info.profile, count=1, dtype=dtype, nodata=out_nodata),
                      descriptions=["class"], colormap=cmap, band_tags={"classes": names},
                      tags={"rs_vit_model": f"baseline:{clf.method}", "rs_vit_classes": names}, cog=cog)
    t0 = time.perf_counter()
    strips = _strips(0, info.height, 0, info.width, max_pixels)
    any_valid = False
    with open_raster(info.path) as src, sink.open():
        for r0, r1 in strips:
            img = src.read([i + 1 for i in idx], window=Window(0, r0, info.width, r1 - r0))
            inv = invalid_mask(img, nd)
            pred = clf.predict_image(img, inv)
            any_valid |= bool((~inv).any())
            mask = np.where(pred < clf.num_classes, pred, out_nodata).astype(dtype)
            sink.write(r0, mask)
            if progress is not None:
                progress(1)
        if not any_valid:  # inside the block: nothing is committed under the final name
            raise InputError(f"{info.path.name}: every pixel is nodata ({nd}); nothing to predict. "
                             "Check the scene, or give the right --nodata value.")
    return BaselinePrediction(info.path, out, time.perf_counter() - t0, info.width, info.height, len(strips))


@dataclass
class BaselineRun:
    """What :func:`run_baseline` wrote."""

    out_dir: Path
    model_dir: Path
    metrics: dict[str, Any] | None
    masks: list[Path]
    classifier: PixelClassifier


def run_baseline(config: Any, out_dir: str | Path, options: BaselineOptions | None = None, *,
                 predict: Sequence[str | Path] | None = None, evaluate: bool = True,
                 overwrite: bool = False, log: Callable[[str], None] = print) -> BaselineRun:
    """Fit the baseline on ``config``'s training pixels, save it, score it on the validation split
    and write whole-scene masks.

    Writes under ``out_dir``: ``baseline.json`` + ``baseline.safetensors`` (the model),
    ``config.yaml`` (the training config it used), ``metrics.json`` (validation split, as
    ``rs-vit evaluate`` writes for a checkpoint) and ``masks/<scene>_mask.tif`` for each scene in
    ``predict`` (default: every scene of the config).
    """
    from rs_vit.config import dump_config
    from rs_vit.evaluate.report import write_json
    from rs_vit.io.atomic import atomic_write_text
    from rs_vit.train.loop import check_run_dir

    out = Path(out_dir)
    check_run_dir(out, overwrite)
    clf = fit_baseline(config, options, log=log)
    scenes_nodata = None
    try:
        from rs_vit.io.raster import scene_info

        scenes_nodata = scene_info(config.data.scenes[0].image, bands=config.data.bands,
                                   sensor=config.data.sensor).nodata if config.data.scenes else None
    except InputError:
        scenes_nodata = None
    clf.nodata = scenes_nodata
    out.mkdir(parents=True, exist_ok=True)
    save_baseline(clf, out)
    atomic_write_text(out / "config.yaml", dump_config(config))
    log(f"Baseline written to {out}")
    metrics = None
    if evaluate:
        metrics = evaluate_baseline(clf, config)
        metrics["baseline_dir"] = str(out)
        write_json(metrics, out / "metrics.json")
        per = " ".join(f"{pc['name']}={_r(pc['iou'])}" for pc in metrics["per_class"])
        log(f"Validation mIoU {_r(metrics['miou'])} ({per}), overall accuracy {_r(metrics['overall_accuracy'])}, "
            f"boundary F1 {_r(metrics['boundary']['mean_f1'])}")
    masks = []
    targets = list(predict) if predict is not None else [sd.image for sd in config.data.scenes]
    if targets:
        (out / "masks").mkdir(exist_ok=True)
    for scene in targets:
        mpath = out / "masks" / f"{Path(scene).stem}_mask.tif"
        r = predict_baseline_scene(clf, scene, mpath, bands=config.data.bands, sensor=config.data.sensor,
                                   overwrite=True)
        masks.append(r.out)
        log(f"Mask {r.out} ({r.width} x {r.height} px, {r.seconds:.1f}s)")
    return BaselineRun(out, out, metrics, masks, clf)


def _r(v: float | None) -> str:
    return "-" if v is None else f"{float(v):.4f}"
