"""Image-to-image data: the built-in paired/unpaired/labelled sets, A/B and side-by-side folders."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import Loader, TensorData, as_unpaired, load_data
from ganforge.data.builtin import FASHION_DEBIAN_DIR, fashion_mnist
from ganforge.data.images import SkippedImagesWarning
from ganforge.data.inspect import format_inspection, inspect_folder
from ganforge.data.paired import UnmatchedPairsWarning
from ganforge.data.registry import load_builtin
from ganforge.data.spec import DataSpec
from ganforge.data.translation import EMOJI_FONT, font_codepoints

needs_fashion = pytest.mark.skipif(not FASHION_DEBIAN_DIR.exists(), reason="dataset-fashion-mnist not installed")
needs_emoji = pytest.mark.skipif(not EMOJI_FONT.exists(), reason="fonts-noto-color-emoji not installed")


@pytest.fixture(scope="module")
def fashion_test():
    d = fashion_mnist(split="test")
    return d.x, d.y


# -- Fashion-MNIST built-ins ------------------------------------------------------------------------
@needs_fashion
@pytest.mark.parametrize("name,shape_a,shape_b,pairing,domains", [
    ("fmnist-edges2items", (1, 28, 28), (1, 28, 28), "paired", ("edges", "items")),
    ("fmnist-lowres", (1, 7, 7), (1, 28, 28), "paired", ("7x7", "28x28")),
    ("fmnist-sneaker2boot", (1, 28, 28), (1, 28, 28), "unpaired", ("sneaker", "ankle boot")),
])
def test_fashion_two_domain_sets(name, shape_a, shape_b, pairing, domains):
    d = load_builtin(name, split="test")
    spec = d.spec
    assert (spec.shape, spec.shape_b, spec.pairing, spec.domains) == (shape_a, shape_b, pairing, domains)
    assert d.x.dtype == d.x_b.dtype == torch.uint8 and d.x.shape[1:] == shape_a and d.x_b.shape[1:] == shape_b
    assert spec.name == f"{name}-test" and d.source == f"builtin:{name}"
    n = 1000 if pairing == "unpaired" else 10000
    assert len(d.x) == len(d.x_b) == n and d.y.shape == (n,)
    batch = d.batch(torch.arange(4))
    assert batch.x.shape == (4, *shape_a) and batch.x_b.shape == (4, *shape_b) and batch.x.min() >= -1


def _reference_edges(item: np.ndarray) -> np.ndarray:
    """Sobel + non-maximum suppression + threshold, written independently in numpy (float64, atan2)."""
    p = np.pad(item.astype(np.int64), 1)
    h, w = item.shape

    def at(a, dy, dx):
        return a[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    gx = sum(k * (at(p, dy, 1) - at(p, dy, -1)) for dy, k in ((-1, 1), (0, 2), (1, 1)))
    gy = sum(k * (at(p, 1, dx) - at(p, -1, dx)) for dx, k in ((-1, 1), (0, 2), (1, 1)))
    mag2 = gx**2 + gy**2
    angle = np.degrees(np.arctan2(gy, gx)) % 180
    bins = ((angle + 22.5) // 45).astype(int) % 4
    m = np.pad(mag2, 1)
    out = np.full(item.shape, 255, np.uint8)
    steps = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}
    for i in range(h):
        for j in range(w):
            dy, dx = steps[bins[i, j]]
            peak = mag2[i, j] >= m[1 + i + dy, 1 + j + dx] and mag2[i, j] >= m[1 + i - dy, 1 + j - dx]
            if peak and mag2[i, j] > (0.25 * 4 * 255) ** 2:
                out[i, j] = 0
    return out


@needs_fashion
def test_edges_are_a_fixed_function_of_the_item(fashion_test):
    d = load_builtin("fmnist-edges2items", split="test")
    x, y = fashion_test
    assert torch.equal(d.x_b, x) and torch.equal(d.y, y)
    for i in (0, 1, 17, 4242, 9999):
        np.testing.assert_array_equal(d.x[i, 0].numpy(), _reference_edges(d.x_b[i, 0].numpy()))
    assert set(d.x.unique().tolist()) == {0, 255}
    stroke = (d.x == 0).float().mean().item()  # a line drawing: thin black strokes on white
    assert 0.05 < stroke < 0.25


@needs_fashion
def test_lowres_is_the_4x4_area_average(fashion_test):
    d = load_builtin("fmnist-lowres", split="test")
    mean = d.x_b.double().reshape(-1, 1, 7, 4, 7, 4).mean((3, 5))
    torch.testing.assert_close(d.x.double(), torch.floor(mean + 0.5), atol=0, rtol=0)
    big = load_builtin("fmnist-lowres", size=(32, 32), channels=3, split="test")
    assert big.spec.shape == (3, 8, 8) and big.spec.shape_b == (3, 32, 32) and big.spec.domains == ("8x8", "32x32")
    with pytest.raises(ValueError, match="multiples of 4"):
        load_builtin("fmnist-lowres", size=(30, 30), split="test")


@needs_fashion
def test_edges2items_resizes_both_domains():
    d = load_builtin("fmnist-edges2items", size=(32, 32), channels=3, split="test")
    assert d.spec.shape == d.spec.shape_b == (3, 32, 32)
    assert torch.equal(d.x[:, 0], d.x[:, 2])  # grey repeated


@needs_fashion
def test_sneaker2boot_holds_sneakers_and_boots(fashion_test):
    x, y = fashion_test
    d = load_builtin("fmnist-sneaker2boot", split="test")
    assert torch.equal(d.x, x[y == 7]) and torch.equal(d.x_b, x[y == 9])
    assert d.y.unique().tolist() == [7] and d.spec.class_names[7] == "sneaker"
    same = load_data("builtin:fmnist-pair:sneaker,ankle-boot")  # the train split
    assert same.spec.domains == ("sneaker", "ankle boot") and same.spec.name == "fmnist-pair-7-9"
    assert len(same.x) == len(same.x_b) == 6000
    other = load_builtin("fmnist-pair:0,6", split="test")
    assert torch.equal(other.x, x[y == 0]) and other.spec.domains == ("t-shirt/top", "shirt")
    with pytest.raises(ValueError, match="two different classes"):
        load_builtin("fmnist-pair:7,7")
    with pytest.raises(ValueError, match="use 0-9 or one of"):
        load_builtin("fmnist-pair:7,hat")
    with pytest.raises(ValueError, match="needs an argument, e.g. builtin:fmnist-pair:7,9"):
        load_builtin("fmnist-pair")


@needs_fashion
def test_fmnist_shoes_is_labelled_three_domain_data(fashion_test):
    x, y = fashion_test
    d = load_builtin("fmnist-shoes", split="test")
    assert d.spec.pairing == "" and d.x_b is None
    assert d.spec.n_classes == 3 and d.spec.class_names == ("sandal", "sneaker", "ankle boot")
    assert d.y.bincount().tolist() == [1000, 1000, 1000]
    for label, fashion_class in enumerate((5, 7, 9)):
        assert torch.equal(d.x[d.y == label], x[y == fashion_class])


# -- emoji built-ins --------------------------------------------------------------------------------
@needs_emoji
def test_emoji_gray2color_is_luma_of_colour():
    train, test = load_builtin("emoji-gray2color"), load_builtin("emoji-gray2color", split="test")
    assert train.spec.shape == (1, 64, 64) and train.spec.shape_b == (3, 64, 64)
    assert (train.spec.pairing, train.spec.domains) == ("paired", ("grey", "colour"))
    n = len(train) + len(test)
    assert n > 1000 and len(test) == n // 10  # every 10th glyph
    rgb = train.x_b.double()
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    assert (train.x[:, 0].double() - luma).abs().max().item() <= 0.5 + 1e-9
    saturation = rgb.amax(1) - rgb.amin(1)
    assert (saturation.flatten(1).amax(1) > 64).float().mean() > 0.8  # mostly colourful, on white
    assert train.x_b[:, :, 0, 0].eq(255).all()
    with pytest.raises(ValueError, match="colour images; drop --channels 1"):
        load_builtin("emoji-gray2color", channels=1, split="test")


@needs_emoji
def test_emoji_lowres_is_the_4x4_area_average():
    d = load_builtin("emoji-lowres", split="test")
    assert d.spec.shape == (3, 32, 32) and d.spec.shape_b == (3, 128, 128) and d.x.dtype == torch.uint8
    mean = d.x_b.double().reshape(-1, 3, 32, 4, 32, 4).mean((3, 5))
    torch.testing.assert_close(d.x.double(), torch.floor(mean + 0.5), atol=0, rtol=0)
    assert load_builtin("emoji-lowres", size=(64, 64), split="test").spec.shape == (3, 16, 16)
    assert 0x1F600 in font_codepoints(EMOJI_FONT)  # grinning face, read from the font's cmap


def test_missing_emoji_font_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_EMOJI_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(RuntimeError, match="apt-get install fonts-noto-color-emoji"):
        load_builtin("emoji-gray2color")


# -- unpaired data and the loader -------------------------------------------------------------------
def _unpaired(n_a: int = 10, n_b: int = 7) -> TensorData:
    spec = DataSpec("image", (1, 2, 2), shape_b=(1, 2, 2), pairing="unpaired", domains=("a", "b"))
    x = torch.arange(n_a, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    x_b = (100 + torch.arange(n_b, dtype=torch.uint8)).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return TensorData(spec, x, None, x_b=x_b)


def _ids(batch) -> list[tuple[int, int]]:
    a = ((batch.x[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()
    b = ((batch.x_b[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()
    return list(zip(a, b))


def test_loader_reshuffles_b_every_epoch_and_resumes_exactly():
    data = _unpaired()
    loader = Loader(data, batch_size=5, seed=3)
    epochs = [sorted(_ids(loader.next_batch()) + _ids(loader.next_batch())) for _ in range(3)]
    for pairs in epochs:
        assert sorted(a for a, _ in pairs) == list(range(10))  # an epoch covers every A once
        assert {b for _, b in pairs} == set(range(100, 107))    # and every B
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]    # B's partners change

    first = Loader(data, batch_size=4, seed=1)
    for _ in range(3):
        first.next_batch()
    state = first.state_dict()
    expected = [_ids(first.next_batch()) for _ in range(6)]
    resumed = Loader(_unpaired(), batch_size=4, seed=1)
    resumed.load_state_dict(state)
    assert [_ids(resumed.next_batch()) for _ in range(6)] == expected


@needs_fashion
def test_as_unpaired_keeps_the_images():
    paired = load_builtin("fmnist-lowres", split="test")
    unpaired = as_unpaired(paired)
    assert unpaired.spec.pairing == "unpaired" and unpaired.x is paired.x and unpaired.x_b is paired.x_b
    assert unpaired.spec.shape_b == paired.spec.shape_b and as_unpaired(unpaired) is unpaired
    with pytest.raises(ValueError, match="one domain"):
        as_unpaired(load_builtin("fmnist-shoes", split="test"))


# -- folders ----------------------------------------------------------------------------------------
def _png(path: Path, value: int, size=(8, 8), rgb=(0, 0, 0)) -> None:
    """An image whose red channel is `value` everywhere: which file a row came from is readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size[1], size[0]), (value, *rgb[1:])).save(path)


