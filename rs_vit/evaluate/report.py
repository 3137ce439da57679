"""Human-readable and machine-readable evaluation reports.

* :func:`format_table` renders the dict of :func:`~rs_vit.evaluate.metrics.compute_metrics` as a
  fixed-width text table for the terminal or a log.
* :func:`write_json` writes it as JSON, atomically.
* :func:`plot_confusion_matrix` draws a row-normalised, count-annotated confusion matrix to an
  image file, atomically (matplotlib's Agg canvas; pyplot and its global state are not used).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rs_vit.errors import OutputError

__all__ = ["format_table", "plot_confusion_matrix", "write_json"]

Normalize = Literal["true", "pred", "all"] | None


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def format_table(metrics: dict[str, Any]) -> str:
    """Render metrics as a fixed-width table followed by summary lines.

    Columns: class id, name, IoU, precision, recall, F1, boundary F1 (``-`` unless boundary
    metrics were computed), reference pixels (support) and predicted pixels. Undefined values
    (zero denominators) show as ``-``.

    Args:
        metrics: The dict returned by :func:`~rs_vit.evaluate.metrics.compute_metrics`.

    Returns:
        The table as a string (no trailing newline).
    """
    per_class = metrics["per_class"]
    boundary = metrics.get("boundary")
    name_w = max([len("class")] + [len(str(e["name"])) for e in per_class])
    num_w = max(
        [len("reference"), len("predicted")]
        + [len(f"{e['support']:,}") for e in per_class]
        + [len(f"{e['predicted']:,}") for e in per_class]
    )
    header = (
        f"{'id':>3}  {'class':<{name_w}}  {'IoU':>6}  {'prec':>6}  {'recall':>6}  {'F1':>6}  "
        f"{'BF1':>6}  {'reference':>{num_w}}  {'predicted':>{num_w}}"
    )
    lines = [header, "-" * len(header)]
    for e in per_class:
        lines.append(
            f"{e['id']:>3}  {str(e['name']):<{name_w}}  {_fmt(e['iou']):>6}  "
            f"{_fmt(e['precision']):>6}  {_fmt(e['recall']):>6}  {_fmt(e['f1']):>6}  "
            f"{_fmt(e.get('boundary_f1')):>6}  {e['support']:>{num_w},}  "
            f"{e['predicted']:>{num_w},}"
        )
    lines.append("-" * len(header))

    n_present = len(metrics.get("miou_classes", []))
    n_seen = len(metrics.get("miou_all_classes", []))
    n_total = metrics.get("num_classes", len(per_class))
    present = set(metrics.get("miou_classes", []))
    absent = [str(e["name"]) for e in per_class if e["id"] not in present]
    summary: list[tuple[str, str]] = [
        (
            f"mIoU over {n_present} classes present in the reference",
            _fmt(metrics.get("miou")),
        ),
        (
            f"mIoU over {n_seen} classes in reference or prediction",
            _fmt(metrics.get("miou_all")),
        ),
        ("Frequency-weighted IoU", _fmt(metrics.get("fwiou"))),
        ("Overall accuracy", _fmt(metrics.get("overall_accuracy"))),
        (
            f"Mean F1 over {n_present} classes present in the reference",
            _fmt(metrics.get("mean_f1")),
        ),
        ("Cohen's kappa", _fmt(metrics.get("kappa"))),
    ]
    if boundary is not None:
        tol = boundary.get("tolerance")
        tol_s = f"{tol:g}" if isinstance(tol, (int, float)) else str(tol)
        summary.append(
            (
                f"Boundary F1 @ {tol_s} px over {len(boundary.get('mean_classes', []))} classes "
                f"with reference boundaries",
                _fmt(boundary.get("mean_f1")),
            )
        )
    summary.append(("Pixels evaluated", f"{metrics.get('pixels', 0):,}"))
    label_w = max(len(k) for k, _ in summary)
    lines += [f"{k:<{label_w}}  {v}" for k, v in summary]
    if absent and n_present < n_total:
        lines.append(f"Not in the reference (left out of mIoU): {', '.join(absent)}")
    return "\n".join(lines)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if math.isnan(float(obj)) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable.")


def _clean(obj: Any) -> Any:
    """Replace NaN/inf floats by None so the output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.floating):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` for a temporary file beside ``path``, then move it into place."""
    from rs_vit.io.atomic import atomic_path  # lazy: keep `import rs_vit.evaluate` light

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(
            f"Output folder {folder} does not exist; create it first or choose another path."
        )
    with atomic_path(target) as tmp:
        write(str(tmp))
    return target


def write_json(metrics: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write metrics as indented, strict JSON (NaN becomes ``null``), atomically.

    The text goes to a temporary file in the destination folder, is flushed to disk, and then
    replaces ``path`` with :func:`os.replace`, so readers never see a half-written file.

    Args:
        metrics: A JSON-serialisable dict (numpy scalars and arrays are converted).
        path: Destination file; an existing file is replaced.

    Returns:
        The destination path.

    Raises:
        OutputError: If the destination folder does not exist.
    """
    text = json.dumps(_clean(metrics), indent=2, default=_json_default, allow_nan=False)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())

    return _atomic_write(path, write)


def _compact(count: int) -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= div * 10 or (abs(count) >= div and div >= 1e6):
            return f"{count / div:.3g}{suffix}"
    return str(int(count))


def plot_confusion_matrix(
    cm: npt.ArrayLike,
    class_names: Sequence[str] | None,
    path: str | os.PathLike[str],
    normalize: Normalize = "true",
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Draw a confusion matrix to an image file (PNG, PDF, SVG… from the suffix), atomically.

    Cell colours show the normalised value (by default each row divided by its reference
    total, i.e. per-class recall on the diagonal); each cell is annotated with its raw count
    (compact: ``12k``, ``3.4M``) and, when normalised, the percentage.

    Args:
        cm: Square matrix of counts, rows = reference, columns = prediction.
        class_names: One name per class, or ``None`` for class ids.
        path: Destination image file; an existing file is replaced.
        normalize: ``"true"`` (rows sum to 1), ``"pred"`` (columns sum to 1), ``"all"``
            (the matrix sums to 1) or ``None`` (colours show raw counts). Rows or columns
            without pixels are shown as 0.
        title: Figure title; defaults to "Confusion matrix".
        dpi: Resolution of raster outputs.

    Returns:
        The destination path.

    Raises:
        ValueError: If ``cm`` is not square, the names do not match, or ``normalize`` is not
            one of the choices.
        OutputError: If the destination folder does not exist.
    """
    from matplotlib.figure import Figure  # lazy: keep `import rs_vit.evaluate` light

    m = np.asarray(cm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"cm must be a square (num_classes, num_classes) matrix, got {m.shape}.")
    n = m.shape[0]
    names = [str(x) for x in (class_names if class_names is not None else range(n))]
    if len(names) != n:
        raise ValueError(f"got {len(names)} class names for a {n}-class confusion matrix.")
    if normalize not in ("true", "pred", "all", None):
        raise ValueError(
            f"normalize must be one of 'true', 'pred', 'all' or None, got {normalize!r}."
        )

    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            shown = m / m.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            shown = m / m.sum(axis=0, keepdims=True)
        elif normalize == "all":
            shown = m / m.sum()
        else:
            shown = m.copy()
    shown = np.nan_to_num(shown, nan=0.0, posinf=0.0, neginf=0.0)
    vmax = 1.0 if normalize is not None else max(float(shown.max()), 1.0)

    side = min(max(4.0, 0.6 * n + 2.5), 30.0)
    fig = Figure(figsize=(side + 1.0, side), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    cbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label(
        {"true": "fraction of reference pixels (row)", "pred": "fraction of predicted pixels "
         "(column)", "all": "fraction of all pixels", None: "pixels"}[normalize]
    )
    ax.set_xticks(range(n), labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels=names)
    ax.set_xlabel("Prediction")
    ax.set_ylabel("Reference")
    ax.set_title(title or "Confusion matrix")

    if n <= 40:
        fontsize = max(4.0, min(9.0, 120.0 / n))
        for i in range(n):
            for j in range(n):
                text = _compact(int(m[i, j]))
                if normalize is not None:
                    text += f"\n{100.0 * shown[i, j]:.1f}%"
                dark = shown[i, j] / vmax > 0.5
                ax.text(
                    j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black",
                )

    suffix = Path(path).suffix.lstrip(".").lower() or "png"

    def write(tmp: str) -> None:
        fig.savefig(tmp, format=suffix, dpi=dpi)

    return _atomic_write(path, write)
