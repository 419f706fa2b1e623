"""The EMA generator's BatchNorm statistics are its own: re-estimated from the averaged weights (train/ema.py)."""

import math

import pytest
import torch
from torch import nn

from ganforge.checkpoint import read_checkpoint
from ganforge.train import build_run
from ganforge.train.ema import BN_REFRESH_SAMPLES, BN_REFRESH_SEED, EMA, batchnorms

from .conftest import tiny_config


class TinyFamily:
    """What refresh_batchnorm asks of a family: sample_inputs and standing_forward (ganforge's Family: sample)."""

    kind = "latent"

    def __init__(self, dim: int = 4) -> None:
        self.dim = dim

    def sample_inputs(self, n, generator=None):
        return torch.randn(n, self.dim, generator=generator)

    def sample(self, n, *, z=None, generator=None, net=None, **cond):
        return net(z)

    def standing_forward(self, net, inputs, start=0):
        self.sample(len(inputs), z=inputs, net=net)


def tiny_g(spectral: bool = False, dropout: float = 0.0) -> nn.Module:
    first = nn.Linear(4, 3)
    if spectral:  # its power-iteration vectors are buffers that a train-mode forward moves
        first = nn.utils.parametrizations.spectral_norm(first)
    # dropout draws from the global RNG in train mode: the refresh must leave that stream where it was
    return nn.Sequential(first, nn.BatchNorm1d(3), nn.ReLU(), nn.Dropout(dropout), nn.Linear(3, 2))


