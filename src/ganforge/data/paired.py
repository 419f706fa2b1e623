"""Image-to-image folders: A/ and B/ sub-folders (paired or unpaired) and side-by-side pairs.

Layouts, as the public datasets ship them:
- `root/A/` and `root/B/` (capital letters: lower-case a/ b/ are class sub-folders), or `trainA/` and
  `trainB/` as in the CycleGAN sets, whose `testA/`, `testB/` are then left alone. Files pair up by
  name without the suffix (A/x.jpg <-> B/x.png, A/sub/y.png <-> B/sub/y.png). The folder is PAIRED
  when at least half of the smaller domain's files have a partner (files whose partner is missing or
  unreadable are left out, with a warning that counts them), else UNPAIRED (CycleGAN's horse2zebra: no
  names in common). Unpaired families accept paired folders too (`as_unpaired` drops the pairing).
- side by side (pairs="side-by-side"): every image holds A | B, left half A and right half B (the pix2pix
  sets: facades, edges2shoes, maps), so each image is twice as wide as it is tall.
Each domain is decoded with images.load_image_folder (same conversions, corrupt-file skipping and cache).
size=(H, W) is domain B's size. Paired folders keep A's size ratio to B (measured on the first pair; a
super-resolution folder with 64x64 A and 256x256 B stays 4x apart); unpaired folders resize both to size.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import torch

from ..config import CHOICES
from .images import DECODE_ERRORS, FolderScan, load_image_folder, name_some, open_image, scan_folder
from .spec import DataSpec
from .store import TensorData

PAIRS = CHOICES["data.pairs"]
DOMAIN_PREFIXES = ("", "train")  # A/ and B/, or trainA/ and trainB/ (the CycleGAN sets; testA/, testB/ unused)


class UnmatchedPairsWarning(UserWarning):
    """A paired folder has files without a partner of the same name; they were left out."""


def find_domains(root: Path) -> tuple[Path, Path] | None:
    """The A and B sub-folders of root (A/ and B/, or trainA/ and trainB/, any case for 'train'), else None.

    The letters must be capitals: lower-case a/ and b/ stay class sub-folders (labels), as before.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    subs = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}
    for prefix in DOMAIN_PREFIXES:
        found = {}
        for name, path in subs.items():
            if name[:-1].lower() == prefix and name[-1:] in ("A", "B"):
                found.setdefault(name[-1], path)
        if len(found) == 2:
            return found["A"], found["B"]
    return None


def _stem(rel: str) -> str:
    return str(PurePosixPath(rel).with_suffix(""))


@dataclass
class Matching:
    """How the files of A/ and B/ pair up by name: pairs (index in A, index in B) in A's order."""

    pairs: list[tuple[int, int]] = field(default_factory=list)
    unmatched_a: list[str] = field(default_factory=list)
    unmatched_b: list[str] = field(default_factory=list)
    paired: bool = False


def match_names(a_names: list[str], b_names: list[str]) -> Matching:
    """Pair files by name without suffix; paired when >= half of the smaller domain has a partner."""
    b_index: dict[str, int] = {}
    for i, rel in enumerate(b_names):
        b_index.setdefault(_stem(rel), i)
    out = Matching()
    matched_b: set[int] = set()
    for i, rel in enumerate(a_names):
        j = b_index.get(_stem(rel))
        if j is None or j in matched_b:
            out.unmatched_a.append(rel)
        else:
            out.pairs.append((i, j))
            matched_b.add(j)
    out.unmatched_b = [rel for j, rel in enumerate(b_names) if j not in matched_b]
    smaller = min(len(a_names), len(b_names))
    out.paired = bool(out.pairs) and 2 * len(out.pairs) >= smaller
    return out


def _duplicate_stems(scan: FolderScan) -> list[str]:
    seen: dict[str, str] = {}
    dupes = []
    for rel in scan.images:
        if _stem(rel) in seen:
            dupes.append(f"{seen[_stem(rel)]} and {rel}")
        seen.setdefault(_stem(rel), rel)
    return dupes


def _size_ratio(a_dir: Path, b_dir: Path, a_names: list[str], b_names: list[str], pairs) -> tuple[float, float]:
    """(A height / B height, A width / B width) of the first readable pair; (1, 1) when none is readable."""
    for i, j in pairs[:20]:
        try:
            a, b = open_image(a_dir / a_names[i]), open_image(b_dir / b_names[j])
        except DECODE_ERRORS:
            continue
        return a.height / b.height, a.width / b.width
    return 1.0, 1.0


def _kept_names(scan: FolderScan, data: TensorData) -> list[str]:
    """The relative paths of data.x's rows: the scanned images minus the skipped ones, in order."""
    skipped = set(data.skipped)
    return [rel for rel in scan.images if rel not in skipped]


