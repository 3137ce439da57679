"""Blend weights for overlapping windows.

Each window's class probabilities are multiplied by a weight that is high in its centre (where
the model saw context) and low at its border (where it did not), summed, and divided by the
summed weight. A small positive floor keeps scene-edge pixels, covered only by window borders,
from being left without weight.
"""

from __future__ import annotations

import numpy as np

from rs_vit.errors import ConfigError

BLENDS = ("hann", "gaussian", "triangular", "spline", "uniform", "crop")
FLOOR = 1e-3


def _profile(kind: str, tile: int, overlap: int) -> np.ndarray:
    x = (np.arange(tile, dtype=np.float64) + 0.5) / tile  # pixel centres in (0, 1)
    if kind == "hann":
        w = 0.5 - 0.5 * np.cos(2 * np.pi * x)
    elif kind == "gaussian":
        w = np.exp(-0.5 * ((x - 0.5) / 0.125) ** 2)  # sigma = tile / 8
    elif kind == "triangular":
        w = 1.0 - np.abs(2.0 * x - 1.0)
    elif kind == "spline":  # squared-spline window (as in the "smoothly blend patches" recipe)
        t = np.abs(2.0 * x - 1.0)
        w = np.where(t < 0.5, 1.0 - 2.0 * t**2, 2.0 * (1.0 - t) ** 2)
    elif kind == "uniform":
        w = np.ones(tile)
    elif kind == "crop":
        half = overlap // 2
        w = np.zeros(tile)
        w[half: tile - (overlap - half)] = 1.0
    else:
        raise ConfigError(f"Unknown blend {kind!r}; choose one of {', '.join(BLENDS)}.")
    return np.maximum(w, FLOOR)


def blend_weights(tile: int, kind: str = "hann", overlap: int = 0) -> np.ndarray:
    """A separable ``(tile, tile)`` float32 weight; ``overlap`` (pixels) is used by ``crop``."""
    p = _profile(kind, tile, overlap)
    return np.outer(p, p).astype(np.float32)


def blend_profile(tile: int, kind: str = "hann", overlap: int = 0) -> np.ndarray:
    """The 1-D profile whose outer product is :func:`blend_weights` (float32)."""
    return _profile(kind, tile, overlap).astype(np.float32)
