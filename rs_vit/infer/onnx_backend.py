"""ONNX Runtime as the sliding-window engine's model.

:class:`OnnxModel` behaves like the PyTorch models the engine runs: a module mapping a normalised
float batch ``(B, C, H, W)`` to logits ``(B, K, H, W)`` (torch tensors in and out), so reading,
blending, streaming, nodata handling, TTA and every output are the engine's own; only the forward
pass runs in ONNX Runtime. The session is created on first use for the device the engine moves the
model to: the CPU provider on ``cpu``; TensorRT and CUDA providers (when this ONNX Runtime build has
them) on ``cuda``, falling back to the CPU provider.

``load_any_model`` / ``read_any_spec`` accept a checkpoint folder or an exported ``.onnx`` file,
so ``rs-vit predict --checkpoint model.onnx`` needs no other option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rs_vit.errors import ConfigError, InputError
from rs_vit.models.checkpoint import ModelSpec, load_model, read_spec
from rs_vit.models.export import INPUT_NAME, INSTALL_HINT, read_onnx_spec

_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def is_onnx(path: str | Path) -> bool:
    """Whether ``path`` names an ONNX file (by its ``.onnx`` suffix)."""
    return Path(path).suffix.lower() == ".onnx"


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"Predicting with an ONNX model needs ONNX Runtime: {INSTALL_HINT}.") from None
    return onnxruntime


def providers_for(device: torch.device | str) -> list[str]:
    """ONNX Runtime providers for a device, best first; the CPU provider always last."""
    ort = _ort()
    available = ort.get_available_providers()
    dev = torch.device(device)
    chosen = [p for p in _GPU_PROVIDERS if p in available] if dev.type == "cuda" else []
    return [*chosen, "CPUExecutionProvider"]


class OnnxModel(nn.Module):
    """An exported rs-vit ONNX file as a model for :class:`~rs_vit.infer.engine.SlidingWindowPredictor`.

    Args:
        path: the ``.onnx`` file.
        threads: ONNX Runtime intra-op threads (default: ``torch.get_num_threads()``, the same
            count the PyTorch engine uses).
        providers: explicit ONNX Runtime providers (default: chosen from the device, see
            :func:`providers_for`).
    """

    #: Tells the engine that this model runs its own precision and memory layout.
    rs_vit_backend = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int | None = None, providers: list[str] | None = None,
                 precision: str = "fp32") -> None:
        super().__init__()
        _ort()
        self.path = Path(path)
        self.threads = threads
        self.explicit_providers = providers
        self.backend_precision = precision
        self._device = torch.device("cpu")
        self._session: Any = None

    def to(self, *args: Any, **kwargs: Any) -> OnnxModel:  # type: ignore[override]
        """Record the target device (the session is made for it on first use); dtype and
        memory-format conversions do not apply to an ONNX graph."""
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None and torch.device(device) != self._device:
            self._device = torch.device(device)
            self._session = None
        return self

    @property
    def session(self) -> Any:
        """The ONNX Runtime session (created on first use)."""
        if self._session is None:
            ort = _ort()
            so = ort.SessionOptions()
            so.log_severity_level = 3
            so.intra_op_num_threads = self.threads or torch.get_num_threads()
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            providers = self.explicit_providers or providers_for(self._device)
            try:
                self._session = ort.InferenceSession(str(self.path), so, providers=providers)
            except Exception as exc:
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                hint = (" (a float16 export needs a GPU provider: use the float32 export on the CPU)"
                        if self.backend_precision == "fp16" else "")
                raise InputError(f"{self.path}: ONNX Runtime cannot load it ({first}){hint}.") from None
        return self._session

    @property
    def providers(self) -> list[str]:
        """The providers the session actually uses."""
        return list(self.session.get_providers())

    @property
    def backend_label(self) -> str:
        """E.g. ``onnxruntime CPU`` (for the engine's one-line description)."""
        first = self.providers[0].replace("ExecutionProvider", "")
        return f"onnxruntime {first}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` float32 on ``x``'s device for a normalised batch."""
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).contiguous().numpy())
        try:
            out = self.session.run(None, {INPUT_NAME: arr})[0]
        except Exception as exc:
            if type(exc).__module__.startswith("onnxruntime"):
                first = str(exc).strip().splitlines()[0][:300]
                raise RuntimeError(f"ONNX Runtime failed on a {tuple(arr.shape)} batch: {first}") from None
            raise
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)


def load_onnx_model(path: str | Path, *, threads: int | None = None,
                    providers: list[str] | None = None) -> tuple[OnnxModel, ModelSpec]:
    """An :class:`OnnxModel` and its :class:`ModelSpec` (from the file's metadata or sidecar)."""
    _ort()
    spec = read_onnx_spec(path)
    precision = str(spec.extra.get("onnx", {}).get("precision", "fp32"))
    return OnnxModel(path, threads=threads, providers=providers, precision=precision), spec


def read_any_spec(path: str | Path) -> ModelSpec:
    """The spec of a checkpoint folder or of an exported ``.onnx`` file."""
    return read_onnx_spec(path) if is_onnx(path) else read_spec(path)


def load_any_model(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelSpec]:
    """A checkpoint folder as a PyTorch model, or an ``.onnx`` file as an :class:`OnnxModel`."""
    if is_onnx(path):
        model, spec = load_onnx_model(path)
        return model.to(device), spec
    return load_model(path, device=device)
