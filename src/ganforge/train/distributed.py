"""Multi-process training on PyTorch's own engine: torchrun + torch.distributed + DistributedDataParallel.

`torchrun --nproc_per_node=K -m ganforge train ...` starts K copies of the same command; each reads
RANK / WORLD_SIZE / LOCAL_RANK from the environment (set by torchrun, also across nodes with its
rendezvous flags) and joins one process group: NCCL when the run is on CUDA, gloo on CPU.

How the trainer uses it (see Trainer):
- `train.batch_size` is the global batch; each rank takes batch_size / K samples of it
  (torch.utils.data.DistributedSampler, reshuffled every epoch), so one config trains the same model
  at any K.
- Each phase of a family runs through its own DistributedDataParallel wrapper (`PhaseModule`) that
  owns only that phase's parameters; the other phase's parameters are ignored by that wrapper, so a
  G step averages G's gradients and nothing else.
- Every rank draws the same global noise batch and keeps its own rows (Family.shard), so K ranks
  see exactly the samples and latents one process with the global batch would.
- Step logs are averaged over the ranks (one small all-reduce), so every rank makes the same health
  decisions (rollback, stop); BatchNorm buffers are broadcast from rank 0 after every step.
- Rank 0 alone writes logs, grids and checkpoints; every rank reads checkpoints when resuming.
"""

from __future__ import annotations

import gc
import os
import zlib
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo()


def env_world_size() -> int:
    """WORLD_SIZE as set by torchrun (1 when not launched by it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from None


def init_from_env(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes in the environment; a no-op for a single process.

    device: train.device; 'auto' means CUDA when there is one. CUDA ranks use NCCL on cuda:LOCAL_RANK,
    CPU ranks use gloo.
    """
    world = env_world_size()
    if world <= 1:
        return SINGLE
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise ValueError(f"WORLD_SIZE={world} but {key} is not set: start multi-process runs with "
                             f"torchrun --nproc_per_node=K -m ganforge train ...")
    rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if not torch.cuda.is_available():
            raise ValueError("train.device=cuda but no CUDA device is visible; use train.device=cpu")
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local} but this node has {torch.cuda.device_count()} GPU(s): "
                             f"start at most that many processes per node (--nproc_per_node)")
        torch.cuda.set_device(local)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return DistInfo(rank, world, local, backend)


def current() -> DistInfo:
    """The process group this process is in (SINGLE when none)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return SINGLE
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_backend())


def shutdown(wait: bool = True) -> None:
    """Leave the process group; first free what training left behind, while Python is still fully alive.

    A finished Trainer sits in reference cycles, so its DistributedDataParallel wrappers (their reducers hold
    the work and tensors of the last gradient all-reduces) used to be freed only by the garbage collection
    inside Py_Finalize. A core dump of the rank that then aborted ("terminate called without an active
    exception") showed a gloo worker thread freeing a collective's tensors: it had to take the GIL, Python
    makes such a thread exit during finalization, and unwinding it through C++ calls std::terminate.
    Collecting here frees those objects before the barrier. (The gloo threads themselves outlive
    destroy_process_group once a DDP wrapper was built: PyTorch keeps a reference; they idle harmlessly.)

    wait=True (a normal end) then waits for every rank: a rank that tears down its gloo connections while
    another still uses them is aborted too. After an error, do not wait: the other ranks may be blocked in
    a collective, and torchrun stops them."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        if wait:
            dist.barrier()
        dist.destroy_process_group()


class PhaseModule(nn.Module):
    """`family.loss(phase, batch, ctx)` as a module, so DistributedDataParallel can wrap one phase of a family."""

    def __init__(self, family: nn.Module, phase: str) -> None:
        super().__init__()
        self.family = family
        self.phase = phase

    def forward(self, batch: Any, ctx: Any = None) -> Any:
        return self.family.loss(self.phase, batch, ctx)


def wrap_phase(family: nn.Module, phase: str, params: Iterable[nn.Parameter]) -> DistributedDataParallel:
    """A DDP wrapper of `phase` that reduces the gradients of `params` only (the phase's parameters).

    Buffers are not broadcast on forward: a G phase may backpropagate through fakes drawn in the D phase,
    and overwriting BatchNorm statistics in between would invalidate that graph; the trainer
    broadcasts them after each step instead (`sync_buffers`).
    """
    mine = {id(p) for p in params}
    module = PhaseModule(family, phase)
    ignore = [f"family.{name}" for name, p in family.named_parameters() if id(p) not in mine]
    ignore += [f"family.{name}" for name, _ in family.named_buffers()]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, ignore)
    return DistributedDataParallel(module, device_ids=None, forward_sync_buffers=False)


