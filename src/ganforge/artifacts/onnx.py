"""ONNX export of a generator, checked against the eager model.

The ONNX graph maps G's input to its output: `z` (N, width) float32 (noise, then any latent codes), for
conditional families `y` (N,) int64 classes, for w-truncating ones (stylegan) `truncation` (N,) float32 psi
(w_avg + psi (w - w_avg) in the graph; the others scale z outside it, except those without the trick,
progan, whose model_info says truncation space "none"), to `images` (N, C, H, W) in [-1, 1]
(or `points` (N, F); for a table model `rows` (N, D), ENCODED rows); dynamic batch. Latents come from `ganforge.latent`, so every runtime turns a seed
into the same input. `model_info` is in the model's metadata (`ganforge` key): the file describes itself.

A table model's graph stops at the encoded rows: decoding them (argmax of one-hot blocks, VGM modes,
un-standardising, inverse log / logit / log-distance / formula transforms, rounding, bounds, types) runs
outside it, in numpy. model_info["table"] carries the fitted transformer's state and says so, and
`export_onnx` writes the state beside the model as OUT.table.json (decode with
ganforge.serve.table_rows.decode_rows(state, rows), numpy only, or TableTransformer.from_state(state)).

Image-to-image generators (pix2pix, srgan, cyclegan, ...) map `x` (N, C, H, W) float32 images in [-1, 1]
to `images`; stargan also takes `domain` (N,) int64 target domain indices in 0..K-1 (not range-checked in
the graph; model_info's "domains" lists the K names). Two-way families (cyclegan,
discogan) export one direction per file (`direction`, default "AtoB"). Their parity check feeds random
images in [-1, 1] of the input shape.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import replace_atomically
from .card import model_info, translation_io

TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The exported model does not reproduce the eager one (or could not be written)."""


class _GeneratorGraph(nn.Module):
    """G as one function of its inputs -> output, the way the family samples it: G(z), or G(z, second) with second
    the classes y, a text model's text_emb or a w-truncating family's psi (the graph's second input)."""

    def __init__(self, family) -> None:
        super().__init__()
        self.family, self.G = family, family.G

    def forward(self, z, second=None):
        return self.G(z) if second is None else self.G(z, second)


class _TextEncoderGraph(nn.Module):
    """The frozen sentence encoder as one function of (input_ids, attention_mask) -> unit embeddings."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids, attention_mask)


@dataclass
class ExportResult:
    path: Path
    seconds: float
    max_abs_diff: float
    batches_checked: tuple[int, ...]
    size_bytes: int
    direction: str = ""  # image-to-image families: the exported direction
    table_state: Path | None = None  # table models: the transformer state written beside the model
    text_encoder: Path | None = None  # text models: the sentence encoder written beside the model (+ tokenizer)

    def as_dict(self) -> dict:
        return {"onnx": str(self.path), "export_seconds": round(self.seconds, 3),
                "parity_max_abs_diff": self.max_abs_diff, "parity_tolerance": TOLERANCE,
                "parity_batches": list(self.batches_checked), "onnx_bytes": self.size_bytes,
                **({"direction": self.direction} if self.direction else {}),
                **({"table_state": str(self.table_state), "decoding": "outside the graph, in numpy (see the "
                    "card's table.decoding)"} if self.table_state else {}),
                **({"text_encoder": str(self.text_encoder),
                    "tokenizer": str(text_encoder_paths(self.path)[1])} if self.text_encoder else {})}


class _TranslationGraph(nn.Module):
    """An image-to-image G in one direction as a function of (x[, domain]) -> images."""

    def __init__(self, family, direction: str, with_domain: bool) -> None:
        super().__init__()
        self.family, self.G, self.direction, self.with_domain = family, family.G, direction, with_domain

    def forward(self, x, domain=None):
        if self.with_domain:
            # G(x, domain) itself: translate() range-checks the domains with .item(), which torch.export
            # cannot trace; the graph takes indices in 0..K-1 (model_info lists the K domains)
            return self.G(x, domain)
        return self.family.translate(x, self.direction, None, net=self.G)


def _inputs(sampler, n: int, seed: int, direction: str = "AtoB") -> dict[str, np.ndarray]:
    if sampler.is_translation:
        io_ = translation_io(sampler, direction)
        rng = np.random.default_rng(seed)
        feeds = {"x": rng.uniform(-1.0, 1.0, (n, *io_["input_shape"])).astype(np.float32)}
        if "domain" in io_["inputs"]:
            feeds["domain"] = (np.arange(n, dtype=np.int64) * 7 + seed) % len(io_["domains"])
        return feeds
    feeds = {"z": sampler.latents(n, seed).cpu().numpy()}
    if sampler.takes_text:  # unit vectors, as the encoder gives
        t = np.random.default_rng(seed).standard_normal((n, int(sampler.spec.text_dim)))
        feeds["text_emb"] = (t / np.linalg.norm(t, axis=1, keepdims=True)).astype(np.float32)
    if sampler.conditional:
        feeds["y"] = (np.arange(n, dtype=np.int64) * 7 + seed) % int(sampler.spec.n_classes)
    if sampler.truncation_space == "w":  # psi per sample: 0, 0.1, ..., 1 in turn, so 0 and 1 are both checked
        feeds["truncation"] = (((np.arange(n) * 7 + seed) % 11) / 10).astype(np.float32)
    return feeds


def _eager(sampler, feeds: dict[str, np.ndarray], direction: str) -> np.ndarray:
    """The eager generator's output on the same inputs."""
    with torch.inference_mode():
        dev = sampler.family.device
        if sampler.is_translation:
            x = torch.from_numpy(feeds["x"]).to(dev)
            domain = torch.from_numpy(feeds["domain"]).to(dev) if "domain" in feeds else None
            return sampler.family.translate(x, direction, domain, net=sampler.G).float().cpu().numpy()
        rest = [torch.from_numpy(feeds[k]).to(dev) for k in ("y", "text_emb", "truncation") if k in feeds]
        return sampler.G(torch.from_numpy(feeds["z"]).to(dev), *rest).float().cpu().numpy()


