"""WaveGAN (Donahue, McAuley & Puckette 2019): GANs on raw audio waveforms (nn/wavegan.py's networks).

`wavegan`: 1-D transposed-convolution G, 1-D D with phase shuffle, trained with WGAN-GP (the paper's: 5 critic
steps, penalty 10, Adam 1e-4 (0.5, 0.9)). `cwavegan`: the same conditioned on the clip's class (e.g. the digit
spoken): G reads a learned label embedding beside z, D is a projection discriminator (Miyato & Koyama 2018), as
`cgan`'s. Both need audio data (`DataSpec(kind="audio")`): builtin:spoken-digits or a folder of WAV/FLAC files.

Width: the paper's d = 64 (about 19M parameters in G) is a GPU model; the default here is d = 32 for CPU
budgets (model.width).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import ConditionalDiscriminator, ConditionalGenerator
from ..nn.wavegan import WaveGANDiscriminator, WaveGANGenerator, WaveSpecDiscriminator
from .backbones import feature_dim
from ..data.spec import Batch
from .base import AdversarialConfig, AdversarialFamily, StepOutput
from .phases import StepContext
from .cgan import CGAN


@dataclass
class WaveGANConfig(AdversarialConfig):
    latent_dim: int = 100
    loss: str = "wgan-gp"
    n_critic: int = 5
    gp_weight: float = 10.0
    width: int = 32        # d: channels of G's last and D's first layer (the paper's 64)
    phase_shuffle: int = 2  # n of D's phase shuffle (0: off)
    spec_width: int = 0     # > 0: D also reads the clip's log-spectrogram through a 2-D stack this wide (see below)
    spec_n_fft: int = 256   # that spectrogram's STFT size (hop n_fft / 2)


def _check_audio(name: str, spec) -> None:
    if spec.kind != "audio":
        raise ValueError(f"{name} generates audio but '{spec.name}' holds {spec.kind}; give --data builtin:spoken-digits "
                         "or a folder of .wav/.flac files")


def _check_widths(cfg: WaveGANConfig) -> None:
    if cfg.width < 1 or cfg.phase_shuffle < 0 or cfg.spec_width < 0:
        raise ValueError(f"model.width must be >= 1, model.phase_shuffle and model.spec_width >= 0, got {cfg.width}, "
                         f"{cfg.phase_shuffle}, {cfg.spec_width}")


def _discriminator(cfg: WaveGANConfig, length: int) -> nn.Module:
    """WaveGAN's D, or with spec_width > 0 that D beside a spectrogram view (nn.wavegan.WaveSpecDiscriminator)."""
    if cfg.spec_width > 0:
        return WaveSpecDiscriminator(length, cfg.width, cfg.phase_shuffle, cfg.spec_width, cfg.spec_n_fft)
    return WaveGANDiscriminator(length, cfg.width, cfg.phase_shuffle)


class WaveGAN(AdversarialFamily):
    """Raw-waveform GAN; WGAN-GP by default, any adversarial loss."""

    Config = WaveGANConfig
    name = "wavegan"
    needs = "audio"
    train_defaults = {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5, "beta2": 0.9}  # the paper's Adam
    description = "raw-audio GAN (Donahue 2019): 1-D convolutions, phase shuffle, WGAN-GP"

    def __init__(self, cfg: WaveGANConfig, spec, generator_only: bool = False) -> None:
        _check_audio(self.name, spec)
        _check_widths(cfg)
        super().__init__(cfg, spec, generator_only)

    def build_generator(self) -> nn.Module:
        return WaveGANGenerator(self.cfg.latent_dim, self.spec.shape[-1], self.cfg.width)

    def build_discriminator(self) -> nn.Module:
        return _discriminator(self.cfg, self.spec.shape[-1])


@dataclass
class CWaveGANConfig(WaveGANConfig):
    embed_dim: int = 10  # size of G's label embedding
    aux_weight: float = 0.0  # > 0: also ACGAN's class term, a classifier head on D's features (see CWaveGAN)


class CWaveGAN(CGAN):
    """Class-conditional WaveGAN: label embedding into G, projection D. The conditional hooks are cgan's.

    aux_weight > 0 adds ACGAN's class term (Odena et al. 2017) beside the projection: a linear classifier on D's
    last features, trained by D on real clips (cross-entropy with their labels) and by G on its fakes (the labels
    they were drawn with), both weighted by aux_weight; D's classifier never trains on fakes (acgan.py says why)."""

    Config = CWaveGANConfig
    name = "cwavegan"
    needs = "audio"
    train_defaults = WaveGAN.train_defaults
    conditioning = "class"
    description = "class-conditional WaveGAN: label embedding in G, projection D; labelled audio"

    def __init__(self, cfg: CWaveGANConfig, spec, generator_only: bool = False) -> None:
        _check_audio(self.name, spec)
        if spec.n_classes < 1:
            raise ValueError(f"cwavegan needs labelled clips but '{spec.name}' has no classes; use class sub-folders "
                             "(DATA/<class>/*.wav) or builtin:spoken-digits, or --family wavegan")
        _check_widths(cfg)
        if cfg.aux_weight < 0:
            raise ValueError(f"model.aux_weight must be >= 0, got {cfg.aux_weight}")
        self._aux: list[tuple[Tensor, Tensor]] = []
        AdversarialFamily.__init__(self, cfg, spec, generator_only)

    def build_generator(self) -> nn.Module:
        c = self.cfg
        base = WaveGANGenerator(c.latent_dim + c.embed_dim, self.spec.shape[-1], c.width)
        return ConditionalGenerator(base, self.n_classes, c.embed_dim)

    def build_discriminator(self) -> nn.Module:
        c, shape = self.cfg, tuple(self.spec.shape)
        base = _discriminator(c, shape[-1])
        d = ConditionalDiscriminator(base, self.n_classes, "projection", image=False,
                                     feature_dim=feature_dim(base, shape))
        if c.aux_weight > 0:
            d.classifier = nn.Linear(feature_dim(base, shape), self.n_classes)
        return d

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        if self.cfg.aux_weight <= 0:
            return self.D(x, cond)
        logits, feats = self.D.base.forward_with_features(x)
        self._aux.append((self.D.classifier(feats), cond))  # in call order: real, fake, then any penalty's
        return logits + (self.D.embed(cond).to(feats.dtype) * feats).sum(1)

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if self.cfg.aux_weight <= 0:
            return super().loss(phase, batch, ctx)
        self._aux = []
        out = super().loss(phase, batch, ctx)
        aux, self._aux = self._aux, []
        if phase == "d":
            cls, y = aux[0]  # the real clips'
            ce = F.cross_entropy(cls.float(), y)
            out.logs["d/cls"] = ce.detach()
            out.logs["d/cls_acc_real"] = (cls.argmax(1) == y).float().mean()
        elif phase == "g":
            cls, y = aux[0]  # the fakes'
            ce = F.cross_entropy(cls.float(), y)
            out.logs["g/cls"] = ce.detach()
        else:
            return out
        return StepOutput(out.loss + self.cfg.aux_weight * ce, out.logs)
