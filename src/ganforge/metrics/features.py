"""Feature extractors for sample-quality metrics (FID, KID, precision/recall, Inception Score, accuracy).

One registry, `EXTRACTORS`, and one entry point, `load(name_or_path, **kw)`:
- "fashion": the project's Fashion-MNIST classifier (metrics/fashion_net.py, trained by
  scripts/train_fashion_classifier.py, shipped as weights/fashion.safetensors): 128-d features, 10 logits.
- "clipart": the project's clip-art classifier (nn/clipart_net.py, trained by scripts/train_clipart_classifier.py
  on 12 openclipart-png categories, shipped as weights/clipart.safetensors): RGB 64x64, 128-d features, 12
  logits. It knows clip-art drawings on white (outlines, flat colours, shapes, symbols, broad categories), not
  photographs, textures or faces: the offline choice for RGB drawings, where the Inception weights are absent.
- "inception": the FID Inception-v3 (metrics/inception.py): 2048-d pool3 features, 1008 logits; weights
  from `weights=PATH` (the CLI's --inception-weights PATH) or the user cache / a SHA-256-checked download.
- a path ending in .pt/.ts (TorchScript) or .onnx (onnxruntime): a user's own model whose output is the
  features (N, D), or a pair (features, logits).

Every extractor takes float images in [-1, 1] of shape (N, C, H, W) and prepares them the same way:
1. Values are clamped to [-1, 1] (what saving the image as a PNG would do). Integer tensors and tensors
   that look like [0, 255] pixels are refused, never guessed at.
2. Channels: RGB -> grey for a grey extractor uses the ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B
   (Pillow's "L" conversion; the weights sum to 1, so this commutes with the [-1, 1] scaling);
   grey -> RGB repeats the channel. Other channel counts (e.g. RGBA) are an error.
3. Size: resized to the extractor's input size with bilinear interpolation, align_corners=False and
   antialiasing ("bilinear-antialias"). When upsampling (e.g. 64 -> 299) antialiasing changes nothing,
   so this equals the plain bilinear resize of pytorch-fid; when downsampling it low-pass filters
   first, which avoids the aliasing that Parmar et al. (2022, "clean-fid") show distorts FID.
   Non-square inputs are stretched to the square input size.
4. Batches of `batch_size` images are run in inference mode (no autograd bookkeeping), in eval mode, on
   the extractor's device; results come back as float32 on the input's device. In eval mode an image's
   features do not depend on its batch (up to the float rounding of the conv kernel oneDNN picks for the
   batch size), which only sets speed and memory: the fashion classifier's 256 keep a batch's activations
   in cache (batches of 500 took 1.4-1.9x as long on the 2-core bench machine, with bit-identical features).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import inception as fid_inception
from ..nn.clipart_net import CLIPART_WEIGHTS, load_clipart_net
from ..nn.clipart_net import INPUT_SIZE as CLIPART_INPUT_SIZE
from ..nn.fashion_net import FASHION_WEIGHTS, load_fashion_net
from ..nn.speech_net import SPEECH_WEIGHTS, load_speech_net

RESIZE_METHOD = "bilinear-antialias"
LUMA_BT601 = (0.299, 0.587, 0.114)

RunFn = Callable[[Tensor], "tuple[Tensor, Tensor | None]"]


class Extractor:
    """Images (N, C, H, W) in [-1, 1] -> features (N, dim) and, for classifiers, logits (N, n_classes).

    Metrics read `name` (provenance, cache keys) and `is_classifier` (whether .logits() exists) directly.
    """

    def __init__(self, name: str, run: RunFn, *, dim: int | None, n_classes: int | None,
                 input_size: tuple[int, int] | None, channels: int | None, weights_hash: str,
                 batch_size: int = 64, module: nn.Module | None = None, device: str | torch.device = "cpu",
                 audio: bool = False) -> None:
        self.name = name  # "fashion", "clipart", "inception", "speech", or a user model's path
        self.audio = audio  # takes clips (N, 1, L) instead of images (speech)
        self.weights_hash = weights_hash  # SHA-256 of the weights file, or "random-init"
        self.input_size = tuple(input_size) if input_size is not None else None  # (H, W); None: as given
        self.channels = channels  # 1 or 3; None: passed through as given
        self.n_classes = n_classes
        self.is_classifier = n_classes is not None  # has class logits (IS, 'classes', domain accuracy)
        self.batch_size = batch_size
        self.resize = RESIZE_METHOD
        self._run = run
        self._dim = dim
        self._module = module
        self.device = torch.device("cpu")
        self.to(device)

    def __repr__(self) -> str:
        return (f"Extractor({self.name!r}, dim={self._dim}, n_classes={self.n_classes}, input_size={self.input_size}, "
                f"channels={self.channels}, weights_hash={self.weights_hash[:12]!r})")

    @property
    def dim(self) -> int:
        if self._dim is None:  # a user model: find out with one probe image
            h, w = self.input_size or (64, 64)
            try:
                self._dim = int(self.features(torch.zeros(1, self.channels or 3, h, w)).shape[1])
            except Exception as e:
                raise ValueError(
                    f"could not run feature extractor {self.name!r} on a (1, {self.channels or 3}, {h}, {w}) probe "
                    f"({e}); pass input_size=(H, W) and channels=C to features.load()"
                ) from e
        return self._dim

    def provenance(self) -> dict:
        """How features were computed, keyed like metrics.base.Provenance: Provenance(**ext.provenance(), ...)."""
        resize = f"{self.resize}-{self.input_size[0]}x{self.input_size[1]}" if self.input_size else "none"
        return {"extractor": self.name, "weights_sha256": self.weights_hash, "resize": resize,
                "extra": {"feature_dim": self.dim, "channels": self.channels, "n_classes": self.n_classes}}

    def to(self, device: str | torch.device) -> "Extractor":
        device = torch.device(device)
        if self._module is not None:
            # channels_last lets oneDNN pick its fast convolutions on CPU
            fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
            self._module.to(device=device, memory_format=fmt).eval()
        elif device.type != "cpu":
            raise ValueError(f"extractor {self.name!r} runs on the CPU only (onnxruntime); use device='cpu'")
        self.device = device
        return self

    def prepare(self, x: Tensor) -> Tensor:
        """Check, clamp, adapt channels and resize: (N, C, H, W) -> (N, channels, *input_size). An audio
        extractor takes clips (N, 1, L) in [-1, 1] and passes them through clamped."""
        if self.audio:
            if x.dim() != 3 or x.shape[1] != 1 or not x.is_floating_point():
                raise ValueError(f"feature extractor {self.name!r} expects mono float clips (N, 1, L) in [-1, 1], "
                                 f"got {tuple(x.shape)} {x.dtype}")
            return x.float().clamp(-1.0, 1.0)
        if x.dim() != 4:
            raise ValueError(f"feature extractor {self.name!r} expects images (N, C, H, W), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"feature extractor {self.name!r} expects float images in [-1, 1], got {x.dtype}; "
                            "convert uint8 pixels with data.to_float(x) or x / 127.5 - 1")
        if x.numel() and float(x.amin()) >= 0 and float(x.amax()) > 2:
            raise ValueError(f"images range over [{float(x.amin()):.3g}, {float(x.amax()):.3g}], which looks like "
                             "[0, 255] pixels; feature extractors expect [-1, 1]: pass x / 127.5 - 1")
        return self._fit(x.float().clamp(-1.0, 1.0))

    def _fit(self, x: Tensor) -> Tensor:
        """The extractor's channels and input size."""
        x = adapt_channels(x, self.channels, self.name)
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return x

    @torch.no_grad()
    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        feats, logits = [], []
        with torch.inference_mode():
            for chunk in x.split(self.batch_size):
                f, lg = self._run(self.prepare(chunk.to(self.device)))
                feats.append(f.float().flatten(1).to(x.device))
                if lg is not None:
                    logits.append(lg.float().to(x.device))
        if not feats:  # an empty batch
            return x.new_zeros(0, self.dim), (x.new_zeros(0, self.n_classes) if self.is_classifier else None)
        # concatenated outside inference mode: ordinary tensors, usable in autograd (e.g. as loss targets)
        return torch.cat(feats), (torch.cat(logits) if logits else None)

    def differentiable_features(self, x: Tensor) -> Tensor:
        """features(x) with autograd through the network (a perceptual loss, e.g. `ganforge project`): no
        inference mode, no batching, no clamping. Only for the PyTorch extractors (fashion, clipart, inception)."""
        if self._module is None:
            raise ValueError(f"extractor {self.name!r} runs in onnxruntime: it gives no gradients; use fashion, "
                             "clipart or inception for a feature loss")
        return self._run(self._fit(x.float()).to(self.device))[0].float().flatten(1)

    def features(self, x: Tensor) -> Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, dim) float32."""
        return self.features_and_logits(x)[0]

    def logits(self, x: Tensor) -> Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, n_classes) float32 class logits (softmax: class probabilities)."""
        if not self.is_classifier:
            raise ValueError(f"feature extractor {self.name!r} is not a classifier: it has no logits "
                             "(a user model gives logits by returning (features, logits))")
        logits = self.features_and_logits(x)[1]
        assert logits is not None
        return logits

    def probs(self, x: Tensor) -> Tensor:
        """(N, n_classes) softmax class predictions."""
        return self.logits(x).softmax(dim=1)


