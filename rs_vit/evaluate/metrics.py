"""Pixel-wise segmentation metrics from a streaming confusion matrix (pure numpy).

A scene far larger than memory is evaluated one window at a time: each window's predicted and
reference label arrays go into :meth:`ConfusionMatrix.update`, and :func:`compute_metrics` turns
the accumulated ``[reference, prediction]`` counts into IoU, precision, recall, F1, overall
accuracy and Cohen's kappa.

Which pixels are evaluated
--------------------------
A pixel is evaluated when all of these hold:

* ``valid`` is True there (when a mask is given; e.g. the scene's nodata mask),
* the reference is not ``ignore_index`` (when one is set),
* the prediction is a class index in ``[0, num_classes)``; anything else (the prediction's
  nodata value, e.g. 255) is treated as "not predicted" and skipped, not counted.

A *reference* value that is neither a class index nor ``ignore_index`` is a labelling error and
raises :class:`LabelValueError` (a ``ValueError``) naming the value, because silently skipping it
would hide a wrong class map or a missing ``ignore_index``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rs_vit.errors import InputError

__all__ = ["ConfusionMatrix", "LabelValueError", "compute_metrics"]

WindowSlices = tuple[slice, slice]
"""A ``(rows, cols)`` pair of slices selecting the core of a window (the part without halo)."""


class LabelValueError(InputError, ValueError):
    """A reference label holds a value that is neither a class index nor the ignore index."""


def _as_label_array(array: npt.ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(array)
    if arr.dtype.kind not in "biu":
        raise TypeError(
            f"{what} must be an integer array of class indices, got dtype {arr.dtype}; "
            f"convert it with .astype(np.int64) (after rounding, if it holds floats)."
        )
    return arr


def _crop(arr: np.ndarray, core: WindowSlices | None) -> np.ndarray:
    if core is None:
        return arr
    if arr.ndim != 2:
        raise ValueError(f"core slices need 2-D (rows, cols) arrays, got shape {arr.shape}.")
    return arr[core]


def evaluation_mask(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    num_classes: int,
    valid: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a (prediction, reference) pair and return the mask of pixels to evaluate.

    Args:
        pred: Predicted class indices, integer array of any shape.
        target: Reference class indices, same shape as ``pred``.
        num_classes: Number of classes; class indices are ``0 .. num_classes - 1``.
        valid: Optional boolean mask, same shape; False pixels are not evaluated.
        ignore_index: Reference value meaning "no label" (not evaluated).

    Returns:
        ``(pred, target, mask)`` as arrays, where ``mask`` is True where the pixel is evaluated
        (see the module docstring for the rules).

    Raises:
        TypeError: If ``pred`` or ``target`` is not an integer array.
        ValueError: If the shapes differ.
        LabelValueError: If an evaluated reference pixel holds a value outside
            ``[0, num_classes)`` that is not ``ignore_index``.
    """
    p = _as_label_array(pred, "pred")
    t = _as_label_array(target, "target")
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {p.shape} and target {t.shape}."
        )
    mask = np.ones(t.shape, dtype=bool)
    if valid is not None:
        v = np.asarray(valid)
        if v.shape != t.shape:
            raise ValueError(
                f"valid must have the shape of target {t.shape}, got {v.shape}."
            )
        mask &= v.astype(bool, copy=False)
    if ignore_index is not None:
        mask &= t != ignore_index
    bad = mask & ((t < 0) | (t >= num_classes))
    if bad.any():
        values = np.unique(t[bad])
        shown = ", ".join(str(int(x)) for x in values[:5]) + (", …" if values.size > 5 else "")
        hint = (
            f"set ignore_index to the reference's no-label value"
            if ignore_index is None
            else f"ignore_index is {ignore_index}"
        )
        raise LabelValueError(
            f"Reference labels hold value(s) {shown} outside the {num_classes} declared classes "
            f"(0..{num_classes - 1}); check the class list or {hint}."
        )
    mask &= (p >= 0) & (p < num_classes)
    return p, t, mask


