"""Recipes (docs/architecture.md, "Recipes"): selection, precedence and provenance; README commands; --time."""

import json
import math
import re
import shlex
from pathlib import Path

import pytest
import torch

from ganforge import recipes
from ganforge.cli import train as train_cli
from ganforge.cli.common import UsageError
from ganforge.cli.main import build_parser, main
from ganforge.config import from_dict, parse_duration, validate
from ganforge.families import get_family
from ganforge.losses import LOSSES

README = Path(__file__).resolve().parent.parent / "README.md"
FAST = ["--set", "log.sample_every=0", "--set", "log.tensorboard=false", "--quiet"]


def settings_of(argv: list[str]) -> dict:
    args = build_parser().parse_args(["train", *argv])
    return train_cli.effective_config(args)


def readme_train_commands() -> list[str]:
    """Every `ganforge train ...` command in the README's code blocks (continuation lines joined)."""
    text = README.read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("ganforge train"):
                commands.append(" ".join(line.split()))
    return commands


# -- the registry ----------------------------------------------------------------------------------------
def test_every_recipe_is_valid_for_its_family_and_settings():
    names = [r.name for r in recipes.recipes()]
    assert len(names) == len(set(names)) >= 15
    for r in recipes.recipes():
        cls = get_family(r.family)
        cls.make_config(r.settings.get("model", {}))  # unknown or mistyped model options raise here
        cfg = from_dict(r.run_settings())
        validate(cfg)
        assert all(loss == "any" or loss in LOSSES for loss in r.losses), r.name
        assert r.figure and r.budget and r.command.startswith("ganforge train"), r.name
        if r.data.startswith("builtin:"):  # a built-in recipe is measured by a bench, with a bar
            bench = Path(__file__).resolve().parent.parent / r.bench
            assert r.check.get("metric") and r.bench.startswith("bench/") and bench.is_file(), r.name


def test_a_broken_recipe_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("name: bad\nversion: 1\ndata: builtin:ring8\nfamily: gan\nsettings: {\n")
    monkeypatch.setattr(recipes, "HERE", tmp_path)
    recipes._all.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"bad\.yaml: not valid YAML"):
            recipes.recipes()
    finally:
        recipes._all.cache_clear()


# -- selection -------------------------------------------------------------------------------------------
def test_selection_by_data_family_and_loss():
    assert recipes.select("builtin:ring8", "gan", None).name == "ring8-gan"
    assert recipes.select("builtin:ring8", "gan", "minimax").name == "ring8-gan"
    assert recipes.select("builtin:ring8", "gan", "hinge").name == "ring8-gan"
    assert recipes.select("builtin:ring8", "gan", "wgan").name == "ring8-gan-wgan"   # weight clipping at 0.3
    assert recipes.select("builtin:grid25", "gan", "wgan").name == "grid25-gan-wgan"  # clipping, D input scaled
    assert recipes.select("builtin:digits", "dcgan", "wgan") is None        # no recipe tested with that loss
    assert recipes.select("builtin:grid25", "gan", "wgan-gp").name == "grid25-gan-wgangp"
    # tables (the caller says the source is one): eprime has its own; files and other built-in tables: ctgan
    assert recipes.select("builtin:eprime", None, None, table=True).name == "eprime-fatgan"
    assert recipes.select("events.csv", None, None, table=True).name == "table-ctgan"
    assert recipes.select("builtin:wine", None, None, table=True).name == "table-ctgan"
    assert recipes.select("builtin:wine", "fatgan", None, table=True) is None
    assert recipes.select("builtin:ring8", None, None).family == "gan"      # no family: the data's best recipe
    assert recipes.select("builtin:fashion-mnist", None, None).name == "fashion-mnist-dcgan"
    assert recipes.select("builtin:fashion-mnist", "acgan", None).name == "fashion-mnist-acgan"
    assert recipes.select("builtin:fmnist-pair:3,4", "cyclegan", None).name == "fmnist-pair-cyclegan"
    assert recipes.select("some/folder", "dcgan", None, n_images=300).name == "folder-dcgan-small"
    assert recipes.select("some/folder", "dcgan", None, n_images=5000).name == "folder-dcgan"
    assert recipes.select("some/folder", "cgan", None, n_images=300) is None
    assert recipes.select("builtin:clipart:transportation", None, None).name == "clipart-fastgan"  # Xeon's best (cars.py)
    assert recipes.select("builtin:clipart:animals", "stylegan", None).name == "clipart-stylegan"
    assert recipes.select("builtin:clipart:food", "dcgan", "hinge").name == "clipart-dcgan"
    assert recipes.select("some/folder", "fastgan", None, n_images=300).name == "folder-fastgan"
    assert recipes.select("some/folder", "stylegan", None, n_images=4000).name == "folder-stylegan"
    assert recipes.select("some/folder", "fastgan", None, n_images=50000) is None


