"""FastGAN (families/fastgan.py, nn/fastgan.py): sizes, skip-layer excitation, the self-supervised D's
reconstruction term, resume and DiffAugment."""

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data.spec import Batch, DataSpec
from ganforge.families import build_family
import ganforge.nn.fastgan as fastgan_nn
from ganforge.nn.convs import FastConv2d, upsample_conv3x3, upsample_conv_routable
from ganforge.nn.fastgan import (FastGANDiscriminator, FastGANGenerator, SkipLayerExcitation, UpBlock, UpBlockComp,
                                 quadrant, resized, sle_pairs)
from ganforge.train import build_run

from .conftest import split_and_resume, tiny_config

TINY = {"width": 4, "max_width": 16, "latent_dim": 8}


@pytest.mark.parametrize("shape, grid, decoded", [((3, 100, 100), (112, 112), (48, 48)),
                                                 ((3, 96, 64), (96, 64), (48, 32)),
                                                 ((1, 28, 28), (28, 28), (28, 28)),
                                                 ((1, 8, 8), (8, 8), (8, 8))])
def test_generator_and_discriminator_sizes(shape, grid, decoded):
    torch.manual_seed(0)
    G, D = FastGANGenerator(8, shape, 4, 16), FastGANDiscriminator(shape, 4, 16)
    z = torch.randn(3, 8)
    x = G(z)
    assert x.shape == (3, *shape) and x.abs().max() <= 1  # tanh, centre-cropped to the target
    assert tuple(G.maps(z)[-1].shape[-2:]) == grid  # the grid G draws on before the crop
    logits, small, mid = D.forward_with_maps(x)
    assert logits.shape == (3,)
    assert tuple(D.decode_whole(small).shape) == (3, shape[0], *decoded)
    assert D.decode_part(quadrant(mid, 3)).shape == D.decode_whole(small).shape


def test_sle_pairs_are_the_papers_and_shrink_for_small_generators():
    assert sle_pairs(8) == ((0, 4), (1, 5), (2, 6), (3, 7))  # 4->64, 8->128, 16->256, 32->512
    assert sle_pairs(6) == ((0, 4), (1, 5), (2, 6))          # 256x256
    assert sle_pairs(4) == ((0, 4),)
    assert sle_pairs(3) == ((0, 2), (1, 3))
    assert sle_pairs(1) == ((0, 1),)
    G = FastGANGenerator(8, (3, 256, 256), 4, 16)
    assert sorted(G.sle) == ["4", "5", "6"]


def test_sle_is_a_channel_gate():
    torch.manual_seed(0)
    sle = SkipLayerExcitation(6, 5)
    low, high = torch.randn(2, 6, 7, 7), torch.rand(2, 5, 20, 12) + 0.1
    out = sle(low, high)
    gate = out / high
    assert torch.all(out >= 0) and torch.all(out <= high)  # high * sigmoid(...): in [0, high]
    torch.testing.assert_close(gate, gate[:, :, :1, :1].expand_as(gate))  # one factor per sample and channel
    conv4, conv1 = sle.gate[1].weight, sle.gate[3].weight
    want = torch.sigmoid(F.conv2d(F.leaky_relu(F.conv2d(F.adaptive_avg_pool2d(low, 4), conv4), 0.1), conv1))
    torch.testing.assert_close(sle.factors(low), want)
    torch.testing.assert_close(out, high * want)


