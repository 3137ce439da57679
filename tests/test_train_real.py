"""Training on real data from ../shared/data (skipped with a reason when it is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from _helpers_train import SHARED
from rs_vit.config import DataConfig, SceneDef, parse_config
from rs_vit.data.scenes import load_scene
from rs_vit.data.stats import training_stats

SPACENET = SHARED / "spacenet_buildings"
SEN1FLOODS = SHARED / "sen1floods11"
#: This 60-step U-Net run reached a held-out building IoU of 0.061 (0.034 after 30 steps) when
#: measured; predicting all background gives 0. Half of it, as a margin for other CPUs' bf16.
MIN_BUILDING_IOU = 0.03


def _need(d: Path) -> None:
    if not d.is_dir():
        pytest.skip(f"real data not found at {d}")


def test_sen1floods11_ignores_unlabelled_and_nodata() -> None:
    _need(SEN1FLOODS)
    data = DataConfig(
        scenes=[SceneDef(image=SEN1FLOODS / "Spain_7370579_S2Hand.tif", labels=SEN1FLOODS / "Spain_7370579_LabelHand.tif")],
        classes=[{"id": 0, "name": "land"}, {"id": 1, "name": "water"}], sensor="sentinel2_l1c",
        ignore_values=[-1], split_mode="blocks", block_size=128, val_fraction=0.25,
    )
    s = load_scene(data.scenes[0], data, tile=128, seed=0)
    assert s.info.band_names[1] == "blue" and len(s.info.band_names) == 13
    import rasterio

    with rasterio.open(SEN1FLOODS / "Spain_7370579_LabelHand.tif") as src:
        raw = src.read(1)
    assert s.labels is not None and s.invalid is not None
    assert (s.labels[raw == -1] == 255).all() and (raw == -1).sum() == 99
    assert (s.labels[s.invalid] == 255).all()
    assert set(np.unique(s.labels)) <= {0, 1, 255}
    mean, std = training_stats([s])
    assert mean.shape == (13,) and (std > 0).all() and (mean > 0).all()  # nodata 0 excluded
    # undeclared -1 (without ignore_values) is refused, naming the file and the value
    from rs_vit.errors import InputError

    bad = DataConfig(scenes=data.scenes, classes=data.classes, sensor="sentinel2_l1c")
    with pytest.raises(InputError, match=r"Spain_7370579_LabelHand.tif: holds label value\(s\) \[-1\]"):
        load_scene(bad.scenes[0], bad)


@pytest.mark.slow
def test_spacenet_buildings_reach_a_real_iou(tmp_path: Path) -> None:
    _need(SPACENET)
    from rs_vit.train.loop import train

    cfg = parse_config({
        "data": {"scenes": [{"image": str(SPACENET / "sample_geotiff.tif"),
                             "labels": str(SPACENET / "geotiff_labels.geojson"), "label_value": 1}],
                 "classes": [{"id": 0, "name": "background"}, {"id": 1, "name": "building"}],
                 "background": 0, "val_fraction": 0.3, "class_balanced": 0.5},
        "model": {"name": "unet_resnet18"},
        "train": {"out_dir": str(tmp_path / "run"), "epochs": 4, "steps_per_epoch": 15, "batch_size": 8,
                  "tile_size": 128, "lr": 2e-3, "warmup_steps": 5, "precision": "bf16", "loss": "ce+dice",
                  "plots": False, "tensorboard": False, "seed": 0},
    })
    r = train(cfg, log=lambda _m: None, progress=False)
    best = max(float(h["iou_building"] or 0) for h in r.history)
    assert best > MIN_BUILDING_IOU, r.history
