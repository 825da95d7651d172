"""GAN inversion and latent editing along a hyperplane normal (pure functions).

The lecture's recipe for editing a real picture with a GAN:

1. inversion: find the z* whose G(z*) is the picture,

       z* = argmin_z  mean_j (G(z)_j − x_j)²  +  prior_weight · ‖z‖² / d

   (d = latent_dim; the prior term keeps z* where N(0, I) puts its mass),
   by gradient descent (Adam) on z with G fixed. The problem is non-convex,
   so `invert_with_restarts` keeps, per example, the best of R random starts;
2. editing: label latents z by an attribute of G(z) ("Classify z regarding
   gender"), fit a linear classifier (logistic regression) on z, and move z
   along the unit normal n = w / ‖w‖ of its separating hyperplane:
   z + t·n, t >= 0, crosses the hyperplane at t = −(w·z + b) / ‖w‖.

Without a downloaded attribute network, `attribute_classifier` labels images
with a pixel-space logistic regression fitted on labelled real images (for
Fashion-MNIST, e.g. "footwear" = sandal, sneaker, ankle boot vs the rest).
Any `x -> probability` function can replace it (`jaxgen edit` takes it as a
parameter).

`generate(params, z, label)` is a GAN objective's `tools.generate`
(model-space output). The array functions are jitted (`generate`, `steps`,
`latent_dim`, `restarts` static: pass the same `generate` object to reuse a
compilation) and traceable inside a caller's jit.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen.kernel.errors import UserError

# Fashion-MNIST class ids of the named binary attributes (positive classes).
ATTRIBUTES = {
    "footwear": (5, 7, 9),  # sandal, sneaker, ankle boot
    "upper_body": (0, 2, 4, 6),  # T-shirt/top, pullover, coat, shirt
    "trouser": (1,),
    "dress": (3,),
    "bag": (8,),
}


def attribute_classes(attribute: str) -> tuple[int, ...]:
    """A name of `ATTRIBUTES` or a comma list of class ids ("5,7,9") -> the positive classes."""
    if attribute in ATTRIBUTES:
        return ATTRIBUTES[attribute]
    try:
        classes = tuple(sorted({int(c) for c in attribute.split(",") if c.strip()}))
    except ValueError:
        classes = ()
    if not classes or min(classes) < 0:
        raise UserError(f"unknown attribute {attribute!r}: use one of "
                         f"{', '.join(ATTRIBUTES)} or a comma list of class ids, e.g. 5,7,9.")
    return classes


# ----------------------------------------------------------------- inversion
class Inversion(NamedTuple):
    """z: (B, d) the inverted latents (per example the iterate of lowest loss);
    mse: (B,) mean squared error of G(z) vs x (model space, over all pixels);
    loss_history: (steps, B) the loss of each example at every step, before
    that step's update (k = 1: the whole curve)."""

    z: jax.Array
    mse: jax.Array
    loss_history: jax.Array


class RestartInversion(NamedTuple):
    """As `Inversion` for the chosen restart of each example, plus
    restart_mse: (R, B) every restart's mse and best_restart: (B,) the chosen one."""

    z: jax.Array
    mse: jax.Array
    loss_history: jax.Array
    restart_mse: jax.Array
    best_restart: jax.Array


@jax.jit
def per_example_mse(a, b):
    """Mean over every axis but the first of (a − b)²: (B,)."""
    d = jnp.square(a - b)
    return jnp.mean(d.reshape(d.shape[0], -1), -1)


