"""fatgan (FAT-GAN, Alanazi et al. 2020) and the torch codec of the continuous table transforms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from ganforge.data.eprime import DEFAULT_BEAM_ENERGY, eprime_events, validity
from ganforge.data.spec import Batch, DataSpec
from ganforge.data.table import Table, TableData
from ganforge.data.table_torch import TorchCodec
from ganforge.families import FAMILIES, build_family
from ganforge.families.fatgan import ENERGY_MARGIN, mmd2
from ganforge.train import build_run
from ganforge.train.callbacks import Checkpointer

from .conftest import TABLE_FAMILIES, split_and_resume, tiny_config

E_B = DEFAULT_BEAM_ENERGY
TINY = {"hidden": 16, "depth": 2, "latent_dim": 8}


# -- data --------------------------------------------------------------------------------------------
_EVENTS: dict[str, TableData] = {}


def events() -> TableData:
    """2000 builtin-eprime-style events (px, py, pz), pz through FAT-GAN's log(E_b - pz)."""
    if "ev" not in _EVENTS:
        ev = eprime_events(2000)
        df = pd.DataFrame({k: ev[k] for k in ("px", "py", "pz")})
        _EVENTS["ev"] = TableData.from_table(Table.from_pandas(df),
                                             transforms={"pz": {"name": "log_distance", "bound": E_B}})
    return _EVENTS["ev"]


def transform_table() -> TableData:
    """One column per transform the codec runs (and declared bounds for the bounded ones)."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({
        "ident": rng.normal(3.0, 2.0, n), "stand": rng.normal(-5.0, 0.3, n), "mm": rng.uniform(-2.0, 7.0, n),
        "lg": rng.uniform(0.01, 0.99, n), "pos": rng.lognormal(0.0, 1.0, n), "below": 10.0 - rng.exponential(1.0, n),
        "above": -1.0 + rng.exponential(2.0, n),
    })
    spec = {"lg": {"bounds": [0, 1]}, "mm": {"bounds": [-2, 7]}, "stand": {"bounds": [-8, -2]}}
    transforms = {"ident": "identity", "stand": "standard", "mm": "minmax", "lg": "logit", "pos": "log",
                  "below": {"name": "log_distance", "bound": 10.5},
                  "above": {"name": "log_distance", "bound": -1.0, "side": "lower"}}
    return TableData.from_table(Table.from_pandas(df, spec), transforms=transforms)


def momenta(rows, data: TableData) -> np.ndarray:
    """|p| of rows decoded by the table's own (numpy) transformer."""
    t = data.decode(rows)
    return np.sqrt(t["px"] ** 2 + t["py"] ** 2 + t["pz"] ** 2)


