"""METRICS is the one metric registry: evaluate, evaluate_translation, the callback and the CLI read it."""

import pytest
import torch

from ganforge.cli.main import main
from ganforge.data.spec import DataSpec
from ganforge.data.store import TensorData
from ganforge.metrics import evaluate, translation
from ganforge.metrics.base import Provenance, SampleSet
from ganforge.metrics.features import Extractor
from ganforge.metrics.registry import (KINDS, METRICS, NEEDS, MetricInfo, get_metric, metric_names, needs_any,
                                       parse_metrics)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _stub_extractor() -> Extractor:
    """A real Extractor on a fixed linear map: 6 features, 10 logits."""
    w = torch.randn(64, 16, generator=_gen(1))

    def run(x: torch.Tensor):
        h = torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1) @ w
        return h[:, :6], h[:, 6:]

    return Extractor("stub", run, dim=6, n_classes=10, input_size=None, channels=1, weights_hash="0" * 64)


def test_every_entry_says_how_to_read_it_what_it_needs_and_how_it_is_computed():
    for name, info in METRICS.items():
        assert isinstance(info, MetricInfo) and info.name == name
        assert isinstance(info.higher_is_better, bool)
        assert info.needs and set(info.needs) <= set(NEEDS), name
        assert info.kinds and set(info.kinds) <= set(KINDS), name
        assert isinstance(info.description, str) and len(info.description) > 10, name
        assert set(info.directions.values()) <= {"lower", "higher"}, name
        if {"image", "points"} & set(info.kinds):
            assert callable(info.compute), f"{name} is measured on sample sets but has no compute hook"
    assert {need for info in METRICS.values() for need in info.needs} == set(NEEDS)  # no unused need
    assert all(metric_names(kind) for kind in KINDS)
    with pytest.raises(ValueError, match="taken from NEEDS"):
        MetricInfo("bad", True, ("featurez",), "a typo in its needs", kinds=("image",), compute=lambda *a: {})


def test_compute_dispatches_every_sample_set_metric_through_the_registry():
    real = SampleSet("real", torch.randn(80, 6, generator=_gen(2)), torch.randn(80, 5, generator=_gen(3)),
                     torch.rand(80, 1, 32, 32, generator=_gen(4)) * 2 - 1,
                     torch.randint(0, 5, (80,), generator=_gen(5)))
    fake = SampleSet("fake", torch.randn(70, 6, generator=_gen(6)) + 0.5, torch.randn(70, 5, generator=_gen(7)),
                     torch.rand(70, 1, 32, 32, generator=_gen(8)) * 2 - 1)
    points_real = SampleSet("ring8", torch.randn(90, 2, generator=_gen(9)))
    points_fake = SampleSet("generated", torch.randn(90, 2, generator=_gen(10)))
    results = {
        **evaluate.compute(metric_names("image"), real, fake, Provenance(), n_classes=5),
        **evaluate.compute(metric_names("points"), points_real, points_fake, Provenance(), mixture="ring8"),
    }
    on_sample_sets = [name for name, info in METRICS.items() if info.compute is not None]
    assert sorted(results) == sorted(on_sample_sets)
    for name, res in results.items():
        info = METRICS[name]
        assert res.higher_is_better is info.higher_is_better
        assert res.provenance.extra["description"] == info.description
        assert set(info.directions) <= set(res.values), name  # the ranked values exist
    flat = evaluate.headline({k: results[k] for k in ("swd", "classes")})
    assert set(flat) == {"swd_mean", "kl", "classes_present"}  # the entries' `logged` values only


def test_translation_evaluation_reads_the_registry():
    x = (torch.rand(24, 1, 16, 16, generator=_gen(11)) * 255).to(torch.uint8)
    x_b = (torch.rand(24, 1, 16, 16, generator=_gen(12)) * 255).to(torch.uint8)
    spec = DataSpec("image", (1, 16, 16), 0, (), "pairs", (1, 16, 16), "paired", ("edges", "ankle boot"))
    data = TensorData(spec, x, None, source="test:pairs", x_b=x_b)
    ext = _stub_extractor()

    def translate(images, direction, domain):
        return (0.8 * images + 0.1).clamp(-1, 1)

    results = translation.evaluate_translation(translate, data, directions=("AtoB", "BtoA"), n=20, extractor=ext,
                                               classifier=ext)
    assert list(results) == [m for m in metric_names("translation") if m != "class_accuracy"]  # B is one class
    for name, res in results.items():
        assert res.higher_is_better is METRICS[name].higher_is_better
        assert res.provenance.extra["description"] == METRICS[name].describe("translation")
        needs_extractor = needs_any([name], "features") or needs_any([name], "classifier")
        assert res.provenance.extractor == ("stub" if needs_extractor else "none")
    assert "target domain" in results["fid"].provenance.extra["description"]
    with pytest.raises(ValueError, match="choose from: " + ", ".join(metric_names("translation"))):
        translation.evaluate_translation(translate, data, metrics=["fdi"])


def test_unknown_names_list_the_registry():
    with pytest.raises(KeyError) as err:
        get_metric("fdi")
    assert all(name in str(err.value) for name in METRICS)
    for kind in KINDS:
        with pytest.raises(ValueError, match=f"for {KINDS[kind]}; choose from: {', '.join(metric_names(kind))}$"):
            parse_metrics("fdi", kind)
    with pytest.raises(ValueError, match="not measured on sample sets"):
        evaluate.compute(["l1"], SampleSet("r", torch.zeros(2, 2)), SampleSet("f", torch.zeros(2, 2)), Provenance())
    with pytest.raises(ValueError, match="choose from: features"):
        needs_any(["fid"], "featurez")


def test_evaluate_help_lists_every_metric_and_need(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    for name in [*METRICS, *NEEDS]:
        assert f"\n  {name} " in out, name
    for kind in KINDS:
        assert ", ".join(metric_names(kind)) in out.replace("\n    ", " ")


def test_there_is_no_second_registry():
    from ganforge.cli import evaluate as cli_evaluate

    for module, names in ((evaluate, ("IMAGE_METRICS", "POINT_METRICS", "HIGHER_IS_BETTER", "DESCRIPTIONS")),
                          (translation, ("TRANSLATION_METRICS", "HIGHER_IS_BETTER", "DESCRIPTIONS"))):
        assert not [n for n in names if hasattr(module, n)], module.__name__
    # the ranking directions ganforge evaluate uses come from the entries: each as the metric's paper reads it
    assert cli_evaluate.DIRECTION == {
        "fid": "lower", "kid": "lower", "precision": "higher", "recall": "higher", "density": "higher",
        "coverage": "higher", "is": "higher", "swd_mean": "lower", "mmd": "lower", "kl": "lower",
        "classes_present": "higher", "modes_covered": "higher", "high_quality_fraction": "higher"}


def test_extractors_declare_name_and_is_classifier():
    ext = _stub_extractor()
    assert ext.name == "stub" and ext.is_classifier is True
    plain = Extractor("plain", lambda x: (x.flatten(1), None), dim=4, n_classes=None, input_size=None, channels=None,
                      weights_hash="0")
    assert plain.is_classifier is False
    with pytest.raises(ValueError, match="needs a classifier extractor .* not 'plain'"):
        translation.domain_accuracy(torch.zeros(2, 1, 2, 2), 0, plain)
