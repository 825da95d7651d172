"""Invertible layers with exact log-determinants, as Flax Linen modules.

Every bijector has ``forward_and_log_det(x) -> (y, log_det)`` (data → latent,
the normalizing direction) and ``inverse_and_log_det(y) -> (x, log_det)``
(latent → data), with ``log_det`` of shape ``(B,)``; see
:mod:`jaxgen.bijectors.base` for the protocol and how to init / apply.

Layers: :class:`ActNorm`, :class:`Conv1x1`, :class:`Conv1x1LU`,
:class:`AffineCoupling`, :class:`AdditiveCoupling`, :class:`HalfCoupling`,
:class:`RQSplineCoupling` (+ :func:`rational_quadratic_spline`), :class:`Permute`,
:class:`Squeeze`, :class:`Unsqueeze`, :class:`Split` (+ :func:`multi_scale`),
:class:`LearnedPrior`, :class:`LogitTransform`, :class:`ScaleShift`; composition :class:`Chain`,
:class:`Inverse`. Default conditioners live in :mod:`jaxgen.bijectors.conditioners`.
"""

from jaxgen.bijectors.actnorm import ActNorm
from jaxgen.bijectors.base import Bijector, Chain, Inverse, standard_normal_log_prob
from jaxgen.bijectors.conv1x1 import Conv1x1, Conv1x1LU, permutation_matrix, random_orthogonal
from jaxgen.bijectors.coupling import (
    HALF_COUPLINGS,
    AdditiveCoupling,
    AffineCoupling,
    HalfCoupling,
    default_conditioner,
)
from jaxgen.bijectors.masks import (
    MASK_TYPES,
    Permute,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    make_mask,
)
from jaxgen.bijectors.multiscale import (
    LearnedPrior,
    Split,
    Squeeze,
    Unsqueeze,
    multi_scale,
    squeeze2d,
    unsqueeze2d,
)
from jaxgen.bijectors.preprocess import LogitTransform, ScaleShift
from jaxgen.bijectors.spline import RQSplineCoupling, rational_quadratic_spline, spline_knots

__all__ = [
    "HALF_COUPLINGS",
    "MASK_TYPES",
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "Bijector",
    "Chain",
    "Conv1x1",
    "Conv1x1LU",
    "HalfCoupling",
    "Inverse",
    "LearnedPrior",
    "LogitTransform",
    "Permute",
    "RQSplineCoupling",
    "ScaleShift",
    "Split",
    "Squeeze",
    "Unsqueeze",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "default_conditioner",
    "make_mask",
    "multi_scale",
    "permutation_matrix",
    "random_orthogonal",
    "rational_quadratic_spline",
    "spline_knots",
    "squeeze2d",
    "standard_normal_log_prob",
    "unsqueeze2d",
]
