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
def tag_latents(sampler, classifier, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """n latents of the seed and the class the classifier (an Extractor with logits) gives their images."""
    z = sampler.latents(n, seed)
    x = sampler.generate(n, z=z)
    return z, classifier.logits(x).argmax(1)


@torch.no_grad()
def class_direction(sampler, classifier, a: int, b: int, n: int = 5000, seed: int = 12345) -> tuple[Tensor, dict]:
    """The vector-arithmetic direction from class a to class b: mean latent of the samples classified b minus that
    of the samples classified a, from n tagged samples; with how many samples each mean had."""
    z, pred = tag_latents(sampler, classifier, n, seed)
    k = int(classifier.n_classes)
    means, counts = class_means(z, pred, k)
    for c in (a, b):
        if int(counts[c]) < 10:
            raise ValueError(f"only {int(counts[c])} of {n} samples are classified as class {c}: too few for a mean "
                             "latent; sample more (--tag-n) or pick another class")
    return means[b] - means[a], {"tagged": n, "count_a": int(counts[a]), "count_b": int(counts[b])}


def first_layer_weight(G) -> Tensor:
    """The weight A (out, latent) of the generator's first linear map of its latent, in the sampler's z space
    (an autoencoder's code = mean + L z: A L). ValueError when G does not start with one (stylegan maps z first)."""
    from ..nn.convs import LatentProjection

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


def sefa_directions(G, k: int | None = None) -> tuple[Tensor, Tensor]:
    """Closed-form factorisation (Shen & Zhou 2021, SeFa): the unit latent directions that change the first layer's
    output most are the eigenvectors of A^T A, by decreasing eigenvalue. Returns (directions (K, latent),
    eigenvalues (K,))."""
    A = first_layer_weight(G)
    values, vectors = torch.linalg.eigh(A.T @ A)
    order = values.argsort(descending=True)
    values, vectors = values[order], vectors[:, order].T
    return (vectors[:k], values[:k]) if k is not None else (vectors, values)
