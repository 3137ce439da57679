"""Foreign weights as first-class checkpoints, and band adaptation of checkpoints.

``import_weights`` turns a weights file (timm/smp/rs-vit key layout) plus a small description
(architecture, band names, normalisation, classes, tile size) into an rs-vit checkpoint that
``predict``, ``evaluate`` and ``train --init-from`` accept like any other. ``adapt_checkpoint``
re-targets a checkpoint to another band set by name (e.g. a 6-band model to all 13 Sentinel-2
bands with ``zero`` init, which leaves its predictions unchanged).

A description (YAML or JSON)::

    model: smp_model                  # a registered name (see `rs-vit models`)
    model_kwargs: {arch: Unet, encoder: efficientnet-b4}
    bands: [blue, green, red, nir, swir16, swir22]
    mean: [0.2755, 0.2557, 0.2698, 0.3343, 0.2085, 0.1583]
    std: [0.2449, 0.2276, 0.2537, 0.2321, 0.1487, 0.1260]
    scale: 10000          # the scene stores reflectance x 10000; mean/std are for reflectance
    classes: [clear, cloud, cloud shadow]     # or [{id, name, color}]
    tile_size: 256
    nodata: 0

``scale`` is folded into the stored statistics (``mean * scale``, ``std * scale``): for a linear
normalisation ``(x / scale - m) / s == (x - m * scale) / (s * scale)`` exactly, so checkpoints keep
one normalisation rule and format version 1.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rs_vit.errors import CheckpointError, ConfigError, ModelError
from rs_vit.io.bands import normalize_name, resolve_band_names
from rs_vit.models.adapt import AdaptReport, load_adapted
from rs_vit.models.checkpoint import ModelSpec, load_model, save_checkpoint
from rs_vit.models.pretrained import read_weights
from rs_vit.models.registry import create_model, get_entry


class WeightsDescription(BaseModel):
    """What a foreign weights file is: architecture, bands, normalisation, classes."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="registered rs-vit model name, e.g. smp_model, unet_resnet34")
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    bands: list[str] = Field(min_length=1, description="band names of the input channels, in order")
    mean: list[float]
    std: list[float]
    scale: float = Field(1.0, gt=0, description="scene value = model input unit x scale")
    classes: list[str | dict[str, Any]] = Field(min_length=1)
    tile_size: int = Field(256, ge=16)
    nodata: float | None = None
    ignore_index: int = 255

    @model_validator(mode="after")
    def _lengths(self) -> WeightsDescription:
        if not (len(self.bands) == len(self.mean) == len(self.std)):
            raise ValueError(f"bands, mean and std need one entry per band (got {len(self.bands)}, "
                             f"{len(self.mean)}, {len(self.std)})")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        return self

    def class_dicts(self) -> list[dict[str, Any]]:
        out = []
        for i, c in enumerate(self.classes):
            d = {"id": i, "name": c, "color": None} if isinstance(c, str) else {"id": i, "color": None, **c}
            out.append(d)
        return out


def read_description(path: str | Path) -> WeightsDescription:
    """Load and validate a description file (YAML or JSON)."""
    from rs_vit.config import load_yaml

    p = Path(path)
    data = load_yaml(p, what="Description file", missing_hint="write one (see docs/models.md)",
                     expected="a mapping describing the weights (see docs/models.md)")
    try:
        return WeightsDescription.model_validate(data)
    except ValidationError as exc:
        msg = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'description'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{p}: {msg}.") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _new_stats(spec_bands: Sequence[str], mean: Sequence[float], std: Sequence[float],
               to_bands: Sequence[str]) -> tuple[list[float], list[float]]:
    """Statistics for ``to_bands``: known bands keep theirs; new bands get the known bands'
    average (a neutral start; with ``zero`` init they do not affect the output)."""
    known = {normalize_name(b): (m, s) for b, m, s in zip(spec_bands, mean, std)}
    avg_m = sum(mean) / len(mean)
    avg_s = sum(std) / len(std)
    ms = [known.get(normalize_name(b), (avg_m, avg_s)) for b in to_bands]
    return [float(m) for m, _ in ms], [float(s) for _, s in ms]


def adapt_model(model: torch.nn.Module, spec: ModelSpec, to_bands: Sequence[str],
                band_init: str = "zero") -> tuple[torch.nn.Module, ModelSpec, AdaptReport]:
    """A copy of ``model`` taking ``to_bands`` (by name; Sentinel-2 ids such as ``B8A`` are
    recognised), with its updated spec."""
    to = resolve_band_names(list(to_bands), source="the new band list")
    new = create_model(spec.name, in_channels=len(to), num_classes=spec.num_classes, band_names=to,
                       drop_path_rate=spec.drop_path_rate, **spec.model_kwargs)
    report = load_adapted(new, model.state_dict(), in_channels=len(to), src_bands=spec.bands,
                          dst_bands=to, band_init=band_init, source=spec.name, min_fraction=0.99)
    mean, std = _new_stats(spec.bands, spec.mean, spec.std, to)
    new_spec = ModelSpec(**{**spec.__dict__, "in_channels": len(to), "bands": to, "mean": mean, "std": std,
                            "extra": {**spec.extra, "adapted_from_bands": list(spec.bands),
                                      "band_init": band_init}})
    new_spec.validate("adapted checkpoint")
    return new.eval(), new_spec, report


