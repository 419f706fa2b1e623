"""`ganforge data inspect PATH`: what an image folder holds, before choosing --size and --channels.

A folder with A/ and B/ sub-folders (image-to-image data, see paired.py) is reported domain by domain,
with how its file names pair up.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .images import Decoded, decode_files, name_some, scan_folder
from .paired import find_domains, match_names

UNREADABLE_SHOWN = 20  # unreadable files listed one per line by format_inspection


def inspect_folder(root: Path, quiet: bool = True) -> dict[str, Any]:
    """Counts, sizes, modes and classes of an image folder. Every image goes through training's decoding
    path (decode_image: full decode and conversion), so the files called unreadable here are exactly those
    training skips.

    Keys: root, files, images, readable, skipped (paths), skip_reasons, other_files (paths), loose_files
    (images directly in root beside class sub-folders), sizes (Counter of "HxW"), modes, formats (Counters),
    transparent (images with an alpha channel or transparent colour), classes ({name: readable images},
    empty when unlabelled).

    A folder with A/ and B/ sub-folders gives instead: root, domains ({"A": the keys above for A/, "B": ...}),
    pairing ("paired" | "unpaired"), pairs (same-named readable files), unmatched (paths without a partner).
    """
    found = find_domains(Path(root))
    if found is not None:
        return _inspect_domains(root, *found, quiet=quiet)
    scan = scan_folder(Path(root))
    candidates = scan.images + scan.loose
    # channels=3 runs every mode conversion; fit_image cannot fail at any --size (tests/test_data_faults.py)
    probes = decode_files(scan, candidates, None, 3, "crop", quiet, keep_pixels=False)
    sizes: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    skip_reasons: dict[str, str] = {}
    readable: set[str] = set()
    transparent = 0
    for rel, probe in zip(candidates, probes):
        if not isinstance(probe, Decoded):
            skip_reasons[rel] = probe
            continue
        readable.add(rel)
        sizes[probe.stored_size] += 1
        modes[probe.mode] += 1
        formats[probe.format] += 1
        transparent += probe.transparent
    classes = {name: 0 for name in scan.class_names}
    for rel, label in zip(scan.images, scan.labels):
        if rel in readable:
            classes[scan.class_names[label]] += 1
    try:  # IMAGE.txt / captions.csv: what a text family would train on
        from .captions import read_folder_captions

        captioned = read_folder_captions(root, sorted(readable))
        caption_error = ""
    except ValueError as e:
        captioned, caption_error = {}, str(e)
    return {
        "captioned": len(captioned),
        "captions": sum(len(c) for c in captioned.values()),
        "caption_error": caption_error,
        "root": str(root),
        "files": len(candidates) + len(scan.other),
        "images": len(candidates),
        "readable": len(readable),
        "skipped": sorted(skip_reasons),
        "skip_reasons": skip_reasons,
        "other_files": list(scan.other),
        "loose_files": list(scan.loose),
        "sizes": sizes,
        "modes": modes,
        "formats": formats,
        "transparent": transparent,
        "classes": classes,
    }


def _inspect_domains(root: Path, a_dir: Path, b_dir: Path, quiet: bool) -> dict[str, Any]:
    domains = {d.name: inspect_folder(d, quiet) for d in (a_dir, b_dir)}
    scans = [scan_folder(d) for d in (a_dir, b_dir)]
    names = []
    for scan, info in zip(scans, domains.values()):
        unreadable = set(info["skipped"])
        names.append([rel for rel in scan.images if rel not in unreadable])
    matching = match_names(*names)
    unmatched = [f"{a_dir.name}/{r}" for r in matching.unmatched_a]
    unmatched += [f"{b_dir.name}/{r}" for r in matching.unmatched_b]
    return {"root": str(root), "domains": domains, "pairing": "paired" if matching.paired else "unpaired",
            "pairs": len(matching.pairs), "unmatched": unmatched}


def _format_domains(info: dict[str, Any]) -> str:
    root = str(info["root"]).rstrip("/") + "/"
    (name_a, a), (name_b, b) = info["domains"].items()
    lines = [f"image-to-image folder '{root}': domain A = {name_a}/, domain B = {name_b}/"]
    if info["pairing"] == "paired":
        lines.append(f"  pairing      paired by file name: {info['pairs']} pairs")
        if info["unmatched"]:
            lines.append(f"  unmatched    {len(info['unmatched'])} files without a readable partner, will be left out: "
                         f"{name_some(info['unmatched'], 5)}")
    else:
        lines.append(f"  pairing      unpaired ({info['pairs']} file names in common): A and B are drawn independently")
    for sub in (a, b):
        lines += ["  " + line for line in format_inspection(sub).splitlines()]
    if info["pairing"] == "paired":
        hint = "train a paired family (pix2pix, srgan) or an unpaired one (cyclegan, discogan)"
    else:
        hint = "train an unpaired family (cyclegan, discogan); for pix2pix, name each B file like its A file"
    lines.append(f"  note         {hint}")
    return "\n".join(lines)


def _histogram(counts: Counter, top: int = 8) -> str:
    shown = ", ".join(f"{key} ×{n}" for key, n in counts.most_common(top))
    return shown + (f", ... and {len(counts) - top} more" if len(counts) > top else "")


def _side_by_side(size: str) -> bool:
    h, w = (int(v) for v in size.split("x"))
    return w == 2 * h


def format_inspection(info: dict[str, Any]) -> str:
    """A readable multi-line report of inspect_folder's result, ending with hints for `ganforge train`."""
    if "domains" in info:
        return _format_domains(info)
    root = str(info["root"]).rstrip("/") + "/"
    lines = [f"image folder '{root}'"]
    other = info["other_files"]
    other_text = f", {len(other)} other: {name_some(other, 5)}" if other else ""
    lines.append(f"  files        {info['files']} ({info['images']} images{other_text})")
    readable = f"  readable     {info['readable']} of {info['images']} images"
    skipped = info["skipped"]
    if skipped:
        readable += f"; {len(skipped)} unreadable, training skips them:"
    lines.append(readable)
    for i, rel in enumerate(skipped[:UNREADABLE_SHOWN]):  # one per line, with why: these are what to fix
        lines.append(f"  {'unreadable' if i == 0 else '':13s}{rel} ({info['skip_reasons'][rel]})")
    if len(skipped) > UNREADABLE_SHOWN:
        lines.append(f"  {'':13s}... and {len(skipped) - UNREADABLE_SHOWN} more")
    if info["classes"]:
        per_class = ", ".join(f"{name} {n}" for name, n in info["classes"].items())
        lines.append(f"  classes      {len(info['classes'])}: {per_class}")
    else:
        lines.append("  classes      none (no sub-folders with images: unlabelled)")
    if info.get("captioned") or info.get("caption_error"):
        n, total = info["captioned"], info["readable"]
        text = (f"{n} of {total} readable images, {info['captions']} captions (text families: gan-int-cls)"
                if n else "none readable")
        lines.append(f"  captions     {text}")
    if info["sizes"]:
        lines.append(f"  sizes (HxW)  {_histogram(info['sizes'])}")
        lines.append(f"  modes        {_histogram(info['modes'])}")
        lines.append(f"  formats      {_histogram(info['formats'])}")
    hints = []
    if info["loose_files"]:
        hints.append(
            f"{len(info['loose_files'])} images lie directly in the folder beside class sub-folders "
            f"({name_some(info['loose_files'], 3)}): move them into a class sub-folder before training"
        )
    if info.get("caption_error"):
        hints.append(f"captions: {info['caption_error']}")
    elif 0 < info.get("captioned", 0) < info["readable"]:
        hints.append(f"{info['readable'] - info['captioned']} readable images have no caption: a text family trains "
                     "only when every image has one (IMAGE.txt beside it, or a row in captions.csv)")
    if info["readable"] == 0:
        hints.append("no readable images: give --data a folder of .png/.jpg/.webp/.bmp files")
    elif len(info["sizes"]) > 1:
        top = info["sizes"].most_common(1)[0][0]
        hints.append(f"mixed sizes: pass --size HxW to resize them all (e.g. --size {top})")
    if info["sizes"] and all(_side_by_side(size) for size in info["sizes"]):
        hints.append("every image is twice as wide as tall: if each holds an A | B pair side by side (pix2pix), "
                     "load it with pairs='side-by-side'")
    if info["transparent"]:
        hints.append(f"{info['transparent']} images have transparency: it is composited onto white")
    lines += [f"  note         {hint}" for hint in hints]
    return "\n".join(lines)
