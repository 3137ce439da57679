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