# -- the torch codec ---------------------------------------------------------------------------------
def test_codec_agrees_with_numpy_transforms_on_random_and_edge_values():
    data = transform_table()
    tr = data.transformer
    codec = TorchCodec(tr)
    assert codec.complete and codec.names == tr.layout.columns
    table = data.table
    x = torch.tensor(np.stack([table[c] for c in codec.names], 1), dtype=torch.float64)
    enc = codec.encode(x)
    torch.testing.assert_close(codec.encode_rows(x), torch.from_numpy(tr.transform(table, dtype=np.float64)),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(codec.decode(enc), x, rtol=1e-10, atol=1e-10)  # round trip
    # random and extreme encoded rows decode as the numpy transforms decode them
    rng = np.random.default_rng(1)
    rows = np.concatenate([rng.normal(0, 3, (200, tr.dim)),
                           np.array([[0.0] * tr.dim, [1.0] * tr.dim, [-1.0] * tr.dim, [50.0] * tr.dim,
                                     [-50.0] * tr.dim, [1e4] * tr.dim, [-1e4] * tr.dim, [1e30] * tr.dim])])
    expected = tr.inverse(rows)
    got = codec.decode(torch.from_numpy(rows))
    for j, name in enumerate(codec.names):
        torch.testing.assert_close(got[:, j], torch.from_numpy(np.asarray(expected[name], dtype=np.float64)),
                                   rtol=1e-12, atol=1e-12, msg=name)
    # gradients exist and are finite inside the domain
    xg = x[:50].clone().requires_grad_(True)
    codec.decode(codec.encode(xg)).sum().backward()
    torch.testing.assert_close(xg.grad, torch.ones_like(xg), rtol=1e-8, atol=1e-8)


def test_codec_clamp_keeps_values_encodable():
    data = transform_table()
    codec = TorchCodec(data.transformer)
    far = torch.tensor([[1e3] * len(codec), [-1e3] * len(codec)], dtype=torch.float64)
    enc = codec.encode(far, clamp=True)
    assert torch.isfinite(enc).all()
    back = codec.decode(enc)
    for j, (lo, hi) in enumerate(codec.domains):
        expect = far[:, j].clamp(min=lo).clamp(max=hi)
        torch.testing.assert_close(back[:, j], expect, rtol=1e-6, atol=1e-6, msg=codec.names[j])
    # a float32 codec stays finite for huge encoded values (exp clipped at 80)
    assert torch.isfinite(codec.decode(torch.full((2, data.transformer.dim), 1e6))).all()


def test_codec_refuses_what_it_cannot_run():
    df = pd.DataFrame({"x": np.linspace(0.0, 1.0, 50), "c": ["a", "b"] * 25, "f": np.linspace(1.0, 2.0, 50)})
    data = TableData.from_table(Table.from_pandas(df), transforms={
        "f": {"name": "formula", "forward": "log(x)", "inverse": "exp(y)"}})
    with pytest.raises(ValueError, match="column 'c'.*onehot.*continuous tables"):
        TorchCodec(data.transformer)
    with pytest.raises(ValueError, match="column 'f'.*not differentiable here"):
        TorchCodec(data.transformer, ["f"])
    partial = TorchCodec(data.transformer, ["x"])
    with pytest.raises(ValueError, match="c, f are not in it"):
        partial.encode_rows(torch.zeros(2, 1))


# -- the family --------------------------------------------------------------------------------------
def test_registered_as_a_table_family():
    assert "fatgan" in FAMILIES and "fatgan" in TABLE_FAMILIES
    assert FAMILIES["fatgan"].needs == "table"


def test_mmd_term_equals_closed_form():
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.0], [3.0]])
    k = lambda d: math.exp(-d * d / 2.0) + math.exp(-d * d / 8.0)  # noqa: E731  widths 1 and 2
    want = k(1.0) + k(3.0) - 2.0 * (k(0.0) + k(3.0) + k(1.0) + k(2.0)) / 4.0
    assert float(mmd2(x, y, (1.0, 2.0))) == pytest.approx(want, rel=1e-6)
    # and the metric's float64 estimator on random rows
    from ganforge.metrics.mmd import mmd

    a, b = torch.randn(30, 3, dtype=torch.float64), torch.randn(25, 3, dtype=torch.float64) + 0.5
    assert float(mmd2(a, b, (0.5, 1.0, 2.0))) == pytest.approx(mmd(a, b, bandwidths=[0.5, 1.0, 2.0]), rel=1e-9)


def test_defaults_for_events_and_generic_tables():
    fam = build_family("fatgan", TINY, events().spec)
    assert fam.representation == "spherical"
    assert fam.feature_names == ["pT", "p", "theta", "phi", "Q2", "x_B"]
    assert fam.D.net[0].in_features == 3 + 6
    generic = transform_table()
    g = build_family("fatgan", TINY, generic.spec)
    assert g.representation == "cartesian" and len(g.feature_names) == 7 * 6 // 2
    assert g.feature_names[0] == "ident*stand"


