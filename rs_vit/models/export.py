"""Export a checkpoint to ONNX: a self-describing ``model.onnx`` that ONNX Runtime can run alone.

The model is exported in evaluation form (e.g. SegFormer's folded decoder, batch norms with their
running statistics) by PyTorch's ``torch.export``-based exporter (``dynamo=True``). The older
TorchScript exporter cannot be used: it has no ONNX form of the anti-aliased bicubic resampling
that timm applies to ViT position embeddings at other tile sizes (``aten::_upsample_bicubic2d_aa``),
nor of UPerNet's adaptive pooling with symbolic sizes. ``torch.export`` keeps the resampling as an
ONNX ``Resize`` (cubic, antialias) on the symbolic token grid, so ViT exports keep dynamic tile sizes.

The graph maps a normalised float32 batch ``input`` ``(B, bands, H, W)`` to class ``logits``
``(B, classes, H, W)``: the batch is always dynamic; height and width are dynamic (any multiple of
the model's tile rule) for every family except those listed in :data:`FIXED_TILE_FAMILIES`, which are
exported for one tile size. Normalisation, nodata handling and softmax stay outside the graph, as
in the PyTorch engine; everything needed to do them is stored in the file's ``metadata_props``
(key ``rs_vit``, a JSON document; plus a few flat keys) and in a JSON sidecar
``<model>.onnx.json`` beside it, so an exported file is as self-describing as a checkpoint.

Options: ``fp16`` (weights and activations in float16, float32 inputs and outputs; meant for GPU
providers, though ONNX Runtime's CPU provider runs it too) and ``quantize="int8"``
(ONNX Runtime dynamic quantisation of MatMul/Gemm weights to int8; activations are quantised on
the fly; convolutions stay float32). Each export is checked against PyTorch with ONNX Runtime
(probabilities, at the export tile and, for dynamic exports, a second tile size).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rs_vit import __version__
from rs_vit.errors import CheckpointError, ConfigError, ModelError
from rs_vit.models.checkpoint import META_FILE, WEIGHTS_FILE, ModelSpec, load_model, read_spec

FORMAT = "rs-vit-onnx"
FORMAT_VERSION = 1
#: Default ONNX opset: supported by every ONNX Runtime since 1.14 (and by this exporter).
OPSET = 18
META_KEY = "rs_vit"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
QUANTIZE = ("int8",)
#: Max. abs. difference of probabilities (ONNX Runtime vs PyTorch) accepted for a float32 export.
FP32_TOLERANCE = 1e-3
INSTALL_HINT = 'pip install "rs-vit[onnx]"'

#: Families whose exported graph is valid for one tile size only, and why.
FIXED_TILE_FAMILIES: dict[str, str] = {
    "swin": "Swin pads the token grid to whole attention windows by amounts computed in Python, "
            "which the exporter fixes to the traced size",
}
#: Families that cannot be exported at all, and why (none today; a failing export is refused
#: with the exporter's own reason).
NOT_EXPORTABLE: dict[str, str] = {}
#: One model per family whose export tests/test_export_onnx.py checks against PyTorch.
TESTED = {
    "segformer": "segformer_b0", "swin": "upernet_swin_tiny", "vit": "setr_naive_vit_tiny",
    "segmenter": "segmenter_vit_tiny", "deit": "setr_pup_deit_small_distilled", "dpt": "dpt_vit_tiny",
    "hybrid": "transunet_r18_vit_small", "cnn": "unet_resnet18", "mixer": "setr_pup_mixer_s16",
    "smp": "smp_model (ukis-csmask U-Net EfficientNet-B4)",
}


def export_support(name: str) -> str:
    """How a registered model exports: ``any tile``, ``tile fixed at export``, ``224 only``, or
    ``no: <reason>`` (for ``rs-vit models`` and the docs)."""
    from rs_vit.models.registry import get_entry

    e = get_entry(name)
    if e.family in NOT_EXPORTABLE:
        return f"no: {NOT_EXPORTABLE[e.family]}"
    if e.fixed_tile is not None:
        return f"{e.fixed_tile} only"
    if e.family in FIXED_TILE_FAMILIES:
        return "tile fixed at export"
    return "any tile"


def _import_onnx() -> Any:
    try:
        import onnx
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401  (torch's exporter writes the graph with it)
    except ImportError:
        raise ConfigError(f"ONNX export needs the onnx, onnxscript and onnxruntime packages: {INSTALL_HINT}.") from None
    return onnx


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote and measured."""

    path: Path
    sidecar: Path
    metadata: dict[str, Any]
    seconds: float
    size_bytes: int
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float | None:
        """Largest probability difference to PyTorch over the checks (None: not checked)."""
        diffs = [c["max_abs_prob_diff"] for c in self.checks if c.get("max_abs_prob_diff") is not None]
        return max(diffs) if diffs else None


