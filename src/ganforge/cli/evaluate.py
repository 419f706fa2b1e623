"""`ganforge evaluate`."""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from pathlib import Path

from ..metrics.registry import KINDS, METRICS, NEEDS, metric_names, needs_any, parse_metrics
from .common import HelpFormatter, UsageError

DESCRIPTION = """\
Measure a trained generator (--ckpt) against real data, or compare two image folders (--real/--fake).

Features (--features): fashion (the shipped Fashion-MNIST classifier), clipart (the shipped classifier of
openclipart's categories: RGB drawings on white, shapes and flat colours; not photographs or faces),
inception (the standard FID Inception-v3; weights from --inception-weights or downloaded once with a
checksum), speech (the shipped spoken-digit classifier, for audio clips: the default there), or a path to your own TorchScript (.pt) or ONNX (.onnx) model. Numbers from different
features are not comparable. Every number is written with its provenance: extractor and
weights hash, sample counts, seed, resize method, reference set and its hash, ganforge version.

Image-to-image runs (pix2pix, cyclegan, discogan, stargan, srgan) are measured on their data's test split
(image folders have none: their training data, with a warning); fid and kid there compare the translations
with the target domain (features: fashion for grey 28x28-sized images, else --features), and a metric
whose needs the run does not meet is left out ("not applicable here").

memorisation checks whether samples are copies of training images: each sample's distance to its nearest
training image (features and pixels) against that of new real images (the data's test split; a folder,
or builtin:digits, has none: then training images against the other training images, leave-one-out).
It runs by default on --ckpt image runs that trained on at most 5,000 images (small data, where copying
happens, and where it costs little); the closest pairs go to RUN/eval/step_N.memorisation.png and into
`ganforge report`.
"""

EPILOG = """\
examples:
  ganforge evaluate --ckpt runs/fashion --metrics fid,kid,pr,is --n 10000 --features fashion
  ganforge evaluate --ckpt runs/cars --data ./cars --metrics fid,kid --inception-weights pt_inception.pth
  ganforge evaluate --real photos/ --fake samples/ --size 64 --metrics fid,kid
  ganforge evaluate --ckpt runs/ring8 --metrics modes,mmd
  ganforge evaluate --ckpt runs/cars --metrics memorisation      # are the samples copies of ./cars?
  ganforge evaluate --ckpt runs/fashion-sgan --classifier              # test accuracy of sgan's D
  ganforge evaluate --ckpt runs/fashion-sgan --classifier --save-classifier fashion-sgan.safetensors
  ganforge evaluate --ckpt runs/edges2items                 # image-to-image: L1/PSNR/SSIM, FID/KID, ...
"""


DEFAULT_METRICS = {"image": "fid,kid,pr,dc", "audio": "fid,kid,is,classes", "points": "modes,mmd",
                   "translation": "all that apply"}
# tables (--ckpt of a table run, or --real/--fake table files): metrics/tabular.py, all by default
TABLE_METRICS = {
    "w1": "per numeric column: 1-D Wasserstein distance (w1/COL, in the column's units; w1_std/COL divided by the "
          "real std) and for event tables the same on the derived pT, p, theta, phi, Q2, x_B, W (w1/event/...)",
    "ks": "per numeric column: Kolmogorov-Smirnov statistic (largest gap between the CDFs)",
    "tvd": "per categorical column: total-variation distance between the category frequencies",
    "corr": "correlation-matrix distance (Frobenius) and similarity (1 - mean |rho_r - rho_f| / 2)",
    "mmd": "MMD^2 (multi-bandwidth Gaussian kernel) between standardised rows",
    "c2st": "classifier two-sample test: ROC AUC of a real-vs-synthetic classifier (0.5 = indistinguishable)",
    "efficacy": "machine-learning efficacy: train on synthetic vs on real, test on held-out real (label column)",
    "validity": "event tables: share of events with E' <= E_b, finite values, 0 <= x_B <= 1, W above threshold",
}
MEMORISATION_DEFAULT_MAX = 5000  # --ckpt image runs that trained on at most this many images also get 'memorisation'
DEFAULT_NOTES = {"image": f"; plus memorisation for --ckpt runs trained on <= {MEMORISATION_DEFAULT_MAX:,} images"}
# value -> "lower"/"higher" for the table's 'better' column (each metric's entry says which values rank runs)
DIRECTION = {k: way for info in METRICS.values() for k, way in info.directions.items()}


