"""The folded SegFormer decoder computes what smp's stock decoder computes, faster."""

from __future__ import annotations

import pytest
import torch

from rs_vit.models.fast import speed_up
from rs_vit.models.registry import create_model

smp = pytest.importorskip("segmentation_models_pytorch")
from segmentation_models_pytorch.decoders.segformer.decoder import SegformerDecoder  # noqa: E402


def _pair(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(stock smp SegFormer-B0, the same weights through rs-vit's registry) in eval mode, with
    non-trivial batch-norm statistics so the fold is exercised."""
    torch.manual_seed(seed)
    ours = create_model("segformer_b0", in_channels=4, num_classes=3)
    bn = ours.decoder.fuse_stage[1]
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.normal_()
    bn.bias.data.normal_()
    stock = smp.Segformer(encoder_name="mit_b0", encoder_weights=None, in_channels=4, classes=3)
    stock.encoder.reset_drop_path(0.0)  # rs-vit honours drop_path_rate (0 here); smp's default is 0 -> 0.1
    stock.load_state_dict(ours.state_dict())
    return stock.eval(), ours.eval()


def test_registry_segformer_gets_the_folded_decoder_and_same_state_dict() -> None:
    stock, ours = _pair()
    assert type(stock.decoder) is SegformerDecoder
    assert isinstance(ours.decoder, SegformerDecoder) and type(ours.decoder) is not SegformerDecoder
    assert list(stock.state_dict()) == list(ours.state_dict())


@pytest.mark.parametrize("size", [64, 96])
def test_folded_decoder_equals_stock_in_eval(size: int) -> None:
    stock, ours = _pair()
    x = torch.randn(2, 4, size, size)
    with torch.inference_mode():
        ref, got = stock(x), ours(x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_training_mode_runs_the_stock_forward_with_batch_statistics() -> None:
    stock, ours = _pair()
    stock.train()
    ours.train()
    x = torch.randn(2, 4, 64, 64)
    torch.manual_seed(1)
    ref = stock(x)
    torch.manual_seed(1)
    got = ours(x)
    torch.testing.assert_close(got, ref)
    got.sum().backward()
    assert ours.decoder.fuse_stage[0].weight.grad is not None


def test_unknown_fuse_layout_falls_back_to_stock() -> None:
    stock, ours = _pair()
    ours.decoder.fuse_stage[2] = torch.nn.GELU()  # not a layout the fold knows
    stock.decoder.fuse_stage[2] = torch.nn.GELU()
    x = torch.randn(1, 4, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), stock(x))


def test_speed_up_is_idempotent_and_leaves_other_models_alone() -> None:
    _, ours = _pair()
    cls = type(ours.decoder)
    speed_up(ours)
    assert type(ours.decoder) is cls
    unet = smp.Unet(encoder_name="resnet18", encoder_weights=None, in_channels=4, classes=3)
    before = type(unet.decoder)
    speed_up(unet)
    assert type(unet.decoder) is before
