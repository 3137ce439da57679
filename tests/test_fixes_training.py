"""Regression tests for issue 14 (weights, CLI and training side): each case failed before its fix.

Tiny generated fixtures only (a 48 x 64 six-band scene, a few-kB weights file); seconds each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from _helpers_train import tiny_config, write_scene
from rs_vit.errors import ModelError
from rs_vit.models.pretrained import read_weights

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _description(tmp_path: Path) -> Path:
    p = tmp_path / "desc.yaml"
    p.write_text(yaml.safe_dump({"model": "unet_resnet18", "bands": ["red", "green", "blue"],
                                 "mean": [0, 0, 0], "std": [1, 1, 1], "classes": ["a", "b"]}))
    return p


def _import(tmp_path: Path, weights: Path) -> tuple[int, str]:
    from rs_vit.cli.app import app

    res = runner.invoke(app, ["import-weights", str(weights), "-d", str(_description(tmp_path)),
                              "-o", str(tmp_path / "out")])
    return res.exit_code, res.output


# -- 9 and the weights messages ------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ".bin"])
def test_import_weights_empty_file_is_a_one_line_error(tmp_path: Path, suffix: str) -> None:
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    code, out = _import(tmp_path, empty)
    assert code == 2, out
    assert "Unexpected error" not in out and "IndexError" not in out
    assert "empty" in out and "not a weights file" in out and str(empty) in out
    assert len(out.strip().splitlines()) == 1


def test_text_file_as_pth_says_what_it_is(tmp_path: Path) -> None:
    txt = tmp_path / "notes.pth"
    txt.write_text("hello, these are not weights\n")
    with pytest.raises(ModelError, match=r"not a weights file \(it starts with b'hello, t'") as ei:
        read_weights(txt)
    assert "(101)" not in str(ei.value)


def test_truncated_torch_file_is_called_truncated(tmp_path: Path) -> None:
    p = tmp_path / "cut.pth"
    torch.save({"w": torch.zeros(64, 64)}, p)
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(ModelError, match="truncated, corrupt or not a weights file"):
        read_weights(p)


class _Evil:
    def __reduce__(self):  # noqa: ANN204 - pickles a call to os.getcwd (harmless, but code)
        return (os.getcwd, ())


def test_malicious_pickle_is_refused_as_code_without_torch_advice(tmp_path: Path) -> None:
    p = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(2), "x": _Evil()}, p)
    code, out = _import(tmp_path, p)
    assert code == 2, out
    assert "contains pickled code" in out and "safetensors" in out
    assert "weights_only" not in out and "will likely succeed" not in out
    assert len(out.strip().splitlines()) == 1  # no leaked warning before it


def test_import_weights_does_not_suggest_itself(tmp_path: Path) -> None:
    p = tmp_path / "other.pth"
    torch.save({"some.layer.weight": torch.zeros(3, 3)}, p)
    code, out = _import(tmp_path, p)
    assert code == 2, out
    assert "import-weights" not in out
    assert "model_kwargs" in out and "unet_resnet18" in out


# -- 11: `from rs_vit import train` is the function, whatever was imported before -----------------

def test_train_function_survives_subpackage_imports(tmp_path: Path) -> None:
    paths = write_scene(tmp_path / "d")
    cfg = tiny_config(paths, tmp_path / "run", epochs=1, steps_per_epoch=1, batch_size=2, tensorboard=False,
                      overwrite=True)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    code = (
        "import rs_vit.train.losses, rs_vit.train.optim\n"
        "from rs_vit.config import load_config\n"
        f"cfg = load_config({str(tmp_path / 'run.yaml')!r})\n"
        "from rs_vit import train\n"
        "import rs_vit\n"
        "assert rs_vit.train is train and callable(train), train\n"
        "r1 = train(cfg, log=lambda m: None, progress=False)\n"
        "r2 = train(cfg, log=lambda m: None, progress=False)\n"
        "from rs_vit.train import loop\n"
        "import rs_vit.train.ddp\n"
        "assert loop.train is train\n"
        "print('OK', r2.best_checkpoint.is_dir())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "OK True" in res.stdout


# -- 10: every registered model trains under DDP (every parameter gets a gradient) ----------------

def _registry() -> list:
    from rs_vit.models import get_entry, list_models

    gpu_size = ("_base", "_b2", "_b3", "_b4", "_b5", "_r50", "_resnet50", "_small", "_b16")
    return [pytest.param(n, marks=pytest.mark.slow) if any(s in n for s in gpu_size) else n
            for n in list_models() if get_entry(n).family != "smp"] + ["smp_model"]


@pytest.mark.parametrize("name", _registry())
def test_every_parameter_gets_a_gradient(name: str) -> None:
    """What DDP needs (without find_unused_parameters): no parameter outside the loss's graph.
    On the meta device: shapes and autograd only, no arithmetic."""
    from rs_vit.models import create_model, get_entry
    from rs_vit.models.stats import meta_device

    e = get_entry(name)
    t = e.fixed_tile or max(e.tile_multiple, 32)
    with meta_device():
        model = create_model(name, in_channels=4, num_classes=3).to("meta").train()
        model(torch.randn(2, 4, t, t)).sum().backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f"{name}: {len(unused)} parameters get no gradient, e.g. {unused[:4]}"


@pytest.mark.parametrize("name", ["setr_naive_vit_tiny", pytest.param("dpt_vit_tiny", marks=pytest.mark.heavy)])
def test_two_gloo_processes_train_setr_and_dpt(tmp_path: Path, name: str) -> None:
    """A real 2-process run (the gradient test above is the cheap check for the whole registry)."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available in this build")
    from rs_vit.config import parse_config
    from rs_vit.train.ddp import launch_local

    paths = write_scene(tmp_path / "d")
    d = tiny_config(paths, tmp_path / "run", epochs=1, steps_per_epoch=1, batch_size=4, precision="fp32",
                    tensorboard=False)  # 2 windows per rank: DPT's BatchNorm needs more than one
    d["model"]["name"] = name
    launch_local(parse_config(d), 2)
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()