def test_user_formula_features_are_computed_in_physical_units_with_gradients():
    data = events()
    fam = build_family("fatgan", {**TINY, "feature_augmentation": ["pT", "hypot(px, py)", "px * py / 10.6"]},
                       data.spec)
    assert fam.feature_names == ["pT", "hypot(px, py)", "px * py / 10.6"]
    assert fam.D.net[0].in_features == 3 + 3
    rows = data.x[:64].clone().requires_grad_(True)
    f = fam.raw_features(rows)
    t = data.table
    torch.testing.assert_close(f[:, 1], f[:, 0], rtol=1e-9, atol=1e-9)  # the formula is pT itself
    np.testing.assert_allclose(f[:, 2].detach().numpy(), t["px"][:64] * t["py"][:64] / 10.6, rtol=1e-5, atol=1e-6)
    f[:, 2].sum().backward()
    assert rows.grad is not None and torch.isfinite(rows.grad).all() and rows.grad[:, :2].abs().sum() > 0
    # a formula that divides by zero: the value is cleaned to a finite number and no NaN reaches G's gradient
    zero = build_family("fatgan", {**TINY, "feature_augmentation": ["px / (py - py)", "sqrt(px - px)"]}, data.spec)
    rows = data.x[:16].clone().requires_grad_(True)
    f = zero.raw_features(rows)
    assert torch.isfinite(f).all()
    f.sum().backward()
    assert torch.isfinite(rows.grad).all()


def test_feature_statistics_are_the_real_datas(tmp_path):
    data = events()
    fam = build_family("fatgan", {**TINY, "feature_augmentation": ["p", "Q2", "x_B"]}, data.spec)
    fam.bind_data(data)
    t = data.table
    p = np.sqrt(t["px"] ** 2 + t["py"] ** 2 + t["pz"] ** 2)
    ev = eprime_events(2000)
    for j, truth in enumerate([p, ev["Q2"], ev["x_B"]]):
        assert float(fam.feature_mean[j]) == pytest.approx(truth.mean(), rel=1e-4)
        assert float(fam.feature_std[j]) == pytest.approx(truth.std(), rel=1e-3)
    # the real batch's standardised features have mean ~0, std ~1 inside D's input
    d_in = fam.d_input(data.x)
    assert d_in.shape == (2000, 6)
    assert d_in[:, 3:].mean(0).abs().max() < 0.05
    # the spherical maps start on the data: logit(E' / E_max), logit(theta / pi) standardised
    u = np.stack([p / (E_B * (1 - ENERGY_MARGIN)), ev["theta"] / math.pi], 1)
    logit = np.log(u) - np.log1p(-u)
    torch.testing.assert_close(fam.G.angles_loc, torch.tensor(logit.mean(0), dtype=torch.float32), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fam.G.angles_scale, torch.tensor(logit.std(0), dtype=torch.float32),
                               rtol=1e-3, atol=1e-4)
    assert {"angles_loc", "angles_scale"} <= {k.split(".")[-1] for k in fam.G.state_dict()}  # saved with G


def test_plain_wgan_gp_when_everything_is_off():
    data = events()
    fam = build_family("fatgan", {**TINY, "mmd_weight": 0, "feature_augmentation": [], "representation": "cartesian"},
                       data.spec)
    assert fam.feature_names == [] and fam.D.net[0].in_features == 3 and fam.loss_name == "wgan-gp"
    batch = Batch(data.x[:16])
    torch.manual_seed(0)
    out = fam.loss("g", batch)
    torch.manual_seed(0)
    fake = fam.G(fam.noise(16))
    assert set(out.logs) == {"g/adv", "g/loss"}
    torch.testing.assert_close(out.loss, -fam.D(fake).mean())