def _red(x: torch.Tensor) -> list[int]:
    return x[:, 0, 0, 0].tolist()


def test_paired_folder_round_trip(tmp_path):
    root = tmp_path / "pairs"
    for i in range(5):
        _png(root / "A" / f"img{i}.png", 10 + i)
        _png(root / "B" / (f"img{i}.bmp" if i == 2 else f"img{i}.png"), 50 + i)  # names pair across suffixes
    (root / "A" / "img3.png").write_bytes(b"not a png" * 20)  # corrupt: skipped, and its partner left out
    _png(root / "B" / "stray.png", 99)                          # no partner in A
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        d = load_data(str(root))
    messages = {w.category: str(w.message) for w in record}
    assert "2 files have no readable partner" in messages[UnmatchedPairsWarning]
    assert "A/stray.png" not in messages[UnmatchedPairsWarning] and "B/stray.png" in messages[UnmatchedPairsWarning]
    assert "img3.png" in messages[SkippedImagesWarning]
    assert d.spec.pairing == "paired" and d.spec.domains == ("A", "B") and d.skipped == ("A/img3.png",)
    assert _red(d.x) == [10, 11, 12, 14]
    assert _red(d.x_b) == [50, 51, 52, 54]  # every A beside its own B
    assert d.spec.shape == d.spec.shape_b == (3, 8, 8)
    report = format_inspection(inspect_folder(root))
    assert "paired by file name: 4 pairs" in report and "2 files without a readable partner" in report


