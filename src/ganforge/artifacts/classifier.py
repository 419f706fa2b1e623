"""Classifier: a run's classifier (sgan's discriminator, dann's label classifier: the family's D), loaded alone and
measured on labelled data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..checkpoint import load_tensors, refuse_nonfinite, resolve_checkpoint
from ..data.spec import DataSpec
from ..families import build_family


class Classifier:
    """`Classifier.from_checkpoint("runs/fashion-sgan").evaluate(test_data)` -> accuracy, per class, confusion."""

    def __init__(self, family, config: dict[str, Any], source: Path) -> None:
        self.family = family
        self.D = family.D.eval()
        self.config = config
        self.source = source

    @classmethod
    def _build(cls, config: dict[str, Any], weights: dict[str, Tensor], source: Path, device: str) -> "Classifier":
        spec = DataSpec.from_json(config["spec"])
        family = build_family(config["family"], config["model"], spec)
        if not family.classifies:
            raise ValueError(f"a '{config['family']}' discriminator is not a classifier; --classifier needs an sgan or "
                             "dann run")
        family.D.load_state_dict(weights)
        family.to(device)
        return cls(family, config, source)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> "Classifier":
        """D's weights from a run directory or checkpoint (nothing of G, no optimizer state)."""
        ckpt = resolve_checkpoint(path, optim=False)  # checked and intact, as Sampler.from_checkpoint reads it
        config = json.loads((ckpt / "config.json").read_text())
        weights = {k[2:]: v for k, v in load_tensors(ckpt, "model.safetensors").items() if k.startswith("D.")}
        refuse_nonfinite(ckpt, weights)
        return cls._build(config, weights, ckpt, device)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "Classifier":
        """A classifier written by `save`: one safetensors file with its config in the metadata."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if "ganforge_classifier" not in meta:
            raise ValueError(f"{path} is not a ganforge classifier (written by `ganforge evaluate --classifier --save`)")
        return cls._build(json.loads(meta["ganforge_classifier"]), load_file(str(path)), Path(path), device)

    def save(self, path: str | Path) -> Path:
        """One self-contained file: D's weights plus family, model options and data spec as metadata."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {k: self.config[k] for k in ("family", "model", "spec")}
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: v.contiguous() for k, v in self.D.state_dict().items()}, str(tmp),
                  metadata={"ganforge_classifier": json.dumps(meta)})
        tmp.replace(path)
        return path

    @property
    def spec(self) -> DataSpec:
        return self.family.spec

    @torch.inference_mode()
    def logits(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        """Class logits (N, K) for images in [-1, 1] (N, C, H, W), float32 on the CPU."""
        return torch.cat([self.family.classify(x[i:i + batch_size].to(self.family.device)).float().cpu()
                          for i in range(0, len(x), batch_size)])

    def evaluate(self, data) -> dict[str, Any]:
        """Accuracy, per-class accuracy and the confusion matrix on a labelled TensorData."""
        if data.y is None:
            raise ValueError(f"{data.source} has no labels; --classifier needs labelled data (class sub-folders "
                             "or a labelled built-in)")
        if tuple(data.spec.shape) != tuple(self.spec.shape):
            raise ValueError(f"data has shape {tuple(data.spec.shape)} but the classifier takes {tuple(self.spec.shape)}")
        k = self.spec.n_classes
        y = data.y.long()
        pred = torch.cat([self.logits(data.to_float(data.x[i:i + 5000])).argmax(1) for i in range(0, len(y), 5000)])
        confusion = torch.zeros(k, k, dtype=torch.long)
        confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
        per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1).float()).tolist()
        return {"accuracy": float((pred == y).float().mean()), "n": len(y), "per_class_accuracy": per_class,
                "class_names": list(self.spec.class_names), "confusion": confusion.tolist()}
