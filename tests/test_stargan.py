"""StarGAN (Choi et al. 2018): the networks, the loss terms, training, translation, checkpoints and resume."""

import pytest
import torch
import torch.nn.functional as F

from ganforge.artifacts.sampler import Sampler
from ganforge.config import from_dict
from ganforge.data.builtin import digits
from ganforge.data.spec import Batch, DataSpec
from ganforge.data.store import TensorData
from ganforge.families import build_family
from ganforge.families.stargan import StarGAN
from ganforge.nn.stargan import StarDiscriminator, StarGenerator
from ganforge.train import build_run

from .conftest import split_and_resume, tiny_config

SMALL = {"width": 4, "n_res": 1, "d_width": 8}


@pytest.fixture(scope="module")
def three_digits() -> TensorData:
    """Digits 0, 1, 2 as three domains: 8x8, ~540 images."""
    d = digits()
    keep = d.y < 3
    spec = DataSpec("image", (1, 8, 8), 3, ("zero", "one", "two"), "digits012")
    return TensorData(spec, d.x[keep], d.y[keep], source="test:digits012")


def _batch(data: TensorData, n: int = 12) -> Batch:
    return data.batch(torch.arange(n))


def _run(data, out, steps, model=None, resume=False):
    cfg = tiny_config("stargan", steps=steps).to_dict()
    cfg["model"] = {**SMALL, **(model or {})}  # tiny_config's defaults are the noise families' options
    return build_run(from_dict(cfg), out, data=data, resume=resume)


def test_networks_shapes_and_heads():
    G = StarGenerator(channels=3, n_domains=4, width=8, n_res=2)
    x = torch.rand(5, 3, 28, 28) * 2 - 1
    out = G(x, torch.tensor([0, 1, 2, 3, 0]))
    assert out.shape == x.shape and out.abs().max() <= 1
    # (N,) indices and (N, K) one-hot codes are the same condition
    torch.testing.assert_close(G(x, torch.tensor([2] * 5)), G(x, F.one_hot(torch.tensor([2] * 5), 4).float()))
    D = StarDiscriminator(channels=3, size=(28, 28), n_domains=4, width=8)
    src, cls = D(x)
    assert src.shape == (5, 1, 7, 7) and cls.shape == (5, 4)  # 28 -> 14 -> 7: patch logits; K domain logits
    assert D.cls.kernel_size == (7, 7)  # D_cls covers the whole remaining map
    assert all(not isinstance(m, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d)) for m in D.modules())
    with pytest.raises(ValueError, match="divisible by 4"):
        G(torch.zeros(1, 3, 30, 30), torch.tensor([0]))


def test_target_domain_conditions_the_generator(three_digits):
    torch.manual_seed(0)
    fam = StarGAN(StarGAN.make_config(SMALL), three_digits.spec)
    x = _batch(three_digits).x
    outs = [fam.translate(x, domain=k) for k in range(3)]
    torch.testing.assert_close(outs[0], fam.translate(x, domain=0))  # deterministic per target
    for a in range(3):
        for b in range(a + 1, 3):
            assert (outs[a] - outs[b]).abs().mean() > 1e-4, (a, b)


def test_random_targets_are_uniform_over_other_domains(three_digits):
    fam = StarGAN(StarGAN.make_config(SMALL), three_digits.spec)
    torch.manual_seed(1)
    source = torch.tensor([0, 1, 2]).repeat(3000)
    target = fam.random_targets(source)
    assert not (target == source).any()
    for s in range(3):
        counts = torch.bincount(target[source == s], minlength=3).float() / 3000
        others = [k for k in range(3) if k != s]
        assert counts[others].tolist() == pytest.approx([0.5, 0.5], abs=0.03)


def test_loss_terms_match_a_hand_computation(three_digits):
    torch.manual_seed(0)
    fam = StarGAN(StarGAN.make_config({**SMALL, "lambda_cls": 0.7, "lambda_rec": 3.0}), three_digits.spec)
    batch = _batch(three_digits)
    x, y = batch.x, batch.y
    fam.phases(1)  # a D-only step: the G phase below draws its own fakes
    torch.manual_seed(5)
    d_out = fam.loss("d", batch)
    torch.manual_seed(6)
    g_out = fam.loss("g", batch)
    with torch.no_grad():
        src_real, cls_real = fam.D(x)
        hand_d_cls = -cls_real.log_softmax(1)[torch.arange(len(y)), y].mean()
        torch.manual_seed(5)
        fake = fam.G(x, fam.random_targets(y))
        w_distance = src_real.mean() - fam.D(fake)[0].mean()
        expect_d = -w_distance + 0.7 * hand_d_cls + 10.0 * d_out.logs["d/gp"]

        torch.manual_seed(6)
        target = fam.random_targets(y)
        fake = fam.G(x, target)
        src_fake, cls_fake = fam.D(fake)
        hand_g_cls = -cls_fake.log_softmax(1)[torch.arange(len(y)), target].mean()
        hand_rec = (fam.G(fake, y) - x).abs().mean()
        expect_g = -src_fake.mean() + 0.7 * hand_g_cls + 3.0 * hand_rec
    assert float(d_out.logs["d/cls"]) == pytest.approx(float(hand_d_cls), rel=1e-5)
    assert float(d_out.logs["d/w_distance"]) == pytest.approx(float(w_distance), rel=1e-5)
    assert float(d_out.loss.detach()) == pytest.approx(float(expect_d), rel=1e-5)
    assert float(g_out.logs["g/cls"]) == pytest.approx(float(hand_g_cls), rel=1e-5)
    assert float(g_out.logs["g/rec"]) == pytest.approx(float(hand_rec), rel=1e-5)
    assert float(g_out.loss.detach()) == pytest.approx(float(expect_g), rel=1e-5)