def test_paired_superresolution_folder_keeps_the_size_ratio(tmp_path):
    root = tmp_path / "sr"
    for i in range(3):
        _png(root / "A" / f"{i}.png", i, size=(4, 4))
        _png(root / "B" / f"{i}.png", i, size=(16, 16))
    d = load_data(str(root), size=(32, 32))
    assert d.spec.shape == (3, 8, 8) and d.spec.shape_b == (3, 32, 32) and d.spec.pairing == "paired"


def test_unpaired_folder_of_different_sizes(tmp_path):
    root = tmp_path / "horse2zebra"
    for i in range(4):
        _png(root / "trainA" / f"horse{i}.png", i, size=(8, 8))
    for i, size in enumerate([(12, 12), (10, 14), (12, 12)]):
        _png(root / "trainB" / f"zebra{i}.png", 100 + i, size=size)
    _png(root / "testA" / "horse9.png", 9)  # left alone
    with pytest.raises(ValueError, match="--size"):
        load_data(str(root))
    d = load_data(str(root), size=(8, 8), channels=1)
    assert d.spec.pairing == "unpaired" and d.spec.domains == ("trainA", "trainB")
    assert d.x.shape == (4, 1, 8, 8) and d.x_b.shape == (3, 1, 8, 8) and len(d) == 4
    assert "unpaired (0 file names in common)" in format_inspection(inspect_folder(root))


