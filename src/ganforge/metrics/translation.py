"""Metrics for image-to-image translation and super-resolution (pix2pix, cyclegan, stargan, srgan).

Every function takes images (N, C, H, W) as float tensors in [-1, 1] (what generators output and
`TensorData.to_float` gives) and returns plain Python floats (dicts of floats for the set metrics).

- Paired fidelity: `l1` (in [-1, 1] units, the pix2pix L1 term), `psnr` and `ssim` (on [0, 1] images,
  data range 1, as image-restoration papers such as SRGAN report them).
- Realism: `translation_fid` = FID and KID of the translations against real images of the target domain.
- Domain: `domain_accuracy` = how often a classifier puts a translation in its target class.
- Two-way families: `cycle_error` = L1 between x and its round trip F(G(x)) (Zhu et al., 2017).

PSNR and SSIM clamp inputs to [-1, 1] first, as saving the images as PNGs would.
`evaluate_translation` measures a whole test split; its metric names, directions and descriptions are
the registry.METRICS entries measured on "translation".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.builtin import FASHION_CLASSES
from .base import MetricResult, Provenance
from .evaluate import data_sha256
from .fid import fid
from .kid import kid
from .registry import METRICS, metric_names, parse_metrics

if TYPE_CHECKING:  # pragma: no cover
    from .features import Extractor

PSNR_MAX_DB = 100.0   # identical images: PSNR is +inf; we report this cap (an MSE of 1e-10) instead
SSIM_WINDOW = 11      # Wang et al. (2004): 11x11 circular-symmetric Gaussian, sigma 1.5
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _check_pair(a: Tensor, b: Tensor, what: str) -> tuple[Tensor, Tensor]:
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{what} takes two image tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.dim() != 4 or a.shape != b.shape:
        raise ValueError(f"{what} compares images of one shape (N, C, H, W); got {tuple(a.shape)} and "
                         f"{tuple(b.shape)} (resize the outputs to the targets' size first)")
    if not a.is_floating_point() or not b.is_floating_point():
        raise TypeError(f"{what} takes float images in [-1, 1]; convert uint8 pixels with x / 127.5 - 1")
    if a.shape[0] == 0:
        raise ValueError(f"{what} needs at least one image pair, got none")
    return a.detach().to("cpu", torch.float64), b.detach().to("cpu", torch.float64)


def _unit(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def l1(a: Tensor, b: Tensor) -> float:
    """Mean absolute error over every pixel and channel, in [-1, 1] units (2x the error in [0, 1] units)."""
    a, b = _check_pair(a, b, "l1")
    return float((a - b).abs().mean())


def cycle_error(x: Tensor, x_rec: Tensor) -> float:
    """Cycle-consistency error ||F(G(x)) - x||_1 (Zhu et al., 2017), as a mean over pixels in [-1, 1] units."""
    return l1(x, x_rec)


def psnr_per_image(a: Tensor, b: Tensor) -> Tensor:
    """(N,) float64 PSNR in dB of each pair on [0, 1] images: 10 log10(1 / MSE), capped at PSNR_MAX_DB."""
    a, b = _check_pair(a, b, "psnr")
    mse = (_unit(a) - _unit(b)).pow(2).flatten(1).mean(1)
    return (10.0 * torch.log10(1.0 / mse.clamp_min(10.0 ** (-PSNR_MAX_DB / 10.0))))


def psnr(a: Tensor, b: Tensor) -> float:
    """Peak signal-to-noise ratio in dB (data range 1 on [0, 1] images), averaged over the images.

    Each image's PSNR is computed from its own MSE and then averaged (as SR papers report it); an
    identical pair counts as PSNR_MAX_DB (100 dB) rather than +inf, so the mean stays finite.
    """
    return float(psnr_per_image(a, b).mean())


def gaussian_window(size: int, sigma: float = SSIM_SIGMA) -> Tensor:
    """(size, size) float64 Gaussian weights summing to 1."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(r ** 2) / (2.0 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim_window_size(height: int, width: int) -> int:
    """11, or the largest odd size that fits an image smaller than 11 px (at least 1)."""
    fit = min(SSIM_WINDOW, height, width)
    return fit if fit % 2 == 1 else fit - 1


