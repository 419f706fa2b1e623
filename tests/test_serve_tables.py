"""Table models where users meet them: ONNX export (encoded rows + the transforms' state), the numpy decoder
(serve/table_rows.py) against TableTransformer.inverse, the HTTP API and the Lambda handler answering rows as
JSON or CSV, the same rows for the same seed as the Sampler (`ganforge sample`)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ganforge.artifacts import Sampler
from ganforge.artifacts.card import TABLE_DECODING, model_info
from ganforge.data.table import Table, TableData, TableTransformer
from ganforge.serve import request_core

from .test_lambda import load_app
from ganforge.serve.table_rows import decode_rows, encode_rows, iso_datetimes
from ganforge.train import build_run
from ganforge.train.callbacks import Checkpointer

from .conftest import tiny_config
from .test_lambda import api_event

TINY = {"latent_dim": 8, "generator_dims": [16, 16], "discriminator_dims": [16], "pac": 4}
FATGAN_TINY = {"hidden": 16, "depth": 2, "latent_dim": 8}
MAX_N = 8


def mixed_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Every column kind: continuous (plain, bimodal, bounded, near an upper bound), integer, categorical with
    missing values (kept as a category), boolean, datetimes zoned across a DST change and naive by day."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    colour[rng.random(n) < 0.1] = None
    return pd.DataFrame({
        "x": rng.normal(5, 2, n),
        "bi": np.where(rng.random(n) < .5, rng.normal(-3, .3, n), rng.normal(4, .5, n)),
        "share": rng.uniform(0.05, 0.95, n),
        "pz": 10.6 - rng.exponential(2, n),
        "count": rng.poisson(6, n).astype(np.int64),
        "colour": colour,
        "flag": rng.random(n) < .3,
        "when": pd.Timestamp("2024-03-20", tz="Europe/Berlin") + pd.to_timedelta(rng.integers(0, 30 * 86400, n), "s"),
        "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D"),
    })


COLUMNS = {"pz": {"transform": {"name": "log_distance", "bound": 10.6}}, "bi": {"transform": "vgm"},
           "share": {"bounds": [0, 1], "transform": "logit"}, "count": {"bounds": [0, 20]}}


def expected(table: Table) -> dict[str, list]:
    """A decoded Table's values as the API writes them, through pandas (independent of table_rows)."""
    df = table.to_pandas()
    out = {}
    for name in table.names:
        if table.info[name].kind == "datetime":
            out[name] = [ts.isoformat() for ts in df[name]]
        else:
            out[name] = table[name].tolist()
    return out


@pytest.fixture(scope="module", params=["ctgan", "fatgan"])
def run(request, tmp_path_factory):
    """A run of each table family on the mixed table (2 steps) and its Sampler."""
    family = request.param
    root = tmp_path_factory.mktemp(family)
    data = TableData.from_table(Table.from_pandas(mixed_frame(), COLUMNS))
    cfg = tiny_config(family, source="unused", steps=2, train={"batch_size": 40})
    cfg.model = dict(TINY if family == "ctgan" else FATGAN_TINY)
    build_run(cfg, root / "run", data=data, callbacks=[Checkpointer(0)]).fit()
    return SimpleNamespace(root=root, sampler=Sampler.from_checkpoint(root / "run"))


def sampler_rows(sampler, n: int, seed: int) -> dict[str, list]:
    tables = list(sampler.iter_tables(n, seed=seed))
    assert len(tables) == 1
    return expected(tables[0])


# ---- the numpy decoder ---------------------------------------------------------------------------------

