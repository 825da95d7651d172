"""Coupling layers: affine (RealNVP; Dinh et al., 2017) and additive (NICE;
Dinh et al., 2015) with masks, and :class:`HalfCoupling` on channel halves (Glow).

With a binary ``mask`` (1 = kept, see :mod:`jaxgen.bijectors.masks`) and
``x_a = mask ⊙ x`` the kept part, the affine coupling is, as in the lecture's
table (``x_{1:d}`` kept, ``x_{d+1:D}`` transformed)::

    raw_t, raw_s = split(conditioner(x_a))               (2·C outputs)
    s = (1 − mask) ⊙ a ⊙ tanh(raw_s),   t = (1 − mask) ⊙ raw_t
    y = x ⊙ exp(s) + t                                   (kept entries: s = t = 0)
    log|det ∂y/∂x| = Σ s

The Jacobian is triangular (``∂y_a/∂x_a = I``, ``∂y_b/∂x_b = diag(exp(s))``),
so its log-determinant is the sum of ``s``; the inverse
``x = (y − t) ⊙ exp(−s)`` needs the conditioner only on ``y_a = x_a``.

Stable scale: ``s = a ⊙ tanh(raw_s)`` with a learnable per-channel bound
``a`` (parameter ``"scale_factor"``, initialised to 1), as in RealNVP's
reference code. ``|s| ≤ |a|`` so one step cannot blow up or collapse a
dimension by more than ``exp(|a|)`` however large the conditioner output, and
``a`` can still grow when a larger range is needed.

The conditioner is any Flax module ``(B, ..., C) -> (B, ..., 2·C)`` (affine:
the first ``C`` outputs are ``raw_t``, the last ``C`` are ``raw_s``) or
``(B, ..., C) -> (B, ..., C)`` (additive), given as the ``conditioner``
attribute; ``None`` picks a default from :mod:`jaxgen.bijectors.conditioners` by the
input's rank. With the conditioner's last layer zero-initialised (as in the
defaults) the coupling is exactly the identity at init.

The log-scales are recorded with ``self.sow("intermediates", "log_scale", s)``
(shape of ``x``, zeros on kept entries): ``apply(..., mutable=["intermediates"])``
returns them.

:class:`HalfCoupling` splits the channels instead of masking them, as Glow's
``revnet2d_step`` and the channel couplings of RealNVP's released code do: ``x = [x_a,
x_b]`` (channel halves), the conditioner reads ``x_a`` alone (C_a channels, not C with
zeros) and returns parameters for ``x_b`` alone, so its first and last layers are about
half as wide as a masked coupling's. Its forms (``kind``):

    "additive":  y_b = x_b + t                                   log_det = 0
    "sigmoid":   y_b = (x_b + t) · σ(s + 2)                      log_det = Σ log σ(s + 2)
                 (Glow's affine coupling; t, s = the even and odd conditioner outputs)
    "tanh":      y_b = (x_b + t) · exp(a ⊙ tanh(s))              log_det = Σ a ⊙ tanh(s)
                 (RealNVP's code; t, s = the first and second half of the outputs, a a
                 learned per-channel bound initialised to 1, "scale_factor")
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.bijectors.base import Bijector
from jaxgen.bijectors.conditioners import ConvConditioner, MLPConditioner
from jaxgen.bijectors.masks import make_mask
from jaxgen.distributions import sum_event
from jaxgen.kernel.errors import UserError

__all__ = ["AffineCoupling", "AdditiveCoupling", "HalfCoupling", "HALF_COUPLINGS",
           "default_conditioner"]

HALF_COUPLINGS = ("additive", "sigmoid", "tanh")  # HalfCoupling.kind


def default_conditioner(x: jax.Array, out_per_channel: int, name: str = "conditioner") -> nn.Module:
    """A default conditioner for ``x``: ``MLPConditioner`` for ``(B, D)``,
    ``ConvConditioner`` for NHWC, with ``out_per_channel · C`` outputs."""
    out = out_per_channel * x.shape[-1]
    if x.ndim == 2:
        return MLPConditioner(out, name=name)
    if x.ndim == 4:
        return ConvConditioner(out, name=name)
    raise UserError(f"No default conditioner for inputs of shape {x.shape}; pass one.")


def _conditioner_output(module: nn.Module, x_a: jax.Array, out_per_channel: int) -> jax.Array:
    h = module(x_a)
    expected = x_a.shape[:-1] + (out_per_channel * x_a.shape[-1],)
    if h.shape != expected:
        raise UserError(f"The conditioner returned shape {h.shape}; this coupling needs {expected} "
                         f"({out_per_channel}·C outputs per position).")
    return h


class AffineCoupling(Bijector):
    """Affine coupling ``y = x ⊙ exp(s(x_a)) + t(x_a)`` on the unmasked part.

    Attributes:
      conditioner: Flax module ``(B, ..., C) -> (B, ..., 2C)`` (shift, raw
        log-scale); ``None`` for :func:`default_conditioner`.
      mask_type: ``"checkerboard"``, ``"channel"``, ``"half"`` or ``"alternating"``.
      parity: 0 or 1; which set of entries is kept.
    """

    conditioner: nn.Module | None = None
    mask_type: str = "checkerboard"
    parity: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        mask = jnp.asarray(make_mask(self.mask_type, x.shape[1:], self.parity), x.dtype)
        x_a = x * mask
        net = self.conditioner if self.conditioner is not None else default_conditioner(x, 2)
        raw_t, raw_s = jnp.split(_conditioner_output(net, x_a, 2), 2, axis=-1)
        factor = self.param("scale_factor", nn.initializers.ones, (x.shape[-1],), x.dtype)
        s = (1.0 - mask) * factor * jnp.tanh(raw_s)
        t = (1.0 - mask) * raw_t
        self.sow("intermediates", "log_scale", s)
        log_det = sum_event(s)
        if not inverse:
            return x * jnp.exp(s) + t, log_det
        return (x - t) * jnp.exp(-s), -log_det


class AdditiveCoupling(Bijector):
    """Additive (volume-preserving) coupling ``y = x + t(x_a)`` on the unmasked part; log_det = 0.

    Attributes:
      conditioner: Flax module ``(B, ..., C) -> (B, ..., C)``; ``None`` for
        :func:`default_conditioner`.
      mask_type: ``"checkerboard"``, ``"channel"``, ``"half"`` or ``"alternating"``.
      parity: 0 or 1; which set of entries is kept.
    """

    conditioner: nn.Module | None = None
    mask_type: str = "half"
    parity: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        mask = jnp.asarray(make_mask(self.mask_type, x.shape[1:], self.parity), x.dtype)
        net = self.conditioner if self.conditioner is not None else default_conditioner(x, 1)
        t = (1.0 - mask) * _conditioner_output(net, x * mask, 1)
        log_det = jnp.zeros((x.shape[0],), x.dtype)
        return (x - t if inverse else x + t), log_det


class HalfCoupling(Bijector):
    """Coupling on channel halves (module doc): ``x_a`` kept, ``x_b`` transformed from
    ``conditioner(x_a)``.

    Attributes:
      conditioner: Flax module ``(B, ..., C_a) -> (B, ..., k·C_b)``, k = 1 for "additive",
        2 otherwise (a zero-initialised last layer makes the coupling the identity at init,
        up to the constant σ(2) scale of "sigmoid").
      kind: "additive", "sigmoid" or "tanh" (module doc).
      parity: 0 keeps the first ``C // 2`` channels and transforms the rest; 1 transforms
        the first ``C − C // 2`` and keeps the last ``C // 2``.
    """

    conditioner: nn.Module
    kind: str = "sigmoid"
    parity: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        if self.kind not in HALF_COUPLINGS:
            raise UserError(f"HalfCoupling.kind={self.kind!r}: expected one of {HALF_COUPLINGS}.")
        if self.parity not in (0, 1):
            raise UserError(f"parity must be 0 or 1, got {self.parity}.")
        c = x.shape[-1]
        if c < 2:
            raise UserError(f"A half coupling needs at least 2 channels, got shape {x.shape}.")
        keep = c // 2
        if self.parity == 0:
            x_a, x_b = x[..., :keep], x[..., keep:]
        else:
            x_b, x_a = x[..., :c - keep], x[..., c - keep:]
        per = 1 if self.kind == "additive" else 2
        h = self.conditioner(x_a)
        expected = x_a.shape[:-1] + (per * x_b.shape[-1],)
        if h.shape != expected:
            raise UserError(f"The conditioner returned shape {h.shape}; this coupling needs "
                            f"{expected} ({per}·C_b outputs per position).")
        if self.kind == "additive":
            t, log_s = h, jnp.zeros_like(x_b)
        elif self.kind == "sigmoid":
            t, log_s = h[..., 0::2], jax.nn.log_sigmoid(h[..., 1::2] + 2.0)
        else:
            t, raw = jnp.split(h, 2, axis=-1)
            factor = self.param("scale_factor", nn.initializers.ones, (x_b.shape[-1],), x.dtype)
            log_s = factor * jnp.tanh(raw)
        log_det = sum_event(log_s)
        if not inverse:
            y_b = (x_b + t) * jnp.exp(log_s)
        else:
            y_b, log_det = x_b * jnp.exp(-log_s) - t, -log_det
        parts = [x_a, y_b] if self.parity == 0 else [y_b, x_a]
        return jnp.concatenate(parts, axis=-1), log_det