@pytest.mark.parametrize("name", ["setr_mla_vit_tiny", "dpt_vit_tiny"])
def test_checkpoints_from_before_the_pruning_still_load(tmp_path: Path, name: str) -> None:
    """Checkpoints written when the unused final norm / classifier were still in the model."""
    from safetensors.torch import load_file, save_file

    from rs_vit.models import create_model
    from rs_vit.models.checkpoint import ModelSpec, load_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model(name, in_channels=3, num_classes=2).eval()
    assert not any(k.startswith("encoder.model.norm.") for k in model.state_dict())
    spec = ModelSpec(name=name, in_channels=3, num_classes=2, bands=["red", "green", "blue"], mean=[0.0] * 3,
                     std=[1.0] * 3, classes=[{"id": 0, "name": "a"}, {"id": 1, "name": "b"}], tile_size=32)
    path = save_checkpoint(tmp_path / "ck", model, spec)
    wfile = path / "model.safetensors"
    old = dict(load_file(str(wfile)))
    d = 192  # ViT-Ti width
    old.update({"encoder.model.norm.weight": torch.ones(d), "encoder.model.norm.bias": torch.zeros(d)})
    if name.startswith("dpt"):
        old.update({"encoder.model.head.weight": torch.zeros(1000, d), "encoder.model.head.bias": torch.zeros(1000)})
    save_file(old, str(wfile))
    loaded, _ = load_model(path)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
    fresh = create_model(name, in_channels=3, num_classes=2)
    fresh.load_state_dict(old, strict=True)  # plain torch loading too (pre-hook drops them)
    from rs_vit.models.foreign import WeightsDescription, import_weights

    desc = WeightsDescription(model=name, bands=["red", "green", "blue"], mean=[0.0] * 3, std=[1.0] * 3,
                              classes=["a", "b"], tile_size=32)
    out, _ = import_weights(wfile, desc, tmp_path / "imported")  # the old keys are not "tensors that do not fit"
    again, _ = load_model(out)
    with torch.no_grad():
        assert torch.allclose(again(x), model(x), atol=1e-5)


