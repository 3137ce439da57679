"""The training loop: outputs, resume equivalence, options, chips, distillation, the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from _helpers_train import CLASSES, tiny_config, write_scene
from rs_vit.config import parse_config
from rs_vit.errors import CheckpointError, ConfigError, OutputError
from rs_vit.train.loop import resume, train


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_scene(tmp_path_factory.mktemp("scene"))


def _quiet(_msg: str) -> None:
    pass


class Crash(Exception):
    pass


def _history(run: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    return [{k: v for k, v in r.items() if k not in ("seconds", "windows_per_s")} for r in rows]


def test_run_writes_outputs_and_resume_matches_uninterrupted(paths: dict[str, Path], tmp_path: Path) -> None:
    d = tiny_config(paths, tmp_path / "a", epochs=2, steps_per_epoch=2)
    d["model"]["drop_path_rate"] = 0.1  # stochastic depth draws from the torch RNG: it must be restored
    d["data"]["augment"] = {"brightness": 0.05, "contrast": 0.05}
    a = train(parse_config(d), log=_quiet, progress=False)
    for name in ("config.yaml", "metrics.csv", "best/model.safetensors",
                 "last/train_state.pt", "best/rs_vit.json"):
        assert (a.run_dir / name).is_file(), name
    meta = json.loads((a.best_checkpoint / "rs_vit.json").read_text())
    assert [c["name"] for c in meta["classes"]] == [c["name"] for c in CLASSES] and len(meta["mean"]) == 6
    assert len(a.history) == 2 and 0 <= a.best_miou <= 1

    d["train"]["out_dir"] = str(tmp_path / "b")

    def crash_after_first_epoch(msg: str) -> None:
        if msg.startswith("epoch 1/2"):
            raise Crash()

    with pytest.raises(Crash):
        train(parse_config(d), log=crash_after_first_epoch, progress=False)
    assert len(_history(tmp_path / "b")) == 1
    b = resume(tmp_path / "b", log=_quiet, progress=False)
    assert _history(b.run_dir) == _history(a.run_dir)
    wa, wb = load_file(a.last_checkpoint / "model.safetensors"), load_file(b.last_checkpoint / "model.safetensors")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=1e-6)
    with pytest.raises(OutputError, match="already exists"):
        train(parse_config(d), log=_quiet, progress=False)


def test_resume_refuses_a_folder_without_state(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("{}")
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        resume(tmp_path, log=_quiet, progress=False)


def test_loop_options_and_early_stopping(paths: dict[str, Path], tmp_path: Path) -> None:
    d = tiny_config(paths, tmp_path / "o", epochs=3, steps_per_epoch=1, batch_size=2, lr=1e-9, warmup_steps=0,
                    optimizer="sgd", layer_decay=0.7, grad_accum=2, loss="ce:1+dice:0.5+lovasz:0.2+focal",
                    class_weights=[0.5, 2.0, 2.0], early_stopping=1, grad_clip=0.5, tensorboard=False)
    d["data"].update(split_mode="blocks", block_size=32, class_balanced=0.5)
    d["model"]["name"] = "segmenter_vit_tiny"  # no BatchNorm: with lr ~ 0 the validation metrics stay put
    r = train(parse_config(d), log=_quiet, progress=False)
    assert r.stopped_early and len(r.history) == 2  # no improvement after the first epoch


def test_layer_decay_scales_encoder_learning_rates() -> None:
    from rs_vit.config import TrainConfig
    from rs_vit.models.registry import create_model
    from rs_vit.train.optim import build_optimizer

    m = create_model("segformer_b0", in_channels=3, num_classes=2)
    opt = build_optimizer(m, TrainConfig(lr=1.0, layer_decay=0.5))
    lrs = sorted({g["lr"] for g in opt.param_groups})
    assert lrs[-1] == 1.0 and lrs[0] == pytest.approx(0.5 ** 9) and len(lrs) == 10  # MiT-B0: stem, 8 blocks, decoder
    assert all(g["weight_decay"] == 0 for g in opt.param_groups if all(p.ndim == 1 for p in g["params"]))


def test_bad_loss_and_class_weights_are_refused(paths: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown loss 'dise'.*Did you mean 'dice'"):
        parse_config(tiny_config(paths, tmp_path, loss="ce+dise"))
    with pytest.raises(ConfigError, match="class_weights has 2 values but 3 classes"):
        parse_config(tiny_config(paths, tmp_path, class_weights=[1, 2]))


@pytest.mark.slow
def test_tile_chips_then_train_on_them_init_from_and_distill(paths: dict[str, Path], tmp_path: Path) -> None:
    import rasterio

    from rs_vit.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["tile", "--image", str(paths["image"]), "--labels", str(paths["labels"]),
                              "--classes", str(paths["classes"]), "--out-dir", str(tmp_path / "chips"),
                              "--tile-size", "32", "--stride", "16"])
    assert res.exit_code == 0, res.output
    chips = sorted((tmp_path / "chips" / "images").glob("*.tif"))
    assert len(chips) >= 6
    with rasterio.open(chips[1]) as c, rasterio.open(paths["image"]) as s:
        r, col = (int(v) for v in chips[1].stem.split("_")[-2:])
        np.testing.assert_array_equal(c.read(), s.read(window=((r, r + 32), (col, col + 32))))
        assert c.transform.c == s.transform.c + col * s.transform.a and c.crs == s.crs

    d = tiny_config(paths, tmp_path / "teacher", epochs=1, steps_per_epoch=2)
    d["data"] = {"chips": str(tmp_path / "chips"), "classes": CLASSES, "val_fraction": 0.3}
    d["model"]["name"] = "unet_resnet18"
    t = train(parse_config(d), log=_quiet, progress=False)

    d2 = tiny_config(paths, tmp_path / "init", epochs=1, steps_per_epoch=1, init_from=str(t.best_checkpoint))
    d2["model"]["name"] = "unet_resnet18"
    train(parse_config(d2), log=_quiet, progress=False)
    d2["train"]["out_dir"] = str(tmp_path / "init_swapped")  # other band order: adapted by name
    d2["data"]["bands"] = ["green", "blue", "red", "nir", "swir16", "swir22"]
    msgs: list[str] = []
    train(parse_config(d2), log=msgs.append, progress=False)
    assert any("bands adapted by name" in m for m in msgs), msgs
    del d2["data"]["bands"]
    d2["model"]["name"] = "segformer_b0"
    d2["train"]["out_dir"] = str(tmp_path / "init2")
    with pytest.raises(CheckpointError, match="is a unet_resnet18 checkpoint"):
        train(parse_config(d2), log=_quiet, progress=False)

    lines: list[str] = []
    d3 = tiny_config(paths, tmp_path / "student", epochs=1, steps_per_epoch=2)
    d3["distill"] = {"teacher": str(t.best_checkpoint), "alpha": 0.5, "mode": "both"}
    s = train(parse_config(d3), log=lines.append, progress=False)
    assert any("Distilling from" in line for line in lines) and np.isfinite(s.history[0]["train_loss"])


def test_distill_loss_is_zero_when_student_equals_teacher() -> None:
    from rs_vit.train.distill import distill_loss

    logits = torch.randn(2, 3, 8, 8)
    mask = torch.ones(2, 8, 8, dtype=torch.bool)
    assert float(distill_loss(logits, logits, mask, mode="soft")) == pytest.approx(0, abs=1e-6)
    assert float(distill_loss(-logits, logits, mask, mode="soft")) > 0.1
    agree = distill_loss(logits * 100, logits, mask, mode="hard")
    disagree = distill_loss(-logits * 100, logits, mask, mode="hard")
    assert float(agree) < 0.05 < float(disagree)


def test_cli_train_and_stats(paths: dict[str, Path], tmp_path: Path) -> None:
    from rs_vit.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["train", "--image", str(paths["image"]), "--labels", str(paths["labels"]),
                              "--classes", str(paths["classes"]), "--epochs", "1", "--steps-per-epoch", "1",
                              "--batch-size", "2", "--tile-size", "32", "--out-dir", str(out), "--no-progress",
                              "--split-mode", "blocks", "--block-size", "32", "--loss", "ce+dice"])
    assert res.exit_code == 0, res.output
    assert "val mIoU" in res.output and (out / "best" / "rs_vit.json").is_file()
    assert (out / "curves.png").stat().st_size > 1000 and (out / "val_samples.png").stat().st_size > 1000
    res = runner.invoke(app, ["train", "--resume", str(out), "--epochs", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "Resuming" in res.output and len(list(csv.DictReader(open(out / "metrics.csv")))) == 2
    res = runner.invoke(app, ["train", "--image", str(paths["image"]), "--labels", str(paths["labels"]),
                              "--classes", str(paths["classes"]), "--loss", "bce", "--out-dir", str(tmp_path / "x")])
    assert res.exit_code == 2 and "unknown loss 'bce'" in res.output
    res = runner.invoke(app, ["stats", str(paths["image"]), "--out", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    assert "swir22" in res.output and json.loads((tmp_path / "s.json").read_text())["bands"][0]["name"] == "blue"
