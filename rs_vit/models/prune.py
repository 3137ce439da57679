"""Drop the parts of a timm encoder that a segmentation model never runs.

A timm ViT/DeiT/Mixer used as a feature extractor (``forward_intermediates(...,
intermediates_only=True)``) never runs its final norm (unless asked), its classifier head or the
blocks after the deepest one taken. Parameters that get no gradient make DistributedDataParallel
fail ("parameters that were not used in producing loss"), cost memory and optimiser state, and
are saved in every checkpoint. :func:`prune_timm_encoder` removes them with timm's own
``prune_intermediate_layers``.

Checkpoints written before the pruning hold the removed tensors; they stay loadable: the pruned
module drops those keys when a state dict is loaded into it (a ``load_state_dict`` pre-hook), and
:func:`obsolete_keys` lists them for loaders that compare keys themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

#: Attribute of a pruned timm model: the state-dict keys (relative to it) that pruning removed.
DROPPED_ATTR = "rs_vit_dropped_keys"


def prune_timm_encoder(model: nn.Module, indices: Sequence[int], *, keep_norm: bool = False) -> list[str]:
    """Remove what ``model.forward_intermediates(x, indices=indices, intermediates_only=True)``
    does not use: the head (and ``fc_norm``), the final norm unless ``keep_norm``, and the blocks
    after the deepest index.

    Args:
        model: a timm model with ``prune_intermediate_layers`` (ViT, DeiT, Mixer, …).
        indices: the block indices whose outputs are taken (negative counts from the end).
        keep_norm: keep the final norm (when the features are taken with ``norm=True``).

    Returns:
        The removed state-dict keys, relative to ``model``.
    """
    before = list(model.state_dict())
    model.prune_intermediate_layers(list(indices), prune_norm=not keep_norm, prune_head=True)
    after = set(model.state_dict())
    dropped = [k for k in before if k not in after]
    previous = getattr(model, DROPPED_ATTR, None)
    if previous is None:
        model.register_load_state_dict_pre_hook(_drop_obsolete)
    setattr(model, DROPPED_ATTR, frozenset(dropped) | (previous or frozenset()))
    return dropped


def _drop_obsolete(module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, *_: Any) -> None:
    """``load_state_dict`` pre-hook: forget tensors of parts removed by :func:`prune_timm_encoder`."""
    for key in getattr(module, DROPPED_ATTR, ()):
        state_dict.pop(prefix + key, None)


def obsolete_keys(model: nn.Module) -> set[str]:
    """Full state-dict keys of ``model`` that older checkpoints may hold for parts since pruned."""
    out: set[str] = set()
    for name, mod in model.named_modules():
        for key in getattr(mod, DROPPED_ATTR, ()):
            out.add(f"{name}.{key}" if name else key)
    return out
