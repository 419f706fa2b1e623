"""Datasets larger than memory: the memory-mapped decode cache and tar shards against the old in-memory path.

Builds a folder of 200,000 JPEGs at 128x128 here (Fashion-MNIST items, colourised and scaled, on clip-art
backgrounds from openclipart-png; 10 class sub-folders; 9.8 GB decoded) under bench/results/runs/data_scale/,
then measures, with the commands a user types:

1. first-pass decode throughput (images/s, on the 50k subset) of the decode cache (`load_image_folder`, what the first
   `ganforge train --data FOLDER` runs) and of the shard stream (`ganforge train --data SHARDS/`'s DataLoader
   workers), against a plain Pillow + torch DataLoader baseline with the same number of workers (2);
2. Pillow's JPEG draft mode (decode at a reduced DCT scale) against plain Pillow, for 512x512 JPEGs to 64x64;
3. `ganforge train --data FOLDER --size 128 --family dcgan` (memory map) and `ganforge data pack` +
   `ganforge train --data SHARDS/` (shards) at 10k, 50k and 200k images, and the old in-memory path (ganforge at
   commit OLD_COMMIT, run from `git archive` of that commit) at 10k and 50k (and 100k: `--sizes 100000 --steps 40
   --no-decode` adds it): peak RSS of the training process (VmHWM of the process; DataLoader workers reported apart)
   and training images/s. 200k images in the old path need about twice the 9.8 GB decoded (a list of arrays, then
   one tensor) on this 24 GB machine: not run, its figure is the least-squares line through the measured points,
   labelled as extrapolated.

    .venv/bin/python bench/data_scale.py                      # everything (about an hour on 2 cores)
    .venv/bin/python bench/data_scale.py --sizes 10000 --steps 20 --out /tmp/ds.json   # a smoke check

Results: bench/results/data_scale.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "results" / "runs" / "data_scale"
OLD_COMMIT = "636714f"  # the last commit with the in-memory decode (data/images.py _decode_all + np.load)
TOTAL = 200_000
SIDE = 128
CLASSES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
BACKGROUNDS = ("buildings", "food", "animals", "transportation")

_items: np.ndarray | None = None
_backs: np.ndarray | None = None


# ------------------------------------------------------------------------------------------ the 200k-image folder


def _init(items: np.ndarray, backs: np.ndarray) -> None:
    global _items, _backs
    _items, _backs = items, backs


def make_image(i: int) -> np.ndarray:
    """Image i: a clip-art background, a Fashion-MNIST item scaled to 40-100 px, tinted, at a random spot."""
    rng = np.random.default_rng(1_000_003 + i)
    bg = _backs[rng.integers(len(_backs))].transpose(1, 2, 0).astype(np.float32)
    if rng.random() < 0.5:
        bg = bg[:, ::-1]
    item = Image.fromarray(_items[i % len(_items)])
    side = int(rng.integers(40, 101))
    m = np.asarray(item.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)[..., None] / 255.0
    colour = rng.uniform(0, 255, 3).astype(np.float32)
    shade = colour * (0.35 + 0.65 * m)
    y, x = (int(v) for v in rng.integers(0, SIDE - side + 1, 2))
    out = bg.copy()
    out[y:y + side, x:x + side] = out[y:y + side, x:x + side] * (1 - m) + shade * m
    return np.clip(out, 0, 255).astype(np.uint8)


def _write(span: tuple[int, int, str]) -> int:
    start, end, folder = span
    for i in range(start, end):
        Image.fromarray(make_image(i)).save(f"{folder}/{CLASSES[i % 10]}/{i:06d}.jpg", quality=90)
    return end - start


def build_folder(folder: Path, total: int) -> dict[str, Any]:
    """The JPEG folder (once; a marker file records that it is complete)."""
    marker = folder / ".complete.json"
    if marker.exists():
        return json.loads(marker.read_text())
    from ganforge.data import load_builtin, load_data

    items = load_builtin("fashion-mnist").x[:, 0].numpy()
    backs = np.concatenate([load_data(f"builtin:clipart:{c}", size=(SIDE, SIDE), quiet=True).x.numpy()
                            for c in BACKGROUNDS])
    for c in CLASSES:
        (folder / c).mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    spans = [(a, min(total, a + 2000), str(folder)) for a in range(0, total, 2000)]
    with Pool(2, initializer=_init, initargs=(items, backs)) as pool:
        done = 0
        for n in pool.imap_unordered(_write, spans):
            done += n
            print(f"\r  writing JPEGs {done:,}/{total:,}", end="", flush=True)
    print()
    stored = sum(f.stat().st_size for c in CLASSES for f in (folder / c).iterdir())
    info = {"images": total, "backgrounds": int(len(backs)), "stored_bytes": stored,
            "decoded_bytes": total * 3 * SIDE * SIDE, "seconds": round(time.perf_counter() - t, 1)}
    marker.write_text(json.dumps(info))
    return info


def subset(folder: Path, n: int) -> Path:
    """The first n images (ids < n, 10 classes alike) as a folder of symbolic links."""
    if n >= TOTAL:
        return folder
    sub = WORK / f"jpegs_{n // 1000}k"
    if not (sub / ".complete").exists():
        shutil.rmtree(sub, ignore_errors=True)
        for c in CLASSES:
            (sub / c).mkdir(parents=True)
        for i in range(n):
            name = f"{CLASSES[i % 10]}/{i:06d}.jpg"
            os.symlink(folder / name, sub / name)
        (sub / ".complete").touch()
    return sub


# ------------------------------------------------------------------------------------------ decode throughput


class PlainFolder(torch.utils.data.Dataset):
    """The baseline: Pillow open, convert, resize; one image per __getitem__."""

    def __init__(self, folder: Path) -> None:
        self.files = sorted(str(p) for c in CLASSES for p in (folder / c).iterdir())

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        with Image.open(self.files[i]) as im:
            arr = np.array(im.convert("RGB").resize((SIDE, SIDE), Image.Resampling.LANCZOS))
        return torch.from_numpy(arr).permute(2, 0, 1)


def decode_throughput(folder: Path, shards: Path, n: int, cache: Path, rounds: int = 2) -> dict[str, Any]:
    """First-pass decode images/s: the cache pass, the shard stream and the baseline, interleaved `rounds` times after
    one read of every file (so that no arm finds the files in the page cache when another did not)."""
    from ganforge.data.images import load_image_folder
    from ganforge.data.shards import ShardStream, shard_data

    for p in sorted(folder.rglob("*.jpg")):
        p.read_bytes()
    for p in sorted(shards.glob("*.tar")):
        p.read_bytes()
    arms: dict[str, list[float]] = {"cache": [], "baseline": [], "shards": []}
    sd = shard_data(str(shards), (SIDE, SIDE), reference=64)
    batches = n // 64
    for _ in range(rounds):
        shutil.rmtree(cache, ignore_errors=True)
        t = time.perf_counter()
        data = load_image_folder(folder, (SIDE, SIDE), cache_dir=cache, quiet=True)
        arms["cache"].append(len(data) / (time.perf_counter() - t))
        del data
        shutil.rmtree(cache, ignore_errors=True)
        loader = torch.utils.data.DataLoader(PlainFolder(folder), batch_size=64, num_workers=2)
        t = time.perf_counter()
        seen = sum(len(b) for b in loader)
        arms["baseline"].append(seen / (time.perf_counter() - t))
        stream = ShardStream(sd.stream, 64, 0, 0, 1, 2, 0, 0)
        it = iter(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2))
        t = time.perf_counter()
        for _ in range(batches):
            next(it)
        arms["shards"].append(batches * 64 / (time.perf_counter() - t))
        del it
    best = {k: max(v) for k, v in arms.items()}
    return {"images": n, "workers": 2, "rounds": rounds,
            "what": "cache: load_image_folder's first pass (decode + write the cache file, forked processes); "
                    "shards: ShardStream batches through a DataLoader with 2 workers; baseline: a Dataset doing "
                    "Image.open().convert('RGB').resize((128, 128), LANCZOS) through a DataLoader with 2 workers, "
                    "batch 64. Best of the rounds.",
            "images_per_s_each_round": {k: [round(x, 1) for x in v] for k, v in arms.items()},
            "cache_first_pass_images_per_s": round(best["cache"], 1),
            "baseline_pillow_dataloader_images_per_s": round(best["baseline"], 1),
            "shards_stream_images_per_s": round(best["shards"], 1),
            "cache_vs_baseline": round(best["cache"] / best["baseline"], 2),
            "shards_vs_baseline": round(best["shards"] / best["baseline"], 2)}


def draft_mode(folder: Path, n: int = 2000) -> dict[str, Any]:
    """512x512 JPEGs (the 128x128 images scaled up 4x, quality 90) decoded to 64x64: draft mode vs plain Pillow."""
    from ganforge.data.images import decode_image

    big = WORK / "jpegs_512"
    if not (big / ".complete").exists():
        big.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            src = folder / CLASSES[i % 10] / f"{i:06d}.jpg"
            Image.open(src).resize((512, 512), Image.Resampling.BICUBIC).save(big / f"{i:06d}.jpg", quality=90)
        (big / ".complete").touch()
    files = sorted(big.glob("*.jpg"))
    out: dict[str, Any] = {"images": len(files), "source": "512x512 JPEG", "target": "64x64"}
    for rep in range(2):  # interleaved twice: the second pass is the one reported (warm file cache)
        t = time.perf_counter()
        for f in files:
            with Image.open(f) as im:
                im.convert("RGB").resize((64, 64), Image.Resampling.LANCZOS)
        plain = len(files) / (time.perf_counter() - t)
        t = time.perf_counter()
        for f in files:
            decode_image(f, (64, 64), 3, "crop")
        draft = len(files) / (time.perf_counter() - t)
    out.update(plain_pillow_images_per_s=round(plain, 1), ganforge_draft_images_per_s=round(draft, 1),
               speedup=round(draft / plain, 2))
    return out


# ------------------------------------------------------------------------------------------ training runs


def _status(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in text.splitlines())
            if k in ("VmRSS", "VmHWM")}


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for t in Path(f"/proc/{pid}/task").iterdir()
                for c in (t / "children").read_text().split()]
    except OSError:
        return []


def train(label: str, argv: list[str], env: dict[str, str], steps: int) -> dict[str, Any]:
    """Run `python -m ganforge train ...` and watch its memory: peak RSS (VmHWM) of the training process and the
    sum of its DataLoader workers' peaks; images/s from the run's log after the first fifth of the steps."""
    out_dir = Path(argv[argv.index("--out") + 1])
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "ganforge", "train", *argv]
    print(f"  [{label}] {' '.join(cmd[1:])}", flush=True)
    log = open(WORK / f"{label}.log", "w")
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    peak, workers = 0, {}
    while proc.poll() is None:
        peak = max(peak, _status(proc.pid).get("VmHWM", 0))
        for c in _children(proc.pid):
            workers[c] = max(workers.get(c, 0), _status(c).get("VmHWM", 0))
        time.sleep(0.2)
    wall = time.perf_counter() - t
    log.close()
    result: dict[str, Any] = {"label": label, "command": "ganforge train " + " ".join(_shown_args(argv)),
                              "returncode": proc.returncode, "wall_s": round(wall, 1),
                              "peak_rss_gib": round(peak / 2**20, 3),
                              "workers_peak_rss_gib": round(sum(workers.values()) / 2**20, 3), "workers": len(workers)}
    records = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()
               if '"time"' in line and '"event"' not in line] if (out_dir / "log.jsonl").exists() else []
    records = [r for r in records if "step" in r]
    if proc.returncode == 0 and len(records) > 2:
        first = next(r for r in records if r["step"] >= steps // 5)
        last = records[-1]
        batch = int(argv[argv.index("--batch-size") + 1])
        result["images_per_s"] = round((last["step"] - first["step"]) * batch / (last["time"] - first["time"]), 1)
    print(f"    -> peak RSS {result['peak_rss_gib']} GiB (workers {result['workers_peak_rss_gib']} GiB), "
          f"{result.get('images_per_s')} img/s, rc {proc.returncode}", flush=True)
    return result


def _shown_args(argv: list[str]) -> list[str]:
    return [a.replace(str(WORK), "WORK") for a in argv]


def old_tree() -> Path:
    """ganforge's sources at OLD_COMMIT (the in-memory path), from git archive."""
    old = WORK / f"old-{OLD_COMMIT}"
    if not (old / "src" / "ganforge").is_dir():
        old.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT, "src"], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(old, filter="data")
    return old


