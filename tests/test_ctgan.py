"""ctgan (Xu et al. 2019): training-by-sampling, the conditional loss, PacGAN checks, training, sampling, resume."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from ganforge.data.spec import Batch, DataSpec
from ganforge.data.table import Table, TableData
from ganforge.families import FAMILIES, build_family
from ganforge.latent import seeded_latents
from ganforge.train import build_run
from ganforge.train.callbacks import Checkpointer

from .conftest import TABLE_FAMILIES, split_and_resume, tiny_config

TINY = {"latent_dim": 8, "generator_dims": [16, 16], "discriminator_dims": [16], "pac": 4}
COLOURS = {"red": 280, "green": 80, "blue": 40}  # exact counts, so the expected draws are known in closed form
SIZES = {"S": 360, "M": 40}
_DATA: dict[str, TableData] = {}


def mixed() -> TableData:
    """400 rows: two bimodal continuous columns (vgm), an integer column and two categorical ones."""
    if "mixed" not in _DATA:
        rng = np.random.default_rng(0)
        n = 400
        colour = np.repeat(list(COLOURS), list(COLOURS.values()))
        size = np.repeat(list(SIZES), list(SIZES.values()))
        df = pd.DataFrame({
            "a": np.where(rng.random(n) < 0.5, rng.normal(-3.0, 0.3, n), rng.normal(4.0, 0.5, n)),
            "b": np.where(rng.random(n) < 0.3, rng.normal(10.0, 1.0, n), rng.normal(20.0, 1.0, n)),
            "count": rng.poisson(6.0, n).astype(np.int64),
            "colour": rng.permutation(colour),
            "size": rng.permutation(size),
        })
        _DATA["mixed"] = TableData.from_table(Table.from_pandas(df), continuous="vgm")
    return _DATA["mixed"]


def run_config(steps: int, **train):
    cfg = tiny_config("ctgan", source="unused", steps=steps, train={"batch_size": 40, **train})
    cfg.model = dict(TINY)  # tiny_config's default model options are the MLP families'
    return cfg


def family(data: TableData | None = None, **options):
    data = data or mixed()
    fam = build_family("ctgan", {**TINY, **options}, data.spec)
    fam.bind_data(data)
    return fam


def test_registered_as_a_table_family():
    assert "ctgan" in TABLE_FAMILIES and FAMILIES["ctgan"].needs == "table"
    assert FAMILIES["ctgan"].table_continuous == "vgm"


# -- training-by-sampling ----------------------------------------------------------------------------
@pytest.mark.parametrize("log_frequency", [True, False])
def test_training_by_sampling_draws_log_frequencies_and_matching_rows(log_frequency):
    data = mixed()
    fam = family(data, log_frequency=log_frequency)
    blocks = data.layout.category_blocks()
    # the categories in block order (sorted names) with their counts
    counts = [[COLOURS[c] for c in data.table.info["colour"].categories],
              [SIZES[s] for s in data.table.info["size"].categories]]
    weight = [[math.log(c + 1) if log_frequency else c for c in col] for col in counts]
    expected = np.array([w / sum(col) / len(counts) for col in weight for w in col])  # column uniform, then category
    n = 200_000
    g = torch.Generator().manual_seed(0)
    u = torch.rand(n, 3, generator=g)
    column, category, index = fam.training_condition(u[:, 0], u[:, 1])
    assert torch.equal(index, fam.G.cond_start[column] + category)
    observed = torch.bincount(index, minlength=len(expected)).double().numpy()
    chi2 = float(((observed - n * expected) ** 2 / (n * expected)).sum())
    assert chi2 < 25.0  # 4 degrees of freedom: P(chi2 > 25) ~ 5e-5 under the stated probabilities
    other = [[c if log_frequency else math.log(c + 1) for c in col] for col in counts]  # the other weighting
    wrong = np.array([w / sum(col) / len(counts) for col in other for w in col])
    assert float(((observed - n * wrong) ** 2 / (n * wrong)).sum()) > 1000.0  # the bound tells them apart
    # the real rows drawn for each condition have that category in that column
    rows = fam.rows_with(index[:20_000], u[:20_000, 2])
    for j, b in enumerate(blocks):
        mine = column[:20_000] == j
        assert torch.equal(rows[mine, b.start:b.stop].argmax(1), category[:20_000][mine])
        assert torch.all(rows[mine, b.start:b.stop].sum(1) == 1)
    # uniformly among those rows: every one of the 40 "M" rows is drawn
    m = data.table.info["size"].categories.index("M")
    sel = (column == 1) & (category == m)
    ids = {tuple(r) for r in fam.rows_with(index[sel], u[sel, 2]).tolist()}
    size_m = data.x[data.x[:, blocks[1].start + m] == 1]
    assert ids == {tuple(r) for r in size_m.tolist()}
    # sampling picks categories by their empirical frequencies: G's buffer is their cumulative distribution
    for j, col in enumerate(counts):
        torch.testing.assert_close(fam.G.cond_cdf[j, : len(col)],
                                   torch.tensor(np.cumsum(col) / sum(col), dtype=torch.float32))


def test_sampling_condition_follows_the_empirical_frequencies():
    fam = family()
    u = torch.rand(100_000, 2, generator=torch.Generator().manual_seed(1))
    cond = fam.G.condition(u[:, 0], u[:, 1])
    assert torch.all(cond.sum(1) == 1)
    got = cond.mean(0)
    data = mixed()
    want = torch.tensor([COLOURS[c] / 400 / 2 for c in data.table.info["colour"].categories]
                        + [SIZES[s] / 400 / 2 for s in data.table.info["size"].categories])
    torch.testing.assert_close(got, want, atol=0.005, rtol=0)


# -- the conditional loss ----------------------------------------------------------------------------
def test_cond_loss_closed_forms():
    data = mixed()
    fam = family(data)
    blocks = data.layout.category_blocks()
    n = 64
    g = torch.Generator().manual_seed(2)
    column = torch.randint(len(blocks), (n,), generator=g)
    category = torch.stack([torch.randint(blocks[int(j)].width, (), generator=g) for j in column])
    # equal logits: log(number of categories of the chosen column)
    zeros = torch.zeros(n, data.layout.dim)
    want = torch.tensor([math.log(blocks[int(j)].width) for j in column]).mean()
    torch.testing.assert_close(fam.cond_loss(zeros, column, category), want)
    # G outputs the asked category with a large margin: the loss is ~0 (exactly log(1 + (K - 1) e^-30))
    right = torch.zeros(n, data.layout.dim)
    for i in range(n):
        right[i, blocks[int(column[i])].start + int(category[i])] = 30.0
    want = torch.tensor([math.log1p((blocks[int(j)].width - 1) * math.exp(-30.0)) for j in column]).mean()
    assert float(fam.cond_loss(right, column, category)) == pytest.approx(float(want), abs=1e-6)
    # random logits: the cross-entropy of each row's chosen block
    raw = torch.randn(n, data.layout.dim, generator=g)
    per_row = [torch.nn.functional.cross_entropy(raw[i:i + 1, blocks[int(j)].start:blocks[int(j)].stop],
                                                 category[i:i + 1]) for i, j in enumerate(column)]
    torch.testing.assert_close(fam.cond_loss(raw, column, category), torch.stack(per_row).mean())


# -- options and checks ------------------------------------------------------------------------------
def test_pac_must_divide_the_batch():
    fam = family()
    fam.check_batch_size(40)
    with pytest.raises(ValueError, match=r"model.pac=4 .* use train.batch_size=44"):
        fam.check_batch_size(42)
    # a loader batch cut to a small table's row count is packed as far as it divides (42 -> 40 rows) ...
    assert torch.isfinite(fam.loss("d", Batch(mixed().x[:42])).loss)
    # ... and fewer rows than one pack is an error naming the fix
    with pytest.raises(ValueError, match="multiple of 4"):
        fam.loss("d", Batch(mixed().x[:3]))


@pytest.mark.parametrize("options,match", [
    ({"pac": 0}, "model.pac must be an integer >= 1"),
    ({"latent_dim": 0}, "model.latent_dim"),
    ({"generator_dims": [16, 0]}, "model.generator_dims"),
    ({"discriminator_dims": "256"}, "model.discriminator_dims"),
    ({"dropout": 1.0}, r"model.dropout must be in \[0, 1\)"),
    ({"loss": "wasserstein"}, "model.loss must be one of"),
    ({"gp_weight": -1}, "model.gp_weight"),
    ({"n_critic": 0}, "model.n_critic"),
    ({"gumbel_tau": 0}, "model.gumbel_tau"),
    ({"log_frequency": "yes"}, "model.log_frequency must be true or false"),
    ({"cond_weight": -0.5}, "model.cond_weight"),
    ({"embedding_dim": 128}, "unknown ctgan option"),
])
def test_bad_options_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        build_family("ctgan", {**TINY, **options}, mixed().spec)


def test_non_table_data_is_refused():
    with pytest.raises(ValueError, match="ctgan trains on tables"):
        build_family("ctgan", TINY, DataSpec("points", (2,), name="ring8"))


def test_without_categorical_columns_the_cond_vector_is_empty():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200) * 3 + 1})
    data = TableData.from_table(Table.from_pandas(df), continuous="standard")
    fam = family(data)
    assert fam.cond_dim == 0 and fam.latent_dim == TINY["latent_dim"]
    batch = Batch(data.x[:40])
    for phase in ("d", "g"):
        out = fam.loss(phase, batch)
        assert torch.isfinite(out.loss) and "g/cond_ce" not in out.logs
        out.loss.backward()
    assert fam.sample(5).shape == (5, 2)


# -- training, sampling, resume ----------------------------------------------------------------------
def test_trains_and_samples_decode_to_the_tables_types(tmp_path):
    data = mixed()
    trainer = build_run(run_config(4), tmp_path / "run", data=data, callbacks=[])
    trainer.fit()
    logs = trainer.last_logs
    assert all(math.isfinite(logs[k]) for k in ("d/loss", "d/gp", "g/adv", "g/cond_ce"))
    fam, G = trainer.family, trainer.generator
    # the latent: noise, 2 condition entries, one per softmax output (modes and categories)
    softmax = sum(b.width for b in data.layout.softmax_blocks())
    assert fam.latent_dim == TINY["latent_dim"] + 2 + softmax
    z = torch.from_numpy(seeded_latents(7, 300, fam.latent_dim))
    rows = fam.sample(300, z=z, net=G)
    assert rows.shape == (300, data.layout.dim)
    for b in data.layout.softmax_blocks():  # hard one-hots
        assert torch.all(rows[:, b.start:b.stop].sum(1) == 1)
    assert torch.all(rows.abs() <= 1)
    # deterministic in the latent, and a row does not depend on its batch (G in eval mode)
    assert torch.equal(rows, fam.sample(300, z=z, net=G))
    # (to float rounding: a matrix product of 5 rows may take another kernel than one of 300, so on some CPUs the
    # last bits differ; the one-hot picks must not)
    few = fam.sample(5, z=z[:5], net=G)
    torch.testing.assert_close(few, rows[:5])
    for b in data.layout.softmax_blocks():
        assert torch.equal(few[:, b.start:b.stop], rows[:5, b.start:b.stop])
    assert not torch.equal(rows, fam.sample(300, z=torch.from_numpy(seeded_latents(8, 300, fam.latent_dim)), net=G))
    decoded = data.decode(rows).to_pandas()
    original = data.table.to_pandas()
    assert list(decoded.columns) == list(original.columns)
    assert (decoded.dtypes == original.dtypes).all()
    assert set(decoded["colour"]) <= set(COLOURS) and set(decoded["size"]) <= set(SIZES)
    with pytest.raises(ValueError, match="takes no y"):
        fam.sample(3, y=torch.zeros(3))


def test_resume_is_bit_exact(tmp_path):
    data = mixed()

    def make(steps, out, resume):
        return build_run(run_config(steps), out, resume=resume, data=data, callbacks=[Checkpointer(0)])

    full, resumed = split_and_resume(make, tmp_path, 2)
    torch.testing.assert_close(full.generator.cond_cdf, resumed.generator.cond_cdf, rtol=0, atol=0)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.3])
def test_mask_dropout_keeps_one_minus_p_and_rescales(p):
    """D's dropout: each entry kept with probability 1 - p (within 5 binomial standard deviations over 2^20 entries,
    also in each of the four byte positions of the integer draw used when 256 p is whole), kept entries scaled by
    1 / (1 - p) and dropped ones 0; eval mode passes x through; p = 0.3 takes the float draw."""
    from ganforge.families.ctgan import MaskDropout

    torch.manual_seed(0)
    layer = MaskDropout(p)
    assert (layer._byte_level is not None) == (p != 0.3)
    x = torch.ones(1024, 1024)
    y = layer(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1.0 / (1.0 - p)))
    n, sd = x.numel(), math.sqrt(x.numel() * p * (1 - p))
    assert abs(int(kept.sum()) - n * (1 - p)) < 5 * sd
    flat = kept.flatten()
    for k in range(4):  # every byte of a word is its own fair draw, independent of the others
        part = flat[k::4]
        assert abs(int(part.sum()) - part.numel() * (1 - p)) < 5 * math.sqrt(part.numel() * p * (1 - p))
        both = flat[k::4] & flat[(k + 1) % 4::4]
        q = (1 - p) ** 2
        assert abs(int(both.sum()) - both.numel() * q) < 5 * math.sqrt(both.numel() * q * (1 - q))
    odd = layer(torch.ones(1001, 3))  # 3003 entries: not whole words, the float draw
    assert abs(int((odd != 0).sum()) - 3003 * (1 - p)) < 5 * math.sqrt(3003 * p * (1 - p))
    assert torch.equal(layer.eval()(x), x)
