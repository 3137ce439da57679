"""Error maps and per-window accuracy: where on the scene a prediction is right or wrong.

An error map is a one-band ``uint8`` GeoTIFF on the prediction's grid:

====  =========  ===============================================================
0     ignored    not evaluated: prediction nodata, reference ignore / nodata,
                 or outside the evaluated rows (also the GeoTIFF's nodata value)
1     correct    prediction equals the reference
2     wrong      prediction differs from the reference
====  =========  ===============================================================

It carries a colour table (grey / green / red) so GIS software shows it without styling, and is
written block by block to a temporary file that replaces the destination only when complete.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.windows import Window

from rs_vit.evaluate.metrics import evaluation_mask

__all__ = [
    "ERROR_COLORS",
    "IGNORED",
    "CORRECT",
    "WRONG",
    "ErrorMapWriter",
    "WindowStats",
    "error_codes",
    "write_window_csv",
]

IGNORED, CORRECT, WRONG = 0, 1, 2
ERROR_COLORS: dict[int, tuple[int, int, int, int]] = {
    IGNORED: (128, 128, 128, 0),
    CORRECT: (46, 160, 67, 255),
    WRONG: (214, 39, 40, 255),
}


def error_codes(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    num_classes: int,
    valid: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Per-pixel error codes (0 ignored, 1 correct, 2 wrong) as ``uint8``.

    The evaluated pixels are exactly those counted by
    :class:`~rs_vit.evaluate.metrics.ConfusionMatrix` for the same arguments.

    Args:
        pred: Predicted class indices (integer array).
        target: Reference class indices, same shape.
        num_classes: Number of classes.
        valid: Optional boolean mask; False pixels are ignored.
        ignore_index: Reference value meaning "no label".

    Returns:
        ``uint8`` array of the shape of ``pred``.
    """
    p, t, mask = evaluation_mask(pred, target, num_classes, valid, ignore_index)
    out = np.zeros(p.shape, dtype=np.uint8)
    out[mask & (p == t)] = CORRECT
    out[mask & (p != t)] = WRONG
    return out


class ErrorMapWriter:
    """Write an error map block by block onto a given grid (use as a context manager).

    Args:
        path: Destination GeoTIFF; written to a temporary name and moved into place on success.
        width, height: Grid size in pixels.
        crs, transform: Georeferencing (copied from the prediction).
        overwrite: Replace an existing file.

    Raises:
        OutputError: If the file exists (without ``overwrite``) or its folder is missing.
    """

    def __init__(self, path: str | os.PathLike[str], width: int, height: int, crs: Any,
                 transform: Any, *, overwrite: bool = True) -> None:
        from rs_vit.io.atomic import check_output

        self.path = check_output(path, overwrite=overwrite, label="error map")
        self.profile: dict[str, Any] = {
            "driver": "GTiff", "width": int(width), "height": int(height), "count": 1,
            "dtype": "uint8", "crs": crs, "transform": transform, "nodata": IGNORED,
            "compress": "deflate",
        }
        if width >= 256 and height >= 256:
            self.profile.update(tiled=True, blockxsize=256, blockysize=256)
        self._dst: rasterio.io.DatasetWriter | None = None

    @contextmanager
    def open(self) -> Iterator[ErrorMapWriter]:
        """Open the temporary file; it replaces :attr:`path` when the block exits cleanly."""
        from rs_vit.io.atomic import atomic_path

        with atomic_path(self.path) as tmp, rasterio.open(tmp, "w", **self.profile) as dst:
            dst.set_band_description(1, "error")
            dst.write_colormap(1, ERROR_COLORS)
            dst.update_tags(1, values="0=ignored,1=correct,2=wrong")
            self._dst = dst
            try:
                yield self
            finally:
                self._dst = None

    def write(self, codes: np.ndarray, row: int, col: int = 0) -> None:
        """Write a block of error codes with its top-left pixel at ``(row, col)``."""
        if self._dst is None:
            raise RuntimeError("ErrorMapWriter.write called outside 'with writer.open():'")
        h, w = codes.shape
        self._dst.write(codes.astype(np.uint8, copy=False), 1, window=Window(col, row, w, h))


@dataclass
class WindowStats:
    """Accuracy of one square window of the evaluated area (see :func:`window_stats`)."""

    row: int
    col: int
    height: int
    width: int
    pixels: int
    correct: int
    accuracy: float | None
    miou: float | None
    classes: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON/CSV-friendly dict."""
        return {
            "row": self.row, "col": self.col, "height": self.height, "width": self.width,
            "pixels": self.pixels, "correct": self.correct, "accuracy": self.accuracy,
            "miou": self.miou, "classes": " ".join(str(c) for c in self.classes),
        }


def window_stats(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, num_classes: int,
                 row: int, col: int) -> WindowStats:
    """Pixels, accuracy and mIoU (over classes present in the window's reference) of a window.

    Args:
        pred, target: 2-D class arrays of the window.
        mask: Pixels evaluated (as from :func:`~rs_vit.evaluate.metrics.evaluation_mask`).
        num_classes: Number of classes.
        row, col: Window origin on the grid (recorded, not used for computation).
    """
    n = num_classes
    p, t = pred[mask].astype(np.intp), target[mask].astype(np.intp)
    cm = np.bincount(t * n + p, minlength=n * n).reshape(n, n)
    pixels = int(cm.sum())
    correct = int(np.trace(cm))
    support, predicted, tp = cm.sum(1), cm.sum(0), np.diag(cm)
    present = [c for c in range(n) if support[c] > 0]
    ious = [tp[c] / (support[c] + predicted[c] - tp[c]) for c in present]
    return WindowStats(
        row=row, col=col, height=int(pred.shape[0]), width=int(pred.shape[1]), pixels=pixels,
        correct=correct, accuracy=correct / pixels if pixels else None,
        miou=float(np.mean(ious)) if ious else None, classes=present,
    )


def write_window_csv(windows: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write per-window statistics (dicts of :meth:`WindowStats.as_dict`) as CSV, atomically."""
    from rs_vit.evaluate.report import _atomic_write

    fields = ["row", "col", "height", "width", "pixels", "correct", "accuracy", "miou", "classes"]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for row in windows:
                w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})

    return _atomic_write(path, write)
