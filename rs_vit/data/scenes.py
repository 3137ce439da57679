"""Training scenes: an image, its labels on the same grid and a spatial train/val split.

Small scenes (below ``data.cache_mb``) are read once and held in memory; larger ones are read
window by window with rasterio (vector labels are rasterised per window), so a scene larger than
memory can be trained on. Either way :meth:`LabeledScene.read` returns the same arrays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from rs_vit.config import DataConfig, SceneDef
from rs_vit.data.split import TRAIN, VAL, Split, block_split, row_split, whole_scene
from rs_vit.errors import ConfigError, InputError
from rs_vit.io.bands import match_bands
from rs_vit.io.labels import (
    check_raster_label_options,
    class_codes,
    is_vector,
    load_vector_labels,
    rasterize_labels,
    read_label_raster,
    remap_hint,
    summarize_values,
)
from rs_vit.io.raster import SceneInfo, invalid_mask, masked_pixels, open_raster, scene_info
from rs_vit.io.sources import resolve_scene


@dataclass
class LabeledScene:
    """A scene's selected bands, its labels and its split.

    ``image``/``labels``/``invalid`` are held in memory for cached scenes and are None for
    scenes read window by window.
    """

    info: SceneInfo
    band_indexes: list[int]  # 0-based indexes of the selected bands in the file
    split: Split
    labels_path: Path
    class_values: list[int]
    ignore_index: int
    ignore_values: list[int] = field(default_factory=list)
    gdf: Any = None  # vector labels in the scene CRS (GeoDataFrame) or None for a label raster
    attribute: str | None = None
    background: int | None = None
    codes: dict[int, int] | None = None  # class codes in the label files -> ids (classes' 'value')
    image: np.ndarray | None = None  # (C, H, W) raw dtype
    labels: np.ndarray | None = None  # (H, W) int64, ignore_index where unusable
    invalid: np.ndarray | None = None  # (H, W) bool image nodata
    _handles: dict[tuple[int, str], Any] = field(default_factory=dict, repr=False)

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def cached(self) -> bool:
        return self.image is not None

    def _src(self, path: Path) -> Any:
        key = (os.getpid(), str(path))  # one handle per process (DataLoader workers fork)
        if key not in self._handles:
            self._handles[key] = open_raster(path)
        return self._handles[key]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def read(self, r: int, c: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(image (C,h,w) raw, labels (h,w) int64, invalid (h,w) bool)`` of a window inside the scene."""
        if self.image is not None:
            assert self.labels is not None and self.invalid is not None
            return (self.image[:, r:r + h, c:c + w], self.labels[r:r + h, c:c + w],
                    self.invalid[r:r + h, c:c + w])
        win = Window(c, r, w, h)
        src = self._src(self.info.path)
        img = src.read([i + 1 for i in self.band_indexes], window=win)
        lab = self._read_labels(win)
        inv = invalid_mask(img, self.info.nodata,
                           masked_pixels(src, win, self.band_indexes, kind=self.info.mask_kind))
        lab[inv] = self.ignore_index
        return img, lab, inv

    def _read_labels(self, win: Window | None) -> np.ndarray:
        if self.gdf is not None:
            assert self.attribute is not None
            return rasterize_labels(self.gdf, self.info, self.attribute, class_values=self.class_values,
                                    background=self.background, ignore_index=self.ignore_index,
                                    window=win, source=self.labels_path.name, codes=self.codes)
        lab = read_label_raster(self.labels_path, self.info, window=win, ignore_index=self.ignore_index,
                                ignore_values=self.ignore_values, codes=self.codes)
        check_label_values(lab, self.class_values, self.ignore_index, self.labels_path)
        return lab

    def label_overview(self, max_pixels: int = 4_000_000) -> tuple[np.ndarray, int]:
        """Labels decimated by an integer factor so they hold at most ``max_pixels``: ``(labels, factor)``."""
        f = max(1, int(np.ceil(np.sqrt(self.height * self.width / max_pixels))))
        if self.labels is not None:
            return self.labels[::f, ::f], f
        out = np.empty(((self.height + f - 1) // f, (self.width + f - 1) // f), np.int64)
        step = 1024 // f * f or f
        for r in range(0, self.height, step):  # strips of rows: bounded memory
            h = min(step, self.height - r)
            out[r // f:(r + h + f - 1) // f] = self.read(r, 0, h, self.width)[1][::f, ::f]
        return out, f


def check_label_values(labels: np.ndarray, class_values: Sequence[int], ignore: int, path: Path) -> None:
    """Refuse label values that are neither declared classes nor ignored."""
    bad = np.setdiff1d(np.unique(labels), [*class_values, ignore])
    if bad.size:
        raise InputError(
            f"{Path(path).name}: holds label value(s) {summarize_values(bad)} that are not declared "
            f"classes {summarize_values(list(class_values))} nor ignored ({ignore}); {remap_hint(bad.tolist())}"
        )


def make_split(sd: SceneDef, data: DataConfig, height: int, width: int, tile: int, seed: int) -> Split:
    """The split of one scene: whole scene for ``split: train|val``, else rows or blocks."""
    if sd.split == "train":
        return whole_scene(height, width, TRAIN)
    if sd.split == "val":
        return whole_scene(height, width, VAL)
    if data.split_mode == "blocks":
        return block_split(height, width, data.block_size or 4 * tile, data.val_fraction, seed)
    return row_split(height, width, data.val_fraction)


def load_scene(sd: SceneDef, data: DataConfig, band_names: list[str] | None = None, *,
               tile: int = 256, seed: int = 0) -> LabeledScene:
    """Open a scene and its labels; band order follows ``band_names`` (matched by name).

    Raises:
        InputError: unreadable files, labels off the scene grid, undeclared class values,
            vector labels without CRS or not overlapping the scene.
    """
    image = resolve_scene(sd.image, resolution=data.resolution, resampling=data.resampling,  # band files, URLs…
                          band_pattern=data.band_pattern, sensor=data.sensor, gdal_config=data.gdal_config or None)
    # the bands of a stacked product are named already: a sensor preset does not rename them
    info = scene_info(image.path, bands=data.bands, sensor=data.sensor if image.band_names is None else None)
    indexes = (
        match_bands(info.band_names, band_names, scene_label=f"Scene {info.path.name}")
        if band_names else info.input_indexes
    )
    if sd.labels is None:
        raise ConfigError(f"Scene {sd.image}: has no labels; add 'labels:' to train on it.")
    sel = SceneInfo(**{**info.__dict__, "band_names": [info.band_names[i] for i in indexes]})
    class_values = [c.id for c in data.classes]
    split = make_split(sd, data, info.height, info.width, tile, seed + _stable_hash(str(sd.image)))
    scene = LabeledScene(sel, indexes, split, Path(sd.labels), class_values, data.ignore_index,
                         list(data.ignore_values), codes=class_codes(data.classes))
    if is_vector(sd.labels):
        if sd.label_value is not None:
            if sd.label_value not in class_values:
                raise InputError(f"{Path(sd.labels).name}: label_value {sd.label_value} is not a declared "
                                 f"class {class_values}; declare it or change label_value.")
            scene.gdf = load_vector_labels(sd.labels, sel, None)
            to_code = {i: c for c, i in (scene.codes or {}).items()}  # burnt through the codes too
            scene.gdf["_rs_vit_class"] = to_code.get(sd.label_value, sd.label_value)
            scene.attribute = "_rs_vit_class"
        else:
            scene.gdf = load_vector_labels(sd.labels, sel, sd.label_attribute)
            scene.attribute = sd.label_attribute
        scene.background = data.background
    else:
        check_raster_label_options(sd.labels, label_value=sd.label_value, background=data.background,
                                   any_vector=any(s.labels is not None and is_vector(s.labels) for s in data.scenes))
    itemsize = np.dtype(info.dtype).itemsize
    if len(indexes) * info.height * info.width * itemsize / 2**20 <= data.cache_mb:
        with open_raster(info.path) as src:
            scene.image = src.read([i + 1 for i in indexes])
            masked = masked_pixels(src, None, indexes, kind=info.mask_kind)
        scene.labels = scene._read_labels(None)
        scene.invalid = invalid_mask(scene.image, info.nodata, masked)
        scene.labels[scene.invalid] = data.ignore_index
    return scene


def _stable_hash(text: str) -> int:
    """A small hash that does not change between processes (unlike ``hash``)."""
    import zlib

    return zlib.crc32(text.encode()) % 100_003
