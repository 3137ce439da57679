"""Optimiser and schedule: AdamW (or SGD) with optional layer-wise learning-rate decay, linear
warm-up and cosine decay to ``min_lr_ratio × lr``."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch
from torch import nn

from rs_vit.config import TrainConfig

_NO_DECAY = re.compile(r"(bias|norm|bn|pos_embed|cls_token|relative_position|dist_token)", re.I)


def encoder_layer_ids(model: nn.Module) -> tuple[dict[str, int], int]:
    """Depth id of every parameter: encoder parameters are grouped by their module path up to the
    first numeric index (``encoder.block1.0``, ``encoder.layers.3``…), numbered in order of
    appearance from 0 (the stem); everything outside the encoder gets the top id.

    Returns:
        ``(ids, top)`` with ``top`` the id of the decoder/head.
    """
    ids: dict[str, int] = {}
    keys: dict[str, int] = {}
    for name, _ in model.named_parameters():
        if not name.startswith("encoder."):
            continue
        parts = name.split(".")
        cut = next((i for i, p in enumerate(parts) if p.isdigit()), len(parts) - 1)
        key = ".".join(parts[: cut + 1])
        ids[name] = keys.setdefault(key, len(keys))
    top = len(keys)
    for name, _ in model.named_parameters():
        ids.setdefault(name, top)
    return ids, top


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW/SGD with no weight decay on biases and norms, and layer-wise lr decay when set."""
    ids, top = encoder_layer_ids(model) if cfg.layer_decay else ({}, 0)
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = cfg.layer_decay ** (top - ids[name]) if cfg.layer_decay else 1.0
        wd = 0.0 if (p.ndim <= 1 or _NO_DECAY.search(name)) else cfg.weight_decay
        groups.setdefault((scale, wd), []).append(p)
    param_groups = [{"params": ps, "lr": cfg.lr * s, "weight_decay": wd, "lr_scale": s}
                    for (s, wd), ps in sorted(groups.items(), key=lambda kv: (-kv[0][0], kv[0][1]))]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(param_groups, lr=cfg.lr, betas=(0.9, 0.999))


def lr_lambda(warmup: int, total: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps, then cosine decay from 1 to ``min_ratio`` at ``total``."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return min_ratio + (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return f
