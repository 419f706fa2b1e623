"""Text to image (issue 21): captioned data, gan-int-cls's matching-aware loss, and the text path of the sampler
and the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.artifacts import Sampler
from ganforge.cli.main import main
from ganforge.data import load_data
from ganforge.data.captions import (ATTRIBUTE_WORDS, HELDOUT_TEMPLATES, TRAIN_TEMPLATES, Captions, caption_table,
                                    compose, measure_attributes)
from ganforge.data.spec import Batch, DataSpec
from ganforge.families import build_family
from ganforge.train import build_run

from .conftest import split_and_resume, tiny_config


class _ScoreD(nn.Module):
    """D(x, t) = mean(x) + 3 t[:, 0] - t[:, 1]: known logits for the hand computation."""

    def forward(self, x, t):
        return x.flatten(1).mean(1) + 3 * t[:, 0] - t[:, 1]


class _ZeroG(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # the family reads its device from G's parameters

    def forward(self, z, t=None):
        return torch.zeros(z.shape[0], 1, 8, 8)


@pytest.mark.parametrize("wrong_weight", [0.5, 0.2, 0.0])
def test_matching_aware_loss_equals_a_hand_computation(wrong_weight):
    spec = DataSpec("image", (1, 8, 8), name="tiny", text_dim=4, text_encoder="test")
    fam = build_family("gan-int-cls", {"width": 4, "latent_dim": 2, "proj_dim": 2, "d_hidden": 4,
                                       "wrong_weight": wrong_weight}, spec)
    fam.D, fam.G = _ScoreD(), _ZeroG()
    torch.manual_seed(0)
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    t = torch.randn(3, 4)
    out = fam.loss("d", Batch(x, extras={"text_emb": t}))

    def score(img, txt):
        return float(img.mean() + 3 * txt[0] - txt[1])

    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    wrong = t.roll(1, 0)  # image i's wrong caption: image i-1's
    real = [-math.log(sig(score(x[i], t[i]))) for i in range(3)]
    fake = [-math.log(1 - sig(score(torch.zeros(1, 8, 8), t[i]))) for i in range(3)]
    mismatched = [-math.log(1 - sig(score(x[i], wrong[i]))) for i in range(3)]
    want = np.mean(real) + (1 - wrong_weight) * np.mean(fake) + wrong_weight * np.mean(mismatched)
    assert float(out.loss) == pytest.approx(want, rel=1e-5)
    assert ("d/wrong" in out.logs) == (wrong_weight > 0)


def test_gan_int_cls_needs_captions():
    spec = DataSpec("image", (1, 8, 8), 10, name="digits")
    with pytest.raises(ValueError, match="needs captioned images.*fashion-captions"):
        build_family("gan-int-cls", {}, spec)
    with pytest.raises(ValueError, match="wrong_weight must be in"):
        build_family("gan-int-cls", {"wrong_weight": 1.5}, DataSpec("image", (1, 8, 8), text_dim=4))


def test_caption_choice_is_a_function_of_index_and_epoch():
    ids = torch.arange(40).view(10, 4)
    caps = Captions([str(i) for i in range(40)], ids, torch.zeros(40, 3), "test")
    index = torch.tensor([3, 1, 7, 7])
    first = caps.pick(index, 0)
    assert torch.equal(first, caps.pick(index, 0))
    assert all(int(c) in ids[i].tolist() for c, i in zip(first, index))
    # over epochs each image shows every one of its captions
    seen = {int(caps.pick(torch.tensor([5]), e)) for e in range(60)}
    assert seen == set(ids[5].tolist())


def test_digits_captions_batches_carry_their_texts_and_embeddings():
    data = load_data("builtin:digits-captions")
    assert data.spec.text_dim == 384 and data.spec.text_encoder.startswith("all-MiniLM-L6-v2@")
    idx = torch.tensor([0, 1, 2, 3])
    b = data.batch(idx, epoch=2)
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    for text, label in zip(b.text, data.y[idx].tolist()):
        assert words[label] in text or str(label) in text
    rows = [data.captions.texts.index(s) for s in b.text]
    torch.testing.assert_close(b.extras["text_emb"], data.captions.embeddings[rows])


def test_fashion_caption_wording():
    assert compose(TRAIN_TEMPLATES[0], "ankle boot", ["dark", "wide"]) == "a dark wide ankle boot"
    assert compose(TRAIN_TEMPLATES[0], "ankle boot", []) == "an ankle boot"
    assert compose(TRAIN_TEMPLATES[3], "coat", ["bright", "narrow", "plain"]) == "this coat is bright, narrow and plain"
    assert compose(TRAIN_TEMPLATES[3], "coat", []) == "this is a coat"
    # held-out phrasings share no template with training
    assert not {t for pair in TRAIN_TEMPLATES for t in pair} & {t for pair in HELDOUT_TEMPLATES for t in pair}
    labels = torch.tensor([0, 9, 5])
    levels = torch.tensor([[-1, 0, 0], [1, 1, 1], [0, 0, 0]])
    texts, ids = caption_table(labels, levels, TRAIN_TEMPLATES, 4, seed=0)
    assert ids.shape == (3, 4)
    for i, level in enumerate(levels.tolist()):
        for text in (texts[j] for j in ids[i]):
            for (attr, (low, high)), lv in zip(ATTRIBUTE_WORDS.items(), level):
                named = {w for w in low + high if w in text.split() or w in text.replace(",", "").split()}
                allowed = set() if lv == 0 else set(low if lv < 0 else high)
                assert named <= allowed, (text, attr)


def test_measured_attributes():
    x = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    x[0, 0, 4:24, 9:19] = 200                       # a uniform 10-wide bar
    x[1, 0, 4:24, 2:26] = 100                       # a darker 24-wide bar
    x[2, 0, 4:24, 2:26] = 100
    x[2, 0, 4:24:2, 2:26] += 120                    # striped: texture
    v = measure_attributes(x)
    assert v[0, 0].item() == pytest.approx(200 / 255)
    assert v[1, 0].item() == pytest.approx(100 / 255)
    assert v[0, 1].item() == pytest.approx(10 / 28) and v[1, 1].item() == pytest.approx(24 / 28)
    assert v[2, 2] > 3 * v[1, 2]


def _make(steps, out, resume):
    cfg = tiny_config("gan-int-cls", "builtin:digits-captions", steps=steps)
    return build_run(cfg, out, resume=resume)


def test_gan_int_cls_resumes_bit_exact(tmp_path):
    split_and_resume(_make, tmp_path, 3)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("t2i") / "run"
    _make(4, out, False).fit()
    return out


def test_sample_text_matches_the_python_sampler(text_run, tmp_path):
    s = Sampler.from_checkpoint(text_run)
    assert s.family.spec.text_dim == 384 and s.takes_text
    assert main(["sample", "--ckpt", str(text_run), "--text", "the digit seven", "--n", "5", "--seed", "3",
                 "--out", str(tmp_path / "a.npy")]) == 0
    want = s.generate(5, seed=3, text="the digit seven")
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "a.npy")), want)
    other = s.generate(5, seed=3, text="a handwritten zero")
    assert not torch.equal(want, other)  # the caption matters


def test_text_file_rows_and_text_interpolation_ends(text_run, tmp_path):
    s = Sampler.from_checkpoint(text_run)
    (tmp_path / "p.txt").write_text("the digit seven\n\n  a handwritten zero \n")
    assert main(["sample", "--ckpt", str(text_run), "--text-file", str(tmp_path / "p.txt"), "--n", "3",
                 "--out", str(tmp_path / "f.npy")]) == 0
    rows = torch.from_numpy(np.load(tmp_path / "f.npy"))
    torch.testing.assert_close(rows[:3], s.generate(3, seed=0, text="the digit seven"), atol=1e-6, rtol=0)
    torch.testing.assert_close(rows[3:], s.generate(3, seed=0, text="a handwritten zero"), atol=1e-6, rtol=0)
    assert main(["sample", "--ckpt", str(text_run), "--interpolate-text", "the digit seven", "a handwritten zero",
                 "--steps", "4", "--n", "2", "--out", str(tmp_path / "i.npy")]) == 0
    strip = torch.from_numpy(np.load(tmp_path / "i.npy")).view(2, 4, 1, 8, 8)
    torch.testing.assert_close(strip[:, 0], s.generate(2, seed=0, text="the digit seven"), atol=1e-5, rtol=0)
    torch.testing.assert_close(strip[:, -1], s.generate(2, seed=0, text="a handwritten zero"), atol=1e-5, rtol=0)


def test_labelled_grid_keeps_the_unlabelled_pixels_right_of_a_label_column(text_run, tmp_path, capsys):
    from PIL import Image

    (tmp_path / "p.txt").write_text("the digit seven\na handwritten zero\n")
    base = ["sample", "--ckpt", str(text_run), "--text-file", str(tmp_path / "p.txt"), "--n", "3"]
    assert main(base + ["--out", str(tmp_path / "plain.png")]) == 0
    assert main(base + ["--labels", "--out", str(tmp_path / "labelled.png")]) == 0
    plain = np.asarray(Image.open(tmp_path / "plain.png").convert("RGB"))
    labelled = np.asarray(Image.open(tmp_path / "labelled.png").convert("RGB"))
    left = labelled.shape[1] - plain.shape[1]
    assert left > 40 and labelled.shape[0] == plain.shape[0]
    np.testing.assert_array_equal(labelled[:, left:], plain)
    column = labelled[:, :left]
    assert (column < 128).any() and (column == 255).mean() > 0.5  # dark text on white
    assert main(["sample", "--ckpt", str(text_run), "--text", "a seven", "--labels",
                 "--out", str(tmp_path / "x.png")]) != 0
    assert "--labels writes the captions of --text-file" in capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["--text", ""], "empty"),
    (["--text", "x" * 10240], "at most"),
    (["--text", "a\x07b"], "U\\+0007"),
    (["--text", "a", "--class", "3"], "cannot be combined with --class"),
])
def test_bad_text_flags_name_the_fix(text_run, tmp_path, capsys, args, words):
    assert main(["sample", "--ckpt", str(text_run), "--out", str(tmp_path / "x.png"), *args]) != 0
    assert __import__("re").search(words, capsys.readouterr().err)


def test_text_file_that_is_not_utf8_is_refused(text_run, tmp_path, capsys):
    (tmp_path / "bad.txt").write_bytes(b"the digit one\n\xff\xfe broken\n")
    assert main(["sample", "--ckpt", str(text_run), "--text-file", str(tmp_path / "bad.txt"),
                 "--out", str(tmp_path / "x.png")]) != 0
    assert "not UTF-8 text (line 2)" in capsys.readouterr().err


def test_text_needs_a_text_family(tmp_path, capsys):
    build_run(tiny_config("dcgan", "builtin:digits", steps=1), tmp_path / "d").fit()
    assert main(["sample", "--ckpt", str(tmp_path / "d"), "--text", "a seven", "--out", str(tmp_path / "x.png")]) != 0
    assert "needs a text-to-image family" in capsys.readouterr().err


def _folder(root, n=6):
    from PIL import Image

    root.mkdir()
    for i in range(n):
        Image.fromarray(np.full((8, 8), 30 * i, dtype=np.uint8)).save(root / f"{i}.png")
    return root


def test_caption_folder_with_text_files(tmp_path):
    root = _folder(tmp_path / "f")
    for i in range(6):
        (root / f"{i}.txt").write_text(f"shade {i}\n\n  grey number {i} \n" if i % 2 else f"shade {i}\n")
    data = load_data(str(root), channels=1)
    assert data.spec.text_dim == 384 and data.captions.ids.shape == (6, 2)
    for i in range(6):  # an image with one caption repeats it; the text is tidied
        assert {data.captions.texts[j] for j in data.captions.ids[i].tolist()} == (
            {f"shade {i}", f"grey number {i}"} if i % 2 else {f"shade {i}"})


def test_caption_folder_with_a_csv(tmp_path):
    root = _folder(tmp_path / "f", 3)
    (root / "captions.csv").write_text('file,caption\n0.png,black\n1.png,"dark, grey"\n2.png,grey\n2.png,mid grey\n')
    data = load_data(str(root), channels=1)
    texts = [[data.captions.texts[j] for j in row] for row in data.captions.ids.tolist()]
    assert texts == [["black", "black"], ["dark, grey", "dark, grey"], ["grey", "mid grey"]]
    (root / "captions.csv").write_text("name,text\n0.png,black\n")
    with pytest.raises(ValueError, match="header line with the columns file and caption"):
        load_data(str(root), channels=1)
    (root / "captions.csv").write_text("file,caption\nmissing.png,black\n")
    with pytest.raises(ValueError, match="line 2: 'missing.png' is not an image"):
        load_data(str(root), channels=1)


def test_partly_captioned_folder_warns_and_trains_no_text_family(tmp_path):
    from ganforge.data.captions import UncaptionedImagesWarning

    root = _folder(tmp_path / "f")
    (root / "0.txt").write_text("a black square\n")
    with pytest.warns(UncaptionedImagesWarning, match="5 of 6 images .* have no caption"):
        data = load_data(str(root), channels=1)
    assert data.captions is None and data.spec.text_dim == 0
    (root / "1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match="1.txt is not UTF-8"):
        load_data(str(root), channels=1)


def test_inspect_counts_captions(tmp_path):
    from ganforge.data.inspect import format_inspection, inspect_folder

    root = _folder(tmp_path / "f", 4)
    for i in range(3):
        (root / f"{i}.txt").write_text("a square\nsome grey\n")
    report = format_inspection(inspect_folder(root))
    assert "captions     3 of 4 readable images, 6 captions" in report
    assert "1 readable images have no caption" in report


def test_evaluate_draws_a_text_model_from_the_references_captions(text_run, tmp_path, monkeypatch):
    calls = []
    original = Sampler.generate

    def spy(self, n, seed=0, **kw):
        calls.append((n, kw.get("text")))
        return original(self, n, seed, **kw)

    monkeypatch.setattr(Sampler, "generate", spy)
    out = tmp_path / "e.json"
    assert main(["evaluate", "--ckpt", str(text_run), "--metrics", "fid", "--n", "40", "--features", "fashion",
                 "--out", str(out)]) == 0
    assert out.exists()
    data = load_data("builtin:digits-captions")
    want = data.captions.embeddings[data.captions.ids[:40, 0]]
    got = torch.cat([t for _, t in calls])
    torch.testing.assert_close(got, want)
    assert main(["evaluate", "--ckpt", str(text_run), "--data", "builtin:digits", "--metrics", "fid", "--n", "40",
                 "--features", "fashion", "--out", str(tmp_path / "x.json")]) == 2


def test_onnx_export_carries_the_text_path(text_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from ganforge.artifacts.onnx import export_onnx, read_info, text_encoder_paths
    from ganforge.serve.text_onnx import OnnxTextEncoder
    from ganforge.text import text_encoder

    s = Sampler.from_checkpoint(text_run)
    result = export_onnx(s, tmp_path / "g.onnx")
    assert result.max_abs_diff <= 1e-4
    enc_path, tok_path = text_encoder_paths(tmp_path / "g.onnx")
    assert result.text_encoder == enc_path and enc_path.exists() and tok_path.exists()
    info = read_info(tmp_path / "g.onnx")
    assert info["inputs"] == ["z", "text_emb"] and info["text"]["dim"] == 384
    assert info["text"]["encoder"] == s.spec.text_encoder
    assert len(info["text"]["preview_captions"]) == 10 and "zero" in info["text"]["preview_captions"][0]
    # captions -> embeddings without torch, as the server and Lambda run them
    captions = ["the digit seven", "a handwritten zero", "number 3"]
    onnx_emb = OnnxTextEncoder(enc_path, tok_path, info["text"]["max_tokens"]).encode(captions)
    torch.testing.assert_close(torch.from_numpy(onnx_emb), text_encoder().encode(captions), atol=1e-5, rtol=0)
    # the same (text, seed) gives the same pixels as the Python sampler
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    z = s.latents(3, seed=5).numpy()
    got = session.run(None, {"z": z, "text_emb": onnx_emb})[0]
    want = s.generate(3, seed=5, text=captions)
    torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="empty"):
        OnnxTextEncoder(enc_path, tok_path).encode(["  "])


def test_text_runtime_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, ganforge.serve.text_onnx, ganforge.text\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print(ganforge.text.check_text(' a  red car '))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "a red car"


def test_serve_takes_text_and_refuses_bad_text(text_run):
    import io

    from fastapi.testclient import TestClient

    from ganforge.serve.http import create_app

    s = Sampler.from_checkpoint(text_run)
    with TestClient(create_app(s)) as client:
        info = client.get("/v1/info").json()
        assert info["inputs"] == ["z", "text_emb"] and len(info["text"]["preview_captions"]) == 10
        r = client.post("/v1/generate", json={"text": "the digit seven", "n": 3, "seed": 4, "format": "npy"})
        assert r.status_code == 200
        np.testing.assert_allclose(np.load(io.BytesIO(r.content)), s.generate(3, seed=4, text="the digit seven").numpy(),
                                   atol=1e-6, rtol=0)
        default = client.post("/v1/generate", json={"n": 2, "seed": 4, "format": "npy"})
        np.testing.assert_allclose(np.load(io.BytesIO(default.content)), s.generate(2, seed=4).numpy(), atol=1e-6, rtol=0)
        for bad, words in (("", "empty"), ("x" * 10240, "at most"), ("a\x00b", "U+0000"), (7, "must be a string")):
            r = client.post("/v1/generate", json={"text": bad})
            assert r.status_code == 422 and words in r.json()["detail"], (bad, r.text)
        r = client.post("/v1/generate", content=b'{"text": "caf\xe9"}', headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500


def test_serve_refuses_text_for_a_model_without_it(tmp_path):
    from fastapi.testclient import TestClient

    from ganforge.serve.http import create_app

    build_run(tiny_config("dcgan", "builtin:digits", steps=1), tmp_path / "d").fit()
    with TestClient(create_app(Sampler.from_checkpoint(tmp_path / "d"))) as client:
        r = client.post("/v1/generate", json={"text": "a seven"})
        assert r.status_code == 422 and "needs a text-to-image model" in r.json()["detail"]


def test_lambda_package_takes_text_without_torch(text_run, tmp_path):
    import base64
    import io
    import json
    import os
    import subprocess
    import sys

    from ganforge.serve.lambda_package import build_lambda

    from .test_lambda import api_event, load_app

    s = Sampler.from_checkpoint(text_run)
    pkg = tmp_path / "lambda"
    report = build_lambda(s, pkg, vendor=False)
    for name in ("model.text.onnx", "model.tokenizer.json", "ganforge_text_onnx.py", "ganforge_text_checks.py"):
        assert (pkg / "function" / name).exists(), name
    assert any(r.startswith("tokenizers") for r in report["requirements"])
    app = load_app(pkg / "function", "lambda_app_text")

    def npy(body: dict) -> np.ndarray:
        r = app.handler(api_event("POST", "/v1/generate", json_body={**body, "format": "npy"}), None)
        assert r["statusCode"] == 200, r["body"]
        return np.load(io.BytesIO(base64.b64decode(r["body"])))

    np.testing.assert_allclose(npy({"text": "the digit seven", "n": 3, "seed": 4}),
                               s.generate(3, seed=4, text="the digit seven").numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(npy({"n": 2, "seed": 4}), s.generate(2, seed=4).numpy(), atol=1e-4, rtol=0)
    for bad, words in (("", "empty"), ("a\x07b", "U+0007"), ("x" * 5000, "at most")):
        r = app.handler(api_event("POST", "/v1/generate", json_body={"text": bad}), None)
        assert r["statusCode"] == 422 and words in json.loads(r["body"])["detail"], r["body"]
    # the function's process imports neither torch nor ganforge
    probe = ("import json, sys\nimport app\n"
             "r = app.handler(json.loads(sys.argv[1]), None)\n"
             "print(json.dumps({'status': r['statusCode'], 'bad': sorted(m for m in sys.modules "
             "if m.split('.')[0] in ('torch', 'ganforge'))}))")
    event = api_event("POST", "/v1/generate", json_body={"text": "a handwritten zero", "n": 1})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(event)], cwd=pkg / "function", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"status": 200, "bad": []}


# ---- StackGAN -----------------------------------------------------------------------------------------------

def test_conditioning_augmentation_kl_matches_its_closed_form():
    from torch.distributions import Normal, kl_divergence

    from ganforge.nn.stackgan import ConditioningAugmentation, kl_to_standard_normal

    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    want = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), want)
    assert float(kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0
    ca = ConditioningAugmentation(6, 4)
    t = torch.randn(2000, 6)
    c, mu, logvar = ca.train()(t)
    # the re-parametrised code has the mean and spread it claims
    torch.manual_seed(1)
    draws = torch.stack([ca(t[:1])[0][0] for _ in range(4000)])
    torch.testing.assert_close(draws.mean(0), mu[0], atol=0.08, rtol=0)
    torch.testing.assert_close(draws.std(0), (0.5 * logvar[0]).exp(), atol=0.08, rtol=0.05)
    ca.eval()
    torch.testing.assert_close(ca(t)[0], ca(t)[1])  # sampling: c = mu


def _stack(steps, out, resume, **model):
    cfg = tiny_config("stackgan", "builtin:digits-captions", steps=steps, model={"stage1_steps": 3, **model})
    return build_run(cfg, out, resume=resume)


def test_stackgan_moves_to_stage_two_with_stage_one_frozen(tmp_path):
    trainer = _stack(3, tmp_path / "r", False).fit()
    fam = trainer.family
    assert fam.stage == 1
    before = {k: v.clone() for k, v in fam.state_dict().items()}
    trainer.cfg.train.steps = 6
    trainer.fit()
    assert fam.stage == 2 and int(trainer.generator.stage) == 2  # the EMA copy carries the stage
    after = fam.state_dict()
    moved = {k for k in before if before[k].dtype.is_floating_point and not torch.equal(before[k], after[k])}
    assert any(k.startswith("G.stage2.") for k in moved) and any(k.startswith("D.stage2.") for k in moved)
    assert not any(k.startswith(("G.stage1.", "G.ca1.", "D.stage1.")) for k in moved)  # Stage-I frozen
    z, t = fam.noise(4), fam.G.default_text(4)
    fam.G.eval()
    up, high = fam.stage_outputs(z, t)
    assert up.shape == high.shape == (4, *fam.spec.shape)
    torch.testing.assert_close(fam.G(z, t), high)


def test_stackgan_resumes_bit_exact_across_the_stage_change(tmp_path):
    split_and_resume(_stack, tmp_path, 2)  # steps 0-2 Stage-I, 3 Stage-II: the resumed half crosses over


def test_checkpoints_without_caption_text_still_load():
    from ganforge.nn import TextConditionalGenerator

    g = TextConditionalGenerator(nn.Linear(12, 4), text_dim=6, proj_dim=4, preview=3)
    g.set_preview(["a", "b", "c"], torch.randn(3, 6))
    state = {k: v for k, v in g.state_dict().items() if k != "preview_text"}  # as written before the text was kept
    fresh = TextConditionalGenerator(nn.Linear(12, 4), text_dim=6, proj_dim=4, preview=3)
    fresh.load_state_dict(state)  # strict
    torch.testing.assert_close(fresh.preview, g.preview)
    assert fresh.preview_captions == ["", "", ""] and g.preview_captions == ["a", "b", "c"]


@pytest.mark.skipif(not __import__("ganforge.data.translation", fromlist=["EMOJI_FONT"]).EMOJI_FONT.exists(),
                    reason="fonts-noto-color-emoji not installed")
def test_emoji_captions_name_each_glyph_and_hold_out_phrasings():
    from ganforge.data.emoji_captions import EMOJI_HELDOUT_TEMPLATES, EMOJI_TRAIN_TEMPLATES, emoji_name

    assert emoji_name(0x1F34E) == "red apple" and emoji_name(0x1F600) == "grinning face"
    train = load_data("builtin:emoji-captions")
    test = load_builtin_split("emoji-captions", "test")
    assert train.spec.shape == (3, 64, 64) and train.spec.text_dim == 384
    assert train.captions.ids.shape == (len(train), len(EMOJI_TRAIN_TEMPLATES))
    assert test.captions.ids.shape == (len(test), len(EMOJI_HELDOUT_TEMPLATES)) and len(test) > 50
    assert "an emoji of a red apple" in train.captions.texts or "a picture of a red apple" in test.captions.texts
    # the splits share no caption: other glyphs, and other phrasings
    assert not set(train.captions.texts) & set(test.captions.texts)


def load_builtin_split(name, split):
    from ganforge.data import load_builtin

    return load_builtin(name, split=split)
