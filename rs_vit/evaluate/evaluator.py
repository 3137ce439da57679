"""Raster-level evaluation.

* :func:`evaluate_mask` compares a predicted mask with reference labels (a raster on the mask's
  grid, or vector polygons reprojected and rasterised onto it), streamed in blocks of rows with a
  halo so boundary F1 is exact across block edges. It can restrict the evaluation to a band of
  rows (e.g. a validation split), write an error map GeoTIFF and per-window accuracy.
* :func:`evaluate_checkpoint` runs a checkpoint with the sliding-window predictor over the
  validation split of a training config's scenes and evaluates it the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from rs_vit.errors import ConfigError, InputError
from rs_vit.evaluate.boundary import BoundaryF1
from rs_vit.evaluate.errormap import ErrorMapWriter, error_codes, window_stats
from rs_vit.evaluate.metrics import ConfusionMatrix, compute_metrics, evaluation_mask
from rs_vit.io.labels import (
    is_vector,
    load_vector_labels,
    rasterize_labels,
    read_label_raster,
    summarize_values,
)
from rs_vit.io.raster import SceneInfo, masked_pixels, open_raster, scene_info

__all__ = ["evaluate_checkpoint", "evaluate_mask", "mask_class_names"]


def mask_class_names(path: str | Path) -> list[str] | None:
    """Class names written by ``rs-vit predict`` into a mask's tags, if any."""
    with open_raster(path) as src:
        names = src.tags().get("rs_vit_classes") or src.tags(1).get("classes")
    return names.split(",") if names else None


def _check_rows(rows: tuple[int, int] | None, height: int, what: str) -> tuple[int, int]:
    if rows is None:
        return 0, height
    r0, r1 = int(rows[0]), int(rows[1])
    if not 0 <= r0 < r1 <= height:
        raise ConfigError(
            f"rows {rows} are not a non-empty range inside {what} (0..{height}); "
            "give (first_row, end_row) with 0 <= first_row < end_row <= height."
        )
    return r0, r1


