"""Real weights: the ukis-csmask Sentinel-2 cloud model (smp U-Net, EfficientNet-B4, 6 named bands)
imported as a foreign model, applied to a real 13-band scene by band name, and adapted to all 13
bands with zero init without changing its mask. Skips when ../shared is absent."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from _helpers_models import SPAIN, UKIS
from rasterio.windows import Window

pytestmark = [pytest.mark.real_data, pytest.mark.skipif(not (UKIS.is_dir() and SPAIN.is_file()),
                                reason=f"real data not found at {UKIS.parent} (../shared absent)")]
WEIGHTS = UKIS / "ukis_csmask_6b_l1c_smp_unet_effb4_fp16.safetensors"
WIN = Window(128, 128, 256, 256)  # the slow end-to-end test: one 256 x 256 tile, the model's size
FAST = Window(192, 192, 128, 128)  # the fast test: a 128 x 128 crop of the same area


def _description(tmp_path):
    meta = json.loads((UKIS / "model_6b_l1c.json").read_text())["data"]
    mean, std = meta["dataset_statistics"]["img"]
    desc = {"model": "smp_model", "model_kwargs": {"arch": "Unet", "encoder": "efficientnet-b4"},
            "bands": meta["dataset_statistics"]["band_names"], "mean": mean, "std": std, "scale": 10000,
            "classes": ["clear", "cloud", "cloud_shadow"], "tile_size": meta["target_size"][0], "nodata": 0}
    path = tmp_path / "ukis.yaml"
    path.write_text(json.dumps(desc))
    return path, meta


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    from rs_vit.models.foreign import adapt_checkpoint, import_weights

    tmp = tmp_path_factory.mktemp("ukis")
    desc, meta = _description(tmp)
    ck6, log = import_weights(WEIGHTS, desc, tmp / "ck6")
    ck13, _ = adapt_checkpoint(ck6, tmp / "ck13", [f"B{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8)] + ["B8A", "B9", "B10", "B11", "B12"])
    return tmp, ck6, ck13, meta, log


def _reference_logits(meta, win: Window = FAST) -> torch.Tensor:
    """What ukis-csmask itself computes: smp U-Net, reflectance (value / 10000) normalised."""
    import segmentation_models_pytorch as smp
    from safetensors.torch import load_file

    net = smp.Unet("efficientnet-b4", encoder_weights=None, in_channels=6, classes=3)
    missing, unexpected = net.load_state_dict({k: v.float() for k, v in load_file(str(WEIGHTS)).items()}, strict=False)
    assert not unexpected and all("_conv_head" in k or "_bn1" in k or "num_batches" in k for k in missing)
    with rasterio.open(SPAIN) as src:
        x = src.read([2, 3, 4, 8, 12, 13], window=win).astype(np.float32) / 10000  # B2 B3 B4 B8 B11 B12
    mean, std = (np.asarray(v, np.float32)[:, None, None] for v in meta["dataset_statistics"]["img"])
    with torch.no_grad():
        return net.eval()(torch.from_numpy((x - mean) / std)[None])


def _tool_logits(ckpt) -> tuple[torch.Tensor, list[str]]:
    from rs_vit.io.bands import match_bands, resolve_band_names
    from rs_vit.models.checkpoint import load_model

    model, spec = load_model(ckpt)
    with rasterio.open(SPAIN) as src:
        names = resolve_band_names(src.descriptions)
        idx = match_bands(names, spec.bands)
        x = src.read([i + 1 for i in idx], window=FAST).astype(np.float32)
    mean, std = (np.asarray(v, np.float32)[:, None, None] for v in (spec.mean, spec.std))
    with torch.no_grad():
        return model(torch.from_numpy((x - mean) / std)[None]), spec.bands


def test_import_reproduces_ukis_and_zero_adaptation_keeps_the_mask(imported) -> None:
    _, ck6, ck13, meta, log = imported
    assert any("absent from the file" in line for line in log)
    ref = _reference_logits(meta)
    got6, bands6 = _tool_logits(ck6)
    assert bands6 == ["blue", "green", "red", "nir", "swir16", "swir22"]
    assert torch.allclose(got6, ref, atol=1e-3)
    mask = ref.argmax(1)
    assert (got6.argmax(1) == mask).float().mean() > 0.9999
    got13, bands13 = _tool_logits(ck13)
    assert len(bands13) == 13 and bands13[0] == "coastal"
    assert torch.allclose(got13, ref, atol=1e-3)
    assert (got13.argmax(1) == mask).float().mean() > 0.9999
    assert len(torch.unique(mask)) >= 2  # a real, non-trivial mask


@pytest.mark.slow
def test_predict_scene_through_the_tool(imported) -> None:
    """The full predict path (sliding windows, band selection by name, nodata) on a real crop."""
    from rs_vit.infer.engine import predict_scene

    tmp, ck6, ck13, _, _ = imported
    crop = tmp / "spain_crop.tif"
    with rasterio.open(SPAIN) as src:
        profile = {**src.profile, "width": 256, "height": 256, "transform": src.window_transform(WIN)}
        with rasterio.open(crop, "w", **profile) as dst:
            dst.write(src.read(window=WIN))
            for i, d in enumerate(src.descriptions, 1):
                dst.set_band_description(i, d)
    masks = []
    for ck, name in ((ck6, "m6.tif"), (ck13, "m13.tif")):
        predict_scene(crop, tmp / name, checkpoint=ck, precision="fp32", overwrite=True)
        with rasterio.open(tmp / name) as r:
            masks.append(r.read(1))
    assert (masks[0] == masks[1]).mean() > 0.9999
    ref = _reference_logits(imported[3], WIN).argmax(1)[0].numpy()
    assert (masks[0] == ref).mean() > 0.999
