"""Device and precision selection shared by training and prediction."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from rs_vit.errors import ConfigError


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → the first CUDA GPU when present, else the CPU; ``cuda`` without a GPU is an error."""
    if device in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"Unknown device {device!r}; use auto, cpu, cuda or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"Device {device!r} was asked for but no CUDA GPU is available; use --device cpu.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise ConfigError(f"Device {device!r} does not exist: this machine has {n} CUDA GPU(s) "
                          f"(cuda:0 … cuda:{n - 1}).")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"Device {device!r} is not supported; use auto, cpu, cuda or cuda:N.")
    return dev


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None and fn():
            return True
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = full fp32)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("--precision fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU.")
        return torch.float16
    if precision != "auto":
        raise ConfigError(f"Unknown precision {precision!r}; use auto, fp32, bf16 or fp16.")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` for ``dtype``, or a no-op for full precision."""
    if dtype is None:
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


def precision_name(dtype: torch.dtype | None) -> str:
    """``"bf16"``, ``"fp16"`` or ``"fp32"`` for an autocast dtype."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Rank:
    """This process's place in a launch (``world == 1`` when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes outputs and logs."""
        return self.rank == 0


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
