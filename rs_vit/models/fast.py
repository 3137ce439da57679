"""Faster inference for decoders whose stock forward wastes work, with the same parameters.

smp's SegFormer decoder projects each encoder stage to 256 channels, upsamples all four to 1/4
of the input, concatenates them (1 024 channels) and fuses them with a 1×1 convolution and a
batch norm. Every step before the ReLU is linear, and bilinear upsampling is a per-channel
weighted mean, so in evaluation mode the projection, the slice of the fusing convolution and the
batch norm fold into one small matrix per stage, applied at the stage's own resolution:

    relu(BN(W · cat(up(A_i f_i + a_i)))) = relu(Σ_i up(M_i f_i) + b)

with ``M_i = diag(s) W_i A_i``, ``s = γ / sqrt(σ² + ε)`` and one bias ``b``. The 1 024-channel
tensor at 1/4 resolution is never built. Same result up to floating-point rounding (tested), about
2–3× faster decoding on a CPU (docs/benchmarks.md); training keeps the stock forward, because the
batch norm uses batch statistics there. The state dict is unchanged, so checkpoints load either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _segformer_decoder_cls() -> type[nn.Module] | None:
    try:
        from segmentation_models_pytorch.decoders.segformer.decoder import SegformerDecoder
    except ImportError:  # pragma: no cover - smp layout changed
        return None
    return SegformerDecoder


def _folded_parts(decoder: nn.Module) -> tuple[nn.Conv2d, nn.BatchNorm2d | None, nn.Module] | None:
    """(1×1 conv, batch norm or None, activation) of the fuse stage, or None when its layout is
    not one this module knows how to fold."""
    fuse = list(decoder.fuse_stage.children()) if isinstance(decoder.fuse_stage, nn.Sequential) else []
    if len(fuse) != 3:
        return None
    conv, norm, act = fuse
    if not (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.groups == 1):
        return None
    if isinstance(norm, nn.Identity):
        norm = None
    elif not isinstance(norm, nn.BatchNorm2d) or not norm.track_running_stats:
        return None
    if not isinstance(act, (nn.ReLU, nn.Identity)):
        return None
    return conv, norm, act


class _FoldedSegformerForward(nn.Module):
    """Mixin forward for smp's ``SegformerDecoder``: the folded path in evaluation mode."""

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        parts = _folded_parts(self)
        if self.training or parts is None:
            return super().forward(features)  # type: ignore[misc]
        conv, norm, act = parts
        target = [d // 4 for d in features[0].shape[2:]]
        feats = features[2:] if features[1].size(1) == 0 else features[1:]
        feats = feats[::-1]
        w = conv.weight.float().flatten(1)  # (out, n_stages * seg)
        bias = conv.bias.float() if conv.bias is not None else torch.zeros(w.shape[0], device=w.device)
        scale = torch.ones_like(bias)
        if norm is not None:
            assert norm.running_var is not None and norm.running_mean is not None
            scale = torch.rsqrt(norm.running_var.float() + norm.eps)
            if norm.weight is not None:
                scale = scale * norm.weight.float()
            bias = (bias - norm.running_mean.float()) * scale
            if norm.bias is not None:
                bias = bias + norm.bias.float()
        seg = w.shape[1] // len(self.mlp_stage)
        out: torch.Tensor | None = None
        for i, (mlp, f) in enumerate(zip(self.mlp_stage, feats)):
            w_i = w[:, i * seg:(i + 1) * seg]
            m = (scale[:, None] * w_i) @ mlp.linear.weight.float()  # (out, C_i)
            bias = bias + scale * (w_i @ mlp.linear.bias.float())
            if not torch.is_autocast_enabled(f.device.type):
                m = m.to(f.dtype)
            # channels-last: CPU bilinear upsampling is ~9x faster in that layout than in NCHW
            y = F.conv2d(f.contiguous(memory_format=torch.channels_last), m[:, :, None, None])
            if list(y.shape[2:]) != target:
                y = F.interpolate(y, size=target, mode="bilinear", align_corners=False)
            out = y if out is None else out.add_(y)
        assert out is not None
        out.add_(bias.to(out.dtype)[None, :, None, None])
        return act(out)


def speed_up(model: nn.Module) -> nn.Module:
    """Give known slow decoders inside ``model`` their folded evaluation path (in place).

    Only the class of the decoder changes (to a subclass with the same parameters and state
    dict); training mode still runs the stock forward."""
    base = _segformer_decoder_cls()
    if base is None:
        return model
    for mod in model.modules():
        if type(mod) is base and _folded_parts(mod) is not None:
            mod.__class__ = _fast_class(base)
    return model


_FAST: dict[type, type] = {}


def _fast_class(base: type[nn.Module]) -> type[nn.Module]:
    if base not in _FAST:
        _FAST[base] = type(f"Fast{base.__name__}", (_FoldedSegformerForward, base), {})
    return _FAST[base]
