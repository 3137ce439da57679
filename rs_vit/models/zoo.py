"""The model zoo's entries. Each is a tiny function funnelled into :func:`_finish`.

Every builder takes ``(in_channels, num_classes, pretrained, weights, band_names, band_init,
drop_path_rate, **kw)``, builds the architecture for ``in_channels`` bands and initialises it
from ``weights`` (a local file) or ``pretrained`` weights (downloaded), adapted by band name.
Sizes: ``tiny``/``small``/``b0``–``b1`` entries run on a CPU; ``base`` entries want a GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from rs_vit.errors import ModelError
from rs_vit.models.pretrained import Source, init_from_weights
from rs_vit.models.registry import register_model

IMAGENET = ("imagenet",)


def _finish(model: nn.Module, sources: Sequence[Source], *, in_channels: int,
            band_names: Sequence[str] | None, band_init: str, pretrained: str | None,
            weights: str | None, weights_bands: Sequence[str] | None = None) -> nn.Module:
    init_from_weights(model, in_channels=in_channels, band_names=band_names, band_init=band_init,
                      pretrained=pretrained, weights=weights, sources=sources,
                      weights_bands=weights_bands)
    return model


def _common(kw: dict[str, Any]) -> dict[str, Any]:
    """Split the shared builder arguments from the architecture's own keyword arguments."""
    keys = ("in_channels", "pretrained", "weights", "band_names", "band_init", "weights_bands")
    return {k: kw.pop(k, None) for k in keys}


# -- smp-based models ---------------------------------------------------------------------------

def _smp_model(arch: str, encoder: str, num_classes: int, drop_path_rate: float, **kw: Any) -> nn.Module:
    import segmentation_models_pytorch as smp

    common = _common(kw)
    cls = getattr(smp, arch, None)
    if cls is None or not isinstance(cls, type):
        valid = [a for a in dir(smp) if a[0].isupper() and a not in ("MODEL_ARCHITECTURES_MAPPING",)]
        raise ModelError(f"Unknown smp architecture {arch!r}; choose one of {', '.join(valid)}.")
    extra: dict[str, Any] = {}
    if drop_path_rate and encoder.startswith("tu-"):
        extra["drop_path_rate"] = drop_path_rate
    if encoder.startswith("tu-") and any(s in encoder for s in ("swin", "vit", "deit")):
        extra["dynamic_img_size"] = True  # any multiple of the patch/window product, not just 224
    try:
        model = cls(encoder_name=encoder, encoder_weights=None, in_channels=common["in_channels"],
                    classes=num_classes, **extra, **kw)
    except (KeyError, ValueError) as exc:
        raise ModelError(f"smp {arch} with encoder {encoder!r} cannot be built ({exc}).") from None
    if encoder.startswith("mit_"):  # smp builds MiT with its own fixed rate (0 -> 0.1) whatever it is given
        model.encoder.reset_drop_path(drop_path_rate)
    elif drop_path_rate and not any(type(m).__name__ == "DropPath" for m in model.modules()):
        raise ModelError(f"drop_path_rate {drop_path_rate}: encoder {encoder} has no stochastic depth (a CNN); "
                         "set model.drop_path_rate to 0, or use a transformer or a timm encoder that has it "
                         "(e.g. tu-convnext_tiny).")
    if arch == "DPT":  # its ViT's final norm and classifier never run: DDP refuses unused parameters
        from rs_vit.models.prune import prune_timm_encoder

        prune_timm_encoder(model.encoder.model, model.encoder._output_indices)
    if arch == "Segformer":
        from rs_vit.models.fast import speed_up

        speed_up(model)  # folded decoder in eval mode: same parameters, ~10x faster decoding
    if encoder.startswith("tu-"):
        sources = [Source("timm", encoder[3:], "encoder")]
    else:
        sources = [Source("smp", encoder, "encoder")]
    return _finish(model, sources, **common)


def _reg_smp(name: str, arch: str, encoder: str, *, family: str, tile_multiple: int = 32,
             is_transformer: bool = True, source: str, doc: str, pretrained: tuple[str, ...] = IMAGENET,
             default_tile: int = 256) -> None:
    def builder(in_channels: int, num_classes: int, pretrained: str | None = None, weights: str | None = None,
                band_names: Sequence[str] | None = None, band_init: str = "mean",
                drop_path_rate: float = 0.0, **kw: Any) -> nn.Module:
        return _smp_model(arch, encoder, num_classes, drop_path_rate, in_channels=in_channels,
                          pretrained=pretrained, weights=weights, band_names=band_names,
                          band_init=band_init, **kw)

    builder.__doc__ = doc
    src = ("timm", encoder[3:]) if encoder.startswith("tu-") else ("smp", encoder)
    register_model(name, family=family, tile_multiple=tile_multiple, pretrained=pretrained,
                   is_transformer=is_transformer, source=source, default_tile=default_tile,
                   sources=(src,))(builder)