# -- 12: options that did nothing ----------------------------------------------------------------

def _meta_model(name: str, **kw):  # noqa: ANN202
    from rs_vit.models import create_model
    from rs_vit.models.stats import meta_device

    with meta_device():
        return create_model(name, in_channels=3, num_classes=2, **kw)


def test_segformer_drop_path_rate_is_honoured() -> None:
    m = _meta_model("segformer_b0", drop_path_rate=0.3)
    assert m.encoder.block4[-1].drop_path.drop_prob == pytest.approx(0.3)  # was 0.1 whatever was asked
    m0 = _meta_model("segformer_b0")
    assert all(getattr(b.drop_path, "drop_prob", 0.0) == 0.0 for st in (m0.encoder.block1, m0.encoder.block4)
               for b in st)


def test_drop_path_rate_for_a_cnn_is_refused() -> None:
    with pytest.raises(ModelError, match="drop_path_rate 0.2: encoder resnet18 has no stochastic depth"):
        _meta_model("unet_resnet18", drop_path_rate=0.2)


def test_layer_decay_counts_blocks_not_tensors() -> None:
    from rs_vit.config import TrainConfig
    from rs_vit.train.optim import build_optimizer, encoder_layer_ids

    vit = _meta_model("setr_pup_vit_tiny")
    ids, top = encoder_layer_ids(vit)
    assert top == 13 and len({v for v in ids.values() if v != top}) == 13  # stem + 12 blocks (was 19)
    assert ids["encoder.model.cls_token"] == ids["encoder.model.patch_embed.proj.bias"] == 0
    mit = _meta_model("segformer_b0")
    ids, top = encoder_layer_ids(mit)
    assert top == 9 and ids["encoder.patch_embed1.proj.weight"] == 0 and ids["encoder.patch_embed2.proj.weight"] == 3
    opt = build_optimizer(mit, TrainConfig(lr=1.0, layer_decay=0.5))
    assert min(g["lr"] for g in opt.param_groups) == pytest.approx(0.5 ** 9)  # was 0.5 ** 33
    tu = _meta_model("transunet_r18_vit_small")  # was: no encoder found, every lr 1
    opt = build_optimizer(tu, TrainConfig(lr=1.0, layer_decay=0.5))
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(tu.cnn.conv1.weight)] == pytest.approx(0.5 ** 15)
    assert lr_of[id(tu.transformer.blocks[-1].attn.qkv.weight)] == pytest.approx(0.5)


@pytest.mark.parametrize("term", ["dice", "focal"])
def test_class_weights_reach_dice_and_focal(term: str) -> None:
    from rs_vit.train.losses import SegLoss

    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    plain = SegLoss(term)(x, y)
    weighted = SegLoss(term, class_weights=[0.0, 0.0, 1.0])(x, y)
    assert not torch.allclose(plain, weighted)
    assert SegLoss(f"ce+{term}", class_weights=[1, 2, 3]).unweighted == []
    assert SegLoss("ce+lovasz", class_weights=[1, 2, 3]).unweighted == ["lovasz"]


def test_label_value_and_background_are_refused_for_raster_labels(tmp_path: Path) -> None:
    from rs_vit.config import parse_config
    from rs_vit.data.scenes import load_scene
    from rs_vit.errors import InputError

    paths = write_scene(tmp_path / "d")
    d = tiny_config(paths, tmp_path / "run")
    d["data"]["scenes"][0]["label_value"] = 1
    cfg = parse_config(d)
    with pytest.raises(InputError, match="scene_labels.tif: label_value 1 applies to vector labels"):
        load_scene(cfg.data.scenes[0], cfg.data)
    d = tiny_config(paths, tmp_path / "run")
    d["data"]["background"] = 0
    cfg = parse_config(d)
    with pytest.raises(InputError, match="data.background 0 applies to vector labels"):
        load_scene(cfg.data.scenes[0], cfg.data)


