"""builtin:emoji-captions: the colour emoji captioned from their Unicode names (data/captions.py has the rest of
the captioned data; this module is apart because it reads the emoji of translation.py, which imports images.py,
which imports captions.py)."""

from __future__ import annotations

import torch

from .builtin import resize_uint8, set_channels
from .captions import a_or_an, caption_ids, with_captions
from .spec import DataSpec
from .store import TensorData
from .translation import EMOJI_TEST_EVERY, emoji_images


EMOJI_TRAIN_TEMPLATES = ("{name}", "an emoji of {a} {name}", "{a} {name} emoji", "a small icon showing {a} {name}")
EMOJI_HELDOUT_TEMPLATES = ("a picture of {a} {name}", "{name}, drawn as an emoji")
EMOJI_CAPTION_SIDE = 64  # builtin:emoji-captions' default size (the glyphs are rendered at 128x128)


def emoji_name(codepoint: int) -> str:
    """The Unicode name of an emoji, as words: 0x1F34E -> 'red apple' ('' when it has none)."""
    import unicodedata

    return unicodedata.name(chr(codepoint), "").lower()


def emoji_captions(size=None, channels=None, split: str = "train"):
    """builtin:emoji-captions: the colour emoji of Debian's fonts-noto-color-emoji (as the other emoji built-ins
    render them; every 10th glyph is the test split), each captioned from its Unicode name ("red apple") through
    EMOJI_TRAIN_TEMPLATES, or EMOJI_HELDOUT_TEMPLATES for the test split, one caption per template. Glyphs without a
    Unicode name (sequences such as flags) are left out. Default size 64x64 (`--size` changes it)."""
    if split not in ("train", "test"):
        raise ValueError(f"builtin:emoji-captions has the splits train and test, not '{split}'")
    x, codepoints = emoji_images()
    test = torch.arange(len(x)) % EMOJI_TEST_EVERY == EMOJI_TEST_EVERY - 1
    names = [emoji_name(c) for c in codepoints]
    keep = [i for i in range(len(x)) if names[i] and bool(test[i]) == (split == "test")]
    templates = EMOJI_HELDOUT_TEMPLATES if split == "test" else EMOJI_TRAIN_TEMPLATES
    texts, ids = caption_ids([[t.format(name=names[i], a=a_or_an(names[i])) for t in templates] for i in keep])
    side = size or (EMOJI_CAPTION_SIDE, EMOJI_CAPTION_SIDE)
    images = set_channels(resize_uint8(x[torch.tensor(keep)], tuple(side)), channels)
    spec = DataSpec("image", tuple(images.shape[1:]), name="emoji-captions" if split == "train" else "emoji-captions-test")
    return with_captions(TensorData(spec, images, None, source="builtin:emoji-captions"), texts, ids)
