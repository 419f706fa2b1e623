"""Run configuration: typed dataclasses, YAML/JSON load and save, and "--set a.b=value" overrides."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DataConfig:
    source: str = "builtin:fashion-mnist"   # a folder of images or builtin:NAME
    size: list[int] | None = None           # [H, W]; None keeps a built-in's own size
    channels: int | None = None             # 1 or 3; None: the built-in's own, 3 for folders
    fit: str = "crop"                       # crop | pad: how images of another aspect are fitted
    pairs: str = "auto"                     # auto | labels | side-by-side: how a folder's images pair up (image-to-image)
    flip: bool = False                      # mirror half of every batch left-right (for data without a handedness)
    cache: str = ""                         # image folders: where the decoded-image cache lives (--cache DIR);
                                            # "": $GANFORGE_CACHE or ~/.cache/ganforge
    workers: int = 2                        # shards (`ganforge data pack`): DataLoader processes decoding per rank
    # tables (.csv, .tsv, .parquet and the built-in tables such as builtin:eprime; see data/table.py)
    columns: Any = None                     # --columns FILE.yaml (or a mapping): per-column type, bounds, transform,
                                            # missing-value policy, label
    transforms: dict[str, Any] = field(default_factory=dict)  # {column: transform} over the columns' defaults,
                                            # e.g. {pz: {name: log_distance, bound: 10.6}} or {x: standard}
    continuous: str = "auto"                # numeric columns' default transform: auto (the family's: standard,
                                            # ctgan's vgm), standard, minmax, vgm, ...
    rows: int = 0                           # rows a built-in generator makes (builtin:eprime; --rows); 0: its default
    seed: int = 0                           # the built-in generator's seed (--data-seed)


@dataclass
class TrainConfig:
    steps: int = 1000          # total steps; --resume continues up to this number (0 with `time`: no step limit)
    time: float = 0.0          # wall-clock budget in seconds (--time 10m, 90s, 1h); 0: none. Training stops when
                               # it is spent (or at `steps`, whichever comes first); --resume continues the budget
    batch_size: int = 64       # the global batch: with torchrun it is split evenly across the processes
    lr_g: float = 2e-4         # Adam, GAN defaults (Radford et al. 2015)
    lr_d: float = 2e-4         # a different D rate is TTUR (Heusel et al. 2017)
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999   # EMA of G's weights (0 disables); warmed up over the first steps
    ema_warmup: float = 10.0   # the warm-up: decay min(ema_decay, (1 + k) / (ema_warmup + k)) at G update k, an
                               # average over about the last k / (ema_warmup - 1) updates until ema_decay is reached
                               # (>= 2: below, the oldest updates and the initialisation weigh the most)
    grad_clip: float = 0.0     # max global grad norm per phase; 0 disables
    lr_decay: str = "none"     # none | linear: both rates fall linearly to 0 at `steps`, from ...
    lr_decay_start: float = 0.5  # ... this fraction of `steps` on (sharper samples at the end of a run)
    precision: str = "auto"    # auto | fp32 | bf16: auto = bf16 autocast on image data where the hardware has
                               # native bf16 (AVX512-BF16/AMX CPUs, Ampere+ GPUs), else fp32; weights stay fp32
    amp: str = ""              # deprecated spelling of precision (none = fp32, bf16); read from older runs
    channels_last: bool = True  # NHWC memory format for 4-D weights and batches (no effect on MLPs)
    compile: bool = False      # torch.compile G and D (dynamic=False); D is left eager under R1 / WGAN-GP
    malloc: str = "auto"       # auto | system: auto keeps freed blocks in glibc malloc on CPU runs (no page faults
                               # per step, the process stays near its peak size); system leaves malloc as it is
    augment: str = "none"      # none | diffaugment | ada: augment every image D sees (real and fake), for small data
    augment_policy: str = ""   # diffaugment: color,translation,cutout (default all); ada: blit,geom,color (default all)
    augment_p: float = 0.0     # ada: the starting probability (with ada_target 0: a fixed probability)
    ada_target: float = 0.6    # ada: the r_t = E[sign(D(real))] it steers to (Karras et al. 2020); 0: p stays fixed
    ada_interval: int = 4      # ada: steps between adjustments of p
    ada_kimg: float = 100.0    # ada: thousands of images over which p can move from 0 to 1 (the paper: 500)
    sync_bn: bool = False      # multi-process runs: BatchNorm statistics over the global batch (CUDA only)
    seed: int = 0
    device: str = "auto"       # auto | cpu | cuda (with torchrun: cuda:LOCAL_RANK)


@dataclass
class LogConfig:
    log_every: int = 10        # JSONL + TensorBoard every N steps
    sample_every: int = 500    # sample grid PNG every N steps (0: only the final grid)
    ckpt_every: int = 500      # checkpoint every N steps (one is always written at the end)
    keep_last: int = 3         # checkpoints kept on disk
    n_samples: int = 64        # images in each grid (a fixed latent batch)
    tensorboard: bool = True
    progress: bool = True


@dataclass
class HealthConfig:
    enabled: bool = True
    window: int = 100               # steps a condition must hold before a warning (spread checks: their median)
    warmup: int = 100               # steps before the spread check starts (a fresh G's outputs are all alike)
    d_acc_high: float = 0.95        # D accuracy above this ...
    g_grad_collapse: float = 0.05   # ... while G's grad norm is below this fraction of its early median
    spread_ratio: float = 0.2       # fake spread below this fraction of the real spread: collapse suspected
    rt_high: float = 0.95           # r_t = E[sign(D(real))] above this for a window: D memorises the training set
    max_rollbacks: int = 3          # non-finite losses roll back this often, then training stops
    rollback_lr_factor: float = 0.5  # learning rates are scaled by this after each rollback


@dataclass
class EvalConfig:
    every: int = 0                  # evaluate every N steps during training (0: off)
    n: int = 2000                   # generated (and real) samples per evaluation
    metrics: str = "fid"            # comma-separated: fid, kid, pr, dc, is, swd, mmd, classes (modes, mmd for points)
    features: str = "auto"          # fashion | clipart | inception | PATH (.pt/.onnx); auto: fashion for grey, inception for RGB
    inception_weights: str = ""     # local FID Inception weights (else downloaded with a checksum)
    keep_best: bool = True          # keep RUN/best: the checkpoint with the lowest FID


@dataclass
class RunConfig:
    family: str = "dcgan"
    recipe: str = ""           # the recipe the run started from, NAME@vN ("" or "none": none; ganforge/recipes/)
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where its value came from (absent: default)
    model: dict[str, Any] = field(default_factory=dict)  # the family's own options (see its Config)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"config section '{where}' must be a mapping, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    known = {f.name: f for f in fields(cls)}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"unknown config key '{where}{key}'; valid keys here: {', '.join(known)}")
        sub = _SECTIONS.get(key) if cls is RunConfig else None
        kwargs[key] = _build(sub, value, f"{key}.") if sub is not None else value
    return cls(**kwargs)


_SECTIONS: dict[str, type] = {"data": DataConfig, "train": TrainConfig, "log": LogConfig, "health": HealthConfig,
                              "eval": EvalConfig}


def from_dict(data: dict[str, Any]) -> RunConfig:
    cfg = _build(RunConfig, data, "")
    _check_types(cfg)
    return cfg


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([hms]?)")


def parse_duration(text: str | int | float) -> float:
    """Seconds from '90s', '10m', '1h', '1h30m', '2.5h' or a plain number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip().lower()
    parts = _DURATION_PART.findall(s)
    if not s or not parts or _DURATION_PART.sub("", s).strip():
        raise ValueError(f"a duration is a number with s, m or h such as 90s, 10m, 1h or 1h30m; got {text!r}")
    if len(parts) > 1 and any(unit == "" for _, unit in parts):
        raise ValueError(f"every part of a duration needs its unit (s, m or h), e.g. 1h30m; got {text!r}")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1, "": 1}[unit] for n, unit in parts)


