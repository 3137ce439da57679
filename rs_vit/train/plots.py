"""PNG plots written to the run directory: the training curves and a few validation windows
(image as an RGB composite, label, prediction) so users can look rather than read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rs_vit.io.atomic import atomic_path


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Train/val loss and validation mIoU (and per-class IoU) per epoch."""
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
    a.plot(ep, [h["val_loss"] for h in history], "o-", label="val loss")
    a.set_xlabel("epoch")
    a.legend()
    a.set_title("loss")
    b.plot(ep, [h["val_miou"] or 0 for h in history], "o-", lw=2, color="k", label="mIoU")
    for k in history[0] if history else []:
        if k.startswith("iou_"):
            b.plot(ep, [h[k] if h[k] is not None else np.nan for h in history], ".--", label=k[4:])
    b.set_xlabel("epoch")
    b.set_ylim(0, 1)
    b.legend(fontsize="small")
    b.set_title("validation IoU")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return Path(path)


def rgb_composite(x: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """``(C, H, W)`` normalised image → ``(H, W, 3)`` in 0..1 (red/green/blue by name, else the first bands)."""
    names = list(bands)
    if all(b in names for b in ("red", "green", "blue")):
        idx = [names.index(b) for b in ("red", "green", "blue")]
    else:
        idx = [0, 1, 2] if len(names) >= 3 else [0, 0, 0]
    rgb = x[idx].transpose(1, 2, 0).astype(np.float32)
    lo, hi = np.percentile(rgb, 2), np.percentile(rgb, 98)
    return np.clip((rgb - lo) / max(hi - lo, 1e-6), 0, 1)


def colorize(mask: np.ndarray, colors: Sequence[tuple[int, int, int] | None], ignore_index: int) -> np.ndarray:
    """Class mask → RGB (ignored pixels black; classes without a colour get tab10's)."""
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    lut = np.zeros((max(len(colors), 1), 3), np.float32)
    for i, c in enumerate(colors):
        lut[i] = np.array(c, np.float32) / 255 if c else np.array(cmap(i % 10)[:3], np.float32)
    out = np.zeros((*mask.shape, 3), np.float32)
    ok = (mask != ignore_index) & (mask >= 0) & (mask < len(colors))
    out[ok] = lut[mask[ok]]
    return out


def plot_samples(images: Sequence[np.ndarray], labels: Sequence[np.ndarray], preds: Sequence[np.ndarray],
                 bands: Sequence[str], colors: Sequence[tuple[int, int, int] | None], ignore_index: int,
                 path: str | Path) -> Path:
    """One row per validation window: RGB composite, label, prediction."""
    plt = _plt()
    n = len(images)
    fig, axes = plt.subplots(max(n, 1), 3, figsize=(9, 3 * max(n, 1)), squeeze=False)
    for i in range(n):
        for j, (img, title) in enumerate(((rgb_composite(images[i], bands), "image"),
                                          (colorize(labels[i], colors, ignore_index), "label"),
                                          (colorize(preds[i], colors, ignore_index), "prediction"))):
            axes[i, j].imshow(img, interpolation="nearest")
            axes[i, j].set_title(title)
            axes[i, j].axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return Path(path)
