"""Segmentation losses from segmentation-models-pytorch, combined by a small spec string.

``"ce"``, ``"dice"``, ``"focal"``, ``"lovasz"`` or a weighted sum such as ``"ce+dice"`` or
``"ce:1.0+lovasz:0.5"``. Every term ignores ``ignore_index`` pixels. Class weights reach the
cross-entropy, Dice and focal terms (smp's Lovász loss has none: :attr:`SegLoss.unweighted`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# The spec grammar lives with the config (loading a YAML must not import torch); re-exported here
# for one release (docs/changelog.md).
from rs_vit.config import LOSSES, parse_loss_spec  # noqa: F401


class SegLoss(nn.Module):
    """A weighted sum of smp losses on ``(B, K, H, W)`` logits and ``(B, H, W)`` labels."""

    def __init__(self, spec: str = "ce", *, ignore_index: int = 255,
                 class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        from segmentation_models_pytorch import losses as L

        self.terms = parse_loss_spec(spec)
        self.ignore_index = ignore_index
        cw = [float(v) for v in class_weights] if class_weights else None
        #: terms that ``class_weights`` cannot reach (smp's Lovász loss takes no class weights)
        self.unweighted = [name for name, _ in self.terms if cw and name == "lovasz"]
        mods: dict[str, nn.Module] = {}
        for name, _ in self.terms:
            if name == "ce":
                w = torch.tensor(cw, dtype=torch.float32) if cw else None
                mods[name] = nn.CrossEntropyLoss(weight=w, ignore_index=ignore_index)
            elif name == "dice":
                mods[name] = L.DiceLoss("multiclass", ignore_index=ignore_index, class_weights=cw)
            elif name == "focal":
                mods[name] = L.FocalLoss("multiclass", ignore_index=ignore_index, class_weights=cw)
            elif name == "lovasz":
                mods[name] = L.LovaszLoss("multiclass", ignore_index=ignore_index)
        self.mods = nn.ModuleDict(mods)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The combined loss in float32 (0 when every pixel is ignored)."""
        logits = logits.float()
        if not bool((target != self.ignore_index).any()):
            return logits.sum() * 0.0
        total = logits.new_zeros(())
        for name, w in self.terms:
            total = total + w * self.mods[name](logits, target)
        return total
