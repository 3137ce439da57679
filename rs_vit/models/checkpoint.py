"""Self-describing, safe checkpoints.

A checkpoint is a folder holding ``model.safetensors`` (the weights; loading runs no code) and
``rs_vit.json`` (architecture and constructor arguments, band names, normalisation statistics,
nodata, class names and colours, tile size, tool version). ``predict`` needs nothing else.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rs_vit import __version__
from rs_vit.errors import CheckpointError

FORMAT = "rs-vit-checkpoint"
FORMAT_VERSION = 1
META_FILE = "rs_vit.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class ModelSpec:
    """Everything needed to rebuild a model and feed it correctly."""

    name: str
    in_channels: int
    num_classes: int
    bands: list[str]
    mean: list[float]
    std: list[float]
    classes: list[dict[str, Any]]
    tile_size: int
    nodata: float | None = None
    ignore_index: int = 255
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    drop_path_rate: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    #: The training data's pixel type and each band's 1st / 50th / 99th percentile, by band name
    #: (``{"dtype": "uint16", "bands": {"red": [low, median, high], ...}}``): ``predict`` warns
    #: when a scene is far outside them. None in checkpoints written before it was recorded
    #: (then nothing is compared); bands added by adaptation have no entry.
    value_range: dict[str, Any] | None = None
    #: How ``mean``/``std`` were chosen: ``{"source": "data"}`` (training pixels) or, when training
    #: started from catalogue weights (:mod:`rs_vit.models.catalogue`), ``{"source":
    #: "weights:NAME", "scaling": "/10000", "units": ..., "from_weights": [bands], "from_data":
    #: [bands]}``: the entry's scaling and statistics are folded into ``mean``/``std`` (raw units).
    normalization: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.classes]

    @property
    def class_colors(self) -> list[tuple[int, int, int] | None]:
        return [tuple(c["color"]) if c.get("color") else None for c in self.classes]  # type: ignore[misc]

    def validate(self, source: str = "checkpoint") -> None:
        """Check field types and consistency; raise :class:`CheckpointError` naming the field."""

        def bad(field: str, want: str) -> CheckpointError:
            return CheckpointError(
                f"{source}: field {field!r} must be {want}, got {getattr(self, field)!r}; "
                "the checkpoint description is corrupt."
            )

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return (is_int(v) or isinstance(v, float)) and math.isfinite(v)

        if not isinstance(self.name, str) or not self.name:
            raise bad("name", "a registered model name")
        for f in ("in_channels", "num_classes", "tile_size"):
            if not is_int(getattr(self, f)) or getattr(self, f) < 1:
                raise bad(f, "a positive integer")
        if not is_int(self.ignore_index):
            raise bad("ignore_index", "an integer")
        if not isinstance(self.bands, list) or not all(isinstance(b, str) and b for b in self.bands):
            raise bad("bands", "a list of band names")
        for f in ("mean", "std"):
            v = getattr(self, f)
            if not isinstance(v, list) or not all(is_num(x) for x in v):
                raise bad(f, "a list of finite numbers")
        if any(x <= 0 for x in self.std):
            raise bad("std", "positive")
        if not isinstance(self.classes, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) for c in self.classes
        ):
            raise bad("classes", "a list of {id, name, color}")
        if self.nodata is not None and not (is_num(self.nodata) or (isinstance(self.nodata, float))):
            raise bad("nodata", "a number or null")
        if not isinstance(self.model_kwargs, dict):
            raise bad("model_kwargs", "a mapping")
        if not isinstance(self.extra, dict):
            raise bad("extra", "a mapping")
        if not isinstance(self.normalization, dict):
            raise bad("normalization", "a mapping")
        if not is_num(self.drop_path_rate) or not 0 <= self.drop_path_rate < 1:
            raise bad("drop_path_rate", "a number in [0, 1)")
        vr = self.value_range
        if vr is not None and not (
            isinstance(vr, dict) and isinstance(vr.get("dtype"), str) and isinstance(vr.get("bands"), dict)
            and all(isinstance(v, list) and len(v) == 3 and all(is_num(x) for x in v) for v in vr["bands"].values())
        ):
            raise bad("value_range", "null or {dtype, bands: {name: [low, median, high]}}")
        n = self.in_channels
        if not (len(self.bands) == len(self.mean) == len(self.std) == n):
            raise CheckpointError(
                f"{source}: bands/mean/std lengths ({len(self.bands)}, {len(self.mean)}, "
                f"{len(self.std)}) do not match in_channels={n}; the checkpoint is inconsistent."
            )
        if len(self.classes) != self.num_classes:
            raise CheckpointError(
                f"{source}: {len(self.classes)} classes declared but num_classes={self.num_classes}."
            )


def build_model(spec: ModelSpec) -> nn.Module:
    """Rebuild the (randomly initialised) architecture described by ``spec``."""
    from rs_vit.models.registry import create_model

    return create_model(
        spec.name,
        in_channels=spec.in_channels,
        num_classes=spec.num_classes,
        pretrained=None,
        band_names=spec.bands,
        drop_path_rate=spec.drop_path_rate,
        **spec.model_kwargs,
    )


def recover_checkpoint(path: str | Path) -> Path:
    """Restore a checkpoint folder left aside by a crash inside :func:`save_checkpoint`.

    Saving swaps folders with two renames (previous → ``.NAME.old-PID``, new → ``NAME``); a crash
    between them leaves the previous, complete checkpoint under the hidden name. When ``path`` is
    missing and such a folder exists, it is renamed back, so nothing good is ever lost.
    """
    final = Path(path)
    if final.exists():
        return final
    olds = sorted(final.parent.glob(f".{final.name}.old-*"), key=lambda q: q.stat().st_mtime)
    if olds and (olds[-1] / META_FILE).is_file():
        os.replace(olds[-1], final)
    return final


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    spec: ModelSpec,
    *,
    extra_files: dict[str, str | bytes] | None = None,
) -> Path:
    """Write a checkpoint folder atomically: a crash never corrupts the previous one."""
    from safetensors.torch import save_model

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_checkpoint(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        module = getattr(model, "module", model)  # unwrap DDP
        save_model(module, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "rs_vit_version": __version__,
                **asdict(spec)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        for name, content in (extra_files or {}).items():
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(tmp / name, mode) as fh:
                fh.write(content)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_spec(path: str | Path) -> ModelSpec:
    """Read and check a checkpoint's description without loading weights."""
    p = recover_checkpoint(path)
    meta_path = p / META_FILE if p.is_dir() else p
    if p.is_file() and p.name == WEIGHTS_FILE:
        meta_path = p.with_name(META_FILE)
    if not p.exists():
        raise CheckpointError(f"Checkpoint {p} does not exist; give a run's checkpoint folder (e.g. runs/x/best).")
    if not meta_path.is_file():
        raise CheckpointError(
            f"{p} is not an rs-vit checkpoint (no {META_FILE}); to use foreign weights, convert "
            "them with `rs-vit import-weights`."
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{meta_path}: is not valid JSON; the checkpoint is corrupt.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: is not an rs-vit checkpoint description.")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(
            f"{p}: checkpoint format version {version!r} is not valid (expected 1..{FORMAT_VERSION}); "
            "the checkpoint description is corrupt."
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{p}: checkpoint format version {version} is newer than this rs-vit supports "
            f"({FORMAT_VERSION}); upgrade rs-vit (pip install -U rs-vit)."
        )
    fields = {k: v for k, v in meta.items() if k in ModelSpec.__dataclass_fields__}
    try:
        spec = ModelSpec(**fields)
    except TypeError as exc:
        raise CheckpointError(f"{meta_path}: missing or invalid fields ({exc}).") from None
    spec.validate(str(p))
    return spec


