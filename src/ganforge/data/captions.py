"""Captioned images for the text-to-image families: `Captions`, builtin:fashion-captions, caption folders.

A captioned dataset is a TensorData whose `captions` holds, for every image, K caption ids into one list of
distinct caption texts, and the frozen encoder's embedding of each distinct text (ganforge.text). A batch takes
one of its image's K captions, chosen by a hash of (image index, epoch) alone, so a resumed run and a run on any
number of processes pick the same captions; the batch carries the texts (`Batch.text`) and their embeddings
(`Batch.extras["text_emb"]`, (N, 384)).

builtin:fashion-captions (written here): Fashion-MNIST with captions made from the item's class and three
attributes measured on the image, each split into thirds within its class on the training images:
- brightness: the mean grey level of the item's pixels (those above 32 of 255): "dark" ... "bright";
- width: the width of the item's bounding box: "narrow" ... "wide";
- texture: the mean absolute difference between the item and a 3x3 box blur of it, over the item's pixels:
  "plain" ... "patterned".
A caption names the class and each attribute in its outer thirds with probability 0.7 (the middle third is never
named), through synonyms and sentence templates. The training split uses TRAIN_TEMPLATES; the test split uses
HELDOUT_TEMPLATES, phrasings never seen in training, so that held-out captions measure whether a model
understood the sentence or memorised its wording. Both splits use the thresholds of the training images.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .builtin import FASHION_CLASSES, fashion_mnist

CAPTIONS_PER_IMAGE = 4
NAME_PROBABILITY = 0.7  # chance that a caption names one of the image's non-middle attributes

# class -> its nouns (the first is the class's plain name)
ITEM_NOUNS: dict[str, tuple[str, ...]] = {
    "t-shirt/top": ("t-shirt", "top", "tee"),
    "trouser": ("pair of trousers", "pair of pants"),
    "pullover": ("pullover", "sweater", "jumper"),
    "dress": ("dress", "frock"),
    "coat": ("coat", "jacket"),
    "sandal": ("sandal", "open sandal"),
    "shirt": ("shirt", "button-up shirt"),
    "sneaker": ("sneaker", "trainer", "running shoe"),
    "bag": ("bag", "handbag"),
    "ankle boot": ("ankle boot", "boot"),
}
# attribute -> (words for the lower third, words for the upper third)
ATTRIBUTE_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "brightness": (("dark", "black", "dark-coloured"), ("bright", "light", "pale")),
    "width": (("narrow", "slim"), ("wide", "broad")),
    "texture": (("plain", "smooth"), ("patterned", "textured")),
}
ATTRIBUTES = tuple(ATTRIBUTE_WORDS)
# (with attributes, without): {adj} puts the attribute words before the noun ("a dark wide coat"), {adjs} joins
# them as a phrase ("this coat is dark and wide"); the second form is used when a caption names no attribute
TRAIN_TEMPLATES = (("a {adj} {item}", "a {item}"), ("{adj} {item}", "{item}"),
                   ("a photo of a {adj} {item}", "a photo of a {item}"), ("this {item} is {adjs}", "this is a {item}"),
                   ("a {item} that is {adjs}", "a {item}"), ("a picture of a {adj} {item}", "a picture of a {item}"))
HELDOUT_TEMPLATES = (("here is a {adj} {item}", "here is a {item}"),
                     ("an image showing a {adj} {item}", "an image showing a {item}"),
                     ("the {item} in this picture looks {adjs}", "the {item} in this picture"),
                     ("someone's {adj} {item}", "someone's {item}"))


@dataclass
class Captions:
    """Captions of a dataset: `texts` the distinct captions, `ids` (N, K) the K caption ids of each image,
    `embeddings` (len(texts), dim) their frozen-encoder embeddings, `encoder` that encoder's id."""

    texts: list[str]
    ids: Tensor
    embeddings: Tensor
    encoder: str
    attributes: Tensor | None = None  # builtin:fashion-captions: (N, 3) levels -1/0/+1 the captions may name

    def __post_init__(self) -> None:
        if self.ids.dim() != 2 or self.ids.dtype != torch.long:
            raise ValueError(f"caption ids must be an (N, K) long tensor, got {tuple(self.ids.shape)} {self.ids.dtype}")
        if self.embeddings.shape[0] != len(self.texts):
            raise ValueError(f"{len(self.texts)} captions but {self.embeddings.shape[0]} embeddings")
        if len(self.ids) and (int(self.ids.min()) < 0 or int(self.ids.max()) >= len(self.texts)):
            raise ValueError("a caption id points outside the caption list")

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def pick(self, index: Tensor, epoch: int) -> Tensor:
        """The caption id each image of `index` shows in `epoch`: one of its K, by a hash of (index, epoch)."""
        h = (index * 0x9E3779B1 + (epoch + 1) * 0x7FEB352D) & 0xFFFFFFFF
        h = ((h ^ (h >> 16)) * 0x846CA68B) & 0xFFFFFFFF
        column = (h >> 8) % self.ids.shape[1]
        return self.ids[index, column]

    def subset(self, n: int) -> "Captions":
        return replace(self, ids=self.ids[:n], attributes=None if self.attributes is None else self.attributes[:n])


