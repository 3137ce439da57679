"""SETR (Zheng et al., CVPR 2021): a plain transformer encoder with convolutional decoders.

No library ships SETR for timm encoders, so the three heads are written here:

- ``naive``: 1×1 conv → BN → ReLU → 1×1 conv on the last block's tokens, bilinear upsampling.
- ``pup`` (progressive upsampling): four conv3×3 → BN → ReLU → ×2 upsampling stages.
- ``mla`` (multi-level aggregation): four evenly spaced blocks, each projected, aggregated
  top-down, refined by convs, upsampled ×4, concatenated and classified.

The encoder is any timm ViT/DeiT (distilled variants' extra token included: timm's
``forward_intermediates`` drops all prefix tokens) or MLP-Mixer, built for ``in_channels`` bands.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _cbr(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class TimmTokenEncoder(nn.Module):
    """A timm ViT/DeiT/Mixer returning patch-token feature maps ``(B, D, H/p, W/p)``.

    Args:
        name: timm model name (e.g. ``vit_tiny_patch16_224``, ``deit_small_distilled_patch16_224``,
            ``mixer_s16_224``).
        in_channels: number of input bands.
        indices: which blocks' outputs to return (negative counts from the end).
        img_size: the size the position embeddings are built for; other multiples of the patch
            size work too (timm resamples them on the fly, ``dynamic_img_size``).
        drop_path_rate: stochastic depth.
        norm: apply the encoder's final norm to the returned features.
    """

    def __init__(self, name: str, in_channels: int, indices: Sequence[int] = (-1,), *,
                 img_size: int | None = None, drop_path_rate: float = 0.0, norm: bool = False) -> None:
        super().__init__()
        import timm

        self.norm = norm
        kwargs: dict = {"pretrained": False, "num_classes": 0, "in_chans": in_channels,
                        "drop_path_rate": drop_path_rate}
        is_mixer = name.startswith(("mixer", "gmixer", "resmlp"))
        if not is_mixer:
            kwargs["dynamic_img_size"] = True
        if img_size:
            kwargs["img_size"] = img_size
        self.model = timm.create_model(name, **kwargs)
        depth = len(self.model.blocks)
        self.indices = [i % depth for i in indices]
        self._prune()
        self.embed_dim = int(self.model.num_features)
        embed = getattr(self.model, "patch_embed", None) or self.model.stem  # Mixer: stem
        self.patch_size = int(embed.patch_size[0])

    def set_indices(self, indices: Sequence[int]) -> None:
        """Take the outputs of these blocks (negative counts from the end of the full depth)."""
        depth = self.depth
        self.indices = [i % depth for i in indices]
        if max(self.indices) >= len(self.model.blocks):
            raise ValueError(f"block {max(self.indices)} was pruned; build a new encoder for deeper indices")
        self._prune()

    def _prune(self) -> None:
        """Drop the final norm (unless used), the head and blocks after the deepest one taken:
        parameters without gradients make DDP fail (:mod:`rs_vit.models.prune`)."""
        from rs_vit.models.prune import prune_timm_encoder

        self.depth = getattr(self, "depth", len(self.model.blocks))
        prune_timm_encoder(self.model, self.indices, keep_norm=self.norm)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of the selected blocks, shallow to deep."""
        feats = self.model.forward_intermediates(x, indices=self.indices, norm=self.norm, output_fmt="NCHW",
                                                 intermediates_only=True, stop_early=True)
        return list(feats)


def mla_indices(depth: int) -> list[int]:
    """Four evenly spaced block indices ending with the last (SETR-MLA: 6, 12, 18, 24 of 24)."""
    return [depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1, depth - 1]


class NaiveHead(nn.Module):
    """SETR-naive: 1×1 conv → BN → ReLU → 1×1 conv."""

    def __init__(self, dim: int, num_classes: int, channels: int = 256) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.block = _cbr(dim, channels, 1)
        self.cls = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.norm(feats[-1].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.cls(self.block(x))


class PUPHead(nn.Module):
    """SETR-PUP: progressive ×2 upsampling stages, each conv3×3 → BN → ReLU."""

    def __init__(self, dim: int, num_classes: int, channels: int = 256, stages: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.stages = nn.ModuleList([_cbr(dim if i == 0 else channels, channels) for i in range(stages)])
        self.cls = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.norm(feats[-1].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        for stage in self.stages:
            x = F.interpolate(stage(x), scale_factor=2, mode="bilinear", align_corners=False)
        return self.cls(x)


class MLAHead(nn.Module):
    """SETR-MLA: project four levels, aggregate top-down, refine, upsample ×4, concat, classify."""

    def __init__(self, dim: int, num_classes: int, channels: int = 128, levels: int = 4) -> None:
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(levels)])
        self.proj = nn.ModuleList([_cbr(dim, channels * 2, 1) for _ in range(levels)])
        self.agg = nn.ModuleList([_cbr(channels * 2, channels * 2) for _ in range(levels)])
        self.refine = nn.ModuleList([nn.Sequential(_cbr(channels * 2, channels), _cbr(channels, channels))
                                     for _ in range(levels)])
        self.cls = nn.Conv2d(channels * levels, num_classes, 3, padding=1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        proj = [p(n(f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
                for f, n, p in zip(feats, self.norms, self.proj)]
        agg: list[torch.Tensor] = []
        acc = None
        for i in reversed(range(len(proj))):  # deepest first, then add shallower levels
            acc = proj[i] if acc is None else acc + proj[i]
            agg.insert(0, self.agg[i](acc))
        outs = [F.interpolate(r(a), scale_factor=4, mode="bilinear", align_corners=False)
                for a, r in zip(agg, self.refine)]
        return self.cls(torch.cat(outs, dim=1))


HEADS = {"naive": NaiveHead, "pup": PUPHead, "mla": MLAHead}


class SETR(nn.Module):
    """SETR: a token encoder plus one of the :data:`HEADS`, logits upsampled to the input size."""

    def __init__(self, encoder_name: str, in_channels: int, num_classes: int, head: str = "pup", *,
                 img_size: int | None = None, drop_path_rate: float = 0.0,
                 decoder_channels: int | None = None) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown SETR head {head!r}; choose one of {', '.join(HEADS)}")
        self.encoder = TimmTokenEncoder(encoder_name, in_channels, (-1,), img_size=img_size,
                                        drop_path_rate=drop_path_rate)
        if head == "mla":
            self.encoder.set_indices(mla_indices(self.encoder.depth))
        kw = {"channels": decoder_channels} if decoder_channels else {}
        self.decode_head = HEADS[head](self.encoder.embed_dim, num_classes, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.decode_head(self.encoder(x))
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits
