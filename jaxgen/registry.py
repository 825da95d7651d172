"""Name -> builder tables for models and objectives, with errors that list the choices.

`train` knows no objective or model by name: it asks this module. A new
family registers its objective here and its Flax modules under `jaxgen/nn`.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Callable

import flax.linen as nn


class UnknownNameError(ValueError):
    """An unknown model, objective or dataset name."""


def _choices_error(kind: str, name: str, choices) -> UnknownNameError:
    return UnknownNameError(
        f"Unknown {kind} '{name}'. Valid choices: {', '.join(sorted(choices))}.")


# ---------------------------------------------------------------- objectives
# name -> "module:function" building an Objective from (config, model, dataset).
OBJECTIVES: dict[str, str] = {
    "flow_matching": "jaxgen.objectives.flow_matching:make",
    "flow_nll": "jaxgen.objectives.flow_nll:make",
    "ddpm": "jaxgen.objectives.ddpm:make",
    "ncsn": "jaxgen.objectives.ncsn:make",
    "vae": "jaxgen.objectives.vae:make",
    "vqvae": "jaxgen.objectives.vqvae:make",
    "gan": "jaxgen.objectives.gan:make",
    "pix2pix": "jaxgen.objectives.pix2pix:make",
    "cyclegan": "jaxgen.objectives.cyclegan:make",
    "autoregressive": "jaxgen.objectives.autoregressive:make",
}


def build_objective(config, model, dataset):
    name = config.objective.name
    if name not in OBJECTIVES:
        raise _choices_error("objective (objective.name)", name, OBJECTIVES)
    module, fn = OBJECTIVES[name].split(":")
    return getattr(importlib.import_module(module), fn)(config, model, dataset)


# -------------------------------------------------------------------- models
def _mlp(kwargs, dataset):
    from jaxgen.nn import TimeMLP
    if dataset.kind != "points":
        raise ValueError(
            f"model.name=mlp expects vector data; {dataset.name} holds images "
            f"{dataset.event_shape}. Use model.name=unet.")
    kwargs.setdefault("out_dim", dataset.event_shape[-1])
    return TimeMLP, kwargs


def _unet(kwargs, dataset):
    from jaxgen.nn import UNet
    if dataset.kind != "images":
        raise ValueError(f"model.name=unet expects images; {dataset.name} holds points. "
                         "Use model.name=mlp.")
    return UNet, kwargs


def _realnvp(kwargs, dataset):
    from jaxgen.nn.flows import RealNVP
    return RealNVP, kwargs


def _glow(kwargs, dataset):
    from jaxgen.nn.flows import Glow
    return Glow, kwargs


def _vae_mlp(kwargs, dataset):
    from jaxgen.nn.vae import MLPVAE
    kwargs.setdefault("event_shape", tuple(dataset.event_shape))
    return MLPVAE, kwargs


def _vae_conv(kwargs, dataset):
    from jaxgen.nn.vae import ConvVAE
    if dataset.kind != "images":
        raise ValueError(f"model.name=vae_conv expects images; {dataset.name} holds points. "
                         "Use model.name=vae_mlp.")
    kwargs.setdefault("event_shape", tuple(dataset.event_shape))
    return ConvVAE, kwargs


def _vqvae_conv(kwargs, dataset):
    from jaxgen.nn.vae import VQVAEConv
    if dataset.kind != "images":
        raise ValueError(f"model.name=vqvae_conv expects images; {dataset.name} holds points.")
    kwargs.setdefault("event_shape", tuple(dataset.event_shape))
    return VQVAEConv, kwargs


def _gan_mlp(kwargs, dataset):
    from jaxgen.nn.gan import MLPGAN
    kwargs.setdefault("event_shape", tuple(dataset.event_shape))
    return MLPGAN, kwargs


def _dcgan(kwargs, dataset):
    from jaxgen.nn.gan import DCGAN
    if dataset.kind != "images":
        raise ValueError(f"model.name=dcgan expects images; {dataset.name} holds points. "
                         "Use model.name=gan_mlp.")
    kwargs.setdefault("event_shape", tuple(dataset.event_shape))
    return DCGAN, kwargs


def _pix2pix_unet(kwargs, dataset):
    from jaxgen.nn.image2image import Pix2Pix
    if dataset.kind != "images":
        raise ValueError(f"model.name=pix2pix_unet translates images; {dataset.name} holds "
                         "points.")
    kwargs.setdefault("event_shape", tuple(dataset.event_shape))
    return Pix2Pix, kwargs


def _cyclegan(kwargs, dataset):
    from jaxgen.nn.image2image import CycleGAN
    if dataset.kind != "images":
        raise ValueError(f"model.name=cyclegan translates images; {dataset.name} holds points.")
    kwargs.setdefault("event_shape", tuple(dataset.event_shape))
    return CycleGAN, kwargs


def _ar(cls_name: str):
    """Autoregressive models (`jaxgen.nn.autoregressive`); sequence models get max_len = D."""
    def build(kwargs, dataset):
        from jaxgen.nn import autoregressive
        cls = getattr(autoregressive, cls_name)
        if cls_name == "PixelCNN" and dataset.kind != "images":
            raise ValueError(f"model.name=pixelcnn models images; {dataset.name} holds points. "
                             "Use ar_mlp, ar_rnn, wavenet or ar_transformer.")
        if "max_len" in {f.name for f in dataclasses.fields(cls)}:
            kwargs.setdefault("max_len", math.prod(dataset.event_shape))
        return cls, kwargs
    return build


MODELS: dict[str, Callable] = {"mlp": _mlp, "unet": _unet, "realnvp": _realnvp, "glow": _glow,
                               "vae_mlp": _vae_mlp, "vae_conv": _vae_conv,
                               "vqvae_conv": _vqvae_conv, "gan_mlp": _gan_mlp, "dcgan": _dcgan,
                               "pix2pix_unet": _pix2pix_unet, "cyclegan": _cyclegan,
                               "ar_mlp": _ar("FiniteMemoryMLP"), "ar_rnn": _ar("RNN"),
                               "wavenet": _ar("WaveNet"), "pixelcnn": _ar("PixelCNN"),
                               "ar_transformer": _ar("CausalTransformer")}


def build_model(model_config, dataset) -> nn.Module:
    """Instantiates the Flax module named by `model.name` with the other `model.*` keys."""
    name = model_config.name
    if name not in MODELS:
        raise _choices_error("model (model.name)", name, MODELS)
    kwargs = {k: (tuple(v) if isinstance(v, list) else v)
              for k, v in model_config.to_dict().items() if k != "name"}
    cls, kwargs = MODELS[name](kwargs, dataset)
    fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise UnknownNameError(
            f"model.{unknown[0]} is not a setting of model '{name}'. "
            f"Valid model.* keys: {', '.join(sorted(fields))}.")
    return cls(**kwargs)


def model_names() -> list[str]:
    return sorted(MODELS)


def objective_names() -> list[str]:
    return sorted(OBJECTIVES)
