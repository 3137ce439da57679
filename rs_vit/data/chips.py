"""Export a scene and its labels as image/mask chip GeoTIFFs, each with its own georeferencing,
for users who want a chip dataset for other tools (``train`` reads such a folder too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from rs_vit.config import DataConfig, SceneDef
from rs_vit.data.scenes import load_scene
from rs_vit.errors import OutputError
from rs_vit.io.windows import window_starts


def export_chips(scene: SceneDef, data: DataConfig, out_dir: str | Path, *, tile: int = 256,
                 stride: int | None = None, max_invalid: float = 0.9, overwrite: bool = False) -> list[Path]:
    """Cut ``scene`` into ``tile × tile`` chips on a grid and write ``images/<name>_<row>_<col>.tif``
    and ``masks/<name>_<row>_<col>.tif`` (labels as uint8/int16 with ``ignore_index`` as nodata).

    Chips with more than ``max_invalid`` ignored/nodata pixels are skipped; edge chips are
    shifted inward so every chip is full-size (when the scene is at least ``tile`` wide).

    Returns:
        The written image chips.

    Raises:
        OutputError: when a chip exists and ``overwrite`` is False.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    s = load_scene(SceneDef(image=scene.image, labels=scene.labels, label_attribute=scene.label_attribute,
                            label_value=scene.label_value, split="train"), data, tile=tile)
    with rasterio.open(s.info.path) as src:
        prof = dict(src.profile)
    for key in ("blockxsize", "blockysize", "photometric", "alpha"):  # chips: plain deflate, bands only
        prof.pop(key, None)
    prof.update(driver="GTiff", count=len(s.band_indexes), compress="deflate", tiled=False)
    ign = data.ignore_index
    mdtype = "uint8" if 0 <= ign <= 255 and max(s.class_values) < 255 else "int16"
    stride = stride or tile
    written: list[Path] = []
    stem = Path(scene.image).stem
    for r in window_starts(s.height, tile, stride):
        for c in window_starts(s.width, tile, stride):
            h, w = min(tile, s.height - r), min(tile, s.width - c)
            img, lab, inv = s.read(r, c, h, w)
            if (lab == ign).mean() > max_invalid:
                continue
            name = f"{stem}_{r:06d}_{c:06d}.tif"
            ip, mp = out / "images" / name, out / "masks" / name
            if not overwrite and (ip.exists() or mp.exists()):
                raise OutputError(f"Chip {ip} already exists; pass --overwrite or choose another --out-dir.")
            t = window_transform(Window(c, r, w, h), s.info.transform)
            with rasterio.open(ip, "w", **{**prof, "width": w, "height": h, "transform": t}) as dst:
                dst.write(img)
                if s.info.mask_kind is not None and inv.any():  # the scene's GDAL mask goes along
                    dst.write_mask(np.where(inv, 0, 255).astype(np.uint8))
                for i, b in enumerate(s.info.band_names, 1):
                    dst.set_band_description(i, b)
            mprof = {**prof, "count": 1, "dtype": mdtype, "nodata": ign, "width": w, "height": h, "transform": t}
            with rasterio.open(mp, "w", **mprof) as dst:
                dst.write(lab.astype(np.dtype(mdtype)), 1)
            written.append(ip)
    return written