def test_one_step_moves_g_and_d_and_logs(three_digits, tmp_path):
    trainer = _run(three_digits, tmp_path, steps=1, model={"n_critic": 1})
    before = {k: v.clone() for k, v in trainer.family.state_dict().items()}
    logs = trainer.train_step()  # with n_critic 1 every step has both phases
    after = trainer.family.state_dict()
    for net in ("G.", "D."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(net)), net
    for key in ("d/loss", "g/loss", "d/cls", "g/cls", "g/rec", "d/gp", "d/real", "d/fake", "d/acc_real"):
        assert key in logs
    paper = StarGAN(StarGAN.make_config(SMALL), three_digits.spec)  # n_critic 5: G after every 5th D update
    assert [paper.phases(s) for s in range(6)] == [("d",)] * 4 + [("d", "g"), ("d",)]


def test_translate_to_every_domain_and_its_errors(three_digits):
    torch.manual_seed(0)
    fam = StarGAN(StarGAN.make_config(SMALL), three_digits.spec).eval()
    x = _batch(three_digits, 6).x
    for k, name in enumerate(three_digits.spec.class_names):
        out = fam.translate(x, "AtoB", domain=k)
        assert out.shape == x.shape
        torch.testing.assert_close(out, fam.G(x, torch.full((6,), k)))
        torch.testing.assert_close(fam.translate(x, domain=name), out)
    mixed = torch.tensor([0, 1, 2, 2, 1, 0])
    torch.testing.assert_close(fam.translate(x, domain=mixed), fam.G(x, mixed))
    with pytest.raises(ValueError, match="needs a target domain"):
        fam.translate(x)
    with pytest.raises(ValueError, match="0..2"):
        fam.translate(x, domain=3)
    with pytest.raises(ValueError, match="one per image"):
        fam.translate(x, domain=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="unknown domain"):
        fam.translate(x, domain="three")
    with pytest.raises(ValueError, match="direction 'BtoA'"):
        fam.translate(x, "BtoA", domain=0)


def test_sampler_round_trip(three_digits, tmp_path):
    trainer = _run(three_digits, tmp_path, steps=2, model={"n_critic": 1}).fit()
    sampler = Sampler.from_checkpoint(tmp_path)
    assert sampler.is_translation
    x = _batch(three_digits, 5).x
    domains = torch.tensor([2, 0, 1, 1, 0])
    expect = trainer.family.translate(x, domain=domains, net=trainer.generator.eval())
    # to float rounding: channels_last (trainer) and contiguous (sampler) weights round differently on some CPUs
    torch.testing.assert_close(sampler.translate(x, domain=domains), expect, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sampler.translate(x, domain=1), trainer.family.translate(x, domain=1,
                                                                                         net=trainer.generator))
    with pytest.raises(ValueError, match="translates images"):
        sampler.generate(4)
    assert (tmp_path / "samples" / "final.png").exists()


def test_resume_is_bit_exact(three_digits, tmp_path):
    n = 3  # 6 steps with n_critic 2: G trains at steps 1, 3, 5, on both sides of the split
    split_and_resume(lambda steps, out, resume: _run(three_digits, out, steps, {"n_critic": 2}, resume=resume),
                     tmp_path, n)


def test_spec_errors_name_the_fix(three_digits):
    unlabelled = DataSpec("image", (1, 8, 8), 0, (), "plain")
    with pytest.raises(ValueError, match="labelled with >= 2 domains"):
        build_family("stargan", SMALL, unlabelled)
    one = DataSpec("image", (1, 8, 8), 1, ("only",), "one")
    with pytest.raises(ValueError, match=">= 2 domains"):
        build_family("stargan", SMALL, one)
    two_domain = DataSpec("image", (1, 8, 8), 10, tuple("0123456789"), "pairs", shape_b=(1, 8, 8),
                          pairing="paired", domains=("a", "b"))
    with pytest.raises(ValueError, match="labelled with >= 2 domains"):
        build_family("stargan", SMALL, two_domain)
    with pytest.raises(ValueError, match="divisible by 4"):
        build_family("stargan", SMALL, DataSpec("image", (1, 10, 10), 3, ("a", "b", "c"), "odd"))
    with pytest.raises(ValueError, match="unknown stargan option"):
        build_family("stargan", {"widht": 8}, three_digits.spec)
    with pytest.raises(ValueError, match="unknown loss"):
        build_family("stargan", {"loss": "nope"}, three_digits.spec)
