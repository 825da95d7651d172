"""The dataset `data.name=latents`: a trained autoencoder's latent representation as data.

`data.workdir=RUN` names a run whose objective offers an `Autoencoder` with continuous
latents (a VAE: `encode` gives the posterior means; `data.latent=sample` takes one draw
z ~ q(z|x) per image instead, `posterior_draw`, seeded by `data.seed`: a prior fitted to
draws models the aggregate posterior, the density the composed bound scores), or a
VQ-VAE with `data.latent=pre_quantized`: its encoder's maps before quantisation
(`Autoencoder.continuous`), decoded by quantising a sample to the nearest codes. Its own
data split (train, or its test split for held-out data) is encoded here, in chunks, from
the bin centres of the 8-bit images (no dequantisation noise), and flattened to vectors:
the data of a prior are "points" of dimension prod(latent_shape), with the images'
labels; `data.keep_shape=true` keeps each latent's own shape instead (a VQ-VAE's
h x w x D maps, "points" with that event shape, for a convolutional model: the U-Net).
A prior trained on them (flow matching, flows, diffusion: every family that models
points) samples latents, which `jaxgen sample` and the end-of-run pictures decode
through the same run (`jaxgen.composed.decoding`).

Encodings are cached per process (run, split, latent, seed), so the train and eval splits and
a later `jaxgen sample` in the same process encode once.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from jaxgen.composed import references
from jaxgen.composed.decoding import run_decoder
from jaxgen.data.datasets._common import CLASSES_DOC, keep_classes
from jaxgen.data.sources import ArraySource
from jaxgen.kernel.contract import Dataset
from jaxgen.kernel.errors import UserError
from jaxgen.kernel.registry import DatasetSpec, register_dataset
from jaxgen.kernel.settings import non_negative, setting

LATENTS = ("mean", "sample", "pre_quantized")


@dataclasses.dataclass(frozen=True)
class LatentSettings:
    workdir: str = setting("", "the autoencoder run (a VAE, a VQ-VAE) whose latents are the "
                               "data and which decodes samples")
    latent: str = setting("mean", "a VAE's posterior means, or one draw z ~ q(z|x) per image "
                                  "(seeded by data.seed), or a VQ-VAE's pre-quantised "
                                  "encoder maps", choices=LATENTS)
    seed: int = setting(0, "which posterior draw is taken (data.latent=sample; independent "
                           "of seed)", check=non_negative)
    keep_shape: bool = setting(False, "keep each latent's own shape (a VQ-VAE's h x w x D "
                                      "maps, for model.name=unet) instead of flattening it "
                                      "to a vector")
    classes: tuple = setting((), CLASSES_DOC)


def latent_view(ae, latent: str, workdir: str):
    """The `Autoencoder` whose latents `data.latent` names: the run's own for a VAE's means
    or draws, its continuous view (`Autoencoder.continuous`) for a VQ-VAE's pre-quantised
    maps; one clear error when the run offers no such latent."""
    if latent not in LATENTS:
        raise UserError(f"data.latent must be one of {', '.join(LATENTS)}, got {latent!r}.")
    if latent == "pre_quantized":
        if ae.continuous is None:
            kind = "discrete codes" if ae.num_codes is not None else "continuous latents"
            raise UserError(f"{workdir}'s autoencoder ({kind}) has no pre-quantised view: "
                            "data.latent=pre_quantized is for a VQ-VAE run "
                            "(objective.name=vqvae); a VAE takes data.latent=mean or sample.")
        return ae.continuous
    if ae.num_codes is not None:
        raise UserError(f"{workdir} is a VQ-VAE run with discrete codes: set "
                        "data.latent=pre_quantized for its encoder's maps before "
                        "quantisation, or export the codes with `jaxgen codes` and use "
                        "data.name=codes for a prior over them.")
    return ae


def check_autoencoder(workdir: str, latent: str = "mean"):
    """A `check(exp)` for `runs.restore`: the run must offer the latents `latent` names."""
    def check(exp):
        ae = exp.objective.autoencoder
        if ae is None:
            raise UserError(f"{workdir} is a {exp.objective.name} run; data.name=latents needs "
                            "an autoencoder run (a VAE: objective.name=vae; a VQ-VAE with "
                            "data.latent=pre_quantized).")
        latent_view(ae, latent, workdir)
    return check


@functools.lru_cache(maxsize=8)
def _encoded(workdir: str, split: str, latent: str = "mean", seed: int = 0,
             keep_shape: bool = False, chunk: int = 1000):
    import jax

    from jaxgen.data import get_dataset
    from jaxgen.kernel import transforms

    exp, params = references.restore(workdir, check=check_autoencoder(workdir, latent))
    ae = latent_view(exp.objective.autoencoder, latent, workdir)
    src = get_dataset(exp.config.data, split).source
    if latent == "sample":
        if ae.posterior_draw is None:
            raise UserError(f"{workdir}'s autoencoder offers no posterior draws; use "
                            "data.latent=mean.")
        key = jax.random.fold_in(jax.random.key(seed), 0 if split == "train" else 1)
        draw = jax.jit(lambda p, x, i: ae.posterior_draw(p, x, jax.random.fold_in(key, i))[0])
        encode = lambda p, x, i: draw(p, x, i)  # noqa: E731
    else:
        mean = jax.jit(ae.encode)
        encode = lambda p, x, i: mean(p, x)  # noqa: E731
    zs, labels = [], []
    for i in range(0, len(src), chunk):
        b = src.get(np.arange(i, min(i + chunk, len(src))))
        x = transforms.preprocess(exp.info.kind, b["x"], None, dequantize=False)
        z = np.asarray(encode(params, x, i), np.float32)
        zs.append(z if keep_shape else z.reshape(len(b["x"]), -1))
        if "label" in b:
            labels.append(np.asarray(b["label"]))
    z = np.concatenate(zs)
    return z, (np.concatenate(labels) if labels else None)


def latent_source(workdir: str, train: bool, latent: str = "mean", seed: int = 0,
                  keep_shape: bool = False) -> ArraySource:
    """The run's latents (N, d) of its train or test split [+ labels]: posterior means
    (latent="mean"), one draw z ~ q(z|x) per image (latent="sample", a pure function of
    `seed`, the split and the chunk), or a VQ-VAE's pre-quantised maps (latent=
    "pre_quantized"), each flattened to a vector unless `keep_shape` (then (N, *latent
    shape), e.g. (N, h, w, D) maps)."""
    if latent not in LATENTS:
        raise UserError(f"data.latent must be one of {', '.join(LATENTS)}, got {latent!r}.")
    if not workdir:
        raise UserError("data.name=latents reads a trained autoencoder's latents; set "
                        "data.workdir=RUN (e.g. a run of configs/vae/vae_fashion_mnist.py).")
    path = references.run_folder(workdir, "data.workdir",
                                 "train the autoencoder there first")
    z, label = _encoded(str(path), "train" if train else "test", latent, int(seed),
                        bool(keep_shape))
    return ArraySource(z, label)


def build(s: LatentSettings, split: str) -> Dataset:
    src = keep_classes(latent_source(s.workdir, split == "train", s.latent, s.seed,
                                     s.keep_shape), s.classes)
    return Dataset("latents", "points", src, src.event_shape, src.num_classes)


@functools.lru_cache(maxsize=None)
def _view(latent: str):
    """`(autoencoder, workdir) -> its view` for data.latent (one function per latent, so
    the decoder's cache keys on it)."""
    return lambda ae, workdir: latent_view(ae, latent, workdir)


def decoder(s: LatentSettings):
    return run_decoder(s.workdir, "latent vectors (no autoencoder run found to decode them: "
                                  "data.workdir)", view=_view(s.latent))


register_dataset(DatasetSpec("latents", build, LatentSettings,
                             "an autoencoder run's latents of its images (data.workdir)",
                             kind="points", decoder=decoder))
