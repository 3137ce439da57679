"""Per-band normalisation statistics, computed from training pixels only and ignoring nodata."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rs_vit.errors import InputError


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