def test_missing_tensorboard_and_useless_band_init_are_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rs_vit.config import parse_config
    from rs_vit.train.loop import train

    from rs_vit.train import loop

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails: not installed
    monkeypatch.setitem(loop._NOTED, "tensorboard", False)
    paths = write_scene(tmp_path / "d")
    d = tiny_config(paths, tmp_path / "run", epochs=2, steps_per_epoch=1, batch_size=2, tensorboard=True)
    d["model"]["band_init"] = "zero"
    lines: list[str] = []
    train(parse_config(d), log=lines.append, progress=False)
    tb = [ln for ln in lines if "TensorBoard" in ln]
    assert len(tb) == 1 and "not installed" in tb[0]
    assert any("band_init 'zero' has no effect" in ln for ln in lines)
    d["train"]["out_dir"] = str(tmp_path / "run2")
    again: list[str] = []
    train(parse_config(d), log=again.append, progress=False)  # a second run in the process: said once
    assert not [ln for ln in again if "TensorBoard" in ln]


def test_compare_band_init_axis_without_weights_is_refused(tmp_path: Path) -> None:
    from rs_vit.errors import ConfigError
    from rs_vit.evaluate.compare import run_grid

    paths = write_scene(tmp_path / "d")
    grid = {"base": tiny_config(paths, tmp_path / "run"), "axes": {"band_init": ["mean", "zero"]}}
    with pytest.raises(ConfigError, match="axis band_init .* every run trains from scratch"):
        run_grid(grid, tmp_path / "grid")
    assert not (tmp_path / "grid").exists()


# -- 13 and the CLI messages ---------------------------------------------------------------------

def _cli(*args: str):  # noqa: ANN202
    from rs_vit.cli.app import app

    return runner.invoke(app, [str(a) for a in args])


def _tiny_checkpoint(tmp_path: Path) -> Path:
    from rs_vit.models import create_model
    from rs_vit.models.checkpoint import ModelSpec, save_checkpoint

    torch.manual_seed(0)
    model = create_model("unet_resnet18", in_channels=3, num_classes=2).eval()
    spec = ModelSpec(name="unet_resnet18", in_channels=3, num_classes=2, bands=["red", "green", "blue"],
                     mean=[100.0] * 3, std=[50.0] * 3, classes=[{"id": 0, "name": "a"}, {"id": 1, "name": "b"}],
                     tile_size=64)
    return save_checkpoint(tmp_path / "ck", model, spec)


def _rgb(path: Path, size: int = 64, *, cog: bool = False) -> Path:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    arr = np.random.default_rng(0).integers(0, 255, (3, size, size), dtype=np.uint8)
    plain = path.with_name(path.stem + "_plain.tif") if cog else path
    with rasterio.open(plain, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 4600000, 10, 10)) as dst:
        dst.write(arr)
        for i, b in enumerate(["red", "green", "blue"], 1):
            dst.set_band_description(i, b)
    if cog:
        from rasterio.shutil import copy

        copy(plain, path, driver="COG", blocksize=64, compress="deflate", overviews="NONE")
    return path


