"""Segmenter (Strudel et al., ICCV 2021): a ViT/DeiT encoder with the mask-transformer decoder.

Learnable class embeddings are processed jointly with the patch tokens by a few transformer
blocks; each class's mask is the scalar product of the L2-normalised patch and class embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rs_vit.models.setr import TimmTokenEncoder


class MaskTransformer(nn.Module):
    """The Segmenter decoder: ``(B, D, h, w)`` patch features → ``(B, K, h, w)`` mask logits."""

    def __init__(self, enc_dim: int, num_classes: int, *, d_model: int | None = None,
                 n_layers: int = 2, n_heads: int | None = None, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        d = d_model or enc_dim
        heads = n_heads or max(1, d // 64)
        self.num_classes = num_classes
        self.scale = d ** -0.5
        self.proj_dec = nn.Linear(enc_dim, d)
        self.cls_emb = nn.Parameter(torch.randn(1, num_classes, d) * 0.02)
        dpr = [drop_path_rate * i / max(1, n_layers - 1) for i in range(n_layers)]
        self.blocks = nn.ModuleList([Block(d, heads, drop_path=p) for p in dpr])
        self.decoder_norm = nn.LayerNorm(d)
        self.proj_patch = nn.Parameter(self.scale * torch.randn(d, d))
        self.proj_classes = nn.Parameter(self.scale * torch.randn(d, d))
        self.mask_norm = nn.LayerNorm(num_classes)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        b, _, h, w = feat.shape
        x = self.proj_dec(feat.flatten(2).transpose(1, 2))
        x = torch.cat([x, self.cls_emb.expand(b, -1, -1)], dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        patches, cls = x[:, : h * w] @ self.proj_patch, x[:, h * w:] @ self.proj_classes
        patches = F.normalize(patches, dim=-1)
        cls = F.normalize(cls, dim=-1)
        masks = self.mask_norm(patches @ cls.transpose(1, 2))  # (B, hw, K)
        return masks.transpose(1, 2).reshape(b, self.num_classes, h, w)


class Segmenter(nn.Module):
    """Segmenter: ViT/DeiT encoder (final norm applied) + :class:`MaskTransformer`."""

    def __init__(self, encoder_name: str, in_channels: int, num_classes: int, *,
                 img_size: int | None = None, drop_path_rate: float = 0.0, n_layers: int = 2,
                 d_model: int | None = None) -> None:
        super().__init__()
        self.encoder = TimmTokenEncoder(encoder_name, in_channels, (-1,), img_size=img_size,
                                        drop_path_rate=drop_path_rate, norm=True)
        self.decoder = MaskTransformer(self.encoder.embed_dim, num_classes, d_model=d_model,
                                       n_layers=n_layers, drop_path_rate=drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        masks = self.decoder(self.encoder(x)[-1])
        return F.interpolate(masks, size=x.shape[-2:], mode="bilinear", align_corners=False)
