"""GAN families: one file each, registered in FAMILIES."""

from __future__ import annotations

from typing import Any

from ..data.spec import DataSpec
from .base import AdversarialConfig, AdversarialFamily, Family, StepOutput
from .phases import Phase, StepContext
from .aae import AAE
from .acgan import ACGAN
from .ae import AE
from .cgan import CGAN
from .ctgan import CTGAN
from .dann import DANN
from .cyclegan import CycleGAN
from .dcgan import DCGAN
from .discogan import DiscoGAN
from .fastgan import FastGAN
from .fatgan import FATGAN
from .gan import GAN
from .ganintcls import GANINTCLS
from .infogan import InfoGAN
from .pix2pix import Pix2Pix
from .progan import ProGAN
from .sgan import SGAN
from .srgan import SRGAN
from .stackgan import StackGAN
from .stargan import StarGAN
from .stylegan import StyleGAN
from .vae import VAE
from .vaegan import VAEGAN
from .specgan import SpecGAN
from .wavegan import CWaveGAN, WaveGAN

FAMILIES: dict[str, type[Family]] = {
    "gan": GAN,
    "dcgan": DCGAN,
    "cgan": CGAN,
    "acgan": ACGAN,
    "infogan": InfoGAN,
    "sgan": SGAN,
    "gan-int-cls": GANINTCLS,
    "stackgan": StackGAN,
    "fastgan": FastGAN,
    "stylegan": StyleGAN,
    "progan": ProGAN,
    "pix2pix": Pix2Pix,
    "srgan": SRGAN,
    "stargan": StarGAN,
    "cyclegan": CycleGAN,
    "discogan": DiscoGAN,
    "fatgan": FATGAN,
    "ctgan": CTGAN,
    "ae": AE,
    "vae": VAE,
    "aae": AAE,
    "vaegan": VAEGAN,
    "dann": DANN,
    "wavegan": WaveGAN,
    "cwavegan": CWaveGAN,
    "specgan": SpecGAN,
}


def get_family(name: str) -> type[Family]:
    if name not in FAMILIES:
        raise ValueError(f"unknown family '{name}'; choose one of: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def build_family(name: str, options: dict[str, Any] | None, spec: DataSpec, generator_only: bool = False) -> Family:
    cls = get_family(name)
    return cls(cls.make_config(options), spec, generator_only=generator_only)


__all__ = ["FAMILIES", "AdversarialConfig", "AdversarialFamily", "Family", "Phase", "StepContext", "StepOutput",
           "build_family", "get_family"]
