"""DeiT's distillation token as a second segmentation head (rs_vit.train.distill): trained on the
teacher, averaged with the class head at inference, saved and reloaded, old checkpoints intact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from _helpers_train import tiny_config, write_scene  # noqa: F401  (one_thread fixture)
from _helpers_train import one_thread  # noqa: F401
from rs_vit.errors import ConfigError, ModelError
from rs_vit.models.registry import create_model
from rs_vit.train.distill import (
    DistillTokenHead, check_distill_setup, distill_loss, has_distill_head, student_distill_logits,
)

TINY = "deit_tiny_distilled_patch16_224"


def _model(name: str = "setr_pup_deit_small_distilled", **kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, in_channels=4, num_classes=3, encoder=TINY, **kw)


@pytest.mark.parametrize("name", ["setr_pup_deit_small_distilled", "segmenter_deit_small_distilled"])
def test_two_heads_train_and_average(name: str) -> None:
    model = _model(name, distill_head=True)
    assert has_distill_head(model)
    x = torch.randn(2, 4, 32, 48)
    model.train()
    cls_logits = model(x)
    dist_logits = student_distill_logits(model, cls_logits)
    assert cls_logits.shape == dist_logits.shape == (2, 3, 32, 48)
    assert not torch.allclose(cls_logits, dist_logits)
    # the teacher's loss reaches the distillation token and the head, the class loss the decoder
    teacher = torch.randn(2, 3, 32, 48)
    kd = distill_loss(dist_logits, teacher, torch.ones(2, 32, 48, dtype=torch.bool), mode="hard")
    kd.backward()
    vit = model.encoder.model
    assert vit.dist_token.grad is not None and vit.dist_token.grad.abs().sum() > 0
    assert model.dist_head.film.weight.grad.abs().sum() > 0
    # eval: log of the mean of the two heads' softmaxes (DeiT's inference)
    model.eval()
    with torch.no_grad():
        out = model(x)
        feats = model.encoder(x)  # the block hook keeps the tokens; the model hook does not run
        tokens = model.dist_head._tokens
        model.dist_head._tokens = None
        if name.startswith("setr"):
            c = model.decode_head(feats)
        else:
            c = model.decoder(feats[-1])
        c = F.interpolate(c, size=x.shape[-2:], mode="bilinear", align_corners=False)
        d = F.interpolate(model.dist_head(tokens, (2, 3)), size=x.shape[-2:], mode="bilinear", align_corners=False)
    want = ((c.softmax(1) + d.softmax(1)) / 2).log()
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(2, 32, 48), atol=1e-5, rtol=1e-5)


def test_state_dict_keys_are_optional_and_round_trip(tmp_path: Path) -> None:
    from rs_vit.models.checkpoint import ModelSpec, load_model, save_checkpoint

    plain, with_head = _model(), _model(distill_head=True)
    extra = set(with_head.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("dist_head.") for k in extra)
    assert set(plain.state_dict()) <= set(with_head.state_dict())  # old checkpoints' keys unchanged
    spec = ModelSpec(name="setr_pup_deit_small_distilled", in_channels=4, num_classes=3,
                     bands=["blue", "green", "red", "nir"], mean=[0.0] * 4, std=[1.0] * 4,
                     classes=[{"id": i, "name": f"c{i}"} for i in range(3)], tile_size=32,
                     model_kwargs={"encoder": TINY, "distill_head": True})
    save_checkpoint(tmp_path / "ck", with_head.eval(), spec)
    loaded, spec2 = load_model(tmp_path / "ck")
    assert has_distill_head(loaded) and spec2.model_kwargs["distill_head"] is True
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), with_head(x))
    plain_spec = ModelSpec(**{**spec.__dict__, "model_kwargs": {"encoder": TINY}})
    save_checkpoint(tmp_path / "old", plain.eval(), plain_spec)
    old, _ = load_model(tmp_path / "old")
    assert not has_distill_head(old)


def test_refused_without_token_or_teacher() -> None:
    with pytest.raises(ModelError, match="distillation token"):
        create_model("segformer_b0", in_channels=4, num_classes=3, distill_head=True)
    with pytest.raises(ConfigError, match="teacher"):
        check_distill_setup(_model(distill_head=True), None)
    check_distill_setup(_model(), None)  # no head: nothing to check
    plain_logits = torch.randn(1, 3, 4, 4)
    assert student_distill_logits(_model(), plain_logits) is plain_logits  # pixel-wise distillation
    assert isinstance(_model(distill_head=True).dist_head, DistillTokenHead)


@pytest.mark.slow
def test_train_with_teacher_and_token_head(tmp_path: Path) -> None:
    from rs_vit.config import parse_config
    from rs_vit.models.checkpoint import load_model
    from rs_vit.train.loop import train

    paths = write_scene(tmp_path / "d", h=48, w=64)
    t = tiny_config(paths, tmp_path / "teacher", epochs=1, steps_per_epoch=2)
    t["model"]["name"] = "unet_resnet18"
    teacher = train(parse_config(t), log=lambda m: None, progress=False)
    s = tiny_config(paths, tmp_path / "student", epochs=1, steps_per_epoch=2)
    s["model"] = {"name": "setr_pup_deit_small_distilled", "kwargs": {"encoder": TINY, "distill_head": True}}
    s["distill"] = {"teacher": str(teacher.best_checkpoint), "alpha": 0.5, "mode": "hard"}
    res = train(parse_config(s), log=lambda m: None, progress=False)
    assert res.history and res.history[-1]["train_loss"] > 0
    model, spec = load_model(res.last_checkpoint)
    assert has_distill_head(model) and spec.model_kwargs["distill_head"] is True
    s.pop("distill")
    s["train"]["out_dir"] = str(tmp_path / "no_teacher")
    with pytest.raises(ConfigError, match="teacher"):
        train(parse_config(s), log=lambda m: None, progress=False)
