"""Pictures of token data: a prior's sampled code maps, decoded by their VQ-VAE.

A prior trained on `jaxgen codes` maps (`data.name=codes`) samples code maps,
not images; the run that wrote them turns codes into pictures with its decoder
(`Objective.autoencoder.decode`, with discrete codes). Its run is the one the .npz names
(`vqvae_workdir`), or `data.decoder_workdir` when set (a moved run).
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np

from jaxgen import viz
from jaxgen.core.errors import UserError
from jaxgen.data import transforms


def decoder_workdir(config) -> str | None:
    """The VQ-VAE run that decodes the prior's codes, or None if unknown/absent."""
    wd = config.data.get("decoder_workdir", "") or ""
    if not wd and config.data.get("path"):
        from jaxgen.data import load_codes_file
        wd = load_codes_file(config.data.path,
                             tuple(config.data.get("levels", ()) or ()))[2] or ""
    return wd if wd and (Path(wd) / "config.json").exists() else None


@functools.lru_cache(maxsize=4)
def _load(workdir: str):
    from jaxgen.core import runs

    def check(exp):
        ae = exp.objective.autoencoder
        if ae is None or ae.num_codes is None:
            raise UserError(f"{workdir} is a {exp.objective.name} run; decoding codes needs "
                            "the VQ-VAE (objective.name=vqvae) that exported them.")

    exp, params = runs.restore(workdir, check=check)
    return exp, params, jax.jit(exp.objective.autoencoder.decode)


def decode(config, codes, chunk: int = 500) -> np.ndarray | None:
    """uint8 images of `codes` (N, h, w) by their VQ-VAE, or None when it is not available
    (or the codes are not a whole code of it)."""
    wd = decoder_workdir(config)
    if wd is None:
        return None
    exp, params, fn = _load(str(Path(wd).resolve()))
    codes = np.asarray(codes, np.int32)
    if codes[0].size != np.prod(exp.objective.autoencoder.latent_shape):
        return None  # e.g. a VQ-VAE-2's top map alone: its decoder needs both levels
    out = [transforms.postprocess(exp.info.kind, fn(params, codes[i:i + chunk]))
           for i in range(0, len(codes), chunk)]
    return np.concatenate(out)


def code_maps_as_images(codes, num_tokens: int) -> np.ndarray:
    """Grey maps of the code indices (k -> 255 k / (K − 1)), 4x upsampled, for a grid."""
    g = np.asarray(codes, np.float64) * 255.0 / max(1, num_tokens - 1)
    g = np.repeat(np.repeat(g, 4, axis=1), 4, axis=2)
    return g.round().astype(np.uint8)[..., None]


def write_token_samples(exp, codes, path: Path, main: bool = True) -> tuple[Path, str]:
    """The decoded grid (or grey code maps when no decoder is known)."""
    images = decode(exp.config, codes)
    note = "code maps decoded by their VQ-VAE"
    if images is None:
        images = code_maps_as_images(codes, exp.info.num_tokens or 2)
        note = ("grey code maps (no VQ-VAE run found to decode them: set "
                "data.decoder_workdir)")
    if main:
        viz.save_image_grid(images, path)
    return path, note
