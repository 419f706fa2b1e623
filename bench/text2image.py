"""Text to image (issue 21, acceptance item 1): gan-int-cls on builtin:fashion-captions, judged on captions whose
phrasing it never saw.

Train: the README's command, `ganforge train --data builtin:fashion-captions --family gan-int-cls --out RUN` (its
recipe sets the budget), unless --ckpt names a finished run.

Measure, with the shipped `fashion` classifier (ganforge.metrics.features.fashion) and fixed seeds:
- class agreement on held-out phrasings: builtin:fashion-captions' test split captions its images with
  HELDOUT_TEMPLATES only (phrasings absent from training). For N test images, one of each image's captions is
  drawn (its first) and one image generated from it; agreement = share of generated images the classifier puts in
  the class the caption names (the test image's class), overall and per class. The same with the training
  phrasings (train split captions) is reported beside it.
- FID (fashion features) of those text-conditioned samples against the test split's images (10,000 a side).
- attribute control: for each class noun (its plain name), held-out template and latent, the pair of captions
  "<template> dark <noun>" / "<template> bright <noun>" with the same z; a pair counts when the "bright" image's
  measured brightness (data.captions.measure_attributes: mean grey of the item's pixels) is above the "dark"
  one's. The same for width (narrow / wide) and texture (plain / patterned), reported beside brightness, which
  carries the bar.

Bars (issue 21): agreement on held-out phrasings >= 80%; brightness control in the asked direction >= 90% of pairs.

    .venv/bin/python bench/text2image.py                  # train (the recipe's budget), then measure
    .venv/bin/python bench/text2image.py --ckpt RUN       # measure a finished run

Results: bench/results/text2image.json (no absolute paths).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
COMMAND = ["ganforge", "train", "--data", "builtin:fashion-captions", "--family", "{family}"]


def machine() -> dict[str, Any]:
    import os

    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count()}


def agreement(sampler, extractor, data, n: int, seed: int) -> tuple[dict[str, Any], Any]:
    """Class agreement of images generated from the first caption of data's first n images; also the images."""
    import torch

    ids = data.captions.ids[:n, 0]
    emb = data.captions.embeddings[ids]
    y = data.y[:n]
    z = sampler.latents(n, seed)
    x = sampler.generate(n, z=z, text=emb)
    pred = torch.cat([extractor.logits(x[i:i + 500]).argmax(1) for i in range(0, n, 500)])
    per_class = [round(float((pred[y == k] == k).float().mean()), 4) for k in range(10)]
    return {"n": n, "agreement": round(float((pred == y).float().mean()), 4), "per_class": per_class,
            "min_class": min(per_class), "example_captions": [data.captions.texts[i] for i in ids[:5].tolist()]}, x


def control(sampler, n_latents: int, seed: int) -> dict[str, Any]:
    """Attribute control: paired captions differing in one attribute word, the same z."""
    from ganforge.data.builtin import FASHION_CLASSES
    from ganforge.data.captions import HELDOUT_TEMPLATES, ITEM_NOUNS, compose, measure_attributes
    from ganforge.image import to_uint8

    out: dict[str, Any] = {}
    for a, (attr, low, high) in enumerate((("brightness", "dark", "bright"), ("width", "narrow", "wide"),
                                          ("texture", "plain", "patterned"))):
        lows, highs = [], []
        for cls in FASHION_CLASSES:
            for template in HELDOUT_TEMPLATES:
                lows.append(compose(template, ITEM_NOUNS[cls][0], [low]))
                highs.append(compose(template, ITEM_NOUNS[cls][0], [high]))
        z = sampler.latents(n_latents, seed).repeat(len(lows), 1)
        prompts_low = [p for p in lows for _ in range(n_latents)]
        prompts_high = [p for p in highs for _ in range(n_latents)]
        v_low = measure_attributes(to_uint8(sampler.generate(len(z), z=z, text=prompts_low)))[:, a]
        v_high = measure_attributes(to_uint8(sampler.generate(len(z), z=z, text=prompts_high)))[:, a]
        out[attr] = {"pairs": len(z), "words": [low, high], "in_asked_direction": round(float((v_high > v_low).float().mean()), 4),
                     "mean_low": round(float(v_low.mean()), 4), "mean_high": round(float(v_high.mean()), 4),
                     "example": [prompts_low[0], prompts_high[0]]}
    return out


