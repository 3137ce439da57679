"""Training scenes in memory: image, labels on the same grid, and a spatial train/val split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rs_vit.config import DataConfig, SceneDef
from rs_vit.errors import ConfigError, InputError
from rs_vit.io.bands import match_bands
from rs_vit.io.labels import is_vector, load_vector_labels, rasterize_labels, read_label_raster
from rs_vit.io.raster import SceneInfo, invalid_mask, open_raster, scene_info


@dataclass
class LabeledScene:
    """A scene's selected bands and labels; ``train_rows``/``val_rows`` are the split."""

    info: SceneInfo
    image: np.ndarray  # (C, H, W) raw dtype
    labels: np.ndarray  # (H, W) int64, ignore_index where unusable
    invalid: np.ndarray  # (H, W) bool image nodata
    train_rows: tuple[int, int]
    val_rows: tuple[int, int]


def load_scene(sd: SceneDef, data: DataConfig, band_names: list[str] | None = None) -> LabeledScene:
    """Read a scene and its labels; band order follows ``band_names`` (matched by name)."""
    info = scene_info(sd.image, bands=data.bands, sensor=data.sensor)
    indexes = (
        match_bands(info.band_names, band_names, scene_label=f"Scene {info.path.name}")
        if band_names else list(range(info.count))
    )
    if sd.labels is None:
        raise ConfigError(f"Scene {sd.image}: has no labels; add 'labels:' to train on it.")
    with open_raster(info.path) as src:
        image = src.read([i + 1 for i in indexes])
    sel = SceneInfo(**{**info.__dict__, "band_names": [info.band_names[i] for i in indexes]})
    ignore = data.ignore_index
    class_values = [c.id for c in data.classes]
    if is_vector(sd.labels):
        gdf = load_vector_labels(sd.labels, sel, sd.label_attribute)
        labels = rasterize_labels(gdf, sel, sd.label_attribute, class_values=class_values,
                                  background=data.background, ignore_index=ignore,
                                  source=Path(sd.labels).name)
    else:
        labels = read_label_raster(sd.labels, sel, ignore_index=ignore, ignore_values=data.ignore_values)
        bad = np.setdiff1d(np.unique(labels), [*class_values, ignore])
        if bad.size:
            raise InputError(
                f"{Path(sd.labels).name}: holds label value(s) {bad.tolist()[:10]} that are not declared "
                f"classes {class_values} nor ignored ({ignore}); declare them or add them to "
                "data.ignore_values."
            )
    invalid = invalid_mask(image, info.nodata)
    labels[invalid] = ignore
    H = info.height
    if sd.split == "train":
        tr, va = (0, H), (H, H)
    elif sd.split == "val":
        tr, va = (0, 0), (0, H)
    else:  # the bottom val_fraction of rows is held out: a spatial block split, no pixel leaks
        cut = int(round(H * (1.0 - data.val_fraction)))
        tr, va = (0, cut), (cut, H)
    return LabeledScene(sel, image, labels, invalid, tr, va)
