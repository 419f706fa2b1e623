"""Tar shards: images beyond a local disk budget, and for several machines (WebDataset's format and I/O).

`ganforge data pack FOLDER --out shards/` writes the folder's readable images, as stored (no re-encoding), into
tar shards of at most `shard_images` images and `shard_bytes` bytes (`shard-000000.tar`, ...), each image a
WebDataset sample (`<id>.jpg`, `<id>.cls` its label, `<id>.path` its file name), and `index.json`, written last:
the shards, their image counts, the classes and the stored sizes. `--data shards/` (the folder) or a brace pattern
of local paths or URLs that WebDataset's `gopen` opens (`shards/shard-{000000..000009}.tar`,
`https://host/cars/shard-{000000..000199}.tar`, `pipe:aws s3 cp s3://bucket/shard-000000.tar -`; the index is read
beside them) trains from them.

Why WebDataset: its shards are plain POSIX tar files (written and checked with any tar tool, served by any web
server or object store, read strictly sequentially), and the library is small (braceexpand, numpy, pyyaml).
LitData and MosaicML Streaming bring their own chunk formats and cloud SDKs. ganforge uses WebDataset for the
format, the writer and the URL openers, and orders the samples itself so that resume is exact:

- Epoch e shuffles the shard list with a seed of (seed, e); rank r of K takes every K-th shard, and DataLoader
  worker w of W of that rank every W-th of those. Each worker reads one shard at a time (its bytes, not decoded),
  visits its images in a permutation seeded by (seed, e, shard), and decodes batches of `local_batch` in the worker
  process (JPEGs in Pillow's draft mode when the target is at most half the stored size).
- Every worker yields the same number of batches per epoch (the least any worker's shards hold, images past it wait
  for a later epoch), so the DataLoader's round-robin puts global batch j of an epoch on worker j mod W, and every
  rank takes the same number of steps (DistributedDataParallel needs that).
- The state is (epoch, position) as for in-memory data. Resuming at batch B of epoch e, worker w skips its batches
  before B without decoding them: whole shards by their counts from the index, and within a shard by reading the
  members. The batches after resume are exactly those of an uninterrupted run with the same number of processes and
  workers; with other numbers the run goes on from the same epoch and the same fraction of it, and within that
  epoch some images may be seen twice or not at all (said in a warning).
- A member that does not decode, or is missing from a truncated or corrupt shard, is skipped and named once (shard and
  member); its place in the batch takes a copy of another image of the same batch, so that batch boundaries, and
  with them exact resume, do not depend on what was skipped.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .images import (DECODE_ERRORS, Decoded, SkippedImagesWarning, _decode_task, _progress, decode_image, run_tasks,
                     name_some, scan_folder, strict_decoding)
from .spec import Batch, DataSpec
from .store import TensorData, mirror

INDEX = "index.json"
SHARD_FORMAT = "ganforge-shards-1"
SHARD_NAME = "shard-{:06d}.tar"
DEFAULT_SHARD_IMAGES = 1000
DEFAULT_SHARD_BYTES = 128 << 20
REFERENCE_IMAGES = 1000  # decoded in the main process for previews and evaluation during training


class ShardWarning(UserWarning):
    """A shard member could not be read or decoded and was skipped."""


@dataclass
class ShardIndex:
    """What `index.json` records: shard names and image counts, classes, stored sizes, the files left out."""

    shards: list[str]
    counts: list[int]
    class_names: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # stored "HxW" -> images
    skipped: list[str] = field(default_factory=list)
    source: str = ""
    base: str = ""  # where the shards are: a folder, or a URL prefix (set when read)
    urls: list[str] = field(default_factory=list)  # the shards to read (set when read; a pattern may select some)

    @property
    def total(self) -> int:
        return int(sum(self.counts))

    def to_json(self) -> dict[str, Any]:
        return {"format": SHARD_FORMAT, "shards": self.shards, "counts": self.counts, "class_names": self.class_names,
                "sizes": self.sizes, "skipped": self.skipped, "source": self.source}


# ---------------------------------------------------------------------------------------------------- packing


def pack_folder(root: str | Path, out: str | Path, shard_images: int = DEFAULT_SHARD_IMAGES,
                shard_bytes: int = DEFAULT_SHARD_BYTES, quiet: bool = False, seed: int = 0) -> ShardIndex:
    """Write the readable images of an image folder into tar shards under `out` (see the module docstring).

    Every image is decoded once to check it (unreadable files are skipped and named, as training would). The stored
    bytes then go into the shards in a random order (seeded by `seed`), so that every shard, and every batch read from
    one, is a sample of the whole folder rather than of one class or one run of neighbouring files; each sample's key
    is its image's position among the readable files in sorted order (the row the decode cache would give it).
    Shards are written under temporary names and renamed, and index.json is written last, so an interrupted pack
    leaves no index that names a partial shard.
    """
    import webdataset as wds

    root, out = Path(root), Path(out)
    if shard_images < 1 or shard_bytes < 1:
        raise ValueError("shard_images and shard_bytes must be positive")
    scan = scan_folder(root)
    if scan.loose:
        raise ValueError(f"image folder {scan.label} has class sub-folders and also {len(scan.loose)} images directly "
                         f"inside it ({name_some(scan.loose, 5)}); move those into a class sub-folder")
    if not scan.images:
        raise ValueError(f"image folder {scan.label} holds no images (.png/.jpg/.webp/.bmp/.gif)")
    if out.exists() and (out / INDEX).exists():
        raise ValueError(f"'{out}' already holds shards ({INDEX}); choose another --out or delete it")
    labels = dict(zip(scan.images, scan.labels)) if scan.class_names else {}
    index = ShardIndex([], [], list(scan.class_names), {}, [], str(root.resolve()))
    good: list[str] = []
    job = (scan, None, 3, "crop", False)  # decoded to check it (as training would), pixels not kept
    tasks = [(scan.images[i:i + 64],) for i in range(0, len(scan.images), 64)]
    with strict_decoding():
        for (rels,), probes in run_tasks(_decode_task, tasks, job, len(scan.images), f"checking {root.name or root}",
                                         quiet):
            for rel, probe in zip(rels, probes):
                if isinstance(probe, Decoded):
                    good.append(rel)
                    index.sizes[probe.stored_size] = index.sizes.get(probe.stored_size, 0) + 1
                else:
                    index.skipped.append(rel)
    if not good:
        raise ValueError(f"image folder {scan.label} has 0 readable images ({len(index.skipped)} unreadable: "
                         f"{name_some(index.skipped, 5)})")
    order = torch.randperm(len(good), generator=torch.Generator().manual_seed(seed)).tolist()
    out.mkdir(parents=True, exist_ok=True)
    tag = f".tmp-{os.getpid()}"
    writer: Any = None
    count = size = 0
    try:
        with _progress(f"packing {root.name or root}", len(good), quiet) as advance:
            for done, key in enumerate(order):
                rel = good[key]
                data = (scan.root / rel).read_bytes()
                if writer is not None and (count >= shard_images or size + len(data) > shard_bytes):
                    writer.close()
                    writer = None
                    os.replace(out / (index.shards[-1] + tag), out / index.shards[-1])
                    index.counts.append(count)
                if writer is None:
                    index.shards.append(SHARD_NAME.format(len(index.shards)))
                    writer = wds.TarWriter(str(out / (index.shards[-1] + tag)), encoder=False, mtime=0)
                    count = size = 0
                ext = rel.rsplit(".", 1)[-1].lower()
                sample = {"__key__": f"{key:09d}", ext: data, "path": rel.encode()}
                if labels:
                    sample["cls"] = str(labels[rel]).encode()
                writer.write(sample)
                count += 1
                size += len(data)
                if done % 256 == 255:
                    advance(256)
        writer.close()
        writer = None
        os.replace(out / (index.shards[-1] + tag), out / index.shards[-1])
        index.counts.append(count)
    finally:
        if writer is not None:  # an error mid-pack (a full disk?): no partial shard is left behind
            try:
                writer.close()
            except OSError:
                pass
            (out / (index.shards[-1] + tag)).unlink(missing_ok=True)
    tmp = out / (INDEX + tag)
    tmp.write_text(json.dumps(index.to_json(), indent=1))
    os.replace(tmp, out / INDEX)
    index.base = str(out)
    index.urls = [str(out / name) for name in index.shards]
    if index.skipped:
        warnings.warn(f"skipped {len(index.skipped)} unreadable image files in {scan.label}: "
                      f"{name_some(index.skipped)}", SkippedImagesWarning, stacklevel=2)
    return index


# ---------------------------------------------------------------------------------------------------- reading


def is_shard_source(source: str) -> bool:
    """A folder with a shard index.json, or a .tar path / pattern / URL."""
    if source.startswith("builtin:"):
        return False
    if ".tar" in source and ("{" in source or "://" in source or source.startswith("pipe:") or source.endswith(".tar")):
        return True
    path = Path(source)
    if not (path.is_dir() and (path / INDEX).is_file()):
        return False
    try:  # an image folder may hold an index.json of its own: only ours makes it a shard set
        return json.loads((path / INDEX).read_text()).get("format") == SHARD_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _read_text(url: str) -> str:
    import webdataset as wds

    with wds.gopen(url) as f:
        return f.read().decode()


def shard_name(url: str) -> str:
    """'shard-000003.tar' from a path, a URL (query strings and %2F-quoted paths too) or a pipe: command."""
    from urllib.parse import unquote

    found = re.findall(r"[^/\s?=&'\"]+\.tar\b", unquote(url))
    if not found:
        raise ValueError(f"'{url}' names no .tar shard")
    return found[-1]


def beside(url: str, name: str) -> str:
    """`url` with its (last) shard name replaced by `name`: the file next to that shard, through the same opener."""
    shard = shard_name(url)
    at = url.rfind(shard)
    if at < 0:
        raise ValueError(f"cannot find '{shard}' in '{url}' to read {name} beside it")
    return url[:at] + name + url[at + len(shard):]


def read_index(source: str) -> ShardIndex:
    """The ShardIndex of a shard folder or pattern, with the shards to read (`urls`) resolved."""
    from braceexpand import braceexpand

    path = Path(source)
    if path.is_dir():
        base, urls = str(path), None
        index_url = f"{base}/{INDEX}"
    else:
        urls = list(braceexpand(source))
        first = urls[0]
        index_url = beside(first, INDEX)  # beside the shards: the same folder, URL or pipe: command
        base = index_url[:index_url.index(INDEX)].rstrip("/") or "."
    try:
        raw = json.loads(_read_text(index_url))
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the shard index '{index_url}' ({type(e).__name__}: {e}); shards are read with "
                         f"the {INDEX} that `ganforge data pack` writes beside them") from None
    if raw.get("format") != SHARD_FORMAT:
        raise ValueError(f"'{index_url}' is not a ganforge shard index (format {raw.get('format')!r}); write shards "
                         "with `ganforge data pack FOLDER --out DIR`")
    index = ShardIndex(list(raw["shards"]), [int(c) for c in raw["counts"]], list(raw.get("class_names", [])),
                       dict(raw.get("sizes", {})), list(raw.get("skipped", [])), str(raw.get("source", "")), base)
    if urls is None:
        index.urls = [f"{base}/{name}" for name in index.shards]
    else:  # a pattern: the shards it names, with their counts from the index
        known = dict(zip(index.shards, index.counts))
        missing = [u for u in urls if shard_name(u) not in known]
        if missing:
            raise ValueError(f"{len(missing)} shards of '{source}' are not in {index_url}: {name_some(missing, 3)}")
        index.urls = urls
        index.counts = [known[shard_name(u)] for u in urls]
        index.shards = [shard_name(u) for u in urls]
    return index


def read_shard(url: str) -> tuple[list[dict[str, bytes] | None], str]:
    """The samples of one shard in stored order ({ext: bytes} with "__key__"), and why it ended early ("" if not)."""
    import webdataset as wds

    samples: list[dict[str, bytes] | None] = []
    current: dict[str, Any] | None = None
    problem = ""
    try:
        with wds.gopen(url) as stream:
            for member in wds.tariterators.tar_file_iterator(stream):
                key, _, ext = member["fname"].partition(".")
                if current is None or current["__key__"] != key:
                    current = {"__key__": key}
                    samples.append(current)
                current[ext] = member["data"]
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        problem = f"{type(e).__name__}: {str(e).split(' @ ')[0] or 'unreadable'}"
    return samples, problem


@dataclass
class ShardSet:
    """Shards and how to decode them: what a StreamLoader reads."""

    index: ShardIndex
    size: tuple[int, int]
    channels: int = 3
    fit: str = "crop"

    def decode(self, sample: dict[str, bytes]) -> tuple[np.ndarray, int]:
        """(uint8 (C, H, W), label) of one sample; raises one of DECODE_ERRORS or KeyError."""
        ext = next(k for k in sample if k not in ("__key__", "cls", "path"))
        px = decode_image(io.BytesIO(sample[ext]), self.size, self.channels, self.fit).pixels
        if self.index.class_names:
            return px, int(sample["cls"])  # KeyError when a cut-short shard lost it: the member is bad
        return px, -1


def shard_data(source: str, size: tuple[int, int] | None, channels: int = 3, fit: str = "crop",
               reference: int = REFERENCE_IMAGES) -> TensorData:
    """TensorData for shards: spec from the index, `stream` = the ShardSet, and `x` a reference set of the first
    `reference` images (decoded here) for previews, evaluation during training and the families' bind_data."""
    index = read_index(source)
    if size is None:
        if len(index.sizes) != 1:
            common = ", ".join(f"{s} ({n})" for s, n in sorted(index.sizes.items(), key=lambda kv: -kv[1])[:5])
            raise ValueError(f"the shards of '{source}' hold images of {len(index.sizes)} sizes ({common}); pass "
                             "--size HxW to resize them all")
        size = tuple(int(v) for v in next(iter(index.sizes)).split("x"))
    stream = ShardSet(index, (int(size[0]), int(size[1])), channels, fit)
    xs, ys, bad = [], [], []
    with strict_decoding():
        for url in index.urls:
            samples, problem = read_shard(url)
            for s in samples:
                try:
                    px, label = stream.decode(s)
                except (*DECODE_ERRORS, KeyError, StopIteration):
                    bad.append(f"{url.rsplit('/', 1)[-1]}:{s.get('__key__')}")
                    continue
                xs.append(px)
                ys.append(label)
                if len(xs) >= reference:
                    break
            if problem:
                bad.append(f"{url.rsplit('/', 1)[-1]} ({problem})")
            if len(xs) >= reference:
                break
    if not xs:
        raise ValueError(f"no readable image in the shards of '{source}' ({name_some(bad, 3)})")
    spec = DataSpec(kind="image", shape=(channels, *stream.size), n_classes=len(index.class_names),
                    class_names=tuple(index.class_names), name=Path(index.base).name or "shards")
    y = torch.tensor(ys, dtype=torch.int64) if index.class_names else None
    return TensorData(spec, torch.from_numpy(np.stack(xs)), y, tuple(index.skipped), source, stream=stream)


