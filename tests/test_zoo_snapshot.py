"""A snapshot of the model zoo (move 0 of issue 13): the redesign of ``models/`` must keep every
registered name, its family, tile rule and pretrained claim exactly as they are."""

from __future__ import annotations

from rs_vit.models.registry import get_entry, list_models

#: (name, family, tile multiple, fixed tile, pretrained sources), as registered today.
ZOO = [
    ('deeplabv3plus_resnet18', 'cnn', 32, None, ('imagenet',)),
    ('deeplabv3plus_resnet34', 'cnn', 32, None, ('imagenet',)),
    ('deeplabv3plus_resnet50', 'cnn', 32, None, ('imagenet',)),
    ('dpt_vit_base', 'dpt', 16, None, ('imagenet',)),
    ('dpt_vit_tiny', 'dpt', 16, None, ('imagenet',)),
    ('fpn_swin_tiny', 'swin', 32, None, ('imagenet',)),
    ('segformer_b0', 'segformer', 32, None, ('imagenet',)),
    ('segformer_b1', 'segformer', 32, None, ('imagenet',)),
    ('segformer_b2', 'segformer', 32, None, ('imagenet',)),
    ('segformer_b3', 'segformer', 32, None, ('imagenet',)),
    ('segformer_b4', 'segformer', 32, None, ('imagenet',)),
    ('segformer_b5', 'segformer', 32, None, ('imagenet',)),
    ('segmenter_deit_base_distilled', 'deit', 16, None, ('imagenet',)),
    ('segmenter_deit_small_distilled', 'deit', 16, None, ('imagenet',)),
    ('segmenter_deit_tiny', 'deit', 16, None, ('imagenet',)),
    ('segmenter_vit_base', 'segmenter', 16, None, ('imagenet',)),
    ('segmenter_vit_small', 'segmenter', 16, None, ('imagenet',)),
    ('segmenter_vit_tiny', 'segmenter', 16, None, ('imagenet',)),
    ('setr_mla_vit_base', 'vit', 16, None, ('imagenet',)),
    ('setr_mla_vit_small', 'vit', 16, None, ('imagenet',)),
    ('setr_mla_vit_tiny', 'vit', 16, None, ('imagenet',)),
    ('setr_naive_vit_base', 'vit', 16, None, ('imagenet',)),
    ('setr_naive_vit_tiny', 'vit', 16, None, ('imagenet',)),
    ('setr_pup_deit_base_distilled', 'deit', 16, None, ('imagenet',)),
    ('setr_pup_deit_small_distilled', 'deit', 16, None, ('imagenet',)),
    ('setr_pup_deit_tiny', 'deit', 16, None, ('imagenet',)),
    ('setr_pup_mixer_b16', 'mixer', 16, 224, ('imagenet',)),
    ('setr_pup_mixer_s16', 'mixer', 16, 224, ()),
    ('setr_pup_vit_base', 'vit', 16, None, ('imagenet',)),
    ('setr_pup_vit_small', 'vit', 16, None, ('imagenet',)),
    ('setr_pup_vit_tiny', 'vit', 16, None, ('imagenet',)),
    ('smp_model', 'smp', 32, None, ('imagenet',)),
    ('transunet_r18_vit_small', 'hybrid', 32, None, ('imagenet',)),
    ('transunet_r50_vit_base', 'hybrid', 32, None, ('imagenet',)),
    ('unet_resnet18', 'cnn', 32, None, ('imagenet',)),
    ('unet_resnet34', 'cnn', 32, None, ('imagenet',)),
    ('unet_resnet50', 'cnn', 32, None, ('imagenet',)),
    ('unet_swin_tiny', 'swin', 32, None, ('imagenet',)),
    ('upernet_swin_base', 'swin', 32, None, ('imagenet',)),
    ('upernet_swin_small', 'swin', 32, None, ('imagenet',)),
    ('upernet_swin_tiny', 'swin', 32, None, ('imagenet',)),
]


def test_zoo_entries_are_unchanged() -> None:
    got = [(n, e.family, e.tile_multiple, e.fixed_tile, tuple(e.pretrained))
           for n in list_models() for e in [get_entry(n)]]
    assert got == ZOO
