"""Conditional GAN (Mirza & Osindero, 2014): G and D both receive the class label.

G gets a learned label embedding concatenated to z. D gets the label as one-hot feature maps appended to
the image channels (conv nets) or as an embedding appended to the flattened input (MLP), or, with
`projection: true`, through the projection discriminator of Miyato & Koyama (2018):
D(x, y) = psi(phi(x)) + <embed(y), phi(x)>. Any adversarial loss, R1, n_critic and label smoothing work.
Fakes are drawn with uniformly random classes; `sample(y=...)` picks them (default: 0, 1, ..., K-1, 0, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.spec import Batch
from ..nn import ConditionalDiscriminator, ConditionalGenerator
from . import backbones
from .backbones import feature_dim
from .base import AdversarialConfig, AdversarialFamily


@dataclass
class CGANConfig(AdversarialConfig):
    latent_dim: int = 100
    arch: str = "auto"        # auto (dcgan for images, mlp for points) | dcgan | mlp
    embed_dim: int = 50       # size of G's label embedding (and D's, for MLP concat)
    projection: bool = False  # projection discriminator instead of concatenating the label to D's input
    width: int = 64           # dcgan: channels of G's last and D's first conv
    max_width: int = 512
    d_batchnorm: bool = True
    hidden: int = 256         # mlp: units per hidden layer
    depth: int = 3            # mlp: hidden layers


class CGAN(AdversarialFamily):
    """Class-conditional GAN on a DCGAN or MLP backbone; concat or projection discriminator."""

    Config = CGANConfig
    name = "cgan"
    conditioning = "class"
    description = "conditional GAN (Mirza 2014), projection D option (Miyato 2018); labelled data"

    def __init__(self, cfg: CGANConfig, spec, generator_only: bool = False) -> None:
        if spec.n_classes < 1:
            raise ValueError(f"cgan needs labelled data but '{spec.name}' has no classes; use class sub-folders "
                             "(DATA/<class>/*.png) or builtin:fashion-mnist / builtin:digits")
        self.arch = backbones.resolve_arch(self.name, cfg.arch, spec)
        super().__init__(cfg, spec, generator_only)

    @property
    def n_classes(self) -> int:
        return int(self.spec.n_classes)

    def build_generator(self) -> nn.Module:
        c = self.cfg
        base = backbones.generator(self.arch, c.latent_dim + c.embed_dim, self.spec, c)
        return ConditionalGenerator(base, self.n_classes, c.embed_dim)

    def build_discriminator(self) -> nn.Module:
        c, shape, k = self.cfg, tuple(self.spec.shape), self.n_classes
        image = self.arch == "dcgan"
        if c.projection:
            base = backbones.discriminator(self.arch, shape, c)
            return ConditionalDiscriminator(base, k, "projection", image=image, feature_dim=feature_dim(base, shape))
        if image:
            base = backbones.discriminator("dcgan", (shape[0] + k, *shape[1:]), c)
        else:
            dim = 1
            for s in shape:
                dim *= s
            base = backbones.discriminator("mlp", (dim + c.embed_dim,), c)
        return ConditionalDiscriminator(base, k, "concat", image=image, embed_dim=c.embed_dim)

    # -- the conditional hooks of AdversarialFamily.loss ---------------------------------------------
    def generate(self, n: int) -> tuple[Tensor, Any]:
        y = self.rows(n, lambda m: torch.randint(self.n_classes, (m,), device=self.device))
        return self.G(self.noise(n), y), y

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        return self.D(x, cond)

    def real_condition(self, batch: Batch) -> Any:
        if batch.y is None:
            raise ValueError("cgan got a batch without labels; train it on labelled data")
        return batch.y

    def labels(self, n: int, y: Any = None, device: torch.device | None = None) -> Tensor:
        """Class labels (n,) from None (0, 1, ..., K-1, 0, ...), an int, or a sequence/tensor of n ints."""
        device = device or self.device
        if y is None:
            return torch.arange(n, device=device) % self.n_classes
        y = torch.as_tensor(y, dtype=torch.long, device=device)
        if y.dim() == 0:
            y = y.expand(n)
        if y.shape != (n,):
            raise ValueError(f"need one class per sample: {n} samples but {tuple(y.shape)} labels")
        if int(y.min()) < 0 or int(y.max()) >= self.n_classes:
            names = ", ".join(f"{i}={c}" for i, c in enumerate(self.spec.class_names)) or f"0..{self.n_classes - 1}"
            raise ValueError(f"class {int(y.max()) if int(y.max()) >= self.n_classes else int(y.min())} does not "
                             f"exist; this model has {self.n_classes} classes: {names}")
        return y

    def standing_forward(self, net: nn.Module, inputs: Tensor, start: int = 0) -> None:
        """The refresh's classes run on across its batches (0, 1, ..., K-1, 0, ... over all of them), so that every
        class reaches the statistics when a batch is smaller than the class count (batch 8, 10 classes)."""
        self.sample(len(inputs), z=inputs, net=net, y=(torch.arange(len(inputs)) + start) % self.n_classes)

    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None,
               net: nn.Module | None = None, y: Any = None, **cond: Any) -> Tensor:
        G = net if net is not None else self.G
        if z is None:
            z = self.noise(n, generator=generator)
        return G(z, self.labels(n, y, device=z.device))
