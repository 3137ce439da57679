"""Opening scenes, naming their bands, reading windows and nodata masks."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from rs_vit.errors import InputError
from rs_vit.io.bands import resolve_band_names
from rs_vit.io.sources import local_raster, needs_resolving


@dataclass
class SceneInfo:
    """What rs-vit needs to know about a scene, read once from its header."""

    path: Path
    width: int
    height: int
    count: int
    dtype: str
    crs: rasterio.crs.CRS | None
    transform: rasterio.Affine
    nodata: float | None
    band_names: list[str]
    profile: dict = field(repr=False, default_factory=dict)
    #: GDAL mask beside the pixel values: ``"alpha"`` (an alpha band), ``"per_dataset"`` (an
    #: internal mask or a ``.msk`` sidecar, e.g. JPEG-compressed files), ``"per_band"``, or None.
    mask_kind: str | None = None
    #: 0-based indexes of alpha bands (a mask, not a model input unless named with ``--bands``).
    alpha_bands: list[int] = field(default_factory=list)

    @property
    def input_indexes(self) -> list[int]:
        """0-based indexes of the bands a model takes by default: every band but alpha bands
        (an alpha band named in ``--bands`` is an input: its name is then not ``alpha``)."""
        return [i for i, n in enumerate(self.band_names) if not (i in self.alpha_bands and n == "alpha")]


def open_raster(path: str | Path) -> rasterio.DatasetReader:
    """Open a raster for reading, turning GDAL's errors into a one-line :class:`InputError`.

    Raises:
        InputError: the path does not exist, is a folder, is not a raster GDAL can read (or is
            corrupt or truncated), or holds no pixels or no bands.
    """
    if needs_resolving(path):  # band files, a SAFE folder, a STAC item or a URL: their VRT
        path = local_raster(path)
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file; check the path.")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a raster; give the path of a GeoTIFF.")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: is an empty file (0 bytes); re-export or re-download it.")
    try:
        with warnings.catch_warnings():  # georeferencing is checked, with our own message, by
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # check_georeferenced
            src = rasterio.open(p)
    except (RasterioError, CPLE_BaseError) as exc:
        raise InputError(
            f"{p}: cannot be read as a raster ({_first_line(exc)}); give a valid GeoTIFF or "
            "another GDAL raster (a corrupt or truncated file must be re-exported or re-downloaded)."
        ) from None
    if src.count < 1 or src.width < 1 or src.height < 1:
        shape = f"{src.count} band(s) of {src.width}x{src.height} pixels"
        src.close()
        raise InputError(f"{p}: holds no pixels ({shape}); give a raster with data.")
    return src


def crs_label(crs: object, limit: int = 60) -> str:
    """A short name for a CRS in messages: ``EPSG:32633``, else its name (e.g. "WGS 84 / Albers
    custom"), never the 600-character WKT; ``no CRS`` for None."""
    if crs is None:
        return "no CRS"
    try:
        epsg = crs.to_epsg()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a CRS pyproj cannot identify
        epsg = None
    if epsg:
        return f"EPSG:{epsg}"
    name = None
    try:
        import pyproj

        wkt = crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs)  # type: ignore[attr-defined]
        name = pyproj.CRS.from_user_input(wkt).name
    except Exception:  # noqa: BLE001 - fall back on the text form
        name = None
    text = name if name and name != "unknown" else str(crs)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_georeferenced(src: rasterio.DatasetReader, *, require_crs: bool = True) -> None:
    """Refuse rasters without a CRS, or with rotated / non-north-up transforms."""
    name = Path(src.name).name
    if src.crs is None and src.transform.is_identity and src.rpcs is not None:
        raise InputError(
            f"{name}: is georeferenced by RPCs (rational polynomial coefficients) only; orthorectify "
            "it onto a north-up grid first (gdalwarp -rpc -t_srs EPSG:XXXX in.tif out.tif, with a "
            "DEM for accuracy: -to RPC_DEM=dem.tif)."
        )
    if src.crs is None and src.transform.is_identity and src.gcps[0]:
        raise InputError(
            f"{name}: is georeferenced by ground control points only; warp it onto a north-up grid "
            "first (gdalwarp in.tif out.tif)."
        )
    if require_crs and src.crs is None:
        raise InputError(
            f"{name}: has no CRS, so outputs could not be georeferenced; "
            "assign one first (e.g. gdal_edit.py -a_srs EPSG:XXXX)."
        )
    t = src.transform
    if src.crs is None and t.is_identity:
        return  # a plain pixel grid without georeferencing (allowed where no CRS is needed)
    if not all(math.isfinite(v) for v in tuple(t)[:6]) or t.a == 0 or t.e == 0:
        raise InputError(
            f"{name}: has an invalid geotransform {tuple(t)[:6]}; fix its georeferencing "
            "(e.g. gdal_edit.py -a_ullr or gdalwarp)."
        )
    if t.b != 0 or t.d != 0:
        raise InputError(
            f"{name}: has a rotated geotransform; warp it north-up first "
            "(e.g. gdalwarp -t_srs <its CRS> in.tif out.tif)."
        )
    if t.e > 0:
        raise InputError(
            f"{name}: is stored south-up (positive pixel height); warp it north-up first "
            "(gdalwarp in.tif out.tif)."
        )


