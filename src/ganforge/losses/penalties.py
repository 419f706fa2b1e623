"""Gradient penalties on the discriminator.

Both run in fp32 even inside a bf16 autocast region: the penalty is a difference of gradient norms (WGAN-GP:
(||g|| - 1)^2), which bf16's 8-bit mantissa would swamp, and its double backward is where rounding compounds.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def interpolate(real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP's random points alpha real + (1 - alpha) fake, alpha ~ U[0, 1) one per row (per sample)."""
    alpha = torch.rand(real.size(0), *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
    return alpha * real + (1 - alpha) * fake


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al., 2017) on random interpolates; works for (N,C,H,W) and (N,F)."""
    x_hat = interpolate(real.detach().float(), fake.detach().float()).requires_grad_(True)
    with torch.autocast(real.device.type, enabled=False):
        (grad,) = torch.autograd.grad(critic(x_hat).float().sum(), x_hat, create_graph=True)
        return gp_of_gradient(grad)


def gp_of_gradient(grad: Tensor) -> Tensor:
    """WGAN-GP's (||grad||_2 - 1)^2, averaged over the rows, from the critic's gradient at the interpolates."""
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 (Mescheder et al., 2018): E[||grad_x D(x)||^2] on real data; scale by gamma/2 outside."""
    x = real.detach().float().requires_grad_(True)
    with torch.autocast(x.device.type, enabled=False):
        (grad,) = torch.autograd.grad(critic(x).float().sum(), x, create_graph=True)
        return grad.flatten(1).pow(2).sum(1).mean()
