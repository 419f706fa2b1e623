"""ONNX export parity for every family, the seeded-latent recipe, model cards, `ganforge export --onnx`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ganforge import latent
from ganforge.artifacts import Sampler
from ganforge.artifacts.card import card_markdown, model_card
from ganforge.cli.main import main
from ganforge.train import build_run

from .conftest import NOISE_FAMILIES, tiny_config
from .test_families import SOURCES

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
from ganforge.artifacts import onnx as gonnx  # noqa: E402  (needs onnx)


def _lowbias32(x: int) -> int:  # the hash on Python ints, written independently of the numpy version
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_latent_recipe_matches_a_scalar_reimplementation():
    seed, noise_dim = 12345, 5
    codes = [{"name": "c0", "kind": "categorical", "size": 4}, {"name": "c1", "kind": "continuous", "size": 1}]
    got = latent.seeded_latents(seed, 3, noise_dim, codes)
    for row in range(3):
        key = _lowbias32(_lowbias32(seed) + row)
        u = [(_lowbias32(key ^ _lowbias32(j + 0x9E3779B9)) + 0.5) / 2**32 for j in range(8)]
        want = []
        for i in range(3):
            r, t = math.sqrt(-2 * math.log(u[2 * i])), 2 * math.pi * u[2 * i + 1]
            want += [r * math.cos(t), r * math.sin(t)]
        onehot = [0.0] * 4
        onehot[min(int(u[6] * 4), 3)] = 1.0
        np.testing.assert_allclose(got[row], np.array(want[:5] + onehot + [2 * u[7] - 1], np.float32), rtol=0, atol=1e-6)


def test_latents_are_standard_normal_and_rows_depend_only_on_seed_and_row():
    z = latent.seeded_latents(3, 4000, 64)
    assert z.dtype == np.float32 and z.shape == (4000, 64)
    assert z.mean() == pytest.approx(0, abs=0.01)  # 256k draws: sd of the mean 0.002
    assert z.std() == pytest.approx(1, abs=0.01)
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 0.06  # 4k pairs: sd 0.016
    np.testing.assert_array_equal(latent.seeded_latents(3, 1, 64), z[:1])
    np.testing.assert_array_equal(latent.seeded_latents(3, 2, 64, first_row=10), z[10:12])
    assert not np.array_equal(latent.seeded_latents(4, 1, 64), z[:1])
    np.testing.assert_allclose(latent.seeded_latents(3, 5, 64, truncation=0.5), 0.5 * z[:5], rtol=1e-6, atol=0)
    codes = [{"name": "c0", "kind": "categorical", "size": 10}, {"name": "c1", "kind": "continuous", "size": 1}]
    zc = latent.seeded_latents(0, 5000, 4, codes)
    cats = zc[:, 4:14].argmax(1)
    assert np.bincount(cats, minlength=10).min() > 400  # uniform categories: 500 expected each
    assert zc[:, 4:14].sum(1).tolist() == [1.0] * 5000
    assert zc[:, 14].min() >= -1 and zc[:, 14].max() <= 1 and zc[:, 14].mean() == pytest.approx(0, abs=0.03)


def test_latent_bad_arguments():
    with pytest.raises(ValueError, match="seed must be in 0..2147483647"):
        latent.seeded_latents(-1, 1, 4)
    with pytest.raises(ValueError, match="truncation"):
        latent.seeded_latents(0, 1, 4, truncation=1.5)
    codes = [{"name": "c0", "kind": "categorical", "size": 3}]
    z = latent.seeded_latents(0, 2, 4, codes)
    with pytest.raises(ValueError, match="no code 'c9'"):
        latent.set_codes(z, codes, 4, {"c9": 1})
    with pytest.raises(ValueError, match="integer in 0..2"):
        latent.set_codes(z, codes, 4, {"c0": 3})
    np.testing.assert_array_equal(latent.set_codes(z, codes, 4, {"c0": 2})[:, 4:], [[0, 0, 1], [0, 0, 1]])


def test_between_slides_on_the_sphere_from_a_to_b():
    a, b = latent.seeded_latents(1, 2, 16)
    np.testing.assert_allclose(latent.between(a, b, 0.0, 16), a, atol=1e-6, rtol=0)
    np.testing.assert_allclose(latent.between(a, b, 1.0, 16), b, atol=1e-6, rtol=0)
    mid = latent.between(a, b / np.linalg.norm(b) * np.linalg.norm(a), 0.5, 16)
    assert np.linalg.norm(mid) == pytest.approx(np.linalg.norm(a), rel=1e-5)  # slerp keeps equal norms


@pytest.fixture(scope="module")
def samplers(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    out = {}
    for family in NOISE_FAMILIES:
        build_run(tiny_config(family, SOURCES[family], steps=2), root / family).fit()
        out[family] = Sampler.from_checkpoint(root / family)
    return out


@pytest.mark.parametrize("family", NOISE_FAMILIES)
def test_onnx_export_matches_eager_on_any_batch(samplers, family, tmp_path):
    sampler = samplers[family]
    result = gonnx.export_onnx(sampler, tmp_path / "g.onnx")
    assert result.max_abs_diff <= 1e-4 and result.seconds > 0 and result.size_bytes == (tmp_path / "g.onnx").stat().st_size
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    in_w = family == "stylegan"  # its graph also takes psi (N,); every other family's takes z [and y] only
    assert sampler.truncation_space == ("w" if in_w else "none" if family == "progan" else "z")
    second = ["y"] if sampler.conditional else ["text_emb"] if sampler.takes_text else []
    assert names == ["z", *second] + (["truncation"] if in_w else [])
    z = sampler.latents(7, seed=4)
    feeds = {"z": z.numpy()}
    kw = {}
    if sampler.takes_text:  # the preview captions' embeddings: what generate draws when given no text
        feeds["text_emb"] = sampler.G.default_text(7).numpy()
    if sampler.conditional:
        feeds["y"] = np.array([0, 1, 2, 3, 9, 9, 5], dtype=np.int64)
        kw["y"] = feeds["y"].tolist()
    if family == "infogan":  # codes are part of z: fix one and compare with Sampler's own code path
        feeds["z"] = sampler.family.set_codes(z, {"c0": 4}).numpy()
        kw["codes"] = {"c0": 4}
    if in_w:  # the psi generate uses when none is asked
        feeds["truncation"] = np.full(7, sampler.default_truncation, np.float32)
    got = session.run(None, feeds)[0]
    torch.testing.assert_close(torch.from_numpy(got), sampler.generate(7, seed=4, **kw), atol=1e-4, rtol=0)
    info = gonnx.read_info(tmp_path / "g.onnx")
    assert info["family"] == family and info["latent"]["width"] == sampler.family.latent_dim
    assert info["shape"] == list(sampler.spec.shape) and info["inputs"] == names
    want_trunc = {"space": "w", "input": "truncation", "default": 1.0} if in_w else None
    if family == "progan":  # no truncation trick: runtimes read the space and the reason they refuse psi with
        want_trunc = {"space": "none", "reason": sampler.family.truncation_reason}
    assert info.get("truncation") == want_trunc


def test_stylegan_graph_takes_psi_and_truncates_in_w(samplers, tmp_path):
    """The exported stylegan applies w_avg + psi (w - w_avg) with psi a per-sample input: it matches eager
    G(z, truncation=psi), and psi = 0 gives the image of w_avg for every z."""
    sampler = Sampler.from_checkpoint(samplers["stylegan"].path)  # a copy: w_avg changes below
    G = sampler.G
    with torch.no_grad():  # an average apart from every w of the 2-step model, so psi moves each image
        G.mapping.w_avg.copy_(G.mapping(torch.randn(256, G.latent_dim)).mean(0))
    gonnx.export_onnx(sampler, tmp_path / "g.onnx")
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    z = sampler.latents(6, seed=3)
    psi = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 0.6], np.float32)
    got = torch.from_numpy(session.run(None, {"z": z.numpy(), "truncation": psi})[0])
    with torch.no_grad():
        for i, p in enumerate(psi.tolist()):  # eager, one float psi at a time
            torch.testing.assert_close(got[i:i + 1], G(z[i:i + 1], truncation=p), atol=1e-4, rtol=0)
        mean_image = G.synthesize(G.mapping.w_avg.expand(1, G.num_ws, -1))
    assert (got[4] - got[0]).abs().max() > 1e-2  # psi = 1 and psi = 0 differ
    zero = torch.from_numpy(session.run(None, {"z": z[:5].numpy(), "truncation": np.zeros(5, np.float32)})[0])
    torch.testing.assert_close(zero, mean_image.expand_as(zero), atol=1e-4, rtol=0)  # one image, whatever z
    info = gonnx.read_info(tmp_path / "g.onnx")
    assert info["inputs"] == ["z", "truncation"] and info["truncation"]["space"] == "w"


def test_sample_cli_truncation_scales_z_for_the_other_families(samplers, tmp_path):
    sampler = samplers["dcgan"]
    for psi in ("0.5", "1"):
        assert main(["sample", "--ckpt", str(sampler.path), "--n", "3", "--seed", "5", "--truncation", psi,
                     "--out", str(tmp_path / f"{psi}.npy")]) == 0
    with torch.no_grad():
        want = sampler.G(0.5 * torch.from_numpy(latent.seeded_latents(5, 3, sampler.noise_dim)))
    np.testing.assert_allclose(np.load(tmp_path / "0.5.npy"), want.numpy(), atol=1e-6, rtol=0)
    assert np.abs(np.load(tmp_path / "1.npy") - want.numpy()).max() > 1e-3


def test_progan_refuses_truncation_instead_of_ignoring_it(samplers, tmp_path, capsys):
    """progan's G normalises z, so psi z would give the very same images: the sampler and `ganforge sample`
    refuse psi != 1 naming the family and the fix, psi 1 works, and the card says there is no trick."""
    sampler = samplers["progan"]
    with torch.no_grad():  # the reason holds: scaling z changes nothing
        z = sampler.latents(2, seed=1)
        torch.testing.assert_close(sampler.G(0.5 * z), sampler.G(z), atol=1e-6, rtol=0)
    assert (sampler.truncation_space, sampler.default_truncation) == ("none", 1.0)
    for call in (lambda: sampler.generate(2, seed=1, truncation=0.5),
                 lambda: sampler.generate(2, z=z, truncation=0.5),
                 lambda: sampler.interpolate(1, 3, truncation=0.5)):
        with pytest.raises(ValueError, match=r"progan has no truncation trick: .*normalises.*use truncation 1 or "
                                             r"leave it out"):
            call()
    torch.testing.assert_close(sampler.generate(2, seed=1, truncation=1.0), sampler.generate(2, seed=1))
    out = tmp_path / "x.npy"
    assert main(["sample", "--ckpt", str(sampler.path), "--n", "2", "--truncation", "0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "progan model, which has no truncation trick" in err and "use --truncation 1 or leave it out" in err
    assert not out.exists()
    assert main(["sample", "--ckpt", str(sampler.path), "--n", "2", "--seed", "1", "--truncation", "1",
                 "--out", str(out)]) == 0
    np.testing.assert_allclose(np.load(out), sampler.generate(2, seed=1).numpy(), atol=1e-6, rtol=0)
    card = model_card(sampler)
    assert card["truncation"]["space"] == "none" and "; no truncation trick (" in card_markdown(card)


def test_a_mismatch_fails_the_export_and_removes_the_file(samplers, tmp_path, monkeypatch):
    monkeypatch.setattr(gonnx, "parity", lambda sampler, path, direction="AtoB": 0.5)
    with pytest.raises(gonnx.ExportError, match="differs from the eager generator by 0.5"):
        gonnx.export_onnx(samplers["dcgan"], tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


def test_model_card_carries_metrics_with_provenance(samplers):
    sampler = samplers["cgan"]
    eval_dir = sampler.path.parent.parent / "eval"
    eval_dir.mkdir(exist_ok=True)
    provenance = {"extractor": "digits", "n_real": 500, "n_fake": 500, "seed": 0, "reference": "builtin:digits"}
    (eval_dir / f"step_{sampler.step:08d}.json").write_text(json.dumps({"results": {"fid": {
        "name": "fid", "values": {"fid": 12.5}, "higher_is_better": False, "provenance": provenance}}}))
    card = model_card(sampler, {"onnx": "g.onnx"})
    assert card["family"] == "cgan" and card["training"]["steps"] == sampler.step == 2
    assert card["data"]["classes"] == list(sampler.spec.class_names)
    assert card["size"]["generator_parameters"] == sum(p.numel() for p in sampler.G.parameters())
    assert card["metrics"] == [{"name": "fid", "values": {"fid": 12.5}, "higher_is_better": False,
                                "provenance": provenance, "source": f"step_{sampler.step:08d}.json"}]


def test_export_cli_writes_model_and_card(samplers, tmp_path, capsys):
    run = samplers["dcgan"].path
    assert main(["export", "--ckpt", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "max abs diff vs eager" in out and "exported in" in out
    card = json.loads((tmp_path / "m.card.json").read_text())
    assert card["export"]["parity_max_abs_diff"] <= 1e-4 and card["family"] == "dcgan"
    assert "# Model card: dcgan generator" in (tmp_path / "m.card.md").read_text()
    assert main(["export", "--ckpt", str(run)]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert main(["export", "--ckpt", str(run), "--onnx", str(tmp_path / "m.pt")]) == 2
    assert "ending in .onnx" in capsys.readouterr().err


def test_export_cli_reports_a_failed_parity_check_in_one_line(samplers, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gonnx, "parity", lambda sampler, path, direction="AtoB": 0.5)
    assert main(["export", "--ckpt", str(samplers["gan"].path), "--onnx", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ganforge export: error: ONNX output differs") and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.card.json").exists()
