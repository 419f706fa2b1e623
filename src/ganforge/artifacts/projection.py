"""Latent tools: projecting real images into a generator (GAN inversion) and class directions (vector arithmetic).

Projection (Zhu et al. 2016, "Generative Visual Manipulation on the Natural Image Manifold"): find the latent z
whose image G(z) is closest to a target image by gradient descent on z, the generator frozen. The loss per image is
    mean((G(z) - x)^2) + feature_weight * mean((f(G(z)) - f(x))^2) + prior_weight * mean(z^2)
with f a feature network (a perceptual loss; the run's `fashion`, `clipart` or `inception` extractor) and the last
term keeping z where the prior N(0, I) puts its mass. The start is the encoder's answer when the model has one
(`init="encoder"`: ae, vae, aae, vaegan; Zhu et al. also start from an encoder), else the best of `candidates`
random latents (`init="search"`), or z = 0 (`init="zero"`). Each image keeps the best latent seen, so the result
is never worse than the start.

Vector arithmetic (Radford et al. 2015): the mean latent of the samples a classifier puts in class B, minus the
mean latent of those in class A, is a direction that moves a sample of A towards B (`class_means`).

Style-based generators (stylegan) are edited and projected in w, the mapping network's output, where their
latent space is disentangled (Karras et al. 2019): `style_based(G)`, `w_of` (z -> w, with the generator's
truncation), `from_w` (w -> image, the same w at every layer, the generator's fixed noise), and `sefa_directions`
factorises the style affines of the synthesis layers (Shen & Zhou 2021, section 3.2) instead of a first layer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

INITS = ("encoder", "search", "zero")


@dataclass
class Projection:
    latents: Tensor              # (N, D) the best latent of each image
    images: Tensor               # (N, C, H, W) G(latents)
    pixel_mse: Tensor            # (N,) mean squared pixel error ([-1, 1] scale)
    feature_l2: Tensor | None    # (N,) Euclidean distance of features, when a feature network was given
    loss: Tensor                 # (N,) the final loss of each image
    history: list[float] = field(default_factory=list)  # mean loss of the current latents, per step
    seconds: float = 0.0
    init: str = ""
    space: str = "z"             # the latents' space: z, or w for a style-based generator


def losses(G: Callable[[Tensor], Tensor], z: Tensor, target: Tensor, features: Callable[[Tensor], Tensor] | None,
           target_features: Tensor | None, feature_weight: float, prior_weight: float) -> tuple[Tensor, Tensor]:
    """(loss per image, images) of latents z against the targets."""
    x = G(z).float()
    loss = (x - target).pow(2).flatten(1).mean(1)
    if features is not None and feature_weight > 0:
        loss = loss + feature_weight * (features(x) - target_features).pow(2).mean(1)
    if prior_weight > 0:
        loss = loss + prior_weight * z.pow(2).mean(1)
    return loss, x


def project(G: Callable[[Tensor], Tensor], target: Tensor, z0: Tensor, *, steps: int = 200, lr: float = 0.05,
            features: Callable[[Tensor], Tensor] | None = None, feature_weight: float = 1.0,
            prior_weight: float = 1e-3, optimizer: str = "adam", init: str = "") -> Projection:
    """Optimise latents (starting at z0, (N, D)) so that G(z) matches target (N, C, H, W) in [-1, 1]; G frozen.
    `optimizer`: "adam" (default) or "sgd" (plain gradient descent: with a small enough lr the loss falls at every
    step, which the tests check on a toy generator)."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be adam or sgd, got '{optimizer}'")
    t0 = time.perf_counter()
    target = target.float()
    with torch.no_grad():
        target_features = features(target) if features is not None and feature_weight > 0 else None
    z = z0.detach().clone().float().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr) if optimizer == "adam" else torch.optim.SGD([z], lr=lr)
    best_z, best_loss = z.detach().clone(), torch.full((len(z),), float("inf"), device=z.device)
    history: list[float] = []
    for step in range(steps + 1):
        loss, _ = losses(G, z, target, features, target_features, feature_weight, prior_weight)
        with torch.no_grad():
            history.append(float(loss.mean()))
            better = loss.detach() < best_loss
            best_loss = torch.where(better, loss.detach(), best_loss)
            best_z[better] = z.detach()[better]
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        images = G(best_z).float()
        pixel = (images - target).pow(2).flatten(1).mean(1)
        feat = (features(images) - target_features).norm(dim=1) if target_features is not None else None
    return Projection(best_z, images, pixel, feat, best_loss, history, time.perf_counter() - t0, init)