def test_trains_and_samples_physical_events(tmp_path):
    data = events()
    cfg = tiny_config("fatgan", source="unused", steps=4, model=TINY, train={"batch_size": 32})
    trainer = build_run(cfg, tmp_path / "run", data=data, callbacks=[Checkpointer(0)])
    trainer.fit()
    assert trainer.step == 4
    fam = trainer.family
    rows = fam.sample(1000, generator=torch.Generator().manual_seed(0), net=trainer.generator)
    assert rows.shape == (1000, 3) and torch.isfinite(rows).all()
    assert (momenta(rows, data) <= E_B).all()
    table = data.decode(rows)
    assert validity({c: table[c] for c in ("px", "py", "pz")})["energy"] == 1.0
    # a checkpoint alone (generator_only, G's buffers included) samples the very same rows
    from ganforge.artifacts.sampler import Sampler

    sampler = Sampler.from_checkpoint(tmp_path / "run")
    z = fam.noise(64)
    expected = fam.sample(64, z=z, net=trainer.generator)
    torch.testing.assert_close(sampler.family.sample(64, z=z, net=sampler.G), expected, rtol=0, atol=0)


@pytest.mark.parametrize("attack", ["huge_bias", "huge_weights", "nan"])
def test_spherical_bound_holds_for_any_weights(attack):
    data = events()
    fam = build_family("fatgan", TINY, data.spec)
    gen = torch.Generator().manual_seed(1)
    last = fam.G.net[-1]
    with torch.no_grad():
        if attack == "huge_bias":  # E' at its maximum, theta at 0 or pi: |p| pressed against E_b
            last.bias.copy_(torch.tensor([1e6, -1e6, 1e6, 1e6]))
        elif attack == "huge_weights":
            for p in fam.G.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 1e3)
        else:
            last.weight.fill_(float("nan"))
    rows = fam.sample(2000, generator=gen)
    assert torch.isfinite(rows).all()
    assert (momenta(rows, data) <= E_B).all()


def test_guard_fixes_rows_rounding_would_put_above_the_beam_energy():
    fam = build_family("fatgan", TINY, events().spec)
    codec = fam.G.codec
    # momenta a hair above E_b, encoded as float32 rows (what rounding could produce), and far above it
    direction = torch.nn.functional.normalize(torch.randn(64, 3, dtype=torch.float64), dim=1)
    direction[:8] = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)  # forward: pz next to the bound
    size = torch.full((64, 1), E_B * (1 + 1e-7), dtype=torch.float64)
    size[32:] = E_B * 1.5
    rows = codec.encode(direction * size, clamp=True).float()
    assert (momenta(rows, events()) > E_B).any()
    fixed = fam.G.guard(rows)
    assert (momenta(fixed, events()) <= E_B).all()
    # rows inside the bound are left alone
    inside = codec.encode(direction * E_B * (1 - 10 * ENERGY_MARGIN), clamp=True).float()
    assert torch.equal(fam.G.guard(inside), inside)


