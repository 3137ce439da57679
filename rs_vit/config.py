"""Typed configuration: data, model and training sections, loaded from YAML and flags.

Unknown keys are refused with the nearest valid key suggested; wrong types and impossible
values name the field. The resolved config is saved beside every run and in every checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, PlainValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from rs_vit.errors import ConfigError, suggest


def _absolute(p: Path) -> Path:
    """An input path made absolute against the working directory (``..`` collapsed, symlinks kept).

    The rule for paths (docs/training.md, "The dataset description"): a path written in a YAML
    file is relative to that file's folder; a path given as a flag or in Python is relative to
    the working directory. Both
    are made absolute when the config is built, so the ``config.yaml`` saved in a run directory
    or checkpoint holds absolute paths and the run can be resumed or evaluated from any folder.
    """
    return Path(os.path.abspath(p))


#: An input file or folder; stored absolute (see :func:`_absolute`).
InputPath = Annotated[Path, AfterValidator(_absolute)]


def _image_ref(v: Any) -> Path | str | list[Path | str]:
    """A scene's image: URLs and GDAL ``/vsi…/`` paths stay text (a Path would fold ``https://``),
    local paths become absolute paths; a list holds per-band files. Accepts text or paths, so a
    config survives a JSON round trip (``RunConfig.model_validate_json(cfg.model_dump_json())``)."""
    if isinstance(v, (list, tuple)):
        return [_image_ref(x) for x in v]  # type: ignore[misc]
    if not isinstance(v, (str, os.PathLike)):
        raise ValueError(f"expected a path, a URL or a list of them, got {type(v).__name__}")
    s = os.fspath(v)
    return s if "://" in s or s.startswith("/vsi") else _absolute(Path(s))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ClassDef(_Section):
    """One class: its id (0..K-1: the value in predicted masks, and in label files unless
    ``value`` says otherwise), a name, an RGB colour and its code in the label files."""

    id: int = Field(ge=0, le=65534)
    name: str
    color: tuple[int, int, int] | None = None
    value: int | None = Field(
        None, description="the class's code in label files when it is not its id (e.g. 11 for NLCD "
        "open water); label files are then read through this mapping"
    )


class SceneDef(_Section):
    """One training scene and its labels."""

    image: Annotated[Path | str | list[Path | str], PlainValidator(_image_ref)] = Field(
        description="a raster, a folder or list of per-band files, a SAFE folder, a STAC item, or a URL "
        "(https://, /vsicurl/, s3://); see docs/sources.md"
    )
    labels: InputPath | None = Field(None, description="label raster on the scene grid, or vector labels")
    label_attribute: str = Field("class_id", description="vector attribute holding the class id")
    label_value: int | None = Field(
        None, description="class id burnt for every polygon of a vector file without a class attribute"
    )
    split: Literal["auto", "train", "val"] = Field(
        "auto", description="use the whole scene for training or validation, or split it spatially"
    )



class AugmentConfig(_Section):
    """Training augmentations (albumentations; any number of bands, mask kept aligned)."""

    d4: bool = Field(True, description="random flips and 90-degree rotations (the dihedral group D4)")
    scale: tuple[float, float] | None = Field(
        None, description="random rescale range, e.g. [0.75, 1.33], then crop back to the tile"
    )
    brightness: float = Field(0.0, ge=0.0, description="per-band brightness jitter (in normalised units)")
    contrast: float = Field(0.0, ge=0.0, lt=1.0, description="per-band contrast jitter (relative)")
    p_jitter: float = Field(0.5, ge=0.0, le=1.0, description="probability of the per-band jitter")


class DataConfig(_Section):
    """Where the data are and how they are split and sampled."""

    scenes: list[SceneDef] = Field(default_factory=list)
    classes: list[ClassDef] = Field(default_factory=list)
    bands: list[str] | None = Field(None, description="band names overriding the scene descriptions")
    sensor: str | None = Field(None, description="sensor preset naming the bands (e.g. sentinel2_l1c)")
    ignore_index: int = Field(255, description="label value excluded from loss and metrics")
    ignore_values: list[int] = Field(default_factory=list, description="more label values to ignore (e.g. -1)")
    background: int | None = Field(
        None, description="class id for pixels no vector polygon covers (None: ignore them)"
    )
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of each 'auto' scene held out")
    split_mode: Literal["rows", "blocks"] = Field(
        "rows",
        description="how 'auto' scenes are split: rows (the bottom val_fraction of rows) or blocks "
        "(square spatial blocks assigned to train/val at random with the seed)",
    )
    block_size: int | None = Field(
        None, ge=16, description="side of the split blocks in pixels (default: 4 x tile_size)"
    )
    chips: InputPath | None = Field(
        None, description="chip folder written by `rs-vit tile` (images/ + masks/); chips are split by chip"
    )
    stats_samples: int = Field(2_000_000, gt=0, description="pixels sampled per band for statistics")
    class_balanced: float = Field(
        0.0, ge=0.0, le=1.0,
        description="share of training windows centred on a pixel of a class drawn uniformly (rare classes seen)",
    )
    max_invalid: float = Field(
        0.9, ge=0.0, le=1.0, description="skip training windows with more ignored/nodata pixels than this share"
    )
    cache_mb: float = Field(
        2048.0, ge=0.0, description="scenes smaller than this are held in memory; larger ones are read window by window"
    )
    resolution: float | str | None = Field(
        None, description="grid of scenes given as per-band files, SAFE folders or STAC items: a pixel size in "
        "CRS units, a band name (that band's grid) or None (the finest band's)"
    )
    resampling: Literal["bilinear", "cubic", "cubicspline", "lanczos", "average", "mode", "nearest"] = Field(
        "bilinear", description="resampling of reflectance bands onto that grid (masks and classes: nearest)"
    )
    band_pattern: str | None = Field(
        None, description="regular expression with a 'band' group naming the band of each file in a band folder"
    )
    gdal_config: dict[str, str] = Field(
        default_factory=dict,
        description="GDAL options for remote scenes, e.g. {GDAL_HTTP_MAX_RETRY: '5', AWS_NO_SIGN_REQUEST: 'YES'}",
    )
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, v: list[ClassDef]) -> list[ClassDef]:
        ids = [c.id for c in v]
        if len(set(ids)) != len(ids):
            raise ValueError(f"class ids must be unique, got {ids}")
        if sorted(ids) != list(range(len(ids))):
            from rs_vit.io.labels import summarize_values

            got = sorted(ids)
            raise ValueError(
                f"class ids must be 0..{len(ids) - 1} (contiguous), got {summarize_values(got)}; for "
                "codes such as land-cover classes 11, 21, …, number the classes 0..K-1 and give each its "
                f"code in the label files as 'value' (e.g. {{id: 0, name: ..., value: {got[0]}}})"
            )
        codes = [c.value if c.value is not None else c.id for c in v]
        if len(set(codes)) != len(codes):
            raise ValueError(f"class codes in label files ('value', else 'id') must be unique, got {codes}")
        return sorted(v, key=lambda c: c.id)


class ModelConfig(_Section):
    """Which registered model to build and how to initialise it."""

    name: str = Field("segformer_b0", description="registered model name (see `rs-vit models`)")
    pretrained: str | None = Field(
        None, description="'imagenet', a timm tag, or geospatial weights from `rs-vit weights` "
        "(e.g. ssl4eo_s12_moco); None trains from scratch"
    )
    weights: InputPath | None = Field(None, description="local weights file (.safetensors/.pth) to start from")
    weights_source: str | None = Field(
        None, description="catalogue name (`rs-vit weights`) describing the `weights` file: its bands, "
        "key layout and normalisation"
    )
    normalize: Literal["auto", "weights", "data"] = Field(
        "auto", description="input normalisation: weights (the catalogue entry's own scaling and "
        "statistics), data (statistics of the training pixels); auto: weights when starting from a "
        "catalogue entry, else data"
    )
    band_init: Literal["mean", "zero", "random", "cycle"] = Field(
        "mean", description="initialisation of input bands without a pretrained counterpart"
    )
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0, description="stochastic depth (transformers)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="extra model constructor arguments")

    @model_validator(mode="after")
    def _check_weights_source(self) -> ModelConfig:
        if self.weights_source and self.weights is None:
            raise ValueError("weights_source describes a local file: set weights as well (or use "
                             f"pretrained: {self.weights_source} to download it)")
        if self.weights_source and self.pretrained and self.pretrained != self.weights_source:
            raise ValueError(f"pretrained ({self.pretrained}) and weights_source ({self.weights_source}) "
                             "name different weights; keep one")
        return self


class DistillConfig(_Section):
    """DeiT-style pixel-wise distillation from a teacher checkpoint."""

    teacher: InputPath | None = Field(None, description="teacher checkpoint folder (e.g. a CNN's runs/x/best)")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the distillation loss (1 - alpha: ground truth)")
    temperature: float = Field(2.0, gt=0.0, description="softmax temperature of the soft targets")
    mode: Literal["soft", "hard", "both"] = Field(
        "soft", description="soft: KL to the teacher's tempered softmax; hard: CE to its argmax; both: their mean"
    )


#: The loss terms ``train.loss`` can combine (built by :mod:`rs_vit.train.losses`).
LOSSES = ("ce", "dice", "focal", "lovasz")


def parse_loss_spec(spec: str) -> list[tuple[str, float]]:
    """``"ce:1+dice:0.5"`` → ``[("ce", 1.0), ("dice", 0.5)]``; unknown names raise ConfigError."""
    terms: list[tuple[str, float]] = []
    for part in spec.replace(" ", "").lower().split("+"):
        if not part:
            raise ConfigError(f"train.loss {spec!r}: empty term; write e.g. 'ce+dice'.")
        name, _, weight = part.partition(":")
        if name not in LOSSES:
            raise ConfigError(
                f"train.loss {spec!r}: unknown loss {name!r}.{suggest(name, LOSSES)} "
                f"Choose from {', '.join(LOSSES)} (combine with '+', weight with ':')."
            )
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(f"train.loss {spec!r}: weight {weight!r} is not a number.") from None
        terms.append((name, w))
    return terms


class TrainConfig(_Section):
    """The optimisation loop."""

    out_dir: Path = Field(Path("runs/run"), description="run directory (created)")
    epochs: int = Field(10, ge=1)
    steps_per_epoch: int = Field(100, ge=1, description="random training windows per epoch / batch size")
    batch_size: int = Field(8, ge=1)
    tile_size: int = Field(256, ge=16, description="training window size in pixels")
    lr: float = Field(6e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(50, ge=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on CPUs/GPUs that support it, else fp32"
    )
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    seed: int = 0
    num_workers: int = Field(0, ge=0, description="data-loading worker processes")
    val_overlap: float = Field(0.0, ge=0.0, lt=1.0, description="overlap of validation windows (fraction of the tile); each pixel is scored once, by the nearer window centre")
    overwrite: bool = Field(False, description="replace an existing run directory")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="adamw (transformers) or sgd (momentum 0.9, fine-tuning)")
    min_lr_ratio: float = Field(0.01, ge=0.0, le=1.0, description="final learning rate / peak learning rate (cosine)")
    layer_decay: float | None = Field(
        None, gt=0.0, le=1.0, description="layer-wise lr decay for the encoder (e.g. 0.75); None: off"
    )
    grad_clip: float | None = Field(1.0, gt=0.0, description="clip the gradient norm to this; None: off")
    grad_accum: int = Field(1, ge=1, description="accumulate gradients over this many batches per step")
    channels_last: bool = Field(True, description="channels-last memory format (faster convolutions)")
    loss: str = Field(
        "ce", description="ce, dice, focal, lovasz or a weighted sum, e.g. 'ce+dice' or 'ce:1+lovasz:0.5'"
    )
    class_weights: list[float] | None = Field(None, description="weight per class of the cross-entropy, Dice and focal loss terms")
    early_stopping: int | None = Field(
        None, ge=1, description="stop after this many epochs without a better validation mIoU"
    )
    init_from: InputPath | None = Field(None, description="start from the weights of an rs-vit checkpoint")
    plots: bool = Field(True, description="write curves.png and val_samples.png at the end")
    tensorboard: bool = Field(True, description="also log to TensorBoard when it is installed")
    deterministic: bool = Field(False, description="torch.use_deterministic_algorithms (slower)")


class RunConfig(_Section):
    """Everything a training run needs; saved as ``config.yaml`` in the run directory."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        bs = self.data.block_size
        if bs is not None and bs < self.train.tile_size:
            raise ValueError(
                f"data.block_size ({bs}) must be at least train.tile_size ({self.train.tile_size}) so "
                "training windows fit inside training blocks"
            )
        if self.train.class_weights is not None and self.data.classes and (
            len(self.train.class_weights) != len(self.data.classes)
        ):
            raise ValueError(
                f"train.class_weights has {len(self.train.class_weights)} values but "
                f"{len(self.data.classes)} classes are declared"
            )
        parse_loss_spec(self.train.loss)
        return self