@torch.no_grad()
def search_start(G: Callable[[Tensor], Tensor], target: Tensor, candidates: Tensor, batch: int = 256) -> Tensor:
    """For each target, the candidate latent whose image is closest in pixels: (N, D)."""
    imgs = torch.cat([G(candidates[i:i + batch]).float().flatten(1) for i in range(0, len(candidates), batch)])
    d = torch.cdist(target.float().flatten(1), imgs)
    return candidates[d.argmin(1)]


@torch.no_grad()
def class_means(latents: Tensor, predicted: Tensor, n_classes: int) -> tuple[Tensor, Tensor]:
    """(K, D) mean latent of the samples predicted as each class, and (K,) how many there were (a class with none
    has a mean of NaN)."""
    d = latents.shape[1]
    sums = torch.zeros(n_classes, d, dtype=torch.float64, device=latents.device).index_add_(0, predicted,
                                                                                            latents.double())
    counts = torch.bincount(predicted, minlength=n_classes).to(latents.device)
    return (sums / counts[:, None].clamp(min=1)).float().masked_fill(counts[:, None] == 0, float("nan")), counts


def describe(p: Projection) -> dict[str, Any]:
    out = {"init": p.init, "steps": len(p.history) - 1, "seconds": round(p.seconds, 3),
           "pixel_mse_mean": round(float(p.pixel_mse.mean()), 6), "loss_start": round(p.history[0], 6),
           "loss_end": round(float(p.loss.mean()), 6)}
    if p.feature_l2 is not None:
        out["feature_l2_mean"] = round(float(p.feature_l2.mean()), 6)
    return out


@torch.no_grad()
def tag_latents(sampler, classifier, n: int, seed: int, confidence: bool = False, space: str = "z"):
    """n latents of the seed (space "z"; or their w, space "w", for style-based generators) and the class the
    classifier (an Extractor with logits) gives their images; with confidence=True also the classifier's
    probability of that class."""
    z = sampler.latents(n, seed)
    x = sampler.generate(n, z=z)
    p = classifier.logits(x).float().softmax(1)
    conf, pred = p.max(1)
    lat = w_of(sampler.G, z, sampler.default_truncation) if space == "w" else z
    return (lat, pred, conf) if confidence else (lat, pred)


@torch.no_grad()
def class_direction(sampler, classifier, a: int, b: int, n: int = 20000, seed: int = 12345,
                    min_confidence: float = 0.9, space: str = "z") -> tuple[Tensor, dict]:
    """The vector-arithmetic direction from class a to class b: mean latent of the samples classified b minus that
    of the samples classified a, from n tagged samples; with how many samples each mean had.

    Only samples the classifier gives their class with probability >= min_confidence enter a mean: the clear
    members of a class, as Radford et al. averaged hand-picked clear exemplars. Ambiguous samples near a class
    boundary pull both means towards each other and add latent noise that changes no class (bench/latent_tools.py:
    on the model_kinds dcgan, 0.9 lifts the best average share classified B from 70% to 78%)."""
    if not 0.0 <= min_confidence < 1.0:
        raise ValueError(f"min_confidence must be in [0, 1), got {min_confidence}")
    z, pred, conf = tag_latents(sampler, classifier, n, seed, confidence=True, space=space)
    keep = conf >= min_confidence
    k = int(classifier.n_classes)
    means, counts = class_means(z[keep], pred[keep], k)
    for c in (a, b):
        if int(counts[c]) < 10:
            raise ValueError(f"only {int(counts[c])} of {n} samples are classified as class {c} with probability >= "
                             f"{min_confidence:g}: too few for a mean latent; sample more (--tag-n), lower "
                             "--tag-confidence or pick another class")
    return means[b] - means[a], {"tagged": n, "min_confidence": min_confidence, "count_a": int(counts[a]),
                                 "count_b": int(counts[b])}