@functools.partial(jax.jit, static_argnames=("generate", "steps"))
def invert(generate: Callable, params, x, z0, steps: int = 500, lr: float = 0.05,
           prior_weight: float = 0.0, label=None) -> Inversion:
    """z* = argmin_z mean_j (G(z)_j − x_j)² + prior_weight · ‖z‖² / d, per example.

    The examples are independent: the per-example losses are summed, so each
    z_i gets only its own gradient, and Adam's moments are per coordinate.
    Adam(lr) runs `steps` updates inside one `jax.lax.scan`. Per example the
    iterate of lowest loss seen (the final one included) is returned, so the
    result is never worse than z0.

    For a linear G(z) = A z + b with x ∈ R^D the minimiser is the ridge solution
    z* = (AᵀA + λ' I)⁻¹ Aᵀ(x − b), λ' = prior_weight · D / d (least squares
    when prior_weight = 0).

    Args:
      generate: (params, z (B, d), label) -> (B, ...) model-space outputs.
      params: the GAN's params (only the generator's are used).
      x: (B, ...) targets, model space.
      z0: (B, d) starting latents.
      steps: Adam updates (static).
      lr: Adam's learning rate.
      prior_weight: weight of ‖z‖² / d.
      label: (B,) ints for a conditional generator, else None.

    Returns:
      Inversion(z (B, d), mse (B,), loss_history (steps, B)).
    """
    x = jnp.asarray(x, jnp.float32)
    z0 = jnp.asarray(z0, jnp.float32)
    d = z0.shape[-1]
    tx = optax.adam(lr)

    def losses(z):
        mse = per_example_mse(generate(params, z, label), x)
        return mse + prior_weight * jnp.sum(jnp.square(z), -1) / d, mse

    def total(z):
        per, mse = losses(z)
        return jnp.sum(per), (per, mse)

    grad_fn = jax.value_and_grad(total, has_aux=True)

    def step(carry, _):
        z, opt_state, best_z, best_loss = carry
        (_, (per, _)), g = grad_fn(z)
        better = per < best_loss
        best_z = jnp.where(better[:, None], z, best_z)
        best_loss = jnp.where(better, per, best_loss)
        updates, opt_state = tx.update(g, opt_state, z)
        return (optax.apply_updates(z, updates), opt_state, best_z, best_loss), per

    init = (z0, tx.init(z0), z0, jnp.full(z0.shape[:1], jnp.inf, jnp.float32))
    (z, _, best_z, best_loss), history = jax.lax.scan(step, init, None, length=steps)
    final, _ = losses(z)
    better = final < best_loss
    best_z = jnp.where(better[:, None], z, best_z)
    _, mse = losses(best_z)
    return Inversion(best_z, mse, history)


@functools.partial(jax.jit, static_argnames=("generate", "latent_dim", "restarts", "steps"))
def invert_with_restarts(generate: Callable, params, x, rng, latent_dim: int,
                         restarts: int = 4, steps: int = 500, lr: float = 0.05,
                         prior_weight: float = 0.0, label=None, z0=None) -> RestartInversion:
    """Best of R starts per example: z0 ~ N(0, I) (or the given z0 (R, B, d)), each
    inverted by `invert`; per example the restart with the lowest reconstruction
    mse (G(z*) vs x, without the prior term) is kept. All R·B problems run as
    one batch (they are independent)."""
    x = jnp.asarray(x, jnp.float32)
    b = x.shape[0]
    if z0 is None:
        z0 = jax.random.normal(rng, (restarts, b, latent_dim), jnp.float32)
    z0 = jnp.asarray(z0, jnp.float32)
    r = z0.shape[0]
    xs = jnp.broadcast_to(x[None], (r, *x.shape)).reshape(r * b, *x.shape[1:])
    labels = None if label is None else jnp.tile(jnp.asarray(label), r)
    out = invert(generate, params, xs, z0.reshape(r * b, -1), steps=steps, lr=lr,
                 prior_weight=prior_weight, label=labels)
    z = out.z.reshape(r, b, -1)
    mse = out.mse.reshape(r, b)
    hist = out.loss_history.reshape(steps, r, b)
    best = jnp.argmin(mse, 0)
    cols = jnp.arange(b)
    return RestartInversion(z[best, cols], mse[best, cols], hist[:, best, cols], mse, best)


# --------------------------------------------------- linear attribute direction
class LinearFit(NamedTuple):
    """A logistic regression p(y = 1 | f) = σ(f·w + b)."""

    w: jax.Array
    b: jax.Array
    accuracy: jax.Array  # on the training features

    @property
    def normal(self) -> jax.Array:
        """The unit normal n = w / ‖w‖ of the hyperplane f·w + b = 0 (points to y = 1)."""
        return self.w / jnp.linalg.norm(self.w)

    def logits(self, features) -> jax.Array:
        f = jnp.asarray(features, jnp.float32)
        return f.reshape(f.shape[0], -1) @ self.w + self.b

    def prob(self, features) -> jax.Array:
        return jax.nn.sigmoid(self.logits(features))

    def signed_distance(self, features) -> jax.Array:
        """(f·w + b) / ‖w‖: > 0 on the y = 1 side."""
        return self.logits(features) / jnp.linalg.norm(self.w)