def metrics_help() -> str:
    """The --metrics part of the help, from the one registry (ganforge.metrics.METRICS and its NEEDS)."""
    def item(name: str, text: str, width: int = 16) -> list[str]:
        text = text.replace("[-1, 1]", "[-1,\xa01]")  # a no-break space keeps the interval on one line
        return [line.replace("\xa0", " ") for line in textwrap.wrap(
            text, width=108, initial_indent=f"  {name:<{width}}", subsequent_indent=" " * (width + 2))]

    lines = ["metrics (--metrics, comma-separated):"]
    for kind, default in DEFAULT_METRICS.items():
        lines += textwrap.wrap(f"for {KINDS[kind]}: {', '.join(metric_names(kind))} (default: {default}"
                               f"{DEFAULT_NOTES.get(kind, '')})", width=108,
                               initial_indent="  ", subsequent_indent="    ")
    for info in METRICS.values():
        better = "higher" if info.higher_is_better else "lower"
        lines += item(info.name, f"{better} is better, needs {' + '.join(info.needs)}: {info.description}")
    lines.append("what they need (missing on sample sets: an error; on an image-to-image run: the metric is left out):")
    for need, meaning in NEEDS.items():
        lines += item(need, meaning)
    return "\n".join(lines) + "\n"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="metrics with provenance (FID, KID, precision/recall, ...)",
                       description=DESCRIPTION + "\n" + metrics_help(), epilog=EPILOG, formatter_class=HelpFormatter)
    src = p.add_argument_group("what to measure (one of)")
    src.add_argument("--ckpt", help="run directory or checkpoint to sample from")
    src.add_argument("--real", help="folder of real images (with --fake)")
    src.add_argument("--fake", help="folder of generated images (with --real)")
    p.add_argument("--data", help="real data: folder or builtin:NAME (default: the run's own data)")
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="split of a built-in dataset used as the reference (default: test)")
    p.add_argument("--size", help="image size HxW for --real/--fake folders (default: the real folder's)")
    p.add_argument("--metrics", help=f"comma-separated metrics (default: {DEFAULT_METRICS['image']} for images; "
                                     f"{DEFAULT_METRICS['points']} for points)")
    p.add_argument("--n", type=int, default=10000, help="samples per side (default: 10000)")
    p.add_argument("--features", default="auto",
                   help="fashion | clipart | inception | speech | PATH.pt | PATH.onnx (default: speech for audio, fashion for grey images, "
                        "inception for RGB; clipart judges RGB drawings without the Inception weights)")
    p.add_argument("--inception-weights", help="local FID Inception-v3 weights (.pth)")
    p.add_argument("--seed", type=int, default=0, help="seed for the latents and the real subset (default: 0)")
    p.add_argument("--no-ema", action="store_true", help="evaluate the raw generator instead of its EMA")
    p.add_argument("--classifier", action="store_true",
                   help="sgan, dann: measure the run's classifier (sgan's discriminator, dann's label classifier) "
                        "(accuracy, per class, confusion) on --data/--split (default: the run's data, test split; "
                        "dann: --data builtin:TARGET for the target domain) instead of the generator")
    p.add_argument("--save-classifier", metavar="FILE",
                   help="with --classifier: also write the classifier alone (weights + config) to FILE.safetensors")
    p.add_argument("--out", help="JSON file for the results (default: RUN/eval/step_N.json, or print only)")
    p.set_defaults(run=run)


def _load_reference(args: argparse.Namespace, spec, run_data: dict):
    from ..data import load_builtin, load_data

    source = args.data or run_data.get("source")
    if source is None:
        raise UsageError("no reference data: give --data PATH|builtin:NAME")
    size = tuple(spec.shape[1:]) if spec.kind == "image" else None
    channels = spec.shape[0] if spec.kind == "image" else None
    if source.startswith("builtin:"):
        return load_builtin(source.split(":", 1)[1], size=size, channels=channels, split=args.split)
    return load_data(source, size=size, channels=channels, fit=run_data.get("fit", "crop"))