def first_layer_weight(G) -> Tensor:
    """The weight A (out, latent) of the generator's first linear map of its latent, in the sampler's z space
    (an autoencoder's code = mean + L z: A L). ValueError when G does not start with one (stylegan maps z first)."""
    from ..nn.convs import LatentProjection

    G = getattr(G, "kept", G)  # an aae with restarts: the member it kept
    if getattr(G, "mixture", None) is not None:
        raise ValueError("closed-form directions (sefa) need z to reach the first layer linearly; an aae with a "
                         "mixture prior maps z onto the mixture first")
    first = next((m for m in G.modules() if isinstance(m, (LatentProjection, torch.nn.Linear))), None)
    if first is None or G.__class__.__name__.startswith("StyleGAN"):
        raise ValueError("closed-form directions (sefa) need a generator whose first layer is a linear map of z "
                         "(dcgan, the autoencoders' decoders); this one has none")
    w = first.weight.detach().float()
    A = w.flatten(1).T if isinstance(first, LatentProjection) else w  # (out, latent)
    tril = getattr(G, "code_tril", None)
    return A @ tril.float() if isinstance(tril, Tensor) else A


def style_weight(G) -> Tensor:
    """A style-based generator's style affines, stacked: (sum of the synthesis layers' input channels, w_dim), each
    row scaled to unit length as SeFa does for StyleGAN (the toRGB layers' affines are left out, as there)."""
    from ..nn.stylegan import StyleLayer

    rows = [m.conv.affine.weight.detach().float() for m in G.modules() if isinstance(m, StyleLayer)]
    if not rows:
        raise ValueError("this generator has no style layers")
    A = torch.cat(rows)
    return A / A.norm(dim=1, keepdim=True).clamp(min=1e-12)


def sefa_directions(G, k: int | None = None) -> tuple[Tensor, Tensor]:
    """Closed-form factorisation (Shen & Zhou 2021, SeFa): the unit latent directions that change the first layer's
    output most are the eigenvectors of A^T A, by decreasing eigenvalue. Returns (directions (K, latent),
    eigenvalues (K,)). For a style-based generator A is `style_weight(G)` and the directions live in w."""
    A = style_weight(G) if style_based(G) else first_layer_weight(G)
    values, vectors = torch.linalg.eigh(A.T @ A)
    order = values.argsort(descending=True)
    values, vectors = values[order], vectors[:, order].T
    return (vectors[:k], values[:k]) if k is not None else (vectors, values)


# -- w space (style-based generators) -----------------------------------------------------------------------
def style_based(G) -> bool:
    """G maps z to w and draws from w (stylegan): edits and projection can work in w."""
    return all(hasattr(G, a) for a in ("mapping", "synthesize", "styles", "num_ws"))


@torch.no_grad()
def w_of(G, z: Tensor, truncation: float | None = None) -> Tensor:
    """(N, w_dim): the w that G draws z's image from, truncated at psi = `truncation` (None: G's own)."""
    return G.styles(z, truncation=truncation)[:, 0].float()


def from_w(G, batch: int = 256) -> Callable[[Tensor], Tensor]:
    """w (N, w_dim) -> images: the same w at every layer and G's fixed noise (`noise_mode`), so G(z) ==
    from_w(G)(w_of(G, z)). Differentiable in w; runs in chunks of `batch` when no gradient is needed."""
    def draw(w: Tensor) -> Tensor:
        if torch.is_grad_enabled() and w.requires_grad or len(w) <= batch:
            return G.synthesize(w.unsqueeze(1).expand(-1, G.num_ws, -1), G.noise_mode)
        return torch.cat([draw(w[i:i + batch]) for i in range(0, len(w), batch)])
    return draw


# -- the pipeline `ganforge project`, `ganforge edit` and the playground share -----------------------------------
def perceptual_features(name: str, shape: tuple[int, ...]) -> tuple[Callable[[Tensor], Tensor] | None, str]:
    """(differentiable feature function or None, its name) for the perceptual loss: `name` fashion, clipart,
    inception, none, or auto (fashion for 1x28x28 images, else none). ValueError/FileNotFoundError when the network
    cannot be loaded or does not take images of `shape`."""
    from ..metrics.features import load

    if name == "auto":
        name = "fashion" if tuple(shape) == (1, 28, 28) else "none"
    if name == "none":
        return None, "none"
    ext = load(name)
    ext.differentiable_features(torch.zeros(1, *shape))  # a clear error now, not mid-way
    return ext.differentiable_features, name