def test_predict_out_into_a_missing_folder_creates_it(tmp_path: Path) -> None:
    ck, scene = _tiny_checkpoint(tmp_path), _rgb(tmp_path / "scene.tif")
    out = tmp_path / "new" / "deeper" / "mask.tif"
    res = _cli("predict", scene, "-k", ck, "-o", out, "--no-progress", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert out.is_file()


@pytest.mark.parametrize("suffix", [".gpkg", ".png"])
def test_predict_out_with_a_non_tiff_name_is_refused(tmp_path: Path, suffix: str) -> None:
    ck, scene = _tiny_checkpoint(tmp_path), _rgb(tmp_path / "scene.tif")
    out = tmp_path / f"mask{suffix}"
    res = _cli("predict", scene, "-k", ck, "-o", out, "--no-progress")
    assert res.exit_code == 2, res.output
    assert "writes the mask as a GeoTIFF" in res.output and not out.exists()
    assert ("--vector" in res.output) == (suffix == ".gpkg")


def _mask_and_reference(tmp_path: Path) -> tuple[Path, Path]:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    prof = dict(driver="GTiff", width=32, height=32, count=1, dtype="uint8", crs="EPSG:32633",
                transform=from_origin(500000, 4600000, 10, 10))
    lab = (np.arange(32 * 32).reshape(32, 32) % 2).astype(np.uint8)
    ref = lab.copy()
    ref[:4] = 9  # an undeclared value, excluded with --ignore-values
    paths = []
    for name, a in (("pred.tif", lab), ("ref.tif", ref)):
        with rasterio.open(tmp_path / name, "w", **prof) as dst:
            dst.write(a, 1)
        paths.append(tmp_path / name)
    return paths[0], paths[1]


def test_evaluate_refuses_existing_json_and_plot_before_the_work(tmp_path: Path) -> None:
    pred, ref = _mask_and_reference(tmp_path)
    for opt in ("--json", "--plot"):
        existing = tmp_path / f"old{opt[2:]}.out"
        existing.write_text("keep me")
        res = _cli("evaluate", pred, ref, "--num-classes", "2", "--ignore-values", "9", opt, existing)
        assert res.exit_code == 2, res.output
        assert "already exists; pass --overwrite" in res.output and "mIoU" not in res.output
        assert existing.read_text() == "keep me"
        missing = tmp_path / "nowhere" / f"m{opt[2:]}.out"
        res = _cli("evaluate", pred, ref, "--num-classes", "2", "--ignore-values", "9", opt, missing)
        assert res.exit_code == 2 and "does not exist" in res.output and "mIoU" not in res.output, res.output
    res = _cli("evaluate", pred, ref, "--num-classes", "2", "--ignore-values", "9", "--json", tmp_path / "oldjson.out",
               "--overwrite")
    assert res.exit_code == 0, res.output
    assert '"miou"' in (tmp_path / "oldjson.out").read_text()


def test_ignore_values_is_one_spelling_with_the_old_one_as_hidden_alias(tmp_path: Path) -> None:
    pred, ref = _mask_and_reference(tmp_path)
    new = _cli("evaluate", pred, ref, "--num-classes", "2", "--ignore-values", "9")
    old = _cli("evaluate", pred, ref, "--num-classes", "2", "--ignore-value", "9")
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert new.output == old.output
    helps = {cmd: _cli(cmd, "--help").output for cmd in ("train", "evaluate")}
    assert all("--ignore-values" in h for h in helps.values())
    assert "--ignore-value " not in helps["evaluate"]


def test_a_truncated_scene_names_gdals_reason_not_a_previous_exception(tmp_path: Path) -> None:
    ck = _tiny_checkpoint(tmp_path)
    full = _rgb(tmp_path / "full.tif", size=192, cog=True)
    cut = tmp_path / "cut.tif"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # the header (first in a COG) is intact, blocks are not
    res = _cli("predict", cut, "-k", ck, "-o", tmp_path / "m.tif", "--no-progress", "--device", "cpu")
    assert res.exit_code == 2, res.output
    assert "previous exception" not in res.output
    assert "cut.tif" in res.output and "TIFFReadEncodedTile" in res.output
    assert len(res.output.strip().splitlines()) <= 2  # the one-line summary of the run, then the error


@pytest.mark.parametrize("content", [b"", b"garbage, not a torch file"])
def test_resume_with_an_empty_or_foreign_train_state_is_one_line(tmp_path: Path, content: bytes) -> None:
    from rs_vit.errors import CheckpointError
    from rs_vit.train.resume import STATE_FILE, load_train_state

    (tmp_path / "last").mkdir()
    (tmp_path / "last" / STATE_FILE).write_bytes(content)
    with pytest.raises(CheckpointError, match="empty|not a weights file") as ei:
        load_train_state(tmp_path)
    assert STATE_FILE in str(ei.value) and "IndexError" not in str(ei.value)
