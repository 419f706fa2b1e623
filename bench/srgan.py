"""Super-resolution on builtin:fmnist-lowres (7x7 -> 28x28, x4): bicubic vs SRResNet-MSE vs SRGAN.

The three arms of Ledig et al. (2017, table 2) on the 10,000 Fashion-MNIST test pairs:
- bicubic: torch's bicubic upsampling (align_corners=False), clamped to [-1, 1];
- SRResNet-MSE: the srgan family with content="mse" and adv_weight=0 (G alone, pixel MSE);
- SRGAN: the same G architecture, initialised from the trained SRResNet-MSE (as in the paper), then
  trained with content="features" + adv_weight * -log D(G(x)) against a fresh D.

Content network: no VGG can be downloaded here, so the feature maps come from the shipped Fashion-MNIST
classifier (metrics/fashion_net.py). --layer picks the map: "deep" = after the 3rd conv + BN + ReLU,
before the last max-pool ((N, 128, 7, 7); the analogue of the paper's VGG54, "the 4th convolution after
activation before the 5th max-pooling"), "mid" = after the 2nd conv, before the 2nd pool ((N, 64, 14, 14);
the analogue of VGG22). The paper rescales VGG maps by 1/12.75 "to obtain VGG losses of a scale comparable
to the MSE loss"; we do the same by measurement: feature_scale = sqrt(pixel MSE / feature MSE) of the
bicubic upsamplings of 2,048 training pairs. (FID uses the same classifier's 128-d hidden layer, which
SRGAN never sees directly; the deep content map feeds it, so FID here is not independent of the content
loss, as VGG features are not of Inception's in the paper's MOS study.)

Reported per arm on the test split: PSNR and SSIM (on [0, 1] images, as SR papers report them) and FID /
KID of the 10,000 upscaled images against the 10,000 real 28x28 test images (fashion features), via
ganforge.metrics.translation. Bar: SRGAN has the lowest FID of the three. Training uses one thread,
bf16 autocast + channels_last, batch 16 (the paper's); evaluation runs in float32. The defaults (1,500
SRResNet-MSE steps, then 1,500 SRGAN steps) take ~9 CPU minutes (wall ~9 minutes on an idle machine).

    .venv/bin/python bench/srgan.py                    # -> bench/results/srgan.json, srgan_lowres.png
    .venv/bin/python bench/srgan.py --mse-steps 200 --gan-steps 200 --n-test 1000 --tag smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.config import from_dict
from ganforge.data import load_builtin
from ganforge.image import save_grid
from ganforge.metrics import features
from ganforge.metrics.translation import psnr, ssim, translation_fid
from ganforge.nn.fashion_net import FASHION_CONTENT_LAYERS, fashion_content_net
from ganforge.train import build_run

HERE = Path(__file__).parent


def bicubic(lr: Tensor, scale: int) -> Tensor:
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


@torch.no_grad()
def calibrate(net: nn.Module, data, n: int = 2048) -> dict:
    """feature_scale that makes the feature MSE of bicubic upsamplings equal their pixel MSE (the paper's
    1/12.75 for VGG, measured instead of taken)."""
    lr, hr = data.to_float(data.x[:n]), data.to_float(data.x_b[:n])
    up = bicubic(lr, hr.shape[-1] // lr.shape[-1])
    pixel, feat = float(F.mse_loss(up, hr)), float(F.mse_loss(net(up), net(hr)))
    return {"pixel_mse": pixel, "feature_mse": feat, "feature_scale": (pixel / feat) ** 0.5}


@torch.no_grad()
def upscale(G: nn.Module, lr: Tensor, batch: int = 500) -> Tensor:
    G = G.eval().float().to(memory_format=torch.contiguous_format)
    return torch.cat([G(chunk).float() for chunk in lr.split(batch)])


def train(name: str, model: dict, steps: int, lr: float, args, data, init: nn.Module | None = None,
          net: nn.Module | None = None) -> tuple[nn.Module, dict]:
    spec = {"family": "srgan", "model": model, "data": {"source": "builtin:fmnist-lowres"},
            "train": {"steps": steps, "batch_size": args.batch, "lr_g": lr, "lr_d": lr, "beta1": 0.9,
                      "precision": "bf16", "channels_last": True, "seed": args.seed},
            "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 50, "progress": False, "tensorboard": False}}
    out = HERE / "results" / "runs" / f"srgan_{name}{args.tag}"
    shutil.rmtree(out, ignore_errors=True)
    trainer = build_run(from_dict(spec), out, data=data)
    if net is not None:
        trainer.family.set_feature_net(net)
    if init is not None:  # SRGAN starts from the trained SRResNet-MSE, both its raw and its EMA weights
        state = init.state_dict()
        trainer.family.G.load_state_dict(state)
        trainer.ema.module.load_state_dict(state)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    logs = {k: round(v, 5) for k, v in trainer.last_logs.items()}
    print(f"{name}: {steps} steps in {wall:.0f} s ({cpu:.0f} CPU s); last logs {logs}", flush=True)
    return trainer.generator, {"settings": spec, "steps": steps, "train_seconds": round(wall, 1),
                               "train_cpu_seconds": round(cpu, 1), "last_logs": logs}


def evaluate(name: str, sr: Tensor, hr: Tensor, extractor, seed: int) -> dict:
    t = translation_fid(sr, hr, extractor, seed=seed)
    res = {"psnr": psnr(sr, hr), "ssim": ssim(sr, hr), "fid": t["fid"], "kid": t["kid"], "kid_std": t["kid_std"]}
    print(f"{name:>13s}: PSNR {res['psnr']:.2f} dB  SSIM {res['ssim']:.4f}  FID {res['fid']:.2f}  "
          f"KID {res['kid']:.4f}", flush=True)
    return res


def figure(lr: Tensor, rows: list[Tensor], y: Tensor, path: Path) -> None:
    """Rows: the 7x7 input (nearest), bicubic, SRResNet-MSE, SRGAN, real; one column per class."""
    cols = torch.tensor([int((y == c).nonzero()[k]) for k in range(2) for c in range(10)])
    nearest = F.interpolate(lr[cols], scale_factor=4, mode="nearest")
    save_grid(torch.cat([nearest] + [r[cols] for r in rows]), path, nrow=len(cols), min_cell=56)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mse-steps", type=int, default=1500)
    p.add_argument("--gan-steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4, help="SRGAN's Adam rate of G and D (the paper's 1e-4, beta1 0.9)")
    p.add_argument("--lr-mse", type=float, default=5e-4, help="SRResNet-MSE's Adam rate (higher than the paper's "
                   "1e-4 to make up for 1,500 steps instead of 10^6)")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--content", default="features", choices=["features", "mse"], help="SRGAN's content loss")
    p.add_argument("--layer", default="deep", choices=list(FASHION_CONTENT_LAYERS))
    p.add_argument("--adv-weight", type=float, default=1e-3)
    p.add_argument("--d-width", type=int, default=32)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="", help="suffix of the result files (default: srgan.json, srgan_lowres.png)")
    args = p.parse_args()
    torch.set_num_threads(1)
    t_start, c_start = time.perf_counter(), time.process_time()

    data = load_builtin("fmnist-lowres")
    test = load_builtin("fmnist-lowres", split="test")
    lr, hr, y = test.to_float(test.x[: args.n_test]), test.to_float(test.x_b[: args.n_test]), test.y[: args.n_test]
    scale = hr.shape[-1] // lr.shape[-1]
    extractor = features.fashion()
    net = fashion_content_net(args.layer)
    cal = calibrate(net, data)
    print(f"content layer {args.layer}: {cal}", flush=True)

    g_model = {"width": args.width, "n_blocks": args.blocks}
    mse_model = {**g_model, "content": "mse", "adv_weight": 0.0}
    G_mse, mse_run = train("mse", mse_model, args.mse_steps, args.lr_mse, args, data)
    sr_mse = upscale(G_mse, lr)
    gan_model = {**g_model, "content": args.content, "feature_scale": cal["feature_scale"],
                 "adv_weight": args.adv_weight, "d_width": args.d_width, "d_max_width": 8 * args.d_width,
                 "d_hidden": 32 * args.d_width}
    G_gan, gan_run = train("srgan", gan_model, args.gan_steps, args.lr, args, data, init=G_mse,
                            net=net)
    sr_gan = upscale(G_gan, lr)
    sr_bicubic = bicubic(lr, scale)

    results = {name: evaluate(name, sr, hr, extractor, args.seed)
               for name, sr in (("bicubic", sr_bicubic), ("srresnet-mse", sr_mse), ("srgan", sr_gan))}
    results["real"] = {"psnr": None, "fid_test_vs_train": translation_fid(
        hr, data.to_float(data.x_b[: args.n_test]), extractor, seed=args.seed)["fid"]}
    best = min(("bicubic", "srresnet-mse", "srgan"), key=lambda k: results[k]["fid"])
    fig = HERE / "results" / f"srgan_lowres{args.tag}.png"
    figure(lr, [sr_bicubic, sr_mse, sr_gan, hr], y, fig)
    wall, cpu = time.perf_counter() - t_start, time.process_time() - c_start
    out = {
        "benchmark": "srgan", "data": "builtin:fmnist-lowres (7x7 -> 28x28, x4)",
        "n_test": len(lr), "results": results, "best_fid": best,
        "bar": "SRGAN has the lowest FID of bicubic, SRResNet-MSE and SRGAN", "pass": best == "srgan",
        "content": {"layer": args.layer, **cal}, "runs": {"srresnet-mse": mse_run, "srgan": gan_run},
        "seed": args.seed, "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
        "figure": str(fig.relative_to(HERE.parent)),
        "metrics_provenance": extractor.provenance(),
        "command": " ".join([".venv/bin/python", "bench/srgan.py", *sys.argv[1:]]),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__},
    }
    path = HERE / "results" / f"srgan{args.tag}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"best FID: {best} ({'pass' if best == 'srgan' else 'FAIL'}); {wall:.0f} s; wrote {path} and {fig}")


if __name__ == "__main__":
    main()
