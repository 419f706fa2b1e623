"""Text to image on the captioned colour emoji (issue 21, acceptance item 2): R-precision and the 16-prompt grid.

Train: the README's command, `ganforge train --data builtin:emoji-captions --family gan-int-cls --out RUN` (its
recipe, emoji-captions-gan-int-cls, sets the budget), unless --ckpt names a finished run.

Measure R-precision (Xu et al. 2018; ganforge.metrics.rprecision): each generated image ranks its caption among 100
(its own and 99 captions of other glyphs, 10 draws averaged) by cosine similarity in a joint image-text space fitted
here on the REAL training glyphs and their training captions only (fit_retrieval: a small CNN for images, the frozen
all-MiniLM-L6-v2 sentence embedding through a linear layer for captions, CLIP's contrastive loss, 1,500 steps,
seed 0). Three caption sets, one image generated per caption with the seed's latents:
- seen_glyphs_new_phrasing: every training glyph's name in the held-out phrasing "a picture of a NAME" (never a
  training caption);
- unseen_glyphs: the test split (every 10th glyph, names the generator never saw), its first held-out caption;
- for each, `real`: the real glyphs in place of generated ones (the space's ceiling on those captions), and
  `shuffled`: the generated images scored against a permuted caption list (each image's "own" caption belongs to
  another glyph): the measured chance level, which should sit near 1/100.
The 16-prompt grid: `ganforge sample --ckpt RUN --text-file docs/text2image-emoji-prompts.txt --n 8 --labels
--out docs/text2image-emoji.png` (the README shows it).

    .venv/bin/python bench/text2image_emoji.py               # train (the recipe's budget), then measure
    .venv/bin/python bench/text2image_emoji.py --ckpt RUN    # measure a finished run

Results: bench/results/text2image_emoji.json (no absolute paths).
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
COMMAND = ["ganforge", "train", "--data", "builtin:emoji-captions", "--family", "gan-int-cls"]
PROMPTS = "docs/text2image-emoji-prompts.txt"
GRID = "docs/text2image-emoji.png"
FIT_STEPS = 1500


def derangement(n: int, seed: int):
    """A permutation with no fixed point (shuffled captions: no image keeps its own)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    while True:
        p = torch.randperm(n, generator=g)
        if not bool((p == torch.arange(n)).any()):
            return p


def score(model, sampler, real, prompts: list[str], seed: int) -> dict[str, Any]:
    import torch

    from ganforge.metrics.rprecision import r_precision

    emb = sampler.text_embeddings(len(prompts), prompts)
    z = sampler.latents(len(prompts), seed)
    fake = torch.cat([sampler.generate(len(z[i:i + 256]), z=z[i:i + 256], text=emb[i:i + 256])
                      for i in range(0, len(z), 256)])
    with torch.no_grad():
        t = model.text(emb)
        f, r = model.image(fake), model.image(real.float() / 127.5 - 1)
    perm = derangement(len(prompts), seed)
    return {"n": len(prompts), "example": prompts[:3],
            "generated": r_precision(f, t, seed=seed), "real": r_precision(r, t, seed=seed),
            "shuffled": r_precision(f, t[perm], seed=seed)}


def measure(run: Path, seed: int) -> dict[str, Any]:
    import torch

    from ganforge.artifacts import Sampler
    from ganforge.data import load_builtin
    from ganforge.data.captions import a_or_an
    from ganforge.data.emoji_captions import EMOJI_HELDOUT_TEMPLATES
    from ganforge.metrics.rprecision import fit_retrieval

    torch.set_num_threads(2)
    sampler = Sampler.from_checkpoint(run)
    side = tuple(sampler.spec.shape[1:])
    train = load_builtin("emoji-captions", split="train", size=side)
    test = load_builtin("emoji-captions", split="test", size=side)
    model, fit = fit_retrieval(train.x, train.captions.embeddings, train.captions.ids, steps=FIT_STEPS, seed=0)
    names = [train.captions.texts[int(i)] for i in train.captions.ids[:, 0]]  # template 0 is the bare name
    seen = [EMOJI_HELDOUT_TEMPLATES[0].format(name=n, a=a_or_an(n)) for n in names]
    unseen = [test.captions.texts[int(i)] for i in test.captions.ids[:, 0]]
    return {"step": sampler.step, "retrieval_fit": {"steps": fit.steps, "final_loss": fit.final_loss,
                                                    "seconds": fit.seconds},
            "seen_glyphs_new_phrasing": score(model, sampler, train.x, seen, seed),
            "unseen_glyphs": score(model, sampler, test.x, unseen, seed)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", help="a finished run to measure (default: train one with the README command)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-grid", action="store_true", help="do not rewrite docs/text2image-emoji.png")
    ap.add_argument("--out", default=str(BENCH / "results" / "text2image_emoji.json"))
    args = ap.parse_args()
    train_info: dict[str, Any] = {}
    if args.ckpt:
        run = Path(args.ckpt)
    else:
        run = BENCH / "results" / "runs" / "text2image" / "emoji"
        if run.exists():
            import shutil

            shutil.rmtree(run)
        t0 = time.time()
        rc = subprocess.run([sys.executable, "-m", "ganforge", *COMMAND[1:], "--out", str(run)], cwd=ROOT).returncode
        train_info = {"command": " ".join(COMMAND + ["--out", "RUN"]), "exit": rc, "wall_s": round(time.time() - t0, 1)}
        if rc:
            raise SystemExit(f"training failed ({rc})")
    sys.path.insert(0, str(BENCH))
    from text2image import machine

    t0 = time.time()
    result = {"bench": "bench/text2image_emoji.py", "date": time.strftime("%Y-%m-%d"), "family": "gan-int-cls",
              "data": "builtin:emoji-captions", "train": train_info, **measure(run, args.seed)}
    result["measure_wall_s"] = round(time.time() - t0, 1)
    if not args.no_grid:
        grid = ["ganforge", "sample", "--ckpt", "RUN", "--text-file", PROMPTS, "--n", "8", "--labels", "--out", GRID]
        rc = subprocess.run([sys.executable, "-m", "ganforge", *grid[1:3], str(run.resolve()), *grid[4:]],
                            cwd=ROOT).returncode
        result["grid"] = {"command": " ".join(grid), "exit": rc}
    result["recipe"] = json.loads((run / "config.json").read_text()).get("recipe")
    result["machine"] = machine()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for k in ("seen_glyphs_new_phrasing", "unseen_glyphs"):
        r = result[k]
        print(f"{k}: R-precision generated {r['generated']['r_precision']:.3f} (real {r['real']['r_precision']:.3f}, "
              f"shuffled {r['shuffled']['r_precision']:.3f}, chance {r['generated']['chance']:.2f}; n {r['n']})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