class _Accumulator:
    """Confusion matrix, boundary F1, optional error map and per-window stats, fed by blocks."""

    def __init__(self, num_classes: int, ignore_index: int, tolerance: float,
                 per_window: int | None, error_map: ErrorMapWriter | None) -> None:
        self.k = num_classes
        self.ignore_index = ignore_index
        self.cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
        self.bf = BoundaryF1(num_classes, tolerance=tolerance, ignore_index=ignore_index)
        self.per_window = per_window
        self.windows: list[dict[str, Any]] = []
        self.error_map = error_map
        self.unpredicted = 0

    def update(self, pred: np.ndarray, ref: np.ndarray, valid: np.ndarray,
               core: tuple[slice, slice], grid_row: int, grid_col: int = 0) -> None:
        """Add a block (with halo); ``(grid_row, grid_col)`` is the core's top-left pixel on the
        output grid (where error codes and window origins go)."""
        self.unpredicted += int(((~valid) & (ref != self.ignore_index))[core].sum())
        self.cm.update(pred, ref, valid, core=core)
        self.bf.update(pred, ref, valid, core=core)
        if self.error_map is None and not self.per_window:
            return
        p, t, v = pred[core], ref[core], valid[core]
        if self.error_map is not None:
            self.error_map.write(error_codes(p, t, self.k, v, self.ignore_index), grid_row, grid_col)
        if self.per_window:
            _, _, mask = evaluation_mask(p, t, self.k, v, self.ignore_index)
            n = self.per_window
            for r in range(0, p.shape[0], n):
                for c in range(0, p.shape[1], n):
                    sl = (slice(r, r + n), slice(c, c + n))
                    ws = window_stats(p[sl], t[sl], mask[sl], self.k, grid_row + r, grid_col + c)
                    self.windows.append(ws.as_dict())

    def result(self, names: list[str]) -> dict[str, Any]:
        metrics = compute_metrics(self.cm.matrix, names, boundary=self.bf.compute(names))
        metrics["unpredicted_reference_pixels"] = self.unpredicted
        metrics["boundary_counts"] = self.bf.to_dict()  # raw counts, to pool several evaluations
        if self.per_window:
            metrics["window_size"] = self.per_window
            metrics["windows"] = self.windows
        return metrics


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
    rows: tuple[int, int] | None = None,
    error_map: str | os.PathLike[str] | None = None,
    per_window: int | None = None,
    overwrite: bool = True,
    class_codes: dict[int, int] | None = None,
) -> dict[str, Any]:
    """Compare a class mask with reference labels on the mask's grid.

    Pixels that are nodata in the prediction, ``ignore_index`` or in ``ignore_values`` in the
    reference (or the reference raster's nodata) are excluded. Vector references are reprojected
    to the mask's CRS and rasterised on its grid (pixels no polygon covers get ``background``, or
    are ignored when it is None).

    Args:
        prediction: Class mask GeoTIFF (e.g. from ``rs-vit predict``).
        reference: Label raster on the same grid, or a vector file (GeoPackage, GeoJSON, …).
        class_names: One name per class; default: the names ``rs-vit predict`` wrote into the mask.
        num_classes: Number of classes when the mask carries no names and none are given.
        ignore_index: Reference value meaning "no label".
        ignore_values: More reference values to exclude (e.g. -1).
        label_attribute: Vector attribute holding the class id.
        background: Class of pixels that no polygon covers (vector references).
        tolerance: Boundary F1 matching distance in pixels.
        block_rows: Rows read per block (memory bound: ``block_rows × width``).
        rows: Evaluate only rows ``rows[0] <= r < rows[1]`` (e.g. a validation split); boundaries
            are taken within this band only.
        error_map: Write an error map GeoTIFF here (0 ignored, 1 correct, 2 wrong; see
            :mod:`rs_vit.evaluate.errormap`), on the prediction's grid.
        per_window: Also report accuracy and mIoU of every ``per_window``-pixel square window of
            the evaluated area (``metrics["windows"]``).
        overwrite: Replace an existing error map.
        class_codes: the classes' codes in the reference → their ids, when the reference holds
            codes rather than ids (classes with a ``value``; :func:`rs_vit.io.labels.class_codes`).

    Returns:
        The metrics dict of :func:`rs_vit.evaluate.metrics.compute_metrics` with a ``boundary``
        section and ``prediction``, ``reference``, ``rows``, ``unpredicted_reference_pixels``
        (and ``windows``, ``window_size``, ``error_map`` when asked for).

    Raises:
        InputError: If an input cannot be read, the grids differ, or no class names are known.
        ConfigError: If ``rows`` is not inside the mask.
    """
    pred_info = scene_info(prediction, require_crs=False)
    if pred_info.count != 1:
        raise InputError(
            f"{Path(prediction).name}: has {pred_info.count} bands, but a prediction is a one-band "
            "class mask (as written by rs-vit predict); was a scene passed instead of its mask?"
        )
    names = list(class_names) if class_names else mask_class_names(prediction)
    if names is None and num_classes is None:
        raise InputError(
            f"{Path(prediction).name}: carries no class names; pass --classes classes.yaml "
            "(or --num-classes)."
        )
    K = len(names) if names else int(num_classes)  # type: ignore[arg-type]
    names = names or [f"class_{i}" for i in range(K)]
    if per_window is not None and per_window < 1:
        raise ConfigError(f"per_window must be a window size >= 1 pixel, got {per_window}.")
    H, W = pred_info.height, pred_info.width
    R0, R1 = _check_rows(rows, H, f"prediction {Path(prediction).name}")
    vector = is_vector(reference)
    gdf = load_vector_labels(reference, pred_info, label_attribute) if vector else None
    if per_window:
        block_rows = per_window * max(1, block_rows // per_window)
    writer = (ErrorMapWriter(error_map, W, H, pred_info.crs, pred_info.transform, overwrite=overwrite)
              if error_map is not None else None)
    acc = _Accumulator(K, ignore_index, tolerance, per_window, writer)
    halo = acc.bf.halo
    pred_nodata = pred_info.nodata

    def run() -> None:
        with open_raster(prediction) as src:
            for r0 in range(R0, R1, block_rows):
                r1 = min(R1, r0 + block_rows)
                a0, a1 = max(R0, r0 - halo), min(R1, r1 + halo)
                win = Window(0, a0, W, a1 - a0)
                pred = src.read(1, window=win).astype(np.int64)
                masked = masked_pixels(src, win, kind=pred_info.mask_kind)
                if gdf is not None:
                    ref = rasterize_labels(gdf, pred_info, label_attribute, class_values=range(K),
                                           background=background, ignore_index=ignore_index,
                                           window=win, source=Path(reference).name, codes=class_codes)
                else:
                    ref = read_label_raster(reference, pred_info, window=win,
                                            ignore_index=ignore_index, ignore_values=ignore_values,
                                            codes=class_codes)
                valid = np.ones_like(pred, dtype=bool) if masked is None else ~masked
                if pred_nodata is not None and not np.isnan(pred_nodata):
                    valid &= pred != int(pred_nodata)
                _check_prediction_values(pred[valid], K, prediction)
                if gdf is None:
                    _check_reference_values(ref[valid & (ref != ignore_index)], K, reference)
                core = (slice(r0 - a0, r1 - a0), slice(0, W))
                acc.update(pred, ref, valid, core, grid_row=r0)

    if writer is not None:
        with writer.open():
            run()
    else:
        run()
    metrics = acc.result(names)
    metrics["prediction"] = str(prediction)
    metrics["reference"] = str(reference)
    metrics["rows"] = [R0, R1]
    if writer is not None:
        metrics["error_map"] = str(writer.path)
    return metrics


def _check_prediction_values(values: np.ndarray, num_classes: int, path: str | Path) -> None:
    """Refuse class values outside ``0..num_classes - 1`` in a prediction (naming a few of them)."""
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        found = np.unique(bad)
        raise InputError(
            f"{Path(path).name}: holds value(s) {summarize_values(found)} outside the "
            f"{num_classes} classes (0..{num_classes - 1}); give a class mask written for these "
            "classes (rs-vit predict) or the matching --classes, or declare its no-prediction "
            f"value as nodata (gdal_edit.py -a_nodata {int(found[0])})."
        )


def _check_reference_values(values: np.ndarray, num_classes: int, path: str | Path) -> None:
    """Refuse reference values that are neither a class nor ignored, naming the file and the fix."""
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        found = np.unique(bad)
        flags = "--ignore-values " + ",".join(str(v) for v in found[:3].tolist())
        raise InputError(
            f"{Path(path).name}: holds reference value(s) {summarize_values(found)} that are not among "
            f"the {num_classes} classes (0..{num_classes - 1}) nor ignored; exclude them with {flags}"
            f"{' …' if found.size > 3 else ''}, or give the classes they belong to (--classes)."
        )


# -- a checkpoint over a config's validation split ---------------------------------------------


@dataclass
class _ValArea:
    """One validation rectangle of a scene, in memory, with bands in the model's order."""

    image: np.ndarray  # (C, h, w) raw values
    labels: np.ndarray  # (h, w) int64, ignore_index where unusable
    invalid: np.ndarray  # (h, w) bool: nodata or masked by the scene's GDAL mask
    row: int  # top-left corner on the scene grid
    col: int


def _validation_scenes(config: Any, bands: Sequence[str]) -> Iterator[tuple[SceneInfo, list[_ValArea]]]:
    """Thin adapter over the training data API: each scene's validation rectangles.

    Uses :func:`rs_vit.data.scenes.load_scene` so bands, labels, nodata, ignore values and the
    spatial split (rows or blocks, same seed) are exactly those of training.
    """
    from rs_vit.data.scenes import load_scene
    from rs_vit.data.split import VAL

    for sd in config.data.scenes:
        s = load_scene(sd, config.data, list(bands), tile=config.train.tile_size,
                       seed=config.train.seed)
        areas = []
        for r0, r1, c0, c1 in s.split.cells(VAL):
            image, labels, invalid = s.read(r0, c0, r1 - r0, c1 - c0)
            areas.append(_ValArea(image, labels, invalid, r0, c0))
        if areas:
            yield s.info, areas


def _predict_array(predictor: Any, image: np.ndarray, nodata: float | None,
                   progress: Callable[[int], None] | None = None, crs: Any = None,
                   transform: Any = None, invalid: np.ndarray | None = None) -> np.ndarray:
    """Run the sliding-window predictor over an in-memory ``(C, h, w)`` array.

    Returns class indices ``(h, w)`` with ``num_classes`` where nothing was predicted (nodata).
    """
    from rasterio.io import MemoryFile

    from rs_vit.infer.engine import argmax_classes

    c, h, w = image.shape
    K = predictor.spec.num_classes
    out = np.full((h, w), K, dtype=np.int64)

    def write_rows(row0: int, probs: np.ndarray, valid: np.ndarray) -> None:
        cls = argmax_classes(probs).astype(np.int64)
        cls[~valid] = K
        out[row0: row0 + cls.shape[0]] = cls

    profile = {"driver": "GTiff", "width": w, "height": h, "count": c, "dtype": image.dtype.name,
               "crs": crs, "transform": transform}
    if nodata is not None:
        profile["nodata"] = nodata
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(image)
            if invalid is not None and invalid.any():  # the scene's GDAL mask, as a mask again
                dst.write_mask(np.where(invalid, 0, 255).astype(np.uint8))
        with mem.open() as src:
            predictor.run(src, list(range(c)), nodata, write_rows, progress=progress)
    return out


def find_run_config(checkpoint: str | Path) -> Path:
    """The training config of a checkpoint: ``<ckpt>/config.yaml`` or the run's ``config.yaml``."""
    ck = Path(checkpoint)
    for cand in (ck / "config.yaml", ck.parent / "config.yaml"):
        if cand.is_file():
            return cand
    raise ConfigError(
        f"No config.yaml in checkpoint {ck} or its run directory; pass --config run.yaml "
        "(the training config whose validation split to evaluate)."
    )


def evaluate_checkpoint(
    checkpoint: str | Path,
    config: str | Path | Any | None = None,
    *,
    overlap: float | None = None,
    blend: str | None = None,
    batch_size: int = 4,
    device: str = "auto",
    precision: str = "auto",
    tolerance: float = 2.0,
    error_map_dir: str | Path | None = None,
    per_window: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, str], Callable[[int], None]] | None = None,
) -> dict[str, Any]:
    """Run a checkpoint over the validation split of a training config and evaluate it.

    Each scene of ``config.data.scenes`` is read with the training data pipeline (same bands,
    labels, nodata and ignore values, same spatial split); its validation rows are predicted
    with overlapping blended windows and compared with its labels. Counts are pooled over scenes
    (``metrics["scenes"]`` holds each scene's own metrics).

    Args:
        checkpoint: Checkpoint folder (``runs/x/best``).
        config: Training config (path, or a :class:`rs_vit.config.RunConfig`); default: the
            ``config.yaml`` stored in the checkpoint or its run directory.
        overlap, blend, batch_size, device, precision: Sliding-window settings (see
            ``rs-vit predict``; overlap and blend default to its defaults).
        tolerance: Boundary F1 tolerance in pixels.
        error_map_dir: Write ``<scene>_errors.tif`` per scene here (scene grid; rows outside the
            validation split are 0 = ignored).
        per_window: Also report per-window accuracy (window size in pixels).
        overwrite: Replace existing error maps.
        progress: Optional factory ``progress(total_windows, scene_name) -> tick(n)``.

    Returns:
        The pooled metrics dict (as :func:`evaluate_mask`) plus ``checkpoint``, ``config`` and
        ``scenes``.

    Raises:
        ConfigError: If no config is found or no scene has a validation split.
    """
    from rs_vit.config import RunConfig, load_config
    from rs_vit.infer.engine import DEFAULT_BLEND, DEFAULT_OVERLAP, SlidingWindowPredictor
    from rs_vit.io.windows import make_grid
    from rs_vit.models.checkpoint import load_model

    if isinstance(config, RunConfig):
        cfg, cfg_src = config, "RunConfig"
    else:
        path = Path(config) if config is not None else find_run_config(checkpoint)
        cfg, cfg_src = load_config(path), str(path)
    if not cfg.data.scenes:
        raise ConfigError(f"{cfg_src}: data.scenes is empty; nothing to evaluate.")
    overlap = DEFAULT_OVERLAP if overlap is None else overlap
    blend = DEFAULT_BLEND if blend is None else blend
    model, spec = load_model(checkpoint)
    predictor = SlidingWindowPredictor(model, spec, overlap=overlap, blend=blend,
                                       batch_size=batch_size, device=device, precision=precision)
    names = spec.class_names
    K = spec.num_classes
    ignore = cfg.data.ignore_index
    if error_map_dir is not None:
        Path(error_map_dir).mkdir(parents=True, exist_ok=True)
    pooled = _Accumulator(K, ignore, tolerance, per_window, None)
    scenes: list[dict[str, Any]] = []
    for info, areas in _validation_scenes(cfg, spec.bands):
        writer = None
        if error_map_dir is not None:
            writer = ErrorMapWriter(Path(error_map_dir) / f"{info.path.stem}_errors.tif",
                                    info.width, info.height, info.crs, info.transform,
                                    overwrite=overwrite)
        own = _Accumulator(K, ignore, tolerance, per_window, writer)

        def run(own: _Accumulator = own, info: SceneInfo = info, areas: list[_ValArea] = areas) -> None:
            for a in areas:
                h, w = a.labels.shape
                tick = None
                if progress is not None:
                    total = sum(len(r) for r in make_grid(h, w, predictor.tile, overlap))
                    tick = progress(total, info.path.name)
                transform = info.transform * info.transform.translation(a.col, a.row)
                pred = _predict_array(predictor, a.image, info.nodata, tick, info.crs, transform,
                                      a.invalid)
                own.update(pred, a.labels, pred < K, (slice(0, h), slice(0, w)),
                           grid_row=a.row, grid_col=a.col)

        if writer is not None:
            with writer.open():
                run()
        else:
            run()
        pooled.cm.merge(own.cm)
        pooled.bf.merge(own.bf)
        pooled.unpredicted += own.unpredicted
        pooled.windows.extend({"scene": info.path.name, **w} for w in own.windows)
        m = own.result(names)
        m.update(scene=str(info.path), areas=[[a.row, a.row + a.labels.shape[0], a.col,
                                               a.col + a.labels.shape[1]] for a in areas])
        if writer is not None:
            m["error_map"] = str(writer.path)
        scenes.append(m)
    if not scenes:
        raise ConfigError(
            f"{cfg_src}: no scene has a validation split; set data.val_fraction > 0 or a scene "
            "with split: val."
        )
    metrics = pooled.result(names)
    metrics.update(checkpoint=str(checkpoint), config=cfg_src, overlap=overlap, blend=blend,
                   scenes=[{k: v for k, v in s.items() if k != "windows"} for s in scenes])
    return metrics
