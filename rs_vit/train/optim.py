"""Optimiser and schedule: AdamW (or SGD) with optional layer-wise learning-rate decay, linear
warm-up and cosine decay to ``min_lr_ratio × lr``."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from rs_vit.config import TrainConfig

_NO_DECAY = re.compile(r"(bias|norm|bn|pos_embed|cls_token|relative_position|dist_token)", re.I)


#: Attributes holding a model's encoder (TransUNet: its CNN stem, then its transformer).
_ENCODER_PARTS = ("encoder", "backbone", "cnn", "transformer")
#: A stage-numbered module outside the stage's blocks (SegFormer's ``patch_embed2``, ``norm2``).
_STAGE_PART = re.compile(r"^(patch_embed|downsample|norm)(\d+)$")


def encoder_layer_ids(model: nn.Module) -> tuple[dict[str, int], int]:
    """Depth id of every parameter, for layer-wise lr decay (BEiT's rule, generalised).

    The encoder's blocks (a module path up to its first numeric index: ``blocks.3``,
    ``block2.0``, ``layers_1.blocks.0``, ``cnn.layer1.0``) are numbered 1, 2, … in order; the
    parameters before the first block (patch embedding, class token, position embedding, CNN
    stem, SegFormer's ``patch_embed1``) get 0; other non-block parameters go with the block before them (a final norm, Swin's
    downsampling), except stage-numbered ones (SegFormer's ``patch_embed2`` goes with the first
    block of ``block2``, ``norm2`` with its last). Everything outside the encoder (decoder, head)
    gets the top id, one above the last block: a ViT with 12 blocks has encoder ids 0…12, top 13.

    Returns:
        ``(ids, top)`` with ``top`` the id of the decoder/head.
    """
    prefixes = tuple(f"{a}." for a in _ENCODER_PARTS if isinstance(getattr(model, a, None), nn.Module))
    names = [n for n, _ in model.named_parameters()]
    enc = [n for n in names if n.startswith(prefixes)] if prefixes else []
    block_of: dict[str, str] = {}
    order: list[str] = []
    for name in enc:
        parts = name.split(".")
        cut = next((i for i, p in enumerate(parts) if p.isdigit()), None)
        if cut is not None:
            key = ".".join(parts[: cut + 1])
            block_of[name] = key
            if key not in order:
                order.append(key)
    level = {key: i + 1 for i, key in enumerate(order)}
    ids: dict[str, int] = {}
    prev = 0
    for name in enc:
        if name in block_of:
            prev = ids[name] = level[block_of[name]]
            continue
        stage = next((m for m in map(_STAGE_PART.match, name.split(".")) if m), None)
        if stage is not None and not (stage.group(1) != "norm" and stage.group(2) == "1"):  # patch_embed1: stem
            marker = f".block{stage.group(2)}."
            in_stage = [level[k] for k in order if marker in f".{k}."]
            if in_stage:
                ids[name] = in_stage[0] if stage.group(1) != "norm" else in_stage[-1]
                continue
        ids[name] = prev
    top = len(order) + 1
    for name in names:
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


def optimizer_step(opt: torch.optim.Optimizer, sched: Any, scaler: Any, params: Iterable[nn.Parameter],
                   grad_clip: float) -> None:
    """One optimiser step after the last micro-batch: unscale and clip (when ``grad_clip``), step
    through the grad scaler, clear the gradients, advance the schedule."""
    if grad_clip:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)
    sched.step()
