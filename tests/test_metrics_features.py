"""Feature extractors: the shipped Fashion-MNIST and clip-art classifiers, the FID Inception-v3 (random
weights here: the real ones cannot be downloaded on these machines), its weight loading, and users' own models."""

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data.builtin import fashion_mnist
from ganforge.metrics import features
from ganforge.metrics import inception as fid_inception
from ganforge.metrics.fashion_net import FashionNet, count_parameters
from ganforge.metrics.fid import fid
from ganforge.nn.clipart_net import ClipartNet

TEST_ACCURACY_BOUND = 0.78  # the shipped clipart weights: 78.6% on the de-duplicated held-out split


@pytest.fixture(scope="module")
def fashion_ext():
    return features.load("fashion")


@pytest.fixture(scope="module")
def test_images():
    test = fashion_mnist(split="test")
    return test.to_float(test.x[:2000]), test.y[:2000]


@pytest.fixture(scope="module")
def inception_ext():
    torch.manual_seed(0)
    return features.load("inception", random_init=True, batch_size=2)


# ---- fashion ----------------------------------------------------------------------------------------

def test_fashion_weights_are_the_recorded_ones(fashion_ext):
    info = features.fashion_info()
    assert fashion_ext.weights_hash == info["sha256"]
    assert features.FASHION_WEIGHTS.stat().st_size == info["weights_bytes"] < 5 * 2**20
    assert info["n_params"] == count_parameters(FashionNet(width=info["width"]))
    assert info["test_accuracy"] >= 0.92
    assert "scripts/train_fashion_classifier.py" in info["command"]
    prov = fashion_ext.provenance()
    assert prov["weights_sha256"] == info["sha256"] and prov["resize"] == "bilinear-antialias-28x28"


def test_fashion_shapes_and_accuracy(fashion_ext, test_images):
    x, y = test_images
    feats, logits = fashion_ext.features_and_logits(x)
    assert feats.shape == (2000, 128) and fashion_ext.dim == 128
    assert logits.shape == (2000, 10) and fashion_ext.n_classes == 10
    assert bool((feats >= 0).all())  # post-ReLU features
    torch.testing.assert_close(fashion_ext.probs(x[:50]).sum(1), torch.ones(50))
    accuracy = (logits.argmax(1) == y).float().mean().item()
    assert accuracy >= 0.90


def test_fashion_rgb_input_becomes_bt601_luma(fashion_ext, test_images):
    grey = test_images[0][:16]
    torch.testing.assert_close(fashion_ext.features(grey.repeat(1, 3, 1, 1)), fashion_ext.features(grey))
    rgb = torch.rand(4, 3, 28, 28) * 2 - 1
    luma = 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]
    torch.testing.assert_close(fashion_ext.prepare(rgb), luma)


