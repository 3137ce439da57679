"""An offline Hugging Face hub cache holding generated weights under the names timm and smp ask for.

The download code under test is the libraries' own (``timm.create_model(pretrained=True)``,
``smp.encoders.get_encoder(weights=...)``, both calling ``huggingface_hub.hf_hub_download``); only
the files differ from the published ones: a *seeded random* initialisation of the same
architecture (same keys, shapes and dtypes as the library's own state dict, which is what the
published files hold). The cache is laid out as the hub lays it out::

    HF_HUB_CACHE/models--{org}--{name}/
        blobs/{sha256 of the file}            (LFS files; git blob sha1 for small text files)
        refs/main                              (the commit hash ``main`` points to)
        snapshots/{commit}/{filename} -> ../../blobs/{blob}

``use_hub_cache`` points huggingface_hub at it and switches it offline. huggingface_hub reads
``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` into :mod:`huggingface_hub.constants` at import time and
looks them up there at call time (``constants.HF_HUB_CACHE``, ``constants.is_offline_mode()``),
so both the environment (for subprocesses) and those module attributes are set.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

#: ImageNet preprocessing as smp-hub's config.json files state it.
SMP_CONFIG = {"input_space": "RGB", "input_range": [0, 1],
              "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def add_file(cache: Path, repo_id: str, filename: str, data: bytes, *, revision: str | None = None,
             lfs: bool = True) -> Path:
    """Put ``data`` in ``cache`` as ``filename`` of ``repo_id`` at ``revision`` (a commit hash;
    by default a fixed fake one that ``refs/main`` points to). Returns the snapshot path."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = revision or hashlib.sha1(repo_id.encode()).hexdigest()
    blob = hashlib.sha256(data).hexdigest() if lfs else _git_blob_sha1(data)
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "blobs" / blob).write_bytes(data)
    (repo / "refs").mkdir(exist_ok=True)
    if revision is None or not (repo / "refs" / "main").exists():
        (repo / "refs" / "main").write_text(commit)  # the hub writes no trailing newline
    snap = repo / "snapshots" / commit / filename
    snap.parent.mkdir(parents=True, exist_ok=True)
    if snap.is_symlink() or snap.exists():
        snap.unlink()
    snap.symlink_to(os.path.relpath(repo / "blobs" / blob, snap.parent))
    return snap


def _safetensors_bytes(state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in state.items()})


def timm_source(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict timm publishes for ``name`` (its default pretrained tag), seeded-random."""
    import timm

    torch.manual_seed(seed)
    return timm.create_model(name, pretrained=False).state_dict()


def add_timm(cache: Path, name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Add ``model.safetensors`` for timm model ``name`` under its pretrained cfg's ``hf_hub_id``
    (what ``timm.create_model(name, pretrained=True)`` downloads). Returns the state written."""
    import timm
    from timm.models._hub import hf_split

    cfg = timm.models.get_pretrained_cfg(name)
    assert cfg is not None and cfg.hf_hub_id, f"timm has no hub weights for {name}"
    repo_id, revision = hf_split(cfg.hf_hub_id)
    filename = cfg.hf_hub_filename or "model.safetensors"
    state = timm_source(name, seed)
    add_file(cache, repo_id, filename, _safetensors_bytes(state), revision=revision)
    add_file(cache, repo_id, "config.json", json.dumps({"architecture": name.split(".")[0]}).encode(),
             revision=revision, lfs=False)
    return state


def smp_source(encoder: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict smp-hub publishes for an smp encoder (3 input channels), seeded-random."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(seed)
    return smp.encoders.get_encoder(encoder, in_channels=3, weights=None).state_dict()


def add_smp(cache: Path, encoder: str, tag: str = "imagenet", seed: int = 0) -> dict[str, torch.Tensor]:
    """Add ``config.json`` and ``model.safetensors`` for an smp encoder under the repo id and the
    pinned revision of its ``pretrained_settings[tag]`` (what ``get_encoder(weights=tag)`` asks for)."""
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders[encoder]["pretrained_settings"][tag]
    state = smp_source(encoder, seed)
    add_file(cache, settings["repo_id"], "config.json", json.dumps(SMP_CONFIG).encode(),
             revision=settings["revision"], lfs=False)
    add_file(cache, settings["repo_id"], "model.safetensors", _safetensors_bytes(state),
             revision=settings["revision"])
    return state


def use_hub_cache(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """Point huggingface_hub at ``cache`` and switch it offline (environment and constants)."""
    import huggingface_hub.constants as hc

    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