def _training_data(args: argparse.Namespace, spec, run_data: dict, reference):
    """The images the run trained on: (data, label), or (None, why not)."""
    from ..data import load_builtin, load_data

    source = run_data.get("source")
    if source is None:
        return None, "the run records no training data"
    try:
        if source.startswith("builtin:"):
            data = load_builtin(source.split(":", 1)[1], size=tuple(spec.shape[1:]), channels=spec.shape[0],
                                split="train")
            return data, f"{source} train split ({len(data)} images)"
        data = reference if not args.data else load_data(source, size=tuple(spec.shape[1:]), channels=spec.shape[0],
                                                         fit=run_data.get("fit", "crop"))
    except (OSError, ValueError) as e:
        return None, f"its training data {source} cannot be loaded ({e})"
    if tuple(data.spec.shape) != tuple(spec.shape):
        return None, f"its training data {source} now has shape {tuple(data.spec.shape)}, not {tuple(spec.shape)}"
    return data, f"{source} ({len(data)} images)"


def _memorisation_setup(args: argparse.Namespace, names: list[str], explicit: bool, spec, data, extractor,
                        sampler) -> tuple[object | None, str]:
    """The memorisation Reference for this evaluation (adding 'memorisation' to a default set of a
    small-data --ckpt run), or (None, a note why it was left out of the defaults)."""
    from ..metrics.evaluate import memorisation_reference

    if spec.kind != "image" or extractor is None or (explicit and "memorisation" not in names):
        return None, ""
    split = f" ({args.split} split)" if data.source.startswith("builtin:") else ""
    if sampler is None:  # --real/--fake: the real folder stands in for the training images (asked for only)
        if not explicit:
            return None, ""
        return memorisation_reference(data, extractor, None, n=args.n, seed=args.seed,
                                      training=f"{data.source} (the --real folder, {len(data)} images)"), ""
    train, label = _training_data(args, spec, sampler.config.get("run", {}).get("data", {}), data)
    if train is None:
        if explicit:
            raise UsageError(f"memorisation needs the images the run trained on, but {label}")
        return None, f"memorisation left out: {label}"
    if not explicit:
        if len(train) > MEMORISATION_DEFAULT_MAX:
            return None, ""
        names.append("memorisation")
    return memorisation_reference(train, extractor, data, n=args.n, seed=args.seed, training=label,
                                  heldout_name=f"{data.source}{split}"), ""


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table

    from ..data import load_data, parse_size
    from ..metrics.base import Provenance
    from ..metrics.callback import resolve_extractor
    from ..metrics.evaluate import compute, fake_set, real_set
    from ..metrics.memorisation import PIXEL_SIDE, save_pairs
    from ..train.memory import tune_malloc

    tune_malloc()  # sampling and feature batches reuse freed host memory instead of page-faulting afresh
    if args.classifier or args.save_classifier:
        return run_classifier(args)
    if args.n < 2:
        raise UsageError(f"--n must be at least 2, got {args.n}")
    if bool(args.real) != bool(args.fake):
        raise UsageError("--real and --fake go together: give both folders")
    if bool(args.ckpt) == bool(args.real):
        raise UsageError("give either --ckpt RUN or --real DIR_A --fake DIR_B")
    from ..data.table import is_table_path

    if args.real and (is_table_path(args.real) or is_table_path(args.fake)):
        return run_table(args, None)
    t0 = time.perf_counter()
    out_path = Path(args.out) if args.out else None
    sampler = None
    if args.ckpt:
        from ..artifacts import Sampler

        sampler = Sampler.from_checkpoint(args.ckpt, ema=not args.no_ema)
        if sampler.is_translation:
            return run_translation(args, sampler)
        if sampler.spec.kind == "table":
            return run_table(args, sampler)
        spec = sampler.spec
        run_cfg = sampler.config.get("run", {})
        data = _load_reference(args, spec, run_cfg.get("data", {}))
        if tuple(data.spec.shape) != tuple(spec.shape):
            raise UsageError(f"reference data has shape {tuple(data.spec.shape)} but the generator makes {tuple(spec.shape)}")
        z = sampler.latents(args.n, args.seed + 2)
        text = None
        if sampler.takes_text:  # a text model draws from the reference's own captions (the first of each image)
            if data.captions is None:
                raise UsageError(f"{sampler.family.name} draws images from captions, but the reference data has none; "
                                 "give --data captioned images (builtin:fashion-captions, a folder with IMAGE.txt)")
            rows = torch.arange(args.n) % len(data)
            text = data.captions.embeddings[data.captions.ids[rows, 0]]

        def generate(a: int, b: int):
            if text is not None:
                return sampler.generate(b - a, z=z[a:b], text=text[a:b])
            return sampler.generate(b - a, z=z[a:b])

        what = f"{sampler.path} (step {sampler.step}, {'EMA' if sampler.ema else 'raw'} generator)"
        if text is not None:
            what += ", drawn from the reference images' captions"
        if out_path is None:
            out_path = sampler.path.parent.parent / "eval" / f"step_{sampler.step:08d}.json"
    else:
        size = parse_size(args.size) if args.size else None
        data = load_data(args.real, size=size)
        image = data.spec.kind == "image"
        fake_data = load_data(args.fake, size=tuple(data.spec.shape[1:]) if image else None,
                              channels=data.spec.shape[0] if image else None)
        spec = data.spec

        def generate(a: int, b: int):
            return fake_data.to_float(fake_data.x[a:b])

        args.n = min(args.n, len(fake_data), len(data))
        what = f"folder {args.fake} ({len(fake_data)} images)"
    names = parse_metrics(args.metrics or DEFAULT_METRICS[spec.kind], spec.kind)
    extractor = resolve_extractor(args.features, data, args.inception_weights or "")
    memorisation, note = _memorisation_setup(args, names, bool(args.metrics), spec, data, extractor, sampler)
    others = [n for n in names if n != "memorisation"]
    keep = needs_any(others, "images") if others else False  # full-size images (swd)
    real = real_set(data, extractor, args.n, seed=args.seed, keep_images=keep)
    fake = fake_set(generate, args.n, extractor, keep_images=keep or "memorisation" in names,
                    keep_side=None if keep else PIXEL_SIDE)
    prov = Provenance(**(extractor.provenance() if extractor else {"extractor": "raw", "resize": "none"}),
                      seed=args.seed, reference=f"{data.source} ({len(real)} samples)", reference_sha256=real.sha256)
    results = compute(names, real, fake, prov, seed=args.seed, n_classes=data.spec.n_classes, mixture=data.spec.name,
                      memorisation=memorisation)
    if "memorisation" in results and out_path is not None:
        extra = results["memorisation"].provenance.extra
        png = out_path.with_name(f"{out_path.stem}.memorisation.png")
        save_pairs(png, fake.images, memorisation, extra["pairs"])
        extra["pairs_image"] = png.name  # next to the JSON: `ganforge report` shows it
    elapsed = time.perf_counter() - t0

    table = Table(title=f"ganforge evaluate: {what}")
    for col in ("metric", "value", "better"):
        table.add_column(col)
    for name, res in results.items():
        for k, v in res.values.items():
            if not k.startswith("fake_fraction_"):
                table.add_row(k, f"{v:.6g}", DIRECTION.get(k, ""))
    console = Console()
    console.print(table)
    p = next(iter(results.values())).provenance
    console.print(f"features {p.extractor} (sha256 {p.weights_sha256[:12]}), resize {p.resize}, {p.n_real} real vs "
                  f"{p.n_fake} fake, seed {p.seed}, reference {p.reference}; {elapsed:.1f}s", highlight=False, soft_wrap=True)
    if "memorisation" in results:
        m = results["memorisation"].provenance.extra
        console.print(f"memorisation: {m['verdict']}\n  training images: {m['training_set']}\n  new real images: "
                      f"{m['heldout']}\n  pixels: {m['pixel_space']}", highlight=False, soft_wrap=True)
    if note:
        console.print(note, highlight=False, soft_wrap=True)
    report = {"what": what, "seconds": elapsed, "results": {k: r.to_dict() for k, r in results.items()}}
    if sampler is not None and sampler.family.sample_note:
        report["samples"] = sampler.family.sample_note
        console.print(f"samples: {sampler.family.sample_note}", highlight=False)
    if sampler is not None and sampler.family.likelihood:
        report["likelihood"] = likelihood(sampler, data, args.n, args.seed)
        lk = report["likelihood"]
        console.print(f"ELBO on {lk['n']} reference images ({lk['reference']}): {lk['elbo_nats']:.2f} nats per image, "
                      f"{lk['bits_per_dim']:.4f} bits per dimension (an upper bound: dequantised, one posterior "
                      f"sample)", highlight=False, soft_wrap=True)
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {out_path}", highlight=False)
    return 0


