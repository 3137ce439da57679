"""Per-band normalisation statistics, computed from training pixels only and ignoring nodata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rs_vit.errors import InputError

if TYPE_CHECKING:
    from rs_vit.data.scenes import LabeledScene


class BandStats:
    """Streaming per-band mean and standard deviation (float64 sums; Chan's merge is not needed
    at these magnitudes because values are centred on a running shift)."""

    def __init__(self, bands: int) -> None:
        self.n = 0
        self.shift: np.ndarray | None = None
        self.s1 = np.zeros(bands, dtype=np.float64)
        self.s2 = np.zeros(bands, dtype=np.float64)

    def update(self, arr: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add the valid pixels of a ``(bands, H, W)`` array."""
        x = arr.reshape(arr.shape[0], -1)
        if valid is not None:
            x = x[:, valid.reshape(-1)]
        if x.shape[1] == 0:
            return
        x = x.astype(np.float64)
        if self.shift is None:
            self.shift = x[:, : min(1000, x.shape[1])].mean(axis=1)
        d = x - self.shift[:, None]
        self.s1 += d.sum(axis=1)
        self.s2 += (d * d).sum(axis=1)
        self.n += x.shape[1]

    def result(self, source: str = "training data", *, floor: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` per band.

        Args:
            source: names the data in the "no valid pixels" error.
            floor: replace a (near-)zero std by 1, as the normaliser needs (a constant band must
                not divide by zero); ``False`` reports the true std (``rs-vit stats``).
        """
        if self.n == 0 or self.shift is None:
            raise InputError(
                f"{source}: no valid pixels to compute band statistics from (all nodata?); "
                "check the scenes' nodata value and the split."
            )
        m = self.s1 / self.n
        var = np.maximum(self.s2 / self.n - m * m, 0.0)
        mean = m + self.shift
        std = np.sqrt(var)
        if not floor:
            return mean, std
        std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        return mean, std


def training_stats(scenes: Sequence[LabeledScene], samples: int = 2_000_000, seed: int = 0,
                   source: str = "training area") -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std over the valid pixels of the scenes' train cells.

    At most about ``samples`` pixels are used: cached scenes are subsampled at random (seeded),
    scenes read window by window are read decimated (every f-th row and column of each cell).
    """
    from rs_vit.data.split import TRAIN

    total = sum(s.split.area(TRAIN) for s in scenes)
    if total == 0:
        raise InputError(f"{source}: no training pixels to compute band statistics from.")
    keep = min(1.0, samples / total)
    rng = np.random.default_rng(seed)
    acc = BandStats(len(scenes[0].band_indexes))
    for s in scenes:
        for r0, r1, c0, c1 in s.split.cells(TRAIN):
            if s.cached:
                img, _, inv = s.read(r0, c0, r1 - r0, c1 - c0)
                x = img.reshape(img.shape[0], -1)[:, ~inv.reshape(-1)]
                if keep < 1.0 and x.shape[1]:
                    x = x[:, rng.random(x.shape[1]) < keep]
                acc.update(x[:, None, :])
            else:
                f = max(1, int(np.ceil(np.sqrt(1.0 / keep))))
                for r in range(r0, r1, 1024):
                    img, _, inv = s.read(r, c0, min(1024, r1 - r), c1 - c0)
                    acc.update(img[:, ::f, ::f], ~inv[::f, ::f])
    return acc.result(source)


def file_stats(path: str | Path, *, samples: int = 2_000_000, bands: Sequence[str] | None = None,
               sensor: str | None = None) -> dict[str, Any]:
    """Per-band statistics of a raster file, nodata-aware, read decimated to about ``samples`` pixels.

    Returns:
        ``{"path", "bands": [{"name", "mean", "std", "min", "max"}], "valid_pixels", "sampled_pixels",
        "nodata", "mask"}``: ``std`` is the true standard deviation (0 for a constant band),
        ``mask`` the kind of GDAL mask that also marks invalid pixels (``alpha``, ``per_dataset``,
        ``per_band`` or None); an alpha band is not among ``bands``.
    """
    from rs_vit.io.raster import invalid_mask, masked_pixels, open_raster, scene_info

    info = scene_info(path, bands=bands, sensor=sensor, require_crs=False)
    f = max(1.0, float(np.sqrt(info.width * info.height / samples)))
    shape = (max(1, int(info.height / f)), max(1, int(info.width / f)))
    idx = info.input_indexes  # an alpha band is a mask, not data
    with open_raster(path) as src:
        arr = src.read([i + 1 for i in idx], out_shape=(len(idx), *shape))  # nearest-neighbour decimation
        masked = masked_pixels(src, None, idx, kind=info.mask_kind, out_shape=shape)
    valid = ~invalid_mask(arr, info.nodata, masked)
    acc = BandStats(len(idx))
    acc.update(arr, valid)
    mean, std = acc.result(str(path), floor=False)
    x = arr.reshape(len(idx), -1)[:, valid.reshape(-1)]
    names = [info.band_names[i] for i in idx]
    return {
        "path": str(path), "nodata": info.nodata, "mask": info.mask_kind, "sampled_pixels": int(valid.size),
        "valid_pixels": int(valid.sum()),
        "bands": [{"name": n, "mean": float(m), "std": float(s), "min": float(x[i].min()),
                   "max": float(x[i].max())} for i, (n, m, s) in enumerate(zip(names, mean, std))],
    }


# -- value ranges: the training data's, recorded in the checkpoint, and a scene's, compared -----

#: Percentiles recorded as a band's low / typical / high value.
RANGE_PERCENTILES = (1.0, 50.0, 99.0)


def _percentiles(x: np.ndarray) -> np.ndarray:
    """``(3, bands)`` low / median / high of a ``(bands, n)`` sample."""
    return np.percentile(x.astype(np.float64), RANGE_PERCENTILES, axis=1)


def training_value_range(scenes: Sequence[LabeledScene], *, windows: int = 16, size: int = 128,
                         seed: int = 0) -> dict[str, Any] | None:
    """The training data's pixel type and per-band 1st / 50th / 99th percentiles of valid pixels,
    from up to ``windows`` random ``size``-pixel windows of each scene's train cells (at most
    about 256 windows in all: cheap).

    Returns:
        ``{"dtype", "bands": {name: [low, median, high]}}``, or None without valid pixels;
        stored in the checkpoint (:attr:`rs_vit.models.checkpoint.ModelSpec.value_range`).
    """
    from rs_vit.data.split import TRAIN

    rng = np.random.default_rng(seed)
    parts = []
    per_scene = max(1, min(windows, 256 // max(1, len(scenes))))  # many chips: one window each
    for s in scenes:
        cells = s.split.cells(TRAIN)
        for _ in range(per_scene if cells else 0):
            r0, r1, c0, c1 = cells[int(rng.integers(len(cells)))]
            h, w = min(size, r1 - r0), min(size, c1 - c0)
            r, c = int(rng.integers(r0, r1 - h + 1)), int(rng.integers(c0, c1 - w + 1))
            img, _, inv = s.read(r, c, h, w)
            parts.append(img.reshape(img.shape[0], -1)[:, ~inv.reshape(-1)])
    x = np.concatenate(parts, axis=1) if parts else np.zeros((0, 0))
    if x.size == 0:
        return None
    p = _percentiles(x)
    return {"dtype": str(scenes[0].info.dtype),
            "bands": {b: [float(v) for v in p[:, i]] for i, b in enumerate(scenes[0].info.band_names)}}


def sample_scene_values(src: Any, indexes: Sequence[int], nodata: float | None, *, windows: int = 4,
                        size: int = 64) -> np.ndarray:
    """Valid pixels ``(bands, n)`` of ``windows × windows`` small windows spread over a scene (a
    few blocks decoded, never the whole file). A file stored in blocks much taller than a window
    (one strip for the whole file) is sampled by one full-width band of ``size`` rows across its
    middle instead: every read of such a file decodes whole blocks."""
    from rasterio.windows import Window

    from rs_vit.io.raster import gdal_mask_kind, invalid_mask, masked_pixels

    kind = gdal_mask_kind(src)
    H, W = src.height, src.width
    h, w = min(size, H), min(size, W)
    bh = src.block_shapes[0][0] if src.block_shapes else 1
    if bh > 4 * size:
        spots = [Window(0, (H - h) // 2, W, h)]
    else:
        spots = [Window(int(c), int(r), w, h) for r in np.linspace(0, H - h, windows).astype(int)
                 for c in np.linspace(0, W - w, windows).astype(int)]
    parts = []
    for win in spots:
        arr = src.read([i + 1 for i in indexes], window=win)
        inv = invalid_mask(arr, nodata, masked_pixels(src, win, indexes, kind=kind))
        parts.append(arr.reshape(arr.shape[0], -1)[:, ~inv.reshape(-1)])
    return np.concatenate(parts, axis=1)


def range_mismatch(value_range: dict[str, Any] | None, bands: Sequence[str], sample: np.ndarray,
                   dtype: str, scene: str = "scene") -> str | None:
    """A one-line warning when a scene's sampled values ``(len(bands), n)``, in the model's band
    order, are far outside the training data's range (most of the bands recorded), else None.

    A band is *far* when its median lies more than one training range (high - low) beyond it,
    or when its 1st..99th percentile span lies wholly outside the training span and is over 5
    times narrower or wider (0-255 data under a checkpoint trained on reflectance, or the other
    way round).
    """
    known = [i for i, b in enumerate(bands) if b in (value_range or {}).get("bands", {})]
    if not known or sample.size == 0:
        return None
    assert value_range is not None
    ref = np.array([value_range["bands"][bands[i]] for i in known], float)
    lo, hi = ref[:, 0], ref[:, 2]
    slo, smed, shi = _percentiles(sample[known])
    width = np.maximum(hi - lo, 1e-6 * np.maximum(np.abs(hi), 1.0))
    swidth = np.maximum(shi - slo, 1e-6 * np.maximum(np.abs(shi), 1.0))
    ratio = swidth / width
    off_centre = (smed < lo - width) | (smed > hi + width)
    disjoint = (shi < lo) | (slo > hi)
    far = off_centre | (disjoint & ((ratio > 5) | (ratio < 0.2)))
    if far.sum() * 2 <= far.size:
        return None
    return (
        f"{scene}: its values ({dtype}, typically {_span(slo, shi)}) are far outside the range the "
        f"checkpoint was trained on ({value_range.get('dtype', '?')}, {_span(lo, hi)}); the "
        "prediction is likely meaningless. Rescale the scene to the training data's units (e.g. "
        "gdal_translate -scale), or use a checkpoint trained on data like it."
    )


def _span(lo: np.ndarray, hi: np.ndarray) -> str:
    """``"120..2900"``: the median band's 1st..99th percentile span (a short summary)."""
    return f"{float(np.median(lo)):.4g}..{float(np.median(hi)):.4g}"