def format_duration(seconds: float) -> str:
    """'1h02m', '4m05s', '37s': the form --time takes, rounded to the second."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _check_types(cfg: RunConfig) -> None:
    """Coerce ints given where floats are expected and reject values of the wrong kind."""
    if isinstance(cfg.train.time, str):  # --set train.time=10m
        cfg.train.time = parse_duration(cfg.train.time)
    for section in _SECTIONS:
        obj = getattr(cfg, section)
        for f in fields(obj):
            v = getattr(obj, f.name)
            t = str(f.type)
            if t == "float" and isinstance(v, int) and not isinstance(v, bool):
                setattr(obj, f.name, float(v))
            elif t in ("int", "float", "bool", "str") and not isinstance(v, {"int": int, "float": float, "bool": bool, "str": str}[t]):
                raise ValueError(f"config {section}.{f.name} must be {t}, got {v!r}")
            elif t == "int" and isinstance(v, bool):
                raise ValueError(f"config {section}.{f.name} must be int, got {v!r}")


# the settings with a fixed set of values, checked by validate(); data/images.py (FITS), data/paired.py (PAIRS)
# and train/hardware.py (PRECISIONS) take theirs from here
CHOICES: dict[str, tuple[str, ...]] = {
    "data.fit": ("crop", "pad"),
    "data.pairs": ("auto", "labels", "side-by-side"),
    "train.lr_decay": ("none", "linear"),
    "train.precision": ("auto", "fp32", "bf16"),
    "train.malloc": ("auto", "system"),
}
_FLAGS = {"train.steps": "--steps", "train.time": "--time", "train.batch_size": "--batch-size", "data.channels": "--channels",
          "data.size": "--size", "data.pairs": "--pairs",
          "data.rows": "--rows", "data.seed": "--data-seed", "data.columns": "--columns", "train.precision": "--precision"}
# (section.key, lowest, lowest allowed?, highest, highest allowed?, what it is, e.g.) for numeric settings
_RANGES: tuple[tuple[str, float, bool, float, bool, str], ...] = (
    ("train.steps", 0, True, math.inf, False, "the total number of steps"),
    ("data.rows", 0, True, math.inf, False, "rows of a built-in generator; 0: its default"),
    ("data.seed", 0, True, 2**63, False, "the built-in generator's seed"),
    ("train.time", 0, True, math.inf, False, "a wall-clock budget in seconds, e.g. 600 or --time 10m; 0: none"),
    ("train.batch_size", 1, True, math.inf, False, "images per step"),
    ("train.lr_g", 0, False, math.inf, False, "G's Adam learning rate, e.g. 2e-4"),
    ("train.lr_d", 0, False, math.inf, False, "D's Adam learning rate, e.g. 2e-4"),
    ("train.beta1", 0, True, 1, False, "Adam's first-moment decay, e.g. 0.5"),
    ("train.beta2", 0, True, 1, False, "Adam's second-moment decay, e.g. 0.999"),
    ("train.ema_decay", 0, True, 1, False, "0 disables the EMA of G, e.g. 0.999"),
    ("train.ema_warmup", 2, True, math.inf, False, "the EMA's warm-up constant, e.g. 10"),
    ("train.grad_clip", 0, True, math.inf, False, "0 disables clipping"),
    ("train.lr_decay_start", 0, True, 1, False, "a fraction of the steps"),
    ("log.log_every", 0, True, math.inf, False, "0 disables the log"),
    ("log.sample_every", 0, True, math.inf, False, "0: only the final grid"),
    ("log.ckpt_every", 0, True, math.inf, False, "0: only the final checkpoint"),
    ("log.keep_last", 0, True, math.inf, False, "0 keeps every checkpoint"),
    ("log.n_samples", 1, True, math.inf, False, "images per grid"),
    ("health.window", 1, True, math.inf, False, "steps"),
    ("health.warmup", 0, True, math.inf, False, "steps"),
    ("health.d_acc_high", 0, True, 1, True, "an accuracy"),
    ("health.g_grad_collapse", 0, True, math.inf, False, "a fraction"),
    ("health.spread_ratio", 0, True, math.inf, False, "a fraction"),
    ("health.max_rollbacks", 0, True, math.inf, False, "rollbacks"),
    ("health.rollback_lr_factor", 0, False, 1, True, "the factor on the learning rates after a rollback"),
    ("eval.every", 0, True, math.inf, False, "0 disables evaluation"),
    ("eval.n", 1, True, math.inf, False, "samples per evaluation"),
)


def _interval(lo: float, lo_in: bool, hi: float, hi_in: bool) -> str:
    if hi == math.inf:
        return f"{'>=' if lo_in else '>'} {lo:g}"
    return f"in {'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"


def validate(cfg: RunConfig) -> None:
    """Check every setting's value before a run writes anything; a ValueError names the setting and its range."""
    _check_types(cfg)

    def fail(key: str, rule: str, value: Any) -> None:
        flag = f" ({_FLAGS[key]})" if key in _FLAGS else ""
        raise ValueError(f"{key}{flag} must be {rule}, got {value!r}")

    def get(key: str) -> Any:
        section, name = key.split(".")
        return getattr(getattr(cfg, section), name)

    for key, lo, lo_in, hi, hi_in, what in _RANGES:
        v = get(key)
        inside = (v >= lo if lo_in else v > lo) and (v <= hi if hi_in else v < hi)
        if not inside:  # also false for NaN
            fail(key, f"{_interval(lo, lo_in, hi, hi_in)} ({what})", v)
    for key, allowed in CHOICES.items():
        if get(key) not in allowed:
            quoted = [f"'{a}'" for a in allowed]
            fail(key, " or ".join(quoted) if len(quoted) == 2 else "one of " + ", ".join(quoted), get(key))
    if cfg.train.amp not in ("", "none", "bf16"):
        fail("train.amp", "'none' or 'bf16' (better: train.precision=fp32|bf16|auto)", cfg.train.amp)
    if cfg.data.channels not in (None, 1, 3):
        fail("data.channels", "1 (grey) or 3 (RGB)", cfg.data.channels)
    size = cfg.data.size
    if size is not None and not (isinstance(size, (list, tuple)) and len(size) == 2
                                 and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in size)):
        fail("data.size", "[H, W] with H, W >= 1 such as [64, 64]", size)
    if not isinstance(cfg.data.transforms, dict):
        fail("data.transforms", "a mapping {column: transform} such as {pz: {name: log_distance, bound: 10.6}}",
             cfg.data.transforms)
    if cfg.data.columns is not None and not isinstance(cfg.data.columns, (str, dict)):
        fail("data.columns", "a YAML file of column settings (--columns spec.yaml) or a mapping", cfg.data.columns)
    if not isinstance(cfg.data.continuous, str) or not cfg.data.continuous:
        fail("data.continuous", "auto or a numeric transform such as standard or vgm", cfg.data.continuous)
    if not isinstance(cfg.data.source, str) or not cfg.data.source:
        fail("data.source", "a folder of images or builtin:NAME", cfg.data.source)
    device = cfg.train.device
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        fail("train.device", "auto, cpu, cuda or cuda:N", device)
    if not isinstance(cfg.model, dict):
        fail("model", "a mapping of the family's options", cfg.model)
    if not isinstance(cfg.sources, dict):
        fail("sources", "a mapping of setting -> origin", cfg.sources)


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a plain dict."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"config file '{path}' does not exist")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file '{path}' must hold a mapping at the top level")
    return data


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply 'a.b=value' to a nested dict; the value is parsed as YAML (1e-4, true, [64, 64], text)."""
    if "=" not in assignment:
        raise ValueError(f"--set expects key=value such as train.lr_g=1e-4, got '{assignment}'")
    key, raw = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ValueError(f"--set expects key=value such as train.lr_g=1e-4, got '{assignment}'")
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(value, str):
        try:  # YAML reads 1e-4 as a string; accept it as a number
            value = float(value) if any(c in value for c in "eE.") else value
        except ValueError:
            pass
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {key}: '{p}' is not a section")
    node[parts[-1]] = value


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
