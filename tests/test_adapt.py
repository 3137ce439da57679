"""Band adaptation by name: kernels follow band names, zero init preserves the function,
position embeddings are resampled, local timm/smp files load through the real code path."""

from __future__ import annotations

import pytest
import timm
import torch
from _helpers_models import S2, distinct_rgb_kernel, save_state

from rs_vit.errors import ModelError
from rs_vit.models import create_model
from rs_vit.models.adapt import adapt_conv_weight, find_input_convs, load_adapted

RGB = ["red", "green", "blue"]


def test_kernels_follow_names_not_positions() -> None:
    w = distinct_rgb_kernel()
    out, origin = adapt_conv_weight(w, RGB, S2, "zero")
    assert out.shape == (8, 13, 3, 3)
    for band, src in (("red", 0), ("green", 1), ("blue", 2)):
        assert torch.equal(out[:, S2.index(band)], w[:, src])
    assert origin["coastal"] == "zero" and origin["red"] == "red"
    assert out[:, S2.index("coastal")].abs().sum() == 0  # not the red kernel, as cycling would give


def test_mean_init_scales_and_cycle_matches_timm() -> None:
    w = distinct_rgb_kernel()
    mean, _ = adapt_conv_weight(w, RGB, S2, "mean")
    scale = 3 / 13
    assert torch.allclose(mean[:, S2.index("red")], w[:, 0] * scale)
    assert torch.allclose(mean[:, S2.index("nir")], w.mean(1) * scale)
    # the sum over bands (the response to a flat, perfectly correlated input) is kept
    assert torch.allclose(mean.sum(1), (w.sum(1) + 10 * w.mean(1)) * scale, atol=1e-5)
    cyc, _ = adapt_conv_weight(w, RGB, S2, "cycle")
    from timm.models import adapt_input_conv

    assert torch.allclose(cyc, adapt_input_conv(13, w.clone()))
    assert torch.allclose(cyc[:, S2.index("coastal")], w[:, 0] * scale)  # red on coastal: the bug


def test_random_init_and_generic_names() -> None:
    w = distinct_rgb_kernel()
    rnd, origin = adapt_conv_weight(w, RGB, S2, "random", generator=torch.Generator().manual_seed(1))
    assert origin["nir"] == "random" and rnd[:, S2.index("nir")].std() > 0
    assert torch.equal(rnd[:, S2.index("blue")], w[:, 2])
    generic, origin = adapt_conv_weight(w, RGB, None, "zero", n_dst=5)  # unnamed bands: timm behaviour
    assert torch.allclose(generic[:, 3], w[:, 0] * 3 / 5)
    with pytest.raises(ModelError, match="band_init"):
        adapt_conv_weight(w, RGB, S2, "bogus")


def test_timm_layout_file_lands_on_named_bands(tmp_path) -> None:
    """A timm ViT state dict saved locally: the real pretrained path except the download."""
    src = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    path = save_state(src.state_dict(), tmp_path / "vit_tiny.safetensors")
    model = create_model("setr_naive_vit_tiny", in_channels=13, num_classes=2, weights=str(path),
                         band_names=S2, band_init="zero")
    w = model.encoder.model.patch_embed.proj.weight
    sw = src.patch_embed.proj.weight
    assert torch.equal(w[:, S2.index("red")], sw[:, 0])
    assert torch.equal(w[:, S2.index("blue")], sw[:, 2])
    assert w[:, S2.index("coastal")].abs().sum() == 0
    assert torch.equal(model.encoder.model.blocks[3].attn.qkv.weight, src.blocks[3].attn.qkv.weight)
    assert "patch_embed.proj" in model.rs_vit_init


def test_smp_layout_pth_file(tmp_path) -> None:
    import segmentation_models_pytorch as smp

    enc = smp.encoders.get_encoder("resnet18", in_channels=3, weights=None)
    path = save_state(enc.state_dict(), tmp_path / "resnet18.pth")
    model = create_model("unet_resnet18", in_channels=4, num_classes=2, weights=str(path),
                         band_names=["nir", "red", "green", "blue"], band_init="mean")
    w = model.encoder.conv1.weight
    assert torch.allclose(w[:, 1], enc.conv1.weight[:, 0] * 3 / 4)
    assert torch.allclose(w[:, 0], enc.conv1.weight.mean(1) * 3 / 4)
    assert torch.equal(model.encoder.layer2[0].conv1.weight, enc.layer2[0].conv1.weight)


