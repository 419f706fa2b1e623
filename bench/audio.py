"""Audio (issue 23, acceptance item 1): wavegan, specgan and cwavegan on builtin:spoken-digits after 10 and 20 CPU
minutes.

Each family trains with the README's command, first stopped at 10 minutes and then resumed to 20:
    ganforge train --data builtin:spoken-digits --family F --time 10m --out RUN
    ganforge train --data builtin:spoken-digits --family F --time 20m --resume --out RUN
(the recipe spoken-digits-F sets the rest; `--time` counts training time over resumed sessions). After each,
    ganforge evaluate --ckpt RUN --n 600 --metrics fid,kid,is,classes
measures 600 samples against the 600 clips of the test split (20 voices never heard in training) with the `speech`
features (nn/speech_net.py): FID and KID on its 128-d features, its classifier score (exp E KL(p(y|x) || p(y)),
the Inception score's analogue; 10 is the most for 10 digits) and the class-histogram KL. The floor: the same
metrics for the 3,000 training clips (other voices) against the test clips. cwavegan also reports class agreement:
100 clips per digit drawn with `--class k`, the share the classifier puts in k (bar: >= 70% at 20 minutes).

    .venv/bin/python bench/audio.py [--families wavegan,specgan,cwavegan] [--minutes 10,20]
Results: bench/results/audio.json (no absolute paths); runs under bench/results/runs/audio/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RUNS = BENCH / "results" / "runs" / "audio"
N_EVAL = 600


def cli(words: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("a") as f:
        f.write("$ ganforge " + " ".join(words) + "\n")
        f.flush()
        rc = subprocess.run([sys.executable, "-m", "ganforge", *words], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc:
        raise SystemExit(f"ganforge {' '.join(words)} failed ({rc}); see {log}")
    return time.perf_counter() - t0


def rel(p: Path) -> str:
    return str(p.resolve().relative_to(ROOT))


def evaluate(run: Path, log: Path) -> dict[str, Any]:
    out = run / f"eval_{int(time.time())}.json"
    cli(["evaluate", "--ckpt", rel(run), "--n", str(N_EVAL), "--metrics", "fid,kid,is,classes", "--out", rel(out)], log)
    report = json.loads(out.read_text())
    values = {k: v for r in report["results"].values() for k, v in r["values"].items()}
    return {"values": {k: round(float(v), 4) for k, v in values.items() if not k.startswith("fake_fraction_")},
            "what": report["what"].replace(str(ROOT) + "/", "")}


def floor() -> dict[str, Any]:
    """The metrics of real training clips (other voices) against the test clips."""
    import torch

    from ganforge.data.spoken_digits import load_spoken_digits
    from ganforge.metrics.evaluate import compute, fake_set, real_set
    from ganforge.metrics.base import Provenance
    from ganforge.metrics.features import load

    ext = load("speech")
    test, train = load_spoken_digits(split="test"), load_spoken_digits(split="train")
    real = real_set(test, ext, N_EVAL, seed=0)
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:N_EVAL]
    fake = fake_set(lambda a, b: train.to_float(train.x[idx[a:b]]), N_EVAL, ext)
    prov = Provenance(**ext.provenance(), seed=0, reference="test split", reference_sha256=real.sha256)
    res = compute(["fid", "kid", "is", "classes"], real, fake, prov, seed=0, n_classes=10)
    return {k: round(float(v), 4) for r in res.values() for k, v in r.values.items() if not k.startswith("fake_fraction_")}


def agreement(run: Path) -> dict[str, Any]:
    """cwavegan: 100 clips per digit (seed 0), the share the speech classifier puts in the digit asked for."""
    import torch

    from ganforge.artifacts import Sampler
    from ganforge.metrics.features import load

    s, ext = Sampler.from_checkpoint(run), load("speech")
    per = []
    for k in range(10):
        x = s.generate(100, 0, y=k)
        per.append(float((ext.logits(x).argmax(1) == k).float().mean()))
    return {"class_agreement": round(sum(per) / 10, 4), "per_class": [round(p, 3) for p in per]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="wavegan,specgan,cwavegan")
    ap.add_argument("--minutes", default="10,20", help="the evaluation points, in training minutes (default 10,20)")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "audio.json")
    args = ap.parse_args()
    sys.path.insert(0, str(BENCH))
    from text2image import machine

    points = [int(m) for m in args.minutes.split(",")]
    result: dict[str, Any] = {"bench": "bench/audio.py", "date": time.strftime("%Y-%m-%d"), "data": "builtin:spoken-digits",
                              "n_eval": N_EVAL, "floor_train_vs_test": floor(), "families": {}, "machine": machine()}
    print("floor", result["floor_train_vs_test"], flush=True)
    RUNS.mkdir(parents=True, exist_ok=True)
    for fam in args.families.split(","):
        run, log = RUNS / fam, RUNS / f"{fam}.log"
        shutil.rmtree(run, ignore_errors=True)
        log.unlink(missing_ok=True)
        rows = []
        for i, minutes in enumerate(points):
            words = ["train", "--data", "builtin:spoken-digits", "--family", fam, "--time", f"{minutes}m",
                     *(["--resume"] if i else []), "--out", rel(run)]
            wall = cli(words, log)
            row = {"minutes": minutes, "command": "ganforge " + " ".join(words).replace(rel(run), "RUN"),
                   "wall_s": round(wall, 1), **evaluate(run, log)}
            ckpts = sorted((run / "checkpoints").glob("step_*"))
            row["step"] = int(ckpts[-1].name.split("_")[1]) if ckpts else None
            if fam == "cwavegan":
                row.update(agreement(run))
            rows.append(row)
            print(fam, minutes, row["step"], row["values"], row.get("class_agreement", ""), flush=True)
        result["families"][fam] = rows
        args.out.write_text(json.dumps(result, indent=1) + "\n")  # after each family: a partial result survives
    cw = result["families"].get("cwavegan")
    if cw:
        result["bar_class_agreement_ge_0.70_at_20m"] = cw[-1].get("class_agreement", 0) >= 0.70
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
