"""Nothing untrusted runs: weights and checkpoints load without executing code, YAML is loaded
safely, and no network access happens unless a pretrained download was asked for."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from _helpers_reliability import assert_clean_error, cli, make_checkpoint, make_scene
from _helpers_train import write_scene


class _Evil:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _evil_pth(path: Path, marker: Path) -> Path:
    state = {"conv1.weight": torch.zeros(1), "payload": _Evil(marker)}
    torch.save(state, path)
    return path


def test_the_payload_really_runs_when_unpickled_unsafely(tmp_path: Path) -> None:
    """Guard against a toothless test: an unsafe torch.load of the file does run the code."""
    marker = tmp_path / "pwned"
    path = _evil_pth(tmp_path / "evil.pth", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".ckpt"])
def test_malicious_pickle_refused_by_create_model(tmp_path: Path, suffix: str) -> None:
    from rs_vit.errors import RsVitError
    from rs_vit.models.registry import create_model

    marker = tmp_path / "pwned"
    path = _evil_pth(tmp_path / f"evil{suffix}", marker)
    with pytest.raises(RsVitError, match="safely") as info:
        create_model("unet_resnet18", in_channels=6, num_classes=3, weights=str(path))
    assert f"evil{suffix}" in str(info.value)
    assert not marker.exists()


def test_malicious_pickle_refused_by_train(tmp_path: Path) -> None:
    """The same file given as ``model.weights`` to `rs-vit train`: one line, no code run."""
    import yaml

    marker = tmp_path / "pwned"
    path = _evil_pth(tmp_path / "evil.pth", marker)
    paths = write_scene(tmp_path / "d")
    cfg = {"data": {"scenes": [{"image": str(paths["image"]), "labels": str(paths["labels"])}],
                    "classes": yaml.safe_load(paths["classes"].read_text())["classes"]},
           "model": {"name": "unet_resnet18", "weights": str(path)},
           "train": {"tile_size": 32, "epochs": 1, "steps_per_epoch": 1, "batch_size": 2, "plots": False}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    res = cli("train", "--config", tmp_path / "run.yaml", "--no-progress", "--out-dir", tmp_path / "run")
    assert_clean_error(res, "evil.pth", "safely")
    assert not marker.exists()


def test_malicious_pickle_refused_by_import_weights(tmp_path: Path) -> None:
    """`rs-vit import-weights evil.pth`: one line, no code run, no checkpoint written."""
    import yaml

    marker = tmp_path / "pwned"
    path = _evil_pth(tmp_path / "evil.pth", marker)
    desc = tmp_path / "desc.yaml"
    desc.write_text(yaml.safe_dump({"model": "unet_resnet18", "bands": ["red", "green", "blue"],
                                    "mean": [0.0] * 3, "std": [1.0] * 3, "classes": ["a", "b"]}))
    res = cli("import-weights", path, "--description", desc, "--out", tmp_path / "ck")
    assert_clean_error(res, "evil.pth", "safely")
    assert not marker.exists()
    assert not (tmp_path / "ck").exists()


def test_pickle_in_place_of_safetensors_refused(tmp_path: Path) -> None:
    """A checkpoint folder whose model.safetensors is a pickle: refused, nothing runs."""
    marker = tmp_path / "pwned"
    ck = make_checkpoint(tmp_path / "ck")
    _evil_pth(ck / "model.safetensors", marker)
    scene = make_scene(tmp_path / "s.tif")
    res = cli("predict", scene, "-k", ck, "--out", tmp_path / "mask.tif", "--no-progress")
    assert_clean_error(res, "model.safetensors", "corrupt")
    assert not marker.exists() and not (tmp_path / "mask.tif").exists()


def test_malicious_training_state_refused_on_resume(tmp_path: Path) -> None:
    from rs_vit.errors import CheckpointError
    from rs_vit.train.resume import STATE_FILE, load_train_state

    marker = tmp_path / "pwned"
    (tmp_path / "run" / "last").mkdir(parents=True)
    _evil_pth(tmp_path / "run" / "last" / STATE_FILE, marker)
    with pytest.raises(CheckpointError, match="safely"):
        load_train_state(tmp_path / "run")
    assert not marker.exists()


def test_config_yaml_is_loaded_safely(tmp_path: Path) -> None:
    from rs_vit.config import load_config
    from rs_vit.errors import ConfigError

    marker = tmp_path / "pwned"
    path = tmp_path / "run.yaml"
    path.write_text(f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="run.yaml"):
        load_config(path)
    assert not marker.exists()


# -- network -------------------------------------------------------------------------------------

@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record (and refuse) every attempt to open a network connection or resolve a host name."""
    attempts: list[str] = []

    def refuse_connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(f"connect {address}")
            raise OSError("network access blocked by the test")
        return real_connect(self, address)

    def refuse_resolve(host: object, *a: object, **k: object) -> list:
        attempts.append(f"resolve {host}")
        raise socket.gaierror("network access blocked by the test")

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_resolve)
    yield attempts


def test_predict_and_training_setup_do_not_touch_the_network(tmp_path: Path, no_network: list[str]) -> None:
    from rs_vit.config import parse_config
    from rs_vit.models.registry import create_model

    ck = make_checkpoint(tmp_path / "ck")
    res = cli("predict", make_scene(tmp_path / "s.tif"), "-k", ck, "--out", tmp_path / "m.tif", "--no-progress")
    assert res.code == 0, res.stderr
    parse_config({"model": {"name": "segformer_b0"}})
    create_model("segformer_b0", in_channels=4, num_classes=2, band_names=["blue", "green", "red", "nir"])
    assert no_network == []


@pytest.mark.slow
def test_pretrained_download_only_when_asked_and_offline_is_clean(tmp_path: Path, no_network: list[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for pretrained weights is the one path that reaches for the network; offline, it
    fails with one message saying how to give a local file."""
    from rs_vit.errors import ModelError
    from rs_vit.models.registry import create_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match="weights"):
        create_model("unet_resnet18", in_channels=3, num_classes=2, pretrained="imagenet",
                     band_names=["red", "green", "blue"])
    assert no_network, "the download path never tried the network"