def test_reconstruction_is_on_real_images_only_and_in_ds_loss_alone():
    spec = DataSpec("image", (3, 32, 32))
    torch.manual_seed(0)
    fam = build_family("fastgan", {**TINY, "recon_weight": 2.5}, spec)
    real, other_real = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    state = copy.deepcopy(fam.state_dict())  # BatchNorm statistics and spectral-norm vectors move per forward

    def d_step(x, fakes):
        fam.load_state_dict(state)
        fam.generate = lambda n: (fakes, None)
        torch.manual_seed(1)
        return fam.loss("d", Batch(x))

    a = d_step(real, torch.rand(4, 3, 32, 32) * 2 - 1)
    decoders = [p for m in (fam.D.decode_whole, fam.D.decode_part) for p in m.parameters()]
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(a.loss, decoders))  # before the weights are reloaded
    b = d_step(real, torch.rand(4, 3, 32, 32) * 2 - 1)
    c = d_step(other_real, torch.rand(4, 3, 32, 32) * 2 - 1)
    assert a.logs["d/recon"] == b.logs["d/recon"] != c.logs["d/recon"]  # fakes do not enter it, reals do
    assert a.logs["d/adv"] != b.logs["d/adv"]
    assert {"d/acc_real", "d/rt", "stats/real_spread", "stats/fake_spread"} <= a.logs.keys()  # the base logs stay
    torch.testing.assert_close(a.loss.detach(), a.logs["d/loss"] + 2.5 * a.logs["d/recon"])

    # the closed form: L1 of the whole image (resized to the decoder's 16x16) and of one quadrant, q from the RNG
    fam.load_state_dict(state)
    torch.manual_seed(1)
    q = int(torch.randint(4, ()))
    _, small, mid = fam.D.forward_with_maps(real)
    whole, part = fam.D.decode_whole(small), fam.D.decode_part(quadrant(mid, q))
    assert whole.shape[-2:] == (16, 16) and part.shape[-2:] == (16, 16)
    want = F.l1_loss(whole, resized(real, (16, 16))) + F.l1_loss(part, quadrant(real, q))
    assert a.logs["d/recon"].item() == pytest.approx(want.item(), rel=1e-5)

    g = fam.loss("g", Batch(real))
    assert "d/recon" not in g.logs
    assert all(grad is None for grad in torch.autograd.grad(g.loss, decoders, allow_unused=True))


def test_resume_is_bit_exact_with_diffaugment(tmp_path):
    def make(steps, out, resume):
        cfg = tiny_config("fastgan", steps=steps, train={"augment": "diffaugment"}, log={"ckpt_every": 2})
        return build_run(cfg, out, resume=resume)

    full, _ = split_and_resume(make, tmp_path, 2)
    assert math.isfinite(full.last_logs["d/recon"])


def test_diffaugment_step_reconstructs_the_augmented_real_batch(tmp_path):
    trainer = build_run(tiny_config("fastgan", steps=1, train={"augment": "diffaugment"}), tmp_path / "run")
    fam = trainer.family
    assert fam.augment.kind == "diffaugment" and fam.cfg.loss == "hinge"
    augment, reconstruction = fam.augment, fam.reconstruction
    augmented, targets = [], []
    fam.augment = lambda x: (augmented.append(augment(x)), augmented[-1])[1]
    fam.reconstruction = lambda x, small, mid: (targets.append(x), reconstruction(x, small, mid))[1]
    logs = trainer.train_step()
    assert len(augmented) == 3  # D's real and fake batches, then G's fakes
    assert len(targets) == 1 and targets[0] is augmented[0]  # the decoders rebuild the real batch as D saw it
    assert all(math.isfinite(logs[k]) for k in ("d/loss", "g/loss", "d/recon"))


def test_bad_options_name_the_fix():
    spec = DataSpec("image", (1, 8, 8))
    with pytest.raises(ValueError, match="recon_loss must be one of l1, mse"):
        build_family("fastgan", {**TINY, "recon_loss": "lpips"}, spec)
    with pytest.raises(ValueError, match="recon_weight must be >= 0"):
        build_family("fastgan", {**TINY, "recon_weight": -1.0}, spec)
    with pytest.raises(ValueError, match="width <= model.max_width"):
        build_family("fastgan", {"width": 32, "max_width": 16}, spec)
    for bad in (32, -1):
        with pytest.raises(ValueError, match="0 <= model.d_width <= model.max_width"):
            build_family("fastgan", {**TINY, "d_width": bad}, spec)
    with pytest.raises(ValueError, match="use --family gan"):
        build_family("fastgan", TINY, DataSpec("points", (2,)))
    fam = build_family("fastgan", {**TINY, "recon_weight": 0.0}, spec)
    assert fam.D.decode_whole is None  # no decoders to train


