"""Window datasets: random training windows entirely inside the train cells of the scenes
(optionally class-balanced), and a grid of windows over the validation cells.

Each training item is drawn from its own seeded generator ``(seed, epoch, index)``, so an epoch
is the same set of windows whatever the number of workers or ranks, and a resumed run sees
exactly the windows an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from rs_vit.data.augment import Augment
from rs_vit.data.scenes import LabeledScene
from rs_vit.data.split import TRAIN, VAL
from rs_vit.errors import ConfigError
from rs_vit.io.windows import overlap_pixels, window_starts
from rs_vit.io.raster import normalize


def read_window(scene: LabeledScene, r: int, c: int, tile: int, mean: np.ndarray, std: np.ndarray,
                ignore: int) -> tuple[np.ndarray, np.ndarray]:
    """A normalised ``tile × tile`` window at (r, c), clipped to the scene and padded (0 / ignore)."""
    h, w = min(tile, scene.height - r), min(tile, scene.width - c)
    raw, lab, inv = scene.read(r, c, h, w)
    x = np.zeros((raw.shape[0], tile, tile), dtype=np.float32)
    y = np.full((tile, tile), ignore, dtype=np.int64)
    x[:, :h, :w] = normalize(raw, mean, std, inv)
    y[:h, :w] = lab
    return x, y


class RandomWindows(Dataset):
    """``length`` random training windows (area-weighted over scenes) with optional augmentation.

    Args:
        scenes: the training scenes (only their train cells are sampled).
        tile: window size.
        length: windows per epoch.
        mean, std: per-band normalisation.
        ignore_index: label value excluded from the loss.
        seed: base seed.
        augment: an :class:`~rs_vit.data.augment.Augment` or None.
        max_invalid: windows with a larger share of ignored pixels are redrawn (up to 20 times).
        class_balanced: share of windows centred on a pixel of a uniformly drawn class.
    """

    def __init__(self, scenes: Sequence[LabeledScene], tile: int, length: int, mean: np.ndarray,
                 std: np.ndarray, ignore_index: int, seed: int = 0, augment: Augment | None = None,
                 max_invalid: float = 0.9, class_balanced: float = 0.0) -> None:
        self.scenes = [s for s in scenes if s.split.area(TRAIN) > 0]
        if not self.scenes:
            raise ConfigError("No scene has a training area; set split: train on a scene or lower val_fraction.")
        self.tile, self.length, self.mean, self.std = tile, length, mean, std
        self.ignore, self.seed, self.augment, self.max_invalid = ignore_index, seed, augment, max_invalid
        self.class_balanced = class_balanced
        areas = np.array([s.split.area(TRAIN) for s in self.scenes], float)
        self.p = areas / areas.sum()
        self.anchors = [s.split.anchor_windows(tile, TRAIN) for s in self.scenes]
        if not any(self.anchors):
            sizes = ", ".join(f"{s.info.path.name} ({s.width}x{s.height} px)" for s in self.scenes[:5])
            more = f" and {len(self.scenes) - 5} more" if len(self.scenes) > 5 else ""
            raise ConfigError(
                f"No {tile}x{tile} training window fits inside the training area of {sizes}{more}; "
                "lower train.tile_size (--tile-size), raise data.block_size or lower data.val_fraction."
            )
        self.class_pixels: dict[int, list[tuple[int, np.ndarray]]] = {}
        if class_balanced > 0:
            self._index_classes()
        self.epoch = 0

    def _index_classes(self, per_class: int = 20_000) -> None:
        """Up to ``per_class`` train-cell pixel positions of each class per scene (from a label overview)."""
        rng = np.random.default_rng(self.seed)
        for si, s in enumerate(self.scenes):
            lab, f = s.label_overview()
            train = np.zeros(lab.shape, bool)
            for r0, r1, c0, c1 in s.split.cells(TRAIN):
                train[-(-r0 // f):-(-r1 // f), -(-c0 // f):-(-c1 // f)] = True
            for k in s.class_values:
                rr, cc = np.nonzero((lab == k) & train)
                if rr.size == 0:
                    continue
                pick = rng.choice(rr.size, size=min(per_class, rr.size), replace=False)
                self.class_pixels.setdefault(k, []).append((si, np.stack([rr[pick], cc[pick]], 1) * f))

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of windows (the dataset is re-seeded per epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def _position(self, rng: np.random.Generator) -> tuple[int, int, int]:
        t = self.tile
        if self.class_pixels and rng.random() < self.class_balanced:
            classes = sorted(self.class_pixels)
            entries = self.class_pixels[classes[int(rng.integers(len(classes)))]]
            si, pix = entries[int(rng.integers(len(entries)))]
            s = self.scenes[si]
            for _ in range(30):
                pr, pc = pix[int(rng.integers(len(pix)))]
                r = int(np.clip(pr - rng.integers(t), 0, max(0, s.height - t)))
                c = int(np.clip(pc - rng.integers(t), 0, max(0, s.width - t)))
                if s.split.window_inside(r, c, min(t, s.height), min(t, s.width), TRAIN):
                    return si, r, c
        si = int(rng.choice(len(self.scenes), p=self.p))
        s = self.scenes[si]
        th, tw = min(t, s.height), min(t, s.width)
        for _ in range(30):
            r = int(rng.integers(0, s.height - th + 1))
            c = int(rng.integers(0, s.width - tw + 1))
            if s.split.window_inside(r, c, th, tw, TRAIN):
                return si, r, c
        candidates = [(i, a) for i in range(len(self.scenes)) for a in self.anchors[i]]
        i, (r, c) = candidates[int(rng.integers(len(candidates)))]
        return i, r, c

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, i))
        for _ in range(20):  # skip windows that are mostly nodata / unlabelled
            si, r, c = self._position(rng)
            x, y = read_window(self.scenes[si], r, c, self.tile, self.mean, self.std, self.ignore)
            if (y == self.ignore).mean() <= self.max_invalid:
                break
        if self.augment:
            x, y = self.augment(x, y, seed=int(rng.integers(2**31)))
        return torch.from_numpy(x), torch.from_numpy(y)


def _owned_spans(length: int, tile: int, stride: int) -> list[tuple[int, int, int]]:
    """``(window_start, own_start, own_end)`` along one axis: windows every ``stride`` pixels (the
    last snapped to the end); each pixel is owned by exactly one window, the boundary between two
    neighbours lying in the middle of their overlap (the window whose centre is nearer)."""
    starts = window_starts(length, tile, stride)
    bounds = [0] + [(a + tile + b) // 2 for a, b in zip(starts, starts[1:])] + [length]
    return [(a, bounds[i], bounds[i + 1]) for i, a in enumerate(starts)]


class GridWindows(Dataset):
    """Windows on a grid over the validation cells; every validation pixel is counted once.

    Neighbouring windows overlap by ``overlap`` (a fraction of the tile); each pixel is scored by
    the window whose centre is nearer (a centre crop), so overlap gives every scored pixel more
    context. Windows are shifted to stay inside the scene (so the model sees real context), and
    label pixels outside the part a window owns are set to ``ignore_index``.
    """

    def __init__(self, scenes: Sequence[LabeledScene], tile: int, mean: np.ndarray,
                 std: np.ndarray, ignore_index: int, overlap: float = 0.0) -> None:
        self.tile, self.mean, self.std, self.ignore = tile, mean, std, ignore_index
        stride = tile - overlap_pixels(tile, overlap)
        self.items: list[tuple[LabeledScene, int, int, np.ndarray]] = []
        for s in scenes:
            for r0, r1, c0, c1 in s.split.cells(VAL):
                for dr, o0, o1 in _owned_spans(r1 - r0, tile, stride):
                    for dc, p0, p1 in _owned_spans(c1 - c0, tile, stride):
                        r = max(0, min(r0 + dr, s.height - tile))
                        c = max(0, min(c0 + dc, s.width - tile))
                        m = np.zeros((tile, tile), dtype=bool)
                        m[r0 + o0 - r:r0 + o1 - r, c0 + p0 - c:c0 + p1 - c] = True
                        if m.any():
                            self.items.append((s, r, c, m))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, r, c, m = self.items[i]
        x, y = read_window(s, r, c, self.tile, self.mean, self.std, self.ignore)
        y = np.where(m, y, self.ignore)
        return torch.from_numpy(x), torch.from_numpy(y)
