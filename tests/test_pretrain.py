"""``rs-vit pretrain``: masked image modelling per family, nodata-aware loss, the pretrain → train
round trip (every encoder tensor loaded), resume, the CLI and its errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from _helpers_train import BANDS, tiny_config, write_scene
from rs_vit.config import PretrainRunConfig, parse_config
from rs_vit.errors import CheckpointError, ConfigError
from rs_vit.models.mim import (MAE, SimMIM, build_mim, draw_mask, encoder_parts, load_encoder, make_plan,
                               reconstruction_loss)
from rs_vit.models.registry import create_model, get_entry
from rs_vit.train.pretrain import pretrain, resume_pretrain


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_scene(tmp_path_factory.mktemp("scene"), h=64, w=64)


def _quiet(_msg: str) -> None:
    pass


def pretrain_config(paths: dict[str, Path], out: Path, model: str, **train: object) -> PretrainRunConfig:
    t = {"out_dir": str(out), "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "tile_size": 32, "lr": 1e-3,
         "warmup_steps": 1, "precision": "bf16", "seed": 0, "plots": False, "tensorboard": False}
    t.update(train)
    cfg = parse_config({"data": {"scenes": [{"image": str(paths["image"])}]}, "model": {"name": model},
                        "train": t}, schema=PretrainRunConfig)
    assert isinstance(cfg, PretrainRunConfig)
    return cfg


def _encoder_keys(model: torch.nn.Module, family: str) -> list[str]:
    parts = tuple(encoder_parts(model, family))
    return [k for k in model.state_dict() if k.split(".", 1)[0] in parts]


@pytest.mark.parametrize("name,method", [("segformer_b0", "simmim"), ("setr_naive_vit_tiny", "mae")])
def test_pretrain_then_train_loads_every_encoder_tensor(paths: dict[str, Path], tmp_path: Path, name: str,
                                                        method: str) -> None:
    res = pretrain(pretrain_config(paths, tmp_path / "pre", name, plots=True), log=_quiet, progress=False)
    assert res.method == method
    enc = res.encoder_checkpoint
    meta = json.loads((enc / "rs_vit.json").read_text())
    assert meta["extra"]["kind"] == "encoder" and meta["extra"]["method"] == method
    assert meta["bands"] == BANDS and len(meta["mean"]) == len(meta["std"]) == 6
    assert (res.run_dir / "reconstructions.png").stat().st_size > 1000
    state = load_file(str(enc / "model.safetensors"))

    fresh = create_model(name, in_channels=6, num_classes=3, band_names=BANDS)
    keys = _encoder_keys(fresh, get_entry(name).family)
    assert sorted(state) == sorted(keys)  # exactly the encoder, under the model's own names
    note = load_encoder(fresh, enc, BANDS)
    assert note.startswith(f"{len(keys)}/{len(keys)} encoder tensors loaded"), note
    own = fresh.state_dict()
    assert all(torch.equal(own[k], state[k]) for k in keys)  # every encoder tensor really landed

    lines: list[str] = []
    d = tiny_config(paths, tmp_path / "ft", epochs=1, steps_per_epoch=1, batch_size=2,
                    init_from=str(enc))
    d["model"]["name"] = name
    from rs_vit.train.loop import train

    train(parse_config(d), log=lines.append, progress=False)
    init = next(line for line in lines if line.startswith("Initialised from"))
    assert f"{len(keys)}/{len(keys)} encoder tensors loaded" in init
    assert "normalisation of the pretrained encoder for 6/6 bands" in init
    ft = json.loads((tmp_path / "ft" / "last" / "rs_vit.json").read_text())
    assert ft["mean"] == pytest.approx(meta["mean"]) and ft["std"] == pytest.approx(meta["std"])


@pytest.mark.parametrize("name", ["dpt_vit_tiny", "setr_pup_deit_small_distilled", "transunet_r18_vit_small",
                                  "upernet_swin_tiny", "unet_resnet18"])
def test_every_family_trains_its_whole_encoder(name: str) -> None:
    family = get_entry(name).family
    model = create_model(name, in_channels=4, num_classes=2)
    mim = build_mim(model, family, 4, 64)
    assert isinstance(mim, MAE if family in ("dpt", "deit", "hybrid") else SimMIM)
    x = torch.randn(2, 4, 64, 64)
    valid = torch.ones(2, 64, 64, dtype=torch.bool)
    out = mim(x, valid)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.reconstruction.shape == x.shape
    no_grad = [n for n, p in mim.named_parameters() if p.grad is None]
    # timm's classifier inside smp's ViT encoder is never run by DPT either
    assert [n for n in no_grad if not n.startswith("encoder.model.head.")] == []


def test_nodata_never_counts_in_the_loss() -> None:
    model = create_model("segformer_b0", in_channels=3, num_classes=2)
    plan = make_plan(model, "segformer")
    x = torch.randn(1, 3, 64, 64)
    valid = torch.ones(1, 64, 64, dtype=torch.bool)
    valid[:, :, :32] = False  # left half nodata
    mask = draw_mask(valid, 32, 0.5)  # 2 of 4 squares: both must be the valid ones
    assert mask[0, :, 1].all() and not mask[0, :, 0].any()
    pix = mask[:, None].float().repeat_interleave(32, 2).repeat_interleave(32, 3)
    pred = x.clone()
    pred[:, :, :, :32] += 5.0  # wrong only on nodata pixels
    loss, recon = reconstruction_loss(pred, x, pix, valid, plan)
    assert float(loss) == 0.0
    pred[:, :, :, 40] += 1.0  # wrong on a masked valid column
    loss, _ = reconstruction_loss(pred, x, pix, valid, plan)
    assert float(loss) == pytest.approx(1.0 / 32, rel=1e-5)  # l1: 1 px column of 32, every band
    assert torch.equal(recon[:, :, :, :32], x[:, :, :, :32])  # visible squares copied from the input


def test_resume_matches_uninterrupted(paths: dict[str, Path], tmp_path: Path) -> None:
    full = pretrain(pretrain_config(paths, tmp_path / "a", "segformer_b0", epochs=2), log=_quiet, progress=False)
    class Crash(Exception):
        pass

    def crash_after_first_epoch(msg: str) -> None:
        if msg.startswith("epoch 1/2"):
            raise Crash()

    with pytest.raises(Crash):
        pretrain(pretrain_config(paths, tmp_path / "b", "segformer_b0", epochs=2), log=crash_after_first_epoch,
                 progress=False)
    resumed = resume_pretrain(tmp_path / "b", log=_quiet, progress=False)
    rows = [list(csv.DictReader(open(r.run_dir / "metrics.csv"))) for r in (full, resumed)]
    assert [r["train_loss"] for r in rows[0]] == [r["train_loss"] for r in rows[1]]
    a = load_file(str(full.encoder_checkpoint / "model.safetensors"))
    b = load_file(str(resumed.encoder_checkpoint / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_errors_name_the_fix(paths: dict[str, Path], tmp_path: Path) -> None:
    model = create_model("segformer_b0", in_channels=3, num_classes=2)
    with pytest.raises(ConfigError, match="plain-ViT encoder"):
        make_plan(model, "segformer", method="mae")
    vit = create_model("setr_naive_vit_tiny", in_channels=3, num_classes=2)
    with pytest.raises(ConfigError, match="patch size 16"):
        make_plan(vit, "vit", method="mae", mask_patch=32)
    with pytest.raises(ConfigError, match="multiple of the mask patch"):
        pretrain(pretrain_config(paths, tmp_path / "x", "segformer_b0", tile_size=64).model_copy(
            update={"pretrain": PretrainRunConfig().pretrain.model_copy(update={"mask_patch": 48})}),
            log=_quiet, progress=False)
    res = pretrain(pretrain_config(paths, tmp_path / "p", "unet_resnet18"), log=_quiet, progress=False)
    from rs_vit.models.checkpoint import load_model

    with pytest.raises(CheckpointError, match="--init-from"):
        load_model(res.encoder_checkpoint)
    other = create_model("setr_naive_vit_tiny", in_channels=6, num_classes=2, band_names=BANDS)
    with pytest.raises(Exception, match="fit"):
        load_encoder(other, res.encoder_checkpoint, BANDS)


def test_area_train_leaves_the_validation_rows_out(paths: dict[str, Path], tmp_path: Path) -> None:
    from rs_vit.data.split import TRAIN
    from rs_vit.train.pretrain import load_unlabeled_scenes

    cfg = pretrain_config(paths, tmp_path / "q", "segformer_b0")
    d = cfg.model_dump(mode="json")
    d["data"]["scenes"] = [{"image": str(paths["image"]), "labels": str(paths["labels"])}]
    d["data"]["classes"] = [{"id": i, "name": f"c{i}"} for i in range(3)]
    d["data"]["val_fraction"] = 0.25
    d["pretrain"]["area"] = "train"
    scenes, bands = load_unlabeled_scenes(parse_config(d, schema=PretrainRunConfig))  # type: ignore[arg-type]
    assert bands == BANDS and scenes[0].split.area(TRAIN) == 48 * 64
    d["pretrain"]["area"] = "all"
    scenes, _ = load_unlabeled_scenes(parse_config(d, schema=PretrainRunConfig))  # type: ignore[arg-type]
    assert scenes[0].split.area(TRAIN) == 64 * 64
    _, _, inv = scenes[0].read(0, 0, 8, 8)
    assert inv[:4, :4].all() and not inv[4:, 4:].any()  # the fixture's nodata corner is known


def test_cli_pretrain(paths: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rs_vit.cli import app

    out = tmp_path / "cli"
    r = CliRunner().invoke(app, ["pretrain", "--image", str(paths["image"]), "--model", "segformer_b0",
                                 "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--tile-size", "32",
                                 "--mask-ratio", "0.5", "--precision", "bf16", "-o", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "Encoder checkpoint" in r.output and (out / "encoder" / "model.safetensors").is_file()
    meta = json.loads((out / "encoder" / "rs_vit.json").read_text())
    assert meta["extra"]["mim"]["mask_ratio"] == 0.5
    r = CliRunner().invoke(app, ["pretrain", "--image", str(paths["image"]), "--model", "segformer_b0",
                                 "--method", "mae", "-o", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "plain-ViT" in r.output
    assert np.isfinite(float(next(csv.DictReader(open(out / "metrics.csv")))["train_loss"]))


def test_continue_from_weights_domain_adaptive(paths: dict[str, Path], tmp_path: Path) -> None:
    first = pretrain(pretrain_config(paths, tmp_path / "a", "segformer_b0", steps_per_epoch=1), log=_quiet,
                     progress=False)
    cfg = pretrain_config(paths, tmp_path / "b", "segformer_b0", steps_per_epoch=1, lr=1e-12, warmup_steps=0)
    cfg.model.weights = first.encoder_checkpoint / "model.safetensors"
    lines: list[str] = []
    second = pretrain(cfg, log=lines.append, progress=False)
    assert any(f"from weights {cfg.model.weights}" in line for line in lines), lines
    a = load_file(str(first.encoder_checkpoint / "model.safetensors"))
    b = load_file(str(second.encoder_checkpoint / "model.safetensors"))
    # started from the first run's encoder (a 1e-12 learning rate leaves it where it was)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_continue_from_imagenet_offline_cache(paths: dict[str, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """--pretrained imagenet goes through timm's own download (an offline hub cache holding
    generated weights under the published names) before the encoder is wrapped."""
    from hub_cache import add_timm, use_hub_cache

    source = add_timm(tmp_path / "hub", "vit_tiny_patch16_224")
    use_hub_cache(monkeypatch, tmp_path / "hub")
    cfg = pretrain_config(paths, tmp_path / "p", "setr_naive_vit_tiny", steps_per_epoch=1, lr=1e-12,
                          warmup_steps=0)
    cfg.model.pretrained = "imagenet"
    lines: list[str] = []
    res = pretrain(cfg, log=lines.append, progress=False)
    assert any("from pretrained imagenet" in line and "loaded" in line for line in lines), lines
    enc = load_file(str(res.encoder_checkpoint / "model.safetensors"))
    for k in ("blocks.0.attn.qkv.weight", "blocks.11.mlp.fc2.weight", "cls_token"):
        assert torch.allclose(enc[f"encoder.model.{k}"].float(), source[k].float(), atol=1e-6), k


def test_torchrun_two_processes(paths: dict[str, Path], tmp_path: Path) -> None:
    """DDP under torchrun (gloo on the CPU): both ranks finish, rank 0 writes one run."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "rs_vit",
           "pretrain", "--image", str(paths["image"]), "--model", "setr_naive_vit_tiny", "--epochs", "1",
           "--steps-per-epoch", "2", "--batch-size", "4", "--tile-size", "32", "--precision", "bf16",
           "-o", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # its own process group: a hang is cleaned up whole
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("rs-vit pretrain under torchrun did not finish in 120 s")
    assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
    assert "2 processes" in stdout and stdout.count("Encoder checkpoint") == 1
    assert len(list(csv.DictReader(open(out / "metrics.csv")))) == 1
    assert (out / "encoder" / "model.safetensors").is_file()
