"""Faulty image folders: `data inspect` and training's loader call exactly the same files unreadable.

Each cause found on real folders (Debian's openclipart-png) is reproduced with a small synthetic file.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.data.images import fit_image, load_image_folder, scan_folder
from ganforge.data.inspect import format_inspection, inspect_folder

# (W, H) of openclipart files the loader used to skip at --size 100 ("box offset can't be negative"):
# the crop box was computed as width / scale, whose rounding left an offset of -3e-14
CLIPART_SIZES = [(750, 385), (469, 335), (511, 398), (409, 390), (199, 267), (1390, 1340)]


def write_bomb_png(path: Path, side: int = 20000) -> None:
    """A valid little PNG whose header claims side x side pixels: over Pillow's decompression-bomb limit."""
    Image.new("RGB", (8, 8), (9, 9, 9)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data[12:29]  # b"IHDR" + 13 bytes: width, height, depth, colour type, ...
    ihdr[4:12] = struct.pack(">II", side, side)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))


def write_truncated_png(path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


def make_faulty_folder(root: Path, links: bool = True) -> set[str]:
    """Readable clip art of awkward sizes plus one file per cause of unreadability; returns the unreadable."""
    root.mkdir(parents=True)
    for i, (w, h) in enumerate(CLIPART_SIZES):
        mode = ("RGBA", "LA", "P")[i % 3]
        Image.new(mode, (w, h)).save(root / f"clip_{i}.png")
    write_bomb_png(root / "bomb.png")
    write_truncated_png(root / "cut.png")
    (root / "garbage.jpg").write_bytes(b"\xff\xd8 not a jpeg" * 20)
    if not links:
        return {"bomb.png", "cut.png", "garbage.jpg"}
    os.symlink("loop_b", root / "loop_a.png")  # loop_a.png -> loop_b -> loop_a.png
    os.symlink("loop_a.png", root / "loop_b")
    os.symlink("nowhere.png", root / "dangling.png")
    os.mkfifo(root / "pipe.png")  # opening it would block forever
    return {"bomb.png", "cut.png", "garbage.jpg", "loop_a.png", "dangling.png", "pipe.png"}


def test_clipart_sizes_are_readable_and_bombs_unreadable_for_both(tmp_path):
    """The openclipart case: inspect said 1 unreadable, training at --size 100 skipped 7."""
    unreadable = make_faulty_folder(tmp_path / "clipart", links=False)
    info = inspect_folder(tmp_path / "clipart")
    with pytest.warns(UserWarning, match="skipped 3 unreadable"):
        data = load_image_folder(tmp_path / "clipart", (100, 100), cache_dir=tmp_path / "cache", quiet=True)
    assert set(info["skipped"]) == set(data.skipped) == unreadable
    assert info["readable"] == len(data) == len(CLIPART_SIZES)


@pytest.mark.parametrize("size,channels,fit", [((100, 100), 3, "crop"), ((32, 32), 1, "crop"),
                                               ((37, 91), 3, "pad"), ((64, 48), 1, "pad")])
def test_inspect_and_loader_report_the_same_unreadable_files(tmp_path, size, channels, fit):
    unreadable = make_faulty_folder(tmp_path / "clipart")
    info = inspect_folder(tmp_path / "clipart")
    with pytest.warns(UserWarning, match="skipped 6 unreadable"):
        data = load_image_folder(tmp_path / "clipart", size, channels, fit, cache_dir=tmp_path / "cache", quiet=True)
    assert set(info["skipped"]) == set(data.skipped) == unreadable
    assert info["readable"] == len(data) == len(CLIPART_SIZES)
    assert tuple(data.x.shape[1:]) == (channels, *size)
    reasons = info["skip_reasons"]
    assert "DecompressionBombError" in reasons["bomb.png"]
    assert "Too many levels of symbolic links" in reasons["loop_a.png"]
    assert "nowhere.png" in reasons["dangling.png"] and reasons["pipe.png"] == "not a regular file"
    assert "loop_b" in info["other_files"]  # the loop's other end has no image suffix: listed, never opened
    text = format_inspection(info)
    assert all(name in text for name in unreadable)


def test_symlink_loops_in_class_folders_keep_labels_aligned(tmp_path):
    root = tmp_path / "classes"
    for k, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (20, 20), 60 * k + i).save(root / name / f"{i}.png")
    os.symlink("b.png", root / "cats" / "a.png")
    os.symlink("a.png", root / "cats" / "b.png")
    os.symlink("../dogs", root / "dogs" / "again")  # a folder loop: followed once, not forever
    scan = scan_folder(root)
    assert set(scan.unopenable) == {"cats/a.png", "cats/b.png"}
    with pytest.warns(UserWarning, match="cats/a.png, cats/b.png"):
        data = load_image_folder(root, None, channels=1, cache_dir=tmp_path / "cache", quiet=True)
    assert data.y.tolist() == [0, 0, 1, 1]
    assert data.x[:, 0, 0, 0].tolist() == [0, 1, 60, 61]
    info = inspect_folder(root)
    assert info["classes"] == {"cats": 2, "dogs": 2} and info["skipped"] == ["cats/a.png", "cats/b.png"]


def test_a_folder_of_nothing_but_loops_names_them(tmp_path):
    root = tmp_path / "loops"
    root.mkdir()
    os.symlink("y.png", root / "x.png")
    os.symlink("x.png", root / "y.png")
    with pytest.raises(ValueError, match=r"0 readable images \(2 skipped as unreadable: x.png, y.png\)"):
        load_image_folder(root, (8, 8), cache_dir=tmp_path / "cache", quiet=True)
    assert inspect_folder(root)["skipped"] == ["x.png", "y.png"]


@pytest.mark.parametrize("target", [(100, 100), (64, 64), (37, 91), (91, 37), (7, 5)])
def test_crop_fits_every_source_size_exactly(target):
    """Upscaling and downscaling, every aspect: the crop box stays inside the image and the output is HxW."""
    height, width = target
    sources = [(w, h) for w in range(1, 130, 4) for h in range(1, 130, 5)] + CLIPART_SIZES
    for w, h in sources:
        out = fit_image(Image.new("L", (w, h)), target, "crop")
        assert out.size == (width, height), (w, h)


def test_crop_of_a_clipart_size_keeps_the_centre(tmp_path):
    """750x385 at 100x100 (one of the sizes that used to be skipped): the full height, the middle 385 columns."""
    arr = np.zeros((385, 750), np.uint8)
    arr[:, 182:568] = 255  # columns 182.5 .. 567.5 are the kept centre
    out = np.asarray(fit_image(Image.fromarray(arr), (100, 100), "crop"))
    assert out[:, 2:98].min() == 255 and out.shape == (100, 100)
