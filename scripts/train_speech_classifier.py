"""Train the spoken-digit classifier behind the `speech` feature extractor (seeded).

    .venv/bin/python scripts/train_speech_classifier.py            # the shipped weights

Writes src/ganforge/metrics/weights/speech.safetensors and speech.json beside it (accuracy on the held-out voices,
per digit, recipe, command, SHA-256 of the weights, parameter count, training time).

Data: builtin:spoken-digits (synthesised with espeak-ng; data/spoken_digits.py): its train split (100 voices,
3,000 clips) for training, its test split (20 other voices, 600 clips) only measured. Nothing is selected on the
test split: the model after the last epoch is the one written.

Recipe: AdamW (lr 3e-3, weight decay 1e-4) with a one-cycle schedule, batch 64, cross-entropy with label smoothing
0; augmentation per clip: a circular time shift of up to +-3,000 samples (the word moves within the clip, as a
generator may place it), a gain of 0.5-1.2, and white noise at 25-50 dB SNR of the clip's RMS.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganforge.cache import sha256_file
from ganforge.data.spoken_digits import DIGITS, espeak_version, load_spoken_digits
from ganforge.nn.speech_net import SpeechNet, count_parameters

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "ganforge" / "metrics" / "weights" / "speech.safetensors"
JUDGES = "which of the ten English digit words (zero..nine) a 16 kHz clip says, for espeak-ng's synthetic voices"
CANNOT_JUDGE = ("human speech, other words, music or sound quality beyond what changes its features; its FIDs are "
                "comparable only with other 'speech' numbers (same weights hash)")


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n, _, length = x.shape
    shifts = torch.randint(-3000, 3001, (n,), generator=gen)
    idx = (torch.arange(length)[None, :] - shifts[:, None]) % length
    x = x.gather(2, idx[:, None, :])
    gain = 0.5 + 0.7 * torch.rand(n, 1, 1, generator=gen)
    rms = x.pow(2).mean(2, keepdim=True).sqrt().clamp(min=1e-4)
    snr = 25 + 25 * torch.rand(n, 1, 1, generator=gen)
    noise = torch.randn(x.shape, generator=gen) * rms * 10 ** (-snr / 20)
    return ((x + noise) * gain).clamp(-1, 1)


@torch.no_grad()
def evaluate(net: SpeechNet, x: torch.Tensor, y: torch.Tensor) -> tuple[float, list[float]]:
    net.eval()
    pred = torch.cat([net(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    per = [float((pred[y == k] == k).float().mean()) for k in range(len(DIGITS))]
    return float((pred == y).float().mean()), per


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train, test = load_spoken_digits(split="train"), load_spoken_digits(split="test")
    xtr, ytr = train.to_float(train.x), train.y
    xte, yte = test.to_float(test.x), test.y
    net = SpeechNet(len(DIGITS), width=args.width)
    batch, steps_per_epoch = 64, len(xtr) // 64
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.epochs * steps_per_epoch)
    t0 = time.time()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(xtr), generator=gen)
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            loss = F.cross_entropy(net(augment(xtr[idx], gen)), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc, _ = evaluate(net, xte, yte)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.3f}, held-out voices {acc:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    acc, per = evaluate(net, xte, yte)
    train_acc, _ = evaluate(net, xtr, ytr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cfg = {**net.config(), "classes": list(DIGITS)}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(args.out),
              metadata={"config": json.dumps(cfg)})
    info = {"name": "speech", "arch": "ganforge.nn.speech_net.SpeechNet", **cfg,
            "input": "mono clips of 16,384 samples at 16 kHz in [-1, 1]", "judges": JUDGES,
            "cannot_judge": CANNOT_JUDGE, "test_accuracy": round(acc, 4),
            "per_class_test_accuracy": {d: round(a, 4) for d, a in zip(DIGITS, per)},
            "train_accuracy": round(train_acc, 4), "test_split": "builtin:spoken-digits test (20 held-out voices)",
            "espeak": espeak_version(), "epochs": args.epochs, "seed": args.seed,
            "recipe": "AdamW 3e-3 one-cycle, wd 1e-4, batch 64; shift +-3000, gain 0.5-1.2, noise 25-50 dB SNR",
            "command": " ".join(shlex.quote(a) for a in ["python", "scripts/train_speech_classifier.py", *sys.argv[1:]]),
            "parameters": count_parameters(net), "train_seconds": round(time.time() - t0, 1),
            "torch": torch.__version__, "machine": platform.machine(), "sha256": sha256_file(args.out)}
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"held-out voices: {acc:.4f}; wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
