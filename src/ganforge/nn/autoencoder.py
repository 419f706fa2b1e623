"""Networks of the autoencoder families (ae, vae, aae): a convolutional encoder, and G = encoder + decoder.

The encoder is DCGAN's discriminator trunk (strided 4x4 convs, LeakyReLU 0.2, BatchNorm after the first) ending
in a conv whose kernel covers the remaining map, with `out_dim` outputs instead of one logit. The decoder is
DCGAN's generator. Both live in one module, `AutoEncoderNet`, so that the generator a checkpoint keeps (and its
EMA) carries the encoder too: `ganforge project` can start from it and `ganforge evaluate` can compute a VAE's
ELBO from the sampler alone. Its forward is the sampler's G(z): z ~ N(0, I) mapped to a code by
code_mean + z @ code_tril.T (the identity for vae and aae, whose prior is N(0, I); the Gaussian fitted to the
codes for ae) and decoded.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .convs import WholeMapConv
from .dcgan import DCGANGenerator, _init_dcgan, dcgan_trunk


class ConvEncoder(nn.Module):
    """x (N, C, H, W) -> (N, out_dim): DCGAN D's trunk and a conv over the whole remaining map."""

    def __init__(self, in_shape: tuple[int, int, int], out_dim: int, width: int = 64, max_width: int = 512,
                 batchnorm: bool = True) -> None:
        super().__init__()
        self.trunk, prev, hw = dcgan_trunk(in_shape, width, max_width, batchnorm)
        self.head = WholeMapConv(prev, out_dim, hw, 1, 0)
        _init_dcgan(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x)).flatten(1)


class AutoEncoderNet(nn.Module):
    """encoder (x -> enc_dim outputs), decoder (code_dim code -> x), and the map from N(0, I) to codes.

    `log_sigma` (one per channel) is the Gaussian decoder's learned log standard deviation (vae only)."""

    def __init__(self, shape: tuple[int, int, int], code_dim: int, enc_dim: int, width: int = 64,
                 max_width: int = 512, learn_sigma: bool = False,
                 mixture: tuple[int, float, float] | None = None) -> None:
        super().__init__()
        self.code_dim = code_dim
        self.mixture = mixture
        self.encoder = ConvEncoder(shape, enc_dim, width, max_width)
        self.decoder = DCGANGenerator(code_dim, shape, width, max_width)
        self.register_buffer("code_mean", torch.zeros(code_dim))
        self.register_buffer("code_tril", torch.eye(code_dim))
        self.log_sigma = nn.Parameter(torch.zeros(shape[0])) if learn_sigma else None

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, code: Tensor) -> Tensor:
        return self.decoder(code)

    def prior_to_code(self, z: Tensor) -> Tensor:
        if self.mixture is not None:
            return mixture_from_noise(z, *self.mixture)
        return self.code_mean + z @ self.code_tril.T

    def code_to_prior(self, code: Tensor) -> Tensor:
        """The inverse of prior_to_code: the latent z with prior_to_code(z) = code (for a mixture prior, through
        the component whose centre is nearest)."""
        if self.mixture is not None:
            return noise_from_mixture(code, *self.mixture)
        return torch.linalg.solve_triangular(self.code_tril, (code - self.code_mean).T, upper=False).T

    def forward(self, z: Tensor) -> Tensor:
        return self.decoder(self.prior_to_code(z))


def mixture_from_noise(z: Tensor, k: int, radius: float, std: float) -> Tensor:
    """N(0, I) noise -> an exact draw from a mixture of k Gaussians (std `std`) centred on a circle of `radius` in
    the first two dimensions, as a function of the noise alone. There the noise's angle is uniform and independent
    of its radius rho: the sector the angle falls in (k equal sectors) picks the component, the angle's position
    within the sector, stretched to a full turn, is a new uniform angle phi, and std * rho * (cos phi, sin phi) is
    then an independent 2-D Gaussian offset from the component's centre. The other dimensions pass through."""
    sector = (torch.atan2(z[:, 1], z[:, 0]) % (2 * math.pi)) / (2 * math.pi / k)
    comp = torch.floor(sector).clamp(max=k - 1)
    phi = (sector - comp) * 2 * math.pi
    rho = z[:, :2].norm(dim=1)
    theta = comp * (2 * math.pi / k)
    first = torch.stack([radius * torch.cos(theta) + std * rho * torch.cos(phi),
                         radius * torch.sin(theta) + std * rho * torch.sin(phi)], 1)
    return torch.cat([first, z[:, 2:]], 1)


def noise_from_mixture(code: Tensor, k: int, radius: float, std: float) -> Tensor:
    """The inverse of mixture_from_noise, taking the component whose centre is nearest to the code."""
    theta_k = torch.arange(k, device=code.device, dtype=code.dtype) * (2 * math.pi / k)
    centres = radius * torch.stack([torch.cos(theta_k), torch.sin(theta_k)], 1)
    comp = torch.cdist(code[:, :2], centres).argmin(1)
    offset = (code[:, :2] - centres[comp]) / std
    rho = offset.norm(dim=1)
    phi = torch.atan2(offset[:, 1], offset[:, 0]) % (2 * math.pi)
    angle = (comp.to(code.dtype) + phi / (2 * math.pi)) * (2 * math.pi / k)
    return torch.cat([torch.stack([rho * torch.cos(angle), rho * torch.sin(angle)], 1), code[:, 2:]], 1)


class CodeDiscriminator(nn.Module):
    """A code (N, dim) -> one logit (N,): an MLP of two hidden layers with LeakyReLU 0.2 (aae's D on codes)."""

    def __init__(self, dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(0.2, True), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.2, True), nn.Linear(hidden, 1))

    def forward(self, c: Tensor) -> Tensor:
        return self.net(c).flatten()
