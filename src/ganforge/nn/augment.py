"""Discriminator augmentation for small datasets: DiffAugment and ADA (docs/architecture.md, "Trainer").

Both augment every image D sees, real and fake, in D's step and in G's step, with differentiable operations,
so that G learns the clean distribution while D cannot memorise the few real images it has (augmenting only the
reals would teach G to draw augmented images).

- DiffAugment (Zhao et al. 2020) applies its policy to every image: `color` (brightness +U(-0.5, 0.5),
  saturation x U(0, 2), contrast x U(0.5, 1.5)), `translation` (an integer shift of up to 1/8 of the size,
  zero fill) and `cutout` (a zeroed square of half the size at a random place). Policies are comma lists.
- ADA (Karras et al. 2020) applies each of its transforms with probability p, which a controller moves towards
  the overfitting target: r_t = E[sign(D(real))] is averaged over `interval` steps and p moves by
  batch x interval / (kimg x 1000) in the direction of r_t - target, so p can go from 0 to 1 in kimg thousand
  images. Every transform is applied with p < 1 and its distribution covers the identity, so D's view of the
  augmented set still determines the clean one ("non-leaking"; the paper, section 2.2). Groups: `blit` (x-flip,
  90-degree rotations, integer translation of up to 1/8), `geom` (isotropic scaling, rotation, anisotropic
  scaling, fractional translation), `color` (brightness, contrast, luma flip, hue rotation, saturation; grey
  images get brightness, contrast and luma flip). The geometric transforms compose into one affine map per
  image, sampled bilinearly with reflection padding (whole-pixel flips, rotations and shifts stay exact).

Randomness comes from torch's global generator, which every checkpoint saves: a resumed run draws the same
augmentations. The controller's state (p and its running sums) goes into the trainer's checkpoint state.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

DIFFAUGMENT_OPS = ("color", "translation", "cutout")
ADA_GROUPS = ("blit", "geom", "color")
KINDS = ("none", "diffaugment", "ada")
DEFAULT_POLICY = {"diffaugment": "color,translation,cutout", "ada": "blit,geom,color"}


def parse_policy(kind: str, policy: str) -> tuple[str, ...]:
    """'color,translation' -> ('color', 'translation'), checked against the kind's operations."""
    if kind not in KINDS:
        raise ValueError(f"train.augment must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "none":
        return ()
    known = DIFFAUGMENT_OPS if kind == "diffaugment" else ADA_GROUPS
    ops = tuple(p.strip() for p in (policy or DEFAULT_POLICY[kind]).split(",") if p.strip())
    bad = [p for p in ops if p not in known]
    if bad or not ops:
        raise ValueError(f"train.augment_policy for {kind} takes a comma list of {', '.join(known)}; "
                         f"got {policy!r}")
    return ops


# -- DiffAugment ----------------------------------------------------------------------------------------
def _rand(x: Tensor, *shape: int) -> Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, dtype=x.dtype)


def diff_color(x: Tensor) -> Tensor:
    x = x + (_rand(x, 1, 1, 1) - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_rand(x, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, 1, 1, 1) + 0.5) + mean