@functools.partial(jax.jit, static_argnames=("steps",))
def fit_linear_direction(features, y, steps: int = 500, lr: float = 0.05,
                         l2: float = 1e-3) -> LinearFit:
    """Logistic regression by full-batch Adam inside `jax.lax.scan`.

    Minimises mean_i BCE(σ(f_i·w + b), y_i) + l2/2 · ‖w‖² from w = 0, b = 0.
    features (N, ...) are flattened to (N, F); y (N,) in {0, 1}.
    Returns LinearFit(w (F,), b (), training accuracy); `.normal` is the editing
    direction.
    """
    f = jnp.asarray(features, jnp.float32)
    f = f.reshape(f.shape[0], -1)
    y = jnp.asarray(y, jnp.float32)
    tx = optax.adam(lr)

    def loss(p):
        logits = f @ p["w"] + p["b"]
        bce = jnp.mean(jax.nn.softplus(logits) - y * logits)
        return bce + 0.5 * l2 * jnp.sum(jnp.square(p["w"]))

    def step(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    p = {"w": jnp.zeros((f.shape[1],), jnp.float32), "b": jnp.zeros((), jnp.float32)}
    (p, _), _ = jax.lax.scan(step, (p, tx.init(p)), None, length=steps)
    acc = jnp.mean(((f @ p["w"] + p["b"]) > 0) == (y > 0.5))
    return LinearFit(p["w"], p["b"], acc)


@jax.jit
def edit_latents(z, n, ts):
    """z (B, d), n (d,), ts (T,) -> (B, T, d): z + t·n."""
    z = jnp.asarray(z, jnp.float32)
    return z[:, None, :] + jnp.asarray(ts, jnp.float32)[None, :, None] * jnp.asarray(n)[None,
                                                                                      None, :]


def hyperplane_crossing(fit: LinearFit, z) -> jax.Array:
    """t at which z + t·n (n = fit.normal) lies on the hyperplane: −(z·w + b) / ‖w‖."""
    return -fit.signed_distance(z)


# ------------------------------------------------------- the pixel attribute
class PixelClassifier(NamedTuple):
    """A pixel-space logistic regression for a binary attribute of images.

    `prob(x)` takes model-space images (B, H, W, C) in [−1, 1]."""

    fit: LinearFit
    positive: tuple
    train_accuracy: float
    test_accuracy: float

    def prob(self, x) -> jax.Array:
        return self.fit.prob(x)


def attribute_classifier(train_x, train_label, test_x, test_label,
                         positive=ATTRIBUTES["footwear"], steps: int = 300, lr: float = 0.01,
                         l2: float = 1e-4, fit_fn=None) -> PixelClassifier:
    """Fits y = [label ∈ positive] on flattened model-space pixels (train) and
    reports its accuracy on held-out (test) images.

    train_x, test_x: (N, H, W, C) model-space images (`transforms.preprocess`);
    train_label, test_label: (N,) ints. `fit_fn` defaults to
    `fit_linear_direction` (pass a jitted one to reuse its compilation).
    """
    pos = np.asarray(tuple(positive))
    y_train = np.isin(np.asarray(train_label), pos)
    y_test = np.isin(np.asarray(test_label), pos)
    if y_train.all() or not y_train.any():
        raise UserError(f"the training labels hold {'only' if y_train.all() else 'no'} "
                         f"examples of the classes {tuple(int(c) for c in pos)}; the attribute "
                         "classifier needs both.")
    fit = (fit_fn or fit_linear_direction)(train_x, y_train.astype(np.float32), steps=steps,
                                           lr=lr, l2=l2)
    test_pred = np.asarray(fit.logits(test_x)) > 0
    return PixelClassifier(fit, tuple(int(c) for c in pos), float(fit.accuracy),
                           float(np.mean(test_pred == y_test)))


# ------------------------------------------------------------- latent arithmetic
def class_mean_latents(z, probs, classes, top: int = 8) -> np.ndarray:
    """(len(classes), d): for each class c, the mean of the `top` latents whose samples a
    classifier gives the highest probability of c (probs (N, C)): the concept vectors of
    DCGAN's latent arithmetic (Radford et al., 2016, Sec. 6.3, averaged exemplars)."""
    z, probs = np.asarray(z, np.float64), np.asarray(probs, np.float64)
    return np.stack([z[np.argsort(-probs[:, c])[:top]].mean(0) for c in classes])


def nearest_neighbours(queries, reference, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(index (N,), Euclidean distance (N,)) of each query's nearest row of `reference`,
    both (N, ...) / (M, ...) flattened to vectors; exhaustive search, float32."""
    from jaxgen.eval.frechet import _sq_dists_chunk
    q = np.asarray(queries, np.float32).reshape(len(queries), -1)
    r = np.asarray(reference, np.float32).reshape(len(reference), -1)
    r2 = np.sum(r * r, 1)
    idx, dist = np.empty(len(q), np.int64), np.empty(len(q))
    for lo in range(0, len(q), chunk):
        d2 = _sq_dists_chunk(q[lo:lo + chunk], r, r2)
        k = np.argmin(d2, 1)
        idx[lo:lo + chunk] = k
        dist[lo:lo + chunk] = np.sqrt(d2[np.arange(len(k)), k])
    return idx, dist
