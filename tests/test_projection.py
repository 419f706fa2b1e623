"""Latent tools: projection (GAN inversion) on toy generators, the encoder start, `ganforge project`, class means,
and slerp's endpoints and norms."""

import json
import math

import numpy as np
import pytest
import torch

from ganforge.artifacts.projection import class_direction, class_means, project, search_start
from ganforge.cli.main import main
from ganforge.latent import between
from ganforge.train import build_run

from .conftest import tiny_config


def linear_generator(seed=0, d=6, c=1, side=4):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(c * side * side, d, generator=g) / math.sqrt(d)
    return lambda z: torch.tanh(z @ W.T).view(len(z), c, side, side)


def test_gradient_descent_projection_lowers_the_loss_at_every_step():
    G = linear_generator()
    z_true = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    target = G(z_true)
    p = project(G, target, torch.zeros(5, 6), steps=60, lr=0.5, optimizer="sgd", prior_weight=0.0)
    h = p.history
    assert all(b <= a + 1e-9 for a, b in zip(h, h[1:])), h
    assert h[-1] < 0.2 * h[0]
    torch.testing.assert_close(p.pixel_mse, (G(p.latents) - target).pow(2).flatten(1).mean(1))


def test_projection_recovers_the_images_of_a_toy_generator_and_never_ends_worse():
    G = linear_generator(2)
    g = torch.Generator().manual_seed(3)
    target = G(torch.randn(4, 6, generator=g))
    start = torch.randn(4, 6, generator=g)
    p = project(G, target, start, steps=300, lr=0.05, prior_weight=0.0)
    assert float(p.pixel_mse.max()) < 1e-3
    stuck = project(G, target, start, steps=5, lr=1e3, prior_weight=0.0)  # a wild lr: the best latent is kept
    start_loss = (G(start) - target).pow(2).flatten(1).mean(1)
    assert bool((stuck.loss <= start_loss + 1e-7).all())


def test_search_start_picks_the_closest_candidate():
    G = linear_generator(4)
    cands = torch.randn(50, 6, generator=torch.Generator().manual_seed(5))
    target = G(cands[[7, 31]]) + 0.001
    torch.testing.assert_close(search_start(G, target, cands), cands[[7, 31]])


class _ToySampler:
    """Latents of a seed as a fixed table; the 'image' of a latent is the latent itself."""

    def __init__(self, z):
        self.z = z

    def latents(self, n, seed):
        return self.z[:n]

    def generate(self, n, z):
        return z


class _ToyClassifier:
    """Two classes by the sign of the first coordinate, sure of it in proportion to its size."""
    n_classes = 2

    def logits(self, x):
        return torch.stack([-4 * x[:, 0], 4 * x[:, 0]], 1)


def test_class_direction_averages_only_the_confident_members_of_each_class():
    z = torch.tensor([[-2.0, 1.0], [-0.05, 9.0], [-1.0, 3.0], [1.5, 0.0], [0.1, -9.0], [2.5, 2.0]]).repeat(5, 1)
    s, clf = _ToySampler(z), _ToyClassifier()
    # p(class) = sigmoid(8 |x0|): 0.6 for |x0| 0.05, 0.69 for 0.1, >= 0.9999 for the others
    d, info = class_direction(s, clf, 0, 1, n=len(z), min_confidence=0.9)
    torch.testing.assert_close(d, torch.tensor([2.0, 1.0]) - torch.tensor([-1.5, 2.0]))
    assert (info["count_a"], info["count_b"]) == (10, 10)
    d_all, info_all = class_direction(s, clf, 0, 1, n=len(z), min_confidence=0.0)
    torch.testing.assert_close(d_all, torch.tensor([4.1 / 3, -7.0 / 3]) - torch.tensor([-3.05 / 3, 13.0 / 3]))
    assert (info_all["count_a"], info_all["count_b"]) == (15, 15)
    with pytest.raises(ValueError, match="too few"):
        class_direction(s, clf, 0, 1, n=len(z), min_confidence=0.99999999)