def adapt_channels(x: Tensor, channels: int | None, name: str = "extractor") -> Tensor:
    """(N, C, H, W) -> (N, channels, H, W): BT.601 luma for RGB -> grey, repetition for grey -> RGB."""
    c = x.shape[1]
    if channels is None or c == channels:
        return x
    if channels == 1 and c == 3:
        luma = torch.tensor(LUMA_BT601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * luma).sum(dim=1, keepdim=True)
    if channels == 3 and c == 1:
        return x.expand(-1, 3, -1, -1)
    raise ValueError(f"feature extractor {name!r} takes {channels}-channel images and cannot convert {c} channels; "
                     "give grey (1) or RGB (3) images (composite or drop an alpha channel first)")


def _module_runner(module: nn.Module, method: str = "features_and_logits") -> RunFn:
    fn = getattr(module, method)
    cl = torch.channels_last

    def run(x: Tensor) -> tuple[Tensor, Tensor | None]:
        return fn(x.contiguous(memory_format=cl) if x.device.type == "cpu" else x)

    return run


# ---- the built-in extractors ------------------------------------------------------------------------

def fashion(weights: str | Path | None = None, batch_size: int = 256, device: str = "cpu") -> Extractor:
    """The shipped Fashion-MNIST classifier: (N, 1, 28, 28) -> 128-d features, 10 logits."""
    path = Path(weights) if weights is not None else FASHION_WEIGHTS
    model = load_fashion_net(path)
    return Extractor("fashion", _module_runner(model), dim=model.classifier.in_features,
                     n_classes=model.classifier.out_features, input_size=(28, 28), channels=1,
                     weights_hash=fid_inception.sha256_file(path), batch_size=batch_size, module=model, device=device)


