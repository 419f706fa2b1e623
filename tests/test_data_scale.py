"""Data larger than memory: the memory-mapped decode cache and tar shards (data/images.py, data/shards.py)."""

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge.data.images as images_mod
import ganforge.data.store as store_mod
from ganforge.cli.main import main
from ganforge.data import Loader, TensorData, load_data
from ganforge.data.images import TruncatedCacheWarning, load_image_folder
from ganforge.data.shards import (ShardStream, ShardWarning, StreamLoader, epoch_plan, pack_folder, read_index,
                                  shard_data)
from ganforge.train import build_run

from .conftest import assert_same_state, tiny_config


def make_folder(root: Path, n: int = 48, classes: int = 2, side: int = 20, seed: int = 0) -> Path:
    """n random JPEGs in `classes` class sub-folders (each image distinct)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        d = root / f"c{i % classes}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(d / f"{i:04d}.jpg", quality=95)
    return root


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "imgs")


def in_memory(data: TensorData) -> TensorData:
    return TensorData(data.spec, data.x.clone(), data.y, data.skipped, data.source)


def test_the_cache_is_a_memory_map_and_yields_the_in_memory_batches(folder, tmp_path):
    data = load_image_folder(folder, (16, 16), cache_dir=tmp_path / "cache", quiet=True)
    assert data.mapped is not None and any((tmp_path / "cache" / "images").glob("*.u8"))
    memory = in_memory(data)
    assert memory.mapped is None
    for flip in (False, True):
        a, b = Loader(data, 10, seed=3, flip=flip), Loader(memory, 10, seed=3, flip=flip)
        for _ in range(12):  # past an epoch boundary (48 images, 4 batches an epoch)
            x, y = a.next_batch(), b.next_batch()
            torch.testing.assert_close(x.x, y.x, rtol=0, atol=0)
            assert torch.equal(x.y, y.y)


@pytest.mark.parametrize("processes", [True, False])
def test_the_streaming_pass_closes_the_holes_of_unreadable_files(folder, tmp_path, monkeypatch, processes):
    (folder / "c0" / "0002.jpg").write_bytes(b"broken")  # early, so that most rows move up
    (folder / "c1" / "0031.jpg").write_bytes(b"")
    monkeypatch.setattr(images_mod, "PROCESS_MIN_FILES", 1 if processes else 10**9)
    with pytest.warns(images_mod.SkippedImagesWarning, match="c0/0002.jpg, c1/0031.jpg"):
        data = load_image_folder(folder, (16, 16), cache_dir=tmp_path / "cache", quiet=True)
    good = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.jpg") if p.stat().st_size > 10)
    assert len(data) == 46 and data.skipped == ("c0/0002.jpg", "c1/0031.jpg")
    want = np.stack([images_mod.decode_image(folder / rel, (16, 16), 3, "crop").pixels for rel in good])
    assert torch.equal(data.x, torch.from_numpy(want))
    assert data.y.tolist() == [int(rel[1]) for rel in good]
    assert next((tmp_path / "cache" / "images").glob("*.u8")).stat().st_size == 46 * 3 * 16 * 16


def test_reading_drops_mapped_pages_so_resident_memory_stays_bounded(tmp_path, monkeypatch):
    make_folder(tmp_path / "big", n=600, classes=1, side=64)
    data = load_image_folder(tmp_path / "big", (64, 64), cache_dir=tmp_path / "cache", quiet=True)
    x_file = next((tmp_path / "cache" / "images").glob("*.u8"))
    assert x_file.stat().st_size == 600 * 12 << 10  # 7.2 MB

    def mapped_rss_kib() -> int:  # resident KiB of this process's mapping(s) of the cache file
        total, inside = 0, False
        for line in Path("/proc/self/smaps").read_text().splitlines():
            if line[:1].isalnum() and "-" in line.split()[0]:
                inside = line.endswith(str(x_file))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
        return total

    monkeypatch.setattr(store_mod, "RELEASE_BYTES", 1 << 20)  # drop pages every 1 MiB read (or faulted around)
    loader = Loader(data, 8, seed=0)
    peak = 0
    for _ in range(150):  # two epochs: every page read twice
        loader.next_batch()
        peak = max(peak, mapped_rss_kib())
    # at most the release budget plus one batch's fault-around windows (8 x (12 + 64) KiB), not the 7,200 KiB file
    assert 0 < peak <= 1024 + 8 * 76
    monkeypatch.setattr(store_mod, "RELEASE_BYTES", 1 << 40)  # never dropped: the whole file ends up resident
    for _ in range(75):
        loader.next_batch()
    assert mapped_rss_kib() >= 600 * 12 - 64


def test_a_truncated_cache_is_detected_and_rebuilt(folder, tmp_path, monkeypatch):
    first = in_memory(load_image_folder(folder, (16, 16), cache_dir=tmp_path / "cache", quiet=True))
    x_file = next((tmp_path / "cache" / "images").glob("*.u8"))
    with open(x_file, "r+b") as f:
        f.truncate(x_file.stat().st_size - 100)
    calls = []
    real = images_mod.decode_image
    monkeypatch.setattr(images_mod, "decode_image", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.warns(TruncatedCacheWarning, match="decoding the folder again"):
        again = load_image_folder(folder, (16, 16), cache_dir=tmp_path / "cache", quiet=True)
    assert len(calls) == 48 and x_file.stat().st_size == 48 * 3 * 16 * 16
    assert torch.equal(again.x, first.x) and torch.equal(again.y, first.y)
    calls.clear()
    load_image_folder(folder, (16, 16), cache_dir=tmp_path / "cache", quiet=True)
    assert calls == []  # rebuilt: a cache hit again


def test_a_cache_that_would_not_fit_on_disk_is_refused_with_the_size(folder, tmp_path, monkeypatch):
    class Usage:
        free = 10_000

    monkeypatch.setattr(images_mod.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(ValueError, match=r"needs 36.00 KiB of disk .* 9.77 KiB free; pass --cache DIR"):
        load_image_folder(folder, (16, 16), cache_dir=tmp_path / "cache", quiet=True)
    assert not [p for p in (tmp_path / "cache" / "images").iterdir() if p.suffix != ".lock"]  # nothing half-written


def test_resume_from_the_memory_mapped_cache_is_bit_exact(folder, tmp_path):
    def cfg(steps):
        return tiny_config("dcgan", str(folder), steps=steps, data={"size": [16, 16], "cache": str(tmp_path / "c"),
                                                                     "flip": True},
                           train={"steps": steps, "batch_size": 8})

    full = build_run(cfg(8), tmp_path / "full")
    assert full.data.mapped is not None
    full.fit()
    build_run(cfg(4), tmp_path / "split").fit()
    resumed = build_run(cfg(8), tmp_path / "split", resume=True)
    assert resumed.step == 4
    resumed.fit()
    assert_same_state(full, resumed)
    assert full.loader.state_dict() == resumed.loader.state_dict()


def test_data_inspect_states_the_decoded_size_and_the_cache(folder, tmp_path, capsys):
    assert main(["data", "inspect", str(folder), "--size", "16", "--cache", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "48 images x 3x16x16 uint8 = 36.00 KiB" in out
    assert str(tmp_path / "c" / "images") in out and "not built yet" in out
    load_data(str(folder), size=(16, 16), cache_dir=tmp_path / "c", quiet=True)
    assert main(["data", "inspect", str(folder), "--size", "16", "--cache", str(tmp_path / "c")]) == 0
    assert "(built)" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------- shards


@pytest.fixture
def shards(folder, tmp_path):
    index = pack_folder(folder, tmp_path / "shards", shard_images=6, quiet=True)
    return tmp_path / "shards", index


def test_pack_writes_every_image_once_with_its_label_in_a_random_order(shards, folder):
    from ganforge.data.shards import read_shard

    out, index = shards
    assert index.total == 48 and len(index.shards) == 8 and index.counts == [6] * 8
    assert read_index(str(out)).counts == index.counts
    direct = load_image_folder(folder, (20, 20), cache_dir=out.parent / "cache", quiet=True)
    data = shard_data(str(out), (20, 20), reference=1000)
    assert data.stream is not None and len(data) == 48 and data.spec.class_names == ("c0", "c1")
    keys, labels = [], []
    for url in data.stream.index.urls:
        samples, problem = read_shard(url)
        assert problem == "" and len(samples) == 6
        keys += [int(s["__key__"]) for s in samples]
        labels += [int(s["cls"]) for s in samples]
    # the key is the image's row in the folder's sorted order: same pixels, same label as the decode cache's row
    assert sorted(keys) == list(range(48)) and keys != sorted(keys)
    torch.testing.assert_close(data.x, direct.x[keys], rtol=0, atol=0)
    assert labels == direct.y[keys].tolist()
    first_shard = labels[:6]
    assert 0 < sum(first_shard) < 6  # a shard mixes the classes (an ordered pack would put one class per shard)
    # a brace pattern selects shards, with their counts from the index beside them
    some = read_index(str(out / "shard-{000002..000004}.tar"))
    assert some.shards == ["shard-000002.tar", "shard-000003.tar", "shard-000004.tar"] and some.total == 18


def test_shard_names_sources_and_seeds(shards, folder, tmp_path):
    from ganforge.data.shards import is_shard_source, mixed_seed, shard_name

    out, _ = shards
    assert shard_name("pipe:aws s3 cp s3://bucket/cars/shard-000007.tar -") == "shard-000007.tar"
    assert shard_name("https://host/cars/shard-000007.tar?X-Amz-Signature=ab") == "shard-000007.tar"
    assert shard_name("https://storage.googleapis.com/b/o/cars%2Fshard-000007.tar?alt=media") == "shard-000007.tar"
    assert is_shard_source(str(out)) and is_shard_source("https://host/shard-{000000..000003}.tar")
    (folder / "index.json").write_text('{"photos": 48}')  # an image folder with an index.json of its own
    assert not is_shard_source(str(folder))
    assert len(load_data(str(folder), size=(16, 16), cache_dir=tmp_path / "c", quiet=True)) == 48
    pipe = read_index(f"pipe:cat {out}/shard-{{000000..000001}}.tar")  # the index is read through the same command
    assert pipe.shards == ["shard-000000.tar", "shard-000001.tar"] and pipe.total == 12
    assert mixed_seed(1_733_400_000_000, 10**6, 5) != mixed_seed(1_733_400_000_000, 10**6, 6)
    data = shard_data(str(out), (16, 16), reference=4)
    for seed in (1_733_400_000_123_456_789, -5):
        big = StreamLoader(data, 4, seed=seed, workers=0, flip=True)
        assert big.next_batch().x.shape == (4, 3, 16, 16)


def stream_batches(data, n, **kw):
    it = iter(ShardStream(data.stream, **kw))
    return [next(it) for _ in range(n)]


def test_an_epoch_visits_each_image_at_most_once_and_ranks_read_disjoint_shards(shards):
    out, index = shards
    data = shard_data(str(out), (16, 16))
    plan, n_batches = epoch_plan(8, index.counts, 0, 0, 2, 2, 4)
    assert n_batches == 3  # each of the 4 readers has 2 shards = 12 images = 3 batches of 4
    seen = []
    for rank in (0, 1):
        for worker in (0, 1):
            batches = stream_batches(data, n_batches, local_batch=4, seed=0, rank=rank, world_size=2, workers=2,
                                     epoch=0, batch=worker)  # the stream of logical worker `worker`
            assert all(b["epoch"] == 0 for b in batches)
            seen += torch.cat([b["idx"] for b in batches]).tolist()
    assert len(seen) == 48 and len(set(seen)) == 48


@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_shard_stream_yields_exactly_the_same_batches(shards, workers):
    out, _ = shards
    data = shard_data(str(out), (16, 16))
    full = StreamLoader(data, 4, seed=1, workers=workers, flip=True)
    want = [full.next_batch() for _ in range(30)]  # 12 batches an epoch: past two epoch boundaries
    for stop in (5, 12, 13):
        first = StreamLoader(data, 4, seed=1, workers=workers, flip=True)
        for _ in range(stop):
            first.next_batch()
        resumed = StreamLoader(data, 4, seed=1, workers=workers, flip=True)
        resumed.load_state_dict(first.state_dict())
        for i in range(stop, 30):
            b = resumed.next_batch()
            torch.testing.assert_close(b.x, want[i].x, rtol=0, atol=0)
            assert torch.equal(b.y, want[i].y)
    assert full.state_dict()["epoch"] == 2


def corrupt_member(shard: Path, member: int, tail: int = 0) -> str:
    """Rewrite `shard` with member #member's image bytes replaced by garbage (or cut the last `tail` bytes)."""
    with tarfile.open(shard) as tar:
        items = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    images = [i for i, (m, _) in enumerate(items) if m.name.endswith(".jpg")]
    name = items[images[member]][0].name
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i, (m, data) in enumerate(items):
            if i == images[member]:
                data = b"not a jpeg at all"
                m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    raw = buf.getvalue()
    shard.write_bytes(raw[:len(raw) - tail] if tail else raw)
    return name.split(".")[0]


