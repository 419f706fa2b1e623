"""Assemble a run from a RunConfig: data, family, loader, callbacks, trainer (and resume)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..checkpoint import latest_checkpoint
from ..config import RunConfig, validate
from ..data import Loader, TensorData, as_unpaired, load_data
from ..data.builtin import MIXTURES
from ..families import FAMILIES, build_family, get_family
from . import distributed
from .callbacks import Callback, Checkpointer, MetricsLogger, SampleGrid
from .health import HealthMonitor
from .progress import ProgressBar
from .hardware import resolve_device
from .trainer import Trainer


def default_callbacks(cfg: RunConfig, data: TensorData, console: Console | None = None) -> list[Callback]:
    """Health first: a rollback must happen before anything saves or logs the bad step."""
    lc = cfg.log
    ref = MIXTURES[data.spec.name]().centers if data.spec.name in MIXTURES else None
    cbs: list[Callback] = [
        HealthMonitor(cfg.health),
        Checkpointer(lc.ckpt_every),
        SampleGrid(lc.sample_every, lc.n_samples, seed=cfg.train.seed + 1, reference=ref,
                   table=getattr(data, "table", None)),
        MetricsLogger(lc.log_every, lc.tensorboard),
    ]
    from ..families import get_family

    if get_family(cfg.family).kind == "classifier":  # dann draws no samples
        cbs = [cb for cb in cbs if not isinstance(cb, SampleGrid)]
    if lc.progress:
        cbs.append(ProgressBar(console))
    return cbs


def load_run_data(cfg: RunConfig, *, quiet: bool = False) -> TensorData:
    """The training data a run's config names (images, points or a table, with the table settings)."""
    size = tuple(cfg.data.size) if cfg.data.size else None
    continuous = cfg.data.continuous
    if continuous == "auto":
        continuous = get_family(cfg.family).table_continuous
    return load_data(cfg.data.source, size=size, channels=cfg.data.channels, fit=cfg.data.fit, pairs=cfg.data.pairs,
                     quiet=quiet, cache_dir=cfg.data.cache or None, columns=cfg.data.columns, transforms=cfg.data.transforms or None,
                     continuous=continuous, rows=cfg.data.rows, seed=cfg.data.seed)


# data kinds only their own families train on: (kind, the message for another family, for other data)
EXCLUSIVE_KINDS = (
    ("table", "'{source}' is a table: {family} does not train on tables; use --family {own}",
     "{family} trains on tables (.csv, .parquet, builtin:eprime), but '{source}' holds {kind}; give --data a table, "
     "or choose another --family"),
    ("audio", "'{source}' holds audio clips: {family} does not train on audio; use --family {own}",
     "{family} generates audio (builtin:spoken-digits, a folder of .wav/.flac files), but '{source}' holds {kind}; "
     "give --data audio, or choose another --family"),
)


def build_run(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, data: TensorData | None = None,
              console: Console | None = None, callbacks: list[Callback] | None = None,
              extra_callbacks: list[Callback] | None = None) -> Trainer:
    """A ready-to-fit Trainer. With resume=True the latest checkpoint in out_dir is restored.

    Every check (settings, device, data, family options) runs before anything is written: a bad run leaves
    no out_dir behind.
    """
    validate(cfg)
    dist = distributed.current()
    resolve_device(cfg.train.device, dist.local_rank if dist.enabled else None)  # e.g. cuda asked for, none seen
    out = Path(out_dir)
    if latest_checkpoint(out) is not None and not resume:
        raise ValueError(f"'{out}' already holds a run; pass --resume to continue it, or choose another --out")
    if data is None:
        data = load_run_data(cfg)
    family_cls = get_family(cfg.family)
    # tables and audio: only their own families train on them, and those families on nothing else
    for kind, wrong_family, wrong_data in EXCLUSIVE_KINDS:
        if (family_cls.needs == kind) != (data.spec.kind == kind):
            own = " or ".join(n for n, c in FAMILIES.items() if c.needs == kind)
            message = wrong_family if data.spec.kind == kind else wrong_data
            raise ValueError(message.format(source=cfg.data.source, family=cfg.family, own=own, kind=data.spec.kind))
    if family_cls.needs == "unpaired" and data.spec.pairing == "paired":
        data = as_unpaired(data)  # unpaired families draw A and B independently, even from paired sets
    Trainer.seed_everything(cfg.train.seed)  # before any weight is drawn
    family = build_family(cfg.family, cfg.model, data.spec)
    # the family takes what it needs from the data: translation previews, sgan's labelled subset, srgan's
    # default content network (content=features), so the Python API and the CLI train the same run
    family.bind_data(data)
    if data.stream is not None:  # tar shards: decoded in DataLoader workers (data/shards.py)
        from ..data.shards import StreamLoader

        loader = StreamLoader(data, cfg.train.batch_size, seed=cfg.train.seed, rank=dist.rank,
                              world_size=dist.world_size, flip=cfg.data.flip, workers=cfg.data.workers)
    else:
        loader = Loader(data, cfg.train.batch_size, seed=cfg.train.seed, rank=dist.rank, world_size=dist.world_size,
                        flip=cfg.data.flip)
    if loader.batch_size == cfg.train.batch_size:  # as configured (a table smaller than it: the family copes)
        family.check_batch_size(loader.local_batch)
    cbs = default_callbacks(cfg, data, console) if callbacks is None else callbacks
    # extra callbacks (e.g. evaluation) run after the health check but before checkpoints and logs, so a
    # checkpoint holds their state and the logger still sees their values at the end of training
    at = 1 if cbs and isinstance(cbs[0], HealthMonitor) else 0
    cbs = cbs[:at] + list(extra_callbacks or []) + cbs[at:]
    if not dist.is_main:  # rank 0 alone writes; the others keep what decides (health) or gathers (evaluation)
        cbs = [cb for cb in cbs if cb.every_rank]
    trainer = Trainer(family, loader, cfg, out, cbs, dist=dist)
    trainer.data = data
    if resume and latest_checkpoint(out) is not None:
        trainer.load_checkpoint()
    if dist.is_main:
        cfg.save(out / "config.json")
    return trainer