def test_zero_init_preserves_function(tmp_path) -> None:
    """An RGB model adapted to 13 bands with zero init computes the same on the RGB bands."""
    torch.manual_seed(0)
    rgb = create_model("segmenter_vit_tiny", in_channels=3, num_classes=3, band_names=RGB).eval()
    path = save_state(rgb.state_dict(), tmp_path / "rgb.pth")
    big = create_model("segmenter_vit_tiny", in_channels=13, num_classes=3, weights=str(path),
                       weights_bands=RGB, band_names=S2, band_init="zero").eval()
    x = torch.randn(2, 13, 32, 48)
    with torch.no_grad():
        ref = rgb(x[:, [S2.index(b) for b in RGB]])
        out = big(x)
    assert torch.allclose(ref, out, atol=1e-5)
    mean = create_model("segmenter_vit_tiny", in_channels=13, num_classes=3, weights=str(path),
                        weights_bands=RGB, band_names=S2, band_init="mean").eval()
    with torch.no_grad():
        assert not torch.allclose(ref, mean(x), atol=1e-3)  # the test can fail


def test_position_embedding_resampled(tmp_path) -> None:
    from timm.layers import resample_abs_pos_embed

    src = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False)
    path = save_state(src.state_dict(), tmp_path / "deit.safetensors")
    model = create_model("setr_pup_deit_tiny", in_channels=4, num_classes=2, weights=str(path),
                         band_names=["blue", "green", "red", "nir"], encoder="deit_tiny_distilled_patch16_224",
                         img_size=64)
    pe = model.encoder.model.pos_embed
    assert pe.shape == (1, 2 + 16, 192)  # class + distillation tokens + 4x4 grid
    ref = resample_abs_pos_embed(src.pos_embed, [4, 4], [14, 14], num_prefix_tokens=2)
    assert torch.allclose(pe, ref)
    assert "pos_embed" in model.rs_vit_init
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 4, 64, 96)).shape == (1, 2, 64, 96)


def test_find_input_convs_generic() -> None:
    from rs_vit.models.stats import meta_device

    expect = {"segformer_b0": "encoder.patch_embed1.proj", "unet_resnet18": "encoder.conv1",
              "upernet_swin_tiny": "encoder.model.patch_embed.proj", "setr_pup_mixer_s16": "encoder.model.stem.proj",
              "transunet_r18_vit_small": "cnn.conv1", "segmenter_deit_tiny": "encoder.model.patch_embed.proj"}
    for name, conv in expect.items():
        with meta_device():
            model = create_model(name, in_channels=5, num_classes=2)
        assert find_input_convs(model, 5) == [conv], name


def test_weights_that_do_not_fit_are_refused(tmp_path) -> None:
    model = create_model("unet_resnet18", in_channels=3, num_classes=2)
    with pytest.raises(ModelError, match="another model"):
        load_adapted(model, {"foo.weight": torch.zeros(3)}, in_channels=3, src_bands=RGB, dst_bands=RGB)
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"123")
    with pytest.raises(ModelError, match="unknown weights format"):
        create_model("unet_resnet18", in_channels=3, num_classes=2, weights=str(bad))
    corrupt = tmp_path / "x.safetensors"
    corrupt.write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="cannot be read"):
        create_model("unet_resnet18", in_channels=3, num_classes=2, weights=str(corrupt))


def test_unsafe_pickle_refused(tmp_path) -> None:
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"a": Evil()}))
    with pytest.raises(ModelError, match="safely"):
        create_model("unet_resnet18", in_channels=3, num_classes=2, weights=str(path))


def test_offline_pretrained_says_how_to_pass_a_file(monkeypatch) -> None:
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", "/nonexistent-rs-vit-hf-home")
    with pytest.raises(ModelError, match="weights: PATH"):
        create_model("setr_naive_vit_tiny", in_channels=4, num_classes=2, pretrained="imagenet",
                     band_names=["blue", "green", "red", "nir"])
    with pytest.raises(ModelError, match="no pretrained weights"):
        create_model("setr_pup_mixer_s16", in_channels=4, num_classes=2, pretrained="imagenet")
