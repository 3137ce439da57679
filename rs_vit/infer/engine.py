"""The sliding-window engine: read → normalise → batch → model → blend → stream rows out.

Memory is bounded by one strip of windows (tile height × scene width × classes) plus a batch:
rows are finalised and written as soon as no later window can touch them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from torch import nn

from rs_vit.device import autocast, resolve_device, resolve_precision
from rs_vit.errors import InputError
from rs_vit.infer.blend import blend_profile
from rs_vit.infer.grid import make_grid, overlap_pixels
from rs_vit.io.atomic import atomic_path, check_output
from rs_vit.io.bands import match_bands
from rs_vit.io.raster import invalid_mask, normalize, open_raster, read_window, scene_info
from rs_vit.models.checkpoint import ModelSpec, load_model
from rs_vit.models.registry import check_tile_size


@dataclass
class PredictResult:
    """What one scene's prediction produced."""

    scene: Path
    out: Path
    windows: int
    windows_skipped: int
    seconds: float
    width: int
    height: int
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def windows_per_second(self) -> float:
        return self.windows / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class _Window:
    row: int
    col: int
    h: int  # valid (unpadded) height
    w: int
    data: np.ndarray | None  # normalised (C, tile, tile) float32, None when all nodata
    invalid: np.ndarray  # (h, w) bool


def mask_dtype_nodata(num_classes: int) -> tuple[str, int]:
    """uint8 with nodata 255 for < 255 classes, else uint16 with nodata 65535."""
    return ("uint8", 255) if num_classes < 255 else ("uint16", 65535)


def _pad(arr: np.ndarray, tile: int) -> np.ndarray:
    """Reflect-pad a ``(C, h, w)`` window up to ``tile × tile`` (edge-pad when too small to reflect)."""
    _, h, w = arr.shape
    if h == tile and w == tile:
        return arr
    pads = ((0, 0), (0, tile - h), (0, tile - w))
    mode = "reflect" if (tile - h) < h and (tile - w) < w else "symmetric"
    try:
        return np.pad(arr, pads, mode=mode)
    except ValueError:
        return np.pad(arr, pads, mode="edge")


