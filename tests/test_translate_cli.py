"""`ganforge translate` / `upscale`, `evaluate` on image-to-image runs, ONNX export and model cards for them.

Tiny stub families (1x1 convolutions) stand in for pix2pix / srgan / cyclegan / stargan: they follow the
TranslationFamily contract, train 2 steps with build_run and leave real checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ganforge.artifacts import Sampler
from ganforge.cli.main import main
from ganforge.config import from_dict
from ganforge.data import builtin, registry
from ganforge.data.spec import DataSpec
from ganforge.data.store import TensorData
from ganforge.families import FAMILIES
from ganforge.families.base import StepOutput
from ganforge.families.phases import Phase
from ganforge.families.translation import TranslationFamily, TwoWay
from ganforge.image import to_uint8
from ganforge.metrics import translation as tm
from ganforge.train import build_run


@dataclass
class StubConfig:
    l1_weight: float = 10.0


class StubPaired(TranslationFamily):
    """G: (nearest upsampling to B's size, then) a 1x1 conv and tanh; D: a 1x1 conv; LSGAN + L1."""

    name = "stubpix"
    description = "test stub: paired translation"
    Config = StubConfig

    def __init__(self, cfg, spec, generator_only=False):
        super().__init__(cfg, spec, generator_only)
        self.G = self.build_g()
        self.D = None if generator_only else nn.Conv2d(self.out_shape[0], 1, 1)

    def build_g(self) -> nn.Module:
        scale = self.out_shape[1] // self.in_shape[1]
        up = [nn.Upsample(scale_factor=scale, mode="nearest")] if scale > 1 else []
        return nn.Sequential(*up, nn.Conv2d(self.in_shape[0], self.out_shape[0], 1), nn.Tanh())

    def phase_specs(self):
        return (Phase("d", ("D",), lr="lr_d"), Phase("g", ("G",), lr="lr_g", updates_ema=True))

    def forward_train(self, batch):
        return self.G(batch.x)

    def loss(self, phase, batch, ctx=None):
        fake = self.forward_train(batch)
        if phase == "d":
            loss = (self.D(batch.x_b) - 1).pow(2).mean() + self.D(fake.detach()).pow(2).mean()
            return StepOutput(loss, {"d/loss": loss.detach()})
        loss = (self.D(fake) - 1).pow(2).mean() + self.cfg.l1_weight * (fake - batch.x_b).abs().mean()
        return StepOutput(loss, {"g/loss": loss.detach()})


class StubSR(StubPaired):
    name = "srgan"


class StubCycle(StubPaired):
    name = "stubcycle"
    directions = ("AtoB", "BtoA")
    needs = "unpaired"

    def build_g(self) -> nn.Module:
        return TwoWay(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Tanh()), nn.Sequential(nn.Conv2d(1, 1, 1), nn.Tanh()))

    def forward_train(self, batch):
        return self.G(batch.x, "AtoB")

    def loss(self, phase, batch, ctx=None):
        out = super().loss(phase, batch, ctx)
        if phase == "g":  # the pairing is meaningless here, but the loss shape is what matters for a stub
            out.loss = out.loss + (self.G(self.G(batch.x), "BtoA") - batch.x).abs().mean()
        return out


class StarG(nn.Module):
    def __init__(self, channels: int, n_domains: int) -> None:
        super().__init__()
        self.n_domains = n_domains
        self.conv = nn.Conv2d(channels + n_domains, channels, 1)

    def forward(self, x, domain):
        onehot = (domain[:, None] == torch.arange(self.n_domains, device=x.device)).to(x.dtype)
        return torch.tanh(self.conv(torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)))


class StubStar(StubPaired):
    name = "stubstar"
    needs = "labelled"
    conditioning = "image+domain"

    def build_g(self) -> nn.Module:
        return StarG(self.in_shape[0], self.spec.n_classes)

    def forward_train(self, batch):
        return self.G(batch.x, (batch.y + 1) % self.spec.n_classes)

    def loss(self, phase, batch, ctx=None):
        batch.x_b = batch.x  # D compares with real images of any domain
        return super().loss(phase, batch, ctx)

    @torch.no_grad()
    def translate(self, x, direction="AtoB", domain=None, net=None):
        self.check_direction(direction)
        if domain is None:  # sample grids: cycle through the domains
            domain = torch.arange(x.shape[0]) % self.spec.n_classes
        d = torch.as_tensor(domain, device=x.device).long()
        if d.dim() == 0:
            d = d.expand(x.shape[0])
        return (net if net is not None else self.G)(x, d)


