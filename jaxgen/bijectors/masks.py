"""Coupling masks (RealNVP; Dinh et al., 2017) and fixed permutations.

Convention: ``mask = 1`` marks the entries a coupling layer leaves unchanged
and conditions on (``x_a`` in NICE, ``x_{1:d}`` in the lecture), ``mask = 0``
the entries it transforms. ``parity`` swaps the two sets, so alternating
parities across layers transform every entry.

Mask types, for an event shape ``(H, W, C)`` (image) or ``(D,)`` (vector):

* ``"checkerboard"`` (images only): ``(i + j) % 2 == parity`` is kept; shape
  ``(H, W, 1)``, the same for every channel.
* ``"channel"`` / ``"half"``: the first ``C // 2`` entries of the last axis are
  kept (``parity=0``) or the remaining ``C − C//2`` are (``parity=1``); shape
  ``(C,)``. ``"half"`` is the name that reads better for vectors.
* ``"alternating"``: even indices of the last axis kept for ``parity=0``, odd
  for ``parity=1``; shape ``(C,)``.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.bijectors.base import Bijector
from jaxgen.kernel.errors import UserError

__all__ = [
    "MASK_TYPES",
    "Permute",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "make_mask",
]

MASK_TYPES = ("checkerboard", "channel", "half", "alternating")


def _check_parity(parity: int) -> None:
    if parity not in (0, 1):
        raise UserError(f"parity must be 0 or 1, got {parity}.")


def checkerboard_mask(h: int, w: int, parity: int = 0) -> np.ndarray:
    """``(h, w, 1)`` float32 mask, 1 where ``(i + j) % 2 == parity``."""
    _check_parity(parity)
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return ((ii + jj) % 2 == parity).astype(np.float32)[:, :, None]


def channel_mask(c: int, parity: int = 0) -> np.ndarray:
    """``(c,)`` float32 mask: first ``c // 2`` entries 1 (parity 0), or the rest (parity 1)."""
    _check_parity(parity)
    if c < 2:
        raise UserError(f"A channel/half mask needs at least 2 channels, got {c}.")
    first = np.arange(c) < c // 2
    return (first if parity == 0 else ~first).astype(np.float32)


def alternating_mask(d: int, parity: int = 0) -> np.ndarray:
    """``(d,)`` float32 mask, 1 at indices ``k`` with ``k % 2 == parity``."""
    _check_parity(parity)
    if d < 2:
        raise UserError(f"An alternating mask needs at least 2 entries, got {d}.")
    return (np.arange(d) % 2 == parity).astype(np.float32)


def make_mask(mask_type: str, event_shape: Sequence[int], parity: int = 0) -> np.ndarray:
    """The mask of ``mask_type`` for ``event_shape``, broadcastable to it."""
    event_shape = tuple(event_shape)
    if mask_type == "checkerboard":
        if len(event_shape) != 3:
            raise UserError(
                f"A checkerboard mask needs images (H, W, C); got event shape {event_shape}.")
        return checkerboard_mask(event_shape[0], event_shape[1], parity)
    if mask_type in ("channel", "half"):
        return channel_mask(event_shape[-1], parity)
    if mask_type == "alternating":
        return alternating_mask(event_shape[-1], parity)
    raise UserError(f"Unknown mask_type {mask_type!r}; expected one of {MASK_TYPES}.")


class Permute(Bijector):
    """Fixed permutation of the last axis (channels / features); log_det = 0.

    Used between couplings so every dimension gets transformed (NICE,
    RealNVP). The permutation is a trace-time constant, not a variable.

    Attributes:
      seed: ``None`` reverses the axis; an int draws
        ``numpy.random.default_rng(seed).permutation(C)``.
    """

    seed: int | None = None

    def permutation(self, c: int) -> np.ndarray:
        """The indices: output channel ``k`` is input channel ``perm[k]``."""
        if self.seed is None:
            return np.arange(c)[::-1].copy()
        return np.random.default_rng(self.seed).permutation(c)

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        perm = self.permutation(x.shape[-1])
        idx = np.argsort(perm) if inverse else perm
        return jnp.take(x, jnp.asarray(idx), axis=-1), jnp.zeros((x.shape[0],), x.dtype)
