"""DiscoGAN (Kim et al. 2017): cross-domain relations learned from unpaired A and B.

The same two-way algorithm as CycleGAN (`TwoWayGAN`): G_AB and G_BA, D_A and D_B, and

    L_G = L_GAN_B + L_CONST_A + L_GAN_A + L_CONST_B,   L_CONST_A = d(G_BA(G_AB(a)), a)

with the non-saturating GAN loss and a reconstruction distance d (the paper names MSE, cosine or hinge
distances and uses MSE: `cycle_distance: mse`, weight `lambda_cycle: 1`); no identity term, no history
of fakes. What differs are the networks: encoder-decoder convolutional generators (4x4 stride-2 convs
with LeakyReLU + BatchNorm, mirrored transposed convs; `ganforge.nn.disco`) and DCGAN-style
discriminators that give one logit per image (4x4 stride-2 convs with LeakyReLU + BatchNorm).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..nn.dcgan import DCGANDiscriminator
from ..nn.disco import EncoderDecoderGenerator
from .cyclegan import TwoWayGAN


@dataclass
class DiscoGANConfig:
    loss: str = "ns"                 # ns (the paper) | minimax | lsgan | hinge
    lambda_gan: float | None = None  # weight of G's adversarial terms; None: 1 (2 with lsgan, as in cyclegan)
    lambda_cycle: float = 1.0        # reconstruction weight (the paper sums the terms unweighted)
    lambda_identity: float = 0.0     # identity weight as a fraction of lambda_cycle (not in the paper)
    cycle_distance: str = "mse"      # mse (the paper) | l1
    pool_size: int = 0               # fakes kept per direction for D's updates (not in the paper)
    width: int = 64                  # G's first conv channels (the paper: 64-128-256-512 at 64x64)
    d_width: int = 64                # D's first conv channels


class DiscoGAN(TwoWayGAN):
    """DiscoGAN: encoder-decoder generators, DCGAN discriminators, GAN + reconstruction losses."""

    Config = DiscoGANConfig
    name = "discogan"
    description = "DiscoGAN (Kim 2017): unpaired A <-> B, encoder-decoder G, conv D, GAN + MSE reconstruction"

    def build_generator(self, in_channels: int, out_channels: int) -> nn.Module:
        return EncoderDecoderGenerator(in_channels, out_channels, tuple(self.in_shape[1:]), self.cfg.width)

    def build_discriminator(self, in_channels: int) -> nn.Module:
        return DCGANDiscriminator((in_channels, *self.in_shape[1:]), self.cfg.d_width)
