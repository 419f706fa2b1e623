"""Model kinds at equal CPU time on Fashion-MNIST (issue 22, acceptance item 1): dcgan, vae, aae, vaegan.

Each family trains with its recipe through the README command plus a wall-clock budget,
    ganforge train --data builtin:fashion-mnist --family F --time {minutes}m --steps 1000000 --out RUN
(--steps lifted so that the time, not the recipe's step count, ends every run), then is measured with
    ganforge evaluate --ckpt RUN --metrics fid,pr --n 10000 --out RUN/eval.json
(fashion features, 10,000 EMA samples against the test split; vae's evaluate also reports its ELBO in bits per
dimension on the test split), and a sharpness measure: the variance of the 3x3 Laplacian of each image (pixels on
the [0, 255] scale), averaged over 2,000 samples, and its ratio to the same on 2,000 real test images (blur lowers
it; < 1 means blurrier than the data).

The question (the lecture's claim): at equal budget, are the VAE's samples blurrier than the GAN's, and is its FID
worse? The JSON records what was measured, either way.

    .venv/bin/python bench/model_kinds.py                  # 6 CPU minutes per family (about 30 minutes in all)
    .venv/bin/python bench/model_kinds.py --minutes 10 --families dcgan,vae

Results: bench/results/model_kinds.json (no absolute paths); runs in bench/results/runs/model_kinds/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FAMILIES = ("dcgan", "vae", "aae", "vaegan")
LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def laplacian_variance(x) -> float:
    """Mean over images of the variance of the 3x3 Laplacian of the image, on the [0, 255] scale."""
    import torch
    import torch.nn.functional as F

    k = torch.tensor(LAPLACIAN).view(1, 1, 3, 3)
    g = (x.float().mean(1, keepdim=True) + 1) * 127.5
    return float(F.conv2d(g, k).flatten(1).var(1).mean())


def sharpness(run: Path, n: int = 2000) -> dict[str, float]:
    import torch

    from ganforge.artifacts import Sampler
    from ganforge.data import load_builtin

    torch.set_num_threads(2)
    s = Sampler.from_checkpoint(run)
    fake = laplacian_variance(s.generate(n, seed=7))
    test = load_builtin("fashion-mnist", split="test")
    real = laplacian_variance(test.to_float(test.x[:n]))
    return {"laplacian_var_samples": round(fake, 2), "laplacian_var_real": round(real, 2),
            "ratio_to_real": round(fake / real, 4)}


def run_family(family: str, minutes: float, runs: Path) -> dict[str, Any]:
    run = runs / family
    if run.exists():
        import shutil

        shutil.rmtree(run)
    train = ["ganforge", "train", "--data", "builtin:fashion-mnist", "--family", family, "--time", f"{minutes:g}m",
             "--steps", "1000000", "--out", "RUN"]
    t0 = time.time()
    log = runs / f"{family}.log"
    with open(log, "w") as fh:
        rc = subprocess.run([sys.executable, "-m", "ganforge", *train[1:-1], str(run.relative_to(ROOT))], cwd=ROOT,
                            stdout=fh, stderr=subprocess.STDOUT).returncode
    wall = time.time() - t0
    if rc:
        return {"family": family, "train_command": " ".join(train), "exit": rc, "error": log.read_text()[-2000:]}
    evaluate = ["ganforge", "evaluate", "--ckpt", "RUN", "--metrics", "fid,pr", "--n", "10000", "--out", "RUN/eval.json"]
    rc = subprocess.run([sys.executable, "-m", "ganforge", "evaluate", "--ckpt", str(run.relative_to(ROOT)), *evaluate[4:-1],
                         str((run / "eval.json").relative_to(ROOT))], cwd=ROOT, capture_output=True, text=True).returncode
    ev = json.loads((run / "eval.json").read_text()) if rc == 0 else {}
    state = json.loads(max((run / "checkpoints").iterdir()).joinpath("state.json").read_text())
    config = json.loads((run / "config.json").read_text())
    row: dict[str, Any] = {"family": family, "recipe": config.get("recipe"), "train_command": " ".join(train),
                           "evaluate_command": " ".join(evaluate), "train_wall_s": round(wall, 1),
                           "steps": int(state["step"]), "exit": rc}
    res = ev.get("results", {})
    if "fid" in res:
        row["fid"] = round(res["fid"]["values"]["fid"], 3)
    if "pr" in res:
        row["precision"] = round(res["pr"]["values"]["precision"], 4)
        row["recall"] = round(res["pr"]["values"]["recall"], 4)
    if "likelihood" in ev:
        row["elbo_test"] = ev["likelihood"]
    if "samples" in ev:
        row["samples"] = ev["samples"]
    row["sharpness"] = sharpness(run)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=6.0, help="CPU minutes of training per family (default 6)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--out", default=str(BENCH / "results" / "model_kinds.json"))
    args = ap.parse_args()
    sys.path.insert(0, str(BENCH))
    from text2image import machine

    runs = BENCH / "results" / "runs" / "model_kinds"
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for fam in args.families.split(","):
        print(f"== {fam}: {args.minutes:g} minutes", flush=True)
        rows.append(run_family(fam, args.minutes, runs))
        print(json.dumps(rows[-1]), flush=True)
    by = {r["family"]: r for r in rows}
    answer: dict[str, Any] = {}
    if "dcgan" in by and "vae" in by and "fid" in by["dcgan"] and "fid" in by["vae"]:
        answer = {"vae_blurrier_than_dcgan": by["vae"]["sharpness"]["ratio_to_real"]
                  < by["dcgan"]["sharpness"]["ratio_to_real"],
                  "vae_fid_worse_than_dcgan": by["vae"]["fid"] > by["dcgan"]["fid"]}
    result = {"bench": "bench/model_kinds.py", "date": time.strftime("%Y-%m-%d"), "data": "builtin:fashion-mnist",
              "minutes_per_family": args.minutes, "features": "fashion", "rows": rows, "claim": answer,
              "machine": machine()}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for r in rows:
        print(f"{r['family']:7s} steps {r.get('steps', '?'):>6}  FID {r.get('fid', float('nan')):8.2f}  precision "
              f"{r.get('precision', float('nan')):.3f}  recall {r.get('recall', float('nan')):.3f}  sharpness "
              f"{r['sharpness']['ratio_to_real'] if 'sharpness' in r else float('nan'):.3f} of real")
    print(f"claim: {answer}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
