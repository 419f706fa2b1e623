"""StyleGAN2 (families/stylegan.py, nn/stylegan.py): any image size, demodulation, the truncation trick, the
running average of w, style mixing, lazy R1 and path-length phases, bit-exact resume, ADA."""

import math

import pytest
import torch

from ganforge.data import load_data
from ganforge.families import build_family
from ganforge.nn.stylegan import ModulatedConv2d, StyleGAN2Discriminator, StyleGAN2Generator
from ganforge.train import build_run

from .conftest import split_and_resume, tiny_config, training_state

TINY = {"width": 4, "max_width": 8, "latent_dim": 8, "w_dim": 8}


def _family(**model):
    torch.manual_seed(0)
    return build_family("stylegan", {**TINY, **model}, load_data("builtin:digits").spec)


@pytest.mark.parametrize("shape, base", [((1, 100, 100), (7, 7)), ((3, 96, 64), (6, 4)), ((1, 28, 28), (7, 7)),
                                         ((1, 8, 8), (4, 4))])
def test_any_image_size(shape, base):
    torch.manual_seed(0)
    G = StyleGAN2Generator(8, shape, w_dim=8, width=4, max_width=8)
    D = StyleGAN2Discriminator(shape, width=4, max_width=8)
    z = torch.randn(3, 8)
    x = G(z)
    assert G.synthesis.base == base  # the constant's grid: 100x100 grows to 112x112 and is centre-cropped
    assert x.shape == (3, *shape) and D(x).shape == (3,)
    y = G.eval()(z)
    assert y.shape == (3, *shape) and y.abs().max() <= 1  # eval mode: the data's range


def test_demodulation_gives_unit_variance_outputs():
    torch.manual_seed(0)
    conv = ModulatedConv2d(16, 6, 3, w_dim=8)
    w = 3 * torch.randn(2, 8)
    with torch.no_grad():
        styles = conv.affine(w)
        # closed form: every output channel's effective weights s_i W_oik d_o have unit sum of squares
        eff = (conv.weight * conv.w_gain)[None] * styles[:, None, :, None, None]
        eff = eff * conv.demodulation(styles)[:, :, None, None, None]
        torch.testing.assert_close(eff.square().sum((2, 3, 4)), torch.ones(2, 6), atol=1e-5, rtol=0)
        # so i.i.d. unit-variance inputs give unit-variance outputs (away from the zero-padded border)
        y = conv(torch.randn(2, 16, 96, 96), w)[:, :, 1:-1, 1:-1]
    torch.testing.assert_close(y.var(dim=(2, 3)), torch.ones(2, 6), atol=0.15, rtol=0)


def test_truncation_trick_and_fixed_noise():
    fam = _family()
    G = fam.G.eval()
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(8))
        for layer in G.synthesis.layers:  # noise that shows: psi = 0 must still give one image
            layer.noise_strength.fill_(0.5)
    z = torch.randn(4, 8)
    zero = fam.sample(4, z=z, truncation=0.0)
    torch.testing.assert_close(zero, zero[:1].expand_as(zero))  # the same image for every z
    with torch.no_grad():
        w, avg = G.mapping(z), G.mapping.w_avg
        torch.testing.assert_close(zero[:1], G.synthesize(avg.expand(1, G.num_ws, -1)))  # the image of w_avg
        full = fam.sample(4, z=z, truncation=1.0)
        torch.testing.assert_close(full, G.synthesize(w.unsqueeze(1).expand(-1, G.num_ws, -1)))  # untruncated
        half = avg + 0.5 * (w - avg)
        torch.testing.assert_close(fam.sample(4, z=z, truncation=0.5),
                                   G.synthesize(half.unsqueeze(1).expand(-1, G.num_ws, -1)))
        assert not torch.allclose(full[0], full[1])
        torch.testing.assert_close(fam.sample(4, z=z), full)  # the same z, the same image (const noise)
        G.truncation = 0.0  # what G(z) applies, so an exported G carries it
        torch.testing.assert_close(G(z), zero)
        mixed = G(z, torch.tensor([0.0, 1.0, 0.0, 1.0]))  # psi as a tensor, one per sample
        torch.testing.assert_close(mixed[[0, 2]], zero[[0, 2]])
        torch.testing.assert_close(mixed[[1, 3]], full[[1, 3]])
        G.train()
        assert not torch.allclose(G(z, 1.0), G(z, 1.0))  # training draws fresh noise
    with pytest.raises(ValueError, match=r"truncation \(psi\) must be in \[0, 1\]"):
        fam.sample(2, truncation=1.5)
    with pytest.raises(ValueError, match="model.truncation"):
        _family(truncation=2.0)