def import_weights(
    weights: str | Path,
    description: str | Path | WeightsDescription,
    out: str | Path,
    *,
    to_bands: Sequence[str] | None = None,
    band_init: str = "zero",
) -> tuple[Path, list[str]]:
    """Turn a foreign weights file plus its description into an rs-vit checkpoint folder.

    Args:
        weights: .safetensors/.pth/.bin state dict (timm, smp or rs-vit key layout).
        description: a :class:`WeightsDescription` or the YAML/JSON file holding one.
        out: checkpoint folder to write.
        to_bands: optionally adapt the model to these bands (by name) before saving.
        band_init: strategy for bands the weights do not know (default ``zero``: same outputs).

    Returns:
        The checkpoint path and log lines (what was loaded, left at init, adapted).

    Raises:
        CheckpointError: the weights do not fit the described architecture.
    """
    desc = description if isinstance(description, WeightsDescription) else read_description(description)
    get_entry(desc.model)
    wpath = Path(weights)
    bands = resolve_band_names(desc.bands, source=f"description of {wpath.name}")
    classes = desc.class_dicts()
    model = create_model(desc.model, in_channels=len(bands), num_classes=len(classes), band_names=bands,
                         **desc.model_kwargs)
    state = read_weights(wpath)
    try:
        report = load_adapted(model, state, in_channels=len(bands), src_bands=bands, dst_bands=bands,
                              band_init="zero", source=str(wpath), min_fraction=0.9)
    except ModelError as exc:  # its generic hint ("convert them with import-weights") is this command
        reason = re.sub(r"[;:,]?\s*(the weights were made for another model)?[:;,]?\s*(pick the matching model "
                        r"name)?\s*(or )?convert them with `rs-vit import-weights`\.?", "", str(exc)).rstrip(" .;:")
        raise CheckpointError(
            f"{reason}; the weights do not fit {desc.model} {desc.model_kwargs}: set `model` and "
            "`model_kwargs` in the description to the architecture they were trained with (`rs-vit models` "
            "lists the names)."
        ) from None
    from rs_vit.models.prune import obsolete_keys

    gone = obsolete_keys(model)  # parts never run, pruned since such files were written
    skipped = [k for k in report.skipped if report.prefix + k not in gone]
    if skipped:
        report.skipped = skipped
        raise CheckpointError(
            f"{wpath}: {len(report.skipped)} tensors do not fit {desc.model} {desc.model_kwargs} "
            f"(e.g. {report.skipped[0]}); check the architecture and the number of bands/classes."
        )
    missing = [k for k in report.missing if not k.endswith("num_batches_tracked")]
    if len(missing) > 0.1 * len(model.state_dict()):
        raise CheckpointError(
            f"{wpath}: {len(missing)} model tensors are absent from the file (e.g. {missing[0]}); "
            "it was made for another architecture."
        )
    log = [f"loaded {len(report.loaded) + len(report.adapted)} tensors from {wpath.name}"]
    if missing:
        log.append(f"{len(missing)} tensors absent from the file keep their initialisation "
                   f"(unused by the forward pass in smp encoders, e.g. {missing[0]})")
    spec = ModelSpec(
        name=desc.model, in_channels=len(bands), num_classes=len(classes), bands=bands,
        mean=[m * desc.scale for m in desc.mean], std=[s * desc.scale for s in desc.std],
        classes=classes, tile_size=desc.tile_size, nodata=desc.nodata, ignore_index=desc.ignore_index,
        model_kwargs=dict(desc.model_kwargs),
        extra={"family": get_entry(desc.model).family,
               "imported_from": {"file": wpath.name, "sha256": _sha256(wpath),
                                 "description": desc.model_dump(mode="json")}},
    )
    spec.validate(str(wpath))
    model.eval()
    if to_bands:
        model, spec, arep = adapt_model(model, spec, to_bands, band_init)
        log.append(f"adapted to {len(spec.bands)} bands: {arep.summary()}")
    path = save_checkpoint(out, model, spec, extra_files={"description.json": json.dumps(
        desc.model_dump(mode="json"), indent=2)})
    return path, log


def adapt_checkpoint(checkpoint: str | Path, out: str | Path, to_bands: Sequence[str],
                     band_init: str = "zero") -> tuple[Path, list[str]]:
    """Write a copy of an rs-vit checkpoint that takes ``to_bands`` (matched by name)."""
    model, spec = load_model(checkpoint)
    new, new_spec, report = adapt_model(model, spec, to_bands, band_init)
    return save_checkpoint(out, new, new_spec), [f"adapted to {len(to_bands)} bands: {report.summary()}"]