def sync_buffers(module: nn.Module, src: int = 0) -> None:
    """Every floating-point buffer (BatchNorm statistics) of `module` set to rank `src`'s, in one broadcast."""
    bufs = [b for b in module.buffers() if b.is_floating_point()]
    if not bufs:
        return
    flat = torch._utils._flatten_dense_tensors([b.detach() for b in bufs])
    dist.broadcast(flat, src)
    with torch.no_grad():
        for b, v in zip(bufs, torch._utils._unflatten_dense_tensors(flat, bufs)):
            b.copy_(v)


def average_logs(logs: dict[str, Any], stop: bool, device: torch.device) -> tuple[dict[str, float], bool]:
    """Step logs averaged over the ranks, and whether any rank asked to stop.

    One all-reduce when every rank logged the same keys (the usual case); a non-finite value on any
    rank makes the average non-finite everywhere, so every rank rolls back or stops together.
    """
    keys = sorted(logs)
    sig = float(zlib.crc32("|".join(keys).encode()))
    vals = [float(logs[k]) for k in keys]
    n = float(len(keys))
    meta = torch.tensor([n, sig, -n, -sig, float(stop)], dtype=torch.float64, device=device)
    dist.all_reduce(meta, op=dist.ReduceOp.MAX)
    any_stop = bool(meta[4].item() > 0)
    if meta[0].item() == -meta[2].item() and meta[1].item() == -meta[3].item():
        t = torch.tensor(vals, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        t /= dist.get_world_size()
        return dict(zip(keys, t.tolist())), any_stop
    # ranks logged different keys (e.g. a per-class statistic absent from one shard): average what each has
    gathered: list[dict[str, float] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, dict(zip(keys, vals)))
    out: dict[str, float] = {}
    for k in sorted({k for g in gathered for k in g}):
        present = [g[k] for g in gathered if k in g]
        out[k] = sum(present) / len(present)
    return out, any_stop


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows of `x` (same trailing shape; row counts may differ) in rank order."""
    info = current()
    if not info.enabled:
        return x
    dev = torch.device("cuda", torch.cuda.current_device()) if info.backend == "nccl" else torch.device("cpu")
    local = x.to(dev).contiguous()
    sizes = torch.tensor([local.shape[0]], device=dev)
    all_sizes = [torch.zeros_like(sizes) for _ in range(info.world_size)]
    dist.all_gather(all_sizes, sizes)
    counts = [int(s.item()) for s in all_sizes]
    pad = max(counts)
    padded = torch.zeros((pad, *local.shape[1:]), dtype=local.dtype, device=dev)
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts)]).to(x.device)


def share(n: int, info: DistInfo | None = None) -> tuple[int, int]:
    """This rank's [start, stop) of n items split as evenly as possible over the ranks."""
    info = info or current()
    per, extra = divmod(n, info.world_size)
    start = info.rank * per + min(info.rank, extra)
    return start, start + per + (1 if info.rank < extra else 0)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s Python object on every rank (a no-op for a single process)."""
    if not current().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src)
    return box[0]


def broadcast_flag(flag: bool, device: torch.device, src: int = 0) -> bool:
    """Rank `src`'s flag on every rank (e.g. "the time budget is spent", decided by one clock)."""
    if not current().enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(t, src)
    return bool(t.item() > 0)
