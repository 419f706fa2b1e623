"""cyclegan and discogan: generator shapes, the history pool, the loss terms, training, sampling, resume."""

import functools
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from ganforge.artifacts import Sampler
from ganforge.config import from_dict
from ganforge.data.builtin import digits
from ganforge.data.spec import Batch, DataSpec
from ganforge.data.store import TensorData
from ganforge.families import build_family
from ganforge.families.cyclegan import HistoryPool
from ganforge.nn.disco import EncoderDecoderGenerator
from ganforge.nn.resnet_gen import ResnetGenerator, resnet_blocks_for
from ganforge.train import build_run

from .conftest import split_and_resume


TINY = {"cyclegan": {"width": 4, "d_width": 4, "n_blocks": 1, "pool_size": 4},
        "discogan": {"width": 4, "d_width": 4}}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These nets are tiny: a second thread only adds synchronisation (costly on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.cache
def two_digits(size=8, channels_b=1, pairing="unpaired") -> TensorData:
    """A = the 0 digits, B = the 1 digits (B in colour when channels_b == 3), from sklearn's 8x8 digits."""
    d = digits(size=None if size == 8 else (size, size))
    a, b = d.x[d.y == 0], d.x[d.y == 1]
    if pairing == "paired":
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
    b = b.repeat(1, channels_b, 1, 1)
    spec = DataSpec("image", tuple(a.shape[1:]), 0, (), "zeros2ones", shape_b=tuple(b.shape[1:]),
                    pairing=pairing, domains=("zero", "one"))
    return TensorData(spec, a, None, x_b=b)


def run_config(family: str, steps: int, **model):
    return from_dict({
        "family": family, "model": {**TINY[family], **model},
        "train": {"steps": steps, "batch_size": 8},
        "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 1, "progress": False, "tensorboard": False},
    })


def batch_of(data: TensorData, n: int = 6) -> Batch:
    return Batch(data.to_float(data.x[:n]), None, x_b=data.to_float(data.x_b[:n]))


# -- generators -------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [28, 64, 30])
@pytest.mark.parametrize("c_in,c_out", [(1, 3), (3, 1)])
def test_generators_keep_the_size_and_map_channels(size, c_in, c_out):
    x = torch.rand(2, c_in, size, size) * 2 - 1
    for G in (ResnetGenerator(c_in, c_out, width=4, n_blocks=resnet_blocks_for(size)),
              EncoderDecoderGenerator(c_in, c_out, (size, size), width=4)):
        y = G(x)
        assert y.shape == (2, c_out, size, size)
        assert y.abs().max() <= 1.0  # tanh


def test_resnet_layout_follows_the_paper():
    assert [resnet_blocks_for(s) for s in (256, 128, 64, 28)] == [9, 6, 4, 3]
    G = ResnetGenerator(3, 3, width=64, n_blocks=9)
    assert len(G.blocks) == 9 and G.stem[1].kernel_size == (7, 7) and G.head[1].out_channels == 3
    assert [d[0].out_channels for d in G.down] == [128, 256]  # d128, d256
    E = EncoderDecoderGenerator(3, 3, (64, 64), width=64)
    assert [d[0].out_channels for d in E.down] == [64, 128, 256, 512]  # the paper's encoder at 64x64


# -- the history pool -------------------------------------------------------------------------------
def marked(values) -> torch.Tensor:
    """Images (N, 1, 2, 2) whose pixels all equal their value, so each image is recognisable."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def test_pool_of_size_zero_and_a_filling_pool_pass_fakes_through():
    fakes = marked([1, 2, 3])
    torch.testing.assert_close(HistoryPool(0, (1, 2, 2), seed=0).query(fakes), fakes)
    pool = HistoryPool(5, (1, 2, 2), seed=0)
    torch.testing.assert_close(pool.query(fakes), fakes)
    assert int(pool.count) == 3
    torch.testing.assert_close(pool.images[:3], fakes)


def test_full_pool_mixes_old_and_new_with_the_drawn_counts():
    pool = HistoryPool(6, (1, 2, 2), seed=3)
    pool.query(marked(range(6)))                    # full: old images 0..5
    g = torch.Generator()
    g.set_state(pool.rng_state.clone())
    swap = torch.rand(40, generator=g) < 0.5         # the pool's own draws for the next query
    slot = torch.randint(6, (40,), generator=g)
    new = marked(range(100, 140))
    out = pool.query(new)[:, 0, 0, 0]
    expect_old = int(swap.sum())
    assert 0 < expect_old < 40
    assert int((out != new[:, 0, 0, 0]).sum()) == expect_old  # swapped for a stored image ...
    torch.testing.assert_close(out[~swap], new[~swap][:, 0, 0, 0])  # ... the others pass through
    stored, returned = list(range(6)), []           # the same rule, one image at a time
    for i in range(40):
        if swap[i]:
            returned.append(stored[slot[i]])
            stored[slot[i]] = 100 + i
        else:
            returned.append(100 + i)
    assert out.tolist() == returned
    assert pool.images[:, 0, 0, 0].tolist() == stored
    assert int((out < 100).sum()) == len(set(range(6)) - set(stored))  # each old image leaves the pool once


def test_pool_is_deterministic_and_survives_a_checkpoint(tmp_path):
    def fill(seed):
        pool = HistoryPool(4, (1, 2, 2), seed=seed)
        pool.query(marked(range(4)))
        return pool

    a, b, c = fill(7), fill(7), fill(8)
    first = marked(range(10, 30))
    torch.testing.assert_close(a.query(first), b.query(first))
    c.query(first)
    assert not torch.equal(a.images, c.images)      # another seed, other swaps
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, str(tmp_path / "pool.safetensors"))
    restored = HistoryPool(4, (1, 2, 2), seed=99)
    restored.load_state_dict(load_file(str(tmp_path / "pool.safetensors")))
    later = marked(range(50, 70))
    torch.testing.assert_close(restored.query(later), a.query(later))
    torch.testing.assert_close(restored.images, a.images)


# -- the loss terms ---------------------------------------------------------------------------------
def test_cyclegan_loss_terms_by_hand():
    data = two_digits()
    torch.manual_seed(0)
    fam = build_family("cyclegan", TINY["cyclegan"], data.spec)
    batch = batch_of(data)
    a, b = batch.x, batch.x_b
    out = fam.loss("g", batch)
    with torch.no_grad():
        G, D = fam.G, fam.D
        cycle = (G.ba(G.ab(a)) - a).abs().mean() + (G.ab(G.ba(b)) - b).abs().mean()
        identity = (G.ba(a) - a).abs().mean() + (G.ab(b) - b).abs().mean()
        # the paper's LSGAN G term (D(G(x)) - 1)^2, both directions
        adv = (D["B"](G.ab(a)) - 1).pow(2).mean() + (D["A"](G.ba(b)) - 1).pow(2).mean()
    torch.testing.assert_close(out.logs["g/cycle"], cycle)
    torch.testing.assert_close(out.logs["g/identity"], identity)
    torch.testing.assert_close(out.loss.detach(), adv + 10.0 * cycle + 5.0 * identity)


def test_identity_is_off_when_channel_counts_differ():
    data = two_digits(channels_b=3)
    fam = build_family("cyclegan", TINY["cyclegan"], data.spec)
    assert not fam.uses_identity
    out = fam.loss("g", batch_of(data))
    assert "g/identity" not in out.logs
    torch.testing.assert_close(out.loss.detach(), 2.0 * out.logs["g/adv"] + 10.0 * out.logs["g/cycle"])
    assert fam.G.ab(batch_of(data).x).shape[1] == 3 and fam.G.ba(batch_of(data).x_b).shape[1] == 1


def test_discogan_reconstruction_is_mse_and_loss_is_unweighted_sum():
    data = two_digits()
    fam = build_family("discogan", TINY["discogan"], data.spec)
    batch = batch_of(data)
    out = fam.loss("g", batch)
    a, b = batch.x, batch.x_b
    with torch.no_grad():  # BatchNorm in training mode: the same batches give the same statistics
        G = fam.G
        recon = (G.ba(G.ab(a)) - a).pow(2).mean() + (G.ab(G.ba(b)) - b).pow(2).mean()
    torch.testing.assert_close(out.logs["g/cycle"], recon)
    torch.testing.assert_close(out.loss.detach(), out.logs["g/adv"] + recon)
    assert "g/identity" not in out.logs and fam.cfg.loss == "ns"


# -- training, sampling, resume ---------------------------------------------------------------------
@pytest.mark.parametrize("family", ["cyclegan", "discogan"])
def test_one_step_moves_both_generators_and_both_discriminators(family, tmp_path):
    trainer = build_run(run_config(family, 1), tmp_path / "run", data=two_digits(channels_b=3))
    before = {k: v.clone() for k, v in trainer.family.state_dict().items()}
    logs = trainer.train_step()
    after = trainer.family.state_dict()
    for prefix in ("G.ab.", "G.ba.", "D.A.", "D.B."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    for key in ("d/loss", "g/loss", "g/cycle", "d/real", "d/fake", "d/acc_real", "d/acc_fake"):
        assert math.isfinite(logs[key]), key


def test_translate_both_directions_and_sampler_matches_the_ema_net(tmp_path):
    data = two_digits(channels_b=3)  # grey A <-> colour B: BtoA takes 3-channel inputs
    trainer = build_run(run_config("cyclegan", 2), tmp_path / "run", data=data).fit()
    fam = trainer.family
    a, b = batch_of(data).x, batch_of(data).x_b
    torch.testing.assert_close(fam.translate(a, "AtoB"), fam.G.ab(a))
    torch.testing.assert_close(fam.translate(b, "BtoA"), fam.G.ba(b))
    assert fam.translate(a, "AtoB").shape == b.shape and fam.translate(b, "BtoA").shape == a.shape
    with pytest.raises(ValueError, match="AtoB and BtoA"):
        fam.translate(a, "sideways")
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    assert sampler.is_translation and sampler.family.D is None
    ema = trainer.generator.eval()
    with torch.no_grad():
        torch.testing.assert_close(sampler.translate(b, "BtoA"), ema.ba(b))
        torch.testing.assert_close(sampler.translate(a, "AtoB"), ema.ab(a))


@pytest.mark.parametrize("family", ["cyclegan", "discogan"])
def test_resume_is_bit_exact(family, tmp_path):
    data = two_digits()
    full, _ = split_and_resume(
        lambda steps, out, resume: build_run(run_config(family, steps), out, data=data, resume=resume), tmp_path, 2)
    if family == "cyclegan":  # the pool filled (4 images) and swapped during the run
        assert int(full.family.pool_A.count) == 4


# -- data checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["cyclegan", "discogan"])
def test_check_spec_errors(family):
    one_domain = digits().spec
    with pytest.raises(ValueError, match="two domains A and B"):
        build_family(family, {}, one_domain)
    sizes = DataSpec("image", (1, 7, 7), shape_b=(1, 28, 28), pairing="paired", name="lowres")
    with pytest.raises(ValueError, match="one image size"):
        build_family(family, {}, sizes)
    with pytest.raises(ValueError, match="not 'wgan-gp'"):
        build_family(family, {"loss": "wgan-gp"}, two_digits().spec)


def test_paired_data_is_accepted():
    data = two_digits(pairing="paired")
    fam = build_family("cyclegan", TINY["cyclegan"], data.spec)
    assert math.isfinite(float(fam.loss("g", batch_of(data)).loss.detach()))


def test_discogans_ema_copy_reestimates_the_direction_sampling_runs_and_keeps_the_other(tmp_path):
    """Sampling runs A-to-B only, so the EMA copy's B-to-A net keeps G's BatchNorm statistics (not 0 and 1), and
    the A-to-B net's are re-estimated with the averaged weights (train/ema.py). 16x16: at 8x8 the nets have no BatchNorm."""
    trainer = build_run(run_config("discogan", 3), tmp_path / "run", data=two_digits(size=16, channels_b=3))
    trainer.fit()
    G, ema = trainer.family.G, trainer.generator
    ab = [n for n, _ in ema.ab.named_buffers() if n.endswith("running_mean")]
    ba = [n for n, _ in ema.ba.named_buffers() if n.endswith("running_mean")]
    assert ab and ba
    own, theirs = dict(ema.named_buffers()), dict(G.named_buffers())
    for n in ba:
        torch.testing.assert_close(own["ba." + n], theirs["ba." + n], rtol=0, atol=0)
        assert own["ba." + n].abs().sum() > 0
    assert all(not torch.equal(own["ab." + n], theirs["ab." + n]) for n in ab)
