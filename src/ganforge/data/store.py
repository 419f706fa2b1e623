"""In-memory datasets and the resumable loader that feeds the trainer.

Images are kept as one uint8 tensor (N, C, H, W) and converted to float in [-1, 1] per batch: decoding
happens once (see images.py's cache), an epoch costs an index gather and one multiply-add. An image folder's tensor
is a memory map of its decoded cache file (`mapped`): the page cache keeps what fits, and the pages a process has
read are dropped from its mappings every RELEASE_BYTES, so its resident memory stays bounded on a dataset of any
size (the pages stay in the page cache: reading them again costs a minor fault, not a disk read).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler

from .spec import Batch, DataSpec

RELEASE_BYTES = 256 << 20  # memory-mapped data: drop the pages read from this process's mappings this often
FAULT_AROUND_BYTES = 64 << 10  # Linux maps up to this much page cache around each faulting page (fault_around_bytes)


@dataclass
class TensorData:
    """A whole dataset in memory. images: uint8 (N, C, H, W); audio: int16 (N, 1, L); points: float32 (N, F).

    Image-to-image data (spec.pairing set) also holds domain B in `x_b` (uint8, (M, C', H', W')):
    "paired" means M == N and x_b[i] is the target of x[i]; "unpaired" means A and B are drawn
    independently (any M): an epoch then covers max(N, M) samples, and B's order is reshuffled every
    epoch from (epoch, index) alone, so resumed runs see the same pairs.
    """

    spec: DataSpec
    x: Tensor
    y: Tensor | None = None
    skipped: tuple[str, ...] = ()  # files that could not be read (image folders)
    source: str = ""
    x_b: Tensor | None = None
    captions: Any = None  # captioned images: a data.captions.Captions (K caption ids per image, their embeddings)
    mapped: Any = None  # the mmap.mmap under x when x is a memory-mapped cache file (images.map_pixels)
    stream: Any = None  # tar shards (data/shards.py ShardSet): training streams them; x is then a reference subset

    def __post_init__(self) -> None:
        if self.y is not None and self.y.shape[0] != self.x.shape[0]:
            raise ValueError(f"{self.x.shape[0]} samples but {self.y.shape[0]} labels")
        if (self.x_b is not None) != bool(self.spec.pairing):
            raise ValueError("x_b (domain B) and spec.pairing go together: set both or neither")
        if self.spec.pairing == "paired" and self.x_b.shape[0] != self.x.shape[0]:
            raise ValueError(f"paired data needs one B per A: {self.x.shape[0]} A images but {self.x_b.shape[0]} B")
        if self.captions is not None and len(self.captions.ids) != self.x.shape[0]:
            raise ValueError(f"{self.x.shape[0]} images but captions for {len(self.captions.ids)}")
        self._b_order: tuple[int, Tensor] | None = None
        self._read = 0  # bytes of a memory-mapped x read since its pages were last dropped

    def rows(self, index: Tensor) -> Tensor:
        """x[index] (a copy). Memory-mapped x: every RELEASE_BYTES read, the pages are dropped from this process's
        mappings (madvise DONTNEED; x is mapped copy-on-write and never written, so nothing is lost)."""
        out = self.x[index]
        if self.mapped is not None and len(out) and hasattr(mmap, "MADV_DONTNEED"):  # rows map >= the fault-around
            self._read += len(out) * max(out[0].numel() * out.element_size(), FAULT_AROUND_BYTES)
            if self._read >= RELEASE_BYTES:
                self._read = 0
                self.mapped.madvise(mmap.MADV_DONTNEED)
        return out

    def __len__(self) -> int:
        if self.spec.pairing == "unpaired":
            return max(int(self.x.shape[0]), int(self.x_b.shape[0]))
        return int(self.x.shape[0])

    def _b_index(self, index: Tensor, epoch: int) -> Tensor:
        """Unpaired data: B's indices for batch positions `index` in `epoch` (a fresh shuffle per epoch)."""
        if self._b_order is None or self._b_order[0] != epoch:
            g = torch.Generator().manual_seed(7919 + 1_000_003 * epoch)
            self._b_order = (epoch, torch.randperm(len(self), generator=g))
        return self._b_order[1][index] % int(self.x_b.shape[0])

    def to_float(self, x: Tensor) -> Tensor:
        """Model-space values: uint8 pixels -> [-1, 1]; int16 audio samples -> [-1, 1]; points pass through."""
        if x.dtype == torch.uint8:
            return x.float().mul_(2.0 / 255.0).sub_(1.0)
        if x.dtype == torch.int16:
            return x.float().mul_(1.0 / 32767.0)
        return x.float()

    def batch(self, index: Tensor, epoch: int = 0) -> Batch:
        if self.spec.pairing == "unpaired":
            a = index % int(self.x.shape[0])
            y = self.y[a] if self.y is not None else None
            return Batch(self.to_float(self.rows(a)), y, x_b=self.to_float(self.x_b[self._b_index(index, epoch)]))
        y = self.y[index] if self.y is not None else None
        x_b = self.to_float(self.x_b[index]) if self.x_b is not None else None
        if self.captions is not None:  # one of each image's captions, by (index, epoch): see data/captions.py
            ids = self.captions.pick(index, epoch)
            return Batch(self.to_float(self.rows(index)), y, text=[self.captions.texts[i] for i in ids.tolist()],
                         extras={"text_emb": self.captions.embeddings[ids]})
        return Batch(self.to_float(self.rows(index)), y, x_b=x_b)

    def subset(self, n: int) -> "TensorData":
        x_b = None if self.x_b is None else self.x_b[:n]
        captions = None if self.captions is None else self.captions.subset(n)
        return TensorData(self.spec, self.x[:n], None if self.y is None else self.y[:n], self.skipped, self.source, x_b,
                          captions, self.mapped, self.stream)


def mirror(batch: Batch, idx: Tensor, epoch: int, seed: int) -> Batch:
    """Left-right mirror of about half the batch, on the batch tensor (no per-image Python work).

    Whether sample i is mirrored in epoch e is a hash of (seed, e, i) alone, so resumed runs and runs
    with any number of processes mirror the same images; a pair (x, x_b) is mirrored together.
    """
    h = (idx * 0x9E3779B1 + (epoch & 0xFFFFFFFF) * 0x85EBCA77 + (seed & 0xFFFFFFFF) * 0xC2B2AE3D) & 0xFFFFFFFF
    h = ((h ^ (h >> 15)) * 0x2C1B3C6D) & 0xFFFFFFFF
    mask = ((h >> 13) & 1).bool().view(-1, *([1] * (batch.x.dim() - 1)))
    x = torch.where(mask, batch.x.flip(-1), batch.x)
    x_b = None if batch.x_b is None else torch.where(mask, batch.x_b.flip(-1), batch.x_b)
    return Batch(x, batch.y, x_b=x_b, text=batch.text, extras=batch.extras)


class Loader:
    """Endless, seeded, resumable batches: epoch e visits a permutation drawn from (seed, e).

    The permutation is torch's DistributedSampler's (seeded with seed + epoch, reshuffled per epoch):
    with `world_size` K > 1 each rank takes its strided share, and rank r's batch at a given step is its
    slice of the global batch, so the K ranks together see exactly the samples one process would with
    the same (global) `batch_size`. The state is two integers (epoch, position), position counting
    global samples, so a run resumes exactly, also with another number of ranks. The last incomplete
    batch of an epoch is dropped (GAN losses assume full batches; BatchNorm dislikes tiny ones). A batch larger
    than the data is cut to the data's size, except for tables, whose batches then run on through the next
    epochs' permutations (`wraps`; CTGAN draws 500 rows a step from tables of a few hundred).
    """

    def __init__(self, data: TensorData, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 flip: bool = False) -> None:
        if len(data) == 0:
            raise ValueError("the dataset is empty")
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.data = data
        # a table smaller than the batch (CTGAN's small tables: 500 rows a step from a few hundred) keeps the batch
        # and runs through several epochs' permutations within one; other data is cut to one batch of everything
        self.wraps = data.spec.kind == "table" and batch_size > len(data) // world_size * world_size
        self.batch_size = batch_size if self.wraps else min(batch_size, len(data))  # global
        if self.batch_size % world_size:
            raise ValueError(f"train.batch_size {self.batch_size} is the global batch and must split evenly over "
                             f"{world_size} processes: use a multiple of {world_size}")
        self.rank, self.world_size = rank, world_size
        self.local_batch = self.batch_size // world_size
        self.seed = seed
        self.flip = flip
        if flip and data.spec.kind != "image":
            raise ValueError("data.flip mirrors images left-right; this data is not images: set data.flip=false")
        self.epoch = 0
        self.position = 0
        self._order: Tensor | None = None

    def _indices(self) -> Tensor:
        """This rank's sample order for the current epoch."""
        if self._order is None:
            sampler = DistributedSampler(range(len(self.data)), num_replicas=self.world_size, rank=self.rank,
                                         shuffle=True, seed=self.seed, drop_last=True)
            sampler.set_epoch(self.epoch)
            self._order = torch.tensor(list(iter(sampler)), dtype=torch.long)
        return self._order

    def _wrapped_indices(self, per_rank: int) -> Tensor:
        """local_batch indices from the stream of epoch permutations (batch larger than the data: tables)."""
        parts, need = [], self.local_batch
        while need:
            at = self.position // self.world_size
            take = min(need, per_rank - at)
            parts.append(self._indices()[at : at + take])
            need -= take
            self.position += take * self.world_size
            if at + take == per_rank:
                self.epoch += 1
                self.position = 0
                self._order = None
        return torch.cat(parts)

    def next_batch(self) -> Batch:
        per_rank = len(self.data) // self.world_size
        if self.wraps:
            idx = self._wrapped_indices(per_rank)
            return self.data.batch(idx, epoch=self.epoch)
        if self.position // self.world_size + self.local_batch > per_rank:
            self.epoch += 1
            self.position = 0
            self._order = None
        at = self.position // self.world_size
        idx = self._indices()[at : at + self.local_batch]
        self.position += self.batch_size
        batch = self.data.batch(idx, epoch=self.epoch)
        if self.flip:
            batch = self._mirror(batch, idx)
        return batch

    def _mirror(self, batch: Batch, idx: Tensor) -> Batch:
        return mirror(batch, idx, self.epoch, self.seed)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._order = None
