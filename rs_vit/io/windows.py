"""Window arithmetic: overlapping square windows covering every pixel of a scene.

The one home of the window grid (ARCHITECTURE.md rule 1): the predictor, the training datasets,
the chip writer and the evaluator all place their windows with these functions.
"""

from __future__ import annotations

import math

from rs_vit.errors import ConfigError

__all__ = ["count_windows", "make_grid", "overlap_pixels", "window_starts"]


def overlap_pixels(tile: int, overlap: float) -> int:
    """Overlap given as a fraction of the tile (``0 <= overlap < 1``) or in pixels (``>= 1``).

    Raises:
        ConfigError: when the overlap is negative or leaves no stride.
    """
    if not math.isfinite(overlap) or overlap < 0:
        raise ConfigError(f"--overlap must be a number >= 0 (a fraction below 1 or pixels), got {overlap}.")
    px = int(round(overlap * tile)) if overlap < 1 else int(overlap)
    if px >= tile:
        raise ConfigError(
            f"--overlap {overlap} leaves no stride for tile size {tile}; use a fraction below 1 "
            f"or fewer than {tile} pixels."
        )
    return px


def window_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis: every ``stride`` pixels, the last one snapped so the final
    window ends exactly at ``length``. A length shorter than the tile gives ``[0]`` (the window is
    padded)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def make_grid(height: int, width: int, tile: int, overlap: float = 0.5) -> list[list[tuple[int, int]]]:
    """Rows of ``(row_off, col_off)`` window origins covering a ``height × width`` scene."""
    stride = tile - overlap_pixels(tile, overlap)
    cols = window_starts(width, tile, stride)
    return [[(r, c) for c in cols] for r in window_starts(height, tile, stride)]


def count_windows(height: int, width: int, tile: int, overlap: float = 0.5) -> int:
    """How many windows :func:`make_grid` places on a ``height × width`` scene."""
    stride = tile - overlap_pixels(tile, overlap)
    return len(window_starts(height, tile, stride)) * len(window_starts(width, tile, stride))
