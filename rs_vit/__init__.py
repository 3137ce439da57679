"""rs-vit: vision transformers for semantic segmentation of multispectral remote-sensing imagery.

The public API is small; everything else lives in subpackages::

    from rs_vit import train, pretrain, predict_scene, load_model, evaluate_mask, create_model, list_models
"""

from __future__ import annotations

import sys
import types

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "load_model",
    "predict_scene",
    "train",
    "pretrain",
    "evaluate_mask",
]


class _Package(types.ModuleType):
    """The ``rs_vit`` module's class: keeps ``rs_vit.train`` the function.

    Importing any ``rs_vit.train.<module>`` (``load_config`` does) makes Python bind the subpackage
    as the attribute ``train`` of this package, which would shadow the lazily provided function
    ``train`` (``from rs_vit import train`` would give a module: "'module' object is not
    callable"). The binding is skipped; the subpackage stays importable by its full name
    (``from rs_vit.train.loop import resume``, ``import rs_vit.train.ddp``).
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name == "train" and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.train":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):  # lazy: `import rs_vit` stays cheap (no torch import)
    if name in ("create_model", "list_models"):
        from rs_vit.models import registry

        return getattr(registry, name)
    if name == "load_model":
        from rs_vit.models.checkpoint import load_model

        return load_model
    if name == "predict_scene":
        from rs_vit.infer.engine import predict_scene

        return predict_scene
    if name == "train":
        from rs_vit.train.loop import train

        return train
    if name == "pretrain":
        from rs_vit.train.pretrain import pretrain

        return pretrain
    if name == "evaluate_mask":
        from rs_vit.evaluate.evaluator import evaluate_mask

        return evaluate_mask
    raise AttributeError(f"module 'rs_vit' has no attribute {name!r}")
