"""Tables: reading and typing CSV / Parquet, missing values, bad tables, and the invertible column transforms."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ganforge.data import DataSpec, Loader, load_data
from ganforge.data.table import (
    Table,
    TableData,
    TableTransformer,
    format_report,
    load_column_spec,
    read_table,
    transformer_from_spec,
    write_table,
)
from ganforge.data.table_transforms import (
    VGM,
    Block,
    Formula,
    OutputLayout,
    apply_activations,
    make_transform,
    transform_from_state,
)

E_B = 10.6  # FAT-GAN's beam energy (GeV)


def _edge_values(lo: float | None, hi: float | None, rng: np.random.Generator) -> np.ndarray:
    """Random values inside (lo, hi) plus the bounds themselves, negatives and near-bound values."""
    a = -20.0 if lo is None else lo
    b = 20.0 if hi is None else hi
    x = rng.uniform(a, b, 400)
    edges = [a, b, a + 1e-9 * (b - a), b - 1e-9 * (b - a), 0.5 * (a + b), -1.5 if a < -1.5 < b else a]
    return np.concatenate([x, edges])


# transform, bounds, which edges are excluded (log of distance 0 is -inf by definition)
NUMERIC_CASES = [
    ("identity", None, None),
    ("standard", None, None),
    ("minmax", (-3.0, 7.0), None),
    ("logit", (-3.0, 7.0), None),
    ({"name": "log"}, (-5.0, None), "lo"),
    ({"name": "log", "offset": 1.0}, (0.0, None), None),
    ({"name": "log_distance"}, (None, E_B), "hi"),
    ({"name": "log_distance", "side": "lower"}, (-2.0, None), "lo"),
    ({"name": "formula", "forward": "log(Eb - x)", "inverse": "Eb - exp(y)", "params": {"Eb": E_B}}, (None, E_B), "hi"),
    ({"name": "formula", "forward": "x**3 + 2*x", "inverse": "y", "standardise": False}, None, "skip"),
    ("vgm", None, None),
]


@pytest.mark.parametrize("spec,bounds,open_side", NUMERIC_CASES, ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v))
def test_every_numeric_transform_inverts_exactly(spec, bounds, open_side):
    rng = np.random.default_rng(0)
    lo, hi = bounds if bounds else (None, None)
    x = _edge_values(lo, hi, rng)
    if open_side == "lo":
        x = x[x > lo]
    if open_side == "hi":
        x = x[x < hi]
    if open_side == "skip":  # a forward whose inverse is wrong is refused at fit
        with pytest.raises(ValueError, match="does not undo"):
            make_transform("c", spec).fit(x)
        return
    t = make_transform("c", spec).fit(x, bounds or (None, None))
    y = t.forward(x)
    assert y.shape == (len(x), t.width) and np.isfinite(y).all()
    np.testing.assert_allclose(t.inverse(y), x, rtol=1e-9, atol=1e-9 * np.abs(x).max())
    # a constant column inverts exactly too (std 0 is taken as 1; minmax/logit use the declared bounds)
    c = np.full(50, 2.5)
    tc = make_transform("c", spec).fit(c, bounds or (None, None))
    np.testing.assert_allclose(tc.inverse(tc.forward(c)), c, rtol=1e-12)
    # the state (JSON) rebuilds the same transform
    again = transform_from_state("c", json.loads(json.dumps(t.state())))
    np.testing.assert_array_equal(again.forward(x), y)


def _physics_table(n: int = 600, seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    pz = E_B - rng.exponential(2.0, n)  # a sharp edge at the beam energy
    df = pd.DataFrame({
        "pz": pz,
        "theta": rng.uniform(0.1, 3.0, n),
        "frac": rng.beta(2, 5, n),
        "hits": rng.poisson(3, n).astype(np.int64),
        "q2": rng.lognormal(0, 1, n),
        "kind": rng.choice(["e", "mu", "pi"], n),
        "good": rng.random(n) < 0.7,
        "t": pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 2000, n), unit="h"),
    })
    spec = {
        "pz": {"bounds": [None, E_B], "transform": "log_distance"},
        "theta": {"bounds": [0, 3.1416], "transform": "logit"},
        "frac": {"bounds": [0, 1], "transform": "minmax"},
        "hits": {"bounds": [0, 30], "transform": "vgm"},
        "q2": {"bounds": [0, None], "transform": {"name": "formula", "forward": "log(x)", "inverse": "exp(y)"}},
    }
    return Table.from_pandas(df, spec, source="physics")


def test_bounded_columns_stay_within_bounds_for_any_generator_output():
    table = _physics_table()
    tr = TableTransformer(seed=0)
    tr.fit(table)
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 1e6, (2000, tr.dim))
    raw[:5] = np.inf
    raw[5:10] = -np.inf
    raw[10:15] = 1e300
    out = tr.inverse(raw)
    assert out["pz"].max() <= E_B and np.isfinite(out["pz"]).all()  # FAT-GAN's p_z <= E_b (< but for underflow)
    assert 0 <= out["theta"].min() and out["theta"].max() <= 3.1416
    assert 0 <= out["frac"].min() and out["frac"].max() <= 1
    assert out["hits"].dtype == np.int64 and 0 <= out["hits"].min() and out["hits"].max() <= 30
    assert (out["q2"] >= 0).all()
    assert set(out["kind"]) <= {"e", "mu", "pi"} and out["good"].dtype == bool
    # NaN (a diverged generator) is refused, naming the columns
    raw[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN.*pz"):
        tr.inverse(raw)


def test_log_distance_keeps_pz_strictly_below_the_beam_energy_for_ordinary_outputs():
    x = E_B - np.random.default_rng(0).exponential(1.0, 1000)
    t = make_transform("pz", "log_distance").fit(x, (None, E_B))
    y = np.linspace(-20, 20, 10001)[:, None]  # +-20 standard deviations of log(E_b - p_z)
    assert (t.inverse(y) < E_B).all()


def test_full_pipeline_round_trip_float32_and_float64():
    table = _physics_table()
    tr = TableTransformer(seed=0)
    tr.fit(table)
    for dtype, rtol in ((np.float64, 1e-9), (np.float32, 2e-5)):
        rows = tr.transform(table, dtype=dtype)
        assert rows.dtype == dtype and rows.shape == (len(table), tr.dim)
        back = tr.inverse(rows)
        for name in ("pz", "theta", "frac", "q2"):
            np.testing.assert_allclose(back[name], table[name], rtol=rtol, atol=rtol * 10)
        for name in ("hits", "kind", "good", "t"):
            np.testing.assert_array_equal(back[name], table[name])
    kinds = {b.column: (b.activation, b.role) for b in tr.layout.blocks if b.role != "mode"}
    assert kinds["frac"] == ("tanh", "value") and kinds["kind"] == ("softmax", "category")
    assert kinds["pz"] == ("linear", "value")
    assert [b.column for b in tr.layout.category_blocks()] == ["kind", "good"]


def test_vgm_finds_two_modes_on_a_bimodal_column():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-5, 0.5, 1500), rng.normal(5, 1.0, 1500)])
    t = VGM("x").fit(x)
    assert len(t.means) == 2
    np.testing.assert_allclose(t.means, [-5, 5], atol=0.15)
    np.testing.assert_allclose(t.stds, [0.5, 1.0], rtol=0.1)
    np.testing.assert_allclose(t.weights, [0.5, 0.5], atol=0.03)
    y = t.forward(x)
    assert y.shape == (3000, 3)
    modes = y[:, 1:].argmax(1)
    assert (modes[:1500] == 0).mean() > 0.99 and (modes[1500:] == 1).mean() > 0.99
    assert np.abs(y[:, 0]).max() < 1.5  # alpha = (x - mu) / (4 sigma): within [-1, 1] but for far tails
    np.testing.assert_allclose(t.inverse(y), x, rtol=1e-12)
    # CTGAN's sampled mode: still exactly invertible
    s = VGM("x", mode_choice="sample").fit(x)
    np.testing.assert_allclose(s.inverse(s.forward(x, np.random.default_rng(3))), x, rtol=1e-12)


def test_categorical_and_boolean_round_trip_with_missing_as_a_category():
    df = pd.DataFrame({
        "colour": ["red", "green", None, "blue", "green", "red"] * 5,
        "size": pd.Categorical(["S", "M", "L", "M", "S", "L"] * 5, categories=["S", "M", "L"]),
        "flag": ["yes", "no", "yes", None, "no", "yes"] * 5,
        "x": np.arange(30, dtype=float),
    })
    table = Table.from_pandas(df, {"flag": {"type": "boolean", "missing": "category"}})
    assert table.info["colour"].categories == ["blue", "green", "red", None]
    assert table.info["size"].categories == ["S", "M", "L"]  # the declared order is kept
    assert table.info["flag"].categories == [False, True, None]
    tr = TableTransformer()
    rows = tr.fit_transform(table)
    back = tr.inverse(rows + np.random.default_rng(0).normal(0, 0.1, rows.shape))  # argmax survives noise
    for name in ("colour", "size", "flag"):
        assert back[name].tolist() == table[name].tolist()
    out = back.to_pandas()
    assert out["colour"].isna().sum() == 5 and str(out["size"].dtype) == "category"
    assert str(out["flag"].dtype) == "boolean" and out["flag"].isna().sum() == 5
    # an unseen category is refused when encoding
    other = Table.from_pandas(pd.DataFrame({"colour": ["purple", "red"], "size": ["S", "M"], "flag": [True, False],
                                            "x": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="purple"):
        tr.transform(other)


def test_datetime_round_trip_to_the_columns_resolution_and_time_zone():
    rng = np.random.default_rng(0)
    hours = pd.Timestamp("2023-01-01", tz="Europe/Berlin") + pd.to_timedelta(rng.integers(0, 8000, 300), unit="h")
    days = pd.Timestamp("1990-01-01") + pd.to_timedelta(rng.integers(0, 20000, 300), unit="D")
    table = Table.from_pandas(pd.DataFrame({"h": hours, "d": days}))
    assert table.info["h"].kind == "datetime" and table.info["h"].tz == "Europe/Berlin"
    assert table.info["h"].unit_ns == 3600 * 10**9 and table.info["d"].unit_ns == 86400 * 10**9
    np.testing.assert_allclose(table.numbers("d")[:1], [(days[0] - pd.Timestamp("1970-01-01")).total_seconds()])
    tr = TableTransformer()
    back = tr.inverse(tr.fit_transform(table)).to_pandas()  # float32 rows
    pd.testing.assert_series_equal(back["h"], pd.Series(hours, name="h"), check_dtype=True)
    pd.testing.assert_series_equal(back["d"], pd.Series(days, name="d"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet_round_trip_of_types(tmp_path, suffix):
    n = 40
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "f": rng.normal(size=n),
        "i": rng.integers(-5, 50, n).astype(np.int32),
        "b": rng.random(n) < 0.5,
        "c": rng.choice(["a", "b", "c"], n),
        "d": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 100, n), unit="D"),
        "gap": np.where(np.arange(n) % 10 == 0, np.nan, rng.integers(0, 9, n)),  # ints with missing values
    })
    src = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        df.to_csv(src, index=False)
    else:
        df.to_parquet(src, index=False)
    table = read_table(src)
    kinds = {n: i.kind for n, i in table.info.items()}
    assert kinds == {"f": "continuous", "i": "integer", "b": "boolean", "c": "categorical", "d": "datetime",
                     "gap": "integer"}
    rep = table.report()
    assert rep["rows_read"] == n and rep["rows"] == n - 4 and rep["columns"]["gap"]["missing"] == 4
    assert rep["columns"]["gap"]["handling"] == "drop" and "gap" in format_report(rep)
    out = tmp_path / f"again{suffix}"
    write_table(table, out)
    again = read_table(out)
    assert {n: i.kind for n, i in again.info.items()} == kinds
    for name in table.names:
        np.testing.assert_array_equal(again[name], table[name])
    if suffix == ".parquet":  # Parquet keeps the source dtypes
        got = pd.read_parquet(out).dtypes.astype(str).to_dict()
        assert got["i"] == "int32" and got["b"] == "bool" and got["gap"] == "int64"
        assert got["d"].startswith("datetime64")


def test_missing_values_are_counted_and_handled_per_column():
    df = pd.DataFrame({
        "a": [1.5, np.nan, 3.5, 4.5, np.inf, 6.5],
        "b": [10, 20, None, 40, 50, 60],
        "c": ["x", None, "y", "x", "x", None],
        "d": [1.5, 2.5, np.nan, 4.5, 5.5, 6.5],
        "e": ["1", "oops", "3", "4", "5", "6"],
    })
    spec = {"a": {"missing": "median"}, "b": {"missing": "mode"}, "c": {"missing": "value", "fill": "z"},
            "e": {"type": "integer", "missing": "drop"}}
    t = Table.from_pandas(df, spec)
    rep = t.report()["columns"]
    assert rep["a"]["missing"] == 2 and rep["a"]["infinite"] == 1 and rep["a"]["filled"] == 4.0
    assert t["a"].tolist() == [1.5, 4.5, 4.0, 6.5]  # rows 1 (e) and 2 (d) dropped; row 4's inf -> the median 4
    assert rep["b"]["kind"] == "integer" and rep["b"]["handling"] == "mode"
    assert rep["c"]["filled"] == "z" and "z" in t.info["c"].categories
    assert rep["e"]["not_parsed"] == 1 and t.report()["rows_dropped"] == 2


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


BAD_TABLES = [
    ("empty.csv", "", "empty: no header"),
    ("header.csv", "a,b\n", "no rows"),
    ("one.csv", "a,b\n1,2\n", "has 1 row"),
    ("nan.csv", "a,b\n1,\n2,\n3,\n", "'b': all 3 values are missing.*ignore"),
    ("mixed.csv", "a,b\n1,x\n2,3\n3,4\n", "'b': mixes numbers .*and text.*categorical"),
]


@pytest.mark.parametrize("name,text,message", BAD_TABLES, ids=[b[0] for b in BAD_TABLES])
def test_bad_tables_raise_clear_errors(tmp_path, name, text, message):
    with pytest.raises(ValueError, match=message):
        read_table(_write(tmp_path, name, text))


def test_ten_thousand_categories_and_other_bad_columns(tmp_path):
    ids = pd.DataFrame({"id": [f"user{i}" for i in range(10_000)], "x": np.arange(10_000.0)})
    with pytest.raises(ValueError, match="10,000 distinct values.*ignore"):
        Table.from_pandas(ids)
    assert Table.from_pandas(ids, {"id": "ignore"}).names == ["x"]
    assert Table.from_pandas(ids, max_categories=20_000).info["id"].kind == "categorical"
    with pytest.raises(ValueError, match="no usable column"):
        Table.from_pandas(ids, {"id": "ignore", "x": "ignore"})
    with pytest.raises(ValueError, match="above the high bound 10"):
        Table.from_pandas(pd.DataFrame({"p": [1.0, 11.0, 2.0]}), {"p": {"bounds": [0, 10]}})
    with pytest.raises(ValueError, match="leaves 0 of 4 rows.*fill them"):
        Table.from_pandas(pd.DataFrame({"a": [1, None, 3, None], "b": [None, 2.5, None, 4.5]}))
    with pytest.raises(ValueError, match="2 columns cannot be used"):  # all problems at once
        Table.from_pandas(pd.DataFrame({"a": [np.nan] * 3, "b": [1, "x", 2], "c": [1.0, 2.0, 3.0]}))
    with pytest.raises(ValueError, match="does not have"):
        Table.from_pandas(pd.DataFrame({"a": [1.0, 2.0]}), {"zz": "continuous"})


def test_column_spec_file(tmp_path):
    p = _write(tmp_path, "spec.yaml",
               "pz: {type: continuous, bounds: [null, 10.6], transform: log_distance}\n"
               "id: ignore\n"
               "y: {type: categorical, label: true}\n"
               "q: {transform: {name: formula, forward: 'log(x)', inverse: 'exp(y)'}}\n")
    spec = load_column_spec(p)
    assert spec["pz"].bounds == (None, 10.6) and spec["pz"].transform == {"name": "log_distance"}
    assert spec["id"].type == "ignore" and spec["y"].label and spec["q"].transform["forward"] == "log(x)"
    for text, message in [("a: {typ: continuous}\n", "unknown setting typ"), ("a: real\n", "unknown type 'real'"),
                          ("a: {bounds: [3, 1]}\n", "empty"), ("a: {transform: fancy}\n", "unknown transform"),
                          ("a: {missing: value}\n", "fill")]:
        with pytest.raises(ValueError, match=message):
            load_column_spec(_write(tmp_path, "bad.yaml", text))


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "x.__class__", "(lambda: 1)()", "open('f')",
                                  "x if x else 1", "log(x, out=x)", "[x][0]", "'a'", "exp(z)"])
def test_formulas_are_evaluated_without_python(text):
    with pytest.raises(ValueError, match="not allowed|not a valid"):
        Formula(text, "x")


def test_formula_values():
    f = Formula("log(Eb - x) + 2**3 - -x * pi", "x", {"Eb": 10.6})
    x = np.array([0.5, 3.0, 10.0])
    np.testing.assert_allclose(f(x), np.log(10.6 - x) + 8 + x * np.pi)
    assert np.isinf(Formula("9**9**9 + x", "x")(np.zeros(2))).all()


def test_formulas_over_columns_agree_in_numpy_and_torch():
    """Every whitelisted function has a torch form that gives numpy's value, and gradients flow through it."""
    from ganforge.data.table_transforms import FUNCTIONS

    rng = np.random.default_rng(0)
    cols = {"a": rng.uniform(0.1, 0.9, 6), "b": rng.uniform(1.5, 3.0, 6)}
    two = {"arctan2", "minimum", "maximum", "power", "hypot"}
    texts = [f"{name}(a, b)" if name in two else "clip(b, 1.8, 2.5)" if name == "clip"
             else f"{name}(b)" if name == "arccosh" else f"{name}(a)" for name in FUNCTIONS]
    texts.append("a / b - 2 ** b * pi + -a")
    for text in texts:
        f = Formula(text, ["a", "b", "unused"])
        want = f(cols)
        t = {k: torch.tensor(v, requires_grad=True) for k, v in cols.items()}
        got = f.torch({k: t[k] for k in f.names})
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-12, atol=1e-12, err_msg=text)
        got.sum().backward()
        assert all(t[k].grad is not None and torch.isfinite(t[k].grad).all() for k in f.names), text
    assert sorted(Formula("a * b + a", ["a", "b", "c"]).names) == ["a", "b"]
    with pytest.raises(ValueError, match="the name 'c'"):
        Formula("a * c", ["a", "b"])