def likelihood(sampler, data, n: int, seed: int) -> dict:
    """A likelihood family's (vae's) ELBO and bits per dimension on up to n reference images (the first n), in
    batches of 500, with a seeded generator for the dequantisation noise and the posterior sample."""
    import torch

    fam = sampler.family.eval()
    g = torch.Generator().manual_seed(seed)
    n = min(n, len(data))
    elbo, bpd = [], []
    with torch.no_grad():
        for a in range(0, n, 500):
            terms = fam.elbo(data.to_float(data.x[a:min(n, a + 500)]), generator=g)
            elbo.append(terms["elbo"])
            bpd.append(terms["bpd"])
    return {"n": n, "reference": data.source, "elbo_nats": round(float(torch.cat(elbo).mean()), 4),
            "bits_per_dim": round(float(torch.cat(bpd).mean()), 5), "seed": seed}


def run_classifier(args: argparse.Namespace) -> int:
    """`--classifier`: the accuracy of an sgan discriminator on labelled data."""
    from rich.console import Console
    from rich.table import Table

    from ..artifacts import Classifier

    if not args.classifier:
        raise UsageError("--save-classifier goes with --classifier")
    if not args.ckpt or args.real or args.fake:
        raise UsageError("--classifier measures a run: give --ckpt RUN (and optionally --data, --split)")
    t0 = time.perf_counter()
    try:
        clf = Classifier.from_checkpoint(args.ckpt)
    except ValueError as e:
        raise UsageError(str(e)) from None
    data = _load_reference(args, clf.spec, clf.config.get("run", {}).get("data", {}))
    try:
        res = clf.evaluate(data)
    except ValueError as e:
        raise UsageError(str(e)) from None
    elapsed = time.perf_counter() - t0
    step = int(json.loads((clf.source / "state.json").read_text())["step"])
    split = f" ({args.split} split)" if data.source.startswith("builtin:") else ""
    what = f"{clf.source} (step {step}) {clf.family.name} classifier on {data.source}{split}"
    table = Table(title=f"ganforge evaluate --classifier: {what}")
    for col in ("class", "accuracy"):
        table.add_column(col)
    names = res["class_names"] or [str(i) for i in range(len(res["per_class_accuracy"]))]
    for name, acc in zip(names, res["per_class_accuracy"]):
        table.add_row(name, f"{acc:.2%}")
    table.add_row("all", f"{res['accuracy']:.2%}")
    console = Console()
    console.print(table)
    console.print(f"{res['n']} labelled images, {elapsed:.1f}s", highlight=False)
    report = {"what": what, "seconds": elapsed, "classifier": res, "split": args.split, "data": data.source}
    out_path = Path(args.out) if args.out else clf.source.parent.parent / "eval" / f"classifier_step_{step:08d}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out_path}", highlight=False)
    if args.save_classifier:
        console.print(f"wrote {clf.save(args.save_classifier)}", highlight=False)
    return 0