class SlidingWindowPredictor:
    """Runs a segmentation model over a raster with overlapping, blended windows.

    Args:
        model: maps ``(B, C, tile, tile)`` float tensors to logits ``(B, K, tile, tile)``.
        spec: the model's description (bands, normalisation, classes, tile size).
        tile_size: window size (default: the checkpoint's).
        overlap: fraction of the tile (< 1) or pixels (>= 1) shared by neighbouring windows.
        blend: weight profile, see :mod:`rs_vit.infer.blend`.
        batch_size: windows per forward pass.
        device, precision: see :mod:`rs_vit.device`.
        channels_last: use the channels-last memory format (faster convolutions on CPU and GPU).
        read_threads: background threads reading and normalising windows.
    """

    def __init__(
        self,
        model: nn.Module,
        spec: ModelSpec,
        *,
        tile_size: int | None = None,
        overlap: float = 0.5,
        blend: str = "hann",
        batch_size: int = 4,
        device: str | torch.device = "auto",
        precision: str = "auto",
        channels_last: bool = True,
        read_threads: int = 2,
    ) -> None:
        self.spec = spec
        self.tile = int(tile_size or spec.tile_size)
        check_tile_size(spec.name, self.tile)
        self.overlap_px = overlap_pixels(self.tile, overlap)
        self.overlap = overlap
        self.blend = blend
        self.profile = blend_profile(self.tile, blend, self.overlap_px)
        self.batch_size = batch_size
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.dtype = resolve_precision(precision, self.device)
        self.channels_last = channels_last
        self.read_threads = max(1, read_threads)
        self.model = model.to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.mean = np.asarray(spec.mean, dtype=np.float32)
        self.std = np.asarray(spec.std, dtype=np.float32)

    # -- model -------------------------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Softmax probabilities ``(B, K, tile, tile)`` float32 for a normalised batch."""
        x = torch.from_numpy(batch).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.dtype):
            logits = self.model(x)
        return torch.softmax(logits.float(), dim=1).cpu().numpy()

    # -- reading -----------------------------------------------------------------------------
    def _read(self, src, indexes: Sequence[int], nodata: float | None, row: int, col: int) -> _Window:
        h = min(self.tile, src.height - row)
        w = min(self.tile, src.width - col)
        raw = read_window(src, Window(col, row, w, h), indexes)
        invalid = invalid_mask(raw, nodata)
        if invalid.all():
            return _Window(row, col, h, w, None, invalid)
        data = _pad(normalize(raw, self.mean, self.std, invalid), self.tile)
        return _Window(row, col, h, w, np.ascontiguousarray(data), invalid)

    # -- the streaming loop --------------------------------------------------------------------
    def run(
        self,
        src: rasterio.DatasetReader,
        indexes: Sequence[int],
        nodata: float | None,
        write_rows: Callable[[int, np.ndarray, np.ndarray], None],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[int, int]:
        """Predict ``src`` and call ``write_rows(row0, probs (K, n, W), valid (n, W))`` for each
        finished block of rows, top to bottom. Returns (windows run, windows skipped)."""
        H, W, K, T = src.height, src.width, self.spec.num_classes, self.tile
        grid = make_grid(H, W, T, self.overlap)
        row_offsets = [r[0][0] for r in grid]
        strip_h = min(T, H)
        acc = np.zeros((K, strip_h, W), dtype=np.float32)  # one window row: the whole state
        wsum = np.zeros((strip_h, W), dtype=np.float32)
        valid = np.zeros((strip_h, W), dtype=bool)
        top = 0  # scene row of acc[:, 0]
        ran = skipped = 0

        def flush(until: int) -> None:
            nonlocal top
            n = until - top
            if n <= 0:
                return
            ws = wsum[:n]
            probs = acc[:, :n] / np.where(ws > 0, ws, 1.0)[None]
            write_rows(top, probs, valid[:n] & (ws > 0))
            # shift the strip up by n rows
            acc[:, :-n] = acc[:, n:]
            acc[:, -n:] = 0
            wsum[:-n] = wsum[n:]
            wsum[-n:] = 0
            valid[:-n] = valid[n:]
            valid[-n:] = False
            top = until

        def place(win: _Window, probs: np.ndarray | None) -> None:
            r0 = win.row - top
            sl = (slice(r0, r0 + win.h), slice(win.col, win.col + win.w))
            valid[sl] |= ~win.invalid
            if probs is None:
                return
            wgt = np.outer(self.profile[: win.h], self.profile[: win.w])
            wgt = wgt * (~win.invalid)
            acc[(slice(None), *sl)] += probs[:, : win.h, : win.w] * wgt[None]
            wsum[sl] += wgt

        windows = [(r, c) for row in grid for (r, c) in row]
        pending: list[_Window] = []

        def run_batch() -> None:
            nonlocal ran
            if not pending:
                return
            probs = self.forward(np.stack([p.data for p in pending]))
            for p, pr in zip(pending, probs):
                place(p, pr)
            ran += len(pending)
            if progress:
                progress(len(pending))
            pending.clear()

        next_row_idx = 1
        with ThreadPoolExecutor(self.read_threads) as pool:
            reads: Iterator[_Window] = pool.map(lambda rc: self._read(src, indexes, nodata, *rc), windows)
            for i, win in enumerate(reads):
                if win.data is None:
                    place(win, None)
                    skipped += 1
                    if progress:
                        progress(1)
                else:
                    pending.append(win)
                    if len(pending) == self.batch_size:
                        run_batch()
                # when the next window starts a new grid row, rows above it are final
                nxt = windows[i + 1][0] if i + 1 < len(windows) else None
                if nxt is not None and nxt != win.row:
                    run_batch()
                    flush(row_offsets[next_row_idx])
                    next_row_idx += 1
            run_batch()
            flush(H)
        return ran, skipped


def argmax_classes(probs: np.ndarray) -> np.ndarray:
    """Class index of the maximum along axis 0 via a running maximum (much faster than
    ``argmax`` over the class axis of a large C-contiguous strip)."""
    best = probs[0].copy()
    idx = np.zeros(best.shape, dtype=np.uint16)
    for k in range(1, probs.shape[0]):
        better = probs[k] > best
        np.copyto(best, probs[k], where=better)
        idx[better] = k
    return idx


def _colormap(spec: ModelSpec) -> dict[int, tuple[int, int, int, int]] | None:
    colors = spec.class_colors
    if not any(colors):
        return None
    return {i: (*c, 255) if c else (0, 0, 0, 255) for i, c in enumerate(colors)}


def predict_scene(
    scene: str | Path,
    out: str | Path,
    *,
    checkpoint: str | Path | None = None,
    model: nn.Module | None = None,
    spec: ModelSpec | None = None,
    predictor: SlidingWindowPredictor | None = None,
    tile_size: int | None = None,
    overlap: float = 0.5,
    blend: str = "hann",
    batch_size: int = 4,
    device: str = "auto",
    precision: str = "auto",
    bands: Sequence[str] | None = None,
    sensor: str | None = None,
    nodata: float | None = None,
    overwrite: bool = False,
    progress: bool | Callable[[int, int], Callable[[int], None]] = False,
) -> PredictResult:
    """Predict a whole scene into a georeferenced class-mask GeoTIFF.

    Give either a ``checkpoint`` folder, a ``model`` with its ``spec``, or a ready ``predictor``
    (reused across scenes so the model loads once). The output has the scene's CRS, transform,
    width and height; nodata pixels of the scene are nodata in the mask. Written atomically.
    """
    out = check_output(out, overwrite=overwrite, label="output mask")
    if predictor is None:
        if checkpoint is not None:
            model, spec = load_model(checkpoint)
        if model is None or spec is None:
            raise ValueError("predict_scene needs checkpoint=, model= and spec=, or predictor=")
        predictor = SlidingWindowPredictor(
            model, spec, tile_size=tile_size, overlap=overlap, blend=blend,
            batch_size=batch_size, device=device, precision=precision,
        )
    spec = predictor.spec
    info = scene_info(scene, bands=bands, sensor=sensor)
    indexes = match_bands(info.band_names, spec.bands, scene_label=f"Scene {info.path.name}")
    nd = nodata if nodata is not None else (info.nodata if info.nodata is not None else spec.nodata)
    dtype, out_nodata = mask_dtype_nodata(spec.num_classes)
    profile = {
        "driver": "GTiff", "width": info.width, "height": info.height, "count": 1, "dtype": dtype,
        "crs": info.crs, "transform": info.transform, "nodata": out_nodata, "tiled": True,
        "blockxsize": 256, "blockysize": 256, "compress": "deflate",
    }
    if info.width < 256 or info.height < 256:
        profile.update(tiled=False)
        profile.pop("blockxsize")
        profile.pop("blockysize")
    grid = make_grid(info.height, info.width, predictor.tile, predictor.overlap)
    total = sum(len(r) for r in grid)
    tick = progress(total, info.path.name) if callable(progress) else None
    t0 = time.perf_counter()
    with atomic_path(out) as tmp, open_raster(info.path) as src:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.set_band_description(1, "class")
            cmap = _colormap(spec)
            if cmap:
                dst.write_colormap(1, cmap)
            dst.update_tags(1, classes=",".join(spec.class_names))
            dst.update_tags(rs_vit_model=spec.name, rs_vit_classes=",".join(spec.class_names))

            def write_rows(row0: int, probs: np.ndarray, valid: np.ndarray) -> None:
                cls = argmax_classes(probs).astype(dtype)
                cls[~valid] = out_nodata
                dst.write(cls, 1, window=Window(0, row0, info.width, cls.shape[0]))

            try:
                ran, skipped = predictor.run(src, indexes, nd, write_rows, progress=tick)
            except RuntimeError as exc:
                raise InputError(f"{info.path.name}: prediction failed ({exc}).") from exc
    return PredictResult(
        scene=info.path, out=out, windows=ran, windows_skipped=skipped,
        seconds=time.perf_counter() - t0, width=info.width, height=info.height,
        outputs={"mask": out},
    )