def test_folder_recipes_turn_augmentation_on_below_a_few_thousand_images():
    """Small folders get discriminator augmentation from their recipe; large ones train without it."""
    def augment(n, family="dcgan"):
        return recipes.select("some/folder", family, None, n_images=n).run_settings()["train"].get("augment", "none")

    assert augment(300) == augment(1999) == "diffaugment"
    assert augment(2000) == augment(100000) == "none"
    assert augment(300, "fastgan") == "diffaugment" and augment(300, "stylegan") == "ada"


def test_every_readme_train_command_parses_and_each_recipe_command_is_in_the_readme():
    commands = readme_train_commands()
    assert len(commands) >= 10
    parser = build_parser()
    for command in commands:
        words = shlex.split(command)
        args = parser.parse_args(words[1:])  # argparse exits (SystemExit) on a flag that does not exist
        assert args.verb == "train"
    for r in recipes.recipes():
        if r.data.startswith("builtin:"):
            assert r.command in commands, f"{r.name}: its command is not in the README: {r.command}"


def test_each_recipe_command_selects_its_recipe_and_nothing_else():
    for r in recipes.recipes():
        if not r.data.startswith("builtin:"):
            continue
        data = settings_of(shlex.split(r.command)[2:])
        assert data["recipe"] == r.tag, r.command
        assert data["family"] == r.family
        for key, value in r.settings.get("train", {}).items():
            assert data["train"][key] == value and data["sources"][f"train.{key}"] == f"recipe {r.tag}"


