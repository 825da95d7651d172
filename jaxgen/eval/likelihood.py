"""The one NLL / bits-per-dim convention shared by every family.

Continuous data (2-D toys, user float vectors): the model's density p(x) is
reported as `nll_nats` = mean over examples of −log p(x).

8-bit images x ∈ {0, …, 255}^D: a continuous model density p over model space
z = 2·(x + u)/256 − 1 (u ~ U[0,1)^D, uniform dequantisation; Theis et al.,
2016; Ho et al., 2019) gives, by Jensen's inequality,

    log P(x) ≥ E_u[ log p(z) ] + D·log(2/256)

where the second term is the log-Jacobian of the affine map from pixel units
to model space. We report

    bits_per_dim = −( log p(z) + D·log(2/256) ) / (D · ln 2)

averaged over examples (one dequantisation draw each), an upper bound on the
discrete model's bits/dim. Families with an exact discrete likelihood (e.g.
autoregressive models over 256 values) report −log P(x)/(D ln 2) directly and
are therefore comparable.
"""

from __future__ import annotations

import math

import numpy as np

from jaxgen.kernel import transforms


def discrete_log_likelihood(log_p_model, kind: str, event_shape):
    """Per-example log-likelihood in data units (nats) from model-space log p."""
    return np.asarray(log_p_model, np.float64) + transforms.log_det_to_discrete(kind, event_shape)


def bits_per_dim(log_p_data, event_shape) -> float:
    """Mean bits/dim from per-example data-unit log-likelihoods (nats)."""
    d = math.prod(event_shape)
    return float(-np.mean(log_p_data) / (d * math.log(2.0)))


def nll_nats(log_p_data) -> float:
    return float(-np.mean(log_p_data))