STUBS = {"stubpix": StubPaired, "srgan": StubSR, "stubcycle": StubCycle, "stubstar": StubStar}


# ---- hand-made data: 8x8 digits (train: first 1000, test: the rest) ------------------------------------

def _digits(split: str):
    d = builtin.digits()
    sl = slice(0, 1000) if split == "train" else slice(1000, None)
    return d.x[sl], d.y[sl]


def stub_pairs(size=None, channels=None, split="train"):
    """A = digits, B = their negatives (1x8x8, paired)."""
    x, y = _digits(split)
    spec = DataSpec("image", (1, 8, 8), 10, tuple(map(str, range(10))), "stub-pairs", (1, 8, 8), "paired",
                    ("digit", "negative"))
    return TensorData(spec, x, y, source="builtin:stub-pairs", x_b=255 - x)


def stub_lowres(size=None, channels=None, split="train"):
    """A = 4x4 average-pooled digits, B = the 8x8 digits."""
    x, y = _digits(split)
    small = F.avg_pool2d(x.float(), 2).round().to(torch.uint8)
    spec = DataSpec("image", (1, 4, 4), 10, tuple(map(str, range(10))), "stub-lowres", (1, 8, 8), "paired", ("low", "high"))
    return TensorData(spec, small, y, source="builtin:stub-lowres", x_b=x)


def stub_unpaired(size=None, channels=None, split="train"):
    x, y = _digits(split)
    spec = DataSpec("image", (1, 8, 8), 0, (), "stub-unpaired", (1, 8, 8), "unpaired", ("small", "big"))
    return TensorData(spec, x[y < 5], None, source="builtin:stub-unpaired", x_b=255 - x[y >= 5])


def stub_domains(size=None, channels=None, split="train"):
    x, y = _digits(split)
    keep = y < 3
    spec = DataSpec("image", (1, 8, 8), 3, ("zero", "one", "two"), "stub-domains")
    return TensorData(spec, x[keep], y[keep], source="builtin:stub-domains")


DATA = {"stub-pairs": stub_pairs, "stub-lowres": stub_lowres, "stub-unpaired": stub_unpaired,
        "stub-domains": stub_domains}


