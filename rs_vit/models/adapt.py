"""Band-aware adaptation of pretrained weights: kernels follow band *names*, not positions.

timm and smp adapt an RGB first convolution to N bands by repeating its kernels cyclically by
channel position and scaling by 3/N. For Sentinel-2 in file order (B1 coastal, B2 blue, B3 green,
B4 red, ...) that puts the red kernel on the coastal band and swaps red and blue. Here the
pretrained kernel of each named source band goes to the input band with the same name; the other
input bands start by a chosen strategy (see :data:`BAND_INIT`). The same code adapts any source
band set (a 6-band foreign model to 13 bands, say) and resamples position embeddings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from rs_vit.errors import ModelError
from rs_vit.io.bands import RGB, is_generic, normalize_name

#: Strategies for input bands that have no pretrained counterpart.
#:
#: - ``mean``: the mean of the pretrained kernels; then *all* kernels are scaled by
#:   ``n_source / n_input`` so that a first-layer response to correlated bands keeps the scale the
#:   pretrained network saw (measured in docs/band-adaptation.md; the default).
#: - ``zero``: zeros, no scaling: the adapted model computes exactly what the pretrained model
#:   computes on the matched bands until training moves the new kernels.
#: - ``random``: Gaussian kernels with the pretrained kernels' standard deviation, no scaling.
#: - ``cycle``: the timm/smp behaviour, for comparison: kernels repeated by *position*, scaled by
#:   ``n_source / n_input``; band names are ignored.
BAND_INIT = ("mean", "zero", "random", "cycle")


@dataclass
class AdaptReport:
    """What :func:`load_adapted` did, for logs and tests.

    Model keys are full names in the model it was given; ``skipped`` holds *source* keys.
    """

    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, dict[str, str]] = field(default_factory=dict)  # conv key -> {band: source}
    resampled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # source keys that did not land (any reason)
    other_shape: list[str] = field(default_factory=list)  # the skipped ones whose name exists in the model
    missing: list[str] = field(default_factory=list)  # model keys not in the source
    renamed: dict[str, str] = field(default_factory=dict)  # source key -> model key, when not prefix + key
    prefix: str = ""
    source: str = "weights"
    n_source: int = 0
    band_init: str = "mean"
    scale: dict[str, float] = field(default_factory=dict)  # conv key -> factor all its kernels got

    @property
    def n_landed(self) -> int:
        """Source tensors that landed in the model (loaded, adapted or resampled)."""
        return len(self.loaded) + len(self.adapted) + len(self.resampled)

    def lines(self) -> list[str]:
        """Log lines: ``weights <source>: loaded N/M tensors``, then one line per adapted input
        layer saying which bands came from which pretrained channels and how the others started."""
        head = f"weights {self.source}: loaded {self.n_landed}/{self.n_source} tensors"
        if self.skipped:
            shown = ", ".join(self.skipped[:4]) + (", ..." if len(self.skipped) > 4 else "")
            unused = len(self.skipped) - len(self.other_shape)
            why = []
            if unused:
                why.append(f"{unused} not in this architecture")
            if self.other_shape:
                why.append(f"{len(self.other_shape)} of another shape")
            head += f" ({' and '.join(why)}: {shown})"
        if self.resampled:
            head += f"; resampled {', '.join(self.resampled)}"
        if self.missing:
            head += f"; {len(self.missing)} model tensors keep their initialisation (e.g. {self.missing[0]})"
        out = [head]
        for key, mapping in self.adapted.items():
            copied = [f"{b}<-{s}" for b, s in mapping.items() if s not in ("mean", "zero", "random")]
            inits: dict[str, list[str]] = {}
            for b, s in mapping.items():
                if s in ("mean", "zero", "random"):
                    inits.setdefault(s, []).append(b)
            layer = key[: -len(".weight")] if key.endswith(".weight") else key
            line = f"  first layer {layer} ({len(mapping)} bands): "
            line += ("pretrained channels " + ", ".join(copied)) if copied else "no band matched by name"
            for how, bands in inits.items():
                what = {"mean": "mean of the pretrained kernels", "zero": "zeros",
                        "random": "random (std of the pretrained kernels)"}[how]
                line += f"; initialised with {what}: {', '.join(bands)}"
            if self.scale.get(key, 1.0) != 1.0:
                line += f"; all kernels scaled by {self.scale[key]:.4g}"
            out.append(line)
        return out

    def summary(self) -> str:
        """One line for logs (:meth:`lines` joined)."""
        return "; ".join(s.strip() for s in self.lines())


def check_band_init(band_init: str) -> None:
    """Raise :class:`ModelError` for an unknown strategy."""
    if band_init not in BAND_INIT:
        raise ModelError(f"Unknown band_init {band_init!r}; choose one of {', '.join(BAND_INIT)}.")


def adapt_conv_weight(
    weight: torch.Tensor,
    src_bands: Sequence[str] | None,
    dst_bands: Sequence[str] | None,
    band_init: str = "mean",
    *,
    n_dst: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, str]]:
    """Adapt a first-layer kernel ``(O, C_src, kh, kw)`` to the destination bands.

    Args:
        weight: pretrained kernel, input channels in ``src_bands`` order.
        src_bands: names of the pretrained input channels (``("red", "green", "blue")`` for
            ImageNet weights); None or generic names mean "unknown".
        dst_bands: names of the new input channels; None or generic names fall back to
            ``cycle`` (nothing to match by name).
        band_init: strategy for unmatched bands, one of :data:`BAND_INIT`.
        n_dst: number of destination channels (needed when ``dst_bands`` is None).
        generator: random generator for ``random``.

    Returns:
        The new kernel ``(O, N, kh, kw)`` and, per destination band, where it came from.
    """
    check_band_init(band_init)
    c_src = weight.shape[1]
    n = len(dst_bands) if dst_bands is not None else int(n_dst or 0)
    if n < 1:
        raise ValueError("adapt_conv_weight needs dst_bands or n_dst")
    dst = [normalize_name(b) for b in dst_bands] if dst_bands else [f"band{i + 1}" for i in range(n)]
    src = [normalize_name(b) for b in src_bands] if src_bands else [f"band{i + 1}" for i in range(c_src)]
    if len(src) != c_src:
        raise ModelError(
            f"Pretrained first layer has {c_src} input channels but {len(src)} band names were "
            f"given for it ([{', '.join(src)}]); describe the weights' bands correctly."
        )
    w = weight.detach().float()
    by_name = not (is_generic(src) or is_generic(dst)) and band_init != "cycle"
    if not by_name and src == dst:  # same generic layout: nothing to adapt
        return w.clone().to(weight.dtype), {b: b for b in dst}
    out = torch.empty(w.shape[0], n, *w.shape[2:], dtype=torch.float32)
    origin: dict[str, str] = {}
    if not by_name:  # timm/smp cyclic behaviour (by position)
        for i in range(n):
            out[:, i] = w[:, i % c_src]
            origin[dst[i]] = f"{src[i % c_src]}*{c_src}/{n}"
        out *= c_src / n
        return out.to(weight.dtype), origin
    mean_kernel = w.mean(dim=1)
    std = float(w.std()) if w.numel() > 1 else 0.0
    unmatched = 0
    for i, b in enumerate(dst):
        if b in src:
            out[:, i] = w[:, src.index(b)]
            origin[b] = b
            continue
        unmatched += 1
        if band_init == "mean":
            out[:, i] = mean_kernel
            origin[b] = "mean"
        elif band_init == "zero":
            out[:, i] = 0.0
            origin[b] = "zero"
        else:
            out[:, i] = torch.randn(mean_kernel.shape, generator=generator) * std
            origin[b] = "random"
    if band_init == "mean" and unmatched:
        out *= c_src / n
    return out.to(weight.dtype), origin


# -- finding the input layers -----------------------------------------------------------------

def find_input_convs(model: nn.Module, in_channels: int) -> list[str]:
    """Names of the modules that read the raw input bands, found generically.

    A timm model (also inside an smp ``tu-`` encoder) names its input layer in
    ``pretrained_cfg['first_conv']``; otherwise the first ``nn.Conv2d`` (in registration order)
    whose ``in_channels`` equals the number of bands is taken, which is the stem of ResNets,
    EfficientNets, MiT (``patch_embed1.proj``) and the hand-written models here.
    """
    found: list[str] = []
    for prefix, module in model.named_modules():
        cfg = getattr(module, "pretrained_cfg", None)
        if not isinstance(cfg, dict) or not cfg.get("first_conv"):
            continue
        firsts = cfg["first_conv"]
        for fc in [firsts] if isinstance(firsts, str) else list(firsts):
            name = f"{prefix}.{fc}" if prefix else fc
            try:
                conv = model.get_submodule(name)
            except AttributeError:
                continue
            if isinstance(conv, nn.Conv2d) and conv.in_channels == in_channels and name not in found:
                found.append(name)
    if found:
        return found
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == in_channels:
            return [name]
    return []


# -- loading a state dict with adaptation --------------------------------------------------

def clean_state_dict(obj: object, source: str = "weights") -> dict[str, torch.Tensor]:
    """Unwrap ``{"state_dict": ...}``/``{"model": ...}`` containers and DDP ``module.`` prefixes."""
    for _ in range(3):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            for key in ("state_dict", "model_state_dict", "model", "module", "net", "weights"):
                if isinstance(obj.get(key), dict):
                    obj = obj[key]
                    break
            else:
                break
    if not isinstance(obj, dict) or not obj:
        raise ModelError(f"{source}: holds no state dict of tensors; give a timm/smp weights file.")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if not state:
        raise ModelError(f"{source}: holds no tensors; give a timm/smp weights file.")
    return state


_FLAT = re.compile(r"^(\w+)\.(\d+)\.")


def _aliases(key: str) -> list[str]:
    """A source key and the name it has in a timm *features* model (``features_only=True``, as smp's
    ``tu-`` encoders build it), which flattens top-level sequentials: ``layers.0.x`` -> ``layers_0.x``."""
    flat = _FLAT.sub(r"\1_\2.", key, count=1)
    return [key] if flat == key else [key, flat]


def _best_prefix(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """The module prefix under which most source keys exist in the model (timm layout inside an
    smp encoder is ``encoder.model.``; an smp encoder's is ``encoder.``; a whole model's ``""``)."""
    candidates: dict[str, int] = {}
    sample = list(state)[:: max(1, len(state) // 64)]
    for sk in sample:
        for alias in _aliases(sk):
            for mk in own:
                if mk == alias or mk.endswith("." + alias):
                    p = mk[: len(mk) - len(alias)]
                    candidates[p] = candidates.get(p, 0) + 1
    if not candidates:
        return ""
    return max(candidates.items(), key=lambda kv: (kv[1], -len(kv[0])))[0]


def _model_key(sk: str, prefix: str, own: dict[str, torch.Tensor]) -> str | None:
    """The model key a source key lands on: ``prefix + key``, else its features-model alias."""
    for alias in _aliases(sk):
        if prefix + alias in own:
            return prefix + alias
    return None


def _num_prefix_tokens(model: nn.Module, key: str) -> int:
    owner = key.rsplit(".", 1)[0] if "." in key else ""
    try:
        mod = model.get_submodule(owner) if owner else model
    except AttributeError:
        return 1
    return int(getattr(mod, "num_prefix_tokens", 1) or 0)


def _resample_pos_embed(src: torch.Tensor, dst_shape: torch.Size, n_prefix: int) -> torch.Tensor | None:
    """Resample a ``(1, prefix + g*g, D)`` position embedding to the model's grid (and prefix)."""
    from timm.layers import resample_abs_pos_embed

    if src.ndim != 3 or len(dst_shape) != 3 or src.shape[-1] != dst_shape[-1]:
        return None
    src_prefix = src.shape[1] - math.isqrt(src.shape[1]) ** 2
    so, sn = math.isqrt(src.shape[1] - src_prefix), math.isqrt(dst_shape[1] - n_prefix)
    if sn * sn != dst_shape[1] - n_prefix or src_prefix < n_prefix:
        return None
    out = resample_abs_pos_embed(src[:, src_prefix - n_prefix:].float(), [sn, sn], [so, so],
                                 num_prefix_tokens=n_prefix)
    return out.to(src.dtype)


