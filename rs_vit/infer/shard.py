"""Sharding scenes across the ranks of a ``torchrun`` launch (no scheduler of our own).

``torchrun --nproc-per-node 4 -m rs_vit predict scenes/*.tif --out-dir masks/`` starts four
processes; each reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from its environment, takes
every ``WORLD_SIZE``-th scene starting at its rank, and runs on ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import torch

from rs_vit.device import Rank, current_rank

__all__ = ["Rank", "current_rank", "rank_device", "shard"]

T = TypeVar("T")


def shard(items: Sequence[T], rank: Rank | None = None) -> list[T]:
    """This rank's share of ``items``: ``items[rank::world]``."""
    r = rank or current_rank()
    return list(items[r.rank :: r.world])


def rank_device(device: str, rank: Rank | None = None) -> str:
    """``cuda:LOCAL_RANK`` under a multi-process launch when ``device`` is ``auto``/``cuda`` and
    CUDA exists; ``device`` unchanged otherwise."""
    r = rank or current_rank()
    if r.distributed and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{r.local_rank % max(1, torch.cuda.device_count())}"
    return device
