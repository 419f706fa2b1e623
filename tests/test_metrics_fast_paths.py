"""The evaluation fast paths against plain references: tiled k-NN / ball tests vs brute-force torch.cdist,
the fused KID kernel vs its formula, and batch-size / inference-mode invariance of sampling and features."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.artifacts import Sampler
from ganforge.metrics import density_coverage, features, precision_recall
from ganforge.metrics.kid import polynomial_kernel
from ganforge.metrics.prdc import knn_radii, knn_sq_radii, prdc
from ganforge.train import build_run

from .conftest import tiny_config


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _reference_sq_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k) squared distances to the 1st..k-th nearest other row, from the full cdist matrix."""
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    return d.topk(k, dim=1, largest=False).values.square()


def _reference_prdc(x: torch.Tensor, y: torch.Tensor, k_pr: int, k_dc: int, exact: bool) -> dict[str, float]:
    """The definitions on full distance matrices. exact: integer points, whose squared distances float64
    holds exactly (no rounding at all, so points on a ball's boundary are decided exactly)."""
    if exact:
        def sq(a, b):
            return (a[:, None, :] - b[None, :, :]).square().sum(-1)
    else:
        def sq(a, b):
            return torch.cdist(a, b).square()
    xx, yy, yx = sq(x, x), sq(y, y), sq(y, x)            # yx: (fake, real)
    xx.fill_diagonal_(float("inf"))
    yy.fill_diagonal_(float("inf"))
    r_pr = xx.kthvalue(k_pr, dim=1).values                 # squared k-NN radii of the real balls
    r_dc = xx.kthvalue(k_dc, dim=1).values
    f_pr = yy.kthvalue(k_pr, dim=1).values                 # ... and of the fake balls
    return {"precision": float((yx <= r_pr[None, :]).any(1).double().mean()),
            "recall": float((yx <= f_pr[:, None]).any(0).double().mean()),
            "density": float((yx <= r_dc[None, :]).sum().double() / (k_dc * len(y))),
            "coverage": float((yx <= r_dc[None, :]).any(0).double().mean())}


@pytest.mark.parametrize("tile", [64, 100, 1024])
def test_knn_radii_match_brute_force_cdist(tile):
    x = torch.randn(700, 16, dtype=torch.float64, generator=_gen(1)) * 3 + 1
    x[5] = x[9]                                            # a duplicate: a 0 distance must survive as 0
    for k in (1, 3, 5):
        torch.testing.assert_close(knn_sq_radii(x, k, tile=tile), _reference_sq_radii(x, k), rtol=1e-10, atol=1e-10)
    assert float(knn_sq_radii(x, 1, tile=tile)[5, 0]) == 0.0
    torch.testing.assert_close(knn_radii(x.float(), 3, tile=tile), _reference_sq_radii(x, 3)[:, 2].sqrt(),
                               rtol=1e-6, atol=1e-6)   # float32 input: converted to float64 first


def test_prdc_matches_the_brute_force_definitions_across_tiles():
    """More than one 1024-tile each way, unequal set sizes, a partial last tile, and k up to 5."""
    g = _gen(2)
    real = torch.randn(2300, 12, dtype=torch.float64, generator=g)
    fake = torch.randn(1500, 12, dtype=torch.float64, generator=g) * 1.2 + 0.3
    ref = _reference_prdc(real, fake, 3, 5, exact=False)
    assert precision_recall(real, fake, k=3) == {k: ref[k] for k in ("precision", "recall")}
    assert density_coverage(real, fake, k=5) == {k: ref[k] for k in ("density", "coverage")}
    assert prdc(real, fake, k_pr=3, k_dc=5) == ref
    assert 0.2 < ref["precision"] < 0.99 and 0.2 < ref["recall"] < 0.99    # neither trivial nor empty


def test_prdc_decides_points_on_ball_boundaries_as_inside():
    """Integer lattice points, scaled by 0.1 and shifted: many exact ties and shared points, so many queries
    sit exactly on a ball's boundary. Which ones do is decided exactly on the integer points (float64 holds
    their squared distances exactly); the scaled copies' distances and radii are rounded, each summed in
    its own order, and the closed-ball slack must still give the exact answer. (Without the slack, and with
    the cdist code before it, some boundary points came out as outside.)"""
    g = _gen(3)
    lattice_real = torch.randint(-4, 5, (1300, 8), generator=g).double()
    lattice_fake = torch.cat([lattice_real[:400], torch.randint(-5, 6, (900, 8), generator=g).double()])
    shift = torch.randn(8, dtype=torch.float64, generator=g) * 5
    real, fake = lattice_real * 0.1 + shift, lattice_fake * 0.1 + shift
    for k_pr, k_dc in ((1, 1), (3, 5), (4, 2)):
        assert prdc(real, fake, k_pr=k_pr, k_dc=k_dc) == _reference_prdc(lattice_real, lattice_fake, k_pr, k_dc,
                                                                          exact=True)
    same = prdc(real[:600], real[:600])
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0


def test_polynomial_kernel_matches_its_formula():
    x = torch.randn(40, 7, dtype=torch.float64, generator=_gen(4))
    y = torch.randn(30, 7, dtype=torch.float64, generator=_gen(5))
    torch.testing.assert_close(polynomial_kernel(x, y), (x @ y.T / 7 + 1) ** 3, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(polynomial_kernel(x, y, degree=2, gamma=0.5, coef0=-1.0), (0.5 * x @ y.T - 1) ** 2,
                               rtol=1e-13, atol=1e-13)


def _usable_outside_inference_mode(t: torch.Tensor) -> None:
    """An inference tensor could neither be changed in place nor be saved for backward here."""
    assert not t.is_inference()
    w = torch.ones_like(t, requires_grad=True)
    F.mse_loss(w * 2, t).backward()                        # saves t for backward
    t.mul_(1.0)


def test_sampler_batch_size_does_not_change_samples_and_they_are_ordinary_tensors(tmp_path):
    build_run(tiny_config("dcgan", "builtin:digits", steps=2), tmp_path / "run").fit()
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    x = sampler.generate(37, seed=3)
    torch.testing.assert_close(sampler.generate(37, seed=3, batch=5), x, rtol=1e-6, atol=1e-6)
    _usable_outside_inference_mode(x)


def test_extractor_features_do_not_depend_on_the_batch_and_are_ordinary_tensors():
    ext = features.fashion()
    x = torch.rand(70, 1, 28, 28, generator=_gen(6)) * 2 - 1
    feats, logits = ext.features_and_logits(x)
    ext.batch_size = 16
    feats_16, logits_16 = ext.features_and_logits(x)
    # eval mode: the same function of each image; oneDNN may pick another conv kernel for small batches,
    # so equal up to float32 rounding
    torch.testing.assert_close(feats_16, feats, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits_16, logits, rtol=1e-5, atol=1e-5)
    _usable_outside_inference_mode(feats)
