"""Training augmentations built with albumentations for any number of bands.

Geometry (D4 flips/rotations, random scale) is applied to image and mask together (the mask
with nearest-neighbour and ``ignore_index`` where the scaled window has no data). Radiometry is
a per-band brightness/contrast jitter on the normalised image (each band its own factors).
Every call can be made reproducible with :meth:`Augment.__call__`'s ``seed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rs_vit.config import AugmentConfig


def _per_band_jitter_cls() -> type:
    import albumentations as A

    class PerBandJitter(A.ImageOnlyTransform):
        """``x * (1 + U(-contrast, contrast)) + U(-brightness, brightness)``, drawn per band."""

        def __init__(self, brightness: float = 0.1, contrast: float = 0.1, p: float = 0.5) -> None:
            super().__init__(p=p)
            self.brightness, self.contrast = brightness, contrast

        def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
            c = data["image"].shape[-1]
            rng = self.random_generator
            return {
                "gain": (1.0 + rng.uniform(-self.contrast, self.contrast, c)).astype(np.float32),
                "bias": rng.uniform(-self.brightness, self.brightness, c).astype(np.float32),
            }

        def apply(self, img: np.ndarray, gain: np.ndarray, bias: np.ndarray, **params: Any) -> np.ndarray:
            return img * gain + bias

    return PerBandJitter


def _d4_numpy(x: np.ndarray, element: str) -> np.ndarray:
    """The D4 group element ``element`` (albumentations' codes) applied to the first two axes of
    ``x`` with NumPy, so any number of bands works (OpenCV's flip refuses more than 128)."""
    ops = {
        "e": lambda a: a,
        "r90": lambda a: np.rot90(a, 1),
        "r180": lambda a: np.rot90(a, 2),
        "r270": lambda a: np.rot90(a, 3),
        "v": lambda a: a[::-1],
        "h": lambda a: a[:, ::-1],
        "t": lambda a: a.swapaxes(0, 1),
        "hvt": lambda a: np.rot90(a, 2).swapaxes(0, 1),
    }
    if element not in ops:
        raise ValueError(f"Invalid D4 group element: {element}")
    return np.ascontiguousarray(ops[element](x))


def _numpy_d4_cls() -> type:
    import albumentations as A

    class NumpyD4(A.D4):
        """albumentations' ``D4`` (same random draws, same results) computed with NumPy, for
        images with any number of bands (hyperspectral scenes have more than OpenCV's 128)."""

        def apply(self, img: np.ndarray, group_element: str, **params: Any) -> np.ndarray:
            return _d4_numpy(img, group_element)

        def apply_to_mask(self, mask: np.ndarray, group_element: str, **params: Any) -> np.ndarray:
            return _d4_numpy(mask, group_element)

    return NumpyD4


class Augment:
    """An albumentations pipeline over ``(C, H, W)`` float32 images and ``(H, W)`` masks."""

    def __init__(self, cfg: AugmentConfig, ignore_index: int = 255) -> None:
        import albumentations as A

        ts: list[Any] = []
        if cfg.d4:
            ts.append(_numpy_d4_cls()(p=1.0))
        if cfg.scale is not None:
            lo, hi = cfg.scale
            ts.append(A.Affine(scale=(lo, hi), fill=0, fill_mask=ignore_index, p=1.0))
        if cfg.brightness > 0 or cfg.contrast > 0:
            ts.append(_per_band_jitter_cls()(cfg.brightness, cfg.contrast, p=cfg.p_jitter))
        self.transform = A.Compose(ts) if ts else None

    def __bool__(self) -> bool:
        return self.transform is not None

    def __call__(self, x: np.ndarray, y: np.ndarray, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Augment one window; the same ``seed`` gives the same result."""
        if self.transform is None:
            return x, y
        if seed is not None:
            self.transform.set_random_seed(seed)
        out = self.transform(image=np.ascontiguousarray(x.transpose(1, 2, 0)), mask=y)
        return (np.ascontiguousarray(out["image"].transpose(2, 0, 1), dtype=np.float32),
                np.ascontiguousarray(out["mask"], dtype=np.int64))