def load_domain_folders(root: Path, size: tuple[int, int] | None, channels: int = 3, fit: str = "crop",
                        cache_dir=None, quiet: bool = False) -> TensorData:
    """root with A/ and B/ sub-folders -> paired (matching names) or unpaired TensorData; see the module docstring."""
    root = Path(root)
    found = find_domains(root)
    if found is None:
        raise ValueError(f"'{root}/' has no A/ and B/ sub-folders; put domain A's images in {root}/A and "
                         f"domain B's in {root}/B")
    a_dir, b_dir = found
    scan_a, scan_b = scan_folder(a_dir), scan_folder(b_dir)
    for scan in (scan_a, scan_b):
        if not scan.images:
            raise ValueError(f"{scan.label} holds no images; put domain {scan.root.name}'s .png/.jpg files there")
    matching = match_names(scan_a.images, scan_b.images)
    size_a = size
    if matching.paired:
        dupes = _duplicate_stems(scan_a) + _duplicate_stems(scan_b)
        if dupes:
            raise ValueError(f"paired folder '{root}/': files pair up by name, but {name_some(dupes, 3)} share one; "
                             "rename or remove one of each")
        if size is not None:
            rh, rw = _size_ratio(a_dir, b_dir, scan_a.images, scan_b.images, matching.pairs)
            size_a = (max(1, round(size[0] * rh)), max(1, round(size[1] * rw)))
    data_a = load_image_folder(a_dir, size_a, channels, fit, cache_dir, quiet)
    data_b = load_image_folder(b_dir, size, channels, fit, cache_dir, quiet)
    skipped = tuple(f"{a_dir.name}/{s}" for s in data_a.skipped) + tuple(f"{b_dir.name}/{s}" for s in data_b.skipped)
    names = (a_dir.name, b_dir.name)
    if not matching.paired:
        return _two_domain(root, data_a, data_b, data_a.x, data_a.y, data_b.x, "unpaired", names, skipped)

    kept_a, kept_b = _kept_names(scan_a, data_a), _kept_names(scan_b, data_b)
    final = match_names(kept_a, kept_b)  # corrupt files drop out here, and their partners with them
    if not final.pairs:
        raise ValueError(f"paired folder '{root}/' has no readable pair of same-named files in {names[0]}/ and "
                         f"{names[1]}/; name each target like its input (A/x.png -> B/x.png)")
    unmatched = [f"{names[0]}/{r}" for r in final.unmatched_a] + [f"{names[1]}/{r}" for r in final.unmatched_b]
    if unmatched:
        warnings.warn(
            f"paired folder '{root}/': {len(unmatched)} files have no readable partner of the same name and are "
            f"left out ({name_some(unmatched, 5)}); training on {len(final.pairs)} pairs. Add the missing "
            "partners or remove the strays",
            UnmatchedPairsWarning,
            stacklevel=3,
        )
    ia = torch.tensor([i for i, _ in final.pairs], dtype=torch.long)
    ib = torch.tensor([j for _, j in final.pairs], dtype=torch.long)
    y = data_a.y[ia] if data_a.y is not None else None
    return _two_domain(root, data_a, data_b, data_a.x[ia], y, data_b.x[ib], "paired", names, skipped)


def _two_domain(root: Path, data_a: TensorData, data_b: TensorData, x_a, y, x_b, pairing: str,
                names: tuple[str, str], skipped: tuple[str, ...]) -> TensorData:
    spec = DataSpec("image", tuple(x_a.shape[1:]), data_a.spec.n_classes, data_a.spec.class_names,
                    root.resolve().name, shape_b=tuple(x_b.shape[1:]), pairing=pairing, domains=names)
    return TensorData(spec, x_a.contiguous(), y, skipped, str(root), x_b.contiguous())


def load_side_by_side(root: Path, size: tuple[int, int] | None, channels: int = 3, fit: str = "crop",
                      cache_dir=None, quiet: bool = False) -> TensorData:
    """A folder of A|B images (left half A, right half B) -> paired TensorData; size is each half's (H, W)."""
    root = Path(root)
    whole = None if size is None else (int(size[0]), 2 * int(size[1]))
    data = load_image_folder(root, whole, channels, fit, cache_dir, quiet)
    h, w = data.x.shape[-2:]
    if size is None and w != 2 * h:
        raise ValueError(
            f"side-by-side folder '{root}/' holds {h}x{w} (HxW) images, but each should hold A | B, twice as wide as "
            f"tall; pass --size HxW for the size of one half (e.g. --size {h}x{max(1, w // 2)}), or drop the "
            "side-by-side option for an ordinary image folder"
        )
    half = w // 2
    spec = DataSpec("image", (data.x.shape[1], h, half), data.spec.n_classes, data.spec.class_names,
                    data.spec.name, shape_b=(data.x.shape[1], h, w - half), pairing="paired", domains=("A", "B"))
    a = data.x[..., :half].contiguous()
    b = data.x[..., half:].contiguous()
    return TensorData(spec, a, data.y, data.skipped, data.source, b)