def test_double_conv_adds_a_conv_to_alternate_up_blocks_and_keeps_g_a_function_of_z():
    torch.manual_seed(0)
    G = FastGANGenerator(8, (3, 100, 100), 4, 16, double_conv=True)
    assert [isinstance(up, UpBlockComp) for up in G.ups] == [True, False, True, False]  # 7 -> 14 -> 28 -> 56 -> 112
    plain = FastGANGenerator(8, (3, 100, 100), 4, 16)
    n_convs = [sum(isinstance(m, nn.Conv2d) for m in g.modules()) for g in (plain, G)]
    assert n_convs[1] == n_convs[0] + 2
    assert set(plain.state_dict()) < set(G.state_dict())  # the plain G's names are kept: old checkpoints load
    assert nn.utils.parametrize.is_parametrized(G.ups[0][4])  # the second conv is spectrally normalised too
    G.eval()
    z = torch.randn(2, 8)
    x = G(z)
    assert x.shape == (2, 3, 100, 100)
    torch.testing.assert_close(G(z), x)  # forward draws no noise (none injected): the same z, the same image


def test_d_width_sets_only_the_discriminators_channels():
    spec, wide = DataSpec("image", (3, 32, 32)), {**TINY, "max_width": 64}
    same, apart = build_family("fastgan", wide, spec), build_family("fastgan", {**wide, "d_width": 8}, spec)
    g_params = [p.shape for p in same.G.parameters()]
    assert [p.shape for p in apart.G.parameters()] == g_params  # G keeps `width`
    assert same.D.stem[0].out_channels == 4 and apart.D.stem[0].out_channels == 8  # D's stem: d_width
    assert [d.main[0].out_channels for d in apart.D.downs] == [16, 32]  # doubled per halving from d_width


@pytest.mark.parametrize("setting, in_g, in_d", [(True, True, True), ("d", False, True), ("g", True, False),
                                                 (False, False, False)])
def test_spectral_norm_covers_the_networks_it_names(setting, in_g, in_d):
    spec = DataSpec("image", (3, 16, 16))
    fam = build_family("fastgan", {**TINY, "spectral_norm": setting}, spec)

    def normed(net):  # per conv: spectrally normalised or not
        convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
        return {torch.nn.utils.parametrize.is_parametrized(m) for m in convs}

    assert normed(fam.G) == {in_g} and normed(fam.D) == {in_d}
    if in_g:  # the constraint holds: the largest singular value of a normalised weight is at most ~1
        conv = next(m for m in fam.G.modules() if isinstance(m, torch.nn.Conv2d))
        fam.G.train()
        for _ in range(20):  # power iterations run in training-mode forwards
            fam.G(torch.randn(2, TINY["latent_dim"]))
        assert torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2).item() <= 1.05


def test_spectral_norm_rejects_other_values():
    with pytest.raises(ValueError, match="spectral_norm must be true, false, 'd'"):
        build_family("fastgan", {**TINY, "spectral_norm": "yes"}, DataSpec("image", (1, 8, 8)))


