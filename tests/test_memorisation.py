"""The memorisation check: samples' nearest-training distances against those of new real images."""

import base64
import json
import re

import pytest
import torch

from ganforge.artifacts.report import build_report
from ganforge.cli.main import main
from ganforge.data import load_data
from ganforge.data.store import TensorData
from ganforge.metrics import features
from ganforge.metrics.base import Provenance
from ganforge.metrics.evaluate import compute, fake_set, memorisation_reference, real_set
from ganforge.metrics.memorisation import PIXEL_SIDE, downscale, nearest, pixel_space, verdict
from ganforge.train import build_run

from .conftest import tiny_config


@pytest.fixture(scope="module")
def digits_split():
    """builtin:digits cut into training (1000), held-out (400) and new real images (397) by a fixed shuffle."""
    d = load_data("builtin:digits")
    g = torch.randperm(len(d), generator=torch.Generator().manual_seed(0))
    part = [TensorData(d.spec, d.x[i], d.y[i], source=name)
            for name, i in (("train", g[:1000]), ("heldout", g[1000:1400]), ("new", g[1400:]))]
    return (*part, features.load("fashion"))


def _check(images, train, heldout, ext):
    ref = memorisation_reference(train, ext, heldout, n=400)
    fake = fake_set(lambda a, b: images[a:b], len(images), ext, keep_images=True, keep_side=PIXEL_SIDE)
    res = compute(["memorisation"], real_set(heldout, ext, 400), fake, Provenance(extractor="fashion"),
                  memorisation=ref)["memorisation"]
    return res, ref, fake


def test_a_generator_that_returns_training_images_is_all_copies(digits_split):
    train, heldout, _, ext = digits_split
    images = train.to_float(train.x[:300])
    res, ref, fake = _check(images, train, heldout, ext)
    v, extra = res.values, res.provenance.extra
    assert v["copy_rate"] == 1.0 and v["feature_copy_rate"] == 1.0 and v["pixel_copy_rate"] == 1.0
    assert v["ratio"] < 1e-3 and v["sample_pixel_median"] == 0.0  # exact: the float64 non-matmul distances
    assert v["heldout_pixel_median"] > 0.5 and v["heldout_copy_rate"] <= 0.01
    assert extra["verdict"].startswith("100% of samples are near-copies")
    assert extra["heldout_kind"] == "held-out" and extra["n_train"] == 1000 and extra["n_heldout"] == 400
    assert res.provenance.n_real == 400 and res.provenance.extractor == "fashion"
    assert len(extra["pairs"]) == 8
    for p in extra["pairs"]:  # each closest pair is a sample and a training image with the same pixels
        assert p["pixel_distance"] == 0.0 and p["near_copy"]
        assert torch.equal(train.x[p["train"]], train.x[p["sample"]])


def test_a_generator_that_returns_new_real_images_is_not(digits_split):
    train, heldout, new, ext = digits_split
    images = new.to_float(new.x)
    res, ref, fake = _check(images, train, heldout, ext)
    v, extra = res.values, res.provenance.extra
    assert v["copy_rate"] < 0.1 and v["copy_rate"] <= max(v["feature_copy_rate"], v["pixel_copy_rate"])
    assert 0.8 < v["feature_ratio"] < 1.25 and 0.8 < v["pixel_ratio"] < 1.25
    assert v["ratio"] == max(v["feature_ratio"], v["pixel_ratio"])
    assert extra["verdict"] == "samples are no closer to the training images than new real images are"
    # both spaces measured, each the true L2 distance of a reported pair
    p = extra["pairs"][0]
    x, t = images[p["sample"]], train.to_float(train.x[p["train"]])
    assert p["pixel_distance"] == pytest.approx(float((x.double() - t.double()).norm()), rel=1e-9)
    f_x = fake.features[p["sample"]]
    f_t = real_set(train, ext, len(train)).features[p["train_by_features"]]
    assert p["feature_distance"] == pytest.approx(float((f_x.double() - f_t.double()).norm()), rel=1e-6)
    assert v["sample_feature_median"] != pytest.approx(v["sample_pixel_median"])
    assert extra["pixel_space"] == "L2 on [-1, 1] pixels at the data's size (1x8x8)"


def test_without_a_test_split_the_reference_is_leave_one_out(digits_split):
    train, _, _, ext = digits_split
    ref = memorisation_reference(train, ext, train, n=200)  # a folder / digits: test == train
    assert ref.leave_one_out and len(ref.heldout_features) == 200
    assert "leave-one-out" in ref.heldout and "200 training images" in ref.heldout
    # a held-out row's own training image is excluded: its neighbour is another image
    d, i = nearest(ref.heldout_pixels, ref.train_pixels, exclude=ref.heldout_in_train)
    assert not (i == ref.heldout_in_train).any() and (d >= 0).all()
    assert verdict(0.0, 1.0, 100, leave_one_out=True).endswith("other training images are (leave-one-out: the data "
                                                               "has no test split)")


