"""Peer comparison (issue 19, item 4): lucidrains' `lightweight-gan` (PyPI; FastGAN-style) on ganforge's cars.

The peer is trained on the same small folder ganforge trains on, for the same wall-clock budget, on this CPU,
and its samples are measured with ganforge's own `evaluate` (clipart features: KID and SWD).

* Data: `builtin:clipart:transportation`, train split (279 drawings composited on white), written as PNGs to
  bench/results/runs/cars/folder/. lightweight-gan only trains at power-of-2 sizes, so the folder holds the
  128x128 versions, made exactly as ganforge makes them at 128 (`load_builtin(..., size=(128, 128))`: fitted
  inside the square, centred on white), and the peer trains at --image-size 128.
* Peer environment: its own virtual environment, bench/.venv-lwgan (never ganforge's dependencies), with
  torch==2.13.0 installed first and lightweight-gan==1.2.1 with --no-deps, then its other dependencies
  explicitly, under a torch==2.13.0 constraint, so pip never resolves another torch and never installs
  torchvision.
* Stand-ins (stated in the results JSON): (1) torchvision does not import on this machine (`RuntimeError:
  operator torchvision::nms does not exist` with 0.28.0 and 0.29.1), so bench/peer_stubs/torchvision/ provides
  only the torchvision pieces lightweight-gan calls (transforms Compose, Lambda, Resize, RandomResizedCrop,
  CenterCrop, ToTensor, ToPILImage; transforms.functional.resize; utils.make_grid, utils.save_image), written
  with PIL/numpy/torch and put on the peer venv's path by a .pth file. (2) lightweight-gan is CUDA-only (it
  asserts a GPU at import and calls `.cuda()` throughout), so it is launched through
  bench/peer_stubs/lwgan_cpu.py, which maps exactly those CUDA calls to the CPU and then runs the package's own
  CLI. The package's source files are not modified.
* Training: the peer's own CLI with the README's small-data augmentation (`--aug-prob 0.25 --aug-types
  [translation,cutout,color]`), its default architecture (--fmap-max 512, attention at 32, G 24.0M and D 11.8M
  parameters at 128), fp32 (no --amp: its autocast is CUDA-only), data loading in the main process
  (--num-workers 0), and a huge --num-train-steps; the process group is stopped after --time. Batch: 8 images a
  step without accumulation (`--batch-size 8 --gradient-accumulate-every 1`) rather than the README's example
  16 x 4, which takes about two minutes a step on this 2-core CPU (about ten steps in 20 minutes); smaller
  steps give the peer many more updates in the same time. It saves every --save-every steps (4: the last
  checkpoint is under about a minute old at ~10-15 s a step); the bench deletes all but the newest two
  checkpoints while it runs (each is ~240 MB), and samples from the newest one that loads (a checkpoint being
  written when the run was stopped is skipped).
* Samples: --n images from that checkpoint's generator G, generated with the package's own
  `Trainer.load` / `Trainer.generate_` (clamped to [0, 1], uint8 as its save_image rounds), resized 128 -> 100
  with PIL Lanczos into bench/results/runs/cars/lwgan_samples/. G rather than its EMA copy GE: the package
  only starts its EMA after step 20,000 and until step 25,000 resets GE to G every 1,000 steps (at steps
  1000k + 2), so within a 20-minute CPU run GE is a stale copy of G.
* Measure: `ganforge evaluate --real bench/results/runs/cars/folder --fake bench/results/runs/cars/lwgan_samples
  --size 100 --features clipart --metrics kid,swd`; an 8x8 grid of the first 64 samples goes to
  docs/cars-lwgan.png (beside the JSON instead with --quick or a non-default --out: smoke runs leave docs/ alone).

    .venv/bin/python bench/peer_lwgan.py --setup                       # make bench/.venv-lwgan (once)
    .venv/bin/python bench/peer_lwgan.py --time 20m                    # the comparison run (~25 min in all)
    .venv/bin/python bench/peer_lwgan.py --time 60s --n 64 --out /tmp/peer_smoke.json   # smoke check
    .venv/bin/python bench/peer_lwgan.py --quick                       # the same, into bench/results/

Results: bench/results/peer_lwgan.json (no absolute paths). If the peer cannot run, the JSON records the error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_ctgan import machine  # noqa: E402  (stdlib only: the machine description both peers record)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv-lwgan"
PEER_PY = VENV / "bin" / "python"
STUBS = BENCH / "peer_stubs"
LAUNCHER = STUBS / "lwgan_cpu.py"
RUN = BENCH / "results" / "runs" / "cars"
FOLDER = RUN / "folder"
SAMPLES = RUN / "lwgan_samples"
PEER_RUN = RUN / "lwgan"
RESULTS = BENCH / "results" / "peer_lwgan.json"
GRID = ROOT / "docs" / "cars-lwgan.png"
GANFORGE_PY = ROOT / ".venv" / "bin" / "python"

PEER = "lightweight-gan"
PEER_VERSION = "1.2.1"
TORCH_VERSION = "2.13.0"
# lightweight-gan 1.2.1's Requires-Dist, less torch and torchvision
PEER_DEPS = ["adabelief-pytorch", "einops>=0.8.0", "fire", "kornia>=0.5.4", "numpy", "pillow", "retry", "tqdm"]
DATA = "clipart:transportation"
TRAIN_SIZE = 128   # the peer needs a power of 2
EVAL_SIZE = 100    # ganforge's cars size; samples are resized to it
NAME = "cars"
STANDIN = ("torchvision does not import on this machine (RuntimeError: operator torchvision::nms does not exist, "
           "with 0.28.0 and 0.29.1), so the peer venv has no torchvision; a stand-in package "
           "(bench/peer_stubs/torchvision/, on the venv's path via a .pth file) provides only what lightweight-gan "
           "1.2.1 calls: transforms.Compose, Lambda, Resize, RandomResizedCrop, CenterCrop, ToTensor, ToPILImage, "
           "transforms.functional.resize, utils.make_grid and utils.save_image, written with PIL/numpy/torch "
           "following torchvision's documented behaviour. lightweight-gan is CUDA-only (asserts a GPU at import, "
           "calls .cuda() throughout); bench/peer_stubs/lwgan_cpu.py maps exactly those CUDA calls to the CPU "
           "(is_available only during its import, Tensor/Module.cuda as no-ops, torch.device('cuda') -> cpu inside "
           "its module) and then runs the package's own CLI. The package's source files are unmodified.")


def rel(path: Path | str) -> str:
    """A path as the JSON records it: relative to the repository, else `<temporary>/NAME`."""
    p = Path(os.path.abspath(path))  # not resolve(): a venv's bin/python is a symlink to the base interpreter
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return f"<temporary>/{p.name}"


def parse_duration(text: str) -> float:
    """'20m' / '60s' / '1h' / '90' (seconds) -> seconds (ganforge's --time syntax)."""
    from ganforge.config import parse_duration as gf_parse

    return float(gf_parse(text))


# -- peer environment --------------------------------------------------------------------------------------------
def pip(*words: str) -> None:
    cmd = [str(PEER_PY), "-m", "pip", "install", "--disable-pip-version-check", *words]
    print("$", " ".join(shlex.quote(rel(w) if w.startswith(str(ROOT)) else w) for w in cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def peer_info() -> dict[str, Any]:
    """Versions and path facts from inside the peer venv (imports the stand-in and the peer)."""
    code = ("import json, sys, importlib.metadata as md, importlib.util as u; sys.path.insert(0, sys.argv[1]);"
            "import lwgan_cpu; lwgan_cpu.cpu_patches(); import torch, torchvision, lightweight_gan;"
            "dists = {d.metadata['Name'].lower() for d in md.distributions()};"
            "print(json.dumps({'lightweight_gan': md.version('lightweight-gan'), 'torch': torch.__version__,"
            "'torch_threads': torch.get_num_threads(), 'python': sys.version.split()[0],"
            "'kornia': md.version('kornia'), 'einops': md.version('einops'),"
            "'torchvision_is_standin': torchvision.__version__ == '0+standin' and 'torchvision' not in dists,"
            "'torchvision_file': torchvision.__file__}))")
    out = subprocess.run([str(PEER_PY), "-c", code, str(STUBS)], check=True, capture_output=True, text=True, cwd=ROOT)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    info["torchvision_file"] = rel(info["torchvision_file"])
    return info


def setup() -> dict[str, Any]:
    """Create bench/.venv-lwgan (idempotent): torch first, the peer with --no-deps, its deps, the stand-in."""
    marker = VENV / "bench-setup.json"
    want = {"lightweight_gan": PEER_VERSION, "torch": TORCH_VERSION, "deps": PEER_DEPS}
    if marker.exists() and PEER_PY.exists():
        try:
            if json.loads(marker.read_text()) == want:
                info = peer_info()
                if info["torch"].split("+")[0] == TORCH_VERSION and info["torchvision_is_standin"]:
                    print(f"peer venv ready: {rel(VENV)} ({PEER} {info['lightweight_gan']}, torch {info['torch']})")
                    return info
        except (subprocess.CalledProcessError, json.JSONDecodeError, KeyError) as e:
            print(f"peer venv check failed ({type(e).__name__}); reinstalling into it", flush=True)
    if not PEER_PY.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    constraint = VENV / "torch-constraint.txt"
    constraint.write_text(f"torch=={TORCH_VERSION}\n")
    pip(f"torch=={TORCH_VERSION}")
    pip("--no-deps", f"{PEER}=={PEER_VERSION}")
    pip("-c", str(constraint), *PEER_DEPS)
    site = subprocess.run([str(PEER_PY), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "ganforge_bench_peer_stubs.pth").write_text(str(STUBS) + "\n")
    info = peer_info()
    if info["torch"].split("+")[0] != TORCH_VERSION:
        raise RuntimeError(f"peer venv has torch {info['torch']}, not {TORCH_VERSION}")
    if not info["torchvision_is_standin"]:
        raise RuntimeError(f"peer venv imports a real torchvision ({info['torchvision_file']}), not the stand-in")
    marker.write_text(json.dumps(want))
    print(f"peer venv ready: {rel(VENV)} ({PEER} {info['lightweight_gan']}, torch {info['torch']})")
    return info


# -- data -----------------------------------------------------------------------------------------------------
def make_folder() -> int:
    """ganforge's builtin:clipart:transportation train split at 128x128 as PNGs (rewritten when it changes)."""
    import hashlib

    from PIL import Image

    from ganforge.data import load_builtin

    data = load_builtin(DATA, size=(TRAIN_SIZE, TRAIN_SIZE), channels=3, split="train")
    x = data.x.numpy()
    digest = hashlib.sha256(x.tobytes()).hexdigest()
    done = FOLDER / ".complete"
    if done.exists() and done.read_text().strip() == digest:
        return len(x)
    shutil.rmtree(FOLDER, ignore_errors=True)
    FOLDER.mkdir(parents=True)
    for i, img in enumerate(x):
        Image.fromarray(img.transpose(1, 2, 0), mode="RGB").save(FOLDER / f"{i:04d}.png")
    done.write_text(digest + "\n")
    return len(x)


# -- training under a wall-clock budget ------------------------------------------------------------------------
def prune_checkpoints(models: Path, keep: int = 2) -> None:
    ckpts = sorted(models.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    for p in ckpts[:-keep]:
        p.unlink(missing_ok=True)


def train(args: argparse.Namespace, budget: float) -> dict[str, Any]:
    shutil.rmtree(PEER_RUN, ignore_errors=True)
    PEER_RUN.mkdir(parents=True)
    log = PEER_RUN / "train.log"
    words = [rel(PEER_PY), rel(LAUNCHER), "--data", rel(FOLDER), "--image-size", str(TRAIN_SIZE), "--name", NAME,
             "--results_dir", rel(PEER_RUN / "results"), "--models_dir", rel(PEER_RUN / "models"), "--new",
             "--batch-size", str(args.batch_size), "--gradient-accumulate-every", str(args.grad_accum),
             "--fmap-max", str(args.fmap_max), "--num-train-steps", "100000000", "--save-every", str(args.save_every),
             "--aug-prob", str(args.aug_prob), "--aug-types", args.aug_types, "--num-workers", "0",
             "--seed", str(args.seed)]
    models = PEER_RUN / "models" / NAME
    stop = threading.Event()

    def janitor() -> None:
        while not stop.wait(5.0):
            prune_checkpoints(models)

    print(f"training the peer for {budget:.0f} s: {' '.join(words)}", flush=True)
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(words, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=janitor, daemon=True).start()
        try:
            rc = proc.wait(timeout=budget)
            stopped = False
        except subprocess.TimeoutExpired:
            stopped = True
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                rc = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
        finally:
            stop.set()
    wall = time.perf_counter() - t0
    prune_checkpoints(models)
    text = log.read_text(errors="replace")
    seen = [int(m) for m in re.findall(r"(\d+)/100000000", text)]
    row = {"command": " ".join(shlex.quote(w) for w in words), "log": rel(log), "wall_s": round(wall, 1),
           "stopped_by_budget": stopped, "exit_code": rc, "steps_seen_in_progress_bar": max(seen, default=0)}
    if not stopped:  # it ended by itself before the budget: an error
        row["error"] = "the peer exited before the budget: " + "\n".join(text.strip().splitlines()[-15:])
    return row


# -- sampling (runs inside the peer venv) ----------------------------------------------------------------------
def peer_generate(argv: list[str]) -> None:
    """`PEER_PY bench/peer_lwgan.py --_generate ...`: samples from the newest loadable checkpoint, as PNGs."""
    p = argparse.ArgumentParser()
    p.add_argument("--_generate", action="store_true")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--save-every", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    sys.path.insert(0, str(STUBS))
    import lwgan_cpu

    lwgan_cpu.cpu_patches()
    import torch
    from lightweight_gan import Trainer
    from PIL import Image

    trainer = Trainer(name=NAME, results_dir=rel(PEER_RUN / "results"), models_dir=rel(PEER_RUN / "models"),
                      batch_size=a.batch_size, save_every=a.save_every, use_aim=False)
    nums = trainer.get_checkpoints() or []
    skipped = []
    for num in reversed(nums):
        try:
            trainer.load(num)
            break
        except Exception as e:  # noqa: BLE001  (a checkpoint cut off by the stop)
            skipped.append(f"model_{num}.pt: {type(e).__name__}: {e}")
    else:
        raise SystemExit(f"no loadable checkpoint in {rel(PEER_RUN / 'models' / NAME)} ({skipped or 'none saved'})")
    shutil.rmtree(SAMPLES, ignore_errors=True)
    SAMPLES.mkdir(parents=True)
    G = trainer.GAN.G
    G.eval()
    gen = torch.Generator().manual_seed(a.seed)
    t0 = time.perf_counter()
    k = 0
    while k < a.n:
        b = min(64, a.n - k)
        latents = torch.randn(b, trainer.GAN.latent_dim, generator=gen)
        images = trainer.generate_(G, latents)  # the package's own: G in eval mode, clamped to [0, 1]
        arr = images.mul(255).add_(0.5).clamp_(0, 255).permute(0, 2, 3, 1).to(torch.uint8).numpy()
        for im in arr:
            Image.fromarray(im, mode="RGB").resize((EVAL_SIZE, EVAL_SIZE), Image.Resampling.LANCZOS).save(
                SAMPLES / f"{k:05d}.png")
            k += 1
    print(json.dumps({"checkpoint": f"model_{num}.pt", "steps_in_checkpoint": num * a.save_every + 1,
                      "skipped_checkpoints": skipped, "samples": k, "sample_s": round(time.perf_counter() - t0, 1)}))


# -- measuring --------------------------------------------------------------------------------------------------
def evaluate_ours(n: int) -> dict[str, Any]:
    """bench/cars.py's ganforge runs (20 CPU minutes each, the same budget), measured exactly as the peer is:
    `ganforge sample --n N` into a folder of 100x100 PNGs, then the same `ganforge evaluate --real FOLDER --fake`
    command, so that the figures compare like with like (the folder holds the 128x128 versions)."""
    rows: dict[str, Any] = {}
    for run in sorted(RUN.glob("*_recipe")):
        folder = RUN / f"{run.name}_samples"
        shutil.rmtree(folder, ignore_errors=True)
        words = ["ganforge", "sample", "--ckpt", rel(run), "--n", str(n), "--seed", "0", "--out", rel(folder) + "/"]
        res = subprocess.run([str(GANFORGE_PY), "-m", "ganforge", *words[1:]], cwd=ROOT, capture_output=True,
                             text=True)
        if res.returncode:
            rows[run.name] = {"error": f"ganforge sample exited {res.returncode}: " + res.stderr.strip()[-1000:]}
            continue
        rows[run.name] = {"sample_command": " ".join(words), **evaluate(n, folder, RUN / f"{run.name}_peer_eval.json")}
    return rows


def evaluate(n: int, samples: Path = SAMPLES, out: Path | None = None) -> dict[str, Any]:
    out = out or RUN / "lwgan_eval.json"
    out.unlink(missing_ok=True)
    words = ["ganforge", "evaluate", "--real", rel(FOLDER), "--fake", rel(samples), "--size", str(EVAL_SIZE),
             "--features", "clipart", "--metrics", "kid,swd", "--n", str(n), "--out", rel(out)]
    res = subprocess.run([str(GANFORGE_PY), "-m", "ganforge", *words[1:]], cwd=ROOT, capture_output=True, text=True)
    row: dict[str, Any] = {"command": " ".join(words)}
    if res.returncode:
        row["error"] = f"ganforge evaluate exited {res.returncode}: " + res.stderr.strip()[-2000:]
        return row
    r = json.loads(out.read_text())["results"]
    row["kid"] = r["kid"]["values"]["kid"]
    row["kid_std"] = r["kid"]["values"].get("kid_std")
    row["swd"] = r["swd"]["values"]
    row["provenance"] = {k: v for k, v in r["kid"].get("provenance", {}).items()
                         if k in ("extractor", "weights_sha256", "n_real", "n_fake", "resize", "seed", "reference",
                                  "reference_sha256", "ganforge_version")}
    return row


def save_grid(path: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from ganforge.image import save_grid as gf_save_grid

    files = sorted(SAMPLES.glob("*.png"))[:64]
    x = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])).permute(0, 3, 1, 2)
    gf_save_grid(x.float() / 127.5 - 1, path, nrow=8)


def write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {rel(path)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setup", action="store_true", help=f"only create {rel(VENV)} (idempotent) and write the folder")
    p.add_argument("--time", default="20m", help="wall-clock training budget, ganforge's syntax (default: 20m)")
    p.add_argument("--n", type=int, default=2000, help="samples to measure (default: 2000)")
    p.add_argument("--batch-size", type=int, default=8, help="the peer's --batch-size (default: 8)")
    p.add_argument("--grad-accum", type=int, default=1,
                   help="the peer's --gradient-accumulate-every (default: 1; its README's example is 16 x 4)")
    p.add_argument("--fmap-max", type=int, default=512, help="the peer's --fmap-max (default: 512, its own default)")
    p.add_argument("--save-every", type=int, default=4,
                   help="the peer's --save-every in steps (default: 4, under about a minute here at batch 8)")
    p.add_argument("--aug-prob", type=float, default=0.25, help="the peer's --aug-prob (default: 0.25, its README's)")
    p.add_argument("--aug-types", default="[translation,cutout,color]", help="the peer's --aug-types")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="smoke check (what `run_all.py --quick` passes): --time 60s --n 64, grid not in docs/")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default: {rel(RESULTS)})")
    p.add_argument("--remeasure-ours", action="store_true",
                   help="keep the peer's figures in --out; measure only bench/cars.py's current ganforge runs again "
                        "(after cars.py has rerun them, e.g. on another machine) and record when and where")
    args = p.parse_args(argv)
    if args.quick:
        args.time, args.n = "60s", 64
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = machine()
    if args.remeasure_ours:
        result = json.loads(args.out.read_text())
        make_folder()
        result["ganforge_same_measure"] = evaluate_ours(args.n)
        result["ganforge_same_measure_when"] = {"date": time.strftime("%Y-%m-%d"), "machine": started,
                                                "command": "bench/peer_lwgan.py --remeasure-ours"}
        write(args.out, result)
        return
    info = setup()
    n_images = make_folder()
    print(f"{rel(FOLDER)}: {n_images} images, {TRAIN_SIZE}x{TRAIN_SIZE}")
    if args.setup:
        return
    budget = parse_duration(args.time)
    result: dict[str, Any] = {
        "bench": "peer_lwgan", "issue": "19 item 4", "peer": f"{PEER} {info['lightweight_gan']} (lucidrains)",
        "command": " ".join(["bench/peer_lwgan.py", *(rel(w) if w.startswith("/") else w
                                                    for w in (argv if argv is not None else sys.argv[1:]))]),
        "versions": {"lightweight_gan": info["lightweight_gan"], "torch": info["torch"], "kornia": info["kornia"],
                     "einops": info["einops"], "python": info["python"]},
        "data": {"source": f"builtin:{DATA}", "split": "train", "images": n_images, "folder": rel(FOLDER),
                 "train_size": TRAIN_SIZE, "eval_size": EVAL_SIZE,
                 "note": "128x128 versions (load_builtin size=128, fitted on white) for the peer, which needs a "
                         "power-of-2 size; samples resized 128 -> 100 with PIL Lanczos for measuring"},
        "settings": {"time": args.time, "budget_s": budget, "image_size": TRAIN_SIZE, "batch_size": args.batch_size,
                     "gradient_accumulate_every": args.grad_accum, "fmap_max": args.fmap_max, "aug_prob": args.aug_prob,
                     "aug_types": args.aug_types, "save_every": args.save_every, "amp": False, "num_workers": 0,
                     "seed": args.seed, "n_samples": args.n, "generator": "G (see the bench docstring: GE is a "
                     "stale copy of G before step 20,000)", "other": "the package's CLI defaults"},
        "standin": STANDIN,
        "machine": {**started, "torch_threads": info["torch_threads"]},
    }
    try:
        result["train"] = train(args, budget)
        if "error" in result["train"]:
            raise RuntimeError(result["train"]["error"])
        gen = subprocess.run([str(PEER_PY), str(Path(__file__).resolve()), "--_generate", "--n", str(args.n),
                              "--batch-size", str(args.batch_size), "--save-every", str(args.save_every),
                              "--seed", str(args.seed)], cwd=ROOT, capture_output=True, text=True)
        if gen.returncode:
            raise RuntimeError("sampling failed: " + (gen.stderr or gen.stdout).strip()[-3000:])
        result["samples"] = {**json.loads(gen.stdout.strip().splitlines()[-1]), "folder": rel(SAMPLES)}
        result["steps_done"] = result["samples"]["steps_in_checkpoint"]
        ev = evaluate(args.n)
        result["evaluate"] = ev
        if "error" in ev:
            raise RuntimeError(ev["error"])
        result["kid"], result["swd"] = ev["kid"], ev["swd"]
        result["ganforge_same_measure"] = evaluate_ours(args.n)  # bench/cars.py's runs, measured the same way
        smoke = args.quick or args.out.resolve() != RESULTS.resolve()
        grid = args.out.with_suffix(".png") if smoke else GRID  # smoke runs leave docs/ alone
        save_grid(grid)
        result["grid"] = rel(grid)
    except Exception as e:  # noqa: BLE001  (recorded: the point of the bench is the peer's outcome)
        result["error"] = f"{type(e).__name__}: {e}"
    write(args.out, result)
    if "error" in result:
        print(result["error"], file=sys.stderr)
        raise SystemExit(1)
    print(f"peer: {result['steps_done']} steps in {result['train']['wall_s']} s; KID {result['kid']:.4f}; "
          f"SWD mean {result['swd'].get('swd_mean')}")


if __name__ == "__main__":
    if "--_generate" in sys.argv[1:]:
        peer_generate(sys.argv[1:])
    else:
        try:
            import ganforge  # noqa: F401
        except ImportError:
            if GANFORGE_PY.exists() and Path(sys.prefix).resolve() != GANFORGE_PY.parent.parent.resolve():
                os.execv(str(GANFORGE_PY), [str(GANFORGE_PY), *sys.argv])
            raise
        main()
