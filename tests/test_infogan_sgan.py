"""InfoGAN (latent codes, Q head, sweeps) and the semi-supervised GAN (labelled subset, K-logit trick,
feature matching, the exported classifier)."""

import json
import math

import pytest
import torch

from ganforge.artifacts import Classifier, Sampler
from ganforge.data import load_data
from ganforge.families import StepContext, build_family
from ganforge.train import build_run

from .conftest import tiny_config


def _infogan(tmp_path, steps=2, **model):
    return build_run(tiny_config("infogan", "builtin:digits", steps=steps, model=model), tmp_path / "run").fit()


def test_infogan_latent_layout_and_code_distribution(tmp_path):
    fam = _infogan(tmp_path, categorical=[10, 3], continuous=2).family
    assert [(c.name, c.kind, c.size) for c in fam.codes] == [
        ("c0", "categorical", 10), ("c1", "categorical", 3), ("c2", "continuous", 1), ("c3", "continuous", 1)]
    assert fam.latent_dim == 62 + 10 + 3 + 2 and fam.q_dim == 15
    z = fam.noise(4000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 77)
    for name, k in (("c0", 10), ("c1", 3)):  # one-hot blocks, categories drawn uniformly
        c = fam.code(name)
        block = z[:, c.offset:c.offset + k]
        assert torch.equal(block.sum(1), torch.ones(4000)) and set(block.unique().tolist()) == {0.0, 1.0}
        freq = torch.bincount(fam.code_values(z, name), minlength=k).float() / 4000
        assert freq.tolist() == pytest.approx([1 / k] * k, abs=0.03)
    cont = z[:, 75:77]
    assert cont.min() >= -1 and cont.max() <= 1 and cont.mean().item() == pytest.approx(0, abs=0.03)
    assert cont.var().item() == pytest.approx(1 / 3, abs=0.02)  # Var U(-1, 1) = 1/3
    assert z[:, :62].std().item() == pytest.approx(1, abs=0.02)
    # the same generator draws the same latents
    torch.testing.assert_close(fam.noise(5, generator=torch.Generator().manual_seed(3)),
                               fam.noise(5, generator=torch.Generator().manual_seed(3)))


def test_infogan_set_codes_round_trip_and_errors(tmp_path):
    fam = _infogan(tmp_path).family
    z = fam.noise(3, generator=torch.Generator().manual_seed(1))
    fixed = fam.set_codes(z, {"c0": [7, 0, 9], "c2": 0.25})
    assert fam.code_values(fixed, "c0").tolist() == [7, 0, 9]
    assert fam.code_values(fixed, "c2").tolist() == pytest.approx([0.25] * 3)
    torch.testing.assert_close(fixed[:, :fam.code("c0").offset], z[:, :fam.code("c0").offset])  # noise untouched
    torch.testing.assert_close(fam.code_values(fixed, "c1"), fam.code_values(z, "c1"))            # other codes too
    with pytest.raises(ValueError, match="no code 'c9'.*c0 \\(categorical, 0..9\\)"):
        fam.set_codes(z, {"c9": 1})
    with pytest.raises(ValueError, match="10 categories; 10 is not in 0..9"):
        fam.set_codes(z, {"c0": 10})
    with pytest.raises(ValueError, match="categorical: give an integer"):
        fam.set_codes(z, {"c0": 2.5})
    with pytest.raises(ValueError, match="at least one code"):
        build_family("infogan", {"categorical": [], "continuous": 0}, load_data("builtin:digits").spec)


def test_infogan_info_loss_closed_forms(tmp_path):
    fam = _infogan(tmp_path).family
    z = fam.noise(64, generator=torch.Generator().manual_seed(2))
    c0 = fam.code_values(z, "c0")
    # Q that knows nothing: uniform categories and mean-0 continuous guesses -> CE = log 10, 0.5 E[c^2] each
    q = torch.zeros(64, fam.q_dim)
    loss, logs = fam.info_loss(q, z)
    cont = z[:, -2:]
    assert logs["cat"].item() == pytest.approx(math.log(10), rel=1e-5)
    assert logs["cont"].item() == pytest.approx(0.5 * cont.pow(2).mean(0).sum().item(), rel=1e-5)
    assert loss.item() == pytest.approx(logs["cat"].item() + logs["cont"].item(), rel=1e-5)
    # Q that reads the codes exactly: ~0 loss, accuracy 1
    q = torch.cat([20 * torch.nn.functional.one_hot(c0, 10).float(), cont], 1)
    loss, logs = fam.info_loss(q, z)
    assert loss.item() == pytest.approx(0, abs=1e-6) and logs["cat_acc"].item() == 1.0


