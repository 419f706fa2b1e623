"""Translation metrics: closed forms, an independent slow SSIM, stub classifiers, the shipped extractor."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.metrics import translation as tm


def _images(n=3, c=2, h=14, w=13, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_l1_closed_form():
    a = torch.zeros(2, 1, 4, 4)
    b = a.clone()
    b[0] = 0.5       # half the images off by 0.5
    b[1, :, :2] = -1.0  # half of the other image off by 1
    assert tm.l1(a, b) == pytest.approx((0.5 * 16 + 1.0 * 8) / 32)
    assert tm.cycle_error(a, b) == pytest.approx(tm.l1(a, b))
    assert tm.l1(a, a) == 0.0


def test_psnr_constant_offset_and_identity():
    x = _images() * 0.5  # in [-0.5, 0.5], so +0.2 stays inside [-1, 1]
    # offset 0.2 in [-1, 1] is 0.1 in [0, 1]: MSE 0.01, PSNR = 10 log10(1 / 0.01) = 20 dB
    assert tm.psnr(x, x + 0.2) == pytest.approx(20.0, abs=1e-5)  # float32 rounding of x + 0.2
    per = tm.psnr_per_image(x, x + torch.tensor([0.2, 0.02, 2e-3]).view(3, 1, 1, 1))
    torch.testing.assert_close(per, torch.tensor([20.0, 40.0, 60.0], dtype=torch.float64), atol=1e-3, rtol=0)
    assert tm.psnr(x, x) == pytest.approx(tm.PSNR_MAX_DB)  # finite, never inf
    # averaged per image: one identical pair (100 dB) and one at 20 dB -> 60
    y = x[:2].clone()
    y[1] += 0.2
    assert tm.psnr(x[:2], y) == pytest.approx(60.0)


def _slow_ssim(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> float:
    """Wang et al. (2004) written out position by position, float64, for reference."""
    x, y = ((a.double() + 1) / 2).clamp(0, 1), ((b.double() + 1) / 2).clamp(0, 1)
    r = [i - (size - 1) / 2 for i in range(size)]
    g = [[math.exp(-(u * u + v * v) / (2 * sigma * sigma)) for v in r] for u in r]
    total = sum(map(sum, g))
    w = torch.tensor(g, dtype=torch.float64) / total
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    per_image = []
    for n in range(x.shape[0]):
        vals = []
        for c in range(x.shape[1]):
            for i in range(x.shape[2] - size + 1):
                for j in range(x.shape[3] - size + 1):
                    px, py = x[n, c, i:i + size, j:j + size], y[n, c, i:i + size, j:j + size]
                    mx, my = (w * px).sum(), (w * py).sum()
                    vx = (w * (px - mx) ** 2).sum()
                    vy = (w * (py - my) ** 2).sum()
                    cxy = (w * (px - mx) * (py - my)).sum()
                    vals.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
        per_image.append(sum(vals) / len(vals))
    return float(sum(per_image) / len(per_image))


def test_ssim_matches_slow_reference():
    x = _images(seed=1)
    y = (x + 0.3 * _images(seed=2)).clamp(-1, 1)
    assert tm.ssim(x, y) == pytest.approx(_slow_ssim(x, y), abs=1e-10)


def test_ssim_small_images_use_a_window_that_fits():
    x, y = _images(2, 1, 7, 7, seed=3), _images(2, 1, 7, 7, seed=4)
    assert tm.ssim_window_size(7, 7) == 7 and tm.ssim_window_size(8, 28) == 7 and tm.ssim_window_size(28, 28) == 11
    assert tm.ssim(x, y) == pytest.approx(_slow_ssim(x, y, size=7), abs=1e-10)


def test_ssim_identity_and_inversion():
    x = _images(seed=5)
    assert tm.ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    assert tm.ssim(x, -x) < 0
    noisy = (x + 0.5 * _images(seed=6)).clamp(-1, 1)
    assert tm.ssim(x, noisy) < tm.ssim(x, (x + 0.1 * _images(seed=6)).clamp(-1, 1)) < 1.0


def test_pair_metrics_refuse_bad_input():
    with pytest.raises(ValueError, match="one shape"):
        tm.psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 8, 8))
    with pytest.raises(TypeError, match="127.5"):
        tm.l1(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.zeros(1, 1, 4, 4, dtype=torch.uint8))


class StubClassifier:
    """An 'extractor' whose logits are given by hand: image i gets logits[i] (read from pixel 0)."""

    is_classifier = True
    name = "stub"

    def __init__(self, logits: torch.Tensor) -> None:
        self.table = logits

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x[:, 0, 0, 0].long()]


def test_domain_accuracy_on_hand_made_logits():
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0], [0, 5.0, 1.0]])
    images = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 2, 2)  # pixel value = row of the table
    target = torch.tensor([0, 1, 1, 2, 1])  # predictions 0, 1, 2, 0, 1 -> hits at 0, 1, 4
    ext = StubClassifier(logits)
    assert tm.domain_accuracy(images, target, ext) == pytest.approx(3 / 5)
    assert tm.domain_accuracy_per_class(images, target, ext) == {0: 1.0, 1: pytest.approx(2 / 3), 2: 0.0}
    assert tm.domain_accuracy(images[:3], 1, ext) == pytest.approx(1 / 3)  # one target for all
    with pytest.raises(ValueError, match="one target class per image"):
        tm.domain_accuracy(images, torch.tensor([0, 1]), ext)


def test_class_indices_match_fashion_names():
    assert tm.class_indices(["sneaker", "Ankle_Boot"]) == [7, 9]
    assert tm.class_indices(("sandals", "ankle-boots")) == [5, 9]
    assert tm.class_indices(["t-shirt/top"]) == [0]
    assert tm.class_indices(["edges", "items"]) is None


def test_translation_fid_with_the_fashion_extractor():
    from ganforge.data.builtin import fashion_mnist
    from ganforge.metrics.features import fashion

    try:
        data = fashion_mnist(split="test")
    except (FileNotFoundError, OSError) as e:  # no Debian package and offline
        pytest.skip(f"Fashion-MNIST not available: {e}")
    ext = fashion()
    y = data.y
    boots = data.to_float(data.x[y == 9][:150])
    more_boots = data.to_float(data.x[y == 9][150:300])
    bags = data.to_float(data.x[y == 8][:150])
    same = tm.translation_fid(more_boots, boots, ext, n_subsets=10)
    other = tm.translation_fid(bags, boots, ext, n_subsets=10)
    assert set(same) >= {"fid", "kid"} and same["n_fake"] == 150
    assert same["fid"] < other["fid"] and same["kid"] < other["kid"]
    # channels and size adapt: RGB 56x56 copies of the boots score like the boots themselves
    rgb = torch.nn.functional.interpolate(more_boots, scale_factor=2, mode="nearest").expand(-1, 3, -1, -1)
    assert tm.translation_fid(rgb, boots, ext, n_subsets=10)["fid"] < other["fid"]
    assert tm.domain_accuracy(boots, 9, ext) > 0.9


def test_trivial_translation_is_the_input_or_its_bicubic_upsampling():
    """The no-model baseline evaluate reports: grey A repeated over B's colour channels, or A upsampled."""
    torch.manual_seed(0)
    grey = torch.rand(4, 1, 8, 8) * 2 - 1
    name, guess = tm.trivial_translation(grey, (3, 8, 8))
    assert name == "identity" and guess.shape == (4, 3, 8, 8)
    for c in range(3):
        torch.testing.assert_close(guess[:, c:c + 1], grey)
    # a constant image upsampled bicubically stays that constant (the kernel's weights sum to 1)
    flat = torch.full((2, 3, 4, 4), 0.25)
    name, up = tm.trivial_translation(flat, (3, 16, 16))
    assert name == "bicubic" and up.shape == (2, 3, 16, 16)
    torch.testing.assert_close(up, torch.full((2, 3, 16, 16), 0.25))
    assert tm.psnr(up, torch.full((2, 3, 16, 16), 0.25)) == pytest.approx(tm.PSNR_MAX_DB)
    # no trivial answer: channel counts that cannot be matched, or a size that is not a whole factor
    assert tm.trivial_translation(torch.zeros(1, 3, 8, 8), (1, 8, 8)) is None
    assert tm.trivial_translation(torch.zeros(1, 3, 8, 8), (3, 12, 12)) is None