@pytest.mark.parametrize("continuous", ["standard", "vgm"])
def test_decode_rows_equals_transformer_inverse(continuous):
    table = Table.from_pandas(mixed_frame(seed=1), COLUMNS)
    tr = TableTransformer(continuous=continuous)
    tr.fit(table)
    rng = np.random.default_rng(2)
    rows = rng.normal(0, 1.5, (400, tr.dim))
    rows[:5] *= 1e3  # far outside the training range: clamped, huge or underflowing values
    rows[5:10] = 0.0  # ties in every one-hot block: argmax takes the first
    state = json.loads(json.dumps(tr.state_dict()))  # through JSON, as the export and the handler see it
    got = decode_rows(state, rows)
    want = expected(tr.inverse(rows))
    assert list(got) == table.names
    for name in table.names:
        assert got[name] == want[name], name
        assert all(type(g) is type(w) for g, w in zip(got[name], want[name])), name  # int, bool, str, float, None
    assert any(v is None for v in got["colour"]) and {type(v) for v in got["flag"]} == {bool}
    assert all(0 <= v <= 20 for v in got["count"]) and all(0 <= v <= 1 for v in got["share"])
    assert all(v <= 10.6 for v in got["pz"])
    assert {s[-6:] for s in got["when"]} >= {"+01:00", "+02:00"}  # both sides of the DST change
    with pytest.raises(ValueError, match="NaN"):
        decode_rows(state, np.full((2, tr.dim), np.nan))
    with pytest.raises(ValueError, match=rf"\(N, {tr.dim}\)"):
        decode_rows(state, rows[:, :-1])


def test_iso_datetimes_match_pandas():
    ns = np.array([0, 1_500_000_000_123_000_000, 1_500_000_000_000_000_007, -86_400 * 10**9 * 365], dtype=np.int64)
    for tz in ("", "UTC", "UTC+05:30", "America/New_York"):
        s = pd.Series(ns.view("datetime64[ns]"))
        if tz:
            zone = "+05:30" if tz == "UTC+05:30" else tz
            s = s.dt.tz_localize("UTC").dt.tz_convert(zone)
        assert iso_datetimes(ns, tz) == [t.isoformat() for t in s], tz


def test_csv_and_json_encodings():
    values = {"a": [1.5, None], "b": [True, False], "c": ["x,y", None]}
    payload = json.loads(encode_rows(values, ["continuous", "boolean", "categorical"], "json", seed=3))
    assert payload == {"seed": 3, "n": 2, "columns": ["a", "b", "c"], "kinds": ["continuous", "boolean", "categorical"],
                       "rows": [[1.5, True, "x,y"], [None, False, None]]}
    text = encode_rows(values, [], "csv", seed=3).decode()
    assert text == 'a,b,c\n1.5,True,"x,y"\n,False,\n'
    with pytest.raises(ValueError, match="json or csv"):
        encode_rows(values, [], "png", seed=3)


# ---- export --------------------------------------------------------------------------------------------

def test_export_writes_encoded_rows_graph_and_the_state(run, tmp_path, capsys):
    from ganforge.artifacts.onnx import read_info
    from ganforge.cli.main import main

    import onnxruntime as ort

    sampler = run.sampler
    out = tmp_path / "m.onnx"
    assert main(["export", "--ckpt", str(run.root / "run"), "--onnx", str(out)]) == 0
    said = capsys.readouterr().out
    assert "outside" in said and "m.table.json" in said
    state = json.loads((tmp_path / "m.table.json").read_text())
    assert state == json.loads(sampler.spec.table_state)
    info = read_info(out)
    assert info["kind"] == "table" and info["output"] == "rows" and info["table"]["state"] == state
    assert info["table"]["decoding"] == TABLE_DECODING and "outside the graph" in TABLE_DECODING
    assert info["table"]["columns"] == list(mixed_frame()) and info["table"]["encoded_width"] == sampler.spec.shape[0]
    card = json.loads((tmp_path / "m.card.json").read_text())
    assert card["table"]["kinds"][:5] == ["continuous"] * 4 + ["integer"] and "state" not in card["table"]
    assert "| decoding | " in (tmp_path / "m.card.md").read_text()
    # the graph's encoded rows, decoded in numpy, are the Sampler's rows (within the export's tolerance)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["rows"]
    z = sampler.latents(6, 4).numpy()
    close(decode_rows(state, session.run(None, {"z": z})[0]), sampler_rows(sampler, 6, 4), state)


def test_site_refuses_table_models(run, tmp_path):
    from ganforge.serve.site import SiteError, build_site

    with pytest.raises(SiteError, match="table rows.*ganforge serve"):
        build_site(run.sampler, tmp_path / "site")