class PretrainConfig(_Section):
    """Self-supervised masked image modelling (``rs-vit pretrain``); the loop options (epochs,
    steps, batch, tile, lr, precision, out_dir…) come from the ``train`` section."""

    method: Literal["auto", "mae", "simmim"] = Field(
        "auto", description="auto: MAE for plain-ViT encoders (ViT, DeiT, Segmenter, SETR, DPT, TransUNet), "
        "SimMIM for the others (Swin, SegFormer, Mixer, CNNs)",
    )
    mask_ratio: float | None = Field(None, gt=0.0, lt=1.0, description="share of patches masked (default 0.75 MAE, 0.6 SimMIM)")
    mask_patch: int | None = Field(
        None, ge=1, description="side of a masked square in pixels (default: the ViT patch for MAE, 32 for SimMIM)"
    )
    norm_pix_loss: bool | None = Field(
        None, description="targets normalised per patch and band (default: on for MAE, off for SimMIM)"
    )
    loss: Literal["auto", "mse", "l1"] = Field("auto", description="reconstruction loss (auto: mse for MAE, l1 for SimMIM)")
    decoder_dim: int = Field(128, ge=8, description="width of the MAE decoder")
    decoder_depth: int = Field(2, ge=1, description="transformer blocks of the MAE decoder")
    area: Literal["all", "train"] = Field(
        "all", description="all: every valid pixel of every scene (labels unused); train: only the training "
        "area of the split `rs-vit train` makes with the same data section and seed (validation pixels never seen)",
    )
    samples: int = Field(4, ge=0, le=16, description="windows shown in reconstructions.png (0: no plot)")


