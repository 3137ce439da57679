"""Registry sweep (smp style): every registered model runs forward and backward for 1, 4 and 13
bands. One CPU-size model per family runs for real at its smallest valid tile (13 bands in the fast
suite, 1 and 4 bands marked slow); the whole registry runs on the ``meta`` device (shapes and
autograd graph, no arithmetic), one band count per model in the fast suite, all three marked slow."""

from __future__ import annotations

import pytest
import torch

from rs_vit.errors import ModelError
from rs_vit.models import create_model, get_entry, list_models
from rs_vit.models.registry import check_tile_size
from rs_vit.models.stats import meta_device

# one CPU-size model per family (and per hand-written decoder)
REAL = ["setr_naive_vit_tiny", "setr_pup_vit_tiny", "setr_mla_vit_tiny", "setr_pup_deit_tiny",
        "segmenter_deit_tiny", "upernet_swin_tiny", "segformer_b0", "setr_pup_mixer_s16",
        "transunet_r18_vit_small", "unet_resnet18", "deeplabv3plus_resnet18"]
BANDS = [1, 4, 13]
FAMILIES = {"vit", "deit", "segmenter", "swin", "segformer", "mixer", "hybrid", "cnn", "dpt"}


def _tile(name: str) -> int:
    e = get_entry(name)
    return e.fixed_tile or max(e.tile_multiple, 32)


def test_every_family_is_registered() -> None:
    assert FAMILIES <= {get_entry(n).family for n in list_models()}
    assert set(REAL) <= set(list_models())


_SLOW_REAL = {"setr_pup_mixer_s16"}  # its one valid tile is 224: 10x the work of the others


@pytest.mark.parametrize("bands", [13, pytest.param(1, marks=pytest.mark.slow), pytest.param(4, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW_REAL else n for n in REAL])
def test_forward_backward_real(name: str, bands: int) -> None:
    torch.manual_seed(0)
    t = _tile(name)
    dpr = 0.0 if get_entry(name).family == "cnn" else 0.1  # CNN encoders have no stochastic depth (refused)
    model = create_model(name, in_channels=bands, num_classes=3, drop_path_rate=dpr).train()
    batch = 1 if t >= 224 else 2  # BatchNorm after global pooling needs 2 samples in training
    y = model(torch.randn(batch, bands, t, t))
    assert y.shape == (batch, 3, t, t)
    y.float().logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads[:1]) and any(g is not None and g.abs().sum() > 0 for g in grads)


def _meta(name: str, bands_list: list[int]) -> None:
    t = _tile(name)
    for bands in bands_list:
        with meta_device():
            model = create_model(name, in_channels=bands, num_classes=3).to("meta").train()
            y = model(torch.randn(2, bands, t, t))
            y.sum().backward()
        assert y.shape == (2, 3, t, t)


_OTHERS = [n for n in list_models() if n not in REAL or n in _SLOW_REAL]
_HEAVY_BUILD = {"segformer_b3", "segformer_b4", "segformer_b5"}  # their builders run CPU arithmetic


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _HEAVY_BUILD else n
                                  for n in _OTHERS])
def test_forward_backward_meta(name: str) -> None:
    _meta(name, [BANDS[_OTHERS.index(name) % 3]])


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_forward_backward_meta_all_bands(name: str) -> None:
    _meta(name, BANDS)


def test_tile_sizes() -> None:
    for size in (256, 384, 512):
        check_tile_size("upernet_swin_tiny", size)
        check_tile_size("setr_pup_vit_tiny", size)
    with pytest.raises(ModelError, match="only accepts 224x224"):
        check_tile_size("setr_pup_mixer_s16", 256)
    with pytest.raises(ModelError, match="nearest valid sizes are 96 or 112"):
        check_tile_size("setr_pup_vit_tiny", 100)
    with pytest.raises(ModelError, match="Did you mean 'segformer_b0'"):
        get_entry("segformer_b0x")


@pytest.mark.slow
def test_swin_common_tiles_run() -> None:
    model = create_model("upernet_swin_tiny", in_channels=4, num_classes=2).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 4, 384, 384)).shape == (1, 2, 384, 384)