class _Logits(nn.Module):
    """The exported function: logits at the input's size (the engine's own rule)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        if y.shape[-2:] != x.shape[-2:]:
            y = torch.nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return y


def _tile_rule(spec: ModelSpec) -> tuple[str, int, int | None]:
    """(family, tile multiple, fixed tile or None) of a checkpoint's model."""
    from rs_vit.models.registry import find_entry

    entry = find_entry(spec.name)
    family = entry.family if entry else str(spec.extra.get("family", "smp"))
    multiple = entry.tile_multiple if entry else int(spec.extra.get("tile_multiple") or 32)
    fixed = entry.fixed_tile if entry else spec.extra.get("fixed_tile")
    return family, multiple, fixed


def _torch_export(module: nn.Module, x: torch.Tensor, opset: int, dynamic_hw: bool, multiple: int) -> bytes:
    """ONNX bytes of ``module`` traced on ``x`` by ``torch.export`` (batch dynamic, and height
    and width as multiples of ``multiple`` when ``dynamic_hw``)."""
    from torch.export import Dim

    dims: dict[int, Any] = {0: Dim("batch", min=1, max=65536)}
    if dynamic_hw:
        top = max(2, 16384 // multiple)
        dims[2] = multiple * Dim("height_blocks", min=1, max=top)
        dims[3] = multiple * Dim("width_blocks", min=1, max=top)
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(module, (x,), None, dynamo=True, dynamic_shapes={"x": dims},
                                 input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                 opset_version=opset, external_data=False, optimize=True, verbose=False)
    assert prog is not None
    return prog.model_proto.SerializeToString()


def _ort_session(model_bytes: bytes, threads: int | None = None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3  # constant-folding notices are not the user's concern
    so.intra_op_num_threads = threads or torch.get_num_threads()
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def _check(model: nn.Module, session: Any, in_channels: int, sizes: list[int], batch: int = 2,
           seed: int = 0) -> list[dict[str, Any]]:
    """Probabilities of ONNX Runtime vs PyTorch (float32) on the same random normalised inputs."""
    out = []
    g = torch.Generator().manual_seed(seed)
    for s in sizes:
        x = torch.randn(batch, in_channels, s, s, generator=g)
        with torch.no_grad():
            ref = torch.softmax(_Logits(model)(x).float(), 1).numpy()
        got = session.run(None, {INPUT_NAME: x.numpy()})[0]
        p = torch.softmax(torch.from_numpy(np.asarray(got, dtype=np.float32)), 1).numpy()
        out.append({"tile": s, "batch": batch, "max_abs_prob_diff": float(np.abs(p - ref).max()),
                    "argmax_agreement": float((p.argmax(1) == ref.argmax(1)).mean())})
    return out


def _metadata(spec: ModelSpec, checkpoint: Path, *, family: str, multiple: int, tile: int, dynamic_hw: bool,
              opset: int, precision: str) -> dict[str, Any]:
    import onnxruntime as ort

    folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
    weights = folder / WEIGHTS_FILE
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "rs_vit_version": __version__,
        "spec": asdict(spec),
        "input": {"name": INPUT_NAME, "dtype": "float32", "layout": "NCHW", "bands": list(spec.bands),
                  "normalisation": "(value - mean) / std per band, on the scene's raw values",
                  "mean": list(spec.mean), "std": list(spec.std), "nodata": spec.nodata,
                  "nodata_fill": "0 after normalisation (the band mean); masked in the output"},
        "output": {"name": OUTPUT_NAME, "kind": "logits", "softmax_axis": 1,
                   "classes": [dict(c) for c in spec.classes]},
        "tile": {"size": tile, "multiple": multiple, "dynamic_batch": True, "dynamic_height_width": dynamic_hw,
                 "fixed": None if dynamic_hw else tile,
                 "rule": (f"any multiple of {multiple}" if dynamic_hw else f"exactly {tile} x {tile}")},
        "source": {"checkpoint": checkpoint.name or str(checkpoint), "model": spec.name, "family": family,
                   "weights_sha256": sha256_file(weights) if weights.is_file() else None,
                   "description_sha256": sha256_file(folder / META_FILE) if (folder / META_FILE).is_file() else None},
        "export": {"exporter": f"torch.export (torch.onnx.export dynamo=True), torch {torch.__version__}",
                   "opset": opset, "precision": precision, "onnxruntime_checked": ort.__version__},
    }


def _flat_props(meta: dict[str, Any]) -> dict[str, str]:
    """Flat ``metadata_props`` for tools that do not parse the ``rs_vit`` JSON document."""
    spec = meta["spec"]
    return {
        META_KEY: json.dumps(meta, default=str),
        "bands": json.dumps(spec["bands"]), "mean": json.dumps(spec["mean"]), "std": json.dumps(spec["std"]),
        "nodata": json.dumps(spec["nodata"]), "classes": json.dumps([c["name"] for c in spec["classes"]]),
        "class_colors": json.dumps([c.get("color") for c in spec["classes"]]),
        "tile_size": str(meta["tile"]["size"]), "tile_rule": meta["tile"]["rule"],
        "source_weights_sha256": str(meta["source"]["weights_sha256"]),
        "precision": meta["export"]["precision"], "rs_vit_version": __version__,
    }


def _set_metadata(proto: Any, meta: dict[str, Any]) -> None:
    del proto.metadata_props[:]
    for k, v in _flat_props(meta).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.doc_string = (f"rs-vit {meta['source']['model']} ({meta['export']['precision']}): normalised "
                        f"{len(meta['spec']['bands'])}-band input -> {meta['spec']['num_classes']}-class logits; "
                        f"description in metadata_props['{META_KEY}'].")
    proto.producer_name, proto.producer_version = "rs-vit", __version__


def _fp16(model_bytes: bytes) -> bytes:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = onnx.load_from_string(model_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(proto, keep_io_types=True)
    return half.SerializeToString()


def _int8(model_bytes: bytes, workdir: Path) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = workdir / "fp32.onnx", workdir / "int8.onnx"
    src.write_bytes(model_bytes)
    logging.disable(logging.WARNING)  # ORT logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    finally:
        logging.disable(logging.NOTSET)
    import onnx

    if not any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul", "QGemm")
               for n in onnx.load(str(dst), load_external_data=False).graph.node):
        raise ConfigError("--quantize int8 found no MatMul/Gemm layer to quantise (a convolutional model): the "
                          "result would be the float32 graph; use the float32 export.")
    return dst.read_bytes()


def export_onnx(
    checkpoint: str | Path,
    path: str | Path,
    *,
    opset: int = OPSET,
    dynamic: bool = True,
    fp16: bool = False,
    quantize: str | None = None,
    tile_size: int | None = None,
    verify: bool = True,
    overwrite: bool = False,
) -> ExportResult:
    """Export an rs-vit checkpoint to a self-describing ONNX file (plus ``<path>.json``).

    Args:
        checkpoint: checkpoint folder (or its ``rs_vit.json``); or a float32 ``.onnx`` export
            to convert with ``fp16`` / ``quantize`` (see :func:`convert_onnx`).
        path: the ``.onnx`` file to write.
        opset: ONNX opset (default :data:`OPSET`).
        dynamic: keep height and width dynamic where the architecture allows (the batch is
            always dynamic); False fixes them to ``tile_size``.
        fp16: convert weights and activations to float16 (inputs and outputs stay float32).
        quantize: ``"int8"``: dynamic int8 quantisation of MatMul/Gemm weights (ONNX Runtime).
        tile_size: the tile traced (default: the checkpoint's); the one tile a fixed-size
            export accepts.
        verify: compare ONNX Runtime's probabilities with PyTorch's (float32: at most
            :data:`FP32_TOLERANCE` apart, else refused).
        overwrite: replace existing files.

    Returns:
        :class:`ExportResult` (paths, metadata, checks, seconds).

    Raises:
        ConfigError: onnx/onnxruntime missing, bad options. ModelError: the model cannot be
        exported (the reason named). CheckpointError: unreadable checkpoint. OutputError: paths.
    """
    import tempfile

    from rs_vit.models.registry import check_tile
    from rs_vit.io.atomic import check_output

    _import_onnx()  # one-line error with the install hint when the extra is missing
    t0 = time.perf_counter()
    out = Path(path)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--onnx {out}: give a file name ending in .onnx.")
    sidecar = out.with_name(out.name + ".json")
    check_output(out, overwrite=overwrite, label="ONNX file")
    check_output(sidecar, overwrite=overwrite, label="ONNX description")
    if quantize is not None and quantize not in QUANTIZE:
        raise ConfigError(f"Unknown --quantize {quantize!r}; choose {', '.join(QUANTIZE)}.")
    if fp16 and quantize:
        raise ConfigError("Give --fp16 or --quantize int8, not both.")
    if not 13 <= int(opset) <= 23:
        raise ConfigError(f"--opset {opset} is outside what this exporter writes (13..23); 17 or 18 suit "
                          "current ONNX Runtime.")
    ckpt = Path(checkpoint)
    if ckpt.suffix.lower() == ".onnx":
        if fp16 or quantize:  # a float32 export converted, without tracing again
            return convert_onnx(ckpt, out, fp16=fp16, quantize=quantize, verify=verify, overwrite=overwrite)
        raise ConfigError(f"{ckpt} is already an ONNX export; give the rs-vit checkpoint it came from "
                          "(or --fp16 / --quantize int8 to convert it).")
    spec = read_spec(ckpt)
    family, multiple, fixed = _tile_rule(spec)
    if family in NOT_EXPORTABLE:
        raise ModelError(f"Model {spec.name} cannot be exported to ONNX: {NOT_EXPORTABLE[family]}.")
    tile = int(tile_size if tile_size is not None else (fixed or spec.tile_size))
    check_tile(spec.name, tile, tile_multiple=spec.extra.get("tile_multiple"), fixed_tile=spec.extra.get("fixed_tile"))
    dynamic_hw = bool(dynamic) and fixed is None and family not in FIXED_TILE_FAMILIES
    notes = []
    if dynamic and not dynamic_hw:
        notes.append(f"tile fixed at {tile} x {tile}: "
                     + (FIXED_TILE_FAMILIES.get(family) or "the model's token-mixing layers fix the token count"))
    model, spec = load_model(ckpt)
    model = model.float().eval()
    x = torch.randn(2, spec.in_channels, tile, tile, generator=torch.Generator().manual_seed(0))
    try:
        model_bytes = _torch_export(_Logits(model), x, opset, dynamic_hw, multiple)
    except Exception as exc:  # the exporter's reasons are many; name the first line
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise ModelError(f"Model {spec.name} cannot be exported to ONNX ({type(exc).__name__}: {first[:300]}); "
                         "export with --no-dynamic, or predict with the checkpoint itself.") from None
    precision = "fp16" if fp16 else (quantize or "fp32")
    meta = _metadata(spec, ckpt, family=family, multiple=multiple, tile=tile, dynamic_hw=dynamic_hw,
                     opset=opset, precision=precision)
    if notes:
        meta["export"]["notes"] = notes
    sizes = [tile] + ([tile + multiple if tile <= 2 * multiple else tile - multiple] if dynamic_hw else [])
    checks: list[dict[str, Any]] = []
    if verify:  # the float32 graph must match PyTorch before anything is converted or written
        session = _ort_session(model_bytes)
        checks = _check(model, session, spec.in_channels, sizes)
        worst = max(c["max_abs_prob_diff"] for c in checks)
        if worst > FP32_TOLERANCE:
            raise ModelError(f"Model {spec.name}: the ONNX graph differs from PyTorch (max. probability "
                             f"difference {worst:.2g} > {FP32_TOLERANCE:g} at tiles {sizes}); export with "
                             "--no-dynamic, or predict with the checkpoint itself.")
    if fp16:
        model_bytes = _fp16(model_bytes)
    elif quantize == "int8":
        with tempfile.TemporaryDirectory(dir=out.parent if str(out.parent) else None) as tmp:
            model_bytes = _int8(model_bytes, Path(tmp))
    if verify and precision != "fp32":
        try:
            checks = _check(model, _ort_session(model_bytes), spec.in_channels, sizes)
        except Exception as exc:  # e.g. CPU provider without float16 kernels
            checks = _not_checked(exc, sizes)
    return _write_export(out, sidecar, model_bytes, meta, checks, overwrite=overwrite, t0=t0)


def _not_checked(exc: BaseException, tiles: Sequence[int]) -> list[dict[str, Any]]:
    """The check records of an export ONNX Runtime could not run (e.g. no float16 CPU kernels)."""
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return [{"tile": t, "batch": 2, "max_abs_prob_diff": None,
             "not_checked": f"ONNX Runtime CPU could not run it ({first})"} for t in tiles]


def _write_export(out: Path, sidecar: Path, model_bytes: bytes, meta: dict[str, Any],
                  checks: list[dict[str, Any]], *, overwrite: bool, t0: float) -> ExportResult:
    """Store the description in the model's metadata and the sidecar, and write both atomically."""
    import onnx

    from rs_vit.io.atomic import atomic_write_bytes, atomic_write_text

    meta["export"]["checks"] = checks
    proto = onnx.load_from_string(model_bytes)
    _set_metadata(proto, meta)
    data = proto.SerializeToString()
    atomic_write_bytes(out, data, overwrite=overwrite)
    atomic_write_text(sidecar, json.dumps(meta, indent=2, default=str) + "\n", overwrite=overwrite)
    return ExportResult(path=out, sidecar=sidecar, metadata=meta, seconds=time.perf_counter() - t0,
                        size_bytes=len(data), checks=checks)


def convert_onnx(source: str | Path, path: str | Path, *, fp16: bool = False, quantize: str | None = None,
                 verify: bool = True, overwrite: bool = False) -> ExportResult:
    """Convert a float32 rs-vit export to float16 or int8 without tracing the model again.

    The description is copied (precision updated, the source file's SHA-256 recorded); with
    ``verify`` the converted graph's probabilities are compared with the float32 file's on the
    CPU provider (a float16 graph the CPU provider cannot run is recorded as not checked).
    """
    import tempfile

    from rs_vit.io.atomic import check_output

    _import_onnx()  # one-line error with the install hint when the extra is missing
    t0 = time.perf_counter()
    src, out = Path(source), Path(path)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"{out}: give a file name ending in .onnx.")
    if (quantize is None) == (not fp16) or (quantize is not None and quantize not in QUANTIZE):
        raise ConfigError("Give fp16=True or quantize='int8' (one of them).")
    sidecar = out.with_name(out.name + ".json")
    check_output(out, overwrite=overwrite, label="ONNX file")
    check_output(sidecar, overwrite=overwrite, label="ONNX description")
    meta = read_onnx_metadata(src)
    if meta["export"].get("precision") != "fp32":
        raise ConfigError(f"{src} is a {meta['export'].get('precision')} export; convert the float32 one.")
    fp32 = src.read_bytes()
    if fp16:
        model_bytes = _fp16(fp32)
    else:
        with tempfile.TemporaryDirectory(dir=out.parent if str(out.parent) else None) as tmp:
            model_bytes = _int8(fp32, Path(tmp))
    meta = json.loads(json.dumps(meta))
    meta["export"].update(precision="fp16" if fp16 else str(quantize), converted_from={
        "file": src.name, "sha256": sha256_file(src)})
    checks: list[dict[str, Any]] = []
    if verify:
        tile = int(meta["tile"]["size"])
        n = len(meta["spec"]["bands"])
        x = torch.randn(2, n, tile, tile, generator=torch.Generator().manual_seed(0)).numpy()
        ref = torch.softmax(torch.from_numpy(_ort_session(fp32).run(None, {INPUT_NAME: x})[0]), 1).numpy()
        try:
            got = _ort_session(model_bytes).run(None, {INPUT_NAME: x})[0]
            p = torch.softmax(torch.from_numpy(np.asarray(got, np.float32)), 1).numpy()
            checks = [{"tile": tile, "batch": 2, "reference": "float32 ONNX",
                       "max_abs_prob_diff": float(np.abs(p - ref).max()),
                       "argmax_agreement": float((p.argmax(1) == ref.argmax(1)).mean())}]
        except Exception as exc:  # e.g. CPU provider without float16 kernels
            checks = _not_checked(exc, [tile])
    return _write_export(out, sidecar, model_bytes, meta, checks, overwrite=overwrite, t0=t0)


