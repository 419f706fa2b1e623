"""Checks on user text, with no torch: shared by the sampler, the CLI, the server and the Lambda package."""

from __future__ import annotations

import unicodedata

MAX_TEXT_CHARS = 4096  # one caption; the encoder reads its first 256 tokens (about 1,000 characters of English)


def check_text(text: object, what: str = "text") -> str:
    """`text` as a clean caption, or ValueError naming what is wrong: not a string, empty, longer than
    MAX_TEXT_CHARS, or holding control characters (tabs and line breaks inside a caption are spaces)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{what} is not valid UTF-8 (byte {e.start}): save it as UTF-8 text") from None
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {type(text).__name__}")
    text = " ".join(text.replace("\t", " ").split())
    if not text:
        raise ValueError(f"{what} is empty: give a caption such as \"a dark long-sleeved pullover\"")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{what} has {len(text)} characters; a caption may have at most {MAX_TEXT_CHARS}: shorten it")
    bad = next((ch for ch in text if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn")), None)
    if bad is not None:
        raise ValueError(f"{what} holds the control or unassigned character U+{ord(bad):04X} at position "
                         f"{text.index(bad)}: remove it")
    return text