def test_fashion_resizes_larger_images_to_28(fashion_ext, test_images):
    x, y = test_images[0][:500], test_images[1][:500]
    big = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    prepared = fashion_ext.prepare(big)
    assert prepared.shape == (500, 1, 28, 28)
    torch.testing.assert_close(prepared, F.interpolate(big, size=(28, 28), mode="bilinear", antialias=True))
    # an up- then down-sampled image is still the same garment to the classifier
    accuracy = (fashion_ext.logits(big).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.85


def test_input_checks(fashion_ext, test_images):
    x = test_images[0][:4]
    with pytest.raises(TypeError, match="to_float"):
        fashion_ext.features(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        fashion_ext.features((x + 1) * 127.5)
    with pytest.raises(ValueError, match="alpha"):
        fashion_ext.features(torch.zeros(2, 4, 28, 28))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fashion_ext.features(torch.zeros(1, 28, 28))
    # out-of-range values are clamped, as saving the image would
    torch.testing.assert_close(fashion_ext.features(3 * x), fashion_ext.features((3 * x).clamp(-1, 1)))
    assert fashion_ext.features(x[:0]).shape == (0, 128)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="fashion, inception.*\\.pt.*\\.onnx"):
        features.load("incepshun")


# ---- inception: architecture with random weights ----------------------------------------------------

def test_inception_shapes_resize_and_grey(inception_ext):
    grey = torch.rand(2, 1, 40, 56) * 2 - 1
    prepared = inception_ext.prepare(grey)
    assert prepared.shape == (2, 3, 299, 299)
    torch.testing.assert_close(prepared, inception_ext.prepare(grey.repeat(1, 3, 1, 1)))
    # upsampling with antialias equals plain bilinear (pytorch-fid's resize)
    plain = F.interpolate(grey, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(prepared[:, :1], plain)
    assert inception_ext.prepare(torch.rand(1, 3, 512, 384) * 2 - 1).shape == (1, 3, 299, 299)
    feats, logits = inception_ext.features_and_logits(grey)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert inception_ext.dim == 2048 and inception_ext.weights_hash == "random-init"
    assert bool(torch.isfinite(feats).all()) and bool(torch.isfinite(logits).all())
    assert (feats[0] - feats[1]).abs().max() > 1e-4  # different images, different features


def _port_keys() -> set[str]:
    """The pytorch-fid port's state-dict keys (torchvision Inception3 naming, no AuxLogits), written out
    independently of our module."""
    conv = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
    a = ["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3", "branch_pool"]
    b = ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]
    c = ["branch1x1", "branch_pool"] + [f"branch7x7_{i}" for i in (1, 2, 3)]
    c += [f"branch7x7dbl_{i}" for i in range(1, 6)]
    d = ["branch3x3_1", "branch3x3_2"] + [f"branch7x7x3_{i}" for i in (1, 2, 3, 4)]
    e = ["branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2",
         "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"]
    layers = conv + [f"Mixed_5{k}.{n}" for k in "bcd" for n in a] + [f"Mixed_6a.{n}" for n in b]
    layers += [f"Mixed_6{k}.{n}" for k in "bcde" for n in c] + [f"Mixed_7a.{n}" for n in d]
    layers += [f"Mixed_7{k}.{n}" for k in "bc" for n in e]
    suffixes = ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    return {f"{layer}.{s}" for layer in layers for s in suffixes} | {"fc.weight", "fc.bias"}


def test_inception_names_match_the_port():
    model = fid_inception.FIDInceptionV3()
    assert set(fid_inception.port_key_names(model)) == _port_keys()
    state = model.state_dict()
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
    assert state["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    assert state["fc.weight"].shape == (1008, 2048)
    assert count_parameters(model) == 23_850_960  # torchvision's Inception3 without AuxLogits, 1008 classes
    assert model.Conv2d_1a_3x3.bn.eps == pytest.approx(1e-3)


def test_inception_loads_a_port_state_dict(tmp_path):
    torch.manual_seed(1)
    reference = fid_inception.FIDInceptionV3()
    for m in reference.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    state = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}  # old files
    path = tmp_path / "fake_port.pth"
    torch.save(state, path)
    with pytest.warns(UserWarning, match="not the standard FID Inception file"):
        ext = features.load("inception", weights=path)
    loaded = ext._module.state_dict()
    for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_6e.branch7x7dbl_5.bn.running_var", "fc.bias"):
        torch.testing.assert_close(loaded[key], state[key])
    assert ext.weights_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(FileNotFoundError, match="--inception-weights"):
        features.load("inception", weights=tmp_path / "missing.pth")


def test_inception_offline_without_weights_names_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    monkeypatch.setattr(fid_inception, "FID_WEIGHTS_URL", "http://127.0.0.1:9/pt_inception-2015-12-05-6726825d.pth")
    with pytest.raises(RuntimeError, match="--inception-weights PATH"):
        features.load("inception")
    assert list((tmp_path / "weights").iterdir()) == []  # no partial download left behind


def test_inception_download_checks_the_sha256_prefix(tmp_path, monkeypatch):
    payload = b"pretend these are weights"
    digest = hashlib.sha256(payload).hexdigest()
    served = tmp_path / "served"
    served.mkdir()
    good, bad = served / f"w-{digest[:8]}.pth", served / "w-00000000.pth"
    good.write_bytes(payload)
    bad.write_bytes(payload)
    cache = tmp_path / "cache"
    path = fid_inception.fid_weights_path(url=good.as_uri(), cache_dir=cache)
    assert path == cache / good.name and path.read_bytes() == payload
    assert fid_inception.fid_weights_path(url=good.as_uri(), cache_dir=cache) == path  # cached: no download
    with pytest.raises(ValueError, match="SHA-256"):
        fid_inception.fid_weights_path(url=bad.as_uri(), cache_dir=cache)
    assert sorted(p.name for p in cache.iterdir()) == [good.name]
    # a tampered cached copy of the real file is refused, never loaded
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / fid_inception.FID_WEIGHTS_URL.rsplit("/", 1)[-1]).write_bytes(payload)
    with pytest.raises(ValueError, match="--inception-weights PATH"):
        features.load("inception")
    assert fid_inception.hash_prefix_from_url(fid_inception.FID_WEIGHTS_URL) == fid_inception.FID_WEIGHTS_SHA256_PREFIX