def test_nearest_is_exact_chunked_and_excludes():
    g = torch.Generator().manual_seed(3)
    keys = torch.randn(300, 50, generator=g) * 30  # large norms: the matmul path alone is off by ~1e-3
    queries = torch.cat([keys[:40], torch.randn(60, 50, generator=g) * 30])
    d, i = nearest(queries, keys, chunk_elements=2000)  # many small chunks
    brute = torch.cdist(queries.double(), keys.double(), compute_mode="donot_use_mm_for_euclid_dist")
    torch.testing.assert_close(d, brute.min(1).values, rtol=1e-12, atol=0)
    assert (d[:40] == 0).all() and torch.equal(i[:40], torch.arange(40))
    ex = torch.arange(100)
    ex[40:] = -1  # copies may not match themselves; the rest may match anything
    d2, i2 = nearest(queries, keys, exclude=ex)
    brute[torch.arange(40), torch.arange(40)] = float("inf")
    torch.testing.assert_close(d2, brute.min(1).values, rtol=1e-12, atol=0)
    assert (d2[:40] > 0).all() and torch.equal(i2[40:], i[40:])


def test_big_images_are_compared_downscaled_and_the_verdict_reads_the_numbers():
    x = torch.rand(3, 3, 256, 192) * 2 - 1
    assert downscale(x).shape == (3, 3, 64, 48) and downscale(x[..., :32, :32]).shape == (3, 3, 32, 32)
    assert pixel_space((3, 256, 192)) == ("L2 on [-1, 1] pixels of copies downscaled from 3x256x192 to 3x64x48 "
                                          "(bilinear, antialiased)")
    kept = fake_set(lambda a, b: x[a:b], 3, features.Extractor("flat", lambda t: (t.mean((2, 3)), None), dim=3,
                    n_classes=None, input_size=None, channels=None, weights_hash="0"), keep_images=True, keep_side=64)
    assert kept.images.shape == (3, 3, 64, 48)
    assert verdict(0.05, 0.1, 1000).startswith("5% of samples are near-copies")
    assert verdict(0.03, 0.5, 100).startswith("samples are closer to the training images than new real images are "
                                              "(median distance x0.50)")  # 3 of 100: within chance
    assert verdict(0.0, 0.95, 1000) == "samples are no closer to the training images than new real images are"


def test_cli_writes_the_check_and_the_report_shows_the_pairs(tmp_path):
    run = tmp_path / "run"
    build_run(tiny_config("dcgan", "builtin:digits", steps=2), run).fit()
    out = tmp_path / "mem.json"
    assert main(["evaluate", "--ckpt", str(run), "--metrics", "memorisation", "--n", "100", "--features", "fashion",
                 "--out", str(out)]) == 0
    res = json.loads(out.read_text())["results"]
    assert list(res) == ["memorisation"]
    prov = res["memorisation"]["provenance"]
    extra = prov["extra"]
    assert prov["extractor"] == "fashion" and len(prov["weights_sha256"]) == 64 and prov["n_fake"] == 100
    assert extra["training_set"] == "builtin:digits train split (1797 images)"
    assert extra["heldout_kind"] == "leave-one-out"  # digits' test split is its training set
    assert (tmp_path / extra["pairs_image"]).is_file() and extra["pairs_image"] == "mem.memorisation.png"
    # 1797 training images: part of the default set, written next to the run's other evaluations
    assert main(["evaluate", "--ckpt", str(run), "--n", "100"]) == 0
    default = next((run / "eval").glob("step_*.json"))
    results = json.loads(default.read_text())["results"]
    assert set(results) == {"fid", "kid", "pr", "dc", "memorisation"}
    page = build_report(run).read_text()
    section = page[page.index("<h2>Memorisation check</h2>"):page.index("<h2>Final metrics</h2>")]
    assert results["memorisation"]["provenance"]["extra"]["verdict"] in section
    png = re.search(r"alt='closest pairs' src='data:image/png;base64,([A-Za-z0-9+/=]+)'", section).group(1)
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
    pairs = results["memorisation"]["provenance"]["extra"]["pairs"]
    assert len(pairs) == 8 and all(f"<td>{p['sample']}</td><td>{p['train']}</td>" in section for p in pairs)