def load_adapted(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    in_channels: int,
    src_bands: Sequence[str] | None,
    dst_bands: Sequence[str] | None,
    band_init: str = "mean",
    source: str = "weights",
    min_fraction: float = 0.5,
    seed: int = 0,
) -> AdaptReport:
    """Load a (timm-, smp- or rs-vit-layout) state dict into ``model``, adapting it on the way.

    The input convolutions (:func:`find_input_convs`) get their kernels by band name
    (:func:`adapt_conv_weight`); absolute position embeddings are resampled to the model's grid;
    tensors of other shapes (e.g. a classifier for 1000 ImageNet classes) are skipped. Source
    bands left as None are ImageNet's red, green, blue when the first layer has 3 channels.

    Raises:
        ModelError: when less than ``min_fraction`` of the source tensors fit the model.
    """
    check_band_init(band_init)
    own = model.state_dict()
    prefix = _best_prefix(own, state)
    report = AdaptReport(prefix=prefix, source=source, n_source=len(state), band_init=band_init)
    input_convs = {f"{n}.weight" for n in find_input_convs(model, in_channels)}
    gen = torch.Generator().manual_seed(seed)
    new: dict[str, torch.Tensor] = {}
    for sk, value in state.items():
        mk = _model_key(sk, prefix, own)
        if mk is None:
            report.skipped.append(sk)
            continue
        if mk != prefix + sk:
            report.renamed[sk] = mk
        target = own[mk]
        if mk in input_convs and value.ndim == 4 and value.shape[0] == target.shape[0]:
            sb = src_bands if src_bands is not None else (RGB if value.shape[1] == 3 else None)
            adapted, origin = adapt_conv_weight(value, sb, dst_bands, band_init,
                                                n_dst=in_channels, generator=gen)
            if tuple(adapted.shape) == tuple(target.shape):
                new[mk] = adapted.to(target.dtype)
                report.adapted[mk] = origin
                if any(o == "mean" or "*" in o for o in origin.values()):
                    report.scale[mk] = value.shape[1] / in_channels
                continue
        if tuple(value.shape) == tuple(target.shape):
            new[mk] = value.to(target.dtype)
            report.loaded.append(mk)
            continue
        if "pos_embed" in mk.rsplit(".", 1)[-1] or mk.endswith("pos_embed"):
            res = _resample_pos_embed(value, target.shape, _num_prefix_tokens(model, mk))
            if res is not None:
                new[mk] = res.to(target.dtype)
                report.resampled.append(f"{mk} {tuple(value.shape)}->{tuple(target.shape)}")
                continue
        report.skipped.append(sk)
        report.other_shape.append(sk)
    used = len(new)
    if used == 0 or used < min_fraction * len(state):
        raise ModelError(
            f"{source}: only {used} of {len(state)} tensors fit this architecture (e.g. "
            f"{report.skipped[0] if report.skipped else '-'} has no counterpart); the weights were "
            "made for another model: pick the matching model name or convert them with "
            "`rs-vit import-weights`."
        )
    report.missing = [k for k in own if k not in new]
    # nn.Module's own method: some smp encoders override load_state_dict without ``strict``
    # (MixVisionTransformerEncoder) or with their own key filters; the keys are resolved above.
    nn.Module.load_state_dict(model, new, strict=False)
    return report
