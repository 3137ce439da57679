"""Deprecated home of the window grid, kept as re-exports for one release.

The window arithmetic now lives in :mod:`rs_vit.io.windows` and the tile rule in
:mod:`rs_vit.models.registry` (``check_tile``); import them from there.
"""

from __future__ import annotations

from typing import Any

from rs_vit.io.windows import count_windows, make_grid, overlap_pixels, window_starts

__all__ = ["check_tile", "count_windows", "make_grid", "overlap_pixels", "window_starts"]


def __getattr__(name: str) -> Any:  # lazy: the registry imports torch
    if name == "check_tile":
        from rs_vit.models.registry import check_tile

        return check_tile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