# -- precedence and provenance ---------------------------------------------------------------------------
def test_precedence_recipe_config_flags_set(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("train: {lr_g: 5.0e-4, batch_size: 128, steps: 700}\nmodel: {hidden: 64}\n")
    data = settings_of(["--data", "builtin:ring8", "--family", "gan", "--out", str(tmp_path / "r"),
                        "--config", str(cfg_file), "--batch-size", "256", "--set", "train.steps=900"])
    tag = recipes.get("ring8-gan").tag
    assert data["recipe"] == tag
    t, src = data["train"], data["sources"]
    assert (t["lr_d"], src["train.lr_d"]) == (1e-3, f"recipe {tag}")                 # recipe
    assert (t["lr_g"], src["train.lr_g"]) == (5e-4, f"--config {cfg_file}")          # config over recipe
    assert (t["batch_size"], src["train.batch_size"]) == (256, "--batch-size")       # flag over config
    assert (t["steps"], src["train.steps"]) == (900, "--set")                        # --set over everything
    assert (data["model"]["hidden"], src["model.hidden"]) == (64, f"--config {cfg_file}")
    assert src["family"] == "--family"


def test_recipe_none_and_a_named_recipe(tmp_path):
    data = settings_of(["--data", "builtin:ring8", "--family", "gan", "--recipe", "none", "--out", str(tmp_path)])
    assert data["recipe"] == "none" and "train" not in data and not any("recipe" in v for v in data["sources"].values())
    cfg = from_dict(data)
    assert cfg.train.steps == 1000  # the default again
    data = settings_of(["--recipe", "grid25-gan", "--out", str(tmp_path)])
    assert data["family"] == "gan" and data["data"]["source"] == "builtin:grid25"
    with pytest.raises(UsageError, match="is for the 'gan' family"):
        settings_of(["--recipe", "ring8-gan", "--family", "dcgan", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        settings_of(["--recipe", "nope", "--out", str(tmp_path)])


def test_no_family_takes_the_recipes_family_and_an_unmatched_loss_takes_none(tmp_path):
    assert settings_of(["--data", "builtin:ring8", "--out", str(tmp_path)])["family"] == "gan"
    data = settings_of(["--data", "builtin:digits", "--family", "dcgan", "--loss", "wgan", "--out", str(tmp_path)])
    assert data["recipe"] == "none"


def test_config_json_records_recipe_and_sources_and_resume_keeps_them(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["train", "--data", "builtin:digits", "--family", "dcgan", "--steps", "2", "--batch-size", "8",
               "--set", "model.width=4", "--out", str(out), *FAST])
    assert rc == 0
    saved = json.loads((out / "config.json").read_text())
    tag = recipes.get("digits-dcgan").tag
    assert saved["recipe"] == tag
    assert saved["sources"]["train.steps"] == "--steps" and saved["sources"]["model.width"] == "--set"
    assert saved["sources"]["model.latent_dim"] == f"recipe {tag}" and saved["model"]["latent_dim"] == 32
    assert saved["sources"]["log.keep_last"] == "default" and saved["sources"]["model.max_width"] == "family default"
    with pytest.raises(UsageError, match="--recipe applies when a run starts: .* started with recipe digits-dcgan"):
        settings_of(["--out", str(out), "--resume", "--recipe", "none"])
    assert settings_of(["--out", str(out), "--resume", "--recipe", "digits-dcgan"])["recipe"] == tag  # the same: fine
    data = settings_of(["--out", str(out), "--resume", "--steps", "4"])
    assert data["recipe"] == tag and data["sources"]["model.latent_dim"] == f"recipe {tag}"
    assert data["train"]["steps"] == 4 and data["sources"]["train.steps"] == "--steps"


def test_the_first_line_names_the_recipe(tmp_path, capsys):
    rc = main(["train", "--data", "builtin:digits", "--family", "dcgan", "--steps", "1", "--batch-size", "8",
               "--set", "model.width=4", "--set", "log.sample_every=0", "--set", "log.tensorboard=false",
               "--set", "log.progress=false", "--out", str(tmp_path / "r")])
    assert rc == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("recipe: digits-dcgan@v1 (") and "--recipe none" in first
    assert "yours: " in first and "train.steps" in first and "model.width" in first


def test_recipes_command_lists_every_recipe(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert all(f"{r.tag}:" in out for r in recipes.recipes())
    assert main(["recipes", "ring8-gan"]) == 0
    one = capsys.readouterr().out
    assert "ganforge train --data builtin:ring8 --family gan --out runs/ring8" in one and "r1_weight: 1.0" in one
    assert main(["recipes", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(recipes.recipes())


# -- the time budget -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150),
                                          ("45", 45)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ten minutes", "10x", "1h30", "-5m"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_time_without_steps_means_no_step_limit(tmp_path):
    data = settings_of(["--data", "builtin:ring8", "--family", "gan", "--time", "10m", "--out", str(tmp_path)])
    assert data["train"]["time"] == 600 and data["train"]["steps"] == 0
    assert data["sources"]["train.steps"] == "--time (no step limit)"
    data = settings_of(["--data", "builtin:ring8", "--family", "gan", "--time", "90s", "--steps", "50",
                        "--out", str(tmp_path)])
    assert data["train"]["time"] == 90 and data["train"]["steps"] == 50


def _tiny_time_run(tmp_path, seconds: float, steps: int = 0, resume: bool = False):
    from ganforge.train import build_run

    cfg = from_dict({"family": "gan", "model": {"latent_dim": 2, "hidden": 8, "depth": 1},
                     "data": {"source": "builtin:ring8"},
                     "train": {"steps": steps, "time": seconds, "batch_size": 8, "seed": 0},
                     "log": {"progress": False, "tensorboard": False, "sample_every": 0, "ckpt_every": 0,
                             "log_every": 0}})
    return build_run(cfg, tmp_path / "run", resume=resume).fit()


def test_a_time_budget_stops_training_and_resume_continues_it(tmp_path):
    first = _tiny_time_run(tmp_path, 0.4)
    assert first.step > 0 and first.elapsed >= 0.4
    assert math.isinf(first.total_steps)
    state = json.loads(sorted((tmp_path / "run" / "checkpoints").iterdir())[-1].joinpath("state.json").read_text())
    assert state["elapsed_s"] >= 0.4
    spent = _tiny_time_run(tmp_path, 0.4, resume=True)  # the budget is spent: no further step
    assert spent.step == first.step
    more = _tiny_time_run(tmp_path, 0.8, resume=True)   # a larger budget continues from the elapsed time
    assert more.step > first.step and 0.8 <= more.elapsed < 0.8 + 5.0


def test_steps_limit_the_run_even_with_time_left(tmp_path):
    t = _tiny_time_run(tmp_path, 3600, steps=5)
    assert t.step == 5 and t.time_left > 3000


def test_lr_decay_follows_the_time_budget(tmp_path):
    from ganforge.train import build_run

    cfg = from_dict({"family": "gan", "model": {"latent_dim": 2, "hidden": 8, "depth": 1},
                     "data": {"source": "builtin:ring8"},
                     "train": {"steps": 0, "time": 100.0, "batch_size": 8, "lr_decay": "linear",
                               "lr_decay_start": 0.5},
                     "log": {"progress": False, "tensorboard": False, "sample_every": 0, "ckpt_every": 0}})
    t = build_run(cfg, tmp_path / "run")
    for spent, scale in ((0.0, 1.0), (40.0, 1.0), (75.0, 0.5), (100.0, 0.0)):
        t._elapsed0 = spent
        assert t.lr_scale(0) == pytest.approx(scale)


def test_progress_lines_show_the_time_left(tmp_path):
    import io

    from rich.console import Console

    from ganforge.train import build_run
    from ganforge.train.progress import ProgressBar

    buf = io.StringIO()
    cfg = from_dict({"family": "gan", "model": {"latent_dim": 2, "hidden": 8, "depth": 1},
                     "data": {"source": "builtin:ring8"}, "train": {"steps": 0, "time": 0.3, "batch_size": 8},
                     "log": {"progress": False, "tensorboard": False, "sample_every": 0, "ckpt_every": 0}})
    bar = ProgressBar(Console(file=buf, force_terminal=False, width=200), plain_every_s=0.0)
    build_run(cfg, tmp_path / "run", callbacks=[bar]).fit()
    text = buf.getvalue()
    assert "until the time budget is spent (0s of 0s left)" in text or "until the time budget is spent" in text
    assert re.search(r"step \d+  \d+s left", text)


# -- the acgan options the fashion-mnist-acgan recipe relies on -----------------------------------------
def test_d2d_cross_entropy_closed_form():
    from ganforge.nn import d2d_cross_entropy

    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 0])
    t, m = 0.5, 0.98
    # sample 0: on its proxy (no pull); negatives: sample 1 (cos 0 -> relu(0 - 0.02) = 0)
    l0 = -math.log(1.0 / (1.0 + math.exp(0.0)))
    # sample 1: on its proxy; negatives: samples 0 (cos 0) and 2 (cos 0.8 -> (0.8 - 0.02) / 0.5)
    l1 = -math.log(1.0 / (1.0 + 1.0 + math.exp(0.78 / t)))
    # sample 2: cos to its proxy 0.6 -> pull (0.98 - 0.6) / 0.5; negative: sample 1 (cos 0.8)
    p2 = (m - 0.6) / t
    l2 = -math.log(math.exp(-p2) / (math.exp(-p2) + math.exp(0.78 / t)))
    got = d2d_cross_entropy(e, proxies, y, temperature=t, margin=m)
    assert got.item() == pytest.approx((l0 + l1 + l2) / 3, rel=1e-5)


def test_acgan_twin_head_and_its_signs():
    from ganforge.data.spec import Batch
    from ganforge.families import build_family
    from ganforge.data import load_builtin

    data = load_builtin("digits")
    fam = build_family("acgan", {"twin": True, "width": 4, "latent_dim": 4}, data.spec)
    k = data.spec.n_classes
    _, heads = fam.D(data.x[:3].float() / 127.5 - 1)
    assert heads.shape == (3, 2 * k)  # the classifier's K logits, then the twin's
    batch = Batch(x=data.x[:16].float() / 127.5 - 1, y=data.y[:16])
    out_d = fam.loss("d", batch)
    out_g = fam.loss("g", batch)
    assert "d/twin" in out_d.logs and "g/twin" in out_g.logs
    # G's loss is its adversarial term + CE(classifier) - CE(twin): the twin's cross-entropy lowers it
    g = out_g.logs
    assert out_g.loss.item() == pytest.approx((g["g/loss"] + g["g/cls"] - g["g/twin"]).item(), rel=1e-5)
    assert out_d.loss.item() == pytest.approx((out_d.logs["d/adv"] + out_d.logs["d/cls"] + out_d.logs["d/twin"]).item(),
                                              rel=1e-5)
    with pytest.raises(ValueError, match="twin"):
        build_family("acgan", {"twin": True, "aux_on_fakes": True}, data.spec)
    with pytest.raises(ValueError, match="aux_loss"):
        build_family("acgan", {"aux_loss": "focal"}, data.spec)


def test_the_readme_recipe_list_is_generated_from_the_recipes():
    import subprocess
    import sys

    script = README.parent / "scripts" / "readme_recipes.py"
    r = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("options", [{"shared_trunk": False}, {"d_conditional": True}, {"aux_loss": "d2d"},
                                     {"d_conditional": True, "twin": True}])
def test_acgan_discriminator_layouts(options):
    from ganforge.data import load_builtin
    from ganforge.data.spec import Batch
    from ganforge.families import build_family

    data = load_builtin("digits")
    fam = build_family("acgan", {"width": 4, "latent_dim": 4, **options}, data.spec)
    batch = Batch(x=data.x[:16].float() / 127.5 - 1, y=data.y[:16])
    out = fam.loss("d", batch)
    out.loss.backward()
    # the class term reaches the classifier; with a trunk of its own, the adversarial trunk gets none of it
    grads = {n: p.grad for n, p in fam.D.named_parameters()}
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith("classifier"))
    if not options.get("shared_trunk", True) or options.get("d_conditional"):
        fam.D.zero_grad(set_to_none=True)
        cls = fam.loss("d", batch).logs["d/cls"]
        assert cls.requires_grad is False  # a logged value
        adv_only = fam.critic(batch.x, batch.y).sum()
        adv_only.backward()
        trunk = "cls_base."
        assert all(p.grad is None or p.grad.abs().sum() == 0 for n, p in fam.D.named_parameters() if n.startswith(trunk))


@pytest.mark.parametrize("options", [{}, {"aux_loss": "d2d"}, {"twin": True}, {"d_conditional": True}])
def test_acgan_generator_is_cgans(options):
    """acgan's G is cgan's for the same settings: no acgan option may change a field cgan's G reads (a d2d
    embedding size once shared the name of G's label embedding, which then grew from 50 to 128 dims and made
    G draw one image per class)."""
    import dataclasses

    from ganforge.data import load_builtin
    from ganforge.families import build_family
    from ganforge.families.acgan import ACGANConfig
    from ganforge.families.cgan import CGANConfig

    shared = {f.name: f.default for f in dataclasses.fields(CGANConfig)}
    for f in dataclasses.fields(ACGANConfig):
        if f.name in shared:
            assert f.default == shared[f.name], f"acgan changes cgan's default for model.{f.name}"
    data = load_builtin("digits")
    a = build_family("acgan", {"width": 4, "latent_dim": 4, **options}, data.spec)
    c = build_family("cgan", {"width": 4, "latent_dim": 4}, data.spec)
    assert {k: v.shape for k, v in a.G.state_dict().items()} == {k: v.shape for k, v in c.G.state_dict().items()}


def test_acgan_class_weight_warmup_ramps_gs_term_only():
    from ganforge.data import load_builtin
    from ganforge.data.spec import Batch
    from ganforge.families import build_family
    from ganforge.families.phases import StepContext

    data = load_builtin("digits")
    fam = build_family("acgan", {"width": 4, "latent_dim": 4, "aux_warmup": 100, "aux_weight": 2.0}, data.spec)
    assert [fam.g_aux_ramp(s) for s in (0, 25, 100, 1000, None)] == [0.0, 0.25, 1.0, 1.0, 1.0]
    batch = Batch(x=data.x[:16].float() / 127.5 - 1, y=data.y[:16])
    for step, frac in ((0, 0.0), (50, 0.5), (200, 1.0)):
        out = fam.loss("g", batch, StepContext(step, ("g",)))
        expect = out.logs["g/loss"] + 2.0 * frac * out.logs["g/cls"]
        assert out.loss.item() == pytest.approx(expect.item(), rel=1e-5)
        d = fam.loss("d", batch, StepContext(step, ("d",)))  # D's classifier learns at full weight from step 0
        assert d.loss.item() == pytest.approx((d.logs["d/adv"] + 2.0 * d.logs["d/cls"]).item(), rel=1e-5)
    with pytest.raises(ValueError, match="aux_warmup"):
        build_family("acgan", {"aux_warmup": -1}, data.spec)


def test_no_recipe_for_a_loss_names_the_tested_losses(tmp_path, capsys):
    # digits x dcgan has a recipe tested with ns/minimax/lsgan/hinge, none for weight-clipped wgan
    from ganforge.cli.main import main as cli_main

    assert cli_main(["train", "--data", "builtin:digits", "--family", "dcgan", "--loss", "wgan", "--steps", "1",
                     "--batch-size", "8", "--set", "model.width=4", "--set", "log.sample_every=0",
                     "--set", "log.tensorboard=false", "--out", str(tmp_path / "r")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("recipe: none")
    tested = first.split("--loss ")[1].split(", not ")[0].split(", ")
    assert "ns" in tested and "hinge" in tested and "wgan" not in tested
    assert first.endswith("not wgan")


def test_augment_flag_over_a_recipe_with_another_augmentations_policy_takes_its_own_default(tmp_path):
    """clipart-dcgan (like folder-dcgan-small) sets DiffAugment's policy "color,translation"; `--augment ada` on top
    of it used to stop with "train.augment_policy for ada takes ... blit, geom, color"."""
    from ganforge.nn.augment import Augmenter

    base = ["--data", "builtin:clipart:transportation", "--family", "dcgan", "--out", str(tmp_path / "r")]
    ada = settings_of([*base, "--augment", "ada"])
    assert ada["recipe"].startswith("clipart-dcgan")
    assert ada["train"]["augment"] == "ada" and ada["train"]["augment_policy"] == ""
    assert "does not apply" in ada["sources"]["train.augment_policy"]
    assert Augmenter("ada", ada["train"]["augment_policy"]).kind == "ada"  # a policy ADA accepts: all of its operations
    own = settings_of([*base, "--augment", "ada", "--set", "train.augment_policy=geom"])
    assert own["train"]["augment_policy"] == "geom"  # a policy the user gives is theirs
    same = settings_of([*base, "--augment", "diffaugment"])
    assert same["train"]["augment_policy"] == "color,translation"  # the recipe's own augmentation keeps its policy


def _bench_module(monkeypatch, name: str):
    """bench/NAME.py, loaded with bench/ on the path (its own imports: precision_auto, recipes) for this test only."""
    import importlib.util

    bench = Path(__file__).resolve().parent.parent / "bench"
    monkeypatch.syspath_prepend(str(bench))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", bench / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bench_recipes(monkeypatch):
    return _bench_module(monkeypatch, "recipes")


@pytest.mark.parametrize("train_s, wall, time_setting, budget, ok", [
    (360.1, 364.5, 360, "6 CPU minutes", True),    # one step and the end callbacks past train.time: kept to it
    (362.0, 366.0, 360, "6 CPU minutes", False),   # 2 s past a 360-s budget of 0.03-s steps: did not
    (360.1, 364.5, 400, "6 CPU minutes", False),   # train.time itself over the stated budget
    (None, 364.5, 0, "6 CPU minutes", False),      # a step-count recipe: the wall time decides
    (None, 300.0, 0, "6 CPU minutes", True),
])
def test_bench_time_verdict_judges_a_time_budget_on_training_time(monkeypatch, tmp_path, train_s, wall, time_setting,
                                                                   budget, ok):
    """bench/recipes.py: a recipe that trains for a set time is judged on train.time vs its budget and the
    checkpoint's training time vs train.time (start-up and the final metric are overhead_s); others on wall time."""
    import types

    import ganforge.checkpoint as ckpt

    mod = _bench_recipes(monkeypatch)
    recipe = types.SimpleNamespace(budget=budget, settings={"train": {"time": time_setting}})
    monkeypatch.setattr(ckpt, "latest_checkpoint", lambda run, optim=True: run / "step_00012000")
    monkeypatch.setattr(ckpt, "read_checkpoint",
                        lambda path, with_optim=True: {"state": {"elapsed_s": train_s, "step": 12000}})
    out = mod.time_verdict(recipe, tmp_path, wall)
    assert out["pass_time"] is ok
    assert out["wall_s"] == pytest.approx(wall)
    if time_setting:
        assert out["overhead_s"] == pytest.approx(wall - train_s, abs=0.05)
    else:
        assert "train_s" not in out and out["time_rule"] == "wall_s <= budget"


@pytest.mark.parametrize("isa, label, slug", [
    ("AVX512", "AMD EPYC", "amd-epyc"),              # the machines every earlier row ran on keep their label
    ("AVX2", "AMD EPYC (AVX2)", "amd-epyc-avx2"),    # same model name, an older generation: rows of its own
])
def test_bench_cpu_label_tells_apart_machines_that_share_a_model_name(monkeypatch, isa, label, slug):
    """bench results are kept per CPU label (a rerun replaces only its own machine's rows), so two machines sold
    under one model name but 3x apart in speed must not share one."""
    import torch

    _bench_recipes(monkeypatch)  # puts bench/ on the path for precision_auto
    import precision_auto

    monkeypatch.setattr(precision_auto.platform, "processor", lambda: "AMD EPYC")
    monkeypatch.setattr(precision_auto.Path, "read_text", lambda self, *a, **k: "model name\t: AMD EPYC\nflags\t: fpu\n")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: isa)
    assert precision_auto.cpu_name() == label
    assert precision_auto.cpu_slug() == slug


def _bench_cars(monkeypatch):
    return _bench_module(monkeypatch, "cars")


@pytest.mark.parametrize("time_arg, seconds", [(None, 1200), ("20m", 1200), ("30s", 30), ("20s", 20), ("1h", 3600),
                                               ("90s", 90)])
def test_bench_cars_budget_label_is_the_one_its_rows_store(monkeypatch, time_arg, seconds):
    """bench/cars.py replaces this CPU's rows of a budget by the label one_run stores from the run's config
    (train.time in minutes); --time 20s once left the stored "0.333333m" rows in place beside the new ones."""
    mod = _bench_cars(monkeypatch)
    assert mod.budget_label(time_arg) == f"{seconds / 60:g}m"


def test_bench_cars_verdict_compares_means_over_the_seeds_each_family_shares_with_dcgan(monkeypatch):
    mod = _bench_cars(monkeypatch)
    cpu = "AMD EPYC"
    rows = [{"family": "dcgan", "budget": "20m", "cpu": cpu, "seed": s, "kid": k} for s, k in enumerate([0.4, 0.2, 0.3])]
    rows += [{"family": "fastgan", "budget": "20m", "cpu": cpu, "seed": s, "kid": k} for s, k in enumerate([0.1, 0.2])]
    rows += [{"family": "stylegan", "budget": "20m", "cpu": cpu, "kid": 0.3}]  # no "seed": seed 0
    rows += [{"family": "fastgan", "budget": "20m", "cpu": "Intel Xeon", "seed": 2, "kid": 0.01},  # another CPU
             {"family": "fastgan", "budget": "5m", "cpu": cpu, "seed": 2, "kid": 0.01}]            # another budget
    v = mod.verdict(rows, "20m", cpu)
    fast, style = v["families"]["fastgan"], v["families"]["stylegan"]
    assert fast["seeds"] == [0, 1] and style["seeds"] == [0]
    assert fast["ratio"] == pytest.approx(0.15 / 0.3, abs=1e-3)
    assert style["ratio"] == pytest.approx(0.3 / 0.4, abs=1e-3)
    assert fast["per_seed_ratio"] == pytest.approx([0.25, 1.0])
    assert v["best_new"] == "fastgan" and v["pass"] is True  # 0.5: the bar holds at equality
    assert mod.verdict([r for r in rows if r["family"] != "dcgan"], "20m", cpu) is None