def summarise(results: dict[str, Any]) -> None:
    """Peak RSS by size and path (the old path beyond RAM extrapolated along the line through its two smallest
    measured sizes), and training images/s against the in-memory path at the middle size."""
    sizes = sorted({r["images"] for r in results["runs"]})
    table: dict[str, dict[str, Any]] = {}
    for r in results["runs"]:
        table.setdefault(r["path"], {})[str(r["images"])] = r["peak_rss_gib"]
    old = {int(k): v for k, v in table.get("in-memory (old)", {}).items()}
    if len(old) >= 2:  # least squares through the measured points
        xs, ys = np.array(sorted(old)), np.array([old[k] for k in sorted(old)])
        slope, intercept = np.polyfit(xs, ys, 1)
        results["in_memory_fit"] = {"gib_per_100k_images": round(float(slope) * 1e5, 3),
                                    "intercept_gib": round(float(intercept), 3), "points": len(old)}
        for n in sizes:
            if n not in old:
                table["in-memory (old)"][f"{n} (extrapolated)"] = round(float(intercept + slope * n), 2)
    results["peak_rss_gib_by_size"] = table
    paths = {r["path"] for r in results["runs"]}
    complete = [n for n in sizes if {r["path"] for r in results["runs"] if r["images"] == n} == paths]
    if complete:  # the speed comparison at the middle size every path ran at
        at = complete[len(complete) // 2]
        mid = [r for r in results["runs"] if r["images"] == at and "images_per_s" in r]
        ref = next((r["images_per_s"] for r in mid if r["path"].startswith("in-memory")), None)
        if ref:
            results["images_per_s_vs_in_memory"] = {"images": at, **{r["path"]: round(r["images_per_s"] / ref, 3)
                                                                      for r in mid}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,50000,200000")
    ap.add_argument("--steps", type=int, default=300, help="training steps at the largest size")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=str(HERE / "results" / "data_scale.json"))
    ap.add_argument("--paths", default="mmap,shards,in-memory",
                    help="which training paths to run; rows of other paths and sizes are kept from --out")
    ap.add_argument("--no-decode", action="store_true", help="keep the decode and draft figures of --out")
    args = ap.parse_args()
    paths = args.paths.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    WORK.mkdir(parents=True, exist_ok=True)
    folder = WORK / "jpegs"
    print(f"building {TOTAL:,} JPEGs at {SIDE}x{SIDE} in {folder} (once)")
    made = build_folder(folder, TOTAL)
    results: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "folder": made, "runs": [],
    }
    if Path(args.out).exists():  # rows of paths not run now are kept
        before = json.loads(Path(args.out).read_text())
        results["runs"] = [r for r in before.get("runs", [])
                           if r["path"].split()[0] not in paths or r["images"] not in sizes]
        for k in ("decode", "draft", "pack_s", "not_run"):
            if k in before:
                results[k] = before[k]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    old_env = {**os.environ, "PYTHONPATH": str(old_tree() / "src")}
    steps_at = {n: (args.steps if n == max(sizes) else 150 if n == sorted(sizes)[len(sizes) // 2] else 40) for n in sizes}
    for n in sizes:
        sub = subset(folder, n)
        tag = f"{n // 1000}k"
        shards = WORK / f"shards_{tag}"
        if "shards" in paths and not (shards / "index.json").exists():
            shutil.rmtree(shards, ignore_errors=True)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ganforge", "data", "pack", str(sub), "--out", str(shards), "--quiet"],
                           check=True, env=env)
            results.setdefault("pack_s", {})[tag] = round(time.perf_counter() - t, 1)
        common = ["--size", str(SIDE), "--family", "dcgan", "--steps", str(steps_at[n]), "--batch-size",
                  str(args.batch_size), "--set", "log.sample_every=0", "--set", "log.ckpt_every=0",
                  "--set", "log.log_every=10", "--set", "log.tensorboard=false", "--quiet"]
        cache = WORK / f"cache_{tag}"
        shutil.rmtree(cache, ignore_errors=True)  # the first run decodes: its peak includes the decode pass
        runs = [("mmap", env, ["--data", str(sub), "--cache", str(cache)]),
                ("shards", env, ["--data", str(shards)])]
        runs = [r for r in runs if r[0] in paths]
        ram_needed = 2 * n * 3 * SIDE * SIDE / 2**30 + 3
        if "in-memory" not in paths:
            pass
        elif ram_needed < results["machine"]["ram_gib"] * 0.8:
            old_cache = WORK / f"cache_old_{tag}"
            shutil.rmtree(old_cache, ignore_errors=True)
            runs.append(("in-memory (old)", {**old_env, "GANFORGE_CACHE": str(old_cache)}, ["--data", str(sub)]))
        else:
            results["not_run"] = [t for t in results.get("not_run", []) if f"at {n:,} images" not in t]
            results.setdefault("not_run", []).append(
                f"in-memory (old) at {n:,} images: needs about {ram_needed:.0f} GiB (twice the decoded size, plus the "
                f"process), more than 80% of this machine's {results['machine']['ram_gib']} GiB")
        for label, e, data_args in runs:
            row = train(f"{label.split()[0]}_{tag}", [*data_args, *common, "--out", str(WORK / f"run_{label.split()[0]}_{tag}")],
                        e, steps_at[n])
            row.update(path=label, images=n, steps=steps_at[n])
            results["runs"].append(row)
            Path(args.out).write_text(json.dumps(results, indent=1))
        if "in-memory (old)" in [r[0] for r in runs]:
            shutil.rmtree(WORK / f"cache_old_{tag}", ignore_errors=True)
        if n != max(sizes):
            shutil.rmtree(cache, ignore_errors=True)
    mid_n = sorted(sizes)[len(sizes) // 2]
    tag = f"{mid_n // 1000}k"
    if not args.no_decode:
        print("decode throughput (first pass) and draft mode")
        results["decode"] = decode_throughput(subset(folder, mid_n), WORK / f"shards_{tag}", mid_n,
                                              WORK / "cache_decode")
        shutil.rmtree(WORK / "cache_decode", ignore_errors=True)
        results["draft"] = draft_mode(folder)
    results["runs"].sort(key=lambda r: (r["images"], ["mmap", "shards", "in-memory"].index(r["path"].split()[0])))
    summarise(results)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps({k: results[k] for k in ("peak_rss_gib_by_size", "decode", "draft") if k in results}, indent=1))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
