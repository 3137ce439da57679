"""Data pipeline: spatial splits, window sampling, cached vs windowed reading, augmentation, statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from _helpers_train import BANDS, CLASSES, tiny_config, write_scene
from rs_vit.config import DataConfig, SceneDef, parse_config
from rs_vit.data.augment import Augment
from rs_vit.data.datasets import GridWindows, RandomWindows
from rs_vit.data.scenes import load_scene
from rs_vit.data.split import TRAIN, VAL, block_split, row_split
from rs_vit.data.stats import file_stats, training_stats
from rs_vit.errors import ConfigError, InputError


@pytest.fixture()
def scene_paths(tmp_path: Path) -> dict[str, Path]:
    return write_scene(tmp_path / "d", h=96, w=128)


def _data(paths: dict[str, Path], **kw: object) -> DataConfig:
    return DataConfig(scenes=[SceneDef(image=paths["image"], labels=paths["labels"])], classes=CLASSES, **kw)


def test_block_split_is_disjoint_and_seeded() -> None:
    s = block_split(100, 130, 32, 0.25, seed=3)
    tr, va = s.mask(TRAIN), s.mask(VAL)
    assert not (tr & va).any() and (tr | va).all()
    assert 0 < va.mean() < 0.5
    assert (block_split(100, 130, 32, 0.25, seed=3).roles == s.roles).all()
    assert not all((block_split(100, 130, 32, 0.25, seed=k).roles == s.roles).all() for k in range(4, 9))
    r = row_split(100, 10, 0.2)
    assert r.mask(VAL)[80:].all() and not r.mask(VAL)[:80].any()


@pytest.mark.parametrize("mode", ["rows", "blocks"])
def test_training_windows_never_touch_validation(scene_paths: dict[str, Path], mode: str) -> None:
    data = _data(scene_paths, split_mode=mode, block_size=32, val_fraction=0.3, class_balanced=0.5)
    s = load_scene(data.scenes[0], data, tile=32, seed=1)
    val = s.split.mask(VAL)
    ds = RandomWindows([s], 32, 200, np.zeros(6), np.ones(6), 255, seed=0, class_balanced=0.5)
    rng = np.random.default_rng(0)
    for _ in range(300):
        si, r, c = ds._position(rng)
        assert not val[r:r + 32, c:c + 32].any()
    # the validation grid counts every validation pixel exactly once
    grid = GridWindows([s], 32, np.zeros(6), np.ones(6), 255)
    count = np.zeros(val.shape, int)
    for _, r, c, m in grid.items:
        h, w = min(32, s.height - r), min(32, s.width - c)
        count[r:r + h, c:c + w] += m[:h, :w]
    assert (count == val).all()


@pytest.mark.parametrize("overlap", [0.25, 0.5])
def test_overlapping_validation_grid_still_counts_each_pixel_once(scene_paths: dict[str, Path],
                                                                   overlap: float) -> None:
    data = _data(scene_paths, split_mode="blocks", block_size=32, val_fraction=0.3)
    s = load_scene(data.scenes[0], data, tile=32, seed=1)
    val = s.split.mask(VAL)
    plain = GridWindows([s], 16, np.zeros(6), np.ones(6), 255)
    grid = GridWindows([s], 16, np.zeros(6), np.ones(6), 255, overlap=overlap)
    assert len(grid) > len(plain)
    count = np.zeros(val.shape, int)
    for _, r, c, m in grid.items:
        h, w = min(16, s.height - r), min(16, s.width - c)
        count[r:r + h, c:c + w] += m[:h, :w]
    assert (count == val).all()


def test_class_balanced_sampling_sees_rare_classes_more(tmp_path: Path) -> None:
    p = write_scene(tmp_path, h=128, w=128)
    import rasterio

    with rasterio.open(p["labels"], "r+") as dst:  # make 'building' rare: one 6x6 patch
        lab = dst.read(1)
        lab[lab == 2] = 0
        lab[60:66, 60:66] = 2
        dst.write(lab, 1)
    data = _data(p, val_fraction=0.1)
    s = load_scene(data.scenes[0], data, tile=32)

    def share(cb: float) -> float:
        ds = RandomWindows([s], 32, 64, np.zeros(6), np.ones(6), 255, seed=0, class_balanced=cb, max_invalid=1.0)
        return float(np.mean([(ds[i][1] == 2).any() for i in range(64)]))

    assert share(1.0) > share(0.0) + 0.2


def test_windowed_reading_matches_cached(scene_paths: dict[str, Path]) -> None:
    cached = load_scene(_data(scene_paths).scenes[0], _data(scene_paths), tile=32)
    lazy_data = _data(scene_paths, cache_mb=0.0)
    lazy = load_scene(lazy_data.scenes[0], lazy_data, tile=32)
    assert cached.cached and not lazy.cached
    for a, b in zip(cached.read(5, 7, 32, 40), lazy.read(5, 7, 32, 40)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cached.label_overview()[0], lazy.label_overview()[0])
    m1, s1 = training_stats([cached])
    m2, s2 = training_stats([lazy])
    np.testing.assert_allclose(m1, m2, rtol=1e-6)


def test_stats_ignore_nodata_and_validation(tmp_path: Path) -> None:
    p = write_scene(tmp_path, nodata_corner=True)
    data = _data(p, val_fraction=0.5)
    s = load_scene(data.scenes[0], data, tile=16)
    mean, std = training_stats([s])
    img, _, inv = s.read(0, 0, 24, 64)
    expect = img[:, ~inv].astype(float).mean(axis=1)
    np.testing.assert_allclose(mean, expect, rtol=1e-9)
    assert (std > 0).all()
    fs = file_stats(p["image"])
    assert [b["name"] for b in fs["bands"]] == BANDS
    assert fs["valid_pixels"] == 48 * 64 - 16 and all(b["min"] > 0 for b in fs["bands"])


def test_augment_keeps_mask_aligned_for_13_bands() -> None:
    from rs_vit.config import AugmentConfig

    aug = Augment(AugmentConfig(d4=True, scale=(0.8, 1.25), brightness=0.1, contrast=0.1, p_jitter=1.0))
    y = np.random.default_rng(0).integers(0, 3, (32, 32))
    x = np.repeat(y[None].astype(np.float32), 13, axis=0) * 10  # image encodes the label
    for seed in range(6):
        xa, ya = aug(x, y, seed=seed)
        assert xa.shape == (13, 32, 32) and ya.shape == (32, 32)
        # per-band jitter: bands differ from one another, but every band keeps the label's ordering
        for b in (0, 7, 12):
            vals = [xa[b][ya == k].mean() for k in range(3) if (ya == k).any()]
            assert vals == sorted(vals)
        xb, yb = aug(x, y, seed=seed)
        np.testing.assert_array_equal(ya, yb)  # the same seed gives the same augmentation
    assert not Augment(AugmentConfig(d4=False))


def test_too_small_training_area_is_refused(tmp_path: Path) -> None:
    p = write_scene(tmp_path, h=48, w=64)
    with pytest.raises(ConfigError, match="block_size"):
        parse_config({**tiny_config(p, tmp_path / "r"), "data": {"block_size": 16}})
    data = _data(p, val_fraction=0.9)
    s = load_scene(data.scenes[0], data, tile=32)
    with pytest.raises(ConfigError, match="fits inside the training area"):
        RandomWindows([s], 32, 4, np.zeros(6), np.ones(6), 255)


def test_undeclared_raster_label_value_is_refused(tmp_path: Path) -> None:
    p = write_scene(tmp_path)
    data = DataConfig(scenes=[SceneDef(image=p["image"], labels=p["labels"])], classes=CLASSES[:2])
    with pytest.raises(InputError, match=r"scene_labels.tif: holds label value\(s\) \[2\]"):
        load_scene(data.scenes[0], data)


def test_windows_depend_only_on_seed_epoch_and_index(scene_paths: dict[str, Path]) -> None:
    from rs_vit.config import AugmentConfig

    data = _data(scene_paths)
    s = load_scene(data.scenes[0], data, tile=32)
    aug = Augment(AugmentConfig(brightness=0.1, contrast=0.1))
    a = RandomWindows([s], 32, 8, np.zeros(6), np.ones(6), 255, seed=5, augment=aug)
    b = RandomWindows([s], 32, 8, np.zeros(6), np.ones(6), 255, seed=5, augment=aug)
    for i in (7, 0, 3):  # any order (workers, ranks, resume): the same item
        np.testing.assert_array_equal(a[i][0].numpy(), b[i][0].numpy())
    first = a[0][0].numpy().copy()
    a.set_epoch(1)
    assert not np.array_equal(first, a[0][0].numpy())  # a new epoch draws new windows