# SegFormer MiT-B0…B5 with the all-MLP head (smp).
_MIT_PARAMS = {0: "3.7", 1: "13.7", 2: "24.7", 3: "44.6", 4: "61.4", 5: "82.0"}
for _b, _p in _MIT_PARAMS.items():
    _reg_smp(f"segformer_b{_b}", "Segformer", f"mit_b{_b}", family="segformer",
             source=f"smp Segformer, MiT-B{_b} encoder (Xie et al. 2021)",
             doc=f"SegFormer-B{_b}: hierarchical MiT encoder with the all-MLP decoder ({_p} M params).")

# Swin with UPerNet / FPN / U-Net decoders (smp timm-universal encoders, dynamic image size).
for _size in ("tiny", "small", "base"):
    for _arch, _dec in (("UPerNet", "upernet"), ("FPN", "fpn"), ("Unet", "unet")):
        if _size != "tiny" and _dec != "upernet":
            continue
        _reg_smp(f"{_dec}_swin_{_size}", _arch, f"tu-swin_{_size}_patch4_window7_224", family="swin",
                 source=f"smp {_arch} + timm swin_{_size}_patch4_window7_224 (Liu et al. 2021)",
                 doc=f"Swin-{_size[0].upper()} encoder with the {_arch} decoder; tiles: multiples of 32.")

# DPT on ViT (smp).
_reg_smp("dpt_vit_tiny", "DPT", "tu-vit_tiny_patch16_224", family="dpt", tile_multiple=16,
         source="smp DPT + timm vit_tiny_patch16_224 (Ranftl et al. 2021)",
         doc="DPT: ViT-Ti/16 tokens reassembled at four scales and fused (smp).")
_reg_smp("dpt_vit_base", "DPT", "tu-vit_base_patch16_224", family="dpt", tile_multiple=16,
         source="smp DPT + timm vit_base_patch16_224 (Ranftl et al. 2021)",
         doc="DPT with a ViT-B/16 encoder (GPU size).")

# CNN baselines.
for _enc in ("resnet18", "resnet34", "resnet50"):
    _reg_smp(f"unet_{_enc}", "Unet", _enc, family="cnn", is_transformer=False,
             source=f"smp Unet, {_enc} encoder (Ronneberger et al. 2015)",
             doc=f"U-Net with a {_enc} encoder: the CNN baseline.")
    _reg_smp(f"deeplabv3plus_{_enc}", "DeepLabV3Plus", _enc, family="cnn", is_transformer=False,
             source=f"smp DeepLabV3Plus, {_enc} encoder (Chen et al. 2018)",
             doc=f"DeepLabV3+ with a {_enc} encoder (atrous spatial pyramid pooling): CNN baseline.")


@register_model(family="smp", tile_multiple=32, pretrained=IMAGENET, is_transformer=False,
                source="any segmentation_models_pytorch architecture + encoder (model.kwargs arch, encoder)")
def smp_model(in_channels: int, num_classes: int, pretrained: str | None = None, weights: str | None = None,
              band_names: Sequence[str] | None = None, band_init: str = "mean", drop_path_rate: float = 0.0,
              arch: str = "Unet", encoder: str = "resnet34", **kw: Any) -> nn.Module:
    """Any smp model (kwargs ``arch``, ``encoder``): used for imported foreign weights."""
    return _smp_model(arch, encoder, num_classes, drop_path_rate, in_channels=in_channels,
                      pretrained=pretrained, weights=weights, band_names=band_names,
                      band_init=band_init, **kw)


# -- hand-written decoders on timm encoders ---------------------------------------------------

def _reg_timm(name: str, make: Callable[..., nn.Module], timm_name: str, *, family: str, source: str,
              doc: str, tile_multiple: int = 16, fixed_tile: int | None = None,
              pretrained: tuple[str, ...] = IMAGENET, module: str = "encoder.model") -> None:
    def builder(in_channels: int, num_classes: int, pretrained: str | None = None, weights: str | None = None,
                band_names: Sequence[str] | None = None, band_init: str = "mean",
                drop_path_rate: float = 0.0, weights_bands: Sequence[str] | None = None,
                encoder: str | None = None, **kw: Any) -> nn.Module:
        enc = encoder or timm_name
        model = make(enc, in_channels, num_classes, drop_path_rate=drop_path_rate, **kw)
        return _finish(model, [Source("timm", enc, module)], in_channels=in_channels,
                       band_names=band_names, band_init=band_init, pretrained=pretrained,
                       weights=weights, weights_bands=weights_bands)

    builder.__doc__ = doc
    register_model(name, family=family, tile_multiple=tile_multiple, fixed_tile=fixed_tile,
                   pretrained=pretrained, source=source, sources=(("timm", timm_name),))(builder)


