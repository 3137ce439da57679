"""Per-band normalisation statistics, computed from training pixels only and ignoring nodata."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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

    def result(self, source: str = "training data") -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` per band; std is floored so constant bands do not divide by zero."""
        if self.n == 0 or self.shift is None:
            raise InputError(
                f"{source}: no valid pixels to compute band statistics from (all nodata?); "
                "check the scenes' nodata value and the split."
            )
        m = self.s1 / self.n
        var = np.maximum(self.s2 / self.n - m * m, 0.0)
        mean = m + self.shift
        std = np.sqrt(var)
        std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        return mean, std


def band_stats(
    arrays: Iterable[tuple[np.ndarray, np.ndarray]], bands: int, source: str = "training data"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per band over ``(array, valid_mask)`` pairs."""
    acc = BandStats(bands)
    for arr, valid in arrays:
        acc.update(arr, valid)
    return acc.result(source)


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
        ``{"path", "bands": [{"name", "mean", "std", "min", "max"}], "valid_pixels", "sampled_pixels", "nodata"}``.
    """
    from rs_vit.io.raster import invalid_mask, open_raster, scene_info

    info = scene_info(path, bands=bands, sensor=sensor, require_crs=False)
    f = max(1.0, float(np.sqrt(info.width * info.height / samples)))
    shape = (max(1, int(info.height / f)), max(1, int(info.width / f)))
    with open_raster(path) as src:
        arr = src.read(out_shape=(info.count, *shape))  # nearest-neighbour decimation
    valid = ~invalid_mask(arr, info.nodata)
    acc = BandStats(info.count)
    acc.update(arr, valid)
    mean, std = acc.result(str(path))
    x = arr.reshape(info.count, -1)[:, valid.reshape(-1)]
    return {
        "path": str(path), "nodata": info.nodata, "sampled_pixels": int(valid.size),
        "valid_pixels": int(valid.sum()),
        "bands": [{"name": n, "mean": float(m), "std": float(s), "min": float(x[i].min()),
                   "max": float(x[i].max())} for i, (n, m, s) in enumerate(zip(info.band_names, mean, std))],
    }
