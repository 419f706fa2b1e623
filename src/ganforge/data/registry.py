"""The named built-in datasets: `--data builtin:NAME` is looked up here, in BUILTINS.

The loaders live in builtin.py (Fashion-MNIST, digits, the 2-D mixtures), clipart.py (openclipart-png's
categories) and translation.py (the image-to-image sets built from them); this module imports both, and neither imports it. Every loader takes
(size=None, channels=None, split="train") and returns a TensorData.
"""

from __future__ import annotations

from typing import Callable

from .builtin import digits, fashion_mnist, mixture_loader
from .captions import digits_captions, fashion_captions
from .emoji_captions import emoji_captions
from .clipart import clipart
from .domains import fashion_mnist_blurred, fashion_mnist_inverted, fashion_mnist_m
from .spoken_digits import load_spoken_digits
from .store import TensorData
from .table_builtins import TABLE_BUILTINS
from .translation import (
    emoji_gray2color,
    emoji_lowres,
    fmnist_edges2items,
    fmnist_lowres,
    fmnist_pair,
    fmnist_shoes,
    fmnist_sneaker2boot,
)

BUILTINS: dict[str, Callable[..., TensorData]] = {
    "fashion-mnist": fashion_mnist,
    "digits": digits,
    "ring8": mixture_loader("ring8"),
    "grid25": mixture_loader("grid25"),
    "fmnist-edges2items": fmnist_edges2items,
    "fmnist-lowres": fmnist_lowres,
    "fmnist-sneaker2boot": fmnist_sneaker2boot,
    "fmnist-shoes": fmnist_shoes,
    "emoji-gray2color": emoji_gray2color,
    "emoji-lowres": emoji_lowres,
    "fashion-captions": fashion_captions,  # captioned images (data/captions.py): the text-to-image families
    "digits-captions": digits_captions,
    "emoji-captions": emoji_captions,
    "fashion-mnist-m": fashion_mnist_m,  # target domains of domain adaptation (data/domains.py): dann
    "fashion-mnist-inverted": fashion_mnist_inverted,
    "fashion-mnist-blurred": fashion_mnist_blurred,
    "spoken-digits": load_spoken_digits,  # audio (data/spoken_digits.py): synthesised with espeak-ng
}
# built-ins with an argument: builtin:NAME:ARG -> fn(ARG, size=, channels=, split=); value: (fn, ARG's form)
PARAMETRISED_BUILTINS: dict[str, tuple[Callable[..., TensorData], str]] = {
    "fmnist-pair": (fmnist_pair, "P,Q"),
    "clipart": (clipart, "CATEGORY"),  # openclipart-png's categories, e.g. builtin:clipart:transportation
}


def builtin_names() -> list[str]:
    """Every valid --data builtin:... spelling, e.g. builtin:fashion-mnist and builtin:fmnist-pair:P,Q."""
    return ([f"builtin:{n}" for n in BUILTINS] + [f"builtin:{n}:{arg}" for n, (_, arg) in PARAMETRISED_BUILTINS.items()]
            + [f"builtin:{n}" for n in TABLE_BUILTINS])


def load_builtin(name: str, size=None, channels=None, split: str = "train") -> TensorData:
    """builtin NAME (without the 'builtin:' prefix); NAME:ARG for the parametrised ones (fmnist-pair:7,9)."""
    base, _, arg = name.partition(":")
    if arg and base in PARAMETRISED_BUILTINS:
        return PARAMETRISED_BUILTINS[base][0](arg, size=size, channels=channels, split=split)
    if name not in BUILTINS:
        hint = f"; builtin:{base} needs an argument, e.g. builtin:{base}:7,9" if base in PARAMETRISED_BUILTINS else ""
        raise ValueError(f"unknown built-in dataset '{name}'{hint}; choose one of: " + ", ".join(builtin_names()))
    return BUILTINS[name](size=size, channels=channels, split=split)
