"""Class-conditional wrappers around any generator / discriminator (Mirza & Osindero 2014; Miyato & Koyama 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConditionalGenerator(nn.Module):
    """G(z, y): a learned embedding of the label is concatenated to z and fed to a z -> x generator.

    `base` must take inputs of size latent_dim + embed_dim.
    """

    def __init__(self, base: nn.Module, n_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.base = base
        self.embed = nn.Embedding(n_classes, embed_dim)
        self.n_classes = n_classes

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.base(torch.cat([z, self.embed(y).to(z.dtype)], 1))


class ConditionalDiscriminator(nn.Module):
    """D(x, y) -> one logit per sample (N,).

    mode "concat": the label enters with the input: one-hot feature maps appended as extra channels for
    images (`base` built for C + K channels), or a learned embedding appended to the flattened input for
    points and MLPs (`base` built for F + embed_dim inputs).
    mode "projection" (Miyato & Koyama 2018): logit = base(x) + <embed(y), phi(x)> where phi(x) are the
    base's last features (`base.forward_with_features`).
    """

    def __init__(self, base: nn.Module, n_classes: int, mode: str, *, image: bool, embed_dim: int = 0,
                 feature_dim: int = 0) -> None:
        super().__init__()
        if mode not in ("concat", "projection"):
            raise ValueError(f"conditional D mode must be 'concat' or 'projection', got '{mode}'")
        self.base, self.n_classes, self.mode, self.image = base, n_classes, mode, image
        if mode == "projection":
            self.embed = nn.Embedding(n_classes, feature_dim)
            nn.init.normal_(self.embed.weight, std=0.02)
        elif not image:
            self.embed = nn.Embedding(n_classes, embed_dim)

    def project(self, logits: Tensor, feats: Tensor, y: Tensor) -> Tensor:
        """Projection mode's logit from the base's (logits, features) and labels y: logits + <embed(y), feats>."""
        return logits + (self.embed(y).to(feats.dtype) * feats).sum(1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if self.mode == "projection":
            return self.project(*self.base.forward_with_features(x), y)
        if self.image:
            maps = F.one_hot(y, self.n_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            return self.base(torch.cat([x, maps], 1))
        return self.base(torch.cat([x.flatten(1), self.embed(y).to(x.dtype)], 1))


class AuxClassifierDiscriminator(nn.Module):
    """D(x) -> (adversarial logits (N,), head outputs (N, K)): a second head on the base's last features,
    sharing its trunk. ACGAN's class logits (Odena et al. 2017; the label never enters D) or InfoGAN's Q
    network (Chen et al. 2016; `hidden` > 0 puts a LeakyReLU hidden layer between trunk and outputs)."""

    def __init__(self, base: nn.Module, n_classes: int, feature_dim: int, hidden: int = 0) -> None:
        super().__init__()
        self.base = base
        self.classifier: nn.Module = (nn.Linear(feature_dim, n_classes) if hidden <= 0 else nn.Sequential(
            nn.Linear(feature_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_classes)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits, feats = self.base.forward_with_features(x)
        return logits, self.classifier(feats)


class ProxyEmbeddingHead(nn.Module):
    """ReACGAN's classifier (Kang et al. 2021): D's features projected to a unit-norm embedding, and one learned
    unit-norm proxy per class. forward(feats) -> (N, dim) embeddings; `proxies` is the (K, dim) table."""

    def __init__(self, feature_dim: int, n_classes: int, dim: int = 128) -> None:
        super().__init__()
        self.project = nn.Linear(feature_dim, dim)
        self.proxy = nn.Embedding(n_classes, dim)

    @property
    def proxies(self) -> Tensor:
        return F.normalize(self.proxy.weight, dim=1)

    def forward(self, feats: Tensor) -> Tensor:
        return F.normalize(self.project(feats), dim=1)


def d2d_cross_entropy(embed: Tensor, proxies: Tensor, y: Tensor, temperature: float = 0.5,
                      margin: float = 0.98) -> Tensor:
    """ReACGAN's data-to-data cross-entropy (Kang et al. 2021, eq. 5), averaged over the batch.

    For sample i with unit embedding f_i and class proxy v = proxies[y_i]:
        -log( exp(-P_i) / (exp(-P_i) + sum_{j: y_j != y_i} exp(N_ij)) ),
        P_i = max(0, margin - f_i.v) / T   (the pull towards its proxy stops once the cosine passes the margin)
        N_ij = max(0, f_i.f_j - (1 - margin)) / T   (other-class samples repel only while they are close)
    Same-class samples are never negatives, and the margins make easy pairs contribute no gradient: the
    classifier stops pushing G towards ever more typical images, which is what collapses plain ACGAN's classes.
    """
    embed, proxies = embed.float(), proxies.float()
    pos = torch.relu(margin - (embed * proxies[y]).sum(1)) / temperature                   # (N,)
    sim = torch.relu(embed @ embed.t() - (1.0 - margin)) / temperature                     # (N, N)
    negative = y[:, None] != y[None, :]                                                   # excludes i == j too
    logits = torch.cat([-pos[:, None], sim.masked_fill(~negative, float("-inf"))], dim=1)
    return -(logits[:, 0] - torch.logsumexp(logits, dim=1)).mean()


class SeparateAuxClassifierDiscriminator(nn.Module):
    """D(x) -> (adversarial logits (N,), head outputs (N, K)) like AuxClassifierDiscriminator, but the head
    reads a trunk of its own (`cls_base`) instead of sharing the adversarial one: the adversarial features
    are then not spent on telling the classes apart."""

    def __init__(self, base: nn.Module, cls_base: nn.Module, n_outputs: int, feature_dim: int) -> None:
        super().__init__()
        self.base, self.cls_base = base, cls_base
        self.classifier: nn.Module = nn.Linear(feature_dim, n_outputs)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _, feats = self.cls_base.forward_with_features(x)
        return self.base(x), self.classifier(feats)


class ConditionalAuxClassifierDiscriminator(nn.Module):
    """D(x, y) -> (adversarial logits (N,), head outputs (N, K)): a label-conditional adversarial D (`cond_d`,
    e.g. ConditionalDiscriminator) and a classifier with a trunk of its own (`cls_base`) that never sees y."""

    def __init__(self, cond_d: nn.Module, cls_base: nn.Module, n_outputs: int, feature_dim: int) -> None:
        super().__init__()
        self.cond_d, self.cls_base = cond_d, cls_base
        self.classifier: nn.Module = nn.Linear(feature_dim, n_outputs)

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        _, feats = self.cls_base.forward_with_features(x)
        return self.cond_d(x, y), self.classifier(feats)


class TextPreview(nn.Module):
    """K preview captions kept in a text generator's buffers: `preview` (K, E) their embeddings and `preview_text`
    (K, PREVIEW_BYTES) their UTF-8 text, zero-padded, so a checkpoint names them. `default_text(n)` cycles through
    them: what a text model draws when given no caption (the trainer's sample grids, `sample --n`)."""

    PREVIEW_BYTES = 256

    def __init__(self, text_dim: int, preview: int = 10) -> None:
        super().__init__()
        self.register_buffer("preview", torch.zeros(preview, text_dim))
        self.register_buffer("preview_text", torch.zeros(preview, self.PREVIEW_BYTES, dtype=torch.uint8))

    def set_preview(self, texts: list[str], embeddings: Tensor) -> None:
        """Keep K captions and their embeddings (a caption is cut at PREVIEW_BYTES bytes, on a character)."""
        codes = torch.zeros_like(self.preview_text)
        for i, text in enumerate(texts):
            raw = text.encode("utf-8")[:self.PREVIEW_BYTES].decode("utf-8", "ignore").encode("utf-8")
            codes[i, :len(raw)] = torch.tensor(list(raw), dtype=torch.uint8)
        with torch.no_grad():
            self.preview.copy_(embeddings.to(self.preview))
            self.preview_text.copy_(codes)

    @property
    def preview_captions(self) -> list[str]:
        return [bytes(row.tolist()).rstrip(b"\0").decode("utf-8", "replace") for row in self.preview_text.cpu()]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the captions' text was kept: their preview captions load unnamed
        state_dict.setdefault(prefix + "preview_text", torch.zeros_like(self.preview_text))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def default_text(self, n: int) -> Tensor:
        """n embeddings cycling through the preview captions."""
        return self.preview[torch.arange(n, device=self.preview.device) % self.preview.shape[0]]


class TextConditionalGenerator(TextPreview):
    """G(z, t): a sentence embedding t (N, E) compressed by a fully connected layer with a leaky ReLU (Reed et al.
    2016: 1024 -> 128) and concatenated to z, fed to a z -> x generator built for latent_dim + proj_dim inputs.
    Without t it draws the preview captions (TextPreview)."""

    def __init__(self, base: nn.Module, text_dim: int, proj_dim: int, preview: int = 10) -> None:
        super().__init__(text_dim, preview)
        self.base = base
        self.project = nn.Sequential(nn.Linear(text_dim, proj_dim), nn.LeakyReLU(0.2))

    def forward(self, z: Tensor, t: Tensor | None = None) -> Tensor:
        t = self.default_text(z.shape[0]) if t is None else t
        return self.base(torch.cat([z, self.project(t.to(z.dtype))], 1))


class TextConditionalDiscriminator(nn.Module):
    """D(x, t) -> one logit per sample (N,): the base's last features phi(x) and the compressed embedding, joined
    and scored by a small head. Reed et al. (2016) replicate the compressed text over D's 4x4 map, depth-concatenate
    it and apply a 1x1 and a 4x4 convolution; a hidden layer over [phi(x), proj(t)] with phi(x) that flattened map
    is the same family of functions and works for the MLP backbone too."""

    def __init__(self, base: nn.Module, feature_dim: int, text_dim: int, proj_dim: int, hidden: int) -> None:
        super().__init__()
        self.base = base
        self.project = nn.Sequential(nn.Linear(text_dim, proj_dim), nn.LeakyReLU(0.2))
        self.head = nn.Sequential(nn.Linear(feature_dim + proj_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        _, feats = self.base.forward_with_features(x)
        return self.head(torch.cat([feats, self.project(t.to(feats.dtype))], 1)).squeeze(1)


class TextProjectionDiscriminator(nn.Module):
    """D(x, t) = psi(phi(x)) + <W proj(t), phi(x)>: the projection discriminator (Miyato & Koyama 2018) with the
    class embedding replaced by a linear map of the compressed sentence embedding. The text then acts on D's
    score through an inner product with the image features rather than through a shared hidden layer."""

    def __init__(self, base: nn.Module, feature_dim: int, text_dim: int, proj_dim: int) -> None:
        super().__init__()
        self.base = base
        self.project = nn.Sequential(nn.Linear(text_dim, proj_dim), nn.LeakyReLU(0.2), nn.Linear(proj_dim, feature_dim))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        logits, feats = self.base.forward_with_features(x)
        return logits + (self.project(t.to(feats.dtype)) * feats).sum(1)