def close(got: dict, want: dict, state: dict) -> None:
    """Rows decoded from the ONNX graph vs eager: categories, integers and booleans equal, numbers to 1e-4 of
    their column's scale, datetimes to a second (a day for the daily column)."""
    assert list(got) == list(want)
    for c in state["columns"]:
        name, kind = c["info"]["name"], c["info"]["kind"]
        if kind == "continuous":
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-4)
        elif kind == "datetime":
            diff = pd.to_datetime(pd.Series(got[name]), utc=True) - pd.to_datetime(pd.Series(want[name]), utc=True)
            assert (diff.abs() <= pd.Timedelta(seconds=c["info"]["unit_ns"] / 1e9)).all(), name
        else:
            assert got[name] == want[name], name


# ---- the HTTP API --------------------------------------------------------------------------------------

def test_http_answers_rows_as_json_and_csv(run, tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from ganforge.serve.http import create_app

    sampler = run.sampler
    app = create_app(sampler, max_n=MAX_N, workers=1)

    async def calls():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return ([await client.get("/v1/info")]
                    + [await client.post("/v1/generate", json=b) for b in (
                        {"n": 7, "seed": 11}, {"n": 7, "seed": 11, "format": "csv"}, {"n": 7, "seed": 12},
                        {"n": 2, "truncation": 0.5}, {"n": 2, "format": "png"}, {"n": MAX_N + 1},
                        {"n": 2, "class": 1}, {"n": 2, "bogus": 1})]
                    + [await client.post("/v1/interpolate", json={"seed_a": 1, "seed_b": 2})])

    info, js, cs, other, trunc, png, many, cls, bogus, interp = asyncio.run(calls())
    assert info.json()["table"]["columns"] == list(mixed_frame()) and info.json()["max_n"] == MAX_N
    want = sampler_rows(sampler, 7, 11)
    payload = js.json()
    assert js.status_code == 200 and js.headers["content-type"] == "application/json" and js.headers["x-seed"] == "11"
    assert payload["columns"] == list(want) and payload["n"] == 7 and payload["seed"] == 11
    assert payload["kinds"] == info.json()["table"]["kinds"]
    assert {k: [r[i] for r in payload["rows"]] for i, k in enumerate(payload["columns"])} == want  # exactly
    assert other.json()["rows"] != payload["rows"]
    # `ganforge sample --seed 11` writes these rows (its CSV through pandas, datetimes in pandas' own format)
    from ganforge.cli.main import main

    assert main(["sample", "--ckpt", str(run.root / "run"), "--n", "7", "--seed", "11",
                 "--out", str(tmp_path / "rows.csv")]) == 0
    sampled = pd.read_csv(tmp_path / "rows.csv")
    assert list(sampled) == payload["columns"]
    np.testing.assert_array_equal(sampled["x"].to_numpy(), np.array(want["x"]))
    assert sampled["count"].tolist() == want["count"] and sampled["flag"].tolist() == want["flag"]
    assert [pd.Timestamp(t) for t in sampled["when"]] == [pd.Timestamp(t) for t in want["when"]]
    assert cs.status_code == 200 and cs.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(cs.text)))
    assert lines[0] == list(want) and len(lines) == 8
    back = pd.read_csv(io.StringIO(cs.text))
    np.testing.assert_array_equal(back["x"].to_numpy(), np.array(want["x"]))  # floats round-trip exactly
    assert back["count"].tolist() == want["count"] and back["flag"].tolist() == want["flag"]
    assert [None if pd.isna(v) else v for v in back["colour"]] == want["colour"]
    assert back["when"].tolist() == want["when"]
    for response, words in ((trunc, "'truncation' applies to image models"), (png, "format must be json or csv"),
                            (many, f"maximum of {MAX_N} rows"), (cls, "'class' applies to image models"),
                            (bogus, "unknown parameter 'bogus'"), (interp, "interpolation is for image")):
        assert response.status_code == 422 and words in response.json()["detail"], response.json()


# ---- the Lambda handler --------------------------------------------------------------------------------
# (load_app: tests/test_lambda.py's, which imports OUT/app.py the way Lambda does)


