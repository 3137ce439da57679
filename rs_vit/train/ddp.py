"""Data-parallel training with PyTorch DDP.

Launch with torchrun (one process per GPU; several nodes work the same way)::

    torchrun --nproc_per_node=4 -m rs_vit train --config run.yaml

``train`` sees ``WORLD_SIZE > 1`` in the environment, joins the process group (NCCL on GPUs,
gloo on CPUs), gives each rank ``batch_size / world_size`` windows of every global batch (rank r
takes items r, r + world, … of the same seeded global order, so the global batch is the same set
of windows as in a single process), sums validation confusion matrices across ranks, and lets
only rank 0 write. :func:`launch_local` starts N CPU processes from Python (tests, laptops).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import torch
import torch.distributed as dist

from rs_vit.device import Rank, current_rank


def init_distributed(device_type: str) -> Rank:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``); else a single process."""
    r = current_rank()
    if r.distributed and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(r.local_rank)
        dist.init_process_group(backend=backend)
    return r if r.distributed else Rank()


def all_reduce_sum(t: torch.Tensor, info: Rank) -> torch.Tensor:
    """Sum a tensor over ranks (a no-op in one process)."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(info: Rank) -> None:
    """Wait for every rank (a no-op in one process)."""
    if info.distributed:
        dist.barrier()


def cleanup(info: Rank) -> None:
    """Leave the process group if this module joined one."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, config_data: dict[str, Any], kwargs: dict[str, Any]) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)})
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    from rs_vit.config import RunConfig
    from rs_vit.train.loop import train

    config = RunConfig.model_validate(config_data)
    train(config, log=print if rank == 0 else (lambda _m: None), progress=False, **kwargs)


def launch_local(config: Any, nproc: int, **kwargs: Any) -> None:
    """Train with ``nproc`` local CPU processes (gloo) and wait for them; rank 0 writes the run.

    Args:
        config: a :class:`~rs_vit.config.RunConfig`.
        nproc: number of processes.
        **kwargs: passed to :func:`rs_vit.train.loop.train` (e.g. ``resume_dir``).
    """
    import torch.multiprocessing as mp

    # plain JSON-able data, validated in Python mode like a loaded YAML (pydantic's JSON mode
    # refuses the Path objects that the config's "before" validators produce)
    mp.spawn(_worker, args=(nproc, _free_port(), config.model_dump(mode="json"), kwargs), nprocs=nproc, join=True)