def test_class_means():
    z = torch.tensor([[1.0, 0], [3.0, 2], [0, 4.0]])
    means, counts = class_means(z, torch.tensor([0, 0, 2]), 3)
    torch.testing.assert_close(means[0], torch.tensor([2.0, 1.0]))
    assert counts.tolist() == [2, 0, 1] and bool(means[1].isnan().all())


def test_slerp_endpoints_and_norms():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    np.testing.assert_allclose(between(a, b, 0.0, 64), a, atol=1e-5)
    np.testing.assert_allclose(between(a, b, 1.0, 64), b, atol=1e-5)
    # equal norms stay on the sphere all the way (linear interpolation would dip inside it)
    b_same = b * np.linalg.norm(a) / np.linalg.norm(b)
    for t in (0.25, 0.5, 0.75):
        assert np.linalg.norm(between(a, b_same, t, 64)) == pytest.approx(np.linalg.norm(a), rel=1e-5)
    assert np.linalg.norm((a + b_same) / 2) < 0.9 * np.linalg.norm(a)


def test_encoder_start_reconstructs_and_project_cli_writes_its_files(tmp_path, capsys):
    cfg = tiny_config("vae", "builtin:digits", steps=4)
    trainer = build_run(cfg, tmp_path / "run").fit()
    fam = trainer.family.eval()
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    with torch.no_grad():  # the encoder's latent decodes to the encoder-decoder reconstruction
        torch.testing.assert_close(fam.G(fam.latent_of(x)), fam.reconstruct(x))
    out = tmp_path / "proj"
    assert main(["project", "--ckpt", str(tmp_path / "run"), "builtin:digits", "--n", "3", "--steps", "5",
                 "--out", str(out)]) == 0
    info = json.loads((out / "projection.json").read_text())
    assert info["init"] == "encoder" and info["n"] == 3 and info["loss_end"] <= info["loss_start"]
    z = np.load(out / "digits-00000.npy")
    assert z.shape == (8,) and (out / "digits-00000.png").exists() and (out / "grid.png").exists()
    assert main(["project", "--ckpt", str(tmp_path / "run"), "builtin:digits", "--steps", "-1",
                 "--out", str(out)]) != 0
    assert "--steps must be >= 0" in capsys.readouterr().err


def test_project_without_an_encoder_searches_and_refuses_init_encoder(tmp_path, capsys):
    build_run(tiny_config("dcgan", "builtin:digits", steps=2), tmp_path / "d").fit()
    assert main(["project", "--ckpt", str(tmp_path / "d"), "--init", "encoder", "builtin:digits",
                 "--out", str(tmp_path / "p")]) != 0
    assert "has no encoder" in capsys.readouterr().err
    assert main(["project", "--ckpt", str(tmp_path / "d"), "builtin:digits", "--n", "2", "--steps", "3",
                 "--candidates", "8", "--out", str(tmp_path / "p")]) == 0
    assert json.loads((tmp_path / "p" / "projection.json").read_text())["init"] == "search"


