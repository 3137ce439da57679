"""Accuracy assessment of segmentation masks: streaming metrics, boundary F1, reports.

Everything here is pure numpy/scipy and works window by window, so a scene far larger than
memory is evaluated in bounded memory::

    from rs_vit.evaluate import BoundaryF1, ConfusionMatrix, compute_metrics, format_table

    cm = ConfusionMatrix(num_classes=4, ignore_index=255)
    bf = BoundaryF1(num_classes=4, tolerance=2, ignore_index=255)
    for pred, ref, valid, core in windows:        # windows read with a halo of bf.halo pixels
        cm.update(pred, ref, valid, core=core)
        bf.update(pred, ref, valid, core=core)
    metrics = compute_metrics(cm.matrix, class_names, boundary=bf.compute(class_names))
    print(format_table(metrics))
"""

from __future__ import annotations

from typing import Any

from rs_vit.evaluate.boundary import BoundaryF1, boundary_f1, boundary_mask, required_halo
from rs_vit.evaluate.metrics import ConfusionMatrix, LabelValueError, compute_metrics
from rs_vit.evaluate.report import format_table, plot_confusion_matrix, write_json

__all__ = [
    "BoundaryF1",
    "ConfusionMatrix",
    "LabelValueError",
    "boundary_f1",
    "boundary_mask",
    "compute_metrics",
    "evaluate_checkpoint",
    "evaluate_mask",
    "format_table",
    "plot_confusion_matrix",
    "required_halo",
    "run_grid",
    "write_json",
]


def __getattr__(name: str) -> Any:  # the raster-level evaluator lives in its own module
    if name in ("evaluate_mask", "evaluate_checkpoint"):
        from rs_vit.evaluate import evaluator

        return getattr(evaluator, name)
    if name == "run_grid":
        from rs_vit.evaluate.compare import run_grid

        return run_grid
    raise AttributeError(f"module 'rs_vit.evaluate' has no attribute {name!r}")
