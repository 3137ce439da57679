"""The model zoo's entries. Each is a tiny function funnelled into a shared builder."""

from __future__ import annotations

from typing import Any

from torch import nn

from rs_vit.errors import ModelError
from rs_vit.models.registry import register_model


def _smp(arch: str, encoder: str, in_channels: int, num_classes: int, *, pretrained: str | None,
         weights: str | None, drop_path_rate: float, **kwargs: Any) -> nn.Module:
    import segmentation_models_pytorch as smp

    if pretrained or weights:
        raise ModelError(
            f"Pretrained weights for {arch}/{encoder} are not available in this version; "
            "set pretrained: null to train from scratch."
        )
    cls = getattr(smp, arch)
    extra = {}
    if drop_path_rate and encoder.startswith(("mit_", "tu-")):
        extra["drop_path_rate"] = drop_path_rate
    return cls(encoder_name=encoder, encoder_weights=None, in_channels=in_channels,
               classes=num_classes, **extra, **kwargs)


@register_model(family="segformer", tile_multiple=32, source="smp Segformer, MiT-B0 encoder (Xie et al. 2021)")
def segformer_b0(in_channels: int, num_classes: int, pretrained=None, weights=None, band_names=None,
                 band_init="mean", drop_path_rate=0.0, **kw) -> nn.Module:
    """SegFormer-B0: hierarchical MiT encoder with the all-MLP decoder (3.7 M params)."""
    return _smp("Segformer", "mit_b0", in_channels, num_classes, pretrained=pretrained,
                weights=weights, drop_path_rate=drop_path_rate, **kw)


@register_model(family="cnn", tile_multiple=32, is_transformer=False, source="smp Unet, ResNet-18 encoder")
def unet_resnet18(in_channels: int, num_classes: int, pretrained=None, weights=None, band_names=None,
                  band_init="mean", drop_path_rate=0.0, **kw) -> nn.Module:
    """U-Net with a ResNet-18 encoder: the CNN baseline (14.3 M params)."""
    return _smp("Unet", "resnet18", in_channels, num_classes, pretrained=pretrained,
                weights=weights, drop_path_rate=0.0, **kw)