def test_a_corrupt_member_and_a_truncated_shard_are_skipped_and_named(shards):
    out, index = shards
    key = corrupt_member(out / "shard-000003.tar", 2)
    size = (out / "shard-000005.tar").stat().st_size
    with open(out / "shard-000005.tar", "r+b") as f:  # cut inside the 4th member
        f.truncate(size // 2)
    data = shard_data(str(out), (16, 16), reference=10)
    loader = StreamLoader(data, 4, seed=0, workers=0)
    with pytest.warns(ShardWarning) as caught:
        batches = [loader.next_batch() for _ in range(12)]  # one epoch
    text = " ".join(str(w.message) for w in caught)
    assert f"shard-000003.tar:{key}" in text and "not a jpeg" not in text and "UnidentifiedImageError" in text
    assert "shard-000005.tar ended early" in text
    assert all(b.x.shape == (4, 3, 16, 16) and torch.isfinite(b.x).all() for b in batches)
    again = StreamLoader(data, 4, seed=0, workers=0)  # the same stream again: the same batches, named once each
    with pytest.warns(ShardWarning):
        for b in batches:
            torch.testing.assert_close(again.next_batch().x, b.x, rtol=0, atol=0)


def test_train_from_shards_resumes_bit_exact(shards, tmp_path):
    out, _ = shards

    def cfg(steps):
        return tiny_config("dcgan", str(out), steps=steps, data={"size": [16, 16], "workers": 2},
                           train={"steps": steps, "batch_size": 8})

    full = build_run(cfg(8), tmp_path / "full")
    assert isinstance(full.loader, StreamLoader)
    full.fit()
    build_run(cfg(5), tmp_path / "split").fit()
    resumed = build_run(cfg(8), tmp_path / "split", resume=True)
    resumed.fit()
    assert_same_state(full, resumed)
    assert full.loader.state_dict() == resumed.loader.state_dict()


def test_shards_choose_the_recipe_of_their_image_count(shards, folder):
    from ganforge.cli.train import _folder_size

    out, _ = shards
    assert _folder_size(str(out)) == _folder_size(str(folder)) == 48
    assert _folder_size(str(out / "shard-{000000..000001}.tar")) == 12


def test_pack_and_shard_errors_name_the_fix(folder, tmp_path, capsys):
    assert main(["data", "pack", str(folder), "--out", str(tmp_path / "s"), "--shard-images", "10", "--quiet"]) == 0
    assert "packed 48 images into 5 shards" in capsys.readouterr().out
    assert main(["data", "pack", str(folder), "--out", str(tmp_path / "s")]) == 2
    assert "already holds shards" in capsys.readouterr().err
    os.remove(tmp_path / "s" / "index.json")
    with pytest.raises(ValueError, match="ganforge data pack"):
        read_index(str(tmp_path / "s" / "shard-{000000..000001}.tar"))
    data = shard_data(pack_folder(folder, tmp_path / "s3", shard_images=40, quiet=True).base, None)
    with pytest.raises(ValueError, match="less than one batch of 32"):  # 2 shards (40 + 8) for 2 readers
        StreamLoader(data, 32, workers=2)


def test_processes_that_want_one_cache_entry_build_it_once(folder, tmp_path):
    """torchrun's ranks load the same folder at once: one decodes while holding the entry's lock, the others wait for
    it and then read the finished entry. Here the test holds the lock until the other process is waiting on it, then
    builds the entry: the other process must decode nothing (without the lock it would find no entry and decode)."""
    import subprocess
    import sys
    import time

    from ganforge.data.images import cache_directory, cache_key, cache_lock, decode_to_cache, scan_folder

    directory = cache_directory(tmp_path / "c")
    scan = scan_folder(folder)
    key = cache_key(scan, (16, 16), 3, "crop")
    script = (
        "import sys, ganforge.data.images as m\n"
        "calls = []\n"
        "real = m.decode_image\n"
        "m.decode_image = lambda *a, **k: calls.append(1) or real(*a, **k)\n"
        "print('ready', flush=True)\n"
        f"d = m.load_image_folder({str(folder)!r}, (16, 16), cache_dir={str(tmp_path / 'c')!r}, quiet=True)\n"
        "print(len(d), len(calls))\n"
    )
    with cache_lock(directory, key):
        other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert other.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # it is now blocked on the lock
        assert other.poll() is None
        decode_to_cache(scan, (16, 16), 3, "crop", True, directory, key)
    out, _ = other.communicate(timeout=120)
    assert out.split() == ["48", "0"]
    assert len(list(directory.glob("*.u8"))) == 1
