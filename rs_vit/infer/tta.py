"""D4 test-time augmentation: the 8 flips / 90° rotations of a square tile, inverted exactly."""

from __future__ import annotations

from collections.abc import Callable

import torch

from rs_vit.errors import ConfigError

#: (number of 90° rotations, horizontal flip first) for each of the 8 elements of D4.
D4: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))
TTA_MODES = ("none", "flip", "d4")


def transforms(mode: str | bool | None) -> tuple[tuple[int, bool], ...]:
    """The D4 elements used by a TTA mode: ``none`` (identity), ``flip`` (identity + horizontal
    flip) or ``d4`` (all 8). ``True`` means ``d4``.

    Raises:
        ConfigError: for an unknown mode.
    """
    if mode in (None, False, "none", ""):
        return ((0, False),)
    if mode is True or mode == "d4":
        return D4
    if mode == "flip":
        return ((0, False), (0, True))
    raise ConfigError(f"Unknown --tta {mode!r}; choose one of {', '.join(TTA_MODES)}.")


def apply(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Apply a D4 element to the last two axes: flip (left–right) first, then rotate by k·90°."""
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


def invert(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Undo :func:`apply` on a model output with the same spatial layout."""
    if k:
        y = torch.rot90(y, -k, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if flip else y


def tta_probs(
    predict: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    mode: str | bool | None | tuple[tuple[int, bool], ...],
) -> torch.Tensor:
    """Mean of ``predict`` (which returns per-pixel probabilities) over the TTA transforms (a
    mode or the transforms themselves), each inverted back to the input's orientation before
    averaging."""
    ts = mode if isinstance(mode, tuple) else transforms(mode)
    out: torch.Tensor | None = None
    for k, flip in ts:
        p = invert(predict(apply(x, k, flip)), k, flip)
        out = p if out is None else out.add_(p)
    assert out is not None
    return out.div_(len(ts)) if len(ts) > 1 else out
