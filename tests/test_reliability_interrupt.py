"""Nothing is lost: a prediction killed mid-run leaves nothing under the final name; a training
run that crashes keeps a resumable ``last/`` checkpoint; a crash while saving a checkpoint never
corrupts the previous one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _helpers_reliability import ROOT, make_checkpoint, make_scene


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "best")


def _start_predict(ckpt: Path, folder: Path) -> tuple[subprocess.Popen[str], Path]:
    """Start ``python -m rs_vit predict`` on a scene that takes many batches, and wait until it
    is writing (its hidden temporary output exists)."""
    scene = make_scene(folder / "scene.tif", 320, 320, seed=3)
    out = folder / "mask.tif"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rs_vit", "predict", str(scene), "-k", str(ckpt), "--out", str(out),
         "--batch-size", "1", "--no-progress", "--precision", "fp32", "--overlap", "0.75"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(p.name.startswith(".mask.tif.") for p in folder.iterdir()):
            break
        if proc.poll() is not None:
            pytest.fail(f"predict ended before it was interrupted: {proc.communicate()}")
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("predict did not start writing within 120 s")
    time.sleep(0.5)  # a few windows into the scene
    assert proc.poll() is None, "predict finished too fast to be interrupted"
    return proc, out


@pytest.mark.parametrize("sig,code,word", [
    (signal.SIGINT, 130, "Interrupted"),
    pytest.param(signal.SIGTERM, 143, "Terminated", marks=pytest.mark.slow),
])
def test_interrupted_predict_leaves_nothing(ckpt: Path, tmp_path: Path, sig: int, code: int, word: str) -> None:
    proc, out = _start_predict(ckpt, tmp_path)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr, stderr
    assert word in stderr
    assert not out.exists()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["scene.tif"], f"temporary files left behind: {left}"


@pytest.mark.slow
def test_killed_predict_leaves_no_final_output(ckpt: Path, tmp_path: Path) -> None:
    """SIGKILL cannot be caught: the hidden ``.mask.tif.*.part.tif`` may stay (documented in
    docs/reliability.md), but nothing appears under the final name."""
    proc, out = _start_predict(ckpt, tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert not out.exists()
    left = [p.name for p in tmp_path.iterdir() if p.name != "scene.tif"]
    assert all(n.startswith(".mask.tif.") and ".part" in n for n in left), left


# -- checkpoints -------------------------------------------------------------------------------

def test_crash_while_saving_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    from rs_vit.models.checkpoint import load_model, read_spec

    ck = make_checkpoint(tmp_path / "last")
    before = (ck / "model.safetensors").read_bytes()
    model, spec = load_model(ck)

    def half_then_crash(module: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(safetensors.torch, "save_model", half_then_crash)
    from rs_vit.models.checkpoint import save_checkpoint

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ck, model, spec)
    assert (ck / "model.safetensors").read_bytes() == before
    assert read_spec(ck).name == spec.name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"], "temporary folders left behind"


@pytest.mark.slow
def test_train_crash_leaves_resumable_last_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash in epoch 2 leaves ``last/`` from epoch 1, and ``rs-vit train --resume`` finishes."""
    import torch

    from _helpers_reliability import cli
    from _helpers_train import tiny_config, write_scene
    from rs_vit.config import parse_config
    from rs_vit.models.checkpoint import load_model
    from rs_vit.train import loop

    paths = write_scene(tmp_path / "data")
    cfg = tiny_config(paths, tmp_path / "run", epochs=2, steps_per_epoch=1, batch_size=2)
    cfg["model"] = {"name": "unet_resnet18"}
    real_validate = loop.validate
    calls = {"n": 0}

    def crash_in_epoch_2(*a: object, **k: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_validate(*a, **k)

    monkeypatch.setattr(loop, "validate", crash_in_epoch_2)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.train(parse_config(cfg), log=lambda s: None, progress=False)
        last = tmp_path / "run" / "last"
        model, spec = load_model(last)  # complete and loadable
        assert spec.name == "unet_resnet18"
        assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]
        monkeypatch.setattr(loop, "validate", real_validate)
        res = cli("train", "--resume", tmp_path / "run", "--no-progress")
        assert res.code == 0, res.stderr
        assert "Resuming" in res.stdout
    finally:
        torch.set_num_threads(n)
