"""A stand-in for `torchvision`, used only by bench/peer_lwgan.py's peer virtual environment.

The real torchvision wheels (0.28.0 and 0.29.1, the ones that match torch 2.13) do not import on the bench
machine: `import torchvision` raises `RuntimeError: operator torchvision::nms does not exist`. lightweight-gan
1.2.1 imports torchvision for a handful of image helpers only, so this package provides exactly those, written
with PIL, numpy and torch, with torchvision's documented behaviour:

    transforms.Compose, Lambda, Resize, RandomResizedCrop, CenterCrop, ToTensor, ToPILImage
    transforms.functional.resize            (PIL images)
    utils.make_grid, utils.save_image

Nothing else exists here: any other torchvision name the peer reached for would fail loudly with an
AttributeError or ImportError rather than silently doing something different. It is never installed into
ganforge's own environment.
"""

from . import transforms, utils

__version__ = "0+standin"
__all__ = ["transforms", "utils"]
