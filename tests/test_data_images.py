"""Image folders: modes, sizes, fits, classes, corrupt files, the decode-once cache, inspection."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from ganforge.data import images as images_mod
from ganforge.data import load_data
from ganforge.data.images import SkippedImagesWarning, load_image_folder
from ganforge.data.inspect import format_inspection, inspect_folder

RED = (255, 0, 0)


def solid(mode: str, size: tuple[int, int], color) -> Image.Image:
    """size is Pillow's (W, H)."""
    return Image.new(mode, size, color)


def write_truncated_png(path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def make_messy_folder(root: Path) -> list[str]:
    """Mixed sizes and modes plus two broken files and a text file; returns the readable names, sorted."""
    root.mkdir()
    solid("RGB", (160, 100), RED).save(root / "a_red_wide.png")
    solid("RGBA", (50, 200), (0, 0, 255, 0)).save(root / "b_clear_tall.png")
    solid("L", (100, 100), 77).save(root / "c_grey.png")
    pal = solid("RGB", (30, 40), (0, 128, 0)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    pal.save(root / "d_palette.gif")
    solid("CMYK", (120, 90), (0, 255, 255, 0)).save(root / "e_cmyk.jpg")
    solid("1", (64, 32), 1).save(root / "f_bits.bmp")
    Image.fromarray(np.full((40, 40), 257 * 200, np.uint16)).save(root / "g_16bit.PNG")
    solid("RGB", (48, 48), (10, 20, 30)).save(root / "h_photo.webp", lossless=True)
    write_truncated_png(root / "x_truncated.png")
    (root / "y_garbage.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    (root / "notes.txt").write_text("hello")
    return ["a_red_wide.png", "b_clear_tall.png", "c_grey.png", "d_palette.gif", "e_cmyk.jpg",
            "f_bits.bmp", "g_16bit.PNG", "h_photo.webp"]


def snapshot(root: Path) -> list[tuple[str, int, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.stat(os.path.join(dirpath, name))
            out.append((os.path.relpath(os.path.join(dirpath, name), root), st.st_size, st.st_mtime_ns))
    return sorted(out)


def load(root: Path, cache: Path, size=(100, 100), **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        return load_image_folder(root, size=size, cache_dir=cache, quiet=True, **kw)


@pytest.fixture
def messy(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "messy"
    return root, make_messy_folder(root)


def test_messy_folder_rgb_shape_and_corrupt_files_warned(messy, tmp_path):
    root, good = messy
    with pytest.warns(SkippedImagesWarning, match=r"skipped 2 .*x_truncated\.png, y_garbage\.jpg"):
        data = load_image_folder(root, size=(100, 100), cache_dir=tmp_path / "cache", quiet=True)
    assert data.x.shape == (len(good), 3, 100, 100)
    assert data.x.dtype == torch.uint8
    assert data.y is None and data.spec.n_classes == 0
    assert data.skipped == ("x_truncated.png", "y_garbage.jpg")
    assert data.spec.kind == "image" and data.spec.shape == (3, 100, 100) and data.spec.name == "messy"
    assert data.source == str(root)


def test_grey_non_square_shape_is_h_by_w(messy, tmp_path):
    root, good = messy
    data = load(root, tmp_path / "cache", size=(96, 64), channels=1)
    assert data.x.shape == (len(good), 1, 96, 64)
    assert data.spec.size == (96, 64)


def test_pixel_values_after_conversion(messy, tmp_path):
    root, good = messy
    x = load(root, tmp_path / "cache").x
    at = {name: x[i] for i, name in enumerate(good)}
    # pure red, non-square, centre-cropped: exactly red everywhere
    assert torch.equal(at["a_red_wide.png"], torch.tensor(RED, dtype=torch.uint8).view(3, 1, 1).expand(3, 100, 100))
    # a fully transparent (blue) pixel is composited onto white
    assert torch.equal(at["b_clear_tall.png"], torch.full((3, 100, 100), 255, dtype=torch.uint8))
    # grey -> RGB: equal channels, same value
    assert torch.equal(at["c_grey.png"], torch.full((3, 100, 100), 77, dtype=torch.uint8))
    assert torch.equal(at["d_palette.gif"][:, 50, 50], torch.tensor([0, 128, 0], dtype=torch.uint8))
    assert torch.equal(at["f_bits.bmp"], torch.full((3, 100, 100), 255, dtype=torch.uint8))
    # 16-bit grey 257*200 -> 200
    assert torch.equal(at["g_16bit.PNG"], torch.full((3, 100, 100), 200, dtype=torch.uint8))
    cmyk = at["e_cmyk.jpg"][:, 50, 50].int()  # magenta + yellow ink -> red, up to JPEG rounding
    torch.testing.assert_close(cmyk, torch.tensor(RED, dtype=torch.int32), atol=3, rtol=0)


def test_crop_keeps_the_centre_and_pad_adds_black(tmp_path):
    root = tmp_path / "fits"
    root.mkdir()
    three = np.zeros((100, 300, 3), np.uint8)  # (H, W, 3): green | red | blue thirds
    three[:, :100, 1] = 255
    three[:, 100:200, 0] = 255
    three[:, 200:, 2] = 255
    Image.fromarray(three).save(root / "thirds.png")
    cropped = load(root, tmp_path / "c1", size=(50, 50), fit="crop").x[0]
    inner = cropped[:, :, 5:45]  # LANCZOS reaches ~3 px into the neighbours at the edges
    assert torch.equal(inner, torch.tensor(RED, dtype=torch.uint8).view(3, 1, 1).expand_as(inner))

    padded = load(root, tmp_path / "c2", size=(60, 60), fit="pad").x[0]  # 300x100 -> 60x20, rows 20..39
    assert torch.equal(padded[:, :20], torch.zeros(3, 20, 60, dtype=torch.uint8))
    assert torch.equal(padded[:, 40:], torch.zeros(3, 20, 60, dtype=torch.uint8))
    assert padded[0, 20:40, 25:35].min() == 255 and padded[1:, 20:40, 25:35].max() == 0


def test_exif_orientation_is_applied(tmp_path):
    root = tmp_path / "exif"
    root.mkdir()
    im = solid("RGB", (40, 20), RED)  # stored 40 wide, 20 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display -> 20 wide, 40 tall
    im.save(root / "rotated.jpg", exif=exif.tobytes())
    data = load(root, tmp_path / "cache", size=None)
    assert data.x.shape == (1, 3, 40, 20)


def test_native_size_and_mixed_sizes(tmp_path):
    same = tmp_path / "same"
    same.mkdir()
    for i in range(3):
        solid("RGB", (32, 24), (i, i, i)).save(same / f"{i}.png")
    data = load(same, tmp_path / "cache", size=None)
    assert data.x.shape == (3, 3, 24, 32)

    solid("RGB", (16, 16), RED).save(same / "odd.png")
    with pytest.raises(ValueError, match=r"2 different sizes.*24x32 \(3 files\).*pass --size HxW"):
        load(same, tmp_path / "cache", size=None)


def test_class_subfolders_are_labels(tmp_path):
    root = tmp_path / "animals"
    for cls, n in (("dog", 2), ("cat", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            solid("RGB", (20, 20), (i, 0, 0)).save(root / cls / f"{i}.png")
    (root / "dog" / "puppies").mkdir()
    solid("RGB", (20, 20), RED).save(root / "dog" / "puppies" / "p.jpg")
    (root / "empty_dir").mkdir()
    data = load(root, tmp_path / "cache", size=(16, 16))
    assert data.spec.class_names == ("cat", "dog") and data.spec.n_classes == 2
    assert data.y is not None and data.y.dtype == torch.int64
    assert data.y.tolist() == [0, 0, 0, 1, 1, 1]

    solid("RGB", (20, 20), RED).save(root / "loose.png")
    with pytest.raises(ValueError, match=r"class sub-folders \(cat, dog\).*loose\.png.*move those"):
        load(root, tmp_path / "cache", size=(16, 16))


def test_empty_and_unreadable_folders_name_what_was_found(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"'.*empty/' has 0 readable images \(no files at all\); give --data"):
        load(empty, tmp_path / "cache")

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"\xff\xd8 nope")
    write_truncated_png(junk / "b.png")
    (junk / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"0 readable images \(2 skipped as unreadable: a\.jpg, b\.png; "
                                         r"1 other files: notes\.txt\); give --data a folder of \.png/\.jpg"):
        load(junk, tmp_path / "cache")
    with pytest.raises(ValueError, match="not a folder"):
        load(junk / "notes.txt", tmp_path / "cache")
    with pytest.raises(ValueError, match="choose one of: crop, pad"):
        load(junk, tmp_path / "cache", fit="stretch")


def test_truncated_files_fail_even_if_pillow_was_told_to_allow_them(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    root = tmp_path / "t"
    root.mkdir()
    write_truncated_png(root / "cut.png")
    solid("RGB", (8, 8), RED).save(root / "ok.png")
    with pytest.warns(SkippedImagesWarning, match="cut.png"):
        data = load_image_folder(root, size=(8, 8), cache_dir=tmp_path / "cache", quiet=True)
    assert len(data) == 1
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_cache_hit_skips_decoding_and_key_follows_the_files(messy, tmp_path, monkeypatch):
    root, good = messy
    cache = tmp_path / "cache"
    calls = []
    real_decode = images_mod.decode_image

    def counting(*args, **kw):
        calls.append(args[0])
        return real_decode(*args, **kw)

    monkeypatch.setattr(images_mod, "decode_image", counting)
    before = snapshot(root)
    first = load(root, cache)
    assert len(calls) == len(good) + 2
    assert sorted(p.suffix for p in (cache / "images").iterdir()) == [".json", ".lock", ".u8"]

    calls.clear()
    with pytest.warns(SkippedImagesWarning, match="y_garbage.jpg"):  # still reported on a cache hit
        second = load_image_folder(root, size=(100, 100), cache_dir=cache, quiet=True)
    assert calls == []
    assert torch.equal(first.x, second.x) and second.skipped == first.skipped
    assert second.spec == first.spec

    load(root, cache, size=(64, 64))  # another size is another entry
    assert len(calls) == len(good) + 2
    assert len(list((cache / "images").glob("*.u8"))) == 2
    assert snapshot(root) == before  # nothing written into the data folder

    calls.clear()
    solid("RGB", (10, 10), RED).save(root / "z_new.png")
    assert len(load(root, cache)) == len(good) + 1
    assert len(calls) == len(good) + 3

    calls.clear()
    st = os.stat(root / "c_grey.png")
    os.utime(root / "c_grey.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load(root, cache)
    assert len(calls) == len(good) + 3


def test_cached_labels_and_default_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "envcache"))
    root = tmp_path / "two"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        solid("L", (12, 12), 9).save(root / cls / "x.png")
    first = load_image_folder(root, size=(8, 8), channels=1, quiet=True)
    second = load_image_folder(root, size=(8, 8), channels=1, quiet=True)
    assert len(list((tmp_path / "envcache" / "images").glob("*.u8"))) == 1
    assert second.y is not None and second.y.tolist() == [0, 1] and second.spec.class_names == ("a", "b")
    assert torch.equal(first.x, second.x)


def test_load_data_reads_a_folder(messy, tmp_path):
    root, good = messy
    with pytest.warns(SkippedImagesWarning):
        data = load_data(str(root), size=(32, 48), cache_dir=tmp_path / "cache", quiet=True)
    assert data.x.shape == (len(good), 3, 32, 48)
    assert data.batch(torch.arange(2)).x.min() >= -1.0


def test_inspect_folder_counts(messy):
    root, good = messy
    before = snapshot(root)
    info = inspect_folder(root)
    assert info["files"] == len(good) + 3
    assert info["images"] == len(good) + 2 and info["readable"] == len(good)
    assert info["skipped"] == ["x_truncated.png", "y_garbage.jpg"]
    assert info["other_files"] == ["notes.txt"]
    assert info["sizes"]["100x160"] == 1 and info["sizes"]["200x50"] == 1 and sum(info["sizes"].values()) == len(good)
    assert info["modes"]["RGBA"] == 1 and info["modes"]["L"] == 1 and info["modes"]["CMYK"] == 1
    assert info["classes"] == {}
    assert info["transparent"] == 1
    assert snapshot(root) == before

    report = format_inspection(info)
    assert "readable     8 of 10 images" in report
    assert "x_truncated.png" in report and "notes.txt" in report
    assert "sizes (HxW)" in report and "mixed sizes: pass --size HxW" in report
    assert "composited onto white" in report


def test_inspect_folder_classes(tmp_path):
    root = tmp_path / "c"
    for cls, n in (("b", 1), ("a", 2)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            solid("RGB", (8, 8), RED).save(root / cls / f"{i}.png")
    (root / "a" / "broken.png").write_bytes(b"nope")
    info = inspect_folder(root)
    assert info["classes"] == {"a": 2, "b": 1}
    assert info["readable"] == 3 and info["skipped"] == ["a/broken.png"]
    report = format_inspection(info)
    assert "classes      2: a 2, b 1" in report
