"""WaveGAN's networks (Donahue, McAuley & Puckette 2019, "Adversarial Audio Synthesis"): DCGAN flattened to 1-D.

G: z -> a dense layer to (16 d, L / 4^5) -> five transposed 1-D convolutions (kernel 25, stride 4), channels
16d, 8d, 4d, 2d, d, 1, ReLU between, tanh at the end: 16,384 samples from 16 (the paper's d = 64; the width `d` is
an option, smaller for CPU budgets). D mirrors it: five 1-D convolutions (kernel 25, stride 4, leaky ReLU 0.2),
phase shuffle (n = 2) after each of the first four, then a dense layer to one logit. No batch normalisation
(WaveGAN trains with WGAN-GP, whose penalty is per sample).

Phase shuffle (the paper's section 3.3): each sample's activations are shifted in time by a random k in
[-n, n], the edges filled by reflection, so D cannot tell real from fake by the periodic artefacts of transposed
convolutions. Shapes are kept.

Clip lengths: L must be a multiple of 4^5 = 1024 (16,384 at 16 kHz is the paper's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STRIDE = 4
KERNEL = 25
LAYERS = 5


def phase_shuffle(x: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """x (N, C, T) with each sample shifted by its own k ~ U{-n..n}, reflection-padded at the edges."""
    if n <= 0:
        return x
    if x.shape[-1] <= n:
        raise ValueError(f"phase shuffle by up to {n} needs more than {n} time steps, got {x.shape[-1]}")
    N, C, T = x.shape
    k = torch.randint(-n, n + 1, (N,), device=x.device, generator=generator)
    padded = F.pad(x, (n, n), mode="reflect")  # (N, C, T + 2n); padded[t + n] = x[t]
    idx = torch.arange(T, device=x.device)[None, :] + n - k[:, None]  # out[t] = x[t - k]
    return padded.gather(2, idx[:, None, :].expand(N, C, T))


class PhaseShuffle(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = int(n)

    def forward(self, x: Tensor) -> Tensor:
        return phase_shuffle(x, self.n) if self.training else x

    def extra_repr(self) -> str:
        return f"n={self.n}"


def _check_length(length: int) -> int:
    base = STRIDE ** LAYERS
    if length % base or length < base:
        raise ValueError(f"WaveGAN's clips must be a multiple of {base} samples (16384 at 16 kHz is the paper's), "
                         f"got {length}")
    return length // base


class WaveGANGenerator(nn.Module):
    """z (N, latent_dim) -> clips (N, 1, length) in [-1, 1]."""

    def __init__(self, latent_dim: int, length: int = 16384, width: int = 64) -> None:
        super().__init__()
        self.t0, self.width = _check_length(length), int(width)
        chans = [16 * width, 8 * width, 4 * width, 2 * width, width, 1]
        self.fc = nn.Linear(latent_dim, chans[0] * self.t0)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers += [nn.ReLU(), nn.ConvTranspose1d(a, b, KERNEL, STRIDE, padding=11, output_padding=1)]
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).view(z.shape[0], 16 * self.width, self.t0))


class WaveGANDiscriminator(nn.Module):
    """clips (N, 1, length) -> one logit per sample (N,)."""

    def __init__(self, length: int = 16384, width: int = 64, shuffle: int = 2) -> None:
        super().__init__()
        t_end = _check_length(length)
        chans = [1, width, 2 * width, 4 * width, 8 * width, 16 * width]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers += [nn.Conv1d(a, b, KERNEL, STRIDE, padding=11), nn.LeakyReLU(0.2)]
            if i < LAYERS - 1 and shuffle > 0:
                layers.append(PhaseShuffle(shuffle))
        self.net = nn.Sequential(*layers)
        self.fc = nn.Linear(16 * width * t_end, 1)

    def forward_with_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(x).flatten(1)
        return self.fc(h).squeeze(1), h

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_features(x)[0]


class SpecGANGenerator(nn.Module):
    """SpecGAN's G (the same paper): a DCGAN generator of (1, bins, frames) normalised log-magnitude spectrograms,
    with the normalisation (per frequency bin: mean and std of log |STFT| over the training clips, set by the family's
    bind_data) kept as buffers, so a checkpoint alone turns its spectrograms back into audio (`to_audio`).

    A spectrogram image v in [-1, 1] stands for log |S| = mean + std * CLIP_STD * v (the paper clips the
    standardised values at 3 standard deviations and rescales to [-1, 1])."""

    CLIP_STD = 3.0

    def __init__(self, net: nn.Module, bins: int, frames: int, n_fft: int, hop: int, length: int) -> None:
        super().__init__()
        self.net = net
        self.bins, self.frames, self.n_fft, self.hop, self.length = bins, frames, n_fft, hop, length
        self.register_buffer("bin_mean", torch.zeros(bins))
        self.register_buffer("bin_std", torch.ones(bins))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)

    def encode(self, x: Tensor) -> Tensor:
        """Clips (N, 1, length) -> normalised spectrogram images (N, 1, bins, frames) in [-1, 1]."""
        from ..data.audio import log_spectrogram

        s = log_spectrogram(x, self.n_fft, self.hop)[:, :self.bins, :self.frames]
        v = (s - self.bin_mean[:, None]) / (self.bin_std[:, None] * self.CLIP_STD)
        return v.clamp(-1.0, 1.0)[:, None].to(x.dtype)

    def magnitude(self, img: Tensor) -> Tensor:
        """Spectrogram images (N, 1, bins, frames) -> |STFT| (N, n_fft // 2 + 1, length // hop + 1), the bins and
        frames cut by `encode` put back as zeros."""
        v = img.float()[:, 0]
        mag = torch.exp(v * self.CLIP_STD * self.bin_std[:, None] + self.bin_mean[:, None])
        full = torch.zeros(v.shape[0], self.n_fft // 2 + 1, self.length // self.hop + 1, device=v.device)
        full[:, :self.bins, :self.frames] = mag
        return full

    def to_audio(self, img: Tensor, n_iter: int = 32) -> Tensor:
        """Spectrogram images -> clips (N, 1, length) in [-1, 1] by Griffin-Lim (data.audio.griffin_lim)."""
        from ..data.audio import griffin_lim

        x = griffin_lim(self.magnitude(img), self.n_fft, self.hop, self.length, n_iter=n_iter)
        return x.clamp(-1.0, 1.0)[:, None]


class SpectrogramBranch(nn.Module):
    """A second view of the clip for D, as the spectrogram discriminators of later audio GANs (e.g. UnivNet, Jang et
    al. 2021): the log-magnitude STFT log(|S| + floor) (Hann window of `n_fft`, hop n_fft / 2, centred frames),
    fixed standardisation, then a 2-D stack of 4x4 convolutions (leaky ReLU 0.2, no normalisation, so any penalty
    stays per sample), each halving the frequency and time axes that are still longer than 4 (kernel 3, stride 1,
    along an axis already down to 4 or less), down to a grid of at most 4 x 4, flattened. Differentiable
    throughout, so G is told about the spectral envelope over time directly, which a waveform D on 16,384 samples
    learns slowly.

    `floor` (magnitude) bounds d log / d|S| by 1 / floor: the spoken digits' own noise floor is about 1e-3 (the 1st
    percentile of their |S| at n_fft 256 is 1.5e-3), so 1e-3 changes little of what D sees of real clips, while
    near-silent fakes no longer get log-slopes up to 1e6 (with a floor of 1e-6, a D trained 20 minutes had a
    gradient norm of about 9e3 per real clip). LOG_MEAN and LOG_STD are set for n_fft 256; other sizes shift log |S|
    by about log(n_fft / 256)."""

    LOG_MEAN, LOG_STD = -4.0, 3.0  # roughly log |STFT| of the spoken digits over all bins (as the speech classifier)

    def __init__(self, length: int, width: int = 16, n_fft: int = 256, floor: float = 1e-3) -> None:
        super().__init__()
        if width < 1 or n_fft < 16 or n_fft & (n_fft - 1) or n_fft // 2 >= length or floor <= 0:
            raise ValueError(f"the spectrogram branch needs width >= 1, a power-of-two n_fft >= 16 below twice the clip "
                             f"length ({length}) and floor > 0, got {width}, {n_fft}, {floor}")
        self.n_fft, self.hop, self.floor = int(n_fft), int(n_fft) // 2, float(floor)
        bins, frames = self.n_fft // 2 + 1, length // self.hop + 1
        layers: list[nn.Module] = []
        c, k = 1, 0
        while max(bins, frames) > 4:
            sb, sf = (2 if bins > 4 else 1), (2 if frames > 4 else 1)
            kernel = (4 if sb == 2 else 3, 4 if sf == 2 else 3)
            layers += [nn.Conv2d(c, width * 2 ** k, kernel, (sb, sf), 1), nn.LeakyReLU(0.2)]
            c, k = width * 2 ** k, k + 1
            bins, frames = bins // sb, frames // sf
        self.net = nn.Sequential(*layers)
        self.out_dim = c * bins * frames

    def image(self, x: Tensor) -> Tensor:
        """Clips (N, 1, L) -> standardised log(|S| + floor) (N, 1, n_fft / 2 + 1, L / hop + 1), fp32."""
        from ..data.audio import log_spectrogram

        s = log_spectrogram(x, self.n_fft, self.hop, floor=self.floor)
        return ((s - self.LOG_MEAN) / self.LOG_STD)[:, None]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.image(x)).flatten(1)


class WaveSpecDiscriminator(nn.Module):
    """WaveGAN's waveform D and a SpectrogramBranch side by side: one logit from both views' features (their
    concatenation through one dense layer), and those features for a projection head."""

    def __init__(self, length: int = 16384, width: int = 64, shuffle: int = 2, spec_width: int = 16,
                 n_fft: int = 256) -> None:
        super().__init__()
        self.wave = WaveGANDiscriminator(length, width, shuffle)
        self.spec = SpectrogramBranch(length, spec_width, n_fft)
        self.fc = nn.Linear(self.wave.fc.in_features + self.spec.out_dim, 1)
        del self.wave.fc  # the joint head replaces the waveform D's own: self.wave is used for its .net only

    def forward_with_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.cat([self.wave.net(x).flatten(1), self.spec(x)], 1)
        return self.fc(h).squeeze(1), h

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_features(x)[0]