def test_infogan_trains_q_and_g_on_the_info_term(tmp_path):
    trainer = build_run(tiny_config("infogan", "builtin:digits", steps=2), tmp_path / "run")
    logs = trainer.train_step()
    for k in ("d/info_cat", "d/info_cont", "g/info_cat", "g/info_cont"):
        assert math.isfinite(logs[k])
    # the G phase's info term reaches G: its gradient is nonzero with the adversarial term removed
    fam = trainer.family
    fam.phases(1)
    latent = fam.noise(16)
    fam._q = []
    fam.critic(fam.G(latent), latent)
    q, lat = fam._q[0]
    info, _ = fam.info_loss(q, lat)
    grads = torch.autograd.grad(info, list(fam.G.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_infogan_sweep_varies_only_the_swept_code(tmp_path):
    _infogan(tmp_path)
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    x, cols = sampler.sweep("c1", rows=3, steps=5, seed=4, codes={"c0": 2})
    assert cols == 5 and x.shape == (15, 1, 8, 8)
    base = sampler.family.set_codes(sampler.latents(3, 4), {"c0": 2})
    for r in range(3):  # row r: latent r of the seed, c1 stepping over [-1, 1]
        z = sampler.family.set_codes(base[r:r + 1].repeat(5, 1), {"c1": torch.linspace(-1, 1, 5)})
        torch.testing.assert_close(x[5 * r:5 * r + 5], sampler.generate(5, z=z))
    x, cols = sampler.sweep("c0", rows=2, seed=4)
    assert cols == 10 and x.shape == (20, 1, 8, 8)
    with pytest.raises(ValueError, match="cannot also be fixed"):
        sampler.sweep("c0", rows=2, codes={"c0": 1})


def test_sample_cli_code_and_sweep(tmp_path, capsys):
    from ganforge.cli.main import main

    _infogan(tmp_path)
    run = str(tmp_path / "run")
    assert main(["sample", "--ckpt", run, "--code", "c0=3", "--sweep", "c1", "--n", "2", "--out", str(tmp_path / "c1.png")]) == 0
    assert (tmp_path / "c1.png").exists()
    assert main(["sample", "--ckpt", run, "--code", "c0=3", "--code", "c2=-0.5", "--n", "4", "--out", str(tmp_path / "a.npy")]) == 0
    import numpy as np

    sampler = Sampler.from_checkpoint(run)
    expect = sampler.generate(4, seed=0, codes={"c0": 3, "c2": -0.5})
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "a.npy")), expect)
    capsys.readouterr()
    assert main(["sample", "--ckpt", run, "--code", "c0=12", "--n", "2", "--out", str(tmp_path / "b.png")]) == 2
    assert "10 categories" in capsys.readouterr().err
    assert main(["sample", "--ckpt", run, "--code", "c0", "--n", "2", "--out", str(tmp_path / "b.png")]) == 2
    assert "NAME=NUMBER" in capsys.readouterr().err


# -- sgan -----------------------------------------------------------------------------------------------

def _sgan_cfg(steps=3, **model):
    return tiny_config("sgan", "builtin:digits", steps=steps, model=model)


def test_sgan_labelled_subset_is_per_class_and_reproducible(tmp_path):
    data = load_data("builtin:digits")
    fam = build_run(_sgan_cfg(labels_per_class=3), tmp_path / "a", data=data).family
    idx = fam.labelled_index
    assert len(idx) == 30 and len(set(idx.tolist())) == 30
    assert torch.bincount(data.y[idx].long(), minlength=10).tolist() == [3] * 10
    assert torch.equal(build_run(_sgan_cfg(labels_per_class=3), tmp_path / "b", data=data).family.labelled_index, idx)
    other = build_run(_sgan_cfg(labels_per_class=3, label_seed=1), tmp_path / "c", data=data).family.labelled_index
    assert not torch.equal(other, idx)
    assert len(build_run(_sgan_cfg(labels_per_class=0), tmp_path / "d", data=data).family.labelled_index) == len(data)
    with pytest.raises(ValueError, match="has only .* images; use at most"):
        build_run(_sgan_cfg(labels_per_class=100_000), tmp_path / "e", data=data)
    with pytest.raises(ValueError, match="needs labelled data"):
        build_family("sgan", {}, load_data("builtin:ring8").spec)