class PretrainRunConfig(RunConfig):
    """A pretraining run: a training config plus the ``pretrain`` section; saved as ``config.yaml``."""

    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)


def _format_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            valid = _valid_keys(model, err["loc"][:-1])
            parts.append(f"unknown key {loc!r}.{suggest(str(err['loc'][-1]), valid)}")
        else:
            parts.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return f"{source}: " + "; ".join(parts)


def _valid_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    cur: Any = model
    for key in loc:
        if isinstance(key, int):
            continue
        field = getattr(cur, "model_fields", {}).get(key)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        cur = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if cur is None:
            return []
    return list(getattr(cur, "model_fields", {}))


def parse_config(data: dict[str, Any], *, source: str = "config", schema: type[RunConfig] = RunConfig) -> RunConfig:
    """Validate a dict into a :class:`RunConfig` (or ``schema``, e.g. :class:`PretrainRunConfig`)
    or raise :class:`ConfigError`."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, schema, source)) from None


def load_yaml(
    path: str | Path,
    *,
    what: str = "Config file",
    missing_hint: str = "check the path",
    expected: str = "a mapping of sections (data, model, train)",
) -> dict[str, Any]:
    """Safely load a YAML (or JSON) mapping (``yaml.safe_load``: no Python objects are constructed).

    Args:
        path: the file.
        what, missing_hint: name the file and the fix in the "does not exist" message.
        expected: what the mapping should hold, for the "not a mapping" message.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {p} does not exist; {missing_hint}.")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML ({str(exc).splitlines()[0]}).") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: must contain {expected}.")
    return data


