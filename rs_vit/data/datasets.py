"""Window datasets: random training windows inside the training rows, a grid over validation rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from rs_vit.data.scenes import LabeledScene
from rs_vit.infer.grid import window_starts
from rs_vit.io.raster import normalize


def _crop(scene: LabeledScene, r: int, c: int, tile: int, rows: tuple[int, int],
          mean: np.ndarray, std: np.ndarray, ignore: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``tile × tile`` window at (r, c) clipped to ``rows``; padded with 0 / ignore."""
    r1 = min(r + tile, rows[1])
    c1 = min(c + tile, scene.image.shape[2])
    img = normalize(scene.image[:, r:r1, c:c1], mean, std, scene.invalid[r:r1, c:c1])
    lab = scene.labels[r:r1, c:c1]
    x = np.zeros((img.shape[0], tile, tile), dtype=np.float32)
    y = np.full((tile, tile), ignore, dtype=np.int64)
    x[:, : r1 - r, : c1 - c] = img
    y[: r1 - r, : c1 - c] = lab
    return x, y


class RandomWindows(Dataset):
    """``length`` random windows from the training rows of the scenes (area-weighted), with
    optional augmentation (an albumentations transform taking ``image`` HWC and ``mask``)."""

    def __init__(self, scenes: Sequence[LabeledScene], tile: int, length: int, mean: np.ndarray,
                 std: np.ndarray, ignore_index: int, seed: int = 0, augment=None,
                 max_invalid: float = 0.9) -> None:
        self.scenes = [s for s in scenes if s.train_rows[1] > s.train_rows[0]]
        self.tile, self.length, self.mean, self.std = tile, length, mean, std
        self.ignore, self.seed, self.augment, self.max_invalid = ignore_index, seed, augment, max_invalid
        areas = np.array([(s.train_rows[1] - s.train_rows[0]) * s.image.shape[2] for s in self.scenes], float)
        self.p = areas / areas.sum()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, i))
        for _ in range(20):  # skip windows that are mostly nodata / unlabelled
            s = self.scenes[rng.choice(len(self.scenes), p=self.p)]
            r0, r1 = s.train_rows
            W = s.image.shape[2]
            r = int(rng.integers(r0, max(r0, r1 - self.tile) + 1))
            c = int(rng.integers(0, max(0, W - self.tile) + 1))
            x, y = _crop(s, r, c, self.tile, s.train_rows, self.mean, self.std, self.ignore)
            if (y == self.ignore).mean() <= self.max_invalid:
                break
        if self.augment is not None:
            out = self.augment(image=np.ascontiguousarray(x.transpose(1, 2, 0)), mask=y)
            x = np.ascontiguousarray(out["image"].transpose(2, 0, 1))
            y = np.ascontiguousarray(out["mask"])
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


class GridWindows(Dataset):
    """Windows on a grid over the validation rows; ``count_mask`` marks pixels counted once."""

    def __init__(self, scenes: Sequence[LabeledScene], tile: int, mean: np.ndarray,
                 std: np.ndarray, ignore_index: int) -> None:
        self.tile, self.mean, self.std, self.ignore = tile, mean, std, ignore_index
        self.items: list[tuple[LabeledScene, int, int, np.ndarray]] = []
        for s in scenes:
            v0, v1 = s.val_rows
            if v1 <= v0:
                continue
            W = s.image.shape[2]
            counted = np.zeros((v1 - v0, W), dtype=bool)
            for r in window_starts(v1 - v0, tile, tile):
                for c in window_starts(W, tile, tile):
                    h, w = min(tile, v1 - v0 - r), min(tile, W - c)
                    m = np.zeros((tile, tile), dtype=bool)
                    m[:h, :w] = ~counted[r: r + h, c: c + w]
                    counted[r: r + h, c: c + w] = True
                    self.items.append((s, v0 + r, c, m))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, r, c, m = self.items[i]
        x, y = _crop(s, r, c, self.tile, s.val_rows, self.mean, self.std, self.ignore)
        y = np.where(m, y, self.ignore)
        return torch.from_numpy(x), torch.from_numpy(y)
