"""Writing an output file so that a failure never leaves half of it: write beside it, then rename over it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """An OSError without a file name raised inside (a full disk's write error has none) names `path`."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def replace_atomically(out: Path, write: Callable[[Path], Any]) -> None:
    """write(tmp) beside `out`, then rename it over `out`: a failed write leaves any earlier file as it was."""
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")
    try:
        with writing(out):
            write(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