def _translation_data(args: argparse.Namespace, sampler):
    """The run's test split (builtin:NAME), or its training data (folders, with a warning): (data, split)."""
    import warnings

    from ..data import load_builtin, load_data

    run_data = sampler.config.get("run", {}).get("data", {})
    source = args.data or run_data.get("source")
    if source is None:
        raise UsageError("no test data: give --data PATH|builtin:NAME")
    size = tuple(run_data["size"]) if run_data.get("size") and not args.data else None
    channels = run_data.get("channels") if not args.data else None
    if source.startswith("builtin:"):
        return load_builtin(source.split(":", 1)[1], size=size, channels=channels, split=args.split), args.split
    warnings.warn(f"{source} is a folder with no test split: evaluating on the training data, so the numbers "
                  "flatter the model; give --data a folder of held-out images", stacklevel=2)
    return load_data(source, size=size, channels=channels, fit=run_data.get("fit", "crop")), "train"


def _translation_features(args: argparse.Namespace, shape: tuple[int, ...]):
    """The FID/KID extractor: fashion for grey 28x28-sized targets under --features auto, else --features."""
    import warnings

    from ..metrics import features

    grey_28 = shape[0] == 1 and shape[1] == shape[2] and shape[1] % 28 == 0
    name = args.features if args.features != "auto" else ("fashion" if grey_28 else "inception")
    try:
        if name == "inception":
            return features.load("inception", weights=args.inception_weights or None)
        return features.load(name)
    except (OSError, RuntimeError, ImportError) as e:  # e.g. Inception weights offline: keep the other metrics
        warnings.warn(f"fid/kid skipped: could not load the {name} features ({e}); give --inception-weights PATH "
                      "or --features PATH.onnx", stacklevel=2)
        return None