def load_model(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelSpec]:
    """Load a checkpoint folder into an eval-mode model on ``device`` plus its :class:`ModelSpec`.

    Only safetensors are read: no pickle, no code execution.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    spec = read_spec(p)
    if spec.extra.get("kind") in ("encoder", "mim"):  # written by `rs-vit pretrain`: no decoder
        raise CheckpointError(
            f"{p}: is a self-supervised pretrained {spec.name} encoder (rs-vit pretrain), not a segmentation "
            "model; fine-tune it first: rs-vit train --init-from " + (str(p.parent / "encoder")
                                                                      if spec.extra.get("kind") == "mim" else str(p)) + " ..."
        )
    weights = (p if p.is_dir() else p.parent) / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{p}: has no {WEIGHTS_FILE}; the checkpoint is incomplete.")
    model = build_model(spec)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: cannot be read ({exc}); the checkpoint is corrupt.") from None
    _load_state(model, state, str(weights), spec.name)
    model.eval()
    return model.to(device), spec


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str, name: str) -> None:
    from rs_vit.models.prune import obsolete_keys

    own = model.state_dict()
    gone = obsolete_keys(model)  # parts pruned since older checkpoints were written (never run)
    state = {k: v for k, v in state.items() if k not in gone}
    # safetensors stores tensors shared between modules (tied weights) once: an absent key is
    # fine when another key with the same storage is present.
    ptr = {k: v.data_ptr() for k, v in own.items()}
    present_ptrs = {ptr[k] for k in own if k in state}
    missing = [k for k in own if k not in state and ptr[k] not in present_ptrs]
    unexpected = [k for k in state if k not in own]
    bad_shape = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or bad_shape:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if bad_shape:
            detail.append(f"{len(bad_shape)} with other shapes (e.g. {bad_shape[0]})")
        raise CheckpointError(
            f"{source}: weights do not fit architecture {name} ({'; '.join(detail)}); the "
            "checkpoint was made for another architecture or is corrupt."
        )
    model.load_state_dict(state, strict=False)