def _setr(head: str) -> Callable[..., nn.Module]:
    def make(enc: str, in_channels: int, num_classes: int, **kw: Any) -> nn.Module:
        from rs_vit.models.setr import SETR

        return SETR(enc, in_channels, num_classes, head, **kw)

    return make


def _segmenter(enc: str, in_channels: int, num_classes: int, **kw: Any) -> nn.Module:
    from rs_vit.models.segmenter import Segmenter

    return Segmenter(enc, in_channels, num_classes, **kw)


_VITS = {"tiny": "vit_tiny_patch16_224", "small": "vit_small_patch16_224", "base": "vit_base_patch16_224"}
_SETR_DOC = {"naive": "1x1 conv + bilinear upsampling", "pup": "progressive upsampling",
             "mla": "multi-level aggregation of four blocks"}
for _size, _vit in _VITS.items():
    for _head in ("naive", "pup", "mla"):
        if _size == "small" and _head == "naive":
            continue
        _reg_timm(f"setr_{_head}_vit_{_size}", _setr(_head), _vit, family="vit",
                  source=f"SETR-{_head.upper()} head (Zheng et al. 2021, written here) + timm {_vit}",
                  doc=f"SETR-{_head} ({_SETR_DOC[_head]}) on ViT-{_size}/16.")
    _reg_timm(f"segmenter_vit_{_size}", _segmenter, _vit, family="segmenter",
              source=f"Segmenter mask transformer (Strudel et al. 2021, written here) + timm {_vit}",
              doc=f"Segmenter: ViT-{_size}/16 + mask-transformer decoder (class embeddings x patches).")

_DEITS = {"tiny": "deit_tiny_patch16_224", "small_distilled": "deit_small_distilled_patch16_224",
          "base_distilled": "deit_base_distilled_patch16_224"}
for _size, _deit in _DEITS.items():
    _reg_timm(f"setr_pup_deit_{_size}", _setr("pup"), _deit, family="deit",
              source=f"SETR-PUP head + timm {_deit} (Touvron et al. 2021)",
              doc=f"SETR-PUP on DeiT-{_size}/16" + (
                  " (distillation token: a second head with model kwarg distill_head)." if "distilled" in _size
                  else "."))
    _reg_timm(f"segmenter_deit_{_size}", _segmenter, _deit, family="deit",
              source=f"Segmenter mask transformer + timm {_deit} (Touvron et al. 2021)",
              doc=f"Segmenter on DeiT-{_size}/16" + (
                  " (distillation token: a second head with model kwarg distill_head)." if "distilled" in _size
                  else "."))

for _mixer, _pre in (("s16", ()), ("b16", IMAGENET)):
    _reg_timm(f"setr_pup_mixer_{_mixer}", _setr("pup"), f"mixer_{_mixer}_224", family="mixer",
              fixed_tile=224, pretrained=_pre,
              source=f"SETR-PUP head + timm mixer_{_mixer}_224 (Tolstikhin et al. 2021)"
                     + ("; no ImageNet weights exist for S/16 in timm (B/16 is the smallest)" if not _pre else ""),
              doc=f"MLP-Mixer-{_mixer.upper()} + SETR-PUP head: token-mixing MLPs fix the tile to 224x224.")


def _transunet(cnn: str, dim: int, depth: int, heads: int, vit: str) -> Callable[..., nn.Module]:
    def builder(in_channels: int, num_classes: int, pretrained: str | None = None, weights: str | None = None,
                band_names: Sequence[str] | None = None, band_init: str = "mean",
                drop_path_rate: float = 0.0, weights_bands: Sequence[str] | None = None,
                **kw: Any) -> nn.Module:
        from rs_vit.models.hybrid import TransUNet

        model = TransUNet(cnn, in_channels, num_classes, dim=dim, depth=depth, heads=heads,
                          drop_path_rate=drop_path_rate, **kw)
        return _finish(model, [Source("timm", cnn, "cnn"), Source("timm", vit, "transformer")],
                       in_channels=in_channels, band_names=band_names, band_init=band_init,
                       pretrained=pretrained, weights=weights, weights_bands=weights_bands)

    return builder


for _name, _cnn, _dim, _depth, _heads, _vit in (
    ("transunet_r18_vit_small", "resnet18", 384, 8, 6, "vit_small_patch16_224"),
    ("transunet_r50_vit_base", "resnet50", 768, 12, 12, "vit_base_patch16_224"),
):
    _b = _transunet(_cnn, _dim, _depth, _heads, _vit)
    _b.__doc__ = (f"TransUNet-style hybrid: {_cnn} skips (strides 2-8) + {_depth} ViT blocks "
                  f"(dim {_dim}) on stride-16 tokens + U-Net decoder.")
    register_model(_name, family="hybrid", tile_multiple=32, pretrained=IMAGENET,
                   source=f"TransUNet (Chen et al. 2021, written here): timm {_cnn} + {_vit} blocks",
                   sources=(("timm", _cnn), ("timm", _vit)))(_b)