def _shift(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Each image moved by whole pixels (dy, dx: (N,) ints), zeros where nothing moves in."""
    n, _, h, w = x.shape
    pad_y, pad_x = int(dy.abs().max()), int(dx.abs().max())
    padded = F.pad(x, [pad_x, pad_x, pad_y, pad_y])
    iy = (torch.arange(h, device=x.device)[None, :] + pad_y - dy[:, None])  # (N, H)
    ix = (torch.arange(w, device=x.device)[None, :] + pad_x - dx[:, None])  # (N, W)
    b = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[b, iy[:, :, None], ix[:, None, :]].permute(0, 3, 1, 2)


def diff_translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    h, w = x.shape[2:]
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (x.shape[0],), device=x.device)
    dx = torch.randint(-sx, sx + 1, (x.shape[0],), device=x.device)
    return _shift(x, dy, dx)


def diff_cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)  # the square's centre
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = cy - ch // 2, cx - cw // 2
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


DIFFAUGMENT = {"color": diff_color, "translation": diff_translation, "cutout": diff_cutout}


# -- ADA ------------------------------------------------------------------------------------------------
def _gate(n: int, p: float, device: torch.device) -> Tensor:
    """(N,) bool: which images get a transform, each with probability p."""
    return torch.rand(n, device=device) < p


def _affine(n: int, device: torch.device) -> Tensor:
    return torch.eye(3, device=device).repeat(n, 1, 1)


def _scale2(sx: Tensor, sy: Tensor) -> Tensor:
    m = _affine(len(sx), sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate2(theta: Tensor) -> Tensor:
    m = _affine(len(theta), theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _translate2(tx: Tensor, ty: Tensor) -> Tensor:
    m = _affine(len(tx), tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def ada_geometric(x: Tensor, p: float, groups: tuple[str, ...]) -> Tensor:
    """The blit and geom transforms as one affine map per image, in normalised [-1, 1] coordinates.

    The map takes an output pixel's coordinates to where it is read in the input (grid_sample's convention),
    so each transform enters as its inverse; the distributions are symmetric, so drawing the inverse is the
    same as drawing the transform.
    """
    n, dev = x.shape[0], x.device
    h, w = x.shape[2:]
    m = _affine(n, dev)
    one = torch.ones(n, device=dev)
    if "blit" in groups:
        flip = _gate(n, p, dev) & (torch.rand(n, device=dev) < 0.5)
        m = m @ _scale2(torch.where(flip, -one, one), one)
        k = torch.where(_gate(n, p, dev), torch.randint(0, 4, (n,), device=dev), 0)
        quarter = _affine(n, dev)  # exact 0 / +-1 entries: a quarter turn moves pixel centres onto pixel centres
        cos, sin = torch.tensor([1.0, 0.0, -1.0, 0.0], device=dev)[k], torch.tensor([0.0, 1.0, 0.0, -1.0], device=dev)[k]
        quarter[:, 0, 0], quarter[:, 0, 1], quarter[:, 1, 0], quarter[:, 1, 1] = cos, -sin, sin, cos
        m = m @ quarter
        t = torch.where(_gate(n, p, dev)[:, None], (torch.rand(n, 2, device=dev) * 2 - 1) * 0.125, 0.0)
        # whole pixels: a shift of j pixels is 2j / size in normalised coordinates
        m = m @ _translate2(torch.round(t[:, 0] * w) * 2 / w, torch.round(t[:, 1] * h) * 2 / h)
    if "geom" in groups:
        s = torch.where(_gate(n, p, dev), torch.exp2(torch.randn(n, device=dev) * 0.2), 1.0)
        m = m @ _scale2(s, s)
        p_rot = 1 - math.sqrt(max(0.0, 1 - p))  # two rotations: the chance of any stays p
        theta = torch.where(_gate(n, p_rot, dev), (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0.0)
        m = m @ _rotate2(theta)
        a = torch.where(_gate(n, p, dev), torch.exp2(torch.randn(n, device=dev) * 0.2), 1.0)
        m = m @ _scale2(a, 1 / a)
        theta = torch.where(_gate(n, p_rot, dev), (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0.0)
        m = m @ _rotate2(theta)
        t = torch.where(_gate(n, p, dev)[:, None], torch.randn(n, 2, device=dev) * 0.125, 0.0)
        m = m @ _translate2(t[:, 0] * 2, t[:, 1] * 2)
    if bool((m == torch.eye(3, device=dev)).all()):
        return x
    if h != w:  # rotations act on pixels, not on the unit square: work in pixel-aspect coordinates
        aspect = _scale2(one * (w / max(h, w)), one * (h / max(h, w)))
        m = torch.linalg.inv(aspect) @ m @ aspect
    grid = F.affine_grid(m[:, :2, :].to(torch.float32), list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.to(x.dtype)


def ada_color(x: Tensor, p: float) -> Tensor:
    """Brightness, contrast, luma flip, hue rotation and saturation as one 4x4 colour matrix per image."""
    n, c, dev = x.shape[0], x.shape[1], x.device
    eye = torch.eye(4, device=dev).repeat(n, 1, 1)
    m = eye.clone()
    b = torch.where(_gate(n, p, dev), torch.randn(n, device=dev) * 0.2, 0.0)
    t = eye.clone()
    t[:, :3, 3] = b[:, None]
    m = t @ m
    s = torch.where(_gate(n, p, dev), torch.exp2(torch.randn(n, device=dev) * 0.5), 1.0)
    t = eye.clone()
    t[:, 0, 0] = t[:, 1, 1] = t[:, 2, 2] = s
    m = t @ m
    v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)  # the luma axis
    flip = _gate(n, p, dev) & (torch.rand(n, device=dev) < 0.5)
    householder = eye - 2 * torch.outer(v, v)[None] * flip.float()[:, None, None]
    m = householder @ m
    if c == 3:
        theta = torch.where(_gate(n, p, dev), (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0.0)
        m = _rotate_about(v[:3], theta) @ m
        sat = torch.where(_gate(n, p, dev), torch.exp2(torch.randn(n, device=dev) * 1.0), 1.0)
        vv = torch.outer(v, v)[None]
        m = (vv + (eye - vv) * sat[:, None, None]) @ m
    if bool((m == torch.eye(4, device=dev)).all()):
        return x
    xf = x.float()
    if c == 1:  # grey: brightness, contrast and the luma flip act on the one channel as on r = g = b
        rgb = xf.expand(-1, 3, -1, -1)
        out = torch.einsum("nij,njhw->nihw", m[:, :3, :3], rgb) + m[:, :3, 3, None, None]
        return out.mean(dim=1, keepdim=True).to(x.dtype)
    out = torch.einsum("nij,njhw->nihw", m[:, :3, :3], xf) + m[:, :3, 3, None, None]
    return out.to(x.dtype)


def _rotate_about(axis: Tensor, theta: Tensor) -> Tensor:
    """(N, 4, 4) rotations by theta about a unit 3-vector (Rodrigues' formula), as homogeneous matrices."""
    n = len(theta)
    k = torch.zeros(3, 3, device=axis.device)
    k[0, 1], k[0, 2], k[1, 0], k[1, 2], k[2, 0], k[2, 1] = -axis[2], axis[1], axis[2], -axis[0], -axis[1], axis[0]
    s, c = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    r = torch.eye(3, device=axis.device)[None] + s * k[None] + (1 - c) * (k @ k)[None]
    m = torch.eye(4, device=axis.device).repeat(n, 1, 1)
    m[:, :3, :3] = r
    return m


# -- the augmenter the trainer holds --------------------------------------------------------------------
class Augmenter:
    """What D sees: x -> augmented x (differentiable), with ADA's p controller. A plain object (no weights):
    the trainer keeps it, the family calls it, and its state travels in the checkpoint's trainer state."""

    def __init__(self, kind: str = "none", policy: str = "", p: float = 0.0, target: float = 0.6,
                 interval: int = 4, kimg: float = 100.0) -> None:
        self.ops = parse_policy(kind, policy)
        self.kind = kind
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"train.augment_p must be in [0, 1], got {p}")
        if kind == "ada" and not (0.0 < target < 1.0 or target == 0.0):
            raise ValueError(f"train.ada_target must be in (0, 1) (or 0: keep augment_p fixed), got {target}")
        if interval < 1 or kimg <= 0:
            raise ValueError(f"train.ada_interval must be >= 1 and train.ada_kimg > 0, got {interval} and {kimg}")
        self.p, self.target, self.interval, self.kimg = float(p), float(target), int(interval), float(kimg)
        self._sum, self._count, self._images = 0.0, 0, 0
        self.rt: float | None = None  # the last r_t the controller acted on

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    @property
    def adaptive(self) -> bool:
        return self.kind == "ada" and self.target > 0

    def __call__(self, x: Tensor) -> Tensor:
        if self.kind == "diffaugment":
            for op in self.ops:
                x = DIFFAUGMENT[op](x)
            return x
        if self.kind == "ada" and self.p > 0:
            groups = tuple(g for g in self.ops if g != "color")
            if groups:
                x = ada_geometric(x, self.p, groups)
            if "color" in self.ops:
                x = ada_color(x, self.p)
        return x

    def observe(self, rt_sign_mean: float, batch_size: int) -> bool:
        """Add one step's E[sign(D(real))]; every `interval` steps move p. True when p was adjusted."""
        if not self.adaptive:
            return False
        self._sum += float(rt_sign_mean)
        self._count += 1
        self._images += int(batch_size)
        if self._count < self.interval:
            return False
        self.rt = self._sum / self._count
        step = self._images / (self.kimg * 1000.0)
        self.p = min(1.0, max(0.0, self.p + math.copysign(step, self.rt - self.target)))
        self._sum, self._count, self._images = 0.0, 0, 0
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "p": self.p, "sum": self._sum, "count": self._count, "images": self._images,
                "rt": self.rt}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind", self.kind) != self.kind:
            raise ValueError(f"the checkpoint was trained with --augment {state['kind']}, not {self.kind}")
        self.p = float(state["p"])
        self._sum, self._count, self._images = float(state["sum"]), int(state["count"]), int(state["images"])
        self.rt = state.get("rt")