def test_side_by_side_split(tmp_path):
    root = tmp_path / "facades"
    root.mkdir()
    for i in range(3):
        im = np.zeros((6, 12, 3), np.uint8)
        im[:, :6, 0], im[:, 6:, 0] = 10 + i, 200 + i  # left half A, right half B
        Image.fromarray(im).save(root / f"{i}.png")
    d = load_data(str(root), pairs="side-by-side")
    assert d.spec.pairing == "paired" and d.spec.shape == d.spec.shape_b == (3, 6, 6)
    assert d.x[:, 0].flatten(1).unique(dim=1).flatten().tolist() == [10, 11, 12]
    assert d.x_b[:, 0].flatten(1).unique(dim=1).flatten().tolist() == [200, 201, 202]
    assert load_data(str(root), pairs="side-by-side", size=(4, 4)).x.shape == (3, 3, 4, 4)
    assert "twice as wide as tall" in format_inspection(inspect_folder(root))
    square = tmp_path / "square"
    _png(square / "x.png", 1)
    with pytest.raises(ValueError, match="twice as wide as tall"):
        load_data(str(square), pairs="side-by-side")


def test_pairs_labels_reads_a_and_b_as_classes(tmp_path):
    root = tmp_path / "stargan"
    _png(root / "A" / "x.png", 1)
    _png(root / "B" / "y.png", 2)
    d = load_data(str(root), pairs="labels")
    assert d.spec.pairing == "" and d.spec.class_names == ("A", "B") and d.y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="auto, labels, side-by-side"):
        load_data(str(root), pairs="zip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_data(str(root)).spec.pairing == "unpaired"
    lower = tmp_path / "classes"
    _png(lower / "a" / "x.png", 1)
    _png(lower / "b" / "x.png", 2)
    assert load_data(str(lower)).spec.class_names == ("a", "b")  # lower-case a/ b/ stay classes