def parity(sampler, path: str | Path, batches: tuple[int, ...] = (1, 5, 16), direction: str = "AtoB") -> float:
    """Max abs difference between onnxruntime and the eager generator over a few batch sizes."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the ONNX check needs onnxruntime: pip install 'ganforge[onnx]'") from e
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for i, n in enumerate(batches):
        feeds = _inputs(sampler, n, seed=100 + i, direction=direction)
        got = session.run(None, feeds)[0]
        want = _eager(sampler, feeds, direction)
        if got.shape != want.shape:
            raise ExportError(f"ONNX output shape {got.shape} != eager {want.shape} at batch {n}")
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def export_onnx(sampler, path: str | Path, *, opset: int | None = None, check: bool = True,
                tolerance: float = TOLERANCE, direction: str = "AtoB", text_encoder: bool = True) -> ExportResult:
    """Write the generator of `sampler` to `path` (ONNX, dynamic batch) and check it against eager.

    Raises ExportError when onnxruntime's output differs from the eager model's by more than `tolerance`
    (max abs) on batches of 1, 5 and 16; the file is then removed, so a bad model never ships.
    `direction` ("AtoB" or "BtoA") picks the generator of a two-way image-to-image family; latent
    families have only "AtoB". A text model's encoder and tokenizer are written beside `path` unless
    `text_encoder` is False (the static site feeds stored caption embeddings instead).
    """
    path = Path(path)
    if sampler.is_translation:
        sampler.family.check_direction(direction)  # a ValueError listing the family's directions
        io_ = translation_io(sampler, direction)
        graph: nn.Module = _TranslationGraph(sampler.family, direction, "domain" in io_["inputs"]).eval()
        names = tuple(io_["inputs"])
    else:
        if direction != "AtoB":
            raise ValueError(f"direction {direction!r} is for two-way image-to-image families; "
                             f"{sampler.family.name} has one generator: leave direction out")
        if sampler.family.onnx_refusal:
            raise ExportError(f"{sampler.family.name}: {sampler.family.onnx_refusal}")
        names = tuple(model_info(sampler)["inputs"])  # z[, y][, truncation]
        if sampler.truncation_space == "w":
            if sampler.conditional:
                raise ExportError(f"{sampler.family.name}: the export has no graph for a class-conditional family that "
                                  f"truncates in w yet")
        graph = _GeneratorGraph(sampler.family).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    feeds = _inputs(sampler, 2, seed=0, direction=direction)
    args = tuple(torch.from_numpy(feeds[k]).to(sampler.family.device) for k in names)
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = tuple({0: batch} for _ in names)  # by position: the graph's argument names are not the inputs' names
    out_name = {"image": "images", "table": "rows", "audio": "clips"}.get(sampler.spec.kind, "points")
    start = time.perf_counter()
    quiet = io.StringIO()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, args, input_names=list(feeds), output_names=[out_name],
                                        dynamic_shapes=shapes, dynamo=True, opset_version=opset,
                                        external_data=False, verbose=False)
            program.model.metadata_props["ganforge"] = json.dumps(model_info(sampler, direction=direction))
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed for {sampler.family.name}: {e}") from e
    seconds = time.perf_counter() - start
    diff = float("nan")

    def write(tmp: Path) -> None:  # saved and checked beside `path`, renamed over it only when both succeed
        nonlocal diff
        program.save(str(tmp), external_data=False)
        if check:
            diff = parity(sampler, tmp, direction=direction)
            if not diff <= tolerance:
                raise ExportError(f"ONNX output differs from the eager generator by {diff:.3g} (max abs) > "
                                  f"{tolerance}; the model was not written. Try another --opset, or report the family.")

    replace_atomically(path, write)
    result = ExportResult(path, seconds, diff, (1, 5, 16) if check else (), path.stat().st_size,
                          direction if sampler.is_translation else "")
    if sampler.spec.kind == "table":  # the decoder's state beside the graph (it is in the metadata too)
        state = table_state_path(path)
        replace_atomically(state, lambda tmp: tmp.write_text(sampler.spec.table_state + "\n"))
        result.table_state = state
    if sampler.takes_text and text_encoder:  # the frozen encoder and tokenizer beside the graph: text in, no torch
        result.text_encoder = export_text_encoder(path, sampler.spec.text_encoder, opset=opset, check=check,
                                                  tolerance=tolerance)
    return result


PARITY_CAPTIONS = ("a dark long-sleeved pullover", "ankle boot", "this small bird has a pink breast and crown",
                   "naïve café — résumé", "the number seven written by hand, slightly slanted to the right")


def text_encoder_paths(path: str | Path) -> tuple[Path, Path]:
    """Where export_onnx writes a text model's encoder and tokenizer: OUT.text.onnx and OUT.tokenizer.json."""
    path = Path(path)
    return path.with_suffix(".text.onnx"), path.with_suffix(".tokenizer.json")