def read_onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The rs-vit description of an exported ONNX file: its ``metadata_props['rs_vit']`` (read
    with ``onnx`` when installed, else ONNX Runtime), or else the ``<file>.json`` sidecar.

    Raises:
        CheckpointError: the file is missing, not ONNX, or carries no rs-vit description.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"ONNX file {p} does not exist; export one with `rs-vit export CHECKPOINT --onnx {p.name}`.")
    props: dict[str, str] = {}
    try:
        import onnx

        try:
            proto = onnx.load(str(p), load_external_data=False)
        except Exception as exc:
            raise CheckpointError(f"{p}: is not a readable ONNX file ({type(exc).__name__}); re-export it.") from None
        props = {e.key: e.value for e in proto.metadata_props}
    except ImportError:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError(f"Running ONNX models needs ONNX Runtime: {INSTALL_HINT}.") from None
        try:
            props = dict(ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).get_modelmeta()
                         .custom_metadata_map)
        except Exception as exc:
            raise CheckpointError(f"{p}: is not a readable ONNX file ({type(exc).__name__}); re-export it.") from None
    text = props.get(META_KEY)
    source = f"{p} (metadata_props['{META_KEY}'])"
    sidecar = p.with_name(p.name + ".json")
    if text is None and sidecar.is_file():
        text, source = sidecar.read_text(), str(sidecar)
    if text is None:
        raise CheckpointError(f"{p}: has no rs-vit description (metadata_props['{META_KEY}'] or {sidecar.name}); "
                              "export it with `rs-vit export`, or write the sidecar by hand (see docs/deployment.md).")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        raise CheckpointError(f"{source}: is not valid JSON; re-export the model.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("spec"), dict):
        raise CheckpointError(f"{source}: is not an rs-vit ONNX description; re-export the model.")
    if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{source}: description format {meta.get('format_version')!r} is newer than this "
                              f"rs-vit reads ({FORMAT_VERSION}); upgrade rs-vit.")
    return meta


def read_onnx_spec(path: str | Path) -> ModelSpec:
    """A :class:`ModelSpec` for an exported ONNX file, named ``onnx:<model>``; its tile rule
    (``extra['tile_multiple']``, ``extra['fixed_tile']``) is the export's, not the registry's."""
    meta = read_onnx_metadata(path)
    fields = {k: v for k, v in meta["spec"].items() if k in ModelSpec.__dataclass_fields__}
    tile = meta.get("tile", {})
    try:
        spec = ModelSpec(**fields)
    except TypeError as exc:
        raise CheckpointError(f"{path}: description has missing or invalid fields ({exc}); re-export it.") from None
    spec.extra = {**spec.extra, "tile_multiple": int(tile.get("multiple") or 1), "fixed_tile": tile.get("fixed"),
                  "onnx": {"source_model": spec.name, "precision": meta.get("export", {}).get("precision", "fp32"),
                           "dynamic_height_width": bool(tile.get("dynamic_height_width"))}}
    spec.name = f"onnx:{spec.name}"
    if tile.get("fixed"):
        spec.tile_size = int(tile["fixed"])
    spec.validate(str(path))
    return spec