def test_patch_loss_scores_every_entry_of_ds_logit_map():
    """patch_loss: D's hinge runs over every entry of its logit map (the reference code's), which is not the hinge
    of the per-image mean; a penalty's critic call (R1) and what D's phase logs stay per image."""
    from ganforge.losses import get_loss

    spec = DataSpec("image", (3, 32, 32))
    torch.manual_seed(0)
    fam = build_family("fastgan", {**TINY, "recon_weight": 0.0, "patch_loss": True, "r1_weight": 1.0}, spec)
    real, fake = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    state = copy.deepcopy(fam.state_dict())  # spectral norm's vectors move per forward in train mode
    fam.generate = lambda n: (fake, None)
    hinge = get_loss("hinge")
    fam.objective = dataclasses.replace(hinge, d=lambda r, f, *a: (seen.append((r, f)), hinge.d(r, f, *a))[1])
    critic, seen, shapes = fam.critic, [], []
    fam.critic = lambda x, c: (lambda out: (shapes.append(tuple(out.shape)), out)[1])(critic(x, c))
    out = fam.loss("d", Batch(real))

    fam.load_state_dict(state)  # the same forwards in the same order: real, then fake
    maps = [fam.D.forward_with_maps(x, patches=True)[0] for x in (real, fake)]
    entries = maps[0].numel() // 4
    assert entries > 1 and shapes == [(4 * entries,), (4 * entries,), (4,)]  # real, fake per entry; R1 per image
    r, f = seen[0]
    torch.testing.assert_close(r, maps[0])
    torch.testing.assert_close(f, maps[1])
    per_entry = torch.relu(1 - maps[0]).mean() + torch.relu(1 + maps[1]).mean()
    image = [m.view(4, -1).mean(1) for m in maps]
    per_image = torch.relu(1 - image[0]).mean() + torch.relu(1 + image[1]).mean()
    assert out.logs["d/adv"].item() == pytest.approx(per_entry.item(), rel=1e-5)
    assert per_entry.item() != pytest.approx(per_image.item(), rel=1e-3)
    # the logs the health monitor and ADA read are per image, as for every other D
    assert out.logs["d/rt"].item() == pytest.approx(torch.sign(image[0]).mean().item())
    assert out.logs["d/acc_fake"].item() == pytest.approx((image[1] < 0).float().mean().item())
    assert "d/r1" in out.logs and fam._patch_calls == 0
    assert critic(real, None).shape == (4,)  # outside D's phase: one logit per image


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("block", [lambda: UpBlock(24, 12), lambda: UpBlockComp(24, 12), lambda: UpBlock(6, 5, False)])
def test_up_block_as_one_transposed_conv_is_the_upsample_and_conv_it_replaces(block, precision, monkeypatch):
    """While training on CPU in fp32 or under bf16 autocast an up-sampling block runs nearest x2 + 3x3 conv as one
    stride-2 transposed conv (ganforge.nn.convs.upsample_conv3x3): its output and every gradient agree with the
    plain layers computed in float64 as closely as the plain layers in the same precision do."""
    torch.manual_seed(0)
    b = block().train()
    ref = copy.deepcopy(b).double()
    x = torch.randn(3, b[1].in_channels, 9, 7, requires_grad=True)  # odd, non-square map: edges on every side
    x64 = x.detach().double().requires_grad_(True)
    cast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    calls = []
    monkeypatch.setattr(fastgan_nn, "upsample_conv3x3", lambda x, conv: calls.append(1) or upsample_conv3x3(x, conv))
    with cast:
        assert upsample_conv_routable(b[1], x)
        y, y_plain = b(x), nn.Sequential.forward(b, x)
    y64 = nn.Sequential.forward(ref, x64)
    assert calls == [1]  # the block took the route
    assert y.shape == (3, b[1].out_channels // 2, 18, 14) and y.dtype == y_plain.dtype
    g = torch.randn_like(y64).to(y.dtype)
    grads = torch.autograd.grad(y, [x, *b.parameters()], g)
    plain = torch.autograd.grad(y_plain, [x, *b.parameters()], g)
    exact = torch.autograd.grad(y64, [x64, *ref.parameters()], g.double())

    def err(a, r):
        return ((a.double() - r).norm() / r.norm()).item()

    floor = 1e-5 if precision == "fp32" else 1e-3
    assert err(y, y64) < max(floor, 2 * err(y_plain, y64))
    for got, same, r in zip(grads, plain, exact):
        assert err(got, r) < max(floor, 4 * err(same, r))
    if precision == "bf16":  # a real bf16 computation, not fp32 in disguise
        assert err(y_plain, y64) > 1e-4


def test_up_block_keeps_the_plain_layers_in_eval_mode_and_other_dtypes():
    """Eval mode (sampling, ONNX export) and dtypes where the route was not measured (float64, fp16 autocast) run
    the plain upsample and conv: bit for bit what nn.Sequential computes."""
    torch.manual_seed(0)
    b = UpBlock(8, 4)
    x = torch.randn(2, 8, 5, 5)
    b.eval()
    assert not upsample_conv_routable(b[1], x)
    assert torch.equal(b(x), nn.Sequential.forward(b, x))
    b.train()
    with torch.autocast("cpu", dtype=torch.float16):
        assert not upsample_conv_routable(b[1], x)
    b64 = copy.deepcopy(b).double()
    assert not upsample_conv_routable(b64[1], x.double())
    assert torch.equal(b64(x.double()), nn.Sequential.forward(b64, x.double()))
    assert upsample_conv_routable(b[1], x)
    for conv in (nn.Conv2d(8, 8, 3, 1, 1, dilation=2), nn.Conv2d(8, 8, 3, 1, 1, groups=2), nn.Conv2d(8, 8, 3, 2, 1),
                 nn.Conv2d(8, 8, 5, 1, 1), nn.Conv2d(8, 8, 3, 1, 1, padding_mode="reflect")):
        assert not upsample_conv_routable(conv.train(), x)  # only a plain 3x3, stride-1, padding-1 conv


@pytest.mark.parametrize("make", [lambda: FastConv2d(6, 8, 3, 1, 1), lambda: UpBlock(6, 4)])
def test_spectral_norm_advances_one_power_iteration_per_forward(make):
    """A spectral-normalised conv in training runs one power iteration per forward, as torch.nn's does: the
    fast routes' checks must not read (and so re-normalise) the weight a second time."""
    torch.manual_seed(0)
    fast = make().train()
    conv = fast if isinstance(fast, nn.Conv2d) else fast[1]
    nn.utils.parametrizations.spectral_norm(conv)
    plain = nn.Conv2d(6, conv.out_channels, 3, 1, 1, bias=conv.bias is not None).train()
    nn.utils.parametrizations.spectral_norm(plain)
    plain.load_state_dict(conv.state_dict())  # the same weight and the same starting u, v
    x = torch.randn(2, 6, 5, 5, requires_grad=True)
    fast(x)
    plain(x if fast is conv else F.interpolate(x, scale_factor=2, mode="nearest"))
    for name in ("_u", "_v"):
        torch.testing.assert_close(getattr(conv.parametrizations.weight[0], name),
                                   getattr(plain.parametrizations.weight[0], name))


@pytest.mark.parametrize("iterations", [1, 2, 3])
@pytest.mark.parametrize("setting", ["d", True])
def test_sn_power_iterations_sets_the_iterations_each_training_forward_runs(iterations, setting):
    """model.sn_power_iterations: every normalised conv (D's with spectral_norm 'd', G's too with true) runs that many
    power iterations per training forward, as torch.nn's spectral_norm with n_power_iterations does."""
    torch.manual_seed(0)
    fam = build_family("fastgan", {**TINY, "spectral_norm": setting, "sn_power_iterations": iterations},
                       DataSpec("image", (3, 16, 16)))
    normed = {net: [m for m in getattr(fam, net).modules() if nn.utils.parametrize.is_parametrized(m, "weight")]
              for net in ("G", "D")}
    assert normed["D"] and bool(normed["G"]) == (setting is True)
    assert all(m.parametrizations.weight[0].n_power_iterations == iterations for ms in normed.values() for m in ms)
    conv = fam.D.stem[0]
    sn = conv.parametrizations.weight[0]
    sn._u.copy_(F.normalize(torch.randn_like(sn._u), dim=0))  # far from converged: each iteration moves u visibly
    refs = {}
    for k in (iterations, iterations + 1):
        refs[k] = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1).train()
        nn.utils.parametrizations.spectral_norm(refs[k], n_power_iterations=k)
        refs[k].load_state_dict(conv.state_dict())  # the same weight and the same starting u, v
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    fam.D.train()
    fam.D(x)
    for ref in refs.values():
        ref(x)
    u = {k: ref.parametrizations.weight[0]._u for k, ref in refs.items()}
    torch.testing.assert_close(sn._u, u[iterations])
    assert (sn._u - u[iterations + 1]).norm() > 1e-4  # one iteration more is told apart


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_sn_power_iterations_rejects_other_values(bad):
    with pytest.raises(ValueError, match="model.sn_power_iterations must be an integer >= 1"):
        build_family("fastgan", {**TINY, "spectral_norm": "d", "sn_power_iterations": bad},
                     DataSpec("image", (3, 8, 8)))


