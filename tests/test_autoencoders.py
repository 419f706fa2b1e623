"""The autoencoder families (ae, vae, aae): ELBO and KL terms against closed forms, bits per dimension, the fitted
sampling Gaussian, the mixture prior, clustering accuracy, and short training runs through the one trainer."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from ganforge.artifacts import Sampler
from ganforge.data.spec import DataSpec
from ganforge.families import build_family
from ganforge.train import build_run
from ganforge.families.aae import nearest_images
from ganforge.families.vae import GREY_LEVEL, bits_per_dim, gaussian_kl, gaussian_nll
from ganforge.metrics.clustering import cluster_accuracy
from ganforge.nn.autoencoder import mixture_from_noise

from .conftest import AUTOENCODER_FAMILIES, split_and_resume, tiny_config

SPEC = DataSpec("image", (1, 16, 16), name="toy")


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    want = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(7), torch.ones(7))).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), want)
    assert float(gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3))) == 0.0  # q = p


def test_gaussian_nll_matches_log_density():
    g = torch.Generator().manual_seed(1)
    x, mean = torch.randn(4, 3, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g)
    log_sigma = torch.tensor([-1.0, 0.0, 0.5])
    want = -Normal(mean, log_sigma.exp().view(1, 3, 1, 1)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_nll(x, mean, log_sigma), want)


def test_bits_per_dim_of_the_uniform_density_is_eight():
    # the uniform density on the dequantised range [-1, 1 + 1/127.5) (width 256/127.5): -log p = D log(256/127.5)
    dims = 784
    assert float(bits_per_dim(torch.tensor(dims * math.log(256 / 127.5)), dims)) == pytest.approx(8.0)


def test_vae_elbo_equals_a_hand_computation():
    torch.manual_seed(0)
    vae = build_family("vae", {"latent_dim": 4, "width": 8}, SPEC).eval()
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    terms = vae.elbo(x, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the same draws, in the same order: dequantisation noise, then eps
    xd = x + torch.rand(x.shape, generator=g) * GREY_LEVEL
    h = vae.G.encoder(xd)
    mu, logvar = h[:, :4], h[:, 4:]
    z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g)
    sigma = vae.G.log_sigma.exp()
    nll = -Normal(vae.G.decoder(z), sigma.view(1, 1, 1, 1)).log_prob(xd).flatten(1).sum(1)
    kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(4), torch.ones(4))).sum(1)
    torch.testing.assert_close(terms["nll"], nll, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(terms["kl"], kl, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(terms["elbo"], -(nll + kl), rtol=1e-4, atol=1e-3)


def test_kl_annealing_ramps_beta():
    vae = build_family("vae", {"latent_dim": 2, "width": 4, "beta": 4.0, "kl_anneal_steps": 100}, SPEC)
    assert [vae.beta_at(s) for s in (0, 50, 100, 500)] == [0.0, 2.0, 4.0, 4.0]
    assert build_family("vae", {"latent_dim": 2, "width": 4}, SPEC).beta_at(0) == 1.0
    with pytest.raises(ValueError, match="beta"):
        build_family("vae", {"beta": -1.0}, SPEC)


def test_ae_sampling_gaussian_tracks_the_codes():
    ae = build_family("ae", {"latent_dim": 3, "width": 4, "code_momentum": 1.0}, SPEC)
    g = torch.Generator().manual_seed(2)
    codes = torch.randn(500, 3, generator=g) @ torch.tensor([[2.0, 0, 0], [0.5, 1.0, 0], [0, 0, 0.1]]) + 5
    ae.track_codes(codes)  # momentum 1: exactly the batch's moments
    torch.testing.assert_close(ae.G.code_mean, codes.mean(0))
    torch.testing.assert_close(ae.G.code_tril @ ae.G.code_tril.T, torch.cov(codes.T), atol=2e-5, rtol=1e-4)
    # G(z) decodes mean + L z: z = 0 decodes the mean code
    torch.testing.assert_close(ae.G(torch.zeros(1, 3)), ae.G.decode(codes.mean(0, keepdim=True)))


def test_mixture_prior_from_noise_is_the_mixture():
    z = torch.randn(200_000, 3, generator=torch.Generator().manual_seed(3))
    k, r, s = 5, 2.0, 0.5
    m = mixture_from_noise(z, k, r, s)
    centres = torch.stack([r * torch.cos(torch.arange(k) * 2 * math.pi / k), r * torch.sin(torch.arange(k) * 2 * math.pi / k)], 1)
    nearest = torch.cdist(m[:, :2], centres).argmin(1)
    share = torch.bincount(nearest, minlength=k).float() / len(z)
    torch.testing.assert_close(share, torch.full((k,), 1 / k), atol=0.01, rtol=0)
    offset = m[:, :2] - centres[nearest]
    torch.testing.assert_close(offset.std(0), torch.full((2,), s), atol=0.02, rtol=0)
    torch.testing.assert_close(m[:, 2:], z[:, 2:])


def test_cluster_accuracy_is_invariant_to_relabelling():
    y = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    perm = torch.tensor([2, 0, 1])
    assert cluster_accuracy(perm[y], y)["accuracy"] == 1.0
    c = perm[y].clone()
    c[0] = perm[1]  # one sample in the wrong cluster
    r = cluster_accuracy(c, y)
    assert r["accuracy"] == pytest.approx(7 / 8) and r["mapping"] == {2: 0, 0: 1, 1: 2}
    with pytest.raises(ValueError, match="as many"):
        cluster_accuracy([0, 1], [0])


@pytest.mark.parametrize("family, options", [("ae", {}), ("vae", {"kl_anneal_steps": 10}),
                                             ("aae", {"prior": "categorical", "categories": 4}),
                                             ("aae", {"prior": "mixture", "categories": 3}), ("vaegan", {})])
def test_autoencoders_train_sample_and_resume(family, options, tmp_path):
    cfg = tiny_config(family, "builtin:digits", steps=6)
    cfg.model.update({"latent_dim": 4, "width": 8, **options})
    build_run(cfg, tmp_path / "a").fit()
    s = Sampler.from_checkpoint(tmp_path / "a")
    x = s.generate(4, seed=1)
    assert x.shape[1:] == (1, 8, 8) and torch.isfinite(x).all()
    torch.testing.assert_close(x, s.generate(4, seed=1))
    if family == "aae" and options["prior"] == "categorical":
        a, b = s.generate(3, seed=1, codes={"c0": 2}), s.generate(3, seed=1, codes={"c0": 0})
        assert not torch.equal(a, b)
        assert s.family.cluster(x).shape == (4,)


def test_the_autoencoder_families_are_these():
    assert AUTOENCODER_FAMILIES == ["aae", "ae", "vae", "vaegan"]
    from ganforge.families import FAMILIES

    # only ae's samples are not plain G(z ~ prior) draws, and only vae has a likelihood
    assert [f for f in AUTOENCODER_FAMILIES if "fitted" in FAMILIES[f].sample_note] == ["ae"]
    assert [f for f in AUTOENCODER_FAMILIES if FAMILIES[f].likelihood] == ["vae"]


@pytest.mark.parametrize("family, options", [("vae", {"kl_anneal_steps": 3}), ("aae", {"prior": "categorical"}),
                                             # restarts: the member is chosen at step 4, after the split at 3
                                             ("aae", {"prior": "categorical", "restarts": 3, "select_at": 4,
                                                      "neighbour_weight": 0.5, "neighbours": 2}),
                                             # ... and at step 2, before it: the resumed run loads the choice
                                             ("aae", {"prior": "categorical", "restarts": 3, "select_at": 2}),
                                             ("vaegan", {})])
def test_resume_is_bit_exact(family, options, tmp_path):
    def make(steps, out, resume):
        cfg = tiny_config(family, "builtin:digits", steps=steps)
        cfg.model.update({"latent_dim": 4, "width": 8, **options})
        return build_run(cfg, out, resume=resume)

    full, resumed = split_and_resume(make, tmp_path, 3)
    if options.get("restarts", 1) > 1:
        assert bool(resumed.family.G.chosen) and int(resumed.family.G.selected) == int(full.family.G.selected)


@pytest.mark.parametrize("family, options", [("ae", {"code_momentum": 1.0}), ("aae", {"prior": "mixture", "categories": 6})])
def test_code_to_prior_inverts_prior_to_code(family, options):
    fam = build_family(family, {"latent_dim": 3, "width": 4, **options}, SPEC)
    if family == "ae":
        fam.track_codes(torch.randn(100, 3) * torch.tensor([3.0, 1.0, 0.2]) + 1)
    z = torch.randn(500, 3, generator=torch.Generator().manual_seed(4)) * 0.8
    back = fam.G.code_to_prior(fam.G.prior_to_code(z))
    if family == "aae":  # exact wherever the draw stays nearest its own component's centre
        comp_ok = z[:, :2].norm(dim=1) * 0.5 < 2.0 * math.sin(math.pi / 6)
        z, back = z[comp_ok], back[comp_ok]
    torch.testing.assert_close(back, z, atol=1e-4, rtol=1e-4)


def test_code_tracking_ignores_autocast_and_non_finite_batches():
    codes = torch.randn(256, 3, generator=torch.Generator().manual_seed(6)) * 0.2
    a = build_family("ae", {"latent_dim": 3, "width": 4, "code_momentum": 0.01}, SPEC)
    b = build_family("ae", {"latent_dim": 3, "width": 4, "code_momentum": 0.01}, SPEC)
    for _ in range(50):
        a.track_codes(codes)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            b.track_codes(codes.bfloat16().float())
    torch.testing.assert_close(b.G.code_tril, a.G.code_tril, atol=1e-3, rtol=1e-3)
    before = a.G.code_tril.clone()
    a.track_codes(torch.full((8, 3), float("nan")))
    assert torch.equal(a.G.code_tril, before)


def _aae_with_restarts(tmp_path, steps: int, select_at: int, resume: bool = False):
    cfg = tiny_config("aae", "builtin:digits", steps=steps)
    cfg.model.update({"latent_dim": 4, "width": 8, "prior": "categorical", "categories": 4, "restarts": 3,
                      "select_at": select_at, "neighbours": 3, "neighbour_anchors": 40})
    return build_run(cfg, tmp_path, resume=resume)


def test_aae_neighbours_are_the_nearest_pooled_images():
    x = torch.rand(30, 1, 20, 12, generator=torch.Generator().manual_seed(2)) * 2 - 1
    anchor, idx = nearest_images(x, 4, 10)
    assert anchor.shape == (10,) and idx.shape == (10, 4) and len(anchor.unique()) == 10
    f = torch.nn.functional.adaptive_avg_pool2d(x, (14, 12)).flatten(1)
    d = torch.cdist(f[anchor], f)
    d[torch.arange(10), anchor] = float("inf")  # an image is not its own neighbour
    torch.testing.assert_close(d.gather(1, idx), d.topk(4, largest=False).values)
    assert not (idx == anchor[:, None]).any()
    with pytest.raises(ValueError, match="neighbours must be between 1 and 29"):
        nearest_images(x, 30, 0)


def test_aae_restarts_keep_the_member_whose_clusters_agree_most_with_the_neighbours(tmp_path):
    trainer = _aae_with_restarts(tmp_path / "run", steps=5, select_at=3)
    fam = trainer.family
    assert len(fam.G.members) == 3 and len(fam.D) == 3 and not bool(fam.G.chosen)
    assert len(fam.members()) == 3  # all train until the choice
    # the agreement by hand: each anchor's cluster against each of its neighbours' (encoders in eval mode)
    for net in fam.G.members:
        net.eval()
        with torch.no_grad():
            c = net.encode(fam._nb_x)[:, 4:].argmax(1)
        net.train()
        by_hand = (c[fam._nb_anchor][:, None] == c[fam._nb_index]).float().mean().item()
        assert fam.agreement(net) == pytest.approx(by_hand)
    # the choice is the argmax of the members' agreement at that moment, whichever member it is
    fam.agreement = lambda net: [0.2, 0.9, 0.5][list(fam.G.members).index(net)]
    trainer.fit()
    assert bool(fam.G.chosen) and int(fam.G.selected) == 1
    torch.testing.assert_close(fam.G.scores, torch.tensor([0.2, 0.9, 0.5]))
    assert fam.members() == [(fam.G.members[1], fam.D[1])]
    # after the choice the dropped members stop training; the kept one goes on
    frozen = {k: v.clone() for k, v in fam.G.state_dict().items()}
    after = _aae_with_restarts(tmp_path / "run", steps=7, select_at=3, resume=True).fit().family.G.state_dict()
    for k, v in frozen.items():
        if k.startswith(("members.0.", "members.2.")) and v.is_floating_point():
            torch.testing.assert_close(after[k], v, rtol=0, atol=0, msg=k)
    assert any(not torch.equal(after[k], v) for k, v in frozen.items() if k.startswith("members.1.") and v.dim() > 1)
    # outside training everything reads the kept member: the sampler's clusters and images are member 1's
    s = Sampler.from_checkpoint(tmp_path / "run")
    assert int(s.family.G.selected) == 1
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(s.family.cluster(x), s.family.G.members[1].encode(x)[:, 4:].argmax(1))
    torch.testing.assert_close(s.family.G(torch.zeros(2, 8)), s.family.G.members[1](torch.zeros(2, 8)))
    assert not torch.allclose(s.family.G(torch.zeros(2, 8)), s.family.G.members[0](torch.zeros(2, 8)))
    from ganforge.artifacts.projection import first_layer_weight  # sefa's weight is the kept member's too

    torch.testing.assert_close(first_layer_weight(s.family.G), first_layer_weight(s.family.G.members[1]))


def test_aae_restarts_export_the_kept_member_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from ganforge.artifacts import onnx as gonnx

    _aae_with_restarts(tmp_path / "run", steps=3, select_at=1).fit()
    s = Sampler.from_checkpoint(tmp_path / "run")
    kept = 2 if int(s.family.G.selected) != 2 else 1  # a member other than the first, whatever the choice was
    s.family.G.selected.fill_(kept)
    s.family.G._refresh()
    gonnx.export_onnx(s, tmp_path / "g.onnx")
    z = s.latents(5, seed=3)
    got = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"]).run(None, {"z": z.numpy()})[0]
    with torch.no_grad():
        want, first = s.family.G.members[kept](z), s.family.G.members[0](z)
    torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(want, first, atol=1e-3)


def test_aae_restarts_and_neighbours_refuse_what_they_cannot_do():
    with pytest.raises(ValueError, match="restarts"):
        build_family("aae", {"latent_dim": 3, "width": 4, "restarts": 2}, SPEC)  # gaussian prior: no clusters
    with pytest.raises(ValueError, match="neighbour_weight"):
        build_family("aae", {"latent_dim": 3, "width": 4, "prior": "mixture", "neighbour_weight": 1.0}, SPEC)
