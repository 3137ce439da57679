"""rs-vit compare: a tiny grid (2 models × 1 setting) trains, predicts, evaluates and tabulates;
a second run re-runs nothing; a missing cell result re-runs only that cell's evaluation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rs_vit.cli import app
from rs_vit.errors import ConfigError
from rs_vit.evaluate.compare import load_grid, plan_grid, run_grid
from tests._helpers_evaluate import make_scene

runner = CliRunner()


def _grid(folder: Path) -> Path:
    paths = make_scene(folder / "data")
    grid = {
        "base": {
            "data": {"scenes": [{"image": "data/scene.tif", "labels": "data/labels.tif"}],
                     "classes": "data/classes.yaml", "val_fraction": 0.3},
            "train": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 2, "tile_size": 32,
                      "plots": False, "tensorboard": False},
        },
        "seed": 3,
        "axes": {"model": ["segformer_b0", "unet_resnet18"], "train_fraction": [0.5],
                 "overlap": [0.25]},
        "predict": {"batch_size": 4, "tolerance": 1},
    }
    assert paths["scene"].is_file()
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def test_plan_and_validation(tmp_path: Path):
    cells = plan_grid({"base": {}, "axes": {"model": ["a", "b"], "train_fraction": [0.25, 1.0],
                                            "overlap": [0, 0.5], "train.lr": [0.001]}})
    assert len(cells) == 8 and len({c.run for c in cells}) == 4
    assert cells[0].id == "a-frac0.25-lr=0.001-ov0-hann"
    assert cells[0].overrides == {"model.name": "a", "train.lr": 0.001}
    with pytest.raises(ConfigError, match="Did you mean 'overlap'"):
        load_grid({"base": {}, "axes": {"overlapp": [0.5]}})
    with pytest.raises(ConfigError, match="train_fraction"):
        load_grid({"base": {}, "axes": {"train_fraction": [0]}})
    with pytest.raises(ConfigError, match="base"):
        load_grid({"axes": {}})


@pytest.mark.slow
def test_tiny_grid_runs_and_resumes(tmp_path: Path):
    grid = _grid(tmp_path)
    out = tmp_path / "out"
    res = run_grid(grid, out, log=lambda s: None)
    assert len(res.ran) == 2 and not res.skipped
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["model"] for r in rows} == {"segformer_b0", "unet_resnet18"}
    for r in rows:
        assert 0.0 <= float(r["miou"]) <= 1.0 and float(r["mpx_per_s"]) > 0
        assert r["seed"] == "3" and r["train_fraction"] == "0.5" and r["overlap"] == "0.25"
        # half of the 34 training rows (48 * 0.7 rounded), times 64 columns
        assert int(r["train_pixels"]) == 17 * 64
    md = (out / "results.md").read_text()
    assert "| model |" in md and "seed 3" in md and "Machine:" in md
    for name in ("accuracy_vs_throughput", "accuracy_vs_train_size", "boundary_f1_by_model"):
        assert (out / f"{name}.png").stat().st_size > 1000
    cell = json.loads((out / "cells" / rows[0]["cell"] / "metrics.json").read_text())
    assert cell["pixels"] == 14 * 64  # the held-out rows 34..47 (nodata is in the training part)

    # resumable: a second run re-runs nothing
    again = run_grid(grid, out, log=lambda s: None)
    assert again.ran == [] and len(again.skipped) == 2
    # a lost cell result re-runs that cell's evaluation, reusing its training run
    stamp = (out / "train" / "unet_resnet18-frac0.5" / "train_result.json").stat().st_mtime_ns
    (out / "cells" / "unet_resnet18-frac0.5-ov0.25-hann" / "result.json").unlink()
    third = run_grid(grid, out, log=lambda s: None)
    assert third.ran == ["unet_resnet18-frac0.5-ov0.25-hann"]
    assert (out / "train" / "unet_resnet18-frac0.5" / "train_result.json").stat().st_mtime_ns == stamp

    (out / "results.csv").unlink()
    (out / "cells" / "segformer_b0-frac0.5-ov0.25-hann" / "result.json").unlink()
    report = run_grid(grid, out, report_only=True, log=lambda s: None)
    assert report.ran == [] and report.missing == ["segformer_b0-frac0.5-ov0.25-hann"]
    assert len(list(csv.DictReader((out / "results.csv").open()))) == 1

    res = runner.invoke(app, ["compare", str(grid), "--out-dir", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert res.output.count("done ") == 1 and "2 cells, 2 training runs" in res.output