def export_text_encoder(path: str | Path, expected_id: str = "", *, opset: int | None = None, check: bool = True,
                        tolerance: float = TOLERANCE) -> Path:
    """Write the frozen sentence encoder (ONNX, dynamic batch and length) and its tokenizer beside `path`, checked
    against the PyTorch encoder on PARITY_CAPTIONS (padded together, so masking is checked too)."""
    import shutil

    from ..text.checks import pad_ids
    from ..text.encoder import text_encoder

    encoder = text_encoder()
    if expected_id and encoder.id != expected_id:
        raise ExportError(f"the model was trained with the text encoder {expected_id} but {encoder.id} is installed")
    onnx_path, tok_path = text_encoder_paths(path)
    tok, mask = (torch.from_numpy(a) for a in pad_ids(encoder.token_ids(PARITY_CAPTIONS)))
    batch, length = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("tokens", min=2, max=512)
    graph = _TextEncoderGraph(encoder.model).eval()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, (tok, mask), input_names=["input_ids", "attention_mask"],
                                        output_names=["embeddings"], dynamo=True, opset_version=opset,
                                        dynamic_shapes={"input_ids": {0: batch, 1: length},
                                                        "attention_mask": {0: batch, 1: length}},
                                        external_data=False, verbose=False)
            program.model.metadata_props["ganforge"] = json.dumps({"text_encoder": encoder.id, "dim": encoder.dim})
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed for the text encoder: {e}") from e

    def write(tmp: Path) -> None:
        program.save(str(tmp), external_data=False)
        if check:
            import onnxruntime as ort

            session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            got = session.run(None, {"input_ids": tok.numpy(), "attention_mask": mask.numpy()})[0]
            with torch.inference_mode():
                want = encoder.model(tok, mask).numpy()
            diff = float(np.abs(got - want).max())
            if not diff <= tolerance:
                raise ExportError(f"the ONNX text encoder differs from PyTorch's by {diff:.3g} (max abs) > {tolerance}")

    replace_atomically(onnx_path, write)
    replace_atomically(tok_path, lambda tmp: shutil.copyfile(encoder.path / "tokenizer.json", tmp))
    return onnx_path


def table_state_path(path: str | Path) -> Path:
    """Where export_onnx writes a table model's transformer state: OUT.table.json beside OUT.onnx."""
    return Path(path).with_suffix(".table.json")


def read_info(path: str | Path) -> dict:
    """The `ganforge` metadata of an exported model (needs only the onnx package)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == "ganforge":
            return json.loads(prop.value)
    raise ValueError(f"{path} has no ganforge metadata; export it with `ganforge export --onnx`")
