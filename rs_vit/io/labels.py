"""Labels on the scene grid: label rasters (checked to share the grid) and vector polygons
(reprojected with geopandas and rasterised with rasterio onto the scene grid)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from rs_vit.errors import InputError
from rs_vit.io.raster import SceneInfo, crs_label, masked_pixels, open_raster

VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet"}


def summarize_values(values: Sequence[int] | np.ndarray, first: int = 8) -> str:
    """``[1, 2, 3, … 120 more]``: the first few values of a long list and how many are left out
    (messages never dump thousands of class ids)."""
    vals = [int(v) for v in values]
    head = ", ".join(str(v) for v in vals[:first])
    return f"[{head}, … {len(vals) - first} more]" if len(vals) > first else f"[{head}]"


def remap_hint(codes: Sequence[int]) -> str:
    """How to declare label codes that are not class ids 0..K-1 (e.g. land-cover codes 11…95)."""
    c = int(codes[0]) if len(codes) else 11
    return (f"declare them as classes: in the classes YAML each class may name its code in the "
            f"files with 'value' (e.g. {{id: 0, name: water, value: {c}}}), or ignore them "
            "(data.ignore_values, train --ignore-values).")


def is_vector(path: str | Path) -> bool:
    """True for vector label files (by suffix)."""
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


def check_raster_label_options(labels: str | Path, *, label_value: int | None, background: int | None,
                               any_vector: bool) -> None:
    """Refuse the vector-only options for a raster label file instead of silently ignoring them.

    ``label_value`` (the class burnt for polygons without a class attribute) and ``background``
    (the class of pixels no polygon covers) describe polygons; a label raster's pixel values are
    its classes already.

    Raises:
        InputError: ``label_value`` is set for this raster, or ``background`` is set and no scene
            has vector labels.
    """
    name = Path(labels).name
    if label_value is not None:
        raise InputError(
            f"{name}: label_value {label_value} applies to vector labels (polygons without a class "
            "attribute); this is a label raster, whose pixel values are the classes: drop label_value "
            "(or give the class values through the classes' 'value' codes)."
        )
    if background is not None and not any_vector:
        raise InputError(
            f"{name}: data.background {background} applies to vector labels (pixels no polygon covers); "
            "every scene here has a label raster, whose pixel values are the classes: drop background "
            "(unlabelled raster pixels are its nodata or data.ignore_values)."
        )


def read_label_raster(
    path: str | Path,
    scene: SceneInfo,
    *,
    window: Window | None = None,
    ignore_index: int = 255,
    ignore_values: Sequence[int] = (),
    codes: Mapping[int, int] | None = None,
) -> np.ndarray:
    """Read a label raster that must share the scene's grid; nodata, pixels its GDAL mask masks
    (alpha band, internal or ``.msk`` mask) and ``ignore_values`` become ``ignore_index``.

    Args:
        codes: the classes' codes in the file → their ids (see :func:`class_codes`); other
            values than these codes and the ignored ones are refused, naming the file.

    Returns int64 ``(H, W)``."""
    with open_raster(path) as src:
        same = (
            src.width == scene.width
            and src.height == scene.height
            and src.transform.almost_equals(scene.transform)
            and (src.crs == scene.crs or src.crs is None or scene.crs is None)
        )
        if not same:
            raise InputError(
                f"{Path(path).name}: label raster grid ({src.width}x{src.height}, {crs_label(src.crs)}, "
                f"origin {src.transform.c:.3f},{src.transform.f:.3f}) differs from scene "
                f"{scene.path.name} ({scene.width}x{scene.height}, {crs_label(scene.crs)}, origin "
                f"{scene.transform.c:.3f},{scene.transform.f:.3f}); resample the labels onto the "
                "scene grid or give them as vectors."
            )
        arr = src.read(1, window=window).astype(np.int64)
        masked = masked_pixels(src, window, [0])
        if masked is not None:
            arr[masked] = ignore_index
        if src.nodata is not None and not np.isnan(src.nodata):
            arr[arr == int(src.nodata)] = ignore_index
        for v in ignore_values:
            arr[arr == v] = ignore_index
    return arr if codes is None else apply_codes(arr, codes, ignore_index, Path(path).name)


def class_codes(classes: Sequence[object]) -> dict[int, int] | None:
    """``{code in label files: class id}`` when a class declares a ``value``, else None (label
    files hold the ids themselves)."""
    if not any(getattr(c, "value", None) is not None for c in classes):
        return None
    return {int(c.value if c.value is not None else c.id): int(c.id) for c in classes}  # type: ignore[attr-defined]


def apply_codes(arr: np.ndarray, codes: Mapping[int, int], ignore_index: int, source: str) -> np.ndarray:
    """Label codes → class ids; refuses codes that are not declared (naming ``source``)."""
    found = np.unique(arr)
    bad = [int(v) for v in found if int(v) not in codes and v != ignore_index]
    if bad:
        raise InputError(
            f"{source}: holds label code(s) {summarize_values(bad)} that no class declares (codes: "
            f"{summarize_values(sorted(codes))}) nor ignored ({ignore_index}); {remap_hint(bad)}"
        )
    lut_keys = np.array(sorted(codes), dtype=np.int64)
    lut_vals = np.array([codes[k] for k in lut_keys], dtype=np.int64)
    out = np.full(arr.shape, ignore_index, dtype=np.int64)
    keep = arr != ignore_index
    out[keep] = lut_vals[np.searchsorted(lut_keys, arr[keep])]
    return out


def load_vector_labels(path: str | Path, scene: SceneInfo, attribute: str | None):
    """Read vector labels, check their CRS, reproject to the scene CRS and check they overlap.

    Args:
        path: GeoPackage, GeoJSON, Shapefile, FlatGeobuf or GeoParquet file.
        scene: the scene the labels must fall on.
        attribute: the attribute holding the class id, or None when every polygon is one class.

    Returns:
        A GeoDataFrame in the scene CRS with a valid geometry column and the class attribute.

    Raises:
        InputError: no CRS, missing attribute, or no geometry overlapping the scene.
    """
    import geopandas as gpd
    from shapely.geometry import box

    p = Path(path)
    try:
        gdf = gpd.read_file(p)
    except Exception as exc:  # pyogrio raises several types
        raise InputError(f"{p}: cannot be read as vector labels ({exc}); give a GeoPackage, "
                         "GeoJSON or Shapefile.") from None
    if attribute is not None and attribute not in gdf.columns:
        cols = [c for c in gdf.columns if c != "geometry"]
        raise InputError(
            f"{p.name}: has no attribute {attribute!r} with the class; its attributes are "
            f"{cols}. Set label_attribute to one of them."
        )
    if gdf.crs is None:
        raise InputError(
            f"{p.name}: has no CRS, so it cannot be placed on the scene; set one "
            "(e.g. ogr2ogr -a_srs EPSG:XXXX out.gpkg in.gpkg)."
        )
    gdf = gdf[[g is not None and not g.is_empty for g in gdf.geometry]].copy()
    if len(gdf) == 0:
        raise InputError(f"{p.name}: contains no geometries; check the file.")
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        gdf.loc[invalid, "geometry"] = gdf.geometry[invalid].make_valid()
    declared = gdf.crs
    raw_bounds = gdf.total_bounds
    if scene.crs is not None and declared != scene.crs:
        gdf = gdf.to_crs(scene.crs)
    left, top = scene.transform * (0, 0)
    right, bottom = scene.transform * (scene.width, scene.height)
    scene_box = box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    if not gdf.intersects(scene_box).any():
        hint = ""
        if declared.is_geographic and (abs(raw_bounds[[0, 2]]).max() > 180 or abs(raw_bounds[[1, 3]]).max() > 90):
            hint = (
                f" Its coordinates ({raw_bounds[0]:.1f}, {raw_bounds[1]:.1f}, {raw_bounds[2]:.1f}, "
                f"{raw_bounds[3]:.1f}) are not degrees although the file declares {crs_label(declared)}: "
                "the declared CRS is probably wrong (they look like projected metres)."
            )
        raise InputError(
            f"{p.name}: no label geometry overlaps scene {scene.path.name} after reprojecting "
            f"from {crs_label(declared)} to {crs_label(scene.crs)}.{hint} "
            "Fix the labels' CRS (e.g. ogr2ogr -a_srs) or pair them with the right scene."
        )
    return gdf


def rasterize_labels(
    gdf,
    scene: SceneInfo,
    attribute: str,
    *,
    class_values: Sequence[int],
    background: int | None = None,
    ignore_index: int = 255,
    window: Window | None = None,
    source: str = "labels",
    codes: Mapping[int, int] | None = None,
) -> np.ndarray:
    """Burn polygons (already in the scene CRS) onto the scene grid (or a window of it).

    Pixels covered by no polygon get ``background`` (a class id) or ``ignore_index`` when
    ``background`` is None. Later features win where polygons overlap. With ``codes``
    (:func:`class_codes`) the attribute holds the classes' codes, burnt as their ids.

    Raises:
        InputError: when the attribute holds a value not among ``class_values``.
    """
    values = gdf[attribute]
    try:
        ints = values.astype("int64")
    except (TypeError, ValueError):
        raise InputError(
            f"{source}: attribute {attribute!r} must hold integer class ids; found e.g. "
            f"{values.iloc[0]!r}."
        ) from None
    known = codes if codes is not None else {int(v): int(v) for v in class_values}
    unknown = sorted({int(v) for v in ints.unique()} - set(known))
    if unknown:
        raise InputError(
            f"{source}: attribute {attribute!r} holds class value(s) {summarize_values(unknown)} that "
            f"are not declared (declared: {summarize_values(sorted(known))}); {remap_hint(unknown)}"
        )
    if codes is not None:
        ints = ints.map(known)
    if window is None:
        window = Window(0, 0, scene.width, scene.height)
    shape = (int(window.height), int(window.width))
    fill = ignore_index if background is None else background
    return rasterize(
        zip(gdf.geometry, ints),
        out_shape=shape,
        transform=window_transform(window, scene.transform),
        fill=fill,
        dtype="int32",
        all_touched=False,
    ).astype(np.int64)
