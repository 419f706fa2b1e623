"""R-precision (metrics/rprecision.py): exact values on constructed embeddings, chance on random ones, the
contrastive loss against its closed form, and a fit that learns a toy image-caption pairing."""

import math

import pytest
import torch

from ganforge.metrics.rprecision import contrastive_loss, fit_retrieval, r_precision


def test_perfect_and_half_retrieval_exact():
    n = 10
    text = torch.eye(n)  # orthogonal captions
    assert r_precision(text.clone(), text, candidates=n, repeats=3)["r_precision"] == 1.0
    # images 5..9 look like the NEXT image's caption: they rank another caption first whenever it is a candidate,
    # and with candidates = n every caption is one
    img = text.clone()
    img[5:] = text[[6, 7, 8, 9, 0]]
    r = r_precision(img, text, candidates=n, repeats=3)
    assert r["r_precision"] == 0.5 and r["std"] == 0.0 and r["chance"] == pytest.approx(0.1)


def test_random_embeddings_sit_at_chance():
    g = torch.Generator().manual_seed(0)
    n, candidates, repeats = 400, 20, 10
    r = r_precision(torch.randn(n, 64, generator=g), torch.randn(n, 64, generator=g), candidates=candidates,
                    repeats=repeats)
    p = 1 / candidates
    assert abs(r["r_precision"] - p) < 4 * math.sqrt(p * (1 - p) / (n * repeats))


def test_owner_maps_several_captions_per_image():
    # 6 images, 2 captions each (rows 2i, 2i+1); image i equals its own second caption: with owner= the image's
    # own caption is its first row (orthogonal to the image) -> it never ranks first
    text = torch.eye(12)
    owner = torch.arange(12) // 2
    img = text[1::2].clone()
    assert r_precision(img, text, owner=owner, candidates=6, repeats=2)["r_precision"] == 0.0
    assert r_precision(text[0::2].clone(), text, owner=owner, candidates=6, repeats=2)["r_precision"] == 1.0


def test_too_few_images_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 100 images"):
        r_precision(torch.randn(50, 8), torch.randn(50, 8))
    with pytest.raises(ValueError, match="owner="):
        r_precision(torch.randn(5, 8), torch.randn(7, 8), candidates=5)


def test_contrastive_loss_closed_form():
    # orthonormal pairs: diagonal cosine 1, off-diagonal 0 -> each cross-entropy is
    # -log(e^(1/T) / (e^(1/T) + n - 1)), and the loss averages two equal ones
    n, t = 8, 0.5
    e = torch.eye(n)
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + n - 1))
    assert float(contrastive_loss(e, e, temperature=t)) == pytest.approx(expected, rel=1e-5)


def test_fit_learns_a_toy_pairing():
    # 120 captions, each a random embedding; its image is a 16x16 colour field whose RGB is a fixed linear map of the
    # caption: the fitted space retrieves captions far above chance (1 in 20)
    g = torch.Generator().manual_seed(1)
    n = 120
    text = torch.randn(n, 16, generator=g)
    rgb = torch.tanh(text[:, :3])
    images = rgb[:, :, None, None].expand(n, 3, 16, 16).contiguous()
    model, report = fit_retrieval(images, text, torch.arange(n)[:, None], steps=150, batch=60, dim=32, width=8,
                                  shift=0)
    with torch.no_grad():
        r = r_precision(model.image(images), model.text(text), candidates=20, repeats=2)
    assert report.steps == 150 and r["r_precision"] >= 0.5
