"""Every setting's type, choices and range, as pydantic models (as ppsci validates its own sections).

`check(cfg)` validates a run's settings before anything runs and turns the first problem
into one line naming the setting, its value and what is allowed. The sections are shared
by the three examples; a setting an example does not have is simply absent.
"""

from typing import Dict, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationError,
)
from typing_extensions import Annotated

from .errors import UsageError

Count = Annotated[StrictInt, Field(ge=1)]
CountOrZero = Annotated[StrictInt, Field(ge=0)]
Finite = Field(allow_inf_nan=False)  # inf passed gt=0 and failed as a diverged run
Rate = Annotated[float, Finite, Field(gt=0)]
Weight = Annotated[float, Finite, Field(ge=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]  # Adam's betas
Seconds = Annotated[float, Finite, Field(gt=0)]
Batch = Annotated[StrictInt, Field(ge=2)]  # batch statistics (norms, their spread) need 2
Path = Optional[str]
Sha256 = Optional[Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]]
Md5 = Optional[Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32}$")]]
Url = Optional[Annotated[str, Field(pattern=r"^https?://")]]
# one MD5 (CIFAR-10's tarball) or one per file (MNIST's four): checked as the value's kind,
# so a bad one is told as such; the tags are no part of a setting's name (describe)
_ONE, _EACH = "<one>", "<each>"
Md5s = Annotated[
    Union[Annotated[Md5, Tag(_ONE)], Annotated[Dict[str, Md5], Tag(_EACH)]],
    Discriminator(lambda value: _EACH if isinstance(value, dict) else _ONE),
]


class Section(BaseModel):
    # ppsci's own settings of a section (update_freq, ema, ...) pass here; startup refuses
    # the ones these examples do not implement, with the reason
    model_config = ConfigDict(extra="allow")


class Data(Section):
    mode: Optional[Literal["8gaussians", "25gaussians", "swissroll"]] = None
    fixed_points: Optional[CountOrZero] = None
    data_path: Path = None
    url: Url = None  # where an unset data_path downloads from
    md5: Md5s = None  # CIFAR-10's tarball's, or MNIST's file by file
    key: Optional[str] = None
    resolution: Optional[Literal[32, 64]] = None
    resize: Optional[StrictBool] = None


class Model(Section):
    architecture: Literal["auto", "paper", "paddlescience"] = "auto"
    noise_dim: Optional[Count] = None
    hidden_size: Optional[Count] = None
    num_layers: Optional[Count] = None
    dim: Optional[Count] = None
    dim_g: Optional[Count] = None
    dim_d: Optional[Count] = None
    conditional: Optional[StrictBool] = None
    layer_norm: Optional[StrictBool] = None
    bn_groups: Optional[Count] = None
    batch_norm: Optional[StrictBool] = None


class Loss(Section):
    kind: Optional[Literal["wgan-gp", "wgan", "dcgan"]] = None
    lambda_gp: Optional[Weight] = None
    clip: Optional[Rate] = None
    acgan_scale: Optional[Weight] = None
    acgan_scale_g: Optional[Weight] = None


class Train(Section):
    epochs: Count
    iters_per_epoch: Count
    minutes: Optional[Seconds] = None
    replan: StrictBool = True
    n_critic: Count
    batch_size: Batch
    generator_batch_size: Optional[Batch] = None
    optimizer: Literal["adam", "rmsprop"] = "adam"
    learning_rate: Rate
    critic_learning_rate: Optional[Rate] = None
    beta1: Optional[Beta] = None  # Adam's (startup requires them with Adam)
    beta2: Optional[Beta] = None
    lr_decay: StrictBool = False
    lr_decay_power: Annotated[float, Field(gt=0)] = 1.0
    ema_decay: Optional[Annotated[float, Field(gt=0, lt=1)]] = None
    ema_start: Annotated[float, Field(ge=0, lt=1)] = 0.25
    eval_during_train: StrictBool = False
    eval_freq: Count = 1
    start_eval_epoch: Count = 1
    metric_samples: Optional[Count] = None
    final_eval_samples: Optional[Count] = None
    dev_freq: CountOrZero = 0
    dev_samples: Optional[Count] = None
    save_freq: CountOrZero = 0
    checkpoint_path: Path = None
    resume_with_changes: StrictBool = False


