"""DDP on the CPU: 2 gloo processes give the validation metrics of 1 process with the same total batch."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from _helpers_train import tiny_config, write_scene
from rs_vit.config import parse_config
from rs_vit.train.ddp import launch_local
from rs_vit.train.loop import train


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path: Path) -> None:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available in this build")
    paths = write_scene(tmp_path / "d", nodata_corner=False)  # no ignored pixels: per-rank means add up
    d = tiny_config(paths, tmp_path / "one", epochs=2, steps_per_epoch=2, batch_size=4, precision="fp32",
                    tensorboard=False)
    d["model"]["name"] = "segmenter_vit_tiny"  # LayerNorm only: no per-rank BatchNorm statistics
    one = train(parse_config(d), log=lambda _m: None, progress=False)
    d["train"]["out_dir"] = str(tmp_path / "two")
    launch_local(parse_config(d), 2)
    rows1 = list(csv.DictReader(open(one.run_dir / "metrics.csv")))
    rows2 = list(csv.DictReader(open(tmp_path / "two" / "metrics.csv")))
    assert len(rows1) == len(rows2) == 2
    for a, b in zip(rows1, rows2):
        assert float(b["train_loss"]) == pytest.approx(float(a["train_loss"]), rel=1e-3)
        assert float(b["val_loss"]) == pytest.approx(float(a["val_loss"]), rel=1e-3)
        assert float(b["val_miou"]) == pytest.approx(float(a["val_miou"]), abs=1e-3)
    assert (tmp_path / "two" / "best" / "model.safetensors").is_file()
