"""`data.name=latents`: a trained autoencoder's latent representation as data (issue 21).

`data.workdir=RUN` names a run whose objective offers an `Autoencoder` with continuous
latents (a VAE: `encode` gives the posterior means). Its own data split (train, or its
test split for held-out data) is encoded here, in chunks, from the bin centres of the
8-bit images (no dequantisation noise), and flattened to vectors: the data of a prior
are "points" of dimension prod(latent_shape), with the images' labels. A prior trained
on them (flow matching, flows, diffusion: every family that models points) samples
latents, which `jaxgen sample` and the end-of-run pictures decode through the same run
(`jaxgen.core.tokens.decode`).

Encodings are cached per process (run, step, split), so the train and eval splits and
a later `jaxgen sample` in the same process encode once.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from jaxgen.core.errors import MissingError, UserError
from jaxgen.data.sources import ArraySource


def check_autoencoder(workdir: str):
    """A `check(exp)` for `runs.restore`: the run must offer continuous latents."""
    def check(exp):
        ae = exp.objective.autoencoder
        if ae is None:
            raise UserError(f"{workdir} is a {exp.objective.name} run; data.name=latents needs "
                            "an autoencoder run (a VAE: objective.name=vae).")
        if ae.num_codes is not None:
            raise UserError(f"{workdir} is a VQ-VAE run with discrete codes; export them with "
                            "`jaxgen codes` and use data.name=codes for a prior over them.")
    return check


@functools.lru_cache(maxsize=8)
def _encoded(workdir: str, split: str, get_dataset, chunk: int = 1000):
    import jax

    from jaxgen.core import runs
    from jaxgen.data import transforms

    exp, params = runs.restore(workdir, check=check_autoencoder(workdir))
    src = get_dataset(exp.config.data, split).source
    encode = jax.jit(exp.objective.autoencoder.encode)
    zs, labels = [], []
    for i in range(0, len(src), chunk):
        b = src.get(np.arange(i, min(i + chunk, len(src))))
        x = transforms.preprocess(exp.info.kind, b["x"], None, dequantize=False)
        zs.append(np.asarray(encode(params, x), np.float32).reshape(len(b["x"]), -1))
        if "label" in b:
            labels.append(np.asarray(b["label"]))
    z = np.concatenate(zs)
    return z, (np.concatenate(labels) if labels else None)


def latent_source(workdir: str, train: bool, get_dataset) -> ArraySource:
    """The run's posterior means (N, d) of its train or test split [+ labels];
    `get_dataset` reads the run's own data (`jaxgen.data.get_dataset`)."""
    if not workdir:
        raise UserError("data.name=latents reads a trained autoencoder's latents; set "
                        "data.workdir=RUN (e.g. a run of configs/vae/vae_fashion_mnist.py).")
    if not (Path(workdir) / "config.json").exists():
        raise MissingError(f"data.workdir={workdir} holds no jaxgen run (no config.json); "
                           "train the autoencoder there first.")
    z, label = _encoded(str(Path(workdir).resolve()), "train" if train else "test",
                        get_dataset)
    return ArraySource(z, label)
