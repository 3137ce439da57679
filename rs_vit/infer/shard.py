"""Sharding scenes across the ranks of a ``torchrun`` launch (no scheduler of our own).

``torchrun --nproc-per-node 4 -m rs_vit predict scenes/*.tif --out-dir masks/`` starts four
processes; each reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from its environment, takes
every ``WORLD_SIZE``-th scene starting at its rank, and runs on ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from rs_vit.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Rank:
    """This process's place in a launch (``world == 1`` when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def current_rank(env: Mapping[str, str] | None = None) -> Rank:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as set by torchrun.

    Raises:
        ConfigError: when the variables are inconsistent.
    """
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError("RANK / WORLD_SIZE / LOCAL_RANK must be integers; launch with torchrun.") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"Inconsistent torchrun environment RANK={rank} WORLD_SIZE={world}; launch with torchrun.")
    return Rank(rank, world, local)


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