class Eval(Section):
    pretrained_model_path: Path = None
    pretrained_gen_model_path: Path = None
    pretrained_gen_sha256: Sha256 = None
    pretrained_dis_model_path: Path = None
    pretrained_dis_sha256: Sha256 = None
    num_samples: Count
    batch_size: Count
    classifier_path: Path = None
    classifier_epochs: Optional[Count] = None
    classifier_seed: Optional[CountOrZero] = None
    sample_norm: Optional[Literal["batch", "running"]] = None
    inception: Optional[Literal["tf2015", "paddle"]] = None
    inception_weights: Path = None
    fid_stats_path: Path = None
    paddlescience_score: Optional[StrictBool] = None
    paddle_inception_weights: Path = None
    stats_dir: Path = None
    swd_images: Optional[Count] = None


class Infer(Section):
    pretrained_model_path: Path = None
    pretrained_sha256: Sha256 = None
    export_path: str
    device: Literal["cpu", "gpu"] = "cpu"
    engine: Literal["native", "onnx"] = "native"
    batch_size: Count
    num_cpu_threads: Count
    onnx: StrictBool = False


class Settings(BaseModel):
    model_config = ConfigDict(extra="allow")
    mode: Literal["train", "eval", "export", "infer"]
    seed: CountOrZero
    log_freq: Count
    device: Optional[Literal["cpu", "gpu"]] = None
    download_timeout: Seconds = 30.0
    divergence_bound: Optional[Rate] = 1e6
    DATA: Data
    MODEL: Model
    LOSS: Loss
    TRAIN: Train
    EVAL: Eval
    INFER: Infer


def check(cfg) -> None:
    """UsageError (one line) for the first setting outside its type, choices or range."""
    from omegaconf import OmegaConf

    keys = [key for key in cfg if key not in ("hydra", "output_dir")]  # Hydra's own run dir
    plain = OmegaConf.to_container(OmegaConf.masked_copy(cfg, keys), resolve=True)
    try:
        settings = Settings(**plain)
    except ValidationError as e:
        raise UsageError(describe(e.errors()[0])) from None
    return settings


def as_read(cfg, settings: BaseModel, prefix: str = "") -> None:
    """A number setting given as an integer (TRAIN.learning_rate=1, TRAIN.beta1=0) becomes
    the float the schema read it as: Paddle's optimizers refuse an int rate."""
    for name, value in settings:
        if isinstance(value, BaseModel) and name in cfg:
            as_read(cfg[name], value, f"{prefix}{name}.")
        elif isinstance(value, float) and type(cfg.get(name)) is int:
            cfg[name] = value


def describe(error: dict) -> str:
    """One line for one pydantic error: the setting, its value and what is allowed."""
    key = ".".join(str(part) for part in error["loc"] if part not in (_ONE, _EACH))
    value, kind, ctx = error.get("input"), error["type"], error.get("ctx", {})
    if kind == "missing":
        return f"{key} is missing; give {key}=..."
    if kind == "literal_error":
        choices = ctx.get("expected", "").replace("'", "")
        return f"{key}={value!r}: use {choices}."
    allowed = {
        "greater_than": f"a number > {ctx.get('gt')}",
        "greater_than_equal": f"a number >= {ctx.get('ge')}",
        "less_than": f"a number < {ctx.get('lt')}",
        "less_than_equal": f"a number <= {ctx.get('le')}",
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "an integer",
        "float_type": "a number",
        "float_parsing": "a number",
        "finite_number": "a finite number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "string_type": "a text (a path)",
        "string_pattern_mismatch": "a hexadecimal checksum",
    }.get(kind, error["msg"].lower())
    if kind == "greater_than_equal" and _counts(error["loc"]):
        allowed = "a positive integer" if ctx.get("ge") == 1 else f"an integer >= {ctx.get('ge')}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        allowed = (
            "an http:// or https:// URL"
            if "http" in pattern
            else "64 hexadecimal digits (sha256sum's output)"
            if "64" in pattern
            else "32 hexadecimal digits (md5sum's output)"
        )
    if key.endswith("batch_size") and ctx.get("ge") == 2:
        allowed += " (a batch's statistics, its gradient norms' spread, need two samples)"
    if key.startswith("TRAIN.beta") and kind in ("greater_than_equal", "less_than"):
        allowed = "a number in [0, 1)"
    return f"{key}={value!r} must be {allowed}."


def _counts(loc) -> bool:
    """Whether the setting at `loc` is an integer (Count, CountOrZero)."""
    model, field = Settings, None
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return False
        model = field.annotation
    return "int" in repr(field.annotation).lower()
