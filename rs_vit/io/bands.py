"""Band names: canonical names, aliases and sensor presets.

Pretrained RGB weights, checkpoints and scenes meet through band *names*, never positions.
Canonical names follow the STAC ``eo:common_name`` vocabulary where it exists (``coastal``,
``blue``, ``green``, ``red``, ``rededge1``…, ``nir``, ``swir16``, ``swir22``, ``pan``), plus
``vv``/``vh`` for SAR. Unknown names are kept (lower-cased), so any band set still works.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rs_vit.errors import BandMismatchError, ConfigError, suggest

#: Native band ids → canonical names, per sensor. Order is the sensor's usual file order.
SENSOR_PRESETS: dict[str, dict[str, str]] = {
    "sentinel2_l1c": {
        "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "rededge1",
        "B6": "rededge2", "B7": "rededge3", "B8": "nir", "B8A": "nir08", "B9": "nir09",
        "B10": "cirrus", "B11": "swir16", "B12": "swir22",
    },
    "sentinel2_l2a": {
        "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "rededge1",
        "B6": "rededge2", "B7": "rededge3", "B8": "nir", "B8A": "nir08", "B9": "nir09",
        "B11": "swir16", "B12": "swir22",
    },
    "landsat89": {  # OLI/TIRS collection 2 level-2 surface reflectance + thermal
        "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "nir",
        "B6": "swir16", "B7": "swir22",
    },
    "landsat89_l1": {
        "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "nir",
        "B6": "swir16", "B7": "swir22", "B8": "pan", "B9": "cirrus", "B10": "lwir11",
        "B11": "lwir12",
    },
    "landsat7": {  # ETM+
        "B1": "blue", "B2": "green", "B3": "red", "B4": "nir", "B5": "swir16",
        "B6": "lwir", "B7": "swir22", "B8": "pan",
    },
    "naip": {"B1": "red", "B2": "green", "B3": "blue", "B4": "nir"},
    "planetscope": {"B1": "blue", "B2": "green", "B3": "red", "B4": "nir"},
    "planetscope8": {  # SuperDove
        "B1": "coastal", "B2": "blue", "B3": "green_i", "B4": "green", "B5": "yellow",
        "B6": "red", "B7": "rededge", "B8": "nir",
    },
    "worldview": {  # WorldView-2/3 8-band multispectral
        "B1": "coastal", "B2": "blue", "B3": "green", "B4": "yellow", "B5": "red",
        "B6": "rededge", "B7": "nir", "B8": "nir2",
    },
    "rgb": {"B1": "red", "B2": "green", "B3": "blue"},
    "sentinel1": {"B1": "vv", "B2": "vh"},
}

#: Common spellings → canonical names.
ALIASES: dict[str, str] = {
    "r": "red", "g": "green", "b": "blue", "n": "nir",
    "nir1": "nir", "near_infrared": "nir", "nearinfrared": "nir", "infrared": "nir",
    "swir1": "swir16", "swir_1": "swir16", "swir2": "swir22", "swir_2": "swir22",
    "red_edge": "rededge", "re": "rededge", "re1": "rededge1", "re2": "rededge2", "re3": "rededge3",
    "coastal_aerosol": "coastal", "aerosol": "coastal", "panchromatic": "pan",
    "thermal": "lwir", "tir": "lwir",
}

#: The bands ImageNet-pretrained RGB weights were trained on, in their kernel order.
RGB = ("red", "green", "blue")


def normalize_name(name: str) -> str:
    """Lower-case, strip, unify separators and apply :data:`ALIASES`."""
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    return ALIASES.get(key, key)


def _native_id(name: str) -> str:
    """``"B02"``/``"b2"``/``"band 2"`` → ``"B2"``; ``"B8A"`` stays; other names unchanged."""
    m = re.fullmatch(r"(?:b|band)[\s_]*0*(\d+)(a?)", str(name).strip().lower())
    return f"B{m.group(1)}{m.group(2).upper()}" if m else str(name)


def preset_names(sensor: str) -> list[str]:
    """Canonical band names of a sensor preset, in file order."""
    if sensor not in SENSOR_PRESETS:
        raise ConfigError(
            f"Unknown sensor preset {sensor!r}.{suggest(sensor, SENSOR_PRESETS)} "
            f"Valid presets: {', '.join(SENSOR_PRESETS)}."
        )
    return list(SENSOR_PRESETS[sensor].values())


def resolve_band_names(
    descriptions: Sequence[str | None],
    *,
    override: Sequence[str] | None = None,
    sensor: str | None = None,
    source: str = "scene",
) -> list[str]:
    """Canonical band names for a raster.

    Priority: explicit ``override`` names, then a ``sensor`` preset, then the raster's band
    descriptions (Sentinel-2 ids such as ``B8A`` are recognised and mapped), then generic
    ``band1``…``bandN``.

    Raises:
        ConfigError: when ``override`` or the preset has the wrong number of bands.
    """
    count = len(descriptions)
    if override:
        names = [normalize_name(n) for n in override]
        if len(names) != count:
            raise ConfigError(
                f"--bands lists {len(names)} names but {source} has {count} bands; "
                f"give exactly one name per band."
            )
    elif sensor:
        names = preset_names(sensor)
        if len(names) != count:
            raise ConfigError(
                f"Sensor preset {sensor!r} has {len(names)} bands but {source} has {count}; "
                "use --bands to name the bands one by one."
            )
    elif all(descriptions):
        ids = [_native_id(d) for d in descriptions]  # type: ignore[arg-type]
        preset = _detect_preset(ids) if all(_S2_ID.fullmatch(str(d).strip()) for d in descriptions) else None
        names = [SENSOR_PRESETS[preset][i] for i in ids] if preset else [
            normalize_name(d) for d in descriptions  # type: ignore[arg-type]
        ]
    else:
        names = [f"band{i + 1}" for i in range(count)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"Band names of {source} are not unique ({', '.join(dupes)}); "
            "name the bands with --bands."
        )
    return names


#: A Sentinel-2 band id as written in descriptions: ``B2``, ``B02``, ``b8a``, ``B8A`` (not "Band 2").
_S2_ID = re.compile(r"[Bb]0?(?:[1-9]|1[0-2])|[Bb]0?8[Aa]")


def _detect_preset(ids: Sequence[str]) -> str | None:
    """Recognise Sentinel-2 band-id descriptions (``B01``…``B12``, ``B8A``, with or without zero
    padding), whatever subset of them a file holds (e.g. ``B04, B03, B02, B08``).

    Descriptions made only of such ids are read as Sentinel-2 band ids; a Landsat file described
    ``B1``… must be named with ``--sensor landsat89`` (or ``--bands``).
    """
    if ids and all(i in SENSOR_PRESETS["sentinel2_l1c"] for i in ids):
        return "sentinel2_l1c"
    return None


def is_generic(names: Sequence[str]) -> bool:
    """True when names are the placeholders ``band1``… (no real band information)."""
    return all(re.fullmatch(r"band\d+", n) for n in names)


def match_bands(scene: Sequence[str], model: Sequence[str], *, scene_label: str = "scene") -> list[int]:
    """0-based indexes of the scene's bands that feed the model's bands, in the model's order.

    Bands are matched by canonical name; when either side has only generic names, the band
    counts must agree and bands are taken by position.

    Raises:
        BandMismatchError: naming both band lists when a model band is missing from the scene.
    """
    scene_n = [normalize_name(n) for n in scene]
    model_n = [normalize_name(n) for n in model]
    # an alpha band (named "alpha" by scene_info) is a mask, not an input, unless the model has one
    usable = [i for i, n in enumerate(scene_n) if n != "alpha" or "alpha" in model_n]
    if is_generic([scene_n[i] for i in usable]) or is_generic(model_n):
        if all(b in scene_n for b in model_n):  # the same placeholder names: matched by name
            return [scene_n.index(b) for b in model_n]
        if len(usable) != len(model_n):
            raise BandMismatchError(
                f"{scene_label} has {len(usable)} bands [{', '.join(scene_n[i] for i in usable)}] but "
                f"the model expects {len(model_n)} [{', '.join(model_n)}]; name the scene's bands with "
                "--bands or --sensor so they can be matched by name."
            )
        return usable
    missing = [b for b in model_n if b not in scene_n]
    if missing:
        raise BandMismatchError(
            f"{scene_label} lacks band(s) {', '.join(missing)} that the model needs. "
            f"Scene bands: [{', '.join(scene_n)}]; model bands: [{', '.join(model_n)}]. "
            "Use a scene with these bands, or name the scene's bands with --bands/--sensor."
        )
    return [scene_n.index(b) for b in model_n]
