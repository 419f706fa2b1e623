"""Built-in tables, table loading from a run config, streamed table writing, the table figure, and
`ganforge data inspect` on tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ganforge.cli.main import main
from ganforge.data import load_data
from ganforge.data.eprime import DEFAULT_BEAM_ENERGY, EVENT_FEATURES, eprime_events, event_features
from ganforge.data.table import Table, read_table, write_table_chunks
from ganforge.data.table_builtins import TABLE_BUILTINS
from ganforge.data.table_plots import save_table_figure


def test_eprime_builtin_is_the_momenta_with_fatgans_pz_transform():
    data = load_data("builtin:eprime", rows=3000, seed=5)
    assert data.table.names == ["px", "py", "pz"] and len(data) == 3000
    events = eprime_events(3000, seed=5)
    for k in ("px", "py", "pz"):
        np.testing.assert_array_equal(data.table[k], events[k])
    names = {col: t.state()["name"] for col, _, t in data.transformer.columns}
    assert names == {"px": "standard", "py": "standard", "pz": "log_distance"}
    # any encoded value, however large, decodes to pz at most the beam energy (float64 rounds E_b - 1e-300 to E_b)
    rows = torch.tensor([[0.0, 0.0, -1e6], [0.0, 0.0, 1e6], [3.0, -3.0, -40.0]])
    assert (data.decode(rows)["pz"] <= DEFAULT_BEAM_ENERGY).all()
    # a user transform replaces the built-in's default column by column
    plain = load_data("builtin:eprime", rows=500, transforms={"pz": "standard"})
    assert {col: t.state()["name"] for col, _, t in plain.transformer.columns}["pz"] == "standard"


def test_event_features_invert_the_generator_kinematics():
    e = eprime_events(2000, seed=1)
    f = event_features(e["px"], e["py"], e["pz"])
    assert set(EVENT_FEATURES) <= set(f)
    for k in ("E_prime", "theta", "phi", "Q2", "x_B", "W"):
        np.testing.assert_allclose(f[k], e[k], rtol=1e-9, atol=1e-9)
    # Q2 = 4 E_b E' sin^2(theta / 2) exactly
    np.testing.assert_allclose(f["Q2"], 4 * DEFAULT_BEAM_ENERGY * f["E_prime"] * np.sin(f["theta"] / 2) ** 2,
                               rtol=1e-9)


@pytest.mark.parametrize("name", [n for n in TABLE_BUILTINS if not n.startswith("eprime")])
def test_real_builtin_tables_load_offline_with_their_label(name):
    from ganforge.data.table_builtins import LABELS

    data = load_data(f"builtin:{name}")
    assert data.spec.kind == "table" and data.table.label == LABELS.get(name, "target")
    assert len(data) > 100 and data.spec.shape[0] >= len(data.table.names)
    back = data.decode(data.x)
    for col in data.table.names:
        if data.table.info[col].kind == "continuous":
            np.testing.assert_allclose(back[col], data.table[col], rtol=1e-5, atol=1e-5 * np.abs(data.table[col]).max())
        else:
            assert list(back[col]) == list(data.table[col])


def test_table_options_are_refused_for_images_and_rows_for_files(tmp_path):
    with pytest.raises(ValueError, match="describes the columns of a table"):
        load_data("builtin:ring8", transforms={"x": "standard"})
    csv = tmp_path / "t.csv"
    pd.DataFrame({"a": np.arange(10.0), "b": list("xyxyxyxyxy")}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="drop --rows"):
        load_data(str(csv), rows=5)
    with pytest.raises(ValueError, match="--size and --channels apply to images"):
        load_data("builtin:eprime", size=(8, 8))


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_streamed_writing_equals_one_write_and_keeps_types(tmp_path, suffix):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=1000), "n": rng.integers(0, 9, 1000),
                       "c": rng.choice(["red", "green", "blue"], 1000), "b": rng.random(1000) > 0.5})
    table = Table.from_pandas(df)
    chunks = [table.take(np.arange(i, min(i + 300, 1000))) for i in range(0, 1000, 300)]
    out = tmp_path / f"rows{suffix}"
    assert write_table_chunks(iter(chunks), out) == 1000
    back = read_table(out)
    assert back.names == table.names and len(back) == 1000
    np.testing.assert_allclose(back["x"], table["x"], rtol=1e-15)
    np.testing.assert_array_equal(back["n"], table["n"])
    assert list(back["c"]) == list(table["c"]) and list(back["b"]) == list(table["b"])
    assert {i.kind for i in back.info.values()} == {i.kind for i in table.info.values()}


def test_a_failed_stream_leaves_the_earlier_file(tmp_path):
    out = tmp_path / "rows.parquet"
    table = Table.from_pandas(pd.DataFrame({"x": np.arange(5.0)}))
    write_table_chunks(iter([table]), out)

    def broken():
        yield table
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        write_table_chunks(broken(), out)
    assert len(read_table(out)) == 5


def test_table_figure_and_inspect(tmp_path, capsys):
    data = load_data("builtin:wine")
    fake = data.decode(data.x + 0.2 * torch.randn_like(data.x))
    png = save_table_figure(data.table, fake, tmp_path / "wine.png")
    assert png.stat().st_size > 10_000
    csv = tmp_path / "t.csv"
    pd.DataFrame({"age": [31, 45, None, 52], "city": ["a", "b", "a", None]}).to_csv(csv, index=False)
    assert main(["data", "inspect", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "age" in out and "integer" in out and "1 missing" in out and "encoded" in out


def test_a_batch_larger_than_a_table_runs_through_epochs_and_resumes_exactly():
    from ganforge.data import Loader

    data = load_data("builtin:wine")  # 178 rows
    loader = Loader(data, 500, seed=3)
    assert loader.wraps and loader.batch_size == 500
    first = [loader.next_batch().x for _ in range(3)]
    assert all(b.shape == (500, data.spec.shape[0]) for b in first)
    # every row appears once per epoch: the first 178 rows of the stream are a permutation of the table
    stream = torch.cat(first)
    rows = {tuple(r.tolist()) for r in stream[:178]}
    assert len(rows) == len({tuple(r.tolist()) for r in data.x})
    # resume from the state after one batch gives the same next batches
    again = Loader(data, 500, seed=3)
    again.next_batch()
    state = again.state_dict()
    resumed = Loader(data, 500, seed=3)
    resumed.load_state_dict(state)
    torch.testing.assert_close(resumed.next_batch().x, first[1], rtol=0, atol=0)
    # images (and points) keep the old rule: the batch is cut to the data
    assert Loader(load_data("builtin:ring8"), 10**6).batch_size == len(load_data("builtin:ring8"))


def test_eprime_elastic_builtin_holds_the_ridge_near_the_beam_energy():
    """builtin:eprime-elastic: the momenta of the inclusive events with the elastic peak, same bounds and pz
    transform as builtin:eprime, and events within 0.6 GeV of E_b (the inelastic ones stop at 8.94 GeV)."""
    from ganforge.data.table_builtins import load_table_builtin

    table, transforms = load_table_builtin("eprime-elastic", rows=5000, seed=1)
    plain, plain_transforms = load_table_builtin("eprime", rows=5000, seed=1)
    assert table.names == plain.names == ["px", "py", "pz"] and transforms == plain_transforms
    assert "builtin:eprime-elastic" in table.source
    p = np.sqrt(sum(np.asarray(table[c], np.float64) ** 2 for c in ("px", "py", "pz")))
    assert p.max() <= DEFAULT_BEAM_ENERGY and (p > DEFAULT_BEAM_ENERGY - 0.6).any()
    q = np.sqrt(sum(np.asarray(plain[c], np.float64) ** 2 for c in ("px", "py", "pz")))
    assert q.max() < 8.95