def test_lambda_answers_rows_as_the_sampler(run, monkeypatch):
    from ganforge.serve.lambda_package import TABLE_CODE_FILES, build_lambda

    sampler, pkg = run.sampler, run.root / "lambda"
    build_lambda(sampler, pkg, vendor=False)
    app = load_app(pkg, "lambda_app_table")
    assert app.table_rows.__name__ == "ganforge_table_rows"
    assert app.table_rows.transforms.__name__ == "ganforge_table_transforms"
    with zipfile.ZipFile(pkg / "function.zip") as zf:
        assert set(TABLE_CODE_FILES) <= set(zf.namelist())
    assert all((pkg / "function" / name).exists() for name in TABLE_CODE_FILES)
    # the handler answers rows in a process where torch, sklearn, pandas and ganforge cannot be imported
    probe = textwrap.dedent("""
        import json, sys
        for name in ("torch", "sklearn", "pandas", "ganforge", "fastapi"):
            sys.modules[name] = None
        import app
        response = app.handler(json.loads(sys.argv[1]), None)
        print(response["statusCode"], response["headers"]["content-type"])
    """)
    event = api_event("POST", "/v1/generate", json_body={"n": 3, "seed": 1, "format": "csv"})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(event)], cwd=pkg, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "text/csv"]
    assert json.loads((pkg / "model.json").read_text())["table"] == model_info(sampler)["table"]
    monkeypatch.setenv("GANFORGE_MAX_N", str(MAX_N))

    def call(method, path, **kw):
        return app.handler(api_event(method, path, **kw), None)

    post = call("POST", "/v1/generate", json_body={"n": 6, "seed": 9})
    get = call("GET", "/v1/generate", query={"n": 6, "seed": 9})
    assert post["statusCode"] == 200 and post["headers"]["x-seed"] == "9" and not post["isBase64Encoded"]
    assert post["body"] == get["body"]  # the same seed, the same rows
    payload = json.loads(post["body"])
    got = {k: [r[i] for r in payload["rows"]] for i, k in enumerate(payload["columns"])}
    close(got, sampler_rows(sampler, 6, 9), json.loads(sampler.spec.table_state))
    text = call("GET", "/v1/generate", query={"n": 6, "seed": 9, "format": "csv"})
    assert text["statusCode"] == 200 and text["headers"]["content-type"] == "text/csv" and not text["isBase64Encoded"]
    assert list(csv.reader(io.StringIO(text["body"])))[1:] == [["" if v is None else str(v) for v in r]
                                                              for r in payload["rows"]]
    for kw, status, words in (({"json_body": {"n": MAX_N + 1}}, 422, f"maximum of {MAX_N} rows"),
                              ({"query": {"truncation": "0.5"}}, 422, "'truncation' applies to image models"),
                              ({"query": {"format": "npy"}}, 422, "format must be json or csv")):
        r = call("POST" if "json_body" in kw else "GET", "/v1/generate", **kw)
        assert r["statusCode"] == status and words in json.loads(r["body"])["detail"], r["body"]
    r = call("POST", "/v1/interpolate", json_body={"seed_a": 1, "seed_b": 2})
    assert r["statusCode"] == 422 and "interpolation is for image" in json.loads(r["body"])["detail"]
    events = sorted(p.name for p in (pkg / "events").iterdir())
    assert events == ["generate-csv.json", "generate-rows.json", "generate.json", "health.json", "info.json"]
    monkeypatch.delenv("GANFORGE_MAX_N")  # the function's default
    for name in events:  # every packaged sample event works on a table model
        assert app.handler(json.loads((pkg / "events" / name).read_text()), None)["statusCode"] == 200, name


def test_request_core_reads_table_requests():
    info = {"family": "ctgan", "kind": "table"}
    args = request_core.parse_rows(request_core.from_query({"n": "3", "seed": "5", "format": "csv"}), info, 4)
    assert (args.n, args.seed, args.format) == (3, 5, "csv")
    assert request_core.parse_rows({}, info, 4).format == "json"
    with pytest.raises(request_core.RequestError, match="codes"):
        request_core.parse_rows({"codes": {"c0": 1}}, info, 4)
    image = {"family": "dcgan", "kind": "image", "conditional": False, "latent": {"noise_dim": 4, "codes": []}}
    with pytest.raises(request_core.RequestError, match="png, npy, json"):
        request_core.parse_generate({"format": "csv"}, image, 4)  # csv is for table rows only
