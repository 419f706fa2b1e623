"""The data contract: every dataset yields a `DataSpec` once and `Batch`es after that."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about the data to size itself.

    kind      "image" (x is (N, C, H, W) in [-1, 1]), "audio" (x is (N, 1, L) in [-1, 1]), "points" (x is (N, F),
              the data's own units) or "table"
              (x is (N, D): rows encoded by the table transforms of `table_state`; see data/table.py)
    shape     per-sample shape: (C, H, W) for images, (F,) for points, (D,) for tables
    n_classes 0 when unlabelled
    shape_b   image-to-image data only: the shape of domain B (the target; x_b of a Batch). () otherwise.
              `shape` is then domain A's (the input): edges -> items, 7x7 -> 28x28, grey -> colour.
    pairing   "" (one domain), "paired" (x_b[i] belongs to x[i]) or "unpaired" (A and B drawn independently)
    domains   names of the domains A and B of image-to-image data, e.g. ("edges", "items")
    sample_rate  audio only ("audio": x is (N, 1, L) in [-1, 1], mono clips of L samples; see data/audio.py): Hz
    text_dim  captioned images only: the size of a caption's embedding (Batch.extras["text_emb"]); 0 otherwise
    text_encoder  captioned images only: the frozen text encoder's id (ganforge.text.TextEncoder.id)
    table_state  table data only: the fitted TableTransformer's state as JSON text (its column types, transforms
              and output layout), so that a checkpoint's config alone decodes generated rows. "" otherwise.
    """

    kind: str
    shape: tuple[int, ...]
    n_classes: int = 0
    class_names: tuple[str, ...] = ()
    name: str = ""
    shape_b: tuple[int, ...] = ()
    pairing: str = ""
    domains: tuple[str, ...] = ()
    table_state: str = field(default="", repr=False)
    text_dim: int = 0
    text_encoder: str = ""
    sample_rate: int = 0

    @property
    def two_domain(self) -> bool:
        """Whether this is image-to-image data (a domain A and a domain B)."""
        return bool(self.pairing)

    @property
    def channels(self) -> int:
        return self.shape[0] if self.kind == "image" else 0

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of an image dataset."""
        if self.kind != "image":
            raise ValueError(f"dataset '{self.name}' holds {self.kind}, not images: it has no image size")
        return self.shape[1], self.shape[2]

    @property
    def dim(self) -> int:
        """Number of values in one sample."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["class_names"] = list(self.class_names)
        d["shape_b"] = list(self.shape_b)
        d["domains"] = list(self.domains)
        if not self.text_dim:  # absent for data without captions (older configs stay as they were)
            del d["text_dim"], d["text_encoder"]
        if not self.sample_rate:  # audio only
            del d["sample_rate"]
        if self.table_state:  # kept as a JSON object in config.json; absent for other data
            d["table_state"] = json.loads(self.table_state)
        else:
            del d["table_state"]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DataSpec":
        return cls(
            kind=d["kind"],
            shape=tuple(d["shape"]),
            n_classes=int(d.get("n_classes", 0)),
            class_names=tuple(d.get("class_names", ())),
            name=d.get("name", ""),
            shape_b=tuple(d.get("shape_b", ())),
            pairing=d.get("pairing", ""),
            domains=tuple(d.get("domains", ())),
            table_state=_table_state_text(d.get("table_state", "")),
            text_dim=int(d.get("text_dim", 0)),
            text_encoder=d.get("text_encoder", ""),
            sample_rate=int(d.get("sample_rate", 0)),
        )


def _table_state_text(state: Any) -> str:
    """A table transformer's state as JSON text (config.json holds it as an object)."""
    if not state:
        return ""
    return state if isinstance(state, str) else json.dumps(state)


@dataclass
class Batch:
    """One training batch. x: images (N, C, H, W) in [-1, 1] or points (N, F); y: labels (N,) or None.

    x_b (the paired/unpaired second domain) and text (captions) are filled by the families that need them.
    """

    x: Tensor
    y: Tensor | None = None
    x_b: Tensor | None = None
    text: list[str] | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str, channels_last: bool = False) -> "Batch":
        def move(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            t = t.to(device, non_blocking=True)
            if channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            return t

        return Batch(move(self.x), move(self.y), move(self.x_b), self.text, {k: move(v) for k, v in self.extras.items()})
