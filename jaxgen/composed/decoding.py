"""Decoding a prior's samples in an autoencoder's latent space into its pictures.

A prior trained on `jaxgen codes` maps (`data.name=codes`) samples code maps, and one
trained on a VAE's latents (`data.name=latents`) samples latent vectors, not images; the
autoencoder run turns them into pictures with its decoder (`Objective.autoencoder.decode`).
Each of those datasets declares a `Decoder` (`DatasetSpec.decoder`) built here: for codes
its run is `data.decoder_workdir` when set (a moved run), else the one the .npz names
(`vqvae_workdir`); for latents it is `data.workdir`. The runner's pictures and
`jaxgen sample` use it through the registry, without knowing either dataset.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np

from jaxgen.composed import references
from jaxgen.kernel import registry, transforms
from jaxgen.kernel.contract import Decoder
from jaxgen.kernel.errors import UserError


def _check(workdir):
    def check(exp):
        if exp.objective.autoencoder is None:
            raise UserError(f"{workdir} is a {exp.objective.name} run; decoding a prior's "
                            "samples needs the autoencoder (VAE, VQ-VAE) whose latents it "
                            "models.")
    return check


@functools.lru_cache(maxsize=4)
def _load(workdir: str, view=None):
    """(exp, params, the Autoencoder, its jitted decode) of the autoencoder run; `view`:
    `(autoencoder, workdir) -> the Autoencoder of the latents` (None: the run's own)."""
    exp, params = references.restore(workdir, check=_check(workdir))
    ae = exp.objective.autoencoder
    if view is not None:
        ae = view(ae, workdir)
    return exp, params, ae, jax.jit(ae.decode)


def decode_with(workdir: str, view, codes, chunk: int = 500):
    """uint8 images of `codes` (N, h, w) by the VQ-VAE in `workdir`, or of latents (N, d)
    by its VAE (or VQ-VAE: pre-quantised maps, `view`), or None when they are not a
    whole latent of it (e.g. a VQ-VAE-2's top map alone: its decoder needs both levels)."""
    exp, params, ae, fn = _load(str(Path(workdir).resolve()), view)
    codes = np.asarray(codes)
    if codes[0].size != np.prod(ae.latent_shape):
        return None
    codes = codes.reshape(len(codes), *ae.latent_shape).astype(
        np.float32 if ae.num_codes is None else np.int32)
    out = [transforms.postprocess(exp.info.kind, fn(params, codes[i:i + chunk]))
           for i in range(0, len(codes), chunk)]
    return np.concatenate(out)


def run_decoder(workdir: str | None, missing: str, view=None) -> Decoder:
    """The `Decoder` through the autoencoder run `workdir` (None, or a folder with no run:
    it decodes nothing and the pictures show `missing`); `view` as in `decode_with` (a
    hashable function: decoders are cached per run and view)."""
    found = bool(workdir) and (Path(workdir) / "config.json").exists()
    return Decoder(lambda x: decode_with(workdir, view, x) if found else None, missing)


def decode(config, samples) -> np.ndarray | None:
    """uint8 images of a prior's `samples` by the autoencoder its data came from (config:
    the prior run's), or None when it cannot be found or they are not decodable."""
    decoder = registry.dataset_decoder(config.data)
    return None if decoder is None else decoder.decode(samples)
