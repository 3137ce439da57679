"""Class masks to polygons (rasterio.features.shapes → geopandas → GeoPackage)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import shapes
from shapely.geometry import shape

from rs_vit.errors import ConfigError
from rs_vit.io.atomic import atomic_path, check_output


def mask_to_frame(
    mask: np.ndarray | rasterio.Band,
    transform: rasterio.Affine,
    crs: rasterio.crs.CRS | None,
    class_names: Sequence[str],
    *,
    nodata: int | None = None,
    min_area: float = 0.0,
    simplify: float = 0.0,
):
    """Polygons of each class's connected regions (4-connected) as a GeoDataFrame.

    Args:
        mask: ``(H, W)`` integer class mask, or a band of an open raster
            (``rasterio.band(src, 1)``), which GDAL polygonises line by line without reading
            the whole mask into memory.
        transform, crs: the mask's georeferencing; polygons are in this CRS.
        class_names: name of each class index.
        nodata: mask value to leave out.
        min_area: drop polygons smaller than this (in CRS units², e.g. m²; in m² when the CRS
            is geographic, where the ``area`` column is in m² too, measured in the local UTM zone).
        simplify: Douglas–Peucker tolerance in CRS units (topology preserved), 0 = none.

    Returns:
        A ``geopandas.GeoDataFrame`` with columns ``class_id``, ``class_name``, ``area``.
    """
    import geopandas as gpd

    if min_area < 0 or simplify < 0:
        raise ConfigError(f"--min-area and --simplify must be >= 0 (got {min_area}, {simplify}).")
    if isinstance(mask, np.ndarray):
        valid = mask != nodata if nodata is not None else None
        src = mask if mask.dtype in (np.uint8, np.uint16, np.int16, np.int32) else mask.astype(np.int32)
    else:  # a band: nodata regions come out as polygons of value `nodata` and are dropped below
        valid, src = None, mask
    ids: list[int] = []
    geoms = []
    geographic = crs is not None and gpd.GeoSeries([], crs=crs).crs.is_geographic
    for geom, value in shapes(src, mask=valid, transform=transform, connectivity=4):
        if nodata is not None and value == nodata:
            continue
        g = shape(geom)
        if min_area and not geographic and g.area < min_area:
            continue
        ids.append(int(value))
        geoms.append(g)
    names = [class_names[i] if 0 <= i < len(class_names) else str(i) for i in ids]
    gdf = gpd.GeoDataFrame(
        {"class_id": np.asarray(ids, dtype=np.int32), "class_name": names},
        geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs,
    )
    if geographic and min_area and len(gdf):
        gdf = gdf[_area(gdf, geographic) >= min_area].reset_index(drop=True)
    if simplify and len(gdf):
        gdf["geometry"] = gdf.geometry.simplify(simplify, preserve_topology=True)
    gdf["area"] = _area(gdf, geographic)
    return gdf


def _area(gdf, geographic: bool) -> np.ndarray:
    """Polygon areas in CRS units², or in m² (in the local UTM zone) for a geographic CRS, where
    degrees² mean nothing (and geopandas would warn)."""
    if not len(gdf):
        return np.zeros(0, dtype=np.float64)
    geom = gdf.geometry.to_crs(gdf.estimate_utm_crs()) if geographic else gdf.geometry
    return geom.area.to_numpy(dtype=np.float64)


def vectorize_mask(
    mask_path: str | Path,
    out: str | Path,
    class_names: Sequence[str],
    *,
    min_area: float = 0.0,
    simplify: float = 0.0,
    overwrite: bool = False,
    layer: str = "classes",
) -> int:
    """Write the polygons of a class-mask GeoTIFF to a GeoPackage (atomically).

    GDAL polygonises the file's band line by line, so polygons are never cut at block
    boundaries and the mask is never held in memory whole (only the polygons are). Returns the
    number of polygons written.
    """
    out = check_output(out, overwrite=overwrite, label="vector output")
    if out.suffix.lower() != ".gpkg":
        raise ConfigError(f"--vector {out}: give a GeoPackage file name ending in .gpkg.")
    with rasterio.open(mask_path) as src:
        nodata = int(src.nodata) if src.nodata is not None else None
        gdf = mask_to_frame(rasterio.band(src, 1), src.transform, src.crs, class_names, nodata=nodata,
                            min_area=min_area, simplify=simplify)
    with atomic_path(out) as tmp:
        gdf.to_file(tmp, driver="GPKG", layer=layer)
    return len(gdf)
