"""A crash between the two renames of save_checkpoint never loses the previous checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rs_vit.models.checkpoint import ModelSpec, load_model, read_spec, save_checkpoint
from rs_vit.models.registry import create_model


def _spec() -> ModelSpec:
    return ModelSpec(name="unet_resnet18", in_channels=2, num_classes=2, bands=["red", "nir"],
                     mean=[0.0, 0.0], std=[1.0, 1.0], classes=[{"id": 0, "name": "a"}, {"id": 1, "name": "b"}],
                     tile_size=32)


def test_checkpoint_left_aside_by_a_crash_is_restored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = create_model("unet_resnet18", in_channels=2, num_classes=2)
    final = save_checkpoint(tmp_path / "last", model, _spec())
    before = {k: v.clone() for k, v in model.state_dict().items()}

    # crash inside the next save, after the previous folder was moved aside and before the new one lands
    real_replace = os.replace
    calls = {"n": 0}

    def crashing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(final, create_model("unet_resnet18", in_channels=2, num_classes=2), _spec())
    monkeypatch.setattr(os, "replace", real_replace)
    assert not final.exists()
    assert list(tmp_path.glob(".last.old-*"))

    spec = read_spec(final)  # restores the previous, complete checkpoint
    assert final.is_dir() and spec.name == "unet_resnet18"
    loaded, _ = load_model(final)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not list(tmp_path.glob(".last.*"))
