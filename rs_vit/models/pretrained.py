"""Pretrained weights: download through timm/smp (Hugging Face cache) or read a local file, then
adapt them to the run's bands by name (:mod:`rs_vit.models.adapt`).

Local files are read safely: ``.safetensors`` with safetensors, ``.pth``/``.pt``/``.bin`` with
``torch.load(weights_only=True)`` (no pickled code runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rs_vit.errors import ModelError
from rs_vit.io.bands import RGB
from rs_vit.models.adapt import AdaptReport, load_adapted
from rs_vit.models.files import WEIGHT_SUFFIXES, read_tensor_file

@dataclass(frozen=True)
class Source:
    """Where the pretrained weights of one part of a model come from.

    Attributes:
        kind: ``timm`` (``timm.create_model(name, pretrained=True)``) or ``smp``
            (``smp.encoders.get_encoder(name, weights=...)``).
        name: the timm model name or smp encoder name.
        module: the submodule of the rs-vit model the weights go to ("" for the whole model).
    """

    kind: str
    name: str
    module: str = ""


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a local weights file (safetensors or a torch state dict) without running code."""
    from rs_vit.models.adapt import clean_state_dict

    p = Path(path)
    if p.is_dir():
        p = p / "model.safetensors"
    if not p.is_file():
        raise ModelError(f"Weights file {p} does not exist; give a .safetensors/.pth/.bin file.")
    if p.suffix not in WEIGHT_SUFFIXES:
        raise ModelError(f"{p}: unknown weights format {p.suffix!r}; use one of {', '.join(WEIGHT_SUFFIXES)}.")
    obj = read_tensor_file(p)
    state = clean_state_dict(obj, str(p))
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def weights_band_names(path: str | Path) -> list[str] | None:
    """Band names stored with a weights file: an rs-vit checkpoint's (``rs_vit.json`` beside it)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if (folder / "rs_vit.json").is_file():
        from rs_vit.models.checkpoint import read_spec

        return list(read_spec(folder).bands)
    return None


def _offline_hint(what: str, exc: BaseException) -> ModelError:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    why = "HF_HUB_OFFLINE is set and they are not in the Hugging Face cache" if offline else (
        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'download failed'}")
    return ModelError(
        f"Cannot get pretrained weights for {what} ({why}). Download them where there is network "
        "(they land in the Hugging Face cache, ~/.cache/huggingface), or pass a local file in timm "
        "or smp key layout with `weights: PATH` (config model.weights, or create_model(weights=...))."
    )


def _timm_name(source: Source, tag: str) -> str:
    return source.name if tag in ("imagenet", "", "default") else f"{source.name.split('.')[0]}.{tag}"


def source_label(source: Source, tag: str) -> str:
    """Where ``download_state`` gets its weights: the Hugging Face repo id (and smp's pinned revision)."""
    if source.kind == "timm":
        import timm

        name = _timm_name(source, tag)
        cfg = timm.models.get_pretrained_cfg(name)
        return f"{cfg.hf_hub_id} (timm {name})" if cfg is not None and cfg.hf_hub_id else f"timm {name}"
    if source.kind == "smp":
        import segmentation_models_pytorch as smp

        settings = smp.encoders.encoders.get(source.name, {}).get("pretrained_settings", {}).get(tag)
        if settings:
            return f"{settings['repo_id']}@{settings['revision'][:7]} (smp {source.name})"
        return f"smp {source.name} ({tag})"
    return f"{source.kind} {source.name}"


def download_state(source: Source, tag: str) -> dict[str, torch.Tensor]:
    """The RGB state dict of a pretrained timm model or smp encoder, through the library's own
    download (``timm.create_model(pretrained=True)`` / ``smp.encoders.get_encoder(weights=tag)``,
    both reading the Hugging Face cache first). timm's classifier is dropped (``num_classes=0``)."""
    if source.kind == "timm":
        import timm

        name = _timm_name(source, tag)
        try:
            m = timm.create_model(name, pretrained=True, num_classes=0)
        except Exception as exc:  # noqa: BLE001 - network/hub errors come in many types
            raise _offline_hint(f"timm model {name}", exc) from None
        return m.state_dict()
    if source.kind == "smp":
        import segmentation_models_pytorch as smp

        try:
            enc = smp.encoders.get_encoder(source.name, in_channels=3, weights=tag)
        except Exception as exc:  # noqa: BLE001
            raise _offline_hint(f"smp encoder {source.name} ({tag})", exc) from None
        return enc.state_dict()
    raise ValueError(f"unknown source kind {source.kind}")


def init_from_weights(
    model: nn.Module,
    *,
    in_channels: int,
    band_names: Sequence[str] | None,
    band_init: str,
    pretrained: str | None,
    weights: str | Path | None,
    sources: Sequence[Source],
    weights_bands: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[AdaptReport]:
    """Initialise ``model`` from a local file (``weights``) or downloaded ``pretrained`` weights.

    Either way the input layers are adapted to ``band_names`` by name. A local file's bands come
    from ``weights_bands``, from the rs-vit checkpoint it belongs to, or (3-channel first layer)
    are taken to be ImageNet's red, green, blue.
    """
    reports: list[AdaptReport] = []
    from rs_vit.models.catalogue import is_catalogued

    if is_catalogued(pretrained):  # geospatial weights, by band name (rs_vit/models/catalogue.py)
        from rs_vit.models.catalogue import get_weights, load_entry

        main = sources[0] if len(sources) == 1 else None
        done = load_entry(model, get_weights(str(pretrained), encoder=main.name if main else None),
                          band_names=band_names, in_channels=in_channels, band_init=band_init,
                          path=weights, module=main.module if main else "", log=log)
        model.rs_vit_init_lines = done.lines()  # type: ignore[assignment]
        model.rs_vit_init_reports = [done.report]  # type: ignore[assignment]
        return [done.report]
    if weights:
        state = read_weights(weights)
        src_bands = list(weights_bands) if weights_bands else weights_band_names(weights)
        reports.append(load_adapted(model, state, in_channels=in_channels, src_bands=src_bands,
                                    dst_bands=band_names, band_init=band_init, source=str(weights)))
    elif pretrained:
        if not sources:
            raise ModelError("This model has no pretrained weights; set pretrained: null.")
        for src in sources:
            state = download_state(src, pretrained)
            target = model.get_submodule(src.module) if src.module else model
            reports.append(load_adapted(target, state, in_channels=in_channels, src_bands=RGB,
                                        dst_bands=band_names, band_init=band_init,
                                        source=source_label(src, pretrained), min_fraction=0.3))
    lines = [line for r in reports for line in r.lines()]
    model.rs_vit_init = "; ".join(r.summary() for r in reports)  # type: ignore[assignment]
    model.rs_vit_init_lines = lines  # type: ignore[assignment]  (the training log prints them)
    model.rs_vit_init_reports = reports  # type: ignore[assignment]
    if log:
        for line in lines:
            log(line)
    return reports