def ssim_per_image(a: Tensor, b: Tensor) -> Tensor:
    """(N,) float64 SSIM of each pair: the SSIM map averaged over positions and channels. See `ssim`."""
    a, b = _check_pair(a, b, "ssim")
    x, y = _unit(a), _unit(b)
    n, c, h, w = x.shape
    size = ssim_window_size(h, w)
    win = gaussian_window(size).expand(c, 1, size, size).contiguous()

    def filt(t: Tensor) -> Tensor:  # per-channel weighted mean over each 'valid' window position
        return F.conv2d(t, win, groups=c)

    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x ** 2
    var_y = filt(y * y) - mu_y ** 2
    cov = filt(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * 1.0) ** 2, (SSIM_K2 * 1.0) ** 2  # data range L = 1
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1)


def ssim(a: Tensor, b: Tensor) -> float:
    """Structural similarity (Wang, Bovik, Sheikh & Simoncelli, 2004), averaged over the images.

    As in the paper: images mapped to [0, 1] (data range L = 1), an 11x11 Gaussian window with sigma 1.5,
    K1 = 0.01, K2 = 0.03, local statistics at every position where the window fits inside the image
    ('valid', no padding), computed per channel; the map is averaged over positions and channels, then
    over images. Images smaller than 11 px on a side use the largest odd window that fits (7x7 for a
    7x7 image; sigma stays 1.5), so values on such images are not comparable with 11x11 ones.
    1 for identical images; negative when structure is inverted (e.g. x against -x).
    """
    return float(ssim_per_image(a, b).mean())


# ---- set metrics through a feature extractor ---------------------------------------------------------

def translation_fid(fake: Tensor, real_target: Tensor, extractor: Extractor, n_subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """FID and KID of translations `fake` against real images of the target domain `real_target`.

    `extractor` is a metrics.features.Extractor (e.g. features.fashion()); it clamps, converts channels
    (RGB -> grey by BT.601 luma, grey -> RGB by repetition) and resizes both sets to its input size, so
    fake and real may differ in size and channel count. Returns {"fid", "kid", "kid_std", "n_fake",
    "n_real"}; KID averages `n_subsets` subsets of min(subset_size, n_fake, n_real) rows.
    When both sets have at most `subset_size` images, every subset is the whole sets, so KID is computed
    once (kid_std 0). Both sets need >= 2 images; FID warns when there are fewer images than feature dims.
    """
    if fake.dim() != 4 or real_target.dim() != 4:
        raise ValueError(f"translation_fid takes image batches (N, C, H, W); got {tuple(fake.shape)} and "
                         f"{tuple(real_target.shape)}")
    if len(fake) < 2 or len(real_target) < 2:
        raise ValueError(f"translation_fid needs at least 2 translated and 2 real images, got {len(fake)} and "
                         f"{len(real_target)}; evaluate on more test images")
    fake_feats = extractor.features(fake)
    real_feats = extractor.features(real_target)
    m = min(subset_size, len(fake_feats), len(real_feats))
    if m == len(fake_feats) == len(real_feats):  # every "subset" would be both whole sets: one is enough
        n_subsets = 1
    k = kid(real_feats, fake_feats, n_subsets=n_subsets, subset_size=m, seed=seed)
    return {"fid": fid(real_feats, fake_feats), "kid": k["mean"], "kid_std": k["std"],
            "n_fake": float(len(fake)), "n_real": float(len(real_target))}


def _target_labels(target_labels: Any, n: int) -> Tensor:
    t = torch.as_tensor(target_labels).long().flatten().cpu()
    if t.numel() == 1 and n != 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"domain_accuracy needs one target class per image: {n} images, {t.numel()} labels")
    return t


def _predicted(images: Tensor, extractor: Extractor) -> Tensor:
    if not extractor.is_classifier:
        raise ValueError(f"domain accuracy needs a classifier extractor (e.g. features.fashion()), "
                         f"not {extractor.name!r}")
    return extractor.logits(images).argmax(dim=1).cpu()


def domain_accuracy(images: Tensor, target_labels: Any, extractor: Extractor) -> float:
    """Fraction of `images` whose top classifier logit is their target class (an int, or one per image).

    `extractor` is a classifier Extractor (features.fashion(): the 10 Fashion-MNIST classes; map domain
    names to its classes with `class_indices`). A translation that lands in its target domain counts.
    """
    if len(images) == 0:
        raise ValueError("domain_accuracy needs at least one image")
    target = _target_labels(target_labels, len(images))
    return float((_predicted(images, extractor) == target).double().mean())


def domain_accuracy_per_class(images: Tensor, target_labels: Any, extractor: Extractor) -> dict[int, float]:
    """{target class: accuracy over the images aimed at it}, for each class that occurs in target_labels."""
    if len(images) == 0:
        raise ValueError("domain_accuracy_per_class needs at least one image")
    target = _target_labels(target_labels, len(images))
    hit = (_predicted(images, extractor) == target).double()
    return {int(k): float(hit[target == k].mean()) for k in target.unique().tolist()}


