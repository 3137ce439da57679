"""Raster-level evaluation: a predicted mask against reference labels (raster or vector),
streamed in blocks of rows with a halo so boundary F1 is exact across block edges."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from rs_vit.errors import InputError
from rs_vit.evaluate.boundary import BoundaryF1
from rs_vit.evaluate.metrics import ConfusionMatrix, compute_metrics
from rs_vit.io.labels import is_vector, load_vector_labels, rasterize_labels, read_label_raster
from rs_vit.io.raster import open_raster, scene_info


def mask_class_names(path: str | Path) -> list[str] | None:
    """Class names written by ``rs-vit predict`` into a mask's tags, if any."""
    with open_raster(path) as src:
        names = src.tags().get("rs_vit_classes") or src.tags(1).get("classes")
    return names.split(",") if names else None


def evaluate_mask(
    prediction: str | Path,
    reference: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    num_classes: int | None = None,
    ignore_index: int = 255,
    ignore_values: Sequence[int] = (),
    label_attribute: str = "class_id",
    background: int | None = None,
    tolerance: float = 2.0,
    block_rows: int = 512,
) -> dict[str, Any]:
    """Compare a class mask with reference labels on the mask's grid.

    Returns the metrics dict of :func:`rs_vit.evaluate.metrics.compute_metrics` with a
    ``boundary`` section (boundary F1 at ``tolerance`` px) and the inputs recorded. Pixels that are
    nodata in the prediction, ``ignore_index`` or in ``ignore_values`` in the reference are excluded.
    """
    pred_info = scene_info(prediction, require_crs=False)
    names = list(class_names) if class_names else mask_class_names(prediction)
    if names is None and num_classes is None:
        raise InputError(
            f"{Path(prediction).name}: carries no class names; pass --classes classes.yaml "
            "(or --num-classes)."
        )
    K = len(names) if names else int(num_classes)  # type: ignore[arg-type]
    names = names or [f"class_{i}" for i in range(K)]
    vector = is_vector(reference)
    gdf = None
    if vector:
        gdf = load_vector_labels(reference, pred_info, label_attribute)
    cm = ConfusionMatrix(K, ignore_index=ignore_index)
    bf = BoundaryF1(K, tolerance=tolerance, ignore_index=ignore_index)
    halo = bf.halo
    H, W = pred_info.height, pred_info.width
    pred_nodata = pred_info.nodata
    unpredicted = 0
    with open_raster(prediction) as src:
        for r0 in range(0, H, block_rows):
            r1 = min(H, r0 + block_rows)
            a0, a1 = max(0, r0 - halo), min(H, r1 + halo)
            win = Window(0, a0, W, a1 - a0)
            pred = src.read(1, window=win).astype(np.int64)
            if vector:
                ref = rasterize_labels(gdf, pred_info, label_attribute, class_values=range(K),
                                       background=background, ignore_index=ignore_index,
                                       window=win, source=Path(reference).name)
            else:
                ref = read_label_raster(reference, pred_info, window=win, ignore_index=ignore_index,
                                        ignore_values=ignore_values)
            valid = np.ones_like(pred, dtype=bool)
            if pred_nodata is not None:
                valid &= pred != int(pred_nodata)
            core = (slice(r0 - a0, r1 - a0), slice(0, W))
            unpredicted += int(((~valid) & (ref != ignore_index))[core].sum())
            cm.update(pred, ref, valid, core=core)
            bf.update(pred, ref, valid, core=core)
    metrics = compute_metrics(cm.matrix, names, boundary=bf.compute(names))
    metrics["prediction"] = str(prediction)
    metrics["reference"] = str(reference)
    metrics["unpredicted_reference_pixels"] = unpredicted
    return metrics
