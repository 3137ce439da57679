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
from rs_vit.cli.app import app
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