def test_sefa_directions_are_the_right_singular_vectors_of_the_first_layer(tmp_path, capsys):
    from ganforge.artifacts import Sampler
    from ganforge.artifacts.projection import first_layer_weight, sefa_directions

    build_run(tiny_config("dcgan", "builtin:digits", steps=2), tmp_path / "d").fit()
    G = Sampler.from_checkpoint(tmp_path / "d").G
    dirs, values = sefa_directions(G)
    A = first_layer_weight(G)
    torch.testing.assert_close(values, torch.linalg.svdvals(A) ** 2, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dirs @ dirs.T, torch.eye(len(dirs)), atol=1e-5, rtol=0)
    # the first direction moves the first layer's output most: |A d0| = sqrt(lambda_0)
    assert float((A @ dirs[0]).norm()) == pytest.approx(float(values[0]) ** 0.5, rel=1e-4)
    out = tmp_path / "s.png"
    assert main(["edit", "--ckpt", str(tmp_path / "d"), "--direction", "sefa:0", "--n", "2", "--steps", "3",
                 "--out", str(out)]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["t"] == [-3.0, 0.0, 3.0] and info["eigenvalue"] == pytest.approx(float(values[0]), rel=1e-4)
    assert main(["edit", "--ckpt", str(tmp_path / "d"), "--direction", "up:1", "--out", str(out)]) != 0
    assert "class:A:B or sefa:K" in capsys.readouterr().err


def test_stylegan_projects_and_edits_in_w(tmp_path, capsys):
    """A style-based generator: w round-trips through from_w, SeFa's w directions are the eigenvectors of its
    stacked unit-row style affines, project writes a .w.npy that redraws its projection, and edit moves it."""
    from ganforge.artifacts import Sampler
    from ganforge.artifacts.projection import from_w, sefa_directions, style_based, style_weight, w_of

    build_run(tiny_config("stylegan", "builtin:digits", steps=2, model={"truncation": 0.7}), tmp_path / "s").fit()
    sampler = Sampler.from_checkpoint(tmp_path / "s")
    G = sampler.G
    assert style_based(G)
    z = sampler.latents(4, 0)
    with torch.no_grad():  # the sampler's images are drawn from w_of's truncated w
        torch.testing.assert_close(from_w(G)(w_of(G, z, sampler.default_truncation)), sampler.generate(4, z=z))
    A = style_weight(G)
    torch.testing.assert_close(A.norm(dim=1), torch.ones(len(A)))
    # by hand: the style affines of the synthesis layers (not toRGB), each row scaled to unit length
    from ganforge.nn.stylegan import ToRGB

    convs = [m.conv for m in G.synthesis.modules() if hasattr(m, "conv") and not isinstance(m, ToRGB)]
    hand = torch.cat([c.affine.weight.detach() for c in convs])
    torch.testing.assert_close(A, hand / hand.norm(dim=1, keepdim=True))
    assert len(A) == sum(c.weight.shape[1] for c in convs)  # one row per modulated input channel
    dirs, values = sefa_directions(G)
    assert dirs.shape == (8, 8) and bool((values[:-1] >= values[1:] - 1e-6).all())
    torch.testing.assert_close(dirs @ dirs.T, torch.eye(8), atol=1e-5, rtol=0)
    torch.testing.assert_close((A @ dirs[0]).pow(2).sum(), values[0], atol=1e-4, rtol=1e-4)
    v = torch.nn.functional.normalize(torch.randn(20, 8), dim=1)  # no unit direction moves the styles more
    assert float((A @ v.T).pow(2).sum(0).max()) <= float(values[0]) + 1e-4

    out = tmp_path / "proj"
    assert main(["project", "--ckpt", str(tmp_path / "s"), "builtin:digits", "--n", "2", "--steps", "5",
                 "--candidates", "8", "--out", str(out)]) == 0
    info = json.loads((out / "projection.json").read_text())
    assert info["space"] == "w" and info["loss_end"] <= info["loss_start"]
    w = torch.from_numpy(np.load(out / "digits-00000.w.npy"))[None]
    assert w.shape == (1, 8)
    with torch.no_grad():  # the saved w redraws the written projection (to 8-bit rounding)
        img = from_w(G)(w)[0]
    png = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out / "digits-00000.png"), dtype=np.float32)
    np.testing.assert_allclose(png.reshape(img.shape[1:]) / 127.5 - 1, img[0].numpy(), atol=1.5 / 127.5)

    strip = tmp_path / "e.png"
    assert main(["edit", "--ckpt", str(tmp_path / "s"), "--direction", "sefa:0", "--latent",
                 str(out / "digits-00000.w.npy"), "--steps", "3", "--out", str(strip)]) == 0
    assert json.loads(strip.with_suffix(".json").read_text())["space"] == "w"
    assert main(["edit", "--ckpt", str(tmp_path / "s"), "--direction", "sefa:0", "--space", "z",
                 "--out", str(strip)]) != 0
    assert "live in w" in capsys.readouterr().err