def measure_attributes(x: Tensor) -> Tensor:
    """(N, 1, H, W) uint8 items on a black background -> (N, 3) float: brightness, width, texture (module doc)."""
    g = x.float()[:, 0] / 255.0
    item = g > 32 / 255.0
    count = item.sum((1, 2)).clamp_min(1)
    brightness = (g * item).sum((1, 2)) / count
    cols = item.any(1)
    w = g.shape[-1]
    first = torch.where(cols.any(1), cols.float().argmax(1), torch.zeros(len(g), dtype=torch.long))
    last = torch.where(cols.any(1), w - 1 - cols.flip(1).float().argmax(1), torch.zeros(len(g), dtype=torch.long))
    width = (last - first + 1).float() / w
    blur = F.avg_pool2d(g[:, None], 3, stride=1, padding=1, count_include_pad=False)[:, 0]
    texture = ((g - blur).abs() * item).sum((1, 2)) / count
    return torch.stack([brightness, width, texture], 1)


def attribute_levels(values: Tensor, labels: Tensor, thresholds: Tensor) -> Tensor:
    """(N, 3) attribute values -> (N, 3) levels -1 (lower third), 0 (middle), +1 (upper third) of their class,
    from `thresholds` (K, 3, 2): the 1/3 and 2/3 quantiles per class and attribute."""
    t = thresholds[labels]  # (N, 3, 2)
    return (values > t[..., 1]).long() - (values < t[..., 0]).long()


