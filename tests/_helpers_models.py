"""Helpers for the model-zoo and band-adaptation tests (no fixtures in conftest: the lead owns it)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rs_vit.io.bands import preset_names

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RS_VIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
S2 = preset_names("sentinel2_l1c")  # coastal, blue, green, red, ... in file order
UKIS = SHARED / "ukis_csmask"
SPAIN = SHARED / "sen1floods11" / "Spain_7370579_S2Hand.tif"


def save_state(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Write a state dict as safetensors (``.safetensors``) or a plain torch file."""
    state = {k: v.detach().contiguous().clone() for k, v in state.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def distinct_rgb_kernel(out_ch: int = 8, k: int = 3) -> torch.Tensor:
    """An RGB kernel whose channels are told apart by value: red 1, green 2, blue 3 (+ noise)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(out_ch, 3, k, k, generator=g) * 0.01
    for i in range(3):
        w[:, i] += float(i + 1)
    return w