def fashion_info(weights: str | Path | None = None) -> dict:
    """The JSON written beside the shipped weights: test accuracy, recipe, command, SHA-256."""
    path = Path(weights) if weights is not None else FASHION_WEIGHTS
    return json.loads(path.with_suffix(".json").read_text())


def clipart(weights: str | Path | None = None, batch_size: int = 64, device: str = "cpu") -> Extractor:
    """The shipped clip-art classifier: (N, 3, 64, 64) RGB -> 128-d features, 12 logits (clipart_info()["classes"]).

    Images of any size are resized to 64x64 (bilinear-antialias); grey ones are repeated to RGB. It judges
    clip-art drawings on white, not photographs, textures or faces (see nn/clipart_net.py).
    """
    path = Path(weights) if weights is not None else CLIPART_WEIGHTS
    model = load_clipart_net(path)
    return Extractor("clipart", _module_runner(model), dim=model.classifier.in_features,
                     n_classes=model.classifier.out_features, input_size=CLIPART_INPUT_SIZE, channels=3,
                     weights_hash=fid_inception.sha256_file(path), batch_size=batch_size, module=model, device=device)


def clipart_info(weights: str | Path | None = None) -> dict:
    """The JSON written beside the shipped weights: held-out accuracy, classes, data hash, recipe, SHA-256."""
    path = Path(weights) if weights is not None else CLIPART_WEIGHTS
    return json.loads(path.with_suffix(".json").read_text())


def inception(weights: str | Path | None = None, random_init: bool = False, batch_size: int = 32,
              device: str = "cpu") -> Extractor:
    """The FID Inception-v3: (N, 3, 299, 299) -> 2048-d pool3 features, 1008 logits.

    `weights`: the port's .pth (--inception-weights PATH); None: the user cache, downloading and checking it
    on first use. `random_init=True` skips the weights (architecture tests only; FID values are meaningless).
    """
    if random_init:
        model, weights_hash = fid_inception.FIDInceptionV3(), "random-init"
    else:
        if weights is None:
            path = fid_inception.fid_weights_path()
        else:
            path = Path(weights).expanduser()
            if not path.exists():
                raise FileNotFoundError(f"--inception-weights {path}: no such file")
        weights_hash = fid_inception.sha256_file(path)
        if not weights_hash.startswith(fid_inception.FID_WEIGHTS_SHA256_PREFIX):
            warnings.warn(f"{path} is not the standard FID Inception file (SHA-256 {weights_hash[:16]}..., expected "
                          f"{fid_inception.FID_WEIGHTS_SHA256_PREFIX}...); FID values will not be comparable with "
                          "published ones", stacklevel=2)
        with torch.device("meta"):  # no random init for 24M numbers about to be overwritten
            model = fid_inception.FIDInceptionV3()
        model.load_state_dict(fid_inception.load_port_state_dict(path), strict=True, assign=True)
    return Extractor("inception", _module_runner(model, "forward"), dim=fid_inception.FEATURE_DIM,
                     n_classes=fid_inception.N_CLASSES, input_size=fid_inception.INPUT_SIZE, channels=3,
                     weights_hash=weights_hash, batch_size=batch_size, module=model, device=device)


# ---- a user's own model -----------------------------------------------------------------------------

