"""The one ganforge cache folder and the one checked download.

`cache_root()` is $GANFORGE_CACHE (with `~` expanded), else ~/.cache/ganforge. Everything ganforge keeps
between runs lives under it: fashion-mnist/ (downloads), images/ and emoji/ (decoded tensors), weights/
(the FID Inception file), features/ (reference features) and npm/ (onnxruntime-web for exported sites).

`download(url, dest, sha256)` writes into a temporary file beside `dest`, checks its SHA-256 and only then
renames it to `dest` (atomic on one file system), so a failed or tampered download never leaves a file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable

CACHE_ENV = "GANFORGE_CACHE"
MIN_PREFIX = 8  # hex digits: the shortest SHA-256 prefix accepted (torch.hub's file-name convention)


class ChecksumError(ValueError):
    """A file's SHA-256 is not the expected one."""


def cache_root() -> Path:
    """$GANFORGE_CACHE (`~` expanded), else ~/.cache/ganforge; not created until something is written."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ganforge"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_matches(digest: str, expected: str) -> bool:
    """True when `digest` equals `expected`, a full hex SHA-256 or a prefix of >= 8 hex digits of one."""
    expected = expected.lower()
    if not MIN_PREFIX <= len(expected) <= 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"expected SHA-256 '{expected}' must be 8 to 64 hex digits; give the file's checksum")
    return digest.lower().startswith(expected)


def download(url: str, dest: str | Path, sha256: str, *, what: str | None = None, fix: str | None = None,
             timeout: float = 60, opener: Callable = urllib.request.urlopen) -> Path:
    """Fetch `url` into `dest`, checked against `sha256` (full or a >= 8-digit prefix); returns `dest`.

    The bytes go to a temporary name in dest's folder and are renamed to `dest` only when the checksum
    matches. Offline (any network error): RuntimeError; wrong bytes: ChecksumError (a ValueError). Both
    name `what` (default: the file's name) and end with `fix`, how to get the file another way.
    """
    sha256_matches("", sha256)  # refuse a malformed checksum before fetching anything
    dest = Path(dest)
    what = what or dest.name
    fix = fix or f"download {url} on a machine with internet and copy it to {dest}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        try:
            with os.fdopen(fd, "wb") as f, opener(url, timeout=timeout) as response:
                shutil.copyfileobj(response, f)
        except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, refused connections, DNS
            raise RuntimeError(f"{what} could not be downloaded from {url} ({e}); {fix}") from None
        got = sha256_file(tmp)
        if not sha256_matches(got, sha256):
            raise ChecksumError(f"the download of {what} from {url} has SHA-256 {got[:16]}..., expected "
                                f"{sha256[:16]}...: the file is corrupt or not {what}, and nothing was kept; "
                                f"retry later, or {fix}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