# ---------------------------------------------------------------------------------------------------- streaming


def mixed_seed(*parts: int) -> int:
    """One 63-bit seed from several integers (any size or sign: a seed from `date +%s%N` is fine)."""
    return int(np.random.SeedSequence([int(p) % 2**64 for p in parts]).generate_state(1, np.uint64)[0]) >> 1


def epoch_plan(n_shards: int, counts: list[int], seed: int, epoch: int, world_size: int, workers: int,
               local_batch: int) -> tuple[list[list[list[int]]], int]:
    """(shards[rank][worker], batches every worker yields) for one epoch."""
    g = torch.Generator().manual_seed(mixed_seed(seed, epoch))
    order = torch.randperm(n_shards, generator=g).tolist()
    plan = [[order[r::world_size][w::workers] for w in range(workers)] for r in range(world_size)]
    batches = min(sum(counts[s] for s in shards) // local_batch for rank in plan for shards in rank)
    return plan, batches


class ShardStream(torch.utils.data.IterableDataset):
    """One rank's endless stream of decoded batches (see the module docstring). Each DataLoader worker plays the
    logical worker (its id + start batch) mod W, so that the DataLoader's round-robin yields the batches in order."""

    def __init__(self, shards: ShardSet, local_batch: int, seed: int, rank: int, world_size: int, workers: int,
                 epoch: int, batch: int) -> None:
        self.shards, self.local_batch, self.seed = shards, local_batch, seed
        self.rank, self.world_size, self.workers = rank, world_size, max(1, workers)
        self.epoch, self.batch = epoch, batch  # where to start: batch index (per rank) within the epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        physical = info.id if info is not None else 0
        epoch, start = self.epoch, self.batch
        counts = self.shards.index.counts
        logical = None
        while True:
            plan, n_batches = epoch_plan(len(counts), counts, self.seed, epoch, self.world_size, self.workers,
                                         self.local_batch)
            if logical is None:  # a start past this epoch's end (a resume under other settings) is its end
                start = min(start, self.workers * n_batches)
                logical = (physical + start) % self.workers
            if n_batches == 0:
                raise ValueError(f"{self.world_size} process(es) x {self.workers} worker(s) need at least one batch of "
                                 f"{self.local_batch} images from each reader's shards: pack smaller shards "
                                 "(--shard-images) or use fewer --set data.workers")
            done = (start - logical + self.workers - 1) // self.workers if start > logical else 0
            yield from self._epoch(plan[self.rank][logical], epoch, done, n_batches)
            epoch, start = epoch + 1, 0

    def _positions(self, shards: list[int], epoch: int, skip: int) -> Iterator[tuple[int, int]]:
        """(shard, member) in this worker's order for `epoch`, from position `skip` on."""
        counts = self.shards.index.counts
        for s in shards:
            if skip >= counts[s]:
                skip -= counts[s]
                continue
            g = torch.Generator().manual_seed(mixed_seed(self.seed, epoch, s))
            for m in torch.randperm(counts[s], generator=g)[skip:].tolist():
                yield s, m
            skip = 0

    def _epoch(self, shards: list[int], epoch: int, done: int, n_batches: int) -> Iterator[dict[str, Any]]:
        positions = self._positions(shards, epoch, done * self.local_batch)
        loaded: tuple[int, list, str] | None = None
        for b in range(done, n_batches):
            xs, ys, ids, bad = [], [], [], []
            for _ in range(self.local_batch):
                s, m = next(positions)
                if loaded is None or loaded[0] != s:
                    samples, problem = read_shard(self.shards.index.urls[s])
                    loaded = (s, samples, problem)
                    if problem or len(samples) < self.shards.index.counts[s]:
                        bad.append(f"{self.shards.index.shards[s]} ended early after {len(samples)} of "
                                   f"{self.shards.index.counts[s]} images ({problem or 'the file is cut short'})")
                samples = loaded[1]
                name = f"{self.shards.index.shards[s]} member {m}"
                if m >= len(samples):
                    bad.append(f"{name} (missing)")
                    xs.append(None)
                    ys.append(-1)
                    ids.append(-1)
                    continue
                sample = samples[m]
                try:
                    with strict_decoding():  # a truncated image is bad even where Pillow was told to allow them
                        px, label = self.shards.decode(sample)
                except (*DECODE_ERRORS, KeyError, StopIteration) as e:
                    path = sample.get("path", b"").decode(errors="replace")
                    bad.append(f"{self.shards.index.shards[s]}:{sample['__key__']}"
                               f"{f' ({path})' if path else ''}: {type(e).__name__}: {e}")
                    px, label = None, -1
                xs.append(px)
                ys.append(label)
                ids.append(int(sample["__key__"]) if px is not None else -1)
            good = [i for i, px in enumerate(xs) if px is not None]
            if not good:
                raise ValueError(f"every image of a batch failed to decode: {name_some(bad, 3)}")
            for i, px in enumerate(xs):  # a skipped member's place: a copy of another image of this batch
                if px is None:
                    j = good[i % len(good)]
                    xs[i], ys[i], ids[i] = xs[j], ys[j], ids[j]
            yield {"x": torch.from_numpy(np.stack(xs)), "y": torch.tensor(ys, dtype=torch.int64),
                   "idx": torch.tensor(ids, dtype=torch.int64), "epoch": epoch, "batch": b, "bad": bad}


class StreamLoader:
    """Loader's interface (next_batch, state_dict, load_state_dict, batch_size, local_batch) over shards.

    The state is (seed, epoch, position), position counting global samples of the epoch, plus the number of
    processes and workers it was written with (resume is exact when they match; see the module docstring).
    """

    def __init__(self, data: TensorData, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 flip: bool = False, workers: int = 2) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        if batch_size % world_size:
            raise ValueError(f"train.batch_size {batch_size} is the global batch and must split evenly over "
                             f"{world_size} processes: use a multiple of {world_size}")
        if workers < 0:
            raise ValueError(f"data.workers must be >= 0, got {workers}")
        self.data, self.shards = data, data.stream
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.local_batch = batch_size // world_size
        self.seed, self.flip, self.workers = seed, flip, workers
        self.epoch = self.position = 0
        self._it: Iterator[dict[str, Any]] | None = None
        self._named: set[str] = set()
        counts, readers = sorted(self.shards.index.counts), world_size * max(1, workers)
        if sum(counts[:len(counts) // readers]) < self.local_batch:  # the least a reader can get in any epoch
            raise ValueError(f"{len(counts)} shards of {self.shards.index.total:,} images can give some of the "
                             f"{world_size} x {max(1, workers)} readers (processes x data.workers) less than one batch "
                             f"of {self.local_batch} in an epoch: pack smaller shards (--shard-images) or set fewer "
                             "data.workers")

    def _start(self) -> None:
        batch = self.position // self.batch_size
        stream = ShardStream(self.shards, self.local_batch, self.seed, self.rank, self.world_size, self.workers,
                             self.epoch, batch)
        if self.workers == 0:
            self._it = iter(stream)
        else:
            # its own generator: a DataLoader iterator draws a base seed, which must not move the global RNG (the
            # trainer's noise), or a resumed run would draw other noise than an uninterrupted one
            loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=self.workers, prefetch_factor=2,
                                                 generator=torch.Generator().manual_seed(self.seed))
            self._it = iter(loader)

    def next_batch(self) -> Batch:
        if self._it is None:
            self._start()
        out = next(self._it)
        if out["epoch"] != self.epoch:
            self.epoch, self.position = int(out["epoch"]), 0
        self.position += self.batch_size
        new = [b for b in out["bad"] if b not in self._named]
        if new:
            self._named.update(new)
            warnings.warn(f"skipped {len(new)} unreadable shard members: {name_some(new, 5)}", ShardWarning,
                          stacklevel=2)
        x = self.data.to_float(out["x"])
        y = out["y"] if self.shards.index.class_names else None
        batch = Batch(x, y)
        if self.flip:
            batch = mirror(batch, out["idx"], self.epoch, self.seed)
        return batch

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position, "stream": {
            "world_size": self.world_size, "workers": self.workers, "shards": len(self.shards.index.counts)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed, self.epoch, self.position = int(state["seed"]), int(state["epoch"]), int(state["position"])
        saved = state.get("stream")
        now = {"world_size": self.world_size, "workers": self.workers, "shards": len(self.shards.index.counts)}
        if saved is not None and saved != now:
            warnings.warn(f"resuming a shard stream written with {saved} under {now}: training goes on from epoch "
                          f"{self.epoch} at the same batch, but within this epoch some images may be seen twice or "
                          "not at all (resume is exact with the same processes, data.workers and shards)", ShardWarning,
                          stacklevel=2)
        self.position -= self.position % self.batch_size
        self._it = None  # the next batch restarts the readers at (epoch, position)