def scene_info(
    path: str | Path,
    *,
    bands: Sequence[str] | None = None,
    sensor: str | None = None,
    require_crs: bool = True,
) -> SceneInfo:
    """Read a scene's header: size, CRS, nodata, GDAL mask and canonical band names.

    An alpha band is named ``alpha`` and is not among :attr:`SceneInfo.input_indexes`, unless
    ``bands`` names every band of the file (alpha included): then the user asked for it as an
    input. Either way its zeros mark invalid pixels.
    """
    path = local_raster(path)  # band files, a SAFE folder, a STAC item or a URL: their VRT
    with open_raster(path) as src:
        check_georeferenced(src, require_crs=require_crs)
        check_dtype(src)
        alpha = alpha_bands(src)
        descriptions = list(src.descriptions)
        if alpha and not (bands and len(bands) == src.count):
            keep = [i for i in range(src.count) if i not in alpha]
            sub = iter(resolve_band_names([descriptions[i] for i in keep], override=bands, sensor=sensor,
                                          source=f"{Path(path).name} (without its alpha band)"))
            names = ["alpha" if i in alpha else next(sub) for i in range(src.count)]
        else:
            names = resolve_band_names(descriptions, override=bands, sensor=sensor, source=Path(path).name)
        return SceneInfo(
            path=Path(path),
            width=src.width,
            height=src.height,
            count=src.count,
            dtype=src.dtypes[0],
            crs=src.crs,
            transform=src.transform,
            nodata=src.nodata,
            band_names=names,
            profile=dict(src.profile),
            mask_kind=gdal_mask_kind(src),
            alpha_bands=alpha,
        )


def alpha_bands(src: rasterio.DatasetReader) -> list[int]:
    """0-based indexes of the bands whose colour interpretation is alpha."""
    return [i for i, ci in enumerate(src.colorinterp) if ci == ColorInterp.alpha]


def gdal_mask_kind(src: rasterio.DatasetReader) -> str | None:
    """The kind of GDAL mask a raster carries beyond a nodata value (see :attr:`SceneInfo.mask_kind`).

    Declared nodata is not counted here: rs-vit applies it itself (a pixel is nodata when every
    band holds the value), as GDAL's nodata masks would flag a pixel where any one band does.
    """
    flags = src.mask_flag_enums
    if any(MaskFlags.alpha in f for f in flags):
        return "alpha"
    if any(MaskFlags.per_dataset in f for f in flags):
        return "per_dataset"
    if any(not f for f in flags):  # no flag at all: a mask band of its own per band
        return "per_band"
    return None


