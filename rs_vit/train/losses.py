"""Segmentation losses from segmentation-models-pytorch, combined by a small spec string.

``"ce"``, ``"dice"``, ``"focal"``, ``"lovasz"`` or a weighted sum such as ``"ce+dice"`` or
``"ce:1.0+lovasz:0.5"``. Every term ignores ``ignore_index`` pixels. Class weights reach the
cross-entropy, Dice and focal terms (smp's Lovász loss has none: :attr:`SegLoss.unweighted`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rs_vit.errors import ConfigError, suggest

LOSSES = ("ce", "dice", "focal", "lovasz")


def parse_loss_spec(spec: str) -> list[tuple[str, float]]:
    """``"ce:1+dice:0.5"`` → ``[("ce", 1.0), ("dice", 0.5)]``; unknown names raise ConfigError."""
    terms: list[tuple[str, float]] = []
    for part in spec.replace(" ", "").lower().split("+"):
        if not part:
            raise ConfigError(f"train.loss {spec!r}: empty term; write e.g. 'ce+dice'.")
        name, _, weight = part.partition(":")
        if name not in LOSSES:
            raise ConfigError(
                f"train.loss {spec!r}: unknown loss {name!r}.{suggest(name, LOSSES)} "
                f"Choose from {', '.join(LOSSES)} (combine with '+', weight with ':')."
            )
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(f"train.loss {spec!r}: weight {weight!r} is not a number.") from None
        terms.append((name, w))
    return terms


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
