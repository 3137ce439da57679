"""TransUNet-style hybrid (Chen et al., 2021): CNN stages keep high-resolution skip features, a
transformer works on the stride-16 tokens, a U-Net decoder restores sharp boundaries.

The CNN is a timm ResNet (``features_only``), the transformer is timm ViT blocks (so ImageNet
ViT weights fit them); the decoder is a small U-Net written here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class TokenTransformer(nn.Module):
    """ViT blocks over a feature map: 1×1 patch embedding, learned position embedding (resampled
    to the grid at run time), ``depth`` blocks, final norm. Keys follow timm's ViT layout."""

    def __init__(self, in_dim: int, dim: int = 384, depth: int = 8, heads: int = 6,
                 grid: int = 14, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        self.grid = grid
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_dim, dim, 1)
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid, dim) * 0.02)
        self.num_prefix_tokens = 0
        dpr = [drop_path_rate * i / max(1, depth - 1) for i in range(depth)]
        self.blocks = nn.Sequential(*[Block(dim, heads, qkv_bias=True, drop_path=p) for p in dpr])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from timm.layers import resample_abs_pos_embed

        x = self.patch_embed.proj(x)
        b, d, h, w = x.shape
        pos = self.pos_embed
        if (h, w) != (self.grid, self.grid):
            pos = resample_abs_pos_embed(pos, [h, w], [self.grid, self.grid], num_prefix_tokens=0)
        t = self.norm(self.blocks(x.flatten(2).transpose(1, 2) + pos))
        return t.transpose(1, 2).reshape(b, d, h, w)


class TransUNet(nn.Module):
    """ResNet stages (strides 2, 4, 8, 16) → transformer on stride-16 tokens → U-Net decoder."""

    def __init__(self, cnn: str, in_channels: int, num_classes: int, *, dim: int = 384, depth: int = 8,
                 heads: int = 6, decoder_channels: tuple[int, ...] = (256, 128, 64, 32),
                 drop_path_rate: float = 0.0, img_size: int = 224) -> None:
        super().__init__()
        import timm

        self.cnn = timm.create_model(cnn, pretrained=False, features_only=True, out_indices=(0, 1, 2, 3),
                                     in_chans=in_channels)
        chans = self.cnn.feature_info.channels()
        self.transformer = TokenTransformer(chans[-1], dim, depth, heads, grid=max(1, img_size // 16),
                                            drop_path_rate=drop_path_rate)
        c0, c1, c2, c3 = decoder_channels
        self.bottleneck = _conv(dim, c0)
        self.up = nn.ModuleList([
            nn.Sequential(_conv(c0 + chans[2], c1), _conv(c1, c1)),   # stride 8
            nn.Sequential(_conv(c1 + chans[1], c2), _conv(c2, c2)),   # stride 4
            nn.Sequential(_conv(c2 + chans[0], c3), _conv(c3, c3)),   # stride 2
        ])
        self.final = nn.Sequential(_conv(c3, c3), nn.Conv2d(c3, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f0, f1, f2, f3 = self.cnn(x)
        y = self.bottleneck(self.transformer(f3))
        for skip, block in zip((f2, f1, f0), self.up):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.final(y)