def masked_pixels(
    src: rasterio.DatasetReader,
    window: Window | None = None,
    indexes: Sequence[int] | None = None,
    *,
    kind: str | None = None,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray | None:
    """Pixels a GDAL mask (alpha band, internal or ``.msk`` mask) marks invalid, ``(h, w)`` bool,
    or None when the raster has no such mask.

    Args:
        src: an open raster.
        window: the window to read (default: the whole raster).
        indexes: 0-based bands whose masks count (per-band masks: a pixel is invalid when any of
            them masks it); default: all bands.
        kind: :func:`gdal_mask_kind` of ``src`` when already known.
        out_shape: read decimated to ``(h, w)`` (nearest neighbour), as ``src.read(out_shape=...)``.
    """
    kind = gdal_mask_kind(src) if kind is None else kind
    if kind is None:
        return None
    if kind == "per_band":
        idx = [i + 1 for i in (indexes if indexes is not None else range(src.count))]
        shape = (len(idx), *out_shape) if out_shape else None
        return np.any(src.read_masks(idx, window=window, out_shape=shape) == 0, axis=0)
    return src.dataset_mask(window=window, out_shape=out_shape) == 0


#: Pixel types a model can take (converted to float32 after reading).
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                    "float16", "float32", "float64")


def check_dtype(src: rasterio.DatasetReader) -> None:
    """Refuse pixel types rs-vit cannot feed to a model (complex numbers, mixed types).

    Wide integers (uint32, int64, ...) and float64 are accepted: windows are converted to float32
    before any arithmetic (normalisation never runs in the integer type, so nothing wraps
    around), and values beyond float32's range become non-finite and are fed as the band mean.
    """
    name = Path(src.name).name
    if len(set(src.dtypes)) > 1:
        raise InputError(
            f"{name}: its bands have different pixel types ({', '.join(sorted(set(src.dtypes)))}); "
            "convert it to one type first (e.g. gdal_translate -ot Float32)."
        )
    dtype = src.dtypes[0]
    if dtype.startswith("complex") or dtype.startswith("c"):
        raise InputError(
            f"{name}: has complex pixels ({dtype}); convert them to amplitude, intensity or dB "
            "first (e.g. gdal_translate -ot Float32 with a pixel function)."
        )
    if dtype not in SUPPORTED_DTYPES:
        raise InputError(f"{name}: pixel type {dtype} is not supported; convert it to float32 "
                         "(gdal_translate -ot Float32).")


def invalid_mask(arr: np.ndarray, nodata: float | None, masked: np.ndarray | None = None) -> np.ndarray:
    """Pixels that cannot be used, for a ``(bands, H, W)`` array.

    A pixel is invalid when *every* band equals ``nodata``, when any band is NaN/±inf (a model
    cannot take non-finite input), or where ``masked`` (a GDAL mask, :func:`masked_pixels`) is True.
    """
    invalid = np.zeros(arr.shape[1:], dtype=bool) if masked is None else masked.copy()
    if nodata is not None and not np.isnan(nodata):
        invalid |= np.all(arr == nodata, axis=0)
    if np.issubdtype(arr.dtype, np.floating):
        invalid |= ~np.all(np.isfinite(arr), axis=0)
    return invalid


def read_window(
    src: rasterio.DatasetReader,
    window: Window,
    indexes: Sequence[int],
    *,
    boundless: bool = False,
) -> np.ndarray:
    """Read bands ``indexes`` (0-based) of a window as ``(len(indexes), h, w)``."""
    idx = [i + 1 for i in indexes]
    if boundless:
        fill = src.nodata if src.nodata is not None else 0
        return src.read(idx, window=window, boundless=True, fill_value=fill)
    return src.read(idx, window=window)


def normalize(
    arr: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    invalid: np.ndarray | None = None,
) -> np.ndarray:
    """``(arr - mean) / std`` per band as float32; invalid pixels become 0 (the mean)."""
    out = arr.astype(np.float32, copy=True)
    out -= mean.astype(np.float32)[:, None, None]
    out /= std.astype(np.float32)[:, None, None]
    if invalid is not None and invalid.any():
        out[:, invalid] = 0.0
    if not np.all(np.isfinite(out)):
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out