class ConfusionMatrix:
    """Streaming confusion matrix over ``num_classes`` classes.

    ``matrix[i, j]`` counts evaluated pixels whose reference class is ``i`` and predicted class
    is ``j`` (rows = reference, columns = prediction). Windows are added with :meth:`update`;
    accumulators from other workers or scenes are combined with :meth:`merge`.

    Args:
        num_classes: Number of classes (at least 1).
        ignore_index: Reference value meaning "no label"; such pixels are skipped.

    Example:
        >>> cm = ConfusionMatrix(3)
        >>> cm.update(np.array([0, 1, 2]), np.array([0, 1, 1]))
        >>> cm.matrix.tolist()
        [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self._matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    @property
    def matrix(self) -> np.ndarray:
        """The ``[reference, prediction]`` counts as an int64 array (a copy)."""
        return self._matrix.copy()

    @property
    def pixels(self) -> int:
        """Number of pixels evaluated so far."""
        return int(self._matrix.sum())

    def reset(self) -> None:
        """Set all counts to zero."""
        self._matrix[...] = 0

    def update(
        self,
        pred: npt.ArrayLike,
        target: npt.ArrayLike,
        valid: npt.ArrayLike | None = None,
        core: WindowSlices | None = None,
    ) -> None:
        """Add one window (or any batch) of predictions and references.

        Args:
            pred: Predicted class indices, integer array of any shape.
            target: Reference class indices, same shape.
            valid: Optional boolean mask, same shape; False pixels are skipped.
            core: Optional ``(rows, cols)`` slices of a 2-D window: only pixels inside are
                counted (the rest is halo shared with neighbouring windows, as fed to
                :class:`~rs_vit.evaluate.boundary.BoundaryF1`).

        Raises:
            LabelValueError: If an evaluated reference pixel is not a class index or
                ``ignore_index``.
        """
        n = self.num_classes
        p, t = _crop(np.asarray(pred), core), _crop(np.asarray(target), core)
        v = None if valid is None else _crop(np.asarray(valid), core)
        p, t, mask = evaluation_mask(p, t, n, v, self.ignore_index)
        if mask.all():
            p_sel, t_sel = p.ravel(), t.ravel()
        else:
            p_sel, t_sel = p[mask], t[mask]
        if p_sel.size == 0:
            return
        index = t_sel.astype(np.intp) * n + p_sel.astype(np.intp)
        self._matrix += np.bincount(index, minlength=n * n).reshape(n, n)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another accumulator's counts to this one (in place) and return ``self``.

        Raises:
            ValueError: If the number of classes or the ignore index differ.
        """
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError(
                f"Cannot merge confusion matrices with num_classes/ignore_index "
                f"{other.num_classes}/{other.ignore_index} into "
                f"{self.num_classes}/{self.ignore_index}."
            )
        self._matrix += other._matrix
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (``num_classes``, ``ignore_index``, ``matrix``)."""
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "matrix": self._matrix.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfusionMatrix:
        """Rebuild an accumulator written by :meth:`to_dict`."""
        cm = cls(int(data["num_classes"]), data.get("ignore_index"))
        matrix = np.asarray(data["matrix"], dtype=np.int64)
        if matrix.shape != cm._matrix.shape:
            raise ValueError(
                f"matrix shape {matrix.shape} does not match num_classes {cm.num_classes}."
            )
        cm._matrix[...] = matrix
        return cm

    def compute(self, class_names: list[str] | None = None) -> dict[str, Any]:
        """Shortcut for ``compute_metrics(self.matrix, class_names)``."""
        return compute_metrics(self._matrix, class_names)

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"pixels={self.pixels})"
        )


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den > 0 else None


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def compute_metrics(
    cm: npt.ArrayLike,
    class_names: list[str] | None = None,
    boundary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute segmentation metrics from a ``[reference, prediction]`` confusion matrix.

    For class ``c`` let TP = ``cm[c, c]``, support = row sum (reference pixels of ``c``),
    predicted = column sum, FP = predicted - TP, FN = support - TP. Then

    * ``iou`` = TP / (TP + FP + FN) (Jaccard index),
    * ``precision`` = TP / (TP + FP) = TP / predicted (user's accuracy),
    * ``recall`` = TP / (TP + FN) = TP / support (producer's accuracy),
    * ``f1`` = 2 TP / (2 TP + FP + FN) (Dice; 0 when the class is predicted but absent from
      the reference, or present but never predicted).

    A ratio whose denominator is zero is ``None`` (never NaN), so the result is valid JSON.

    Summary values (each ``None`` when nothing defines it, e.g. no pixels):

    * ``miou``: mean IoU over the classes **present in the reference** (support > 0), listed in
      ``miou_classes`` (class ids). A class the reference never contains says nothing about the
      model except false positives, which already lower the other classes' IoU.
    * ``miou_all``: mean IoU over every class present in the reference *or* the prediction
      (listed in ``miou_all_classes``): a class only predicted counts with IoU 0; a class absent
      from both is left out.
    * ``fwiou``: frequency-weighted IoU, sum over classes of (support / pixels) * IoU.
    * ``overall_accuracy``: trace / pixels.
    * ``mean_f1``: mean F1 over the classes present in the reference (as ``miou``).
    * ``kappa``: Cohen's kappa, (p_o - p_e) / (1 - p_e) with p_o the overall accuracy and
      p_e = sum_c support_c * predicted_c / pixels^2 the chance agreement; ``None`` when
      p_e = 1 (a single class in both maps).
    * ``pixels``: number of evaluated pixels.

    Args:
        cm: Square confusion matrix, rows = reference, columns = prediction.
        class_names: One name per class; defaults to ``class_0``, ``class_1``, ….
        boundary: Optional result of :meth:`rs_vit.evaluate.boundary.BoundaryF1.compute`;
            stored as ``boundary`` and each class's boundary F1 copied to its ``boundary_f1``.

    Returns:
        A JSON-serialisable dict with the keys ``num_classes``, ``class_names``,
        ``confusion_matrix`` (list of rows), ``per_class`` (list of dicts with ``name``,
        ``id``, ``iou``, ``precision``, ``recall``, ``f1``, ``boundary_f1``, ``support``,
        ``predicted``), ``miou``, ``miou_classes``, ``miou_all``, ``miou_all_classes``,
        ``fwiou``, ``overall_accuracy``, ``mean_f1``, ``mean_f1_classes``, ``kappa``,
        ``pixels`` and ``boundary`` (``None`` unless given).

    Raises:
        ValueError: If ``cm`` is not a square matrix of non-negative counts, or the number of
            class names differs from its size.
    """
    m = np.asarray(cm)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"cm must be a square (num_classes, num_classes) matrix, got {m.shape}.")
    if (m < 0).any():
        raise ValueError("cm holds negative counts.")
    m = m.astype(np.int64)
    n = m.shape[0]
    names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"got {len(names)} class names for a {n}-class confusion matrix.")

    tp = np.diag(m)
    support = m.sum(axis=1)
    predicted = m.sum(axis=0)
    total = int(m.sum())

    boundary_by_id: dict[int, Any] = {}
    if boundary is not None:
        boundary_by_id = {int(e["id"]): e.get("f1") for e in boundary.get("per_class", [])}

    per_class: list[dict[str, Any]] = []
    for c in range(n):
        t, s, p = int(tp[c]), int(support[c]), int(predicted[c])
        union = s + p - t
        per_class.append(
            {
                "name": str(names[c]),
                "id": c,
                "iou": _ratio(t, union),
                "precision": _ratio(t, p),
                "recall": _ratio(t, s),
                "f1": _ratio(2 * t, s + p),
                "boundary_f1": boundary_by_id.get(c),
                "support": s,
                "predicted": p,
            }
        )

    present = [c for c in range(n) if support[c] > 0]
    seen = [c for c in range(n) if support[c] > 0 or predicted[c] > 0]
    miou = _mean([per_class[c]["iou"] for c in present])
    miou_all = _mean([per_class[c]["iou"] for c in seen])
    mean_f1 = _mean([per_class[c]["f1"] for c in present])

    if total > 0:
        fwiou: float | None = float(
            sum((support[c] / total) * per_class[c]["iou"] for c in present)
        )
        overall_accuracy: float | None = float(tp.sum()) / total
        p_o = overall_accuracy
        p_e = float(np.sum(support.astype(np.float64) * predicted.astype(np.float64))) / (
            float(total) ** 2
        )
        kappa = (p_o - p_e) / (1.0 - p_e) if p_e < 1.0 else None
    else:
        fwiou = overall_accuracy = kappa = None

    return {
        "num_classes": n,
        "class_names": [str(x) for x in names],
        "confusion_matrix": m.tolist(),
        "per_class": per_class,
        "miou": miou,
        "miou_classes": present,
        "miou_all": miou_all,
        "miou_all_classes": seen,
        "fwiou": fwiou,
        "overall_accuracy": overall_accuracy,
        "mean_f1": mean_f1,
        "mean_f1_classes": present,
        "kappa": kappa,
        "pixels": total,
        "boundary": boundary,
    }
