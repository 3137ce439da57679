"""Training state for ``--resume``: optimiser, scheduler, scaler, epoch, best metric, history,
early-stopping counter and every RNG state, stored as ``last/train_state.pt``.

The file holds only tensors, numbers, strings, lists and dicts, and is read with
``torch.load(weights_only=True)``: loading it never unpickles arbitrary objects.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rs_vit.errors import CheckpointError

STATE_FILE = "train_state.pt"
STATE_VERSION = 1


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states as plain tensors and lists."""
    version, py_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(py_state), "gauss": gauss},
        "numpy": {"name": name, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def dump_train_state(*, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any, epoch: int,
                     best_miou: float, best_epoch: int, history: list[dict[str, Any]],
                     stale_epochs: int) -> bytes:
    """Serialise the training state to bytes (written into the ``last/`` checkpoint)."""
    buf = io.BytesIO()
    torch.save({
        "version": STATE_VERSION, "epoch": epoch, "best_miou": best_miou, "best_epoch": best_epoch,
        "stale_epochs": stale_epochs, "history": history, "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": rng_state(),
    }, buf)
    return buf.getvalue()


def load_train_state(run_dir: str | Path) -> dict[str, Any]:
    """Read ``RUN_DIR/last/train_state.pt`` safely.

    Raises:
        CheckpointError: when the run has no (readable) training state.
    """
    from rs_vit.models.checkpoint import recover_checkpoint

    p = recover_checkpoint(Path(run_dir) / "last") / STATE_FILE
    if not p.is_file():
        raise CheckpointError(
            f"{run_dir}: has no last/{STATE_FILE}, so it cannot be resumed; give the run directory "
            "of an rs-vit training run that finished at least one epoch."
        )
    from rs_vit.models.files import torch_load_safely

    state = torch_load_safely(p, error=CheckpointError)  # empty, truncated, or holding code: one line
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{p}: unknown training-state version; resume with the rs-vit that wrote it.")
    return state
