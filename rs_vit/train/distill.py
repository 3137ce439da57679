"""DeiT-style distillation for segmentation: a (CNN) teacher checkpoint supervises a transformer
student pixel by pixel, mixed with the ground-truth loss::

    loss = (1 - alpha) * gt_loss + alpha * kd_loss

``soft``: KL divergence between the tempered softmaxes (× T², Hinton et al.); ``hard``: cross-
entropy to the teacher's argmax (DeiT's hard distillation); ``both``: their mean. The teacher
reads the student's input re-mapped to its own bands (by name) and its own normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rs_vit.errors import CheckpointError
from rs_vit.io.bands import match_bands


class Teacher(nn.Module):
    """A frozen teacher loaded from an rs-vit checkpoint, fed with the student's normalised input."""

    def __init__(self, path: str | Path, *, student_bands: Sequence[str], student_mean: np.ndarray,
                 student_std: np.ndarray, num_classes: int, device: torch.device) -> None:
        super().__init__()
        from rs_vit.models.checkpoint import load_model

        model, spec = load_model(path, device=device)
        if spec.num_classes != num_classes:
            raise CheckpointError(
                f"Teacher {path}: predicts {spec.num_classes} classes but the student has {num_classes}; "
                "train the teacher on the same classes."
            )
        idx = match_bands(list(student_bands), spec.bands, scene_label=f"Teacher {Path(path).name}: student input")
        sm, ss = np.asarray(student_mean, np.float64)[idx], np.asarray(student_std, np.float64)[idx]
        tm, ts = np.asarray(spec.mean, np.float64), np.asarray(spec.std, np.float64)
        # x_t = (x_s * ss + sm - tm) / ts = x_s * a + b
        self.register_buffer("idx", torch.tensor(idx, dtype=torch.long), persistent=False)
        self.register_buffer("a", torch.tensor(ss / ts, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("b", torch.tensor((sm - tm) / ts, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)
        self.model = model.eval().requires_grad_(False)
        self.to(device)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher logits for a batch of student inputs."""
        xt = x.index_select(1, self.idx) * self.a + self.b
        return self.model(xt.contiguous(memory_format=torch.channels_last)).float()

    def train(self, mode: bool = True) -> Teacher:  # the teacher always stays in eval mode
        return super().train(False)


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, *, mode: str = "soft",
                 temperature: float = 2.0) -> torch.Tensor:
    """Pixel-wise distillation loss averaged over ``mask`` pixels (``(B, H, W)`` bool).

    Args:
        student: ``(B, K, H, W)`` student logits.
        teacher: ``(B, K, H, W)`` teacher logits.
        mask: pixels that count (valid image pixels).
        mode: ``soft``, ``hard`` or ``both``.
        temperature: softmax temperature of the soft targets.
    """
    student = student.float()
    n = mask.sum().clamp_min(1)
    terms = []
    if mode in ("soft", "both"):
        t = temperature
        kl = F.kl_div(F.log_softmax(student / t, 1), F.log_softmax(teacher / t, 1), log_target=True,
                      reduction="none").sum(1)
        terms.append((kl * mask).sum() / n * t * t)
    if mode in ("hard", "both"):
        ce = F.cross_entropy(student, teacher.argmax(1), reduction="none")
        terms.append((ce * mask).sum() / n)
    if not terms:
        raise ValueError(f"unknown distillation mode {mode!r}")
    return sum(terms) / len(terms)


# -- DeiT's distillation token as a second, teacher-supervised segmentation head -----------------
#
# DeiT (Touvron et al. 2021) appends a *distillation token* to the class token; its output feeds a
# second classifier trained on the teacher's predictions, while the class token's classifier is
# trained on the ground truth; at inference the two classifiers' softmaxes are averaged. The
# distilled DeiT encoders (``setr_pup_deit_*_distilled``, ``segmenter_deit_*_distilled``) carry
# that token, but a segmentation decoder reads only the patch tokens. With ``distill_head: true``
# in the model's kwargs, :func:`attach_distill_head` gives such a model the second head here:
#
# * :class:`DistillTokenHead` reads the patch tokens of the encoder's last block used, modulated
#   by that block's distillation-token output (FiLM: per-channel scale and shift predicted from
#   the token), and predicts per-patch class logits, upsampled to the input size;
# * in training the model still returns the decoder's ("class head") logits, which the loop
#   trains on the ground truth, and the distillation head's logits are available to
#   :func:`student_distill_logits`, which the loop trains on the teacher (``distill:`` options);
# * in eval mode the model returns ``log((softmax(class) + softmax(distill)) / 2)``, DeiT's average
#   of the two heads, so prediction, validation and evaluation need no change.
#
# The head's parameters are ``dist_head.*`` in the state dict; the flag is recorded in the
# checkpoint's model kwargs, so ``load_model`` rebuilds the head. Models without the flag (and
# every checkpoint written before it) have exactly the keys they had.

DISTILL_HEAD_KWARG = "distill_head"


class DistillTokenHead(nn.Module):
    """Per-patch class logits from the patch tokens, conditioned on the distillation token.

    Args:
        dim: token width of the encoder.
        num_classes: output classes.
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm_patch = nn.LayerNorm(dim)
        self.norm_dist = nn.LayerNorm(dim)
        self.film = nn.Linear(dim, 2 * dim)
        nn.init.zeros_(self.film.weight)  # starts as a plain linear head on the patch tokens
        nn.init.zeros_(self.film.bias)
        self.cls = nn.Linear(dim, num_classes)
        self.num_prefix = 2  # DeiT distilled: [cls, dist, patches...]
        self.dist_index = 1
        self.patch_size = 16
        self._tokens: torch.Tensor | None = None
        self.last_logits: torch.Tensor | None = None

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``(B, N, D)`` tokens of one block → ``(B, K, h, w)`` logits on the patch grid."""
        b = tokens.shape[0]
        h, w = grid
        d = self.norm_dist(tokens[:, self.dist_index])
        p = self.norm_patch(tokens[:, self.num_prefix:self.num_prefix + h * w])
        gamma, beta = self.film(d).chunk(2, dim=-1)
        p = p * (1 + gamma[:, None]) + beta[:, None]
        return self.cls(p).transpose(1, 2).reshape(b, -1, h, w)


def _timm_encoder(model: nn.Module) -> tuple[nn.Module, list[int]]:
    """The timm ViT inside an rs-vit SETR/Segmenter model and the block indices it uses."""
    enc = getattr(model, "encoder", None)
    timm_model = getattr(enc, "model", None)
    if timm_model is None or not hasattr(timm_model, "dist_token"):
        from rs_vit.errors import ModelError

        raise ModelError(
            f"{DISTILL_HEAD_KWARG}: {type(model).__name__} has no DeiT distillation token; use a distilled "
            "DeiT model (setr_pup_deit_small_distilled, segmenter_deit_small_distilled, ..._base_distilled)."
        )
    return timm_model, list(enc.indices)


def attach_distill_head(model: nn.Module, num_classes: int) -> DistillTokenHead:
    """Give a distilled-DeiT segmentation model a distillation-token head (see above).

    Registers ``model.dist_head``, a forward hook on the encoder's deepest block used (to keep its
    full token sequence, distillation token included) and a forward hook on ``model`` that
    computes the head's logits and, in eval mode, averages the two heads.

    Raises:
        ModelError: the model's encoder has no distillation token.
    """
    vit, indices = _timm_encoder(model)
    dim = int(vit.embed_dim)
    head = DistillTokenHead(dim, num_classes)
    head.num_prefix = int(getattr(vit, "num_prefix_tokens", 2))
    head.patch_size = int(vit.patch_embed.patch_size[0])
    model.add_module("dist_head", head)
    block = vit.blocks[max(indices)]

    def keep_tokens(_mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        head._tokens = out

    def combine(mod: nn.Module, inputs: Any, out: torch.Tensor) -> torch.Tensor:
        tokens, head._tokens = head._tokens, None
        if tokens is None:
            return out
        x = inputs[0]
        grid = (x.shape[-2] // head.patch_size, x.shape[-1] // head.patch_size)
        logits = F.interpolate(head(tokens, grid), size=out.shape[-2:], mode="bilinear", align_corners=False)
        if mod.training:
            head.last_logits = logits
            return out
        head.last_logits = None
        probs = (out.float().softmax(1) + logits.float().softmax(1)) / 2  # DeiT: average of the two heads
        return probs.clamp_min(1e-12).log()

    block.register_forward_hook(keep_tokens)
    model.register_forward_hook(combine)
    return head


def has_distill_head(model: nn.Module) -> bool:
    """Whether ``model`` (or the module DDP wraps) has a distillation-token head."""
    return isinstance(getattr(getattr(model, "module", model), "dist_head", None), DistillTokenHead)


def student_distill_logits(model: nn.Module, logits: torch.Tensor) -> torch.Tensor:
    """The logits the teacher supervises: the distillation-token head's when the model has one
    (DeiT), else the model's own output (pixel-wise distillation of the single head)."""
    m = getattr(model, "module", model)
    head = getattr(m, "dist_head", None)
    if isinstance(head, DistillTokenHead):
        if head.last_logits is None:
            raise RuntimeError("the distillation head produced no logits in this forward pass")
        out, head.last_logits = head.last_logits, None
        return out
    return logits


def check_distill_setup(model: nn.Module, teacher: Any) -> None:
    """A distillation-token head is trained on a teacher: refuse it without one."""
    if teacher is None and has_distill_head(model):
        from rs_vit.errors import ConfigError

        raise ConfigError(f"model.kwargs.{DISTILL_HEAD_KWARG} trains a second head on a teacher's predictions; "
                          "give distill.teacher (--teacher runs/cnn/best) or drop the kwarg.")