def _norm_name(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def class_indices(names: Sequence[str], class_names: Sequence[str] = FASHION_CLASSES) -> list[int] | None:
    """Indices of domain `names` among a classifier's `class_names` (case, '_' and '-' ignored; a trailing
    plural 's' tolerated: "ankle_boots" -> "ankle boot"), or None when any name has no match."""
    lookup = {_norm_name(c): i for i, c in enumerate(class_names)}
    out = []
    for name in names:
        key = _norm_name(name)
        idx = lookup.get(key, lookup.get(key[:-1]) if key.endswith("s") else None)
        if idx is None:
            return None
        out.append(idx)
    return out


# ---- a whole evaluation: the test split of a translation run -----------------------------------------

Translate = Callable[..., Tensor]  # translate(x, direction, domain) -> images in [-1, 1]


def _subset(n_total: int, n: int, seed: int) -> Tensor:
    if n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def trivial_translation(xa: Tensor, shape_b: tuple[int, ...]) -> tuple[str, Tensor] | None:
    """The no-model answer for paired data: ("identity", A as B) or ("bicubic", A upsampled), or None.

    Same size: A itself, a grey A repeated over B's channels. A smaller than B by a whole factor (super-
    resolution): A's bicubic upsampling, clamped to [-1, 1]. evaluate reports l1/psnr of this answer as
    l1_identity / psnr_identity or l1_bicubic / psnr_bicubic, so a model's figure can be read against it.
    """
    c_b, h_b, w_b = shape_b
    c_a, h_a, w_a = xa.shape[1:]
    if c_a != c_b and c_a != 1:
        return None
    x = xa.float()
    if c_a != c_b:
        x = x.expand(-1, c_b, -1, -1)
    if (h_a, w_a) == (h_b, w_b):
        return "identity", x
    if h_b % h_a == 0 and w_b % w_a == 0 and h_b // h_a == w_b // w_a > 1:
        return "bicubic", F.interpolate(x, size=(h_b, w_b), mode="bicubic", align_corners=False).clamp(-1, 1)
    return None


def _mapped(names: Sequence[str], classifier: Extractor | None) -> list[int] | None:
    return class_indices(names) if classifier is not None and names else None


def evaluate_translation(translate: Translate, data: Any, *, directions: Sequence[str] = ("AtoB",),
                         n: int = 10000, extractor: Extractor | None = None, classifier: Extractor | None = None,
                         seed: int = 0, reference: str = "",
                         metrics: Sequence[str] | None = None) -> dict[str, MetricResult]:
    """Every translation metric that applies to `data` (a TensorData test split), one MetricResult each.

    `translate(x, direction, domain)` maps images in [-1, 1] (Sampler.translate). Two-domain data
    (spec.pairing set): n seeded A images are translated AtoB; paired data gives l1/psnr/ssim against
    their B; fid/kid compare with n real B images (`extractor`; skipped when None); domain_accuracy needs
    the target domain's name among the Fashion-MNIST classes (`classifier`, features.fashion()); labels
    y of A mapped to those classes give class_accuracy; a "BtoA" direction adds the reverse-direction
    values and the cycle error of both round trips. class_accuracy is measured only when domain B is not
    itself a class (edges -> items): a sneaker -> ankle boot model must change the class.
    Labelled data (stargan): image i goes to one other domain, (y + 1 + i mod (K - 1)) mod K; fid/kid
    against n real images of all domains; the cycle goes back to the source domain. `metrics`: names
    from METRICS measured on image-to-image runs (default: all of them, in registry order); those that
    do not apply here (see each entry's `needs`) are left out of the result.
    """
    metrics = parse_metrics(metrics, "translation") if metrics is not None else metric_names("translation")
    spec = data.spec
    idx = _subset(int(data.x.shape[0]), n, seed)
    xa = data.to_float(data.x[idx])
    sha = data_sha256(data, idx)
    out: dict[str, MetricResult] = {}
    values: dict[str, dict[str, float]] = {m: {} for m in metrics}
    counts: dict[str, tuple[int, int]] = {}

    def put(metric: str, key: str, value: float, n_real: int, n_fake: int) -> None:
        if metric in values:
            values[metric][key] = float(value)
            counts.setdefault(metric, (n_real, n_fake))

    def realism(fake: Tensor, real: Tensor, suffix: str) -> None:
        if extractor is not None and ("fid" in values or "kid" in values):
            r = translation_fid(fake, real, extractor, seed=seed)
            put("fid", "fid" + suffix, r["fid"], len(real), len(fake))
            put("kid", "kid" + suffix, r["kid"], len(real), len(fake))
            put("kid", "kid_std" + suffix, r["kid_std"], len(real), len(fake))

    def accuracy(metric: str, images: Tensor, target: Tensor, names: Sequence[str], suffix: str) -> None:
        mapped = _mapped(names, classifier)
        if mapped is None or metric not in values:
            return
        target_cls = torch.tensor(mapped)[target.long()]
        put(metric, metric + suffix, domain_accuracy(images, target_cls, classifier), len(images), len(images))
        if metric == "domain_accuracy" and len(names) > 1:  # stargan: one value per target domain
            for k, acc in domain_accuracy_per_class(images, target_cls, classifier).items():
                put(metric, f"{metric}{suffix}_{FASHION_CLASSES[k]}", acc, len(images), len(images))

    if spec.pairing:
        fake_b = translate(xa, "AtoB", None)
        if spec.pairing == "paired":
            xb = data.to_float(data.x_b[idx])
            if tuple(fake_b.shape) != tuple(xb.shape):
                raise ValueError(f"translations have shape {tuple(fake_b.shape[1:])} but the targets "
                                 f"{tuple(xb.shape[1:])}: evaluate on the data the model was trained on")
            for metric, fn in (("l1", l1), ("psnr", psnr), ("ssim", ssim)):
                put(metric, metric, fn(fake_b, xb), len(xb), len(fake_b))
            base = trivial_translation(xa, tuple(xb.shape[1:]))
            if base is not None:  # what a model must beat: the input itself, or its bicubic upsampling
                name, guess = base
                for metric, fn in (("l1", l1), ("psnr", psnr)):
                    put(metric, f"{metric}_{name}", fn(guess, xb), len(xb), len(guess))
        idx_b = _subset(int(data.x_b.shape[0]), n, seed + 1)
        real_b = data.to_float(data.x_b[idx_b])
        realism(fake_b, real_b, "")
        names = spec.domains or ("A", "B")
        accuracy("domain_accuracy", fake_b, torch.zeros(len(fake_b), dtype=torch.long), names[1:2], "")
        if data.y is not None and spec.class_names and _mapped(names[1:2], classifier) is None:
            # B is not one class (edges -> items): the item's class should survive the translation
            accuracy("class_accuracy", fake_b, data.y[idx], spec.class_names, "")
        if "BtoA" in directions:
            fake_a = translate(real_b, "BtoA", None)
            realism(fake_a, xa, "_BtoA")
            accuracy("domain_accuracy", fake_a, torch.zeros(len(fake_a), dtype=torch.long), names[:1], "_BtoA")
            if "cycle" in values:
                cyc_a = cycle_error(xa, translate(fake_b, "BtoA", None))
                cyc_b = cycle_error(real_b, translate(fake_a, "AtoB", None))
                put("cycle", "cycle_l1_A", cyc_a, len(xa), len(xa))
                put("cycle", "cycle_l1_B", cyc_b, len(real_b), len(real_b))
                put("cycle", "cycle", (cyc_a + cyc_b) / 2, len(xa) + len(real_b), len(xa) + len(real_b))
    else:
        k = spec.n_classes
        if data.y is None or k < 2:
            raise ValueError(f"'{spec.name}' is neither two-domain nor labelled with >= 2 domains: nothing to translate")
        y = data.y[idx].long()
        target = (y + 1 + torch.arange(len(y)) % (k - 1)) % k
        fake = translate(xa, "AtoB", target)
        realism(fake, data.to_float(data.x[_subset(int(data.x.shape[0]), n, seed + 1)]), "")
        accuracy("domain_accuracy", fake, target, spec.class_names, "")
        if "cycle" in values:
            put("cycle", "cycle", cycle_error(xa, translate(fake, "AtoB", y)), len(xa), len(xa))

    for metric, vals in values.items():
        if not vals:
            continue
        info = METRICS[metric]
        ext = extractor if "features" in info.needs else classifier if "classifier" in info.needs else None
        prov = Provenance(**(ext.provenance() if ext is not None else {"extractor": "none", "resize": "none"}),
                          seed=seed, reference=reference or data.source, reference_sha256=sha)
        prov.n_real, prov.n_fake = counts[metric]
        prov.extra = {**prov.extra, "description": info.describe("translation")}
        out[metric] = MetricResult(metric, vals, info.higher_is_better, prov)
    return out