def test_w_avg_tracks_the_mean_of_mapped_w():
    fam = _family(w_avg_beta=0.7)
    fam.train()
    before = fam.G.mapping.w_avg.clone()
    torch.manual_seed(3)
    with torch.no_grad():
        fam.generate(16)
        torch.manual_seed(3)
        w = fam.G.mapping(fam.noise(16))  # the same first latents
    torch.testing.assert_close(fam.G.mapping.w_avg, 0.7 * before + 0.3 * w.mean(0))
    with torch.no_grad():
        target = fam.G.mapping(torch.randn(4096, 8)).mean(0)
        start = (fam.G.mapping.w_avg - target).norm()
        for _ in range(12):
            fam.generate(64)
    assert (fam.G.mapping.w_avg - target).norm() < 0.2 * start


def test_style_mixing_uses_two_ws():
    fam = _family(mixing=1.0)
    layers = fam.G.num_ws
    torch.manual_seed(1)
    with torch.no_grad():
        ws = fam.styles(64, track=False)
        torch.manual_seed(1)
        w1, w2 = fam.G.mapping(fam.noise(64)), fam.G.mapping(fam.noise(64))
    cutoffs = set()
    for i in range(64):
        from_first = [torch.allclose(ws[i, j], w1[i]) for j in range(layers)]
        c = from_first.index(False)  # w(z1) up to the crossover layer, w(z2) from there
        assert all(from_first[:c]) and all(torch.allclose(ws[i, j], w2[i]) for j in range(c, layers))
        cutoffs.add(c)
    assert cutoffs == set(range(1, layers))  # a random crossover layer
    with torch.no_grad():
        ws = _family(mixing=0.0).styles(8, track=False)
    torch.testing.assert_close(ws, ws[:, :1].expand_as(ws))  # one w for every layer
    with torch.no_grad():
        ws = _family(mixing=0.5).styles(400, track=False)
    share = (~torch.isclose(ws[:, 0], ws[:, -1]).all(1)).float().mean().item()
    assert share == pytest.approx(0.5, abs=0.08)


def test_lazy_regularisers_follow_their_schedules(tmp_path):
    fam = _family()
    assert (fam.cfg.r1_every, fam.loss_name, fam.cfg.pl_weight) == (16, "ns", 0) and fam.cfg.r1_weight > 0
    assert [s for s in range(40) if "d_reg" in fam.phases(s)] == [0, 16, 32]
    assert not any("g_reg" in fam.phases(s) for s in range(40))  # path length is off by default
    cfg = tiny_config("stylegan", steps=4, model={"r1_every": 2, "pl_weight": 2.0, "pl_every": 4})
    trainer = build_run(cfg, tmp_path)
    fam, tc = trainer.family, cfg.train
    assert [fam.phases(s) for s in range(5)] == [("d", "d_reg", "g", "g_reg"), ("d", "g"), ("d", "d_reg", "g"),
                                                 ("d", "g"), ("d", "d_reg", "g", "g_reg")]
    g = trainer.optimizers["g"].param_groups[0]
    assert g["lr"] == pytest.approx(tc.lr_g * 4 / 5) and g["betas"][1] == pytest.approx(tc.beta2 ** 0.8)
    assert trainer.optimizers["d"].param_groups[0]["lr"] == pytest.approx(tc.lr_d * 2 / 3)
    logs = trainer.train_step()  # step 0: every phase
    assert {"d/r1", "g/pl", "g_reg/grad_norm"} <= logs.keys() and fam.pl_mean.item() > 0
    trainer.fit()  # steps 1-3
    steps = {k: int(next(iter(o.state.values()))["step"]) for k, o in trainer.optimizers.items()}
    assert steps == {"d": 4 + 2, "g": 4 + 1}  # each lazy phase steps its player's optimizer once more


def test_resume_is_bit_exact_with_w_avg(tmp_path):
    def make(steps, out, resume):
        cfg = tiny_config("stylegan", steps=steps, model={"r1_every": 2, "pl_weight": 2.0, "pl_every": 2})
        return build_run(cfg, out, resume=resume)

    full, resumed = split_and_resume(make, tmp_path, 2)  # resumes at step 2, where both lazy phases run
    state = training_state(resumed)
    assert {"model.G.mapping.w_avg", "ema.mapping.w_avg", "model.pl_mean"} <= state.keys()
    assert state["model.G.mapping.w_avg"].abs().sum() > 0
    torch.testing.assert_close(state["ema.mapping.w_avg"], state["model.G.mapping.w_avg"], rtol=0, atol=0)


