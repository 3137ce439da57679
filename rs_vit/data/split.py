"""Spatial train/validation splits: a scene is cut into cells (rows, square blocks, or the whole
scene) and each cell is assigned to train or val. Random pixel splits leak (neighbouring pixels
are nearly identical), so rs-vit never does them; training windows lie entirely inside train
cells and the validation grid covers only val cells."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN, VAL = 0, 1


@dataclass
class Split:
    """Cell edges along rows and columns and the role of each cell (0 train, 1 val)."""

    row_edges: np.ndarray  # (ny + 1,) ints from 0 to H
    col_edges: np.ndarray  # (nx + 1,) ints from 0 to W
    roles: np.ndarray  # (ny, nx) uint8

    @property
    def height(self) -> int:
        return int(self.row_edges[-1])

    @property
    def width(self) -> int:
        return int(self.col_edges[-1])

    def cells(self, role: int) -> list[tuple[int, int, int, int]]:
        """Rectangles ``(r0, r1, c0, c1)`` of the cells with ``role``."""
        out = []
        for i, j in zip(*np.nonzero(self.roles == role)):
            out.append((int(self.row_edges[i]), int(self.row_edges[i + 1]),
                        int(self.col_edges[j]), int(self.col_edges[j + 1])))
        return out

    def area(self, role: int) -> int:
        """Pixels with ``role``."""
        return sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in self.cells(role))

    def mask(self, role: int) -> np.ndarray:
        """Full-resolution boolean mask of the pixels with ``role`` (for small scenes/tests)."""
        m = np.zeros((self.height, self.width), dtype=bool)
        for r0, r1, c0, c1 in self.cells(role):
            m[r0:r1, c0:c1] = True
        return m

    def window_inside(self, r: int, c: int, h: int, w: int, role: int = TRAIN) -> bool:
        """Whether the window lies inside the scene and entirely inside cells with ``role``."""
        if r < 0 or c < 0 or r + h > self.height or c + w > self.width:
            return False
        i0 = int(np.searchsorted(self.row_edges, r, side="right")) - 1
        i1 = int(np.searchsorted(self.row_edges, r + h, side="left"))
        j0 = int(np.searchsorted(self.col_edges, c, side="right")) - 1
        j1 = int(np.searchsorted(self.col_edges, c + w, side="left"))
        return bool(np.all(self.roles[i0:i1, j0:j1] == role))

    def anchor_windows(self, tile: int, role: int = TRAIN) -> list[tuple[int, int]]:
        """Window positions anchored at the cells' corners that lie inside ``role`` cells
        (a fallback when random positions keep missing a fragmented region)."""
        th, tw = min(tile, self.height), min(tile, self.width)
        out = set()
        for r0, r1, c0, c1 in self.cells(role):
            for r in (r0, r1 - th):
                for c in (c0, c1 - tw):
                    r, c = max(0, min(r, self.height - th)), max(0, min(c, self.width - tw))
                    if self.window_inside(r, c, th, tw, role):
                        out.add((r, c))
        return sorted(out)


def whole_scene(height: int, width: int, role: int) -> Split:
    """One cell covering the scene."""
    return Split(np.array([0, height]), np.array([0, width]), np.full((1, 1), role, np.uint8))


def row_split(height: int, width: int, val_fraction: float) -> Split:
    """The bottom ``val_fraction`` of the rows is validation."""
    cut = int(round(height * (1.0 - val_fraction)))
    cut = min(max(cut, 1), height - 1) if height > 1 else height
    return Split(np.array([0, cut, height]), np.array([0, width]), np.array([[TRAIN], [VAL]], np.uint8))


def block_split(height: int, width: int, block: int, val_fraction: float, seed: int) -> Split:
    """Square blocks of side ``block``; ``round(val_fraction * n)`` of them (at least one, and at
    least one left for training when there are two or more) become validation, chosen with ``seed``."""
    rows = np.unique(np.r_[np.arange(0, height, block), height])
    cols = np.unique(np.r_[np.arange(0, width, block), width])
    ny, nx = len(rows) - 1, len(cols) - 1
    n = ny * nx
    n_val = int(round(val_fraction * n))
    n_val = max(1, min(n_val, n - 1)) if n > 1 else 0
    rng = np.random.default_rng(seed)
    roles = np.zeros(n, np.uint8)
    roles[rng.permutation(n)[:n_val]] = VAL
    return Split(rows, cols, roles.reshape(ny, nx))