def _split_output(out, name: str) -> tuple[Tensor, Tensor | None]:
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return out[0], out[1]
    if isinstance(out, Tensor):
        return out, None
    raise ValueError(f"model {name} must return features (N, D) or a pair (features, logits), got {type(out).__name__}")


def torchscript(path: str | Path, input_size: tuple[int, int] | None = None, channels: int | None = None,
                n_classes: int | None = None, batch_size: int = 64, device: str = "cpu") -> Extractor:
    """A TorchScript file (torch.jit.save) whose forward maps images to features or (features, logits).

    The images are resized to `input_size` and adapted to `channels` when given, else passed as they are.
    Pass `n_classes` when the model returns logits (it makes .logits() available).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"TorchScript feature model {path}: no such file")
    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: Tensor) -> tuple[Tensor, Tensor | None]:
        return _split_output(module(x), str(path))

    return Extractor(str(path), run, dim=None, n_classes=n_classes, input_size=input_size, channels=channels,
                     weights_hash=fid_inception.sha256_file(path), batch_size=batch_size, module=module, device=device)


def onnx_model(path: str | Path, input_size: tuple[int, int] | None = None, channels: int | None = None,
               n_classes: int | None = None, batch_size: int = 64, device: str = "cpu") -> Extractor:
    """An ONNX file run by onnxruntime on the CPU; outputs: features, or features then logits.

    Fixed channel / height / width dimensions of the model's input are used as `channels` / `input_size`
    unless given.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError(f"loading the ONNX feature model {path} needs onnxruntime: pip install onnxruntime") from None
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ONNX feature model {path}: no such file")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = list(inp.shape) + [None] * (4 - len(inp.shape))
    fixed_n = shape[0] if isinstance(shape[0], int) else None
    if channels is None and isinstance(shape[1], int):
        channels = shape[1]
    if input_size is None and isinstance(shape[2], int) and isinstance(shape[3], int):
        input_size = (shape[2], shape[3])
    n_outputs = len(session.get_outputs())

    def run(x: Tensor) -> tuple[Tensor, Tensor | None]:
        arr = x.detach().cpu().numpy().astype(np.float32)
        n = arr.shape[0]
        if fixed_n is not None and n != fixed_n:  # a model exported with a fixed batch: pad, then cut
            reps = -(-n // fixed_n) * fixed_n
            arr = np.concatenate([arr, np.repeat(arr[-1:], reps - n, axis=0)])
            outs = [session.run(None, {inp.name: arr[i : i + fixed_n]}) for i in range(0, reps, fixed_n)]
            outs = [np.concatenate(parts)[:n] for parts in zip(*outs)]
        else:
            outs = session.run(None, {inp.name: arr})
        feats = torch.from_numpy(outs[0])
        return feats, (torch.from_numpy(outs[1]) if n_outputs > 1 else None)

    return Extractor(str(path), run, dim=None, n_classes=n_classes, input_size=input_size, channels=channels,
                     weights_hash=fid_inception.sha256_file(path), batch_size=batch_size, device=device)


def speech(weights: str | Path | None = None, batch_size: int = 128, device: str = "cpu") -> Extractor:
    """The shipped spoken-digit classifier: clips (N, 1, 16384) at 16 kHz -> 128-d features, 10 logits
    (zero..nine); see nn/speech_net.py for what it can and cannot judge."""
    path = Path(weights) if weights is not None else SPEECH_WEIGHTS
    model = load_speech_net(path)
    return Extractor("speech", model.features_and_logits, dim=model.classifier.in_features,  # clips: 3-D, as given
                     n_classes=model.classifier.out_features, input_size=None, channels=1,
                     weights_hash=fid_inception.sha256_file(path), batch_size=batch_size, module=model, device=device,
                     audio=True)


EXTRACTORS: dict[str, Callable[..., Extractor]] = {
    "fashion": fashion,
    "clipart": clipart,
    "inception": inception,
    "speech": speech,
}
USER_MODEL_SUFFIXES: dict[str, Callable[..., Extractor]] = {
    ".pt": torchscript,
    ".ts": torchscript,
    ".onnx": onnx_model,
}


def load(name_or_path: str | Path, **kw) -> Extractor:
    """A registered extractor by name (kw go to its loader, e.g. weights=PATH), or a user model file by path."""
    key = str(name_or_path)
    if key in EXTRACTORS:
        return EXTRACTORS[key](**kw)
    suffix = Path(key).suffix.lower()
    if suffix in USER_MODEL_SUFFIXES:
        return USER_MODEL_SUFFIXES[suffix](key, **kw)
    raise ValueError(f"unknown feature extractor {key!r}; valid names: {', '.join(sorted(EXTRACTORS))}, or a path to "
                     f"your own model ending in {', '.join(USER_MODEL_SUFFIXES)} (TorchScript or ONNX)")