def test_every_image_d_sees_goes_through_ada(tmp_path):
    cfg = tiny_config("stylegan", steps=1, model={"r1_every": 2}, train={"augment": "ada", "augment_p": 0.5})
    trainer = build_run(cfg, tmp_path)
    fam, seen = trainer.family, []
    ada = fam.augment
    fam.augment = lambda x: (seen.append(x.shape[0]), ada(x))[1]
    logs = trainer.train_step()
    assert len(seen) == 3  # real and fake in D's phase, fake in G's; lazy R1 sees clean reals
    assert "aug/p" in logs and math.isfinite(logs["d/loss"]) and math.isfinite(logs["g/loss"])


def test_bad_options_name_the_fix():
    with pytest.raises(ValueError, match="model.mixing is a probability"):
        _family(mixing=1.5)
    with pytest.raises(ValueError, match="model.sample_noise must be one of const, none"):
        _family(sample_noise="random")
    with pytest.raises(ValueError, match="use --family gan"):
        build_family("stylegan", {}, load_data("builtin:ring8").spec)


def test_sampler_and_cli_truncate_in_w_not_z(tmp_path, capsys):
    """stylegan declares truncation = "w": the Sampler and `ganforge sample --truncation` leave z as drawn (its
    mapping network pixel-normalises z, so scaling z would change nothing) and hand psi to the family."""
    import numpy as np

    from ganforge.artifacts import Sampler
    from ganforge.cli.main import main
    from ganforge.families import FAMILIES
    from ganforge.latent import seeded_latents

    assert FAMILIES["stylegan"].truncation == "w" and FAMILIES["dcgan"].truncation == "z"
    run = tmp_path / "run"
    build_run(tiny_config("stylegan", steps=1, model={"truncation": 0.6}), run).fit()
    sampler = Sampler.from_checkpoint(run)
    assert (sampler.truncation_space, sampler.default_truncation) == ("w", 0.6)
    z = torch.from_numpy(seeded_latents(5, 3, 8))
    torch.testing.assert_close(sampler.latents(3, 5, truncation=0.5), z, rtol=0, atol=0)  # z is not scaled
    half = sampler.generate(3, 5, truncation=0.5)
    torch.testing.assert_close(half, sampler.family.sample(3, z=z, truncation=0.5), rtol=0, atol=0)
    torch.testing.assert_close(sampler.generate(3, 5), sampler.generate(3, 5, truncation=0.6))  # model.truncation
    assert (half - sampler.generate(3, 5, truncation=1.0)).abs().max() > 1e-3  # psi reaches the image
    # the CLI, on the checkpoint as saved: seeds, interpolation strips, and a psi out of range
    assert main(["sample", "--ckpt", str(run), "--n", "3", "--seed", "5", "--truncation", "0.5",
                 "--out", str(tmp_path / "x.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), half.numpy())
    assert main(["sample", "--ckpt", str(run), "--n", "1", "--seed", "2", "--interpolate", "3", "--truncation", "0.5",
                 "--out", str(tmp_path / "strip.npy")]) == 0
    strip = sampler.interpolation_latents(1, 3, seed=2, truncation=0.5)
    torch.testing.assert_close(strip, sampler.interpolation_latents(1, 3, seed=2), rtol=0, atol=0)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "strip.npy")), sampler.G(strip, 0.5))
    assert main(["sample", "--ckpt", str(run), "--truncation", "0", "--out", str(tmp_path / "y.npy")]) == 2
    assert "--truncation must be in (0, 1]" in capsys.readouterr().err
    # psi -> 0: every z gives the image of w_avg (here an average apart from the 1-step model's w)
    with torch.no_grad():
        sampler.G.mapping.w_avg.copy_(sampler.G.mapping(torch.randn(256, 8)).mean(0))
    tiny = sampler.generate(4, 0, truncation=1e-6)
    torch.testing.assert_close(tiny, tiny[:1].expand_as(tiny), rtol=0, atol=1e-4)
    assert (sampler.generate(4, 0, truncation=1.0).std(0)).max() > 1e-3