def class_thresholds(values: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """(K, 3, 2): each class's 1/3 and 2/3 quantiles of each attribute."""
    q = torch.tensor([1 / 3, 2 / 3])
    return torch.stack([torch.quantile(values[labels == k], q, dim=0).t() for k in range(n_classes)])


def a_or_an(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def compose(template: tuple[str, str], noun: str, adjectives: Sequence[str]) -> str:
    """One caption: the template filled with the noun and the adjectives (articles made to agree)."""
    if adjectives:
        adjs = adjectives[0] if len(adjectives) == 1 else ", ".join(adjectives[:-1]) + " and " + adjectives[-1]
        text = template[0].replace("{adj}", " ".join(adjectives)).replace("{adjs}", adjs)
    else:
        text = template[1]
    words = text.replace("{item}", noun).split()
    for i, word in enumerate(words[:-1]):  # "a" agrees with the word after it
        if word in ("a", "an"):
            words[i] = a_or_an(words[i + 1])
    return " ".join(words)


def caption(label: int, levels: Sequence[int], template: tuple[str, str], rng: random.Random,
            name_probability: float = NAME_PROBABILITY) -> str:
    """A caption for an item of class `label` with attribute `levels` (-1/0/+1 each), drawn with `rng`."""
    noun = rng.choice(ITEM_NOUNS[FASHION_CLASSES[label]])
    adjectives = []
    for attr, level in zip(ATTRIBUTES, levels):
        if level != 0 and rng.random() < name_probability:
            adjectives.append(rng.choice(ATTRIBUTE_WORDS[attr][0 if level < 0 else 1]))
    return compose(template, noun, adjectives)


def describe(label: int, levels: Sequence[int], templates: Sequence[tuple[str, str]], k: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [caption(label, levels, rng.choice(templates), rng) for _ in range(k)]


def caption_ids(per_image: Sequence[Sequence[str]]) -> tuple[list[str], Tensor]:
    """(the distinct captions in first-seen order, (N, K) ids into them) from each image's captions, K the most any
    image has; an image with fewer repeats its own in turn."""
    k = max(len(caps) for caps in per_image)
    index: dict[str, int] = {}
    ids = np.empty((len(per_image), k), dtype=np.int64)
    for i, caps in enumerate(per_image):
        for j in range(k):
            ids[i, j] = index.setdefault(caps[j % len(caps)], len(index))
    return list(index), torch.from_numpy(ids)


def with_captions(data, texts: list[str], ids: Tensor, attributes: Tensor | None = None, **spec_changes):
    """`data` with its captions attached, embedded by the frozen encoder, and its spec saying so (`spec_changes`:
    further DataSpec fields such as the name)."""
    from ..text import text_encoder

    encoder = text_encoder()
    spec = replace(data.spec, text_dim=encoder.dim, text_encoder=encoder.id, **spec_changes)
    return replace(data, spec=spec, captions=Captions(texts, ids, encoder.encode_cached(texts), encoder.id, attributes))


def caption_table(labels: Tensor, levels: Tensor, templates: Sequence[tuple[str, str]], k: int, seed: int) -> tuple[list[str], Tensor]:
    """(distinct captions, (N, k) ids) for every image: image i's captions come from random.Random(seed + i)."""
    lv = levels.tolist()
    return caption_ids([describe(label, lv[i], templates, k, seed * 1_000_003 + i)
                        for i, label in enumerate(labels.tolist())])


def fashion_captions(size=None, channels=None, split: str = "train"):
    """builtin:fashion-captions: Fashion-MNIST with captions from the class and measured attributes (module doc)."""
    train = fashion_mnist(size=None, channels=None, split="train")
    values = measure_attributes(train.x)
    thresholds = class_thresholds(values, train.y, 10)
    if split == "train":
        data, templates, seed = train, TRAIN_TEMPLATES, 0
    else:
        data, templates, seed = fashion_mnist(size=None, channels=None, split="test"), HELDOUT_TEMPLATES, 1
        values = measure_attributes(data.x)
    levels = attribute_levels(values, data.y, thresholds)
    texts, ids = caption_table(data.y, levels, templates, CAPTIONS_PER_IMAGE, seed)
    sized = fashion_mnist(size=size, channels=channels, split=split) if (size or channels) else data
    name = "fashion-captions" if split == "train" else "fashion-captions-test"
    return with_captions(replace(sized, source="builtin:fashion-captions"), texts, ids, levels, name=name)


DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_TEMPLATES = ("the digit {word}", "a handwritten {word}", "number {digit}", "a {word}", "{digit}",
                   "the number {word} written by hand")


def digits_captions(size=None, channels=None, split: str = "train"):
    """builtin:digits-captions: scikit-learn's 1,797 8x8 digits, each with CAPTIONS_PER_IMAGE captions naming its
    digit ("the digit seven", "number 7", ...; 60 distinct captions). Small and quick to encode: the tests' and
    the demos' captioned set."""
    from .builtin import digits

    data = digits(size=size, channels=channels, split=split)
    per_image = []
    for i, label in enumerate(data.y.tolist()):
        rng = random.Random(i)
        per_image.append([rng.choice(DIGIT_TEMPLATES).format(word=DIGIT_WORDS[label], digit=label)
                          for _ in range(CAPTIONS_PER_IMAGE)])
    texts, ids = caption_ids(per_image)
    return with_captions(replace(data, source="builtin:digits-captions"), texts, ids, name="digits-captions")


CAPTIONS_CSV = "captions.csv"


class UncaptionedImagesWarning(UserWarning):
    """Some images of a captioned folder have no caption; a text family cannot train on it as it is."""


def read_folder_captions(root: Path, rels: Sequence[str]) -> dict[str, list[str]]:
    """Captions of a folder's images: ROOT/captions.csv (a header with `file` and `caption`; several rows per file
    allowed) or, without it, IMAGE.txt beside each image (one caption per non-blank line). {rel: [captions]} for
    the images that have any; every caption passes `check_text` (ValueError naming the file and line)."""
    import csv

    from ..text import check_text

    found: dict[str, list[str]] = {}
    table = root / CAPTIONS_CSV
    if table.exists():
        known = set(rels)
        try:
            text = table.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ValueError(f"{table} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"file", "caption"} <= set(reader.fieldnames):
            raise ValueError(f"{table} needs a header line with the columns file and caption, e.g. "
                             f"'file,caption'; found {reader.fieldnames}")
        for line, row in enumerate(reader, 2):
            rel = (row["file"] or "").strip().replace("\\", "/")
            if rel not in known:
                raise ValueError(f"{table} line {line}: '{rel}' is not an image of {root} (paths are relative to "
                                 "the folder, e.g. cars/red.png)")
            found.setdefault(rel, []).append(check_text(row["caption"] or "", f"{table} line {line}"))
        return found
    for rel in rels:
        path = (root / rel).with_suffix(".txt")
        if not path.exists():
            continue
        try:
            lines = path.read_bytes().decode("utf-8-sig").splitlines()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None
        caps = [check_text(s, f"{path} line {i}") for i, s in enumerate(lines, 1) if s.strip()]
        if caps:
            found[rel] = caps
    return found


def attach_folder_captions(data, root: Path, rels: Sequence[str]):
    """`data` (a folder's TensorData, images in the order of `rels`) with its captions attached when every image
    has one; unchanged when none has (a plain image folder); unchanged with an UncaptionedImagesWarning naming the
    images without one when only some have."""
    import warnings

    found = read_folder_captions(root, rels)
    if not found:
        return data
    missing = [r for r in rels if r not in found]
    if missing:
        some = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        warnings.warn(f"{len(missing)} of {len(rels)} images in {root} have no caption ({some}): "
                      f"add IMAGE.txt beside each or rows to {CAPTIONS_CSV} before training a text family on it",
                      UncaptionedImagesWarning, stacklevel=3)
        return data
    texts, ids = caption_ids([found[r] for r in rels])
    return with_captions(data, texts, ids)

