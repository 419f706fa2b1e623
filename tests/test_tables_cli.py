"""Tables through the CLI, as a user types it: train on a CSV or builtin:eprime, sample rows to CSV/Parquet,
evaluate; which families tables take; the recipe and family defaults a table run gets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ganforge.artifacts import Sampler
from ganforge.cli.main import main
from ganforge.data.table import read_table

FAST = ["--set", "log.sample_every=0", "--set", "log.ckpt_every=0", "--quiet"]


@pytest.fixture(scope="module")
def mixed_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"income": np.round(np.concatenate([rng.normal(30, 3, n // 2), rng.normal(80, 5, n // 2)]), 2),
                       "age": rng.integers(18, 90, n), "city": rng.choice(["oslo", "rome", "lima"], n),
                       "member": rng.random(n) > 0.3})
    path = tmp_path_factory.mktemp("csv") / "people.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ctgan_run(mixed_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "people"
    assert main(["train", "--data", str(mixed_csv), "--family", "ctgan", "--steps", "3", "--batch-size", "40",
                 "--set", "model.pac=4", "--set", "model.generator_dims=[16,16]",
                 "--set", "model.discriminator_dims=[16]", "--out", str(out), *FAST]) == 0
    return out


def test_a_csv_trains_ctgan_with_its_recipe_and_family_defaults(ctgan_run):
    saved = json.loads((ctgan_run / "config.json").read_text())
    assert saved["recipe"].startswith("table-ctgan@")
    ckpt = json.loads(next((ctgan_run / "checkpoints").glob("step_*/config.json")).read_text())
    assert ckpt["spec"]["kind"] == "table" and ckpt["spec"]["table_state"]["layout"]
    src = saved["sources"]
    assert src["train.batch_size"] == "--batch-size" and src["train.beta2"] == "family default"
    assert saved["train"]["beta2"] == 0.9


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_sampled_rows_keep_the_tables_columns_types_and_categories(ctgan_run, mixed_csv, tmp_path, suffix, capsys):
    out = tmp_path / f"rows{suffix}"
    assert main(["sample", "--ckpt", str(ctgan_run), "--n", "500", "--seed", "4", "--out", str(out)]) == 0
    assert "500 rows x 4 columns" in capsys.readouterr().out
    real, back = read_table(mixed_csv), read_table(out)
    assert back.names == real.names and len(back) == 500
    assert {n: i.kind for n, i in back.info.items()} == {n: i.kind for n, i in real.info.items()}
    assert set(back["city"]) <= {"oslo", "rome", "lima"}
    assert back["age"].dtype.kind == "i"
    # the same seed gives the same rows, whatever the chunk size
    sampler = Sampler.from_checkpoint(ctgan_run)
    a = pd.concat([t.to_pandas() for t in sampler.iter_tables(500, seed=4, chunk=500)], ignore_index=True)
    b = pd.concat([t.to_pandas() for t in sampler.iter_tables(500, seed=4, chunk=97)], ignore_index=True)
    pd.testing.assert_frame_equal(a, b)


def test_table_options_that_do_not_apply_are_refused(ctgan_run, tmp_path, capsys):
    assert main(["sample", "--ckpt", str(ctgan_run), "--n", "5", "--out", str(tmp_path / "x.png")]) == 2
    assert "must end in .csv" in capsys.readouterr().err
    assert main(["sample", "--ckpt", str(ctgan_run), "--n", "5", "--truncation", "0.5",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "--truncation apply to image and point models" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_evaluate_a_table_run(ctgan_run, tmp_path):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--ckpt", str(ctgan_run), "--n", "300", "--metrics", "w1,ks,tvd,corr,mmd",
                 "--out", str(out)]) == 0
    r = json.loads(out.read_text())["results"]
    assert {"w1/income", "ks/age", "tvd/city", "tvd/member", "mmd2", "corr_frobenius"} <= set(r)
    assert 0 <= r["ks/age"] <= 1 and 0 <= r["tvd/city"] <= 1
    assert (tmp_path / "eval.table.png").stat().st_size > 10_000


def test_events_with_fatgan_end_to_end(tmp_path):
    run = tmp_path / "ev"
    assert main(["train", "--data", "builtin:eprime", "--rows", "2000", "--family", "fatgan", "--steps", "3",
                 "--batch-size", "64", "--set", "model.hidden=16", "--set", "model.depth=2",
                 "--set", "model.latent_dim=8", "--out", str(run), *FAST]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["recipe"].startswith("eprime-fatgan@") and saved["data"]["rows"] == 2000
    rows = tmp_path / "ev.parquet"
    assert main(["sample", "--ckpt", str(run), "--n", "3000", "--out", str(rows)]) == 0
    t = read_table(rows)
    p = np.sqrt(t["px"] ** 2 + t["py"] ** 2 + t["pz"] ** 2)
    assert len(t) == 3000 and (p <= 10.6).all()
    out = tmp_path / "ev.json"
    assert main(["evaluate", "--ckpt", str(run), "--n", "500", "--metrics", "w1,validity", "--out", str(out)]) == 0
    r = json.loads(out.read_text())["results"]
    assert r["validity/energy"] == 1.0 and "w1/event/Q2" in r


def test_tables_train_table_families_only(mixed_csv, tmp_path, capsys):
    assert main(["train", "--data", str(mixed_csv), "--family", "dcgan", "--steps", "1",
                 "--out", str(tmp_path / "a"), *FAST]) == 2
    assert "is a table: dcgan does not train on tables; use --family" in capsys.readouterr().err
    assert main(["train", "--data", "builtin:ring8", "--family", "ctgan", "--steps", "1",
                 "--out", str(tmp_path / "b"), *FAST]) == 2
    assert "ctgan trains on tables" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