class EncoderDecoder(nn.Module):
    """Like ganforge's autoencoders: G holds an encoder that sampling (forward) never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4))
        self.decoder = tiny_g()

    def forward(self, z):
        return self.decoder(z)


def batch_inputs(n_batch: int) -> torch.Tensor:
    n = n_batch * math.ceil(BN_REFRESH_SAMPLES / n_batch)
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(BN_REFRESH_SEED))


def test_refresh_sets_the_statistics_of_the_averaged_weights():
    torch.manual_seed(0)
    g = tiny_g()
    ema = EMA(g, 0.999)
    with torch.no_grad():  # G moves and collects statistics of its own weights
        for p in g.parameters():
            p.add_(torch.randn_like(p))
        g.train()(torch.randn(64, 4) * 3 + 1)
    ema.update(g)
    bn = ema.module[1]
    assert torch.equal(bn.running_mean, g[1].running_mean)  # copied: G's statistics, not the copy's
    assert ema.refresh_batchnorm(TinyFamily(), batch_size=32)
    # the closed form: batches of equal size, so the running mean is the mean of the first layer's outputs
    # and the running variance the mean of the per-batch unbiased variances
    with torch.no_grad():
        h = ema.module[0](batch_inputs(32)).view(-1, 32, 3)
    torch.testing.assert_close(bn.running_mean, h.mean((0, 1)))
    torch.testing.assert_close(bn.running_var, h.var(1, unbiased=True).mean(0))
    assert bn.momentum == 0.1 and not ema.module.training  # put back as they were


def test_refresh_leaves_the_rng_other_buffers_and_source_alone():
    torch.manual_seed(1)
    g = tiny_g(spectral=True, dropout=0.5)
    g.train()(torch.randn(16, 4))
    ema = EMA(g, 0.99)
    ema.update(g)
    bn_ids = {id(b) for m in batchnorms(ema.module) for b in m.buffers()}
    before = {n: b.clone() for n, b in ema.module.named_buffers() if id(b) not in bn_ids}
    assert before, "the spectral-norm vectors are buffers outside BatchNorm"
    g_state = {k: v.clone() for k, v in g.state_dict().items()}
    rng = torch.get_rng_state()
    assert ema.refresh_batchnorm(TinyFamily(), batch_size=8)
    assert torch.equal(torch.get_rng_state(), rng)
    for n, b in ema.module.named_buffers():
        if n in before:
            assert torch.equal(b, before[n]), n
    for k, v in g.state_dict().items():
        assert torch.equal(v, g_state[k]), k


def test_refresh_runs_once_per_update_and_only_with_batchnorm():
    g = tiny_g()
    ema = EMA(g, 0.999)
    fam = TinyFamily()
    assert ema.refresh_batchnorm(fam, 16)
    first = ema.module[1].running_var.clone()
    assert not ema.refresh_batchnorm(fam, 16)  # nothing averaged in since
    ema.update(g)
    assert ema.refresh_batchnorm(fam, 16)
    torch.testing.assert_close(ema.module[1].running_var, first)  # same weights, same latents: same statistics
    no_bn = EMA(nn.Sequential(nn.Linear(4, 2)), 0.999)
    assert not no_bn.refresh_batchnorm(fam, 16)

    class Classifier(TinyFamily):
        kind = "classifier"

    assert not EMA(tiny_g(), 0.9).refresh_batchnorm(Classifier(), 16)


def test_a_rollback_makes_the_statistics_stale_again():
    torch.manual_seed(2)
    g = tiny_g()
    ema = EMA(g, 0.999)
    ema.update(g)
    fresh = {k: v.clone() for k, v in ema.module.state_dict().items()}
    assert ema.refresh_batchnorm(TinyFamily(), 16)
    with torch.no_grad():
        g[0].weight.add_(1.0)
    ema.update(g)
    ema.load(fresh, updates=1)  # back to update 1 with G's copied statistics, as a rollback restores them
    assert torch.equal(ema.module[1].running_mean, fresh["1.running_mean"])
    assert ema.refresh_batchnorm(TinyFamily(), 16)  # the loaded statistics are not taken as re-estimated
    assert not torch.equal(ema.module[1].running_mean, fresh["1.running_mean"])


def test_layers_the_forward_does_not_reach_keep_their_statistics():
    torch.manual_seed(3)
    g = EncoderDecoder()
    with torch.no_grad():
        g.train()
        g.encoder(torch.randn(32, 2) * 2 + 3)
        g.decoder(torch.randn(32, 4) * 2 + 3)
    ema = EMA(g, 0.999)
    ema.update(g)
    enc = {n: b.clone() for n, b in ema.module.encoder.named_buffers()}
    dec_mean = ema.module.decoder[1].running_mean.clone()
    assert ema.refresh_batchnorm(TinyFamily(), 16)
    for n, b in ema.module.encoder.named_buffers():
        assert torch.equal(b, enc[n]), n  # not reset to 0 / 1
    assert not torch.equal(ema.module.decoder[1].running_mean, dec_mean)

    class NoForward(TinyFamily):
        def standing_forward(self, net, inputs, start=0):
            pass

    ema.update(g)
    before = {n: b.clone() for n, b in ema.module.named_buffers()}
    assert not ema.refresh_batchnorm(NoForward(), 16)
    for n, b in ema.module.named_buffers():
        assert torch.equal(b, before[n]), n


@pytest.mark.parametrize("family", ["dcgan", "fastgan"])
def test_checkpointed_ema_generator_holds_its_own_statistics(family, tmp_path):
    """The first BatchNorm of the EMA generator in a checkpoint has, as running mean, the mean of its input over
    the refresh latents under the EMA weights (its input does not depend on any BatchNorm before it)."""
    run = build_run(tiny_config(family, "builtin:digits", steps=4, train={"steps": 4, "batch_size": 16}),
                    tmp_path / "run")
    run.fit()
    ck = read_checkpoint(tmp_path / "run")
    G = run.ema.module
    G.load_state_dict(ck["ema"])
    bn = batchnorms(G)[0]
    seen = []
    hook = bn.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    n = 16 * math.ceil(BN_REFRESH_SAMPLES / 16)
    z = run.family.sample_inputs(n, generator=torch.Generator().manual_seed(BN_REFRESH_SEED))
    G.eval()
    with torch.no_grad():
        run.family.sample(n, z=z, net=G)
    hook.remove()
    x = seen[0].transpose(0, 1).reshape(bn.num_features, -1)
    name = next(k for k, b in G.named_buffers() if b is bn.running_mean)
    torch.testing.assert_close(ck["ema"][name], x.mean(1), rtol=1e-4, atol=1e-5)
    g_mean = ck["model"]["G." + name]
    assert not torch.allclose(g_mean, x.mean(1))  # G's own statistics are not the EMA copy's



def test_cgan_refresh_covers_every_class_when_the_batch_is_smaller_than_the_class_count(tmp_path):
    """cgan's 10 classes over refresh batches of 4 reach its first BatchNorm (whose input depends on the latent and
    the label only) as they do in batches of 10, which hold every class: the same 20 inputs and labels, so the
    same mean. Labels restarting at 0 in each batch of 4 (classes 0-3 only) would give another mean."""
    from ganforge.train.ema import standing_statistics

    run = build_run(tiny_config("cgan", "builtin:digits", steps=1), tmp_path / "run")
    assert run.family.n_classes == 10
    means = []
    for batch in (4, 10):
        G = run.family.G
        standing_statistics(G, run.family, batch_size=batch, samples=20)
        means.append(batchnorms(G)[0].running_mean.clone())
    torch.testing.assert_close(means[0], means[1], rtol=1e-4, atol=1e-6)


def test_text_refresh_runs_g_on_training_captions(tmp_path):
    """gan-int-cls's refresh feeds G training captions spread over the images (more than the 10 preview ones),
    running on across the refresh's batches: batches of 4 give the first BatchNorm the mean that one batch of
    the same 20 latents and the bank's first 20 captions gives."""
    from ganforge.families.ganintcls import PREVIEW_CAPTIONS, REFRESH_CAPTIONS
    from ganforge.train.ema import standing_statistics

    assert REFRESH_CAPTIONS == BN_REFRESH_SAMPLES  # a refresh reaches every caption of the bank
    run = build_run(tiny_config("gan-int-cls", "builtin:digits-captions", steps=1), tmp_path / "run")
    fam, G = run.family, run.family.G
    bank = fam.refresh_text
    assert bank is not None and len(torch.unique(bank, dim=0)) > PREVIEW_CAPTIONS
    # the bank spans the training set: its first and last captions are those of the first and last images
    caps = run.data.captions
    n, k = caps.ids.shape
    assert len(bank) == min(n, REFRESH_CAPTIONS)
    torch.testing.assert_close(bank[0], caps.embeddings[caps.ids[0, 0]].float())
    torch.testing.assert_close(bank[-1], caps.embeddings[caps.ids[n - 1, (n - 1) % k]].float())
    standing_statistics(G, fam, batch_size=4, samples=20)
    got = batchnorms(G)[0].running_mean.clone()

    seen = []
    hook = batchnorms(G)[0].register_forward_hook(lambda m, args, out: seen.append(args[0]))
    z = fam.sample_inputs(20, generator=torch.Generator().manual_seed(BN_REFRESH_SEED))
    with torch.no_grad():
        G.train()
        G(z, bank[:20])
    hook.remove()
    x = seen[0]
    expected = x.mean(dim=[d for d in range(x.dim()) if d != 1])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_forked_rng_forks_the_device_the_module_is_on(monkeypatch):
    """The refresh's RNG fork covers the module's own device type (an MPS generator as well as CUDA), and on the
    CPU puts the global RNG back."""
    from ganforge.train import ema

    state = torch.get_rng_state()
    with ema.forked_rng(torch.device("cpu")):
        torch.rand(5)
    assert torch.equal(torch.get_rng_state(), state)

    calls = []
    monkeypatch.setattr(torch.random, "fork_rng", lambda **kw: calls.append(kw))
    for kind in ("mps", "cuda"):
        device = torch.device(kind)
        ema.forked_rng(device)
        assert calls[-1] == {"devices": [device], "device_type": kind}


@pytest.mark.parametrize("warmup", [10.0, 4.0])
def test_ema_warmup_sets_the_decay_of_the_first_updates(warmup):
    """decay_k = min(decay, (1 + k) / (warmup + k)): the copy is the closed-form average of the updates it saw."""
    src = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        src.weight.zero_()
    ema = EMA(src, 0.999, warmup)
    expected = 0.0
    for k, value in enumerate([1.0, 3.0, -2.0, 5.0]):
        with torch.no_grad():
            src.weight.fill_(value)
        ema.update(src)
        d = min(0.999, (1 + k) / (warmup + k))
        expected = d * expected + (1 - d) * value
        assert ema.module.weight.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)  # fp32 weights


def test_ema_warmup_must_be_at_least_two_and_finite():
    for bad in (1.5, math.inf, math.nan):
        with pytest.raises(ValueError, match="ema_warmup"):
            EMA(nn.Linear(1, 1), 0.999, bad)
