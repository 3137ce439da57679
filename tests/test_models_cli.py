"""``rs-vit models`` and ``rs-vit import-weights`` through the CLI."""

from __future__ import annotations

import json

import torch
from _helpers_models import save_state
from typer.testing import CliRunner

from rs_vit.cli import app
from rs_vit.models import create_model
from rs_vit.models.checkpoint import load_model, read_spec

runner = CliRunner()


def test_models_table_lists_families_params_and_flops() -> None:
    res = runner.invoke(app, ["models", "--markdown"])
    assert res.exit_code == 0, res.output
    assert "| `segformer_b0` | segformer | 3.7 |" in res.output
    assert "= 224" in res.output and "multiples of 16" in res.output
    res = runner.invoke(app, ["models", "setr_*", "--family", "mixer", "--markdown"])
    assert res.exit_code == 0 and "setr_pup_mixer_s16" in res.output and "segformer" not in res.output


def test_import_weights_and_retarget(tmp_path) -> None:
    torch.manual_seed(0)
    src = create_model("unet_resnet18", in_channels=4, num_classes=2)
    weights = save_state(src.state_dict(), tmp_path / "foreign.pth")
    desc = {"model": "unet_resnet18", "bands": ["Red", "green", "blue", "NIR"], "mean": [0.1] * 4, "std": [0.2] * 4,
            "scale": 10000, "classes": ["land", {"name": "water", "color": [0, 0, 255]}], "tile_size": 128}
    (tmp_path / "d.yaml").write_text(json.dumps(desc))
    res = runner.invoke(app, ["import-weights", str(weights), "-d", str(tmp_path / "d.yaml"), "-o", str(tmp_path / "ck")])
    assert res.exit_code == 0, res.output
    spec = read_spec(tmp_path / "ck")
    assert spec.bands == ["red", "green", "blue", "nir"]
    assert spec.mean == [1000.0] * 4 and spec.std == [2000.0] * 4 and spec.class_names == ["land", "water"]
    model, _ = load_model(tmp_path / "ck")
    assert torch.equal(model.encoder.conv1.weight, src.encoder.conv1.weight)
    res = runner.invoke(app, ["import-weights", str(weights), "-d", str(tmp_path / "d.yaml"), "-o", str(tmp_path / "ck")])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = runner.invoke(app, ["import-weights", str(tmp_path / "ck"), "-o", str(tmp_path / "ck2"), "--to-bands",
                              ",".join(spec.bands[::-1] + ["swir16"])])
    assert res.exit_code == 0, res.output
    model2, spec2 = load_model(tmp_path / "ck2")
    assert spec2.bands == spec.bands[::-1] + ["swir16"]
    w = model2.encoder.conv1.weight
    assert torch.equal(w[:, 0], src.encoder.conv1.weight[:, 3]) and w[:, 4].abs().sum() == 0


def test_import_weights_refuses_misfits(tmp_path) -> None:
    weights = save_state(create_model("unet_resnet18", in_channels=3, num_classes=2).state_dict(), tmp_path / "w.safetensors")
    desc = {"model": "unet_resnet34", "bands": ["red", "green", "blue"], "mean": [0] * 3, "std": [1] * 3,
            "classes": ["a", "b"]}
    (tmp_path / "d.yaml").write_text(json.dumps(desc))
    res = runner.invoke(app, ["import-weights", str(weights), "-d", str(tmp_path / "d.yaml"), "-o", str(tmp_path / "ck")])
    assert res.exit_code == 2 and "another architecture" in res.output
    (tmp_path / "bad.yaml").write_text(json.dumps({**desc, "std": [1, 1]}))
    res = runner.invoke(app, ["import-weights", str(weights), "-d", str(tmp_path / "bad.yaml"), "-o", str(tmp_path / "ck")])
    assert res.exit_code == 2 and "one entry per band" in res.output