def train(family: str, source: str, out: Path) -> Path:
    cfg = from_dict({
        "family": family, "model": {}, "data": {"source": source},
        "train": {"steps": 2, "batch_size": 16, "ema_decay": 0.0},
        "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 1, "progress": False, "tensorboard": False},
    })
    build_run(cfg, out).fit()
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Stub families and data registered for this module; one trained run of each."""
    with pytest.MonkeyPatch.context() as mp:
        for name, cls in STUBS.items():
            mp.setitem(FAMILIES, name, cls)
        for name, fn in DATA.items():
            mp.setitem(registry.BUILTINS, name, fn)
        root = tmp_path_factory.mktemp("runs")
        yield {
            "pix": train("stubpix", "builtin:stub-pairs", root / "pix"),
            "sr": train("srgan", "builtin:stub-lowres", root / "sr"),
            "cycle": train("stubcycle", "builtin:stub-unpaired", root / "cycle"),
            "star": train("stubstar", "builtin:stub-domains", root / "star"),
        }


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _write_inputs(folder: Path) -> Path:
    """Three readable images of other sizes and modes, and one corrupt file."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(folder / "grey8.png")
    Image.fromarray((rng.random((20, 30, 3)) * 255).astype(np.uint8)).save(folder / "rgb.png")
    Image.fromarray((rng.random((16, 16, 4)) * 255).astype(np.uint8), "RGBA").save(folder / "alpha.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("not an image")
    return folder


# ---- translate ----------------------------------------------------------------------------------------

def test_translate_a_folder_writes_one_png_per_input_and_a_grid(runs, tmp_path, capsys):
    folder = _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["translate", "--ckpt", str(runs["pix"]), "--input", str(folder), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped 1 unreadable file(s): broken.png" in text and "2 input(s) resized" in text
    assert sorted(p.name for p in out.iterdir()) == ["alpha.png", "grey8.png", "grid.png", "rgb.png"]
    # the PNG is the model's output on the decoded input (8x8 grey already has the input shape)
    x = torch.from_numpy(_png(folder / "grey8.png").copy()).float().div(127.5).sub(1).view(1, 1, 8, 8)
    want = to_uint8(Sampler.from_checkpoint(runs["pix"]).translate(x))[0, 0].numpy()
    np.testing.assert_array_equal(_png(out / "grey8.png"), want)
    # grid: 3 input|output pairs in one row of 4 cells (2 pairs per row -> 2 rows), cells upscaled x8
    grid = Image.open(out / "grid.png")
    assert grid.size == ((4 * (8 + 2) + 2) * 8, (2 * (8 + 2) + 2) * 8)


def test_translate_builtin_test_split(runs, tmp_path):
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.BUILTINS, "stub-pairs", stub_pairs)
        assert main(["translate", "--ckpt", str(runs["pix"]), "--input", "builtin:stub-pairs", "--n", "5",
                     "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["grid.png"] + [f"stub-pairs-{i:05d}.png" for i in range(5)]
    x = stub_pairs(split="test")
    want = to_uint8(Sampler.from_checkpoint(runs["pix"]).translate(x.to_float(x.x[:5])))
    np.testing.assert_array_equal(_png(out / "stub-pairs-00003.png"), want[3, 0].numpy())


def test_translate_two_way_direction_and_errors(runs, tmp_path, capsys):
    folder = _write_inputs(tmp_path / "in")
    out = tmp_path / "b2a"
    assert main(["translate", "--ckpt", str(runs["cycle"]), "--input", str(folder / "grey8.png"),
                 "--direction", "BtoA", "--out", str(out)]) == 0
    x = torch.from_numpy(_png(folder / "grey8.png").copy()).float().div(127.5).sub(1).view(1, 1, 8, 8)
    s = Sampler.from_checkpoint(runs["cycle"])
    np.testing.assert_array_equal(_png(out / "grey8.png"), to_uint8(s.translate(x, "BtoA"))[0, 0].numpy())
    assert not np.array_equal(_png(out / "grey8.png"), to_uint8(s.translate(x, "AtoB"))[0, 0].numpy())
    capsys.readouterr()
    cases = [
        (["--ckpt", str(runs["pix"]), "--direction", "BtoA"], "translates AtoB only"),
        (["--ckpt", str(runs["pix"]), "--domain", "1"], "drop --domain"),
        (["--ckpt", str(runs["star"]), "--domain", "seven"], "0=zero, 1=one, 2=two"),
    ]
    for extra, fix in cases:
        assert main(["translate", "--input", str(folder), "--out", str(tmp_path / "x"), *extra]) == 2
        assert fix in capsys.readouterr().err
    assert main(["translate", "--ckpt", str(runs["pix"]), "--input", str(tmp_path / "nope"), "--out", "x"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_translate_stargan_every_domain(runs, tmp_path):
    folder = _write_inputs(tmp_path / "in")
    out = tmp_path / "all"
    assert main(["translate", "--ckpt", str(runs["star"]), "--input", str(folder), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["grid.png"] + [f"{s}_{d}.png" for s in ("alpha", "grey8", "rgb") for d in ("zero", "one", "two")])
    grid = Image.open(out / "grid.png")  # one row per input: the input, then 3 domains
    assert grid.size == ((4 * 10 + 2) * 8, (3 * 10 + 2) * 8)
    x = torch.from_numpy(_png(folder / "grey8.png").copy()).float().div(127.5).sub(1).view(1, 1, 8, 8)
    s = Sampler.from_checkpoint(runs["star"])
    np.testing.assert_array_equal(_png(out / "grey8_two.png"), to_uint8(s.translate(x, domain=2))[0, 0].numpy())
    one = tmp_path / "one"
    assert main(["translate", "--ckpt", str(runs["star"]), "--input", str(folder), "--domain", "One",
                 "--out", str(one)]) == 0
    np.testing.assert_array_equal(_png(one / "grey8.png"), to_uint8(s.translate(x, domain=1))[0, 0].numpy())


def test_upscale(runs, tmp_path, capsys):
    folder = _write_inputs(tmp_path / "in")
    Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16).save(tmp_path / "tiny.png")
    out = tmp_path / "big"
    assert main(["upscale", "--ckpt", str(runs["sr"]), str(tmp_path / "tiny.png"), str(folder), "--out", str(out)]) == 0
    assert "4x4 -> 8x8 (x2)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["alpha.png", "grey8.png", "rgb.png", "tiny.png"]
    x = torch.arange(16.0).view(1, 1, 4, 4).mul(16).div(127.5).sub(1)
    want = to_uint8(Sampler.from_checkpoint(runs["sr"]).translate(x))[0, 0].numpy()
    np.testing.assert_array_equal(_png(out / "tiny.png"), want)
    assert main(["upscale", "--ckpt", str(runs["pix"]), str(tmp_path / "tiny.png"), "--out", str(out)]) == 2
    assert "use `ganforge translate" in capsys.readouterr().err


def test_latent_models_are_refused(tmp_path, capsys):
    from .conftest import tiny_config

    run = tmp_path / "dcgan"
    build_run(tiny_config("dcgan", steps=1), run).fit()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    assert main(["translate", "--ckpt", str(run), "--input", str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]) == 2
    assert "use `ganforge sample" in capsys.readouterr().err


def test_help_has_examples(capsys):
    for verb in ("translate", "upscale"):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        assert "examples:" in capsys.readouterr().out


# ---- evaluate -----------------------------------------------------------------------------------------

def test_evaluate_paired_run_writes_metrics_the_card_reads(runs, tmp_path, capsys):
    from ganforge.artifacts.card import card_markdown, model_card

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.BUILTINS, "stub-pairs", stub_pairs)
        assert main(["evaluate", "--ckpt", str(runs["pix"]), "--metrics", "l1,psnr,ssim,cycle", "--n", "50"]) == 0
    s = Sampler.from_checkpoint(runs["pix"])
    report = json.loads((runs["pix"] / "eval" / f"step_{s.step:08d}.json").read_text())
    assert set(report["results"]) == {"l1", "psnr", "ssim"}  # no cycle for a one-way family
    assert "not applicable here: cycle" in capsys.readouterr().out
    test = stub_pairs(split="test")
    idx = tm._subset(len(test), 50, 0)
    fake, real = s.translate(test.to_float(test.x[idx])), test.to_float(test.x_b[idx])
    assert report["results"]["l1"]["values"]["l1"] == pytest.approx(tm.l1(fake, real))
    assert report["results"]["ssim"]["values"]["ssim"] == pytest.approx(tm.ssim(fake, real))
    prov = report["results"]["psnr"]["provenance"]
    assert prov["n_fake"] == 50 and prov["seed"] == 0 and "test split" in prov["reference"]
    card = model_card(s)
    assert {m["name"] for m in card["metrics"]} == {"l1", "psnr", "ssim"}
    assert "1x8x8 images -> 1x8x8 images" in card_markdown(card) and card["latent"] is None


def test_evaluate_two_way_and_stargan_cycle(runs, tmp_path):
    for run, source, fn in (("cycle", "stub-unpaired", stub_unpaired), ("star", "stub-domains", stub_domains)):
        out = tmp_path / f"{run}.json"
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(registry.BUILTINS, source, fn)
            assert main(["evaluate", "--ckpt", str(runs[run]), "--metrics", "cycle,l1", "--n", "40",
                         "--out", str(out)]) == 0
        res = json.loads(out.read_text())["results"]
        assert set(res) == {"cycle"}  # unpaired / labelled data has no l1 target
        s = Sampler.from_checkpoint(runs[run])
        test = fn(split="test")
        x = test.to_float(test.x[tm._subset(len(test.x), 40, 0)])
        if run == "cycle":
            want = tm.cycle_error(x, s.translate(s.translate(x), "BtoA"))
            assert res["cycle"]["values"]["cycle_l1_A"] == pytest.approx(want)
        else:
            y = test.y[tm._subset(len(test.x), 40, 0)]
            target = (y + 1 + torch.arange(40) % 2) % 3
            want = tm.cycle_error(x, s.translate(s.translate(x, domain=target), domain=y))
            assert res["cycle"]["values"]["cycle"] == pytest.approx(want)


def test_evaluate_fashion_domains(tmp_path):
    """sneaker -> ankle boot at 28x28: fid/kid with the fashion features and domain accuracy."""
    from ganforge.metrics.features import fashion

    try:
        fm_test = builtin.fashion_mnist(split="test")
    except (FileNotFoundError, OSError) as e:
        pytest.skip(f"Fashion-MNIST not available: {e}")

    def shoes(size=None, channels=None, split="train"):
        d = fm_test  # the test split is enough for a 2-step run
        spec = DataSpec("image", (1, 28, 28), 0, (), "shoes", (1, 28, 28), "unpaired", ("sneaker", "ankle boot"))
        return TensorData(spec, d.x[d.y == 7][:150], None, source="builtin:shoes", x_b=d.x[d.y == 9][:150])

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(FAMILIES, "stubcycle", StubCycle)
        mp.setitem(registry.BUILTINS, "shoes", shoes)
        run = train("stubcycle", "builtin:shoes", tmp_path / "run")
        assert main(["evaluate", "--ckpt", str(run), "--n", "150", "--out", str(tmp_path / "e.json")]) == 0
        res = json.loads((tmp_path / "e.json").read_text())["results"]
        assert set(res) == {"fid", "kid", "domain_accuracy", "cycle"}
        assert res["fid"]["provenance"]["extractor"] == "fashion" and res["fid"]["values"]["fid"] > 0
        assert {"fid", "fid_BtoA"} <= set(res["fid"]["values"]) and "kid_BtoA" in res["kid"]["values"]
        s = Sampler.from_checkpoint(run)
        data = shoes()
        sneakers = data.to_float(data.x)
        want = tm.domain_accuracy(s.translate(sneakers), 9, fashion())  # "ankle boot" is class 9
        assert res["domain_accuracy"]["values"]["domain_accuracy"] == pytest.approx(want)
        want_b = tm.domain_accuracy(s.translate(data.to_float(data.x_b), "BtoA"), 7, fashion())
        assert res["domain_accuracy"]["values"]["domain_accuracy_BtoA"] == pytest.approx(want_b)


# ---- ONNX and model info ------------------------------------------------------------------------------

@pytest.mark.parametrize("run,direction", [("pix", "AtoB"), ("sr", "AtoB"), ("cycle", "BtoA"), ("star", "AtoB")])
def test_onnx_parity_and_info(runs, tmp_path, run, direction):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from ganforge.artifacts.onnx import export_onnx, read_info

    s = Sampler.from_checkpoint(runs[run])
    res = export_onnx(s, tmp_path / "g.onnx", direction=direction)
    assert res.max_abs_diff <= 1e-4 and res.as_dict()["direction"] == direction
    info = read_info(res.path)
    want_in = {"pix": [1, 8, 8], "sr": [1, 4, 4], "cycle": [1, 8, 8], "star": [1, 8, 8]}[run]
    assert info["input_shape"] == want_in and info["output_shape"] == [1, 8, 8] and info["latent"] is None
    assert info["inputs"] == (["x", "domain"] if run == "star" else ["x"])
    assert info["directions"] == (["AtoB", "BtoA"] if run == "cycle" else ["AtoB"])
    assert info["domains"] == {"star": ["zero", "one", "two"], "cycle": ["small", "big"],
                               "pix": ["digit", "negative"], "sr": ["low", "high"]}[run]
    x = torch.rand(3, *want_in, generator=torch.Generator().manual_seed(1)) * 2 - 1
    feeds = {"x": x.numpy()}
    domain = torch.tensor([2, 0, 1])
    if run == "star":
        feeds["domain"] = domain.numpy()
    got = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    want = s.translate(x, direction, domain=domain if run == "star" else None)
    np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-5)


def test_export_direction_errors_and_no_site_or_lambda(runs, tmp_path):
    pytest.importorskip("onnxscript")
    from ganforge.artifacts.onnx import export_onnx
    from ganforge.serve.lambda_package import LambdaPackageError, build_lambda
    from ganforge.serve.site import SiteError, build_site

    s = Sampler.from_checkpoint(runs["pix"])
    with pytest.raises(ValueError, match="translates AtoB"):
        export_onnx(s, tmp_path / "g.onnx", direction="BtoA")
    with pytest.raises(SiteError, match="translates images: export it with --onnx"):
        build_site(s, tmp_path / "site")
    with pytest.raises(LambdaPackageError, match="translates images: export it with --onnx"):
        build_lambda(s, tmp_path / "lambda", vendor=False)
    assert not (tmp_path / "site").exists() and not (tmp_path / "lambda").exists()