@pytest.mark.parametrize("channels, weights_cl", [(3, False), (1, False), (3, True)])
def test_memory_layout_changes_speed_not_numbers(channels, weights_cl, monkeypatch):
    """Training on CPU, G's image layer and all of D (its decoders' image layers too) run on channels-last maps,
    the up-sampling blocks' transposed-conv route on NCHW ones (in and out), whatever layout the images arrive in
    (an NCHW batch of real images, or a fake one without translation) and whatever the weights' (the trainer's
    channels_last): the layout is chosen for speed (see fastgan.channels_last); outputs and gradients match the
    same networks without those layout changes to float rounding."""
    torch.manual_seed(0)
    g = FastGANGenerator(16, (channels, 24, 20), width=4, spectral_norm=False).train()
    d = FastGANDiscriminator((channels, 24, 20), width=4, spectral_norm=False).train()
    if weights_cl:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    z = torch.randn(3, 16)
    seen, routed = [], []  # the layout of every conv's input, module by module; of every up route's input, output

    def cl(t):  # channels-last and not also NCHW (with one channel both are one layout: counted as channels-last)
        return t.is_contiguous(memory_format=torch.channels_last) and (t.shape[1] == 1 or not t.is_contiguous())

    def route(x, conv):
        y = upsample_conv3x3(x, conv)
        routed.extend([cl(x), cl(y)])
        return y

    def run():
        x = g(z)
        logits, small, mid = d.forward_with_maps(x.contiguous())  # as a real batch arrives: NCHW
        outs = [x, logits, small, mid, d.decode_whole(small), d.decode_part(quadrant(mid, 1))]
        loss = sum((o.float() * torch.linspace(-1, 1, o.numel()).view(o.shape)).sum() for o in outs)
        return outs, torch.autograd.grad(loss, [*g.parameters(), *d.parameters()])

    hooks = [m.register_forward_pre_hook(lambda m, a: seen.append((m, cl(a[0]))))
             for m in [*g.modules(), *d.modules()] if isinstance(m, FastConv2d)]
    monkeypatch.setattr(fastgan_nn, "upsample_conv3x3", route)
    outs, grads = run()
    for h in hooks:
        h.remove()
    layout = dict(seen)
    assert len(routed) == 2 * (len(g.ups) + 2 * d.recon_ups) and not any(routed)
    assert layout[g.to_image[0]] and layout[d.decode_whole[-2]] and layout[d.decode_part[-2]]
    assert layout[d.head[0]] and all(layout[m] for blk in d.downs for m in blk.modules() if isinstance(m, FastConv2d))
    # the same networks with every layout change undone: each layer in the layout its input comes in
    monkeypatch.setattr(fastgan_nn, "channels_last", lambda t: t)
    monkeypatch.setattr(fastgan_nn.FastGANDecoder, "forward", nn.Sequential.forward)
    monkeypatch.setattr(fastgan_nn.UpBlock, "forward", nn.Sequential.forward)
    ref_outs, ref_grads = run()
    assert channels == 1 or weights_cl or not cl(ref_outs[0])  # the reference ran G's image layer on NCHW
    for got, want in zip(outs, ref_outs):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    for got, want in zip(grads, ref_grads):  # sums over the batch: rounding up to 1e-4 of the largest entry
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4 * want.abs().max().item())