def measure(run: Path, n: int, seed: int) -> dict[str, Any]:
    import torch

    from ganforge.artifacts import Sampler
    from ganforge.data import load_builtin
    from ganforge.metrics.base import Provenance
    from ganforge.metrics.evaluate import compute, fake_set, real_set
    from ganforge.metrics.features import load as load_extractor

    torch.set_num_threads(2)
    sampler = Sampler.from_checkpoint(run)
    extractor = load_extractor("fashion")
    test = load_builtin("fashion-captions", split="test")
    train = load_builtin("fashion-captions", split="train")
    held, x = agreement(sampler, extractor, test, n, seed)
    seen, _ = agreement(sampler, extractor, train, n, seed)
    real = real_set(load_builtin("fashion-mnist", split="test"), extractor, 10000, seed=0)
    fake = fake_set(lambda a, b: x[a:b], len(x), extractor)
    prov = Provenance(**extractor.provenance(), seed=0, reference="builtin:fashion-mnist test split",
                      reference_sha256=real.sha256)
    fid = compute(["fid"], real, fake, prov, seed=0)["fid"].values["fid"]
    ctrl = control(sampler, 25, seed)
    stages = None
    if sampler.family.name == "stackgan":  # acceptance item 3: Stage-II vs Stage-I upsampled, same z and captions
        ids = test.captions.ids[:n, 0]
        z, emb = sampler.latents(n, seed), test.captions.embeddings[ids]
        with torch.no_grad():
            up = torch.cat([sampler.family.stage_outputs(z[i:i + 500], emb[i:i + 500])[0] for i in range(0, n, 500)])
        fid_up = compute(["fid"], real, fake_set(lambda a, b: up[a:b], n, extractor), prov, seed=0)["fid"].values["fid"]
        swd = {}
        for name, imgs in (("stage1_upsampled", up), ("stage2", x)):
            swd[name] = compute(["swd"], real_set(load_builtin("fashion-mnist", split="test"), extractor, n, seed=0,
                                                  keep_images=True),
                                fake_set(lambda a, b, imgs=imgs: imgs[a:b], n, extractor, keep_images=True), prov,
                                seed=0)["swd"].values
        stages = {"fid_stage1_upsampled": round(fid_up, 3), "fid_stage2": round(fid, 3), "swd": swd,
                  "stage2_better_fid": fid < fid_up}
    return {"step": sampler.step, "heldout_phrasings": held, "training_phrasings": seen, "fid_fashion": round(fid, 3),
            "control": ctrl, **({"stages": stages} if stages else {}),
            "bars": {"heldout_agreement_ge_0.80": held["agreement"] >= 0.80,
                     "brightness_control_ge_0.90": ctrl["brightness"]["in_asked_direction"] >= 0.90}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="gan-int-cls", choices=("gan-int-cls", "stackgan"),
                    help="the family the README command trains (default gan-int-cls)")
    ap.add_argument("--ckpt", help="a finished run to measure (default: train one with the README command)")
    ap.add_argument("--n", type=int, default=10000, help="captions for agreement and FID (default 10,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="results JSON (default: bench/results/text2image.json, or text2image_stackgan.json)")
    args = ap.parse_args()
    args.out = args.out or str(BENCH / "results" / ("text2image.json" if args.family == "gan-int-cls"
                                                   else f"text2image_{args.family}.json"))
    command = [w.format(family=args.family) for w in COMMAND]
    train_info: dict[str, Any] = {}
    if args.ckpt:
        run = Path(args.ckpt)
    else:
        run = BENCH / "results" / "runs" / "text2image" / args.family
        if run.exists():
            import shutil

            shutil.rmtree(run)
        cmd = command + ["--out", str(run)]
        t0 = time.time()
        rc = subprocess.run([sys.executable, "-m", "ganforge", *cmd[1:]], cwd=ROOT).returncode
        train_info = {"command": " ".join(command + ["--out", "RUN"]), "exit": rc, "wall_s": round(time.time() - t0, 1)}
        if rc:
            raise SystemExit(f"training failed ({rc})")
    t0 = time.time()
    result = {"bench": "bench/text2image.py", "date": time.strftime("%Y-%m-%d"), "family": args.family,
              "data": "builtin:fashion-captions", "train": train_info, **measure(run, args.n, args.seed),
              "measure_wall_s": None, "machine": machine()}
    result["measure_wall_s"] = round(time.time() - t0, 1)
    config = json.loads((run / "config.json").read_text())
    result["recipe"] = config.get("recipe")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("step", "fid_fashion", "bars")}, indent=1))
    print(f"heldout agreement {result['heldout_phrasings']['agreement']}, training phrasings "
          f"{result['training_phrasings']['agreement']}; brightness control "
          f"{result['control']['brightness']['in_asked_direction']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