def load_classes(path: str | Path) -> list[ClassDef]:
    """Load ``classes: [{id, name, color}]`` from a YAML file."""
    data = load_yaml(path)
    if "classes" not in data:
        raise ConfigError(f"{path}: expected a top-level 'classes' list of {{id, name, color}}.")
    try:
        return DataConfig(classes=data["classes"]).classes
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, DataConfig, str(path))) from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None, *,
                schema: type[RunConfig] = RunConfig) -> RunConfig:
    """Load a YAML config, apply dotted-key overrides (``{"train.epochs": 3}``), validate.

    Relative paths inside the YAML are resolved against the YAML file's folder; a
    ``data.classes`` given as a string is read as a classes YAML file.
    """
    data: dict[str, Any] = load_yaml(path) if path else {}
    if path:  # paths written in the YAML are relative to it; paths given as flags to the CWD
        _resolve_paths(data, Path(path).parent)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        cur = data
        *parents, last = key.split(".")
        for part in parents:
            cur = cur.setdefault(part, {})
            if not isinstance(cur, dict):
                raise ConfigError(f"Cannot set {key}: {part} is not a section.")
        cur[last] = value
    d = data.get("data")
    if isinstance(d, dict) and isinstance(d.get("classes"), str):
        d["classes"] = [c.model_dump() for c in load_classes(d["classes"])]
    return parse_config(data, source=str(path) if path else "options", schema=schema)


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make the relative input paths of a YAML config absolute against its folder (in place)."""

    def fix(section: Any, key: str) -> None:
        if isinstance(section, dict) and isinstance(section.get(key), str) and not Path(section[key]).is_absolute() \
                and "://" not in section[key] and not section[key].startswith("/vsi"):  # URLs stay as they are
            rel = section[key]
            # a config.yaml saved by rs-vit before paths were stored absolute holds paths relative
            # to where `train` ran: kept as they are when only that reading finds the file
            if key != "out_dir" and not (base / rel).exists() and Path(rel).exists():
                return
            section[key] = str(base / rel)

    d = data.get("data")
    if isinstance(d, dict):
        fix(d, "classes")
        fix(d, "chips")
        for s in d.get("scenes", []) or []:
            fix(s, "image")
            if isinstance(s, dict) and isinstance(s.get("image"), list):  # per-band files
                s["image"] = [x if not isinstance(x, str) or "://" in x or x.startswith("/vsi") or Path(x).is_absolute()
                              else str(base / x) for x in s["image"]]
            fix(s, "labels")
    fix(data.get("train"), "init_from")
    fix(data.get("train"), "out_dir")
    fix(data.get("model"), "weights")
    fix(data.get("distill"), "teacher")


def dump_config(cfg: BaseModel) -> str:
    """YAML text of a config (paths as strings)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
