"""Band names: presets, description parsing, selection and reordering by name, refusal."""

from __future__ import annotations

import pytest

from rs_vit.errors import BandMismatchError, ConfigError
from rs_vit.io.bands import SENSOR_PRESETS, match_bands, normalize_name, preset_names, resolve_band_names


def test_presets_cover_the_sensors() -> None:
    for sensor in ("sentinel2_l1c", "sentinel2_l2a", "landsat89", "landsat7", "naip", "planetscope", "worldview"):
        names = preset_names(sensor)
        assert {"red", "green", "blue"} <= set(names), sensor
    assert preset_names("sentinel2_l1c")[:4] == ["coastal", "blue", "green", "red"]
    assert preset_names("naip")[:3] == ["red", "green", "blue"]
    assert len(SENSOR_PRESETS["sentinel2_l2a"]) == 12
    with pytest.raises(ConfigError, match="Did you mean 'naip'"):
        preset_names("naipp")


def test_sentinel2_descriptions_are_recognised() -> None:
    ids = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
    assert resolve_band_names(ids) == preset_names("sentinel2_l1c")
    assert resolve_band_names([None, None]) == ["band1", "band2"]
    assert resolve_band_names(["R", "G", "B", "NIR"]) == ["red", "green", "blue", "nir"]
    assert normalize_name("SWIR 1") == "swir16"
    with pytest.raises(ConfigError, match="3 names but scene has 2"):
        resolve_band_names([None, None], override=["red", "green", "blue"])


def test_superset_scene_is_selected_and_reordered_by_name() -> None:
    scene = preset_names("sentinel2_l1c")
    model = ["blue", "green", "red", "nir", "swir16", "swir22"]
    assert match_bands(scene, model) == [1, 2, 3, 7, 11, 12]
    assert match_bands(["nir", "red", "green", "blue"], ["red", "green", "blue"]) == [1, 2, 3]


def test_missing_band_lists_both_sets() -> None:
    with pytest.raises(BandMismatchError) as err:
        match_bands(["red", "green", "blue", "nir"], ["blue", "green", "red", "swir16"], scene_label="Scene x.tif")
    msg = str(err.value)
    assert "swir16" in msg and "Scene bands: [red, green, blue, nir]" in msg and "model bands: [blue" in msg


def test_generic_names_need_equal_counts() -> None:
    assert match_bands(["band1", "band2"], ["red", "nir"]) == [0, 1]
    with pytest.raises(BandMismatchError, match="--bands"):
        match_bands(["band1", "band2", "band3"], ["red", "nir"])