def test_spherical_events_with_other_columns_and_mixed_generic_tables(tmp_path):
    ev = eprime_events(300, seed=3)
    df = pd.DataFrame({"kind": ["a", "b", "c"] * 100, "pz": ev["pz"], "W": ev["W"], "px": ev["px"], "py": ev["py"]})
    data = TableData.from_table(Table.from_pandas(df), transforms={"pz": {"name": "log_distance", "bound": E_B}})
    fam = build_family("fatgan", TINY, data.spec)
    fam.bind_data(data)
    assert fam.representation == "spherical"
    rows = fam.sample(500, generator=torch.Generator().manual_seed(0))
    layout = data.transformer.layout
    kind = layout.column_slice("kind")
    torch.testing.assert_close(rows[:, kind].sum(1), torch.ones(500))  # the category block through softmax
    assert (momenta(rows, data) <= E_B).all()
    # the momentum slots hold the codec's encoding of G's momenta, the others G's outputs
    zz = torch.randn(4, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        h = fam.G.net(zz)
        out = fam.G(zz)
    torch.testing.assert_close(out[:, fam.G.codec.index], fam.G.codec.encode(fam.G.momentum(h), clamp=True))
    torch.testing.assert_close(out[:, layout.column_slice("W")][:, 0], h[:, 4 + 3])  # after kind's 3 outputs
    # a generic table with a category: cartesian, products of its continuous columns, a few training steps
    mixed = TableData.from_table(Table.from_pandas(df.drop(columns=["px", "py"])))
    cfg = tiny_config("fatgan", source="unused", steps=2, model=TINY, train={"batch_size": 16})
    trainer = build_run(cfg, tmp_path / "mixed", data=mixed, callbacks=[])
    assert trainer.family.representation == "cartesian" and trainer.family.feature_names == ["pz*W"]
    trainer.fit()
    assert torch.isfinite(trainer.family.sample(8)).all()


def test_resume_is_bit_exact(tmp_path):
    data = events()

    def make(steps, out, resume):
        cfg = tiny_config("fatgan", source="unused", steps=steps, model=TINY, train={"batch_size": 16})
        return build_run(cfg, out, resume=resume, data=data, callbacks=[Checkpointer(0)])  # saves at the end

    full, resumed = split_and_resume(make, tmp_path, 2)
    torch.testing.assert_close(full.family.feature_std, resumed.family.feature_std, rtol=0, atol=0)


@pytest.mark.parametrize("options,match", [
    ({"representation": "polar"}, "representation must be one of"),
    ({"mmd_weight": -1}, "mmd_weight must be a number >= 0"),
    ({"mmd_bandwidths": []}, "mmd_bandwidths must be a non-empty list"),
    ({"mmd_bandwidths": [1.0, 0.0]}, "mmd_bandwidths must be a non-empty list"),
    ({"feature_augmentation": ["pT", "mass"]}, "unknown feature_augmentation 'mass'"),
    ({"feature_augmentation": ["px +"]}, "not a valid expression"),
    ({"feature_augmentation": ["2 * pi"]}, "reads no column"),
    ({"feature_augmentation": ["__import__('os')"]}, "not allowed"),
    ({"feature_augmentation": ["pT", "pT"]}, "lists a quantity twice"),
    ({"momentum_columns": ["px", "py"]}, "three distinct columns"),
    ({"momentum_columns": ["a", "b", "c"]}, "momentum_columns a, b, c are not all columns"),
    ({"beam_energy": 0}, "beam_energy must be a positive number"),
    ({"hidden": 0}, "hidden must be a positive integer"),
    ({"d_dropout": 1.0}, "d_dropout must be in"),
    ({"r1_weight": 1.0}, "set model.r1_weight to 0"),
    ({"n_critic": 0}, "n_critic must be >= 1"),
    ({"widht": 3}, "unknown fatgan option"),
])
def test_bad_settings_name_the_fix(options, match):
    with pytest.raises(ValueError, match=match):
        build_family("fatgan", {**TINY, **options}, events().spec)


def test_generic_table_errors():
    one = TableData.from_table(Table.from_pandas(pd.DataFrame({"x": np.linspace(0.0, 1.0, 50)})))
    with pytest.raises(ValueError, match="products needs two or more continuous columns"):
        build_family("fatgan", {**TINY, "feature_augmentation": ["products"]}, one.spec)
    assert build_family("fatgan", TINY, one.spec).feature_names == []  # auto: nothing to multiply
    with pytest.raises(ValueError, match="representation spherical needs"):
        build_family("fatgan", {**TINY, "representation": "spherical"}, one.spec)
    with pytest.raises(ValueError, match="pT are event quantities"):
        build_family("fatgan", {**TINY, "feature_augmentation": ["pT"]}, one.spec)


def test_non_table_data_is_refused():
    with pytest.raises(ValueError, match="fatgan trains on tables"):
        build_family("fatgan", TINY, DataSpec("points", (2,), name="ring8"))
    with pytest.raises(ValueError, match="fatgan trains on tables"):
        build_family("fatgan", TINY, DataSpec("image", (1, 8, 8), name="digits"))