def _concat_tables(tables: list):
    from ..data.table import Table

    import numpy as np

    first = tables[0]
    return Table({n: np.concatenate([t[n] for t in tables]) for n in first.names}, first.info, source=first.source)


def _table_columns(table, reference) -> tuple[dict, dict]:
    """(column -> numbers, column -> kind) for metrics/tabular.py: categories as codes of the reference's."""
    values, kinds = {}, {}
    for name in reference.names:
        info = reference.info[name]
        categorical = info.kind in ("categorical", "boolean")
        values[name] = table.numbers(name, info.categories if categorical else None)
        kinds[name] = "categorical" if categorical else "continuous"
    return values, kinds


def run_table(args: argparse.Namespace, sampler) -> int:
    """A table run (or two table files): metrics/tabular.py's metrics, histograms beside the real table."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table as RichTable

    from ..data.eprime import DEFAULT_BEAM_ENERGY, EVENT_FEATURES, PROTON_MASS, W_PION_THRESHOLD, event_features
    from ..data.table import read_table
    from ..data.table_plots import save_table_figure
    from ..metrics.tabular import ks_statistic, table_metrics, wasserstein_1d

    t0 = time.perf_counter()
    names = [m.strip() for m in (args.metrics or ",".join(TABLE_METRICS)).split(",") if m.strip()]
    unknown = [m for m in names if m not in TABLE_METRICS]
    if unknown:
        raise UsageError(f"unknown table metric{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; for tables "
                         f"choose from: {', '.join(TABLE_METRICS)}")
    if args.n < 2:
        raise UsageError(f"--n must be at least 2, got {args.n}")
    beam = None
    trained_on = None  # the data the run trained on (the model's), whatever --data compares it with
    if sampler is not None:
        run_cfg = sampler.config.get("run", {})
        trained_on = run_cfg.get("data", {}).get("source")
        source = args.data or trained_on
        if args.data:
            real = read_table(args.data, run_cfg.get("data", {}).get("columns"))
        else:
            from ..config import from_dict
            from ..train.run import load_run_data

            real = load_run_data(from_dict(run_cfg), quiet=True).table
        fake = _concat_tables(list(sampler.iter_tables(args.n, seed=args.seed + 2)))
        if source and source.startswith("builtin:eprime"):
            beam = DEFAULT_BEAM_ENERGY
        beam = getattr(sampler.family.cfg, "beam_energy", beam)
        what = f"{sampler.path} (step {sampler.step}, {'EMA' if sampler.ema else 'raw'} {sampler.family.name} generator)"
        out_path = Path(args.out) if args.out else sampler.path.parent.parent / "eval" / f"step_{sampler.step:08d}.json"
    else:
        real, fake = read_table(args.real), read_table(args.fake)
        missing = [n for n in real.names if n not in fake]
        if missing:
            raise UsageError(f"--fake {args.fake} lacks the columns {', '.join(missing)} of --real {args.real}")
        source, what = args.real, f"{args.fake} against {args.real}"
        out_path = Path(args.out) if args.out else None
    events = {"px", "py", "pz"} <= set(real.names)
    if beam is None and events and source and "eprime" in str(source):
        beam = DEFAULT_BEAM_ENERGY
    r, kinds = _table_columns(real, real)
    f, _ = _table_columns(fake, real)
    # with the elastic peak (W = M) among the real events, W >= M is the physical rule, not the pion threshold
    w_threshold = PROTON_MASS if any("eprime-elastic" in str(s) for s in (source, trained_on) if s) else W_PION_THRESHOLD
    results = table_metrics(r, f, kinds, label=real.label if "efficacy" in names else None, seed=args.seed,
                            beam_energy=beam if "validity" in names else None,
                            classifier_test="c2st" in names, w_threshold=w_threshold)
    if events and ("w1" in names or "ks" in names):
        dr = event_features(r["px"], r["py"], r["pz"], beam or DEFAULT_BEAM_ENERGY)
        df = event_features(f["px"], f["py"], f["pz"], beam or DEFAULT_BEAM_ENERGY)
        for feat in EVENT_FEATURES:
            a, b = dr[feat][np.isfinite(dr[feat])], df[feat][np.isfinite(df[feat])]
            if len(a) and len(b):
                if "w1" in names:
                    results[f"w1/event/{feat}"] = wasserstein_1d(a, b)
                if "ks" in names:
                    results[f"ks/event/{feat}"] = ks_statistic(a, b)
    prefixes = {"w1": ("w1",), "ks": ("ks",), "tvd": ("tvd",), "corr": ("corr",), "mmd": ("mmd",),
                "c2st": ("c2st",), "efficacy": ("efficacy",), "validity": ("validity",)}
    keep = tuple(p for m in names for p in prefixes[m]) + ("fake_nonfinite_rows",)
    results = {k: v for k, v in results.items() if k.startswith(keep)}
    elapsed = time.perf_counter() - t0
    summary = RichTable(title=f"ganforge evaluate: {what} vs {source} ({len(real):,} real, {len(fake):,} synthetic rows)")
    for col in ("metric", "value"):
        summary.add_column(col)
    for k, v in results.items():
        if "/" not in k or k.startswith(("validity/", "efficacy")) or k.count("/") == 1 and len(real.names) <= 12:
            summary.add_row(k, f"{v:.6g}")
    console = Console()
    console.print(summary)
    console.print(f"{elapsed:.1f}s", highlight=False)
    report = {"what": what, "seconds": elapsed, "data": str(source), "n_real": len(real), "n_fake": len(fake),
              "seed": args.seed, "metrics": names, "label": real.label, "beam_energy": beam, "results": results}
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report, indent=2) + "\n")
        figure = save_table_figure(real, fake, out_path.with_suffix(".table.png"), title=what)
        console.print(f"wrote {out_path} and {figure}", highlight=False)
    return 0


def run_translation(args: argparse.Namespace, sampler) -> int:
    """An image-to-image run: l1/psnr/ssim, fid/kid, domain/class accuracy and cycle error on its test data."""
    from rich.console import Console
    from rich.table import Table

    from ..metrics import features
    from ..metrics.translation import evaluate_translation

    t0 = time.perf_counter()
    if args.n < 2:
        raise UsageError(f"--n must be at least 2, got {args.n}")
    names = parse_metrics(args.metrics, "translation") if args.metrics else metric_names("translation")
    family, spec = sampler.family, sampler.spec
    data, split = _translation_data(args, sampler)
    if tuple(data.spec.shape) != tuple(spec.shape) or tuple(data.spec.shape_b) != tuple(spec.shape_b):
        raise UsageError(f"test data {data.source} has shapes {tuple(data.spec.shape)} -> {tuple(data.spec.shape_b)} "
                         f"but {family.name} translates {tuple(spec.shape)} -> {tuple(spec.shape_b)}; give --data "
                         "with images like the training data")
    target_shape = tuple(family.out_shape)
    extractor = _translation_features(args, target_shape) if needs_any(names, "features") else None
    classifier = None
    if needs_any(names, "classifier"):
        classifier = extractor if extractor is not None and extractor.name == "fashion" else features.fashion()

    def translate(x, direction, domain):
        return sampler.translate(x, direction, domain=domain)

    results = evaluate_translation(translate, data, directions=family.directions, n=args.n, extractor=extractor,
                                   classifier=classifier, seed=args.seed, metrics=names,
                                   reference=f"{data.source} ({split} split)")
    elapsed = time.perf_counter() - t0
    what = f"{sampler.path} (step {sampler.step}, {'EMA' if sampler.ema else 'raw'} {family.name} generator)"
    table = Table(title=f"ganforge evaluate: {what} on {data.source} ({split})")
    for col in ("metric", "value", "better"):
        table.add_column(col)
    for res in results.values():
        for k, v in res.values.items():
            table.add_row(k, f"{v:.6g}", "higher" if res.higher_is_better else "lower")
    console = Console()
    console.print(table)
    skipped = [m for m in names if m not in results]
    if skipped:
        console.print(f"not applicable here: {', '.join(skipped)}", highlight=False)
    console.print(f"{elapsed:.1f}s", highlight=False)
    report = {"what": what, "seconds": elapsed, "split": split, "results": {k: r.to_dict() for k, r in results.items()}}
    out_path = Path(args.out) if args.out else sampler.path.parent.parent / "eval" / f"step_{sampler.step:08d}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out_path}", highlight=False)
    return 0
