"""Fixtures for the prediction tests: tiny GeoTIFF scenes, tiny models and their specs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin
from torch import nn

from rs_vit.models.checkpoint import ModelSpec

BANDS = ["blue", "green", "red", "nir"]
CRS = "EPSG:32633"
TRANSFORM = from_origin(500000.0, 4000000.0, 10.0, 10.0)


def make_scene(
    path: Path, height: int, width: int, *, bands: Sequence[str] = BANDS, nodata: int | None = 0,
    seed: int = 0, nodata_box: tuple[int, int, int, int] | None = None, dtype: str = "uint16",
    block: int | None = None,
) -> Path:
    """A smooth random uint16 scene with named bands; ``nodata_box`` (r0, r1, c0, c1) is set
    to ``nodata`` in every band; ``block`` writes a tiled GeoTIFF with square blocks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    data = np.stack([
        1000 + 400 * np.sin(xx / (7 + 3 * b)) + 300 * np.cos(yy / (5 + 2 * b)) + rng.normal(0, 50, (height, width))
        for b in range(len(bands))
    ]).clip(1, 60000).astype(dtype)
    if nodata_box is not None:
        r0, r1, c0, c1 = nodata_box
        data[:, r0:r1, c0:c1] = nodata
    profile = {"driver": "GTiff", "width": width, "height": height, "count": len(bands), "dtype": dtype,
               "crs": CRS, "transform": TRANSFORM, "nodata": nodata}
    if block:
        profile.update(tiled=True, blockxsize=block, blockysize=block, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, b in enumerate(bands, start=1):
            dst.set_band_description(i, b)
    return path


def make_spec(num_classes: int = 3, *, bands: Sequence[str] = BANDS, tile: int = 32,
              name: str = "test_pointwise") -> ModelSpec:
    """A spec for a model outside the registry (tile multiple 8)."""
    classes = [{"name": f"c{i}", "color": [i * 40 % 256, 100, 200]} for i in range(num_classes)]
    return ModelSpec(name=name, in_channels=len(bands), num_classes=num_classes, bands=list(bands),
                     mean=[1000.0] * len(bands), std=[500.0] * len(bands), classes=classes,
                     tile_size=tile, extra={"tile_multiple": 8})


class Pointwise(nn.Module):
    """A 1×1 convolution: no spatial context, so tiled and whole-image outputs are identical."""

    def __init__(self, in_ch: int, k: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(in_ch, k, 1)
        with torch.no_grad():
            self.conv.weight.mul_(3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Constant(nn.Module):
    """Ignores its input: the same logits everywhere."""

    def __init__(self, logits: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(list(logits), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        return self.logits.view(1, -1, 1, 1).expand(b, -1, h, w).to(x.dtype) + 0 * x[:, :1]


class Context(nn.Module):
    """A small convolution stack with a wide receptive field (context-sensitive, like real models)."""

    def __init__(self, in_ch: int, k: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(in_ch, 8, 5, padding=2), nn.ReLU(),
                                 nn.Conv2d(8, 8, 5, padding=4, dilation=2), nn.ReLU(), nn.Conv2d(8, k, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
