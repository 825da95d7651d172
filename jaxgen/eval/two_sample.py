"""Classifier two-sample test (C2ST; Lopez-Paz & Oquab, 2017, "Revisiting Classifier
Two-Sample Tests", ICLR).

To test ``H0: P = Q`` from samples ``x ~ P`` and ``y ~ Q``: label the ``x`` points 0 and the
``y`` points 1, train a binary classifier on part of the pooled data and measure its accuracy
``acc`` on the ``n_test`` held-out points. Under ``H0`` the features carry no information
about the label, so the number of correct held-out predictions ``c = acc * n_test`` is (at
most as dispersed as) ``Binomial(n_test, 1/2)``; the one-sided p-value is the exact tail

    p_value = Pr(Binomial(n_test, 1/2) >= c) = 2^{-n_test} sum_{i=c}^{n_test} C(n_test, i).

Here the classes are balanced (the larger sample is subsampled to the size of the smaller)
and the split is stratified, so the test set holds exactly ``n_test / 2`` points of each
class. Conditionally on the features, ``H0`` then makes the test labels a uniformly random
balanced assignment, whose number of correct predictions is hypergeometric-like and less
dispersed than the binomial: the binomial p-value is valid (slightly conservative).

The classifier is a small ReLU MLP (logistic regression when ``hidden=()``) on inputs
flattened to vectors and standardised with the training split's mean and standard
deviation, trained full batch with Adam on the logistic loss in one jitted ``lax.scan``.
Accuracy well above 1/2 says the samples differ; the accuracy itself is an interpretable
effect size (1/2: indistinguishable, 1: disjoint supports).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["c2st", "binomial_tail"]


def binomial_tail(k: int, n: int, p: float = 0.5) -> float:
    """Exact upper tail ``Pr(Binomial(n, p) >= k) = sum_{i=k}^{n} C(n, i) p^i (1-p)^(n-i)``.

    Summed in log space: ``log C(n, i) = lgamma(n+1) - lgamma(i+1) - lgamma(n-i+1)`` and a
    log-sum-exp over ``i = k..n``, so it neither overflows nor loses small tails (values
    down to ~1e-308; smaller ones underflow to 0.0). ``k <= 0`` gives 1, ``k > n`` gives 0.
    """
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"Need n >= 0 and 0 <= p <= 1, got n={n}, p={p}.")
    k = int(k)
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                 + i * log_p + (n - i) * log_q for i in range(k, n + 1)]
    top = max(log_terms)
    total = top + math.log(math.fsum(math.exp(t - top) for t in log_terms))
    return min(1.0, math.exp(total))


def _flatten(a) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if a.ndim == 0:
        raise ValueError("Samples must have a leading sample axis.")
    return a.reshape(len(a), -1)


def _init_mlp(key: jax.Array, dim: int, hidden: Sequence[int]) -> list[dict]:
    """He-normal weights for the ReLU layers, LeCun-normal for the output logit; zero biases."""
    sizes = [dim, *hidden, 1]
    params = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, sub = jax.random.split(key)
        gain = 2.0 if i < len(sizes) - 2 else 1.0
        w = jax.random.normal(sub, (fan_in, fan_out), jnp.float32) * math.sqrt(gain / fan_in)
        params.append({"w": w, "b": jnp.zeros((fan_out,), jnp.float32)})
    return params


def _logits(params: list[dict], x: jax.Array) -> jax.Array:
    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return (h @ params[-1]["w"] + params[-1]["b"])[:, 0]


@partial(jax.jit, static_argnames=("steps",))
def _fit(params: list[dict], x: jax.Array, labels: jax.Array, lr: jax.Array,
         steps: int) -> list[dict]:
    """``steps`` full-batch Adam steps on the mean logistic loss."""
    opt = optax.adam(lr)

    def loss_fn(p):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(_logits(p, x), labels))

    def step(carry, _):
        p, s = carry
        grads = jax.grad(loss_fn)(p)
        updates, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params


def c2st(x, y, *, seed: int = 0, hidden: Sequence[int] = (64,), steps: int = 500,
         lr: float = 1e-2, test_fraction: float = 0.5) -> dict:
    """Classifier two-sample test of ``H0: P = Q`` (see the module docstring).

    Args:
      x: ``(n, ...)`` sample from P (label 0); trailing axes are flattened.
      y: ``(m, ...)`` sample from Q (label 1), same trailing shape. The larger of the two is
        randomly subsampled to ``min(n, m)`` points so that the classes are balanced.
      seed: seeds the subsampling and train/test split (NumPy) and the initialisation (JAX).
      hidden: widths of the MLP's ReLU layers; ``()`` gives logistic regression.
      steps: full-batch Adam steps.
      lr: Adam learning rate.
      test_fraction: fraction of each class held out for the test, in (0, 1); each class
        gets ``round(test_fraction * min(n, m))`` test points (at least 1, leaving at least
        1 for training).

    Returns:
      ``{"accuracy": held-out accuracy, "p_value": Pr(Binomial(n_test, 1/2) >= correct),
      "n_test": number of held-out points (both classes), "n_train": number of training
      points (both classes)}``.
    """
    x, y = _flatten(x), _flatten(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same event size, got {x.shape} and {y.shape}.")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    n = min(len(x), len(y))
    if n < 2:
        raise ValueError(f"Each sample needs at least 2 points, got {len(x)} and {len(y)}.")

    rng = np.random.default_rng(seed)
    x = x[rng.permutation(len(x))[:n]]  # shuffled, and subsampled if larger
    y = y[rng.permutation(len(y))[:n]]
    n_test = min(n - 1, max(1, int(round(test_fraction * n))))  # per class
    train = np.concatenate([x[n_test:], y[n_test:]])
    test = np.concatenate([x[:n_test], y[:n_test]])
    train_labels = np.repeat([0.0, 1.0], n - n_test)
    test_labels = np.repeat([0.0, 1.0], n_test)

    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)  # constant features: centre only

    def prep(a: np.ndarray) -> jax.Array:
        return jnp.asarray((a - mean) / std, jnp.float32)

    params = _init_mlp(jax.random.PRNGKey(seed), train.shape[1], tuple(hidden))
    params = _fit(params, prep(train), jnp.asarray(train_labels, jnp.float32),
                  jnp.asarray(lr, jnp.float32), steps=int(steps))
    predicted = np.asarray(_logits(params, prep(test))) > 0.0
    correct = int(np.sum(predicted == (test_labels > 0.5)))
    total = 2 * n_test
    return {"accuracy": correct / total, "p_value": binomial_tail(correct, total, 0.5),
            "n_test": total, "n_train": 2 * (n - n_test)}
