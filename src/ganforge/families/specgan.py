"""SpecGAN (Donahue, McAuley & Puckette 2019): a DCGAN on log-magnitude spectrograms, inverted to audio by
Griffin-Lim.

Clips (16,384 samples at 16 kHz) become 128 x 128 images: a 256-point STFT (16 ms Hann windows) with a hop of 128,
the lowest 128 of its 129 frequency bins and the first 128 of its 129 frames, log-magnitude, standardised per
frequency bin with the training clips' mean and std, clipped at 3 std and scaled to [-1, 1] (the paper's
recipe; nn/wavegan.py SpecGANGenerator keeps the statistics as buffers). G and D are `dcgan`'s networks at
128 x 128 (no batch norm in D: WGAN-GP, 5 critic steps, as WaveGAN). Sampling draws a spectrogram and inverts
it with 32 iterations of fast Griffin-Lim (data.audio.griffin_lim): the phase is estimated, not generated,
which costs quality (metallic, phasey artefacts) even where G's magnitudes are right: on a real spoken "seven"
of builtin:spoken-digits, 32 iterations leave a spectral convergence || |S| - |STFT(x)| || / || |S| || of 0.057
(0.28 from random phases, 0.037 after 100 iterations; tests/test_audio.py checks a voiced glide, 0.070). The
dropped Nyquist bin and last frame come back as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from ..nn import DCGANDiscriminator, DCGANGenerator
from ..nn.wavegan import SpecGANGenerator
from .base import AdversarialConfig, AdversarialFamily
from .phases import StepContext
from .wavegan import _check_audio

N_FFT, HOP = 256, 128


@dataclass
class SpecGANConfig(AdversarialConfig):
    latent_dim: int = 100
    loss: str = "wgan-gp"
    n_critic: int = 5
    gp_weight: float = 10.0
    width: int = 32          # dcgan width (the paper's 64)
    max_width: int = 512
    griffin_lim_iters: int = 32  # phase-estimation iterations when sampling audio


class SpecGAN(AdversarialFamily):
    """GAN on normalised log-spectrograms; samples are audio through Griffin-Lim."""

    Config = SpecGANConfig
    name = "specgan"
    needs = "audio"
    train_defaults = {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5, "beta2": 0.9}  # the paper's Adam
    onnx_refusal = ("its samples need Griffin-Lim (iterative STFTs) after G, which the ONNX export does not hold; "
                    "serve it with `ganforge serve`, or export wavegan")
    description = "spectrogram GAN (Donahue 2019): DCGAN on log-magnitude STFTs, Griffin-Lim to audio"

    def __init__(self, cfg: SpecGANConfig, spec: DataSpec, generator_only: bool = False) -> None:
        _check_audio(self.name, spec)
        length = int(spec.shape[-1])
        self.bins, self.frames = N_FFT // 2, length // HOP
        if length % HOP or self.frames < 8:
            raise ValueError(f"specgan needs clips of a multiple of {HOP} samples, at least {8 * HOP}; got {length}")
        if cfg.griffin_lim_iters < 1:
            raise ValueError(f"model.griffin_lim_iters must be >= 1, got {cfg.griffin_lim_iters}")
        super().__init__(cfg, spec, generator_only)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.bins, self.frames)

    def build_generator(self) -> nn.Module:
        c = self.cfg
        net = DCGANGenerator(c.latent_dim, self.image_shape, c.width, c.max_width)
        return SpecGANGenerator(net, self.bins, self.frames, N_FFT, HOP, int(self.spec.shape[-1]))

    def build_discriminator(self) -> nn.Module:
        return DCGANDiscriminator(self.image_shape, self.cfg.width, self.cfg.max_width, batchnorm=False)

    @torch.no_grad()
    def bind_data(self, data: Any) -> None:
        """Per-bin mean and std of the training clips' log-magnitudes into G's buffers (a fresh run only: a resumed
        run loads them with G's weights afterwards)."""
        from ..data.audio import log_spectrogram

        sums = torch.zeros(self.bins, dtype=torch.float64)
        squares = torch.zeros(self.bins, dtype=torch.float64)
        count = 0
        for i in range(0, len(data.x), 256):
            s = log_spectrogram(data.to_float(data.x[i:i + 256]), N_FFT, HOP)[:, :self.bins, :self.frames].double()
            sums += s.sum((0, 2))
            squares += s.pow(2).sum((0, 2))
            count += s.shape[0] * s.shape[2]
        mean = sums / count
        std = (squares / count - mean.pow(2)).clamp(min=1e-8).sqrt()
        self.G.bin_mean.copy_(mean.float())
        self.G.bin_std.copy_(std.float())

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None):
        # D and G work on spectrogram images: the real clips are encoded with G's statistics
        spec_batch = Batch(self.G.encode(batch.x), batch.y, extras=batch.extras)
        return super().loss(phase, spec_batch, ctx)

    def standing_forward(self, net: nn.Module, inputs: Tensor, start: int = 0) -> None:
        """G's spectrograms only: Griffin-Lim comes after every BatchNorm and would cost 32 iterations per clip."""
        super().sample(len(inputs), z=inputs, net=net)

    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None,
               net: nn.Module | None = None, **cond: Any) -> Tensor:
        """n clips (N, 1, length): G's spectrograms (the base's sample) through Griffin-Lim."""
        G = net if net is not None else self.G
        return G.to_audio(super().sample(n, z=z, generator=generator, net=net), self.cfg.griffin_lim_iters)