def editable(sampler) -> str | None:
    """None when the latent tools apply to this model (an unconditional image generator), else why not."""
    f = sampler.family
    if f.kind != "latent" or sampler.spec.kind != "image" or f.conditioning != "none":
        return (f"the latent tools need an unconditional image generator; this is {f.name} ({f.kind}, conditioning "
                f"{f.conditioning}, {sampler.spec.kind})")
    return None


def latent_space(sampler, space: str = "auto") -> str:
    """"w" or "z": the space `space` ("auto": w for style-based generators, else z) names; ValueError when the model
    cannot be projected or edited there."""
    why = editable(sampler)
    if why:
        raise ValueError(why)
    if space not in ("auto", "z", "w"):
        raise ValueError(f"space must be auto, z or w, got '{space}'")
    sb = style_based(sampler.G)
    if space == "w" and not sb:
        raise ValueError(f"{sampler.family.name} has no w space (stylegan has); use space z")
    return space if space != "auto" else ("w" if sb else "z")


def latent_width(sampler, space: str) -> int:
    return int(sampler.G.mapping.w_avg.numel()) if space == "w" else int(sampler.family.latent_dim)


def start_kind(sampler, init: str = "auto") -> str:
    """The projection start `init` names: auto is the encoder when the model has one, else a search."""
    f = sampler.family
    if init not in INITS + ("auto",):
        raise ValueError(f"init must be auto, {', '.join(INITS)}, got '{init}'")
    if init == "encoder" and not f.has_encoder:
        raise ValueError(f"init encoder: {f.name} has no encoder (ae, vae, aae and vaegan do); use init search or "
                         "zero")
    return init if init != "auto" else ("encoder" if f.has_encoder else "search")


def to_space(sampler, z: Tensor, space: str) -> Tensor:
    """The sampler's latents z in `space` (their w, with the sampler's truncation, for "w")."""
    return w_of(sampler.G, z, sampler.default_truncation) if space == "w" else z


@torch.no_grad()
def draw_latents(sampler, latents: Tensor, space: str) -> Tensor:
    """Images of latents of `space`, as `ganforge sample` draws them."""
    return from_w(sampler.G)(latents.float()) if space == "w" else sampler.generate(len(latents), z=latents)


def project_images(sampler, x: Tensor, *, init: str = "auto", space: str = "auto", steps: int = 200,
                   lr: float = 0.05, features: Callable[[Tensor], Tensor] | None = None, feature_weight: float = 1.0,
                   prior_weight: float = 1e-3, candidates: int = 256, seed: int = 0) -> Projection:
    """Project images x (N, C, H, W) in [-1, 1] into the sampler's generator (frozen). In z the prior term is
    mean(z^2); in w (style-based generators) the latent optimised is u = w - w_avg, so the prior term is
    mean((w - w_avg)^2), and the start is w_avg (init "zero") or the w of the best of `candidates` random latents
    ("search"). The returned latents are in `space` (w, not u); `Projection.space` says which."""
    space, init = latent_space(sampler, space), start_kind(sampler, init)
    G = sampler.G
    trainable = [p for p in G.parameters() if p.requires_grad]
    for p in trainable:  # frozen for the projection, restored after it
        p.requires_grad_(False)
    try:
        return _project_frozen(sampler, G, x, init, space, steps, lr, features, feature_weight, prior_weight,
                               candidates, seed)
    finally:
        for p in trainable:
            p.requires_grad_(True)


def _project_frozen(sampler, G, x, init, space, steps, lr, features, feature_weight, prior_weight, candidates,
                    seed) -> Projection:
    if space == "w":
        w_avg = G.mapping.w_avg.detach().float()
        draw_w = from_w(G)
        draw: Callable[[Tensor], Tensor] = lambda u: draw_w(w_avg + u)  # noqa: E731
    else:
        draw = G
    with torch.no_grad():
        if init == "encoder":
            z0 = sampler.family.latent_of(x)
        elif init == "search":
            cands = sampler.latents(candidates, seed)
            z0 = search_start(draw, x, to_space(sampler, cands, space) - w_avg if space == "w" else cands)
        else:
            z0 = torch.zeros(len(x), latent_width(sampler, space))
    result = project(draw, x, z0, steps=steps, lr=lr, features=features,
                     feature_weight=feature_weight if features is not None else 0.0, prior_weight=prior_weight,
                     init=init)
    if space == "w":
        result.latents = result.latents + w_avg
    result.space = space
    return result
