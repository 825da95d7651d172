"""Pictures of a prior's samples in an autoencoder's latent space, decoded by it.

A prior trained on `jaxgen codes` maps (`data.name=codes`) samples code maps, and one
trained on a VAE's latents (`data.name=latents`) samples latent vectors, not images; the
autoencoder run turns them into pictures with its decoder (`Objective.autoencoder.decode`).
For codes its run is the one the .npz names (`vqvae_workdir`), or `data.decoder_workdir`
when set (a moved run); for latents it is `data.workdir`.
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
    """The autoencoder run that decodes the prior's samples, or None if unknown/absent."""
    wd = config.data.get("decoder_workdir", "") or ""
    if not wd and config.data.get("name") == "latents":
        wd = config.data.get("workdir", "") or ""
    if not wd and config.data.get("path"):
        from jaxgen.data import load_codes_file
        wd = load_codes_file(config.data.path,
                             tuple(config.data.get("levels", ()) or ()))[2] or ""
    return wd if wd and (Path(wd) / "config.json").exists() else None


@functools.lru_cache(maxsize=4)
def _load(workdir: str, latent: str | None):
    """(exp, params, the Autoencoder, its jitted decode) of the autoencoder run; `latent`:
    the data.latent of a prior on `data.name=latents` (None: code maps)."""
    from jaxgen.core import runs
    from jaxgen.data.latents import latent_view

    def check(exp):
        if exp.objective.autoencoder is None:
            raise UserError(f"{workdir} is a {exp.objective.name} run; decoding a prior's "
                            "samples needs the autoencoder (VAE, VQ-VAE) whose latents it "
                            "models.")

    exp, params = runs.restore(workdir, check=check)
    ae = exp.objective.autoencoder
    if latent is not None:
        ae = latent_view(ae, latent, workdir)
    return exp, params, ae, jax.jit(ae.decode)


def decode(config, codes, chunk: int = 500) -> np.ndarray | None:
    """uint8 images of `codes` (N, h, w) by their VQ-VAE, or of latents (N, d) by their
    VAE (or VQ-VAE: pre-quantised maps), or None when it is not available (or they are not
    a whole latent of it)."""
    wd = decoder_workdir(config)
    if wd is None:
        return None
    latent = (config.data.get("latent", "mean") or "mean"
              if config.data.get("name") == "latents" else None)
    exp, params, ae, fn = _load(str(Path(wd).resolve()), latent)
    codes = np.asarray(codes)
    if codes[0].size != np.prod(ae.latent_shape):
        return None  # e.g. a VQ-VAE-2's top map alone: its decoder needs both levels
    codes = codes.reshape(len(codes), *ae.latent_shape).astype(
        np.float32 if ae.num_codes is None else np.int32)
    out = [transforms.postprocess(exp.info.kind, fn(params, codes[i:i + chunk]))
           for i in range(0, len(codes), chunk)]
    return np.concatenate(out)


def code_maps_as_images(codes, num_tokens: int) -> np.ndarray:
    """Grey maps of the code indices (k -> 255 k / (K − 1)), 4x upsampled, for a grid."""
    g = np.asarray(codes, np.float64) * 255.0 / max(1, num_tokens - 1)
    g = np.repeat(np.repeat(g, 4, axis=1), 4, axis=2)
    return g.round().astype(np.uint8)[..., None]


def decodes_samples(config) -> bool:
    """Whether the data are an autoencoder's latents (codes or vectors), so that samples
    are pictures only once decoded."""
    return config.data.get("name") in ("codes", "latents")


def write_token_samples(exp, codes, path: Path, main: bool = True) -> tuple[Path, str]:
    """The decoded grid (or grey code maps when no decoder is known; latent vectors that
    cannot be decoded are saved as .npy)."""
    images = decode(exp.config, codes)
    note = "samples decoded by their autoencoder"
    if images is None and exp.info.kind != "tokens":
        path = path.with_suffix(".npy")
        if main:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.asarray(codes))
        return path, "latent vectors (no autoencoder run found to decode them: data.workdir)"
    if images is None:
        images = code_maps_as_images(codes, exp.info.num_tokens or 2)
        note = ("grey code maps (no VQ-VAE run found to decode them: set "
                "data.decoder_workdir)")
    if main:
        viz.save_image_grid(images, path)
    return path, note