def test_state_round_trip_and_data_spec(tmp_path):
    table = _physics_table(300)
    tr = TableTransformer({"theta": "vgm"}, seed=3)
    state = tr.fit(table)
    again = TableTransformer.from_state(json.loads(json.dumps(state)))
    rows = tr.transform(table)
    np.testing.assert_array_equal(again.transform(table), rows)
    a, b = tr.inverse(rows), again.inverse(rows)
    for name in table.names:
        np.testing.assert_array_equal(a[name], b[name])
    assert again.layout == tr.layout and again.state_dict() == state
    # TableData: the spec carries the state through config.json and back
    data = TableData.from_table(table, tr)
    spec = DataSpec.from_json(json.loads(json.dumps(data.spec.to_json())))
    assert spec == data.spec and spec.kind == "table" and spec.shape == (tr.dim,)
    assert transformer_from_spec(spec).state_dict() == state
    assert "table_state" not in DataSpec("points", (2,)).to_json()  # other data's JSON is unchanged


def test_table_data_feeds_the_loader_and_decodes(tmp_path):
    table = _physics_table(100)
    data = TableData.from_table(table, continuous="vgm", seed=0)
    assert len(data) == 100 and data.x.dtype == torch.float32 and data.spec.kind == "table"
    loader = Loader(data, batch_size=16, seed=0)
    batch = loader.next_batch()
    assert batch.x.shape == (16, data.spec.shape[0]) and batch.y is None
    decoded = data.decode(batch.x)
    assert decoded.names == table.names and len(decoded) == 16
    with pytest.raises(ValueError, match="not images"):
        Loader(data, 16, flip=True)
    # a generator's raw output through the layout's activations decodes to valid rows
    raw = torch.randn(32, data.spec.shape[0], generator=torch.Generator().manual_seed(0)) * 5
    act = apply_activations(raw, data.layout, gumbel_tau=0.2, hard=True)
    for blk in OutputLayout.from_json(data.layout.to_json()).blocks:
        part = act[:, blk.start : blk.stop]
        if blk.activation == "softmax":
            torch.testing.assert_close(part.sum(1), torch.ones(32))
        elif blk.activation == "tanh":
            assert part.abs().max() <= 1
    assert len(data.decode(act)) == 32
    # load_data reads a table file by its suffix
    path = tmp_path / "ev.csv"
    write_table(table, path)
    loaded = load_data(str(path))
    assert isinstance(loaded, TableData) and loaded.spec.kind == "table"
    with pytest.raises(ValueError, match="is a table"):
        load_data(str(path), size=(8, 8))


