"""METRICS: every metric ganforge measures, by the name `ganforge evaluate --metrics` takes.

One entry says how to read a metric (higher_is_better, description), what it needs (NEEDS keys: an
extractor's features, a classifier, the images, a 2-D mixture, paired targets, ...), what it is measured
on (KINDS: image or points generators, image-to-image runs) and how: `compute` on two sample sets
(evaluate.compute dispatches through it), or evaluate_translation for the image-to-image-only metrics.
The library's streaming Metric classes are reached from here too (`METRICS["fid"].metric is FID`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from ..data.builtin import MIXTURES
from .base import Metric, SampleSet
from .fid import FID, fid
from .inception_score import InceptionScore, inception_score
from .kid import KID, kid
from .memorisation import Reference, leave_one_out, memorisation
from .mixtures import mode_coverage
from .mmd import MMD, mmd
from .prdc import DensityCoverage, PrecisionRecall, density_coverage, prdc, precision_recall
from .swd import SlicedWasserstein, sliced_wasserstein

# what a metric is measured on -> how an error message names it
KINDS = {"image": "image data", "audio": "audio clips", "points": "points data",
         "translation": "an image-to-image model"}

# what a metric can need -> what that means (a metric that cannot have it fails or is left out, saying why)
NEEDS = {
    "features": "features of the real and the generated set (the extractor's; for points the raw rows)",
    "classifier": "class logits from a classifier extractor (--features fashion or inception)",
    "images": "the images of both sets, not only their features",
    "mixture": "a built-in 2-D mixture with known modes (builtin:ring8 or builtin:grid25)",
    "paired": "paired data: the true target b of every input a",
    "domain_classes": "target domains named after the classifier's classes (e.g. 'ankle boot', stargan domains)",
    "class_labels": "inputs labelled with the classifier's classes, translated to a domain that is not one",
    "round_trip": "a way back: a two-way family (BtoA) or stargan",
    "training_set": "the run's training images (a --ckpt run's own data; elsewhere the real set stands in, "
                    "leave-one-out)",
}


@dataclass
class MetricInputs:
    """What evaluate.compute() hands every metric besides the two sample sets."""

    names: tuple[str, ...] = ()      # every metric of this call: pr and dc then share one set of k-NN distances
    seed: int = 0
    n_classes: int = 0
    mixture: str | None = None       # the data's name: a key of MIXTURES for 2-D mixtures
    memorisation: Reference | None = None  # training + held-out images for 'memorisation' (else: the real set)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> JSON-able extras for provenance
    _prdc: dict[str, float] | None = field(default=None, repr=False)

    def shared_prdc(self, real: SampleSet, fake: SampleSet) -> dict[str, float] | None:
        """precision, recall, density and coverage from one k-NN pass when both pr and dc are asked, else None."""
        if not {"pr", "dc"} <= set(self.names):
            return None
        if self._prdc is None:
            self._prdc = prdc(real.features, fake.features)
        return self._prdc


ComputeFn = Callable[[SampleSet, SampleSet, MetricInputs], dict[str, float]]


@dataclass(frozen=True)
class MetricInfo:
    """One metric: how to read it, what it needs, what it is measured on and how to compute it."""

    name: str
    higher_is_better: bool
    needs: tuple[str, ...]                # NEEDS keys
    description: str                      # one line, citing the paper; kept in each result's provenance
    kinds: tuple[str, ...]                # KINDS keys: what it is measured on
    compute: ComputeFn | None = None      # (real, fake, inputs) -> values; None: evaluate_translation measures it
    metric: type[Metric] | Callable[..., Any] | None = None  # the library's streaming class / whole-set function
    directions: dict[str, str] = field(default_factory=dict)  # value -> "lower"/"higher": the values that rank runs
    logged: tuple[str, ...] = ()          # the values headline() keeps (all when empty)
    on_translations: str = ""             # the description on image-to-image runs, where it differs

    def __post_init__(self) -> None:
        bad = [n for n in self.needs if n not in NEEDS] + [k for k in self.kinds if k not in KINDS]
        if bad or not self.needs or not self.kinds:
            raise ValueError(f"metric {self.name!r}: needs {self.needs} and kinds {self.kinds} must be non-empty and "
                             f"taken from NEEDS ({', '.join(NEEDS)}) and KINDS ({', '.join(KINDS)})")
        if self.compute is None and set(self.kinds) & {"image", "points"}:
            raise ValueError(f"metric {self.name!r} is measured on generators' samples: give it compute=")

    def describe(self, kind: str) -> str:
        """The description recorded with a result on `kind` (a KINDS key)."""
        return self.on_translations if kind == "translation" and self.on_translations else self.description


# ---- how each metric is computed on two sample sets (the real side and the generated side) -----------

def _fid(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    return {"fid": fid(real.features, fake.features)}


def _kid(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    r = kid(real.features, fake.features, subset_size=min(1000, len(real), len(fake)), seed=inputs.seed)
    return {"kid": r["mean"], "kid_std": r["std"]}


def _pr(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    both = inputs.shared_prdc(real, fake)
    return {k: both[k] for k in ("precision", "recall")} if both else precision_recall(real.features, fake.features)


def _dc(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    both = inputs.shared_prdc(real, fake)
    return {k: both[k] for k in ("density", "coverage")} if both else density_coverage(real.features, fake.features)


def _is(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    if fake.logits is None:
        raise ValueError("the 'is' metric needs a classifier extractor (inception or fashion)")
    r = inception_score(fake.logits, splits=10 if len(fake) >= 1000 else 1)
    return {"is": r["mean"], "is_std": r["std"]}


def _swd(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    if real.images is None or fake.images is None:
        raise ValueError("the 'swd' metric needs the images of both sets")
    return {k: v for k, v in sliced_wasserstein(real.images, fake.images, seed=inputs.seed).items()
            if isinstance(v, (int, float))}


def _mmd(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    return {"mmd": mmd(real.features, fake.features)}


def class_histogram_kl(real: SampleSet, fake: SampleSet, n_classes: int) -> dict[str, float]:
    """KL(real || fake) of class histograms: real from true labels (else predictions), fake from predictions."""
    if fake.logits is None:
        raise ValueError("the 'classes' metric needs a classifier extractor (e.g. --features fashion)")
    real_cls = real.labels if real.labels is not None else real.logits.argmax(1)
    k = max(n_classes, int(fake.logits.shape[1]))
    p = torch.bincount(real_cls.long(), minlength=k).double()
    q = torch.bincount(fake.logits.argmax(1), minlength=k).double()
    p, q = p / p.sum(), (q + 0.5) / (q + 0.5).sum()  # add-half smoothing: a missing class is finite but large
    out = {"kl": float((p * (p.clamp_min(1e-300) / q).log()).where(p > 0, torch.zeros(()).double()).sum())}
    out["classes_present"] = float((torch.bincount(fake.logits.argmax(1), minlength=k) > 0).sum())
    for i, v in enumerate(q.tolist()):
        out[f"fake_fraction_{i}"] = v
    return out


def _classes(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    return class_histogram_kl(real, fake, inputs.n_classes)


def _modes(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    if inputs.mixture not in MIXTURES:
        raise ValueError(f"the 'modes' metric needs a 2-D mixture (builtin:ring8 or builtin:grid25), "
                         f"not {inputs.mixture!r}")
    mix = MIXTURES[inputs.mixture]()
    r = mode_coverage(fake.features, mix.centers, mix.std)
    return {"modes_covered": float(r["modes_covered"]), "n_modes": float(r["n_modes"]),
            "high_quality_fraction": float(r["high_quality_fraction"])}


def _memorisation(real: SampleSet, fake: SampleSet, inputs: MetricInputs) -> dict[str, float]:
    ref = inputs.memorisation
    if ref is None:  # no training set given: the real set is the training set, leave-one-out
        if real.images is None:
            raise ValueError("the 'memorisation' metric needs the images of the real set (or a training Reference)")
        ref = leave_one_out(real.features, real.images, len(real), seed=inputs.seed,
                            training=f"the real set {real.name} ({len(real)} images)")
    if fake.images is None:
        raise ValueError("the 'memorisation' metric needs the generated images, not only their features")
    values, details = memorisation(fake.features, ref.pixel_rows(fake.images), ref)
    inputs.details["memorisation"] = {"n_real": details["n_heldout"], "reference": ref.training,
                                      "reference_sha256": ref.training_sha256 or real.sha256, **details}
    return values


# ---- the registry ----------------------------------------------------------------------------------------
# Order is each kind's listing order, and the order an image-to-image evaluation reports in.

METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("l1", False, ("paired",), "mean |G(a) - b| over pixels of paired test images, in [-1, 1] units",
               kinds=("translation",)),
    MetricInfo("psnr", True, ("paired",), "PSNR of G(a) against the paired target b, data range 1, mean over "
               "images (capped at 100 dB)", kinds=("translation",)),
    MetricInfo("ssim", True, ("paired",), "SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5) of G(a) "
               "against b, mean over images", kinds=("translation",)),
    MetricInfo("fid", False, ("features",), "Frechet distance between Gaussian fits of the features "
               "(Heusel et al. 2017)", kinds=("image", "audio", "translation"), compute=_fid, metric=FID,
               directions={"fid": "lower"},
               on_translations="FID of the translations against real images of the target domain (Heusel et al. 2017)"),
    MetricInfo("kid", False, ("features",), "kernel inception distance, unbiased, cubic kernel "
               "(Binkowski et al. 2018)", kinds=("image", "audio", "translation"), compute=_kid, metric=KID,
               directions={"kid": "lower"},
               on_translations="KID of the translations against real images of the target domain "
                               "(Binkowski et al. 2018)"),
    MetricInfo("pr", True, ("features",), "precision/recall of k-NN manifolds (Kynkaanniemi et al. 2019)",
               kinds=("image", "audio"), compute=_pr, metric=PrecisionRecall,
               directions={"precision": "higher", "recall": "higher"}),
    MetricInfo("dc", True, ("features",), "density/coverage (Naeem et al. 2020)",
               kinds=("image",), compute=_dc, metric=DensityCoverage,
               directions={"density": "higher", "coverage": "higher"}),
    MetricInfo("is", True, ("classifier",), "inception score, or classifier score with a classifier extractor "
               "(Salimans et al. 2016)", kinds=("image", "audio"), compute=_is, metric=InceptionScore,
               directions={"is": "higher"}),
    MetricInfo("swd", False, ("images",), "sliced Wasserstein distance on Laplacian-pyramid patches "
               "(Karras et al. 2018)", kinds=("image",), compute=_swd, metric=SlicedWasserstein,
               directions={"swd_mean": "lower"}, logged=("swd_mean",)),
    MetricInfo("mmd", False, ("features",), "Gaussian-kernel MMD^2 on features or raw rows",
               kinds=("image", "points"), compute=_mmd, metric=MMD, directions={"mmd": "lower"}),
    MetricInfo("classes", False, ("classifier",), "KL(real class histogram || fake class histogram) under the "
               "classifier", kinds=("image", "audio"), compute=_classes, metric=class_histogram_kl,
               directions={"kl": "lower", "classes_present": "higher"}, logged=("kl", "classes_present")),
    MetricInfo("memorisation", False, ("features", "images", "training_set"), "distance of each sample to its "
               "nearest training image (features and pixels) against new real images' (Meehan et al. 2020); "
               "copy_rate: samples closer than all but 1% of them in both", kinds=("image",),
               compute=_memorisation, metric=memorisation, logged=("copy_rate", "ratio")),
    MetricInfo("modes", True, ("mixture",), "mode coverage and high-quality fraction on the 2-D mixtures",
               kinds=("points",), compute=_modes, metric=mode_coverage,
               directions={"modes_covered": "higher", "high_quality_fraction": "higher"}),
    MetricInfo("domain_accuracy", True, ("classifier", "domain_classes"), "fraction of translations the "
               "classifier puts in the target domain's class", kinds=("translation",)),
    MetricInfo("class_accuracy", True, ("classifier", "class_labels"), "fraction of translations the classifier "
               "puts in the class of their input (class kept)", kinds=("translation",)),
    MetricInfo("cycle", False, ("round_trip",), "cycle-consistency L1 |F(G(x)) - x| in [-1, 1] units "
               "(Zhu et al. 2017)", kinds=("translation",)),
)}


def get_metric(name: str) -> MetricInfo:
    """METRICS[name], or a KeyError that lists the valid names."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric '{name}'; valid metrics: {', '.join(sorted(METRICS))}") from None


def metric_names(kind: str) -> list[str]:
    """The metrics measured on `kind` (a KINDS key), in registry order."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of data {kind!r}; choose from: {', '.join(KINDS)}")
    return [name for name, info in METRICS.items() if kind in info.kinds]


def parse_metrics(text: str | Sequence[str], kind: str = "image") -> list[str]:
    """'fid, KID' or ['fid', 'kid'] -> ['fid', 'kid']; a name not measured on `kind` is an error that lists
    the ones that are."""
    names = [m.strip().lower() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    valid = metric_names(kind)
    bad = [m for m in names if m not in valid]
    if bad or not names:
        raise ValueError(f"unknown metric(s) {', '.join(bad) or '(none given)'} for {KINDS[kind]}; choose from: "
                         + ", ".join(valid))
    return names


def needs_any(names: Sequence[str], need: str) -> bool:
    """Whether any of the metrics `names` needs `need` (a NEEDS key)."""
    if need not in NEEDS:
        raise ValueError(f"unknown need {need!r}; choose from: {', '.join(NEEDS)}")
    return any(need in METRICS[name].needs for name in names)