def test_sgan_k_logit_trick_is_the_k_plus_1_softmax(tmp_path):
    fam = build_run(_sgan_cfg(), tmp_path / "run").family.eval()
    x = load_data("builtin:digits").x[:8].float() / 127.5 - 1
    with torch.no_grad():
        logits = fam.classify(x)
        adv = fam.critic(x, None)
    # (K+1)-way softmax with the fake logit fixed at 0: p(real) = sum_k exp(l_k) / (sum_k exp(l_k) + 1)
    full = torch.softmax(torch.cat([logits, torch.zeros(8, 1)], 1), 1)
    torch.testing.assert_close(torch.sigmoid(adv), 1 - full[:, -1])
    torch.testing.assert_close(adv, torch.logsumexp(logits, 1))


def test_sgan_feature_matching_and_the_supervised_baseline(tmp_path):
    trainer = build_run(_sgan_cfg(), tmp_path / "ssl")
    logs = trainer.train_step()
    assert {"d/sup", "d/sup_acc", "g/feature_matching"} <= logs.keys()
    # feature matching: the squared distance of the batch means of D's last hidden layer
    fam = trainer.family.eval()
    batch = trainer.loader.next_batch()
    ctx = StepContext(0, fam.phases(0), {"fakes": (batch.x.clone(), None)})  # fakes identical to the real batch
    assert fam.loss("g", batch, ctx).loss.item() == pytest.approx(0, abs=1e-10)  # -> zero loss
    base = build_run(_sgan_cfg(supervised_only=True), tmp_path / "sup")
    g0 = {k: v.clone() for k, v in base.family.G.state_dict().items()}
    d0 = {k: v.clone() for k, v in base.family.D.state_dict().items()}
    base.fit()
    assert all(torch.equal(g0[k], v) for k, v in base.family.G.state_dict().items())  # G never trains
    assert any(not torch.equal(d0[k], v) for k, v in base.family.D.state_dict().items())


def test_evaluate_classifier_cli_and_the_exported_classifier(tmp_path, capsys):
    from ganforge.cli.main import main

    build_run(_sgan_cfg(steps=20), tmp_path / "run").fit()
    out = tmp_path / "acc.json"
    clf_file = tmp_path / "clf.safetensors"
    assert main(["evaluate", "--ckpt", str(tmp_path / "run"), "--classifier", "--out", str(out),
                 "--save-classifier", str(clf_file)]) == 0
    report = json.loads(out.read_text())["classifier"]
    clf = Classifier.from_checkpoint(tmp_path / "run")
    data = load_data("builtin:digits")  # digits has no separate test split: the same images
    x, y = data.to_float(data.x), data.y.long()
    pred = clf.logits(x).argmax(1)
    assert report["accuracy"] == pytest.approx((pred == y).float().mean().item())
    assert sum(map(sum, report["confusion"])) == len(y) == report["n"]
    assert report["per_class_accuracy"][3] == pytest.approx((pred[y == 3] == 3).float().mean().item())
    torch.testing.assert_close(Classifier.load(clf_file).logits(x[:50]), clf.logits(x[:50]))  # export round trip
    build_run(tiny_config("dcgan", "builtin:digits", steps=1), tmp_path / "dc").fit()
    capsys.readouterr()
    assert main(["evaluate", "--ckpt", str(tmp_path / "dc"), "--classifier"]) == 2
    assert "needs an sgan or" in capsys.readouterr().err


def test_labels_per_class_flag(tmp_path, capsys):
    from ganforge.cli.main import main

    assert main(["train", "--data", "builtin:digits", "--family", "sgan", "--labels-per-class", "4", "--steps", "2",
                 "--batch-size", "16", "--quiet", "--set", "model.d_hidden=[16]", "--set", "model.hidden=16",
                 "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["labels_per_class"] == 4
    capsys.readouterr()
    assert main(["train", "--data", "builtin:digits", "--family", "dcgan", "--labels-per-class", "4",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--family sgan" in capsys.readouterr().err


@pytest.mark.parametrize("q_trunk", [True, False])
def test_infogan_q_trunk_option_decides_whether_d_phase_info_shapes_the_trunk(q_trunk, tmp_path):
    trainer = build_run(tiny_config("infogan", "builtin:digits", steps=1, model={"q_trunk": q_trunk}), tmp_path / "r")
    fam = trainer.family
    fam._q, fam._phase = [], "d"
    latent = fam.noise(16)
    fam.critic(fam.G(latent).detach(), latent)
    info, _ = fam.info_loss(*fam._q[0])
    trunk = list(fam.D.base.trunk.parameters())
    head = list(fam.D.classifier.parameters())
    g_trunk = torch.autograd.grad(info, trunk, retain_graph=True, allow_unused=True)
    g_head = torch.autograd.grad(info, head, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in g_head)
    assert any(g is not None and g.abs().sum() > 0 for g in g_trunk) == q_trunk