def test_gumbel_noise_follows_the_gumbel_max_law():
    """The hard Gumbel-softmax draw picks category j with probability softmax(logits)_j (the Gumbel-max trick),
    which holds only if the noise is Gumbel(0, 1); here for one block of 3 at p = (0.5, 0.3, 0.2), 20,000 rows."""
    layout = OutputLayout((Block("c", 0, 3, "softmax", "mode"),))
    p = torch.tensor([0.5, 0.3, 0.2])
    n = 20_000
    raw = p.log().expand(n, 3).contiguous()
    hard = apply_activations(raw, layout, gumbel_tau=0.2, hard=True, generator=torch.Generator().manual_seed(0))
    freq = hard.sum(0) / n
    se = (p * (1 - p) / n).sqrt()
    assert ((freq - p).abs() <= 4 * se).all(), (freq, p)
    # the soft draws (other noise: another seed) at a low temperature average to the same probabilities
    soft = apply_activations(raw, layout, gumbel_tau=0.05, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(soft.mean(0), p, atol=0.02, rtol=0)


def test_apply_activations_batched_equals_block_by_block():
    """The batched activations (one softmax per block width) give what each block's own tanh / softmax gives,
    values and gradients, with blocks of several widths interleaved with linear and tanh outputs; the Gumbel
    path's blocks stay probability vectors and its hard path one-hots."""
    blocks, at = [], 0
    for i, (width, act) in enumerate([(1, "tanh"), (3, "softmax"), (1, "linear"), (5, "softmax"), (1, "tanh"),
                                      (3, "softmax"), (1, "softmax"), (2, "linear")]):  # (1, softmax): a one-mode column
        blocks.append(Block(f"c{i}", at, at + width, act, "mode" if act == "softmax" else "value"))
        at += width
    layout = OutputLayout(tuple(blocks))
    raw = (torch.randn(7, layout.dim, generator=torch.Generator().manual_seed(0)) * 3).requires_grad_(True)
    got = apply_activations(raw, layout)
    want = torch.cat([torch.tanh(raw[:, b.start:b.stop]) if b.activation == "tanh" else
                      torch.softmax(raw[:, b.start:b.stop], 1) if b.activation == "softmax" else raw[:, b.start:b.stop]
                      for b in blocks], 1)
    torch.testing.assert_close(got, want)
    w = torch.randn(7, layout.dim, generator=torch.Generator().manual_seed(1))
    g_got, = torch.autograd.grad((got * w).sum(), raw)
    g_want, = torch.autograd.grad((want * w).sum(), raw)
    torch.testing.assert_close(g_got, g_want)
    soft = apply_activations(raw, layout, gumbel_tau=0.2, generator=torch.Generator().manual_seed(2))
    hard = apply_activations(raw, layout, gumbel_tau=0.2, hard=True, generator=torch.Generator().manual_seed(2))
    for b in blocks:
        if b.activation == "softmax":
            torch.testing.assert_close(soft[:, b.start:b.stop].sum(1), torch.ones(7))
            if b.width > 1:  # the noise is there (a one-wide block's softmax is 1 whatever the noise)
                assert not torch.allclose(soft[:, b.start:b.stop], want[:, b.start:b.stop])
            torch.testing.assert_close(hard[:, b.start:b.stop].detach(),  # the same draw, made one-hot
                                       torch.nn.functional.one_hot(soft[:, b.start:b.stop].argmax(1), b.width).float())
        else:
            torch.testing.assert_close(soft[:, b.start:b.stop], want[:, b.start:b.stop])
    # straight-through: the hard one-hots pass back the soft draw's gradient
    g_hard, = torch.autograd.grad((hard * w).sum(), raw)
    g_soft, = torch.autograd.grad((soft * w).sum(), raw)
    torch.testing.assert_close(g_hard, g_soft)
    # sampling under inference mode first leaves nothing behind that breaks a later training call
    with torch.inference_mode():
        apply_activations(torch.randn(3, layout.dim), layout)
    g_again, = torch.autograd.grad((apply_activations(raw, layout) * w).sum(), raw)
    torch.testing.assert_close(g_again, g_want)
    # a bf16 generator output (autocast) comes back bf16, close to the fp32 result
    half = apply_activations(raw.detach().bfloat16(), layout)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), want.detach(), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gumbel_softmax_in_half_precision_stays_finite(dtype):
    """A half-precision generator output (autocast) gets Gumbel noise drawn in float32 and cast back: fp16 would
    round the 1e-20 floor of the uniforms to 0 (infinite noise, NaN softmax); the draws stay probability vectors."""
    layout = OutputLayout((Block("a", 0, 3, "softmax", "mode"), Block("b", 3, 8, "softmax", "mode")))
    raw = torch.randn(4000, layout.dim, generator=torch.Generator().manual_seed(0)).to(dtype)
    soft = apply_activations(raw, layout, gumbel_tau=0.2, generator=torch.Generator().manual_seed(1))
    assert soft.dtype == dtype and torch.isfinite(soft).all()
    torch.testing.assert_close(soft[:, :3].float().sum(1), torch.ones(4000), atol=2e-2, rtol=0)
    torch.testing.assert_close(soft[:, 3:].float().sum(1), torch.ones(4000), atol=2e-2, rtol=0)
