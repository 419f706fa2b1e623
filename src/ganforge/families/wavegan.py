"""WaveGAN (Donahue, McAuley & Puckette 2019): GANs on raw audio waveforms (nn/wavegan.py's networks).

`wavegan`: 1-D transposed-convolution G, 1-D D with phase shuffle, trained with WGAN-GP (the paper's: 5 critic
steps, penalty 10, Adam 1e-4 (0.5, 0.9)). `cwavegan`: the same conditioned on the clip's class (e.g. the digit
spoken): G reads a learned label embedding beside z, D is a projection discriminator (Miyato & Koyama 2018), as
`cgan`'s. Both need audio data (`DataSpec(kind="audio")`): builtin:spoken-digits or a folder of WAV/FLAC files.

Width: the paper's d = 64 (about 19M parameters in G) is a GPU model; the default here is d = 32 for CPU
budgets (model.width).

Options beyond the paper, off by default (recipe spoken-digits-cwavegan v2 turns on spec_width and mismatch_weight;
README "Sound" gives what they bought): `model.spec_width` > 0 puts a spectrogram view beside D (nn.wavegan.SpectrogramBranch: log |STFT|
of `model.spec_n_fft` points, hop n_fft / 2, through a 2-D stack; one joint logit, and the projection and class
heads read both views' features). cwavegan's `model.mismatch_weight` w makes D matching-aware (Reed et al. 2016):
a real clip shown with a wrong label is one more fake, L_D = real + (1 - w) fake + w wrong. `model.aux_weight`
adds ACGAN's class term (Odena et al. 2017).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import ConditionalDiscriminator, ConditionalGenerator
from ..nn.wavegan import WaveGANDiscriminator, WaveGANGenerator, WaveSpecDiscriminator
from .backbones import feature_dim
from ..data.spec import Batch
from .base import AdversarialConfig, AdversarialFamily, StepOutput, d_readout
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
    spec_width: int = 0     # > 0: D also reads the clip's log-spectrogram (nn.wavegan.SpectrogramBranch; 0: the paper's D)
    spec_n_fft: int = 256   # that spectrogram's STFT size (hop n_fft / 2)


def _check_audio(name: str, spec) -> None:
    if spec.kind != "audio":
        raise ValueError(f"{name} generates audio but '{spec.name}' holds {spec.kind}; give --data builtin:spoken-digits "
                         "or a folder of .wav/.flac files")


def _check_widths(cfg: WaveGANConfig, length: int) -> None:
    if cfg.width < 1 or cfg.phase_shuffle < 0 or cfg.spec_width < 0:
        raise ValueError(f"model.width must be >= 1, model.phase_shuffle and model.spec_width >= 0, got {cfg.width}, "
                         f"{cfg.phase_shuffle}, {cfg.spec_width}")
    n = cfg.spec_n_fft
    if cfg.spec_width > 0 and (n < 16 or n & (n - 1) or n // 2 >= length):
        raise ValueError(f"model.spec_n_fft must be a power of two from 16 to below twice the clip length ({length}), "
                         f"e.g. 256, got {n}")


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
        _check_widths(cfg, spec.shape[-1])
        super().__init__(cfg, spec, generator_only)

    def build_generator(self) -> nn.Module:
        return WaveGANGenerator(self.cfg.latent_dim, self.spec.shape[-1], self.cfg.width)

    def build_discriminator(self) -> nn.Module:
        return _discriminator(self.cfg, self.spec.shape[-1])


@dataclass
class CWaveGANConfig(WaveGANConfig):
    embed_dim: int = 10  # size of G's label embedding
    aux_weight: float = 0.0  # > 0: also ACGAN's class term, a classifier head on D's features (see CWaveGAN)
    mismatch_weight: float = 0.0  # > 0: D also learns (real clip, wrong label) as fake (see CWaveGAN)


class CWaveGAN(CGAN):
    """Class-conditional WaveGAN: label embedding into G, projection D. The conditional hooks are cgan's.

    mismatch_weight w > 0 makes D matching-aware (Reed et al. 2016, as gan-int-cls): the real clips shown with a
    label drawn uniformly among the other K - 1 are one more fake, L_D = real(s_r) + (1 - w) fake(s_f) + w fake(s_w),
    s_w reusing the real clips' features under the wrong label (no second pass through D). G's loss is unchanged.
    D then learns which digit a clip says from the real clips alone, and keeps learning it against G's fakes.

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
        _check_widths(cfg, spec.shape[-1])
        if cfg.aux_weight < 0:
            raise ValueError(f"model.aux_weight must be >= 0, got {cfg.aux_weight}")
        if not 0.0 <= cfg.mismatch_weight < 1.0:
            raise ValueError(f"model.mismatch_weight must be in [0, 1), got {cfg.mismatch_weight}")
        if cfg.mismatch_weight > 0 and spec.n_classes < 2:
            raise ValueError(f"model.mismatch_weight needs at least 2 classes (a wrong label to show D), '{spec.name}' "
                             "has 1; set model.mismatch_weight=0")
        self._seen: list[tuple[Tensor, Tensor, Tensor]] = []
        AdversarialFamily.__init__(self, cfg, spec, generator_only)

    def build_generator(self) -> nn.Module:
        c = self.cfg
        base = WaveGANGenerator(c.latent_dim + c.embed_dim, self.spec.shape[-1], c.width)
        return ConditionalGenerator(base, self.n_classes, c.embed_dim)

    def build_discriminator(self) -> nn.Module:
        c, shape = self.cfg, tuple(self.spec.shape)
        base = _discriminator(c, shape[-1])
        dim = feature_dim(base, shape)
        d = ConditionalDiscriminator(base, self.n_classes, "projection", image=False, feature_dim=dim)
        if c.aux_weight > 0:
            d.classifier = nn.Linear(dim, self.n_classes)
        return d

    @property
    def _records(self) -> bool:
        return self.cfg.aux_weight > 0 or self.cfg.mismatch_weight > 0

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        if not self._records:
            return self.D(x, cond)
        logits, feats = self.D.base.forward_with_features(x)
        self._seen.append((logits, feats, cond))  # in call order: real, fake, then any penalty's
        return self.D.project(logits, feats, cond)

    def wrong_labels(self, y: Tensor) -> Tensor:
        """Each label moved to another class, uniformly among the other K - 1."""
        shift = self.rows(y.shape[0], lambda m: torch.randint(1, self.n_classes, (m,)))  # this rank's rows under DDP
        return (y + shift.to(y.device)) % self.n_classes

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if not self._records:
            return super().loss(phase, batch, ctx)
        self._seen = []
        out = super().loss(phase, batch, ctx)
        seen, self._seen = self._seen, []
        if phase not in ("d", "g"):
            return out
        loss, logs, c = out.loss, dict(out.logs), self.cfg
        logits, feats, y = seen[0]  # the real clips' in D's phase, the fakes' in G's
        if phase == "d" and c.mismatch_weight > 0:
            # matching-aware D (Reed et al. 2016, as gan-int-cls): L = real(s_r) + (1 - w) fake(s_f) + w fake(s_w),
            # written as the base loss + w (obj.d(s_r, s_w) - obj.d(s_r, s_f)), every loss's terms being additive
            s_real = self.D.project(logits, feats, y).float()
            s_wrong = self.D.project(logits, feats, self.wrong_labels(y)).float()
            s_fake = self.D.project(*seen[1]).float()
            target = 1.0 - c.label_smoothing
            obj = self.objective
            extra = c.mismatch_weight * (obj.d(s_real, s_wrong, target) - obj.d(s_real, s_fake, target))
            loss = loss + extra
            logs["d/adv"] = logs["d/adv"] + extra.detach()  # as gan-int-cls: the adversarial loss with its wrong term
            logs["d/wrong"] = d_readout(obj, s_wrong.detach())
        if c.aux_weight > 0:
            cls = self.D.classifier(feats)
            ce = F.cross_entropy(cls.float(), y)
            if phase == "d":  # the real clips' labels
                logs["d/cls"] = ce.detach()
                logs["d/cls_acc_real"] = (cls.argmax(1) == y).float().mean()
            else:  # the labels the fakes were drawn with
                logs["g/cls"] = ce.detach()
            loss = loss + c.aux_weight * ce
        logs[f"{phase}/loss"] = loss.detach()
        return StepOutput(loss, logs)