# ---- a user's own model -----------------------------------------------------------------------------

class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.conv(x).relu().mean(dim=(2, 3))
        return feats, self.head(feats)


def test_torchscript_model_round_trip(tmp_path):
    torch.manual_seed(0)
    net = TinyNet().eval()
    path = tmp_path / "mine.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    ext = features.load(str(path), input_size=(16, 16), channels=1, n_classes=3)
    x = torch.rand(5, 3, 20, 24) * 2 - 1
    want_feats, want_logits = net(ext.prepare(x))
    feats, logits = ext.features_and_logits(x)
    torch.testing.assert_close(feats, want_feats)
    torch.testing.assert_close(logits, want_logits)
    assert ext.dim == 4 and ext.weights_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_onnx_needs_onnxruntime(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        features.load(str(tmp_path / "mine.onnx"))


def test_onnx_model_round_trip(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    net = TinyNet().eval()
    path = tmp_path / "mine.onnx"
    torch.onnx.export(net, (torch.zeros(2, 1, 16, 16),), str(path), input_names=["images"],
                      output_names=["features", "logits"], dynamic_axes={"images": {0: "n"}})
    ext = features.load(str(path), n_classes=3)
    assert ext.input_size == (16, 16) and ext.channels == 1  # read from the model's input shape
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    want_feats, want_logits = net(ext.prepare(x))
    feats, logits = ext.features_and_logits(x)
    torch.testing.assert_close(feats, want_feats, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, want_logits, atol=1e-5, rtol=1e-4)


# ---- clipart: RGB clip art, 64x64 ---------------------------------------------------------------------

OPENCLIPART = Path(os.environ.get("GANFORGE_CLIPART", "/usr/share/openclipart/png"))
needs_openclipart = pytest.mark.skipif(not OPENCLIPART.is_dir(),
                                       reason="needs Debian's openclipart-png (apt-get install openclipart-png)")


def drawings(n: int, seed: int, size: int = 64) -> np.ndarray:
    """(n, size, size, 3) uint8 synthetic clip art: 1-3 flat-coloured, black-outlined shapes on white."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        im = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 4))):
            x0, y0 = (int(v) for v in rng.integers(2, size // 2, 2))
            x1, y1 = (int(v) for v in rng.integers(size // 2 + 4, size - 2, 2))
            fill = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = (draw.ellipse, draw.rectangle)[int(rng.integers(0, 2))]
            shape((x0, y0, x1, y1), fill=fill, outline="black", width=2)
        out.append(np.asarray(im))
    return np.stack(out)


def as_float(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.fixture(scope="module")
def clipart_ext():
    return features.load("clipart")


@pytest.fixture(scope="module")
def clipart_test_split():
    """The held-out split of the categories the extractor was trained on: (N, 3, 64, 64) in [-1, 1], labels.

    Not de-duplicated as the training script does, so a few drawings filed under two categories are here."""
    from ganforge.data import load_builtin
    from ganforge.data.images import SkippedImagesWarning

    xs, ys = [], []
    for label, category in enumerate(features.clipart_info()["classes"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedImagesWarning)  # a few unreadable PNGs in the package
            data = load_builtin(f"clipart:{category}", size=(64, 64), split="test")
        xs.append(data.to_float(data.x))
        ys.append(torch.full((len(data),), label))
    return torch.cat(xs), torch.cat(ys)


def test_clipart_weights_are_the_recorded_ones(clipart_ext):
    info = features.clipart_info()
    assert clipart_ext.weights_hash == info["sha256"] == hashlib.sha256(features.CLIPART_WEIGHTS.read_bytes()).hexdigest()
    assert features.CLIPART_WEIGHTS.stat().st_size == info["weights_bytes"] < 5 * 2**20
    net = ClipartNet(n_classes=info["n_classes"], width=info["width"], feature_dim=info["feature_dim"])
    assert info["n_params"] == count_parameters(net)
    assert len(info["classes"]) == info["n_classes"] == clipart_ext.n_classes == 12
    assert info["feature_dim"] == clipart_ext.dim == 128 and info["input_size"] == [64, 64]
    assert info["test_accuracy"] >= TEST_ACCURACY_BOUND and len(info["data_sha256"]) == 64
    assert "scripts/train_clipart_classifier.py" in info["command"]
    assert "photograph" in info["cannot_judge"] and "white" in info["judges"]
    prov = clipart_ext.provenance()
    assert prov["extractor"] == "clipart" and prov["resize"] == "bilinear-antialias-64x64"


def test_clipart_shapes_determinism_and_channels(clipart_ext):
    x = as_float(drawings(20, seed=0))
    feats, logits = clipart_ext.features_and_logits(x)
    assert feats.shape == (20, 128) and logits.shape == (20, 12)
    assert bool((feats >= 0).all()) and float(feats.std(0).mean()) > 0  # post-ReLU, not constant
    torch.testing.assert_close(clipart_ext.probs(x).sum(1), torch.ones(20))
    again = features.load("clipart", batch_size=7).features_and_logits(x)  # another load, other batches
    torch.testing.assert_close(again[0], feats, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(again[1], logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(clipart_ext.features(x), feats)  # the same call twice: the same bits
    grey = x[:, :1]
    torch.testing.assert_close(clipart_ext.features(grey), clipart_ext.features(grey.repeat(1, 3, 1, 1)))


@pytest.fixture(scope="module")
def clipart_test_features(clipart_ext, clipart_test_split):
    return clipart_ext.features_and_logits(clipart_test_split[0])


@needs_openclipart
def test_clipart_classifies_the_held_out_split(clipart_test_split, clipart_test_features):
    accuracy = (clipart_test_features[1].argmax(1) == clipart_test_split[1]).float().mean().item()
    # recorded on the de-duplicated split; this one keeps the drawings filed under two categories (72% here)
    assert accuracy >= TEST_ACCURACY_BOUND - 0.08


@needs_openclipart
def test_clipart_features_of_a_resized_copy_are_close(clipart_ext, clipart_test_split, clipart_test_features):
    x, f, logits = clipart_test_split[0][::3], clipart_test_features[0][::3], clipart_test_features[1][::3]
    big = F.interpolate(x, size=(100, 100), mode="bilinear", align_corners=False)
    torch.testing.assert_close(clipart_ext.prepare(big),
                               F.interpolate(big, size=(64, 64), mode="bilinear", antialias=True))
    f_big, logits_big = clipart_ext.features_and_logits(big)
    f_small = clipart_ext.features(F.interpolate(x, size=(40, 40), mode="bilinear", antialias=True))
    nearest_other = torch.cdist(f, f).fill_diagonal_(float("inf")).amin(1)  # distance to the closest other drawing
    for copy, most_moved in ((f_big, 0.2), (f_small, 0.35)):  # medians measured: 0.13 and 0.25
        moved = (copy - f).norm(dim=1)
        assert float((moved / f.norm(dim=1)).median()) < most_moved
        assert float((moved < nearest_other).float().mean()) > 0.7  # mostly nearer its original than any other
    assert (logits_big.argmax(1) == logits.argmax(1)).float().mean().item() >= 0.85


@needs_openclipart
def test_clipart_fid_small_between_subsets_large_against_inverted_colours(clipart_ext, clipart_test_split,
                                                                         clipart_test_features):
    x, feats = clipart_test_split[0], clipart_test_features[0]
    ia = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))[:300]
    ib = torch.randperm(len(x), generator=torch.Generator().manual_seed(2))[:300]
    same = fid(feats[ia], feats[ib])
    inverted = fid(feats[ia], clipart_ext.features(-x[ib]))  # -x: colours inverted, white -> black
    scale = float(feats[ia].var(0).sum())  # FID's units: the features' total variance
    assert same < 0.15 * scale  # measured: 4.9 against a total variance of 72
    assert inverted > 10 * same and inverted > 0.8 * scale  # measured: 88


def test_evaluate_cli_takes_features_clipart(tmp_path):
    from PIL import Image

    from ganforge.cli.main import main

    for folder, seed in (("a", 0), ("b", 1)):
        (tmp_path / folder).mkdir()
        for i, img in enumerate(drawings(140, seed, size=48)):  # 48x48: the extractor resizes to 64x64
            Image.fromarray(img).save(tmp_path / folder / f"{i:03d}.png")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--real", str(tmp_path / "a"), "--fake", str(tmp_path / "b"), "--metrics", "fid,kid",
                 "--features", "clipart", "--n", "140", "--out", str(out)]) == 0
    res = json.loads(out.read_text())["results"]
    prov = res["fid"]["provenance"]
    assert prov["extractor"] == "clipart" and prov["weights_sha256"] == features.clipart_info()["sha256"]
    assert prov["resize"] == "bilinear-antialias-64x64" and prov["n_real"] == 140
    assert 0 < res["fid"]["values"]["fid"] < float("inf")
