"""pix2pix: paired image-to-image translation with a conditional GAN + L1 (Isola et al., 2017).

The lecture's objective, with D = σ(logit) a PatchGAN (one logit per patch):

    G* = argmin_G max_D L_cGAN(G, D) + λ L_L1(G),
    L_cGAN = E_{x,y}[log D(x, y)] + E_x[log(1 − D(x, G(x)))],   L_L1 = E_{x,y} ‖y − G(x)‖₁.

The pairs (x_in, y) are built inside the objective from each training image
y itself, so the data pipeline is the usual one (objective.task):

  "edges"    x_in = `edge_map(y)`: the Sobel gradient magnitude of the image
             (channel mean), thresholded at objective.edge_threshold
             (model-space units) to +1 (edge) / −1 (no edge), on every channel:
             the edges -> photo task (edges2shoes) on Fashion-MNIST.
  "inpaint"  x_in = `mask_image(y, rng)`: y with a square hole of
             objective.hole_size pixels (14: a quarter of a 28x28 image) at a
             position drawn per example from the step's rng, filled with 0
             (mid-grey in model space).

Players, updated in this order every step, each on logits l of every patch
(means over patches and examples):

  "discriminator"  −E log D(x_in, y) − E log(1 − D(x_in, G(x_in)))
                   = E softplus(−l_real) + E softplus(l_fake)
                   (Isola et al. halve D's objective; under Adam a constant
                   factor on a loss changes nothing, so it is left out)
  "generator"      −E log D(x_in, G(x_in)) + λ E|y − G(x_in)|
                   (the non-saturating adversarial term; the L1 is the mean
                   absolute error per pixel, λ = objective.l1_weight = 100 as
                   in the paper). Isola et al.'s ablation: objective.l1_weight = 0
                   is the cGAN alone, objective.adv_weight = 0 (the adversarial
                   term's weight, 1 by default) the L1 regression alone.

Metrics: discriminator d_real, d_fake (mean σ(l) over patches); generator
adv, l1, d_fake. No noise z: Isola et al. found G learns to ignore a Gaussian
z and only use dropout as a weak noise source; the outputs here are a
deterministic function of x_in (the model has no dropout either).

No sampling (`Objective.sample` is None: a translation needs an input); the
trainer's sample grids are skipped. End-of-run pictures: translations.png
(rows: input, G(input), target for held-out images, see
`jaxgen.families.gan.translation_pictures`). `jaxgen eval` reports the held-out L1
(mean |y − G(x_in)| per pixel in model space) and the L1 of a trivial
baseline: the input itself for "inpaint", the mean training image for
"edges" (a running mean over every training batch, kept as non-gradient state
`params["data_mean"]`).
Images reach the objective as 8-bit bin centres (no dequantisation noise:
there is no likelihood to bound).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.families.gan import translation_pictures
from jaxgen.families.gan.gan import d_loss_minimax, g_loss_nonsaturating
from jaxgen.kernel.contract import BuildContext, FamilyTools, HeldOutStats, Objective, Player
from jaxgen.kernel.errors import UserError

TASKS = ("edges", "inpaint")

_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], np.float32)


# ------------------------------------------------------------------ the tasks
def sobel_magnitude(x):
    """Per-pixel Sobel gradient magnitude of the channel mean of x (B, H, W, C) -> (B, H, W).

    The image is extended by repeating its border pixels, so a constant image
    has magnitude 0 everywhere (zero padding would draw a frame).
    """
    g = jnp.mean(x, -1)
    p = jnp.pad(g, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = g.shape[1:]

    def window(i, j):
        return p[:, i:i + h, j:j + w]

    gx = sum(_SOBEL_X[i, j] * window(i, j) for i in range(3) for j in range(3) if _SOBEL_X[i, j])
    gy = sum(_SOBEL_X[j, i] * window(i, j) for i in range(3) for j in range(3) if _SOBEL_X[j, i])
    return jnp.sqrt(jnp.square(gx) + jnp.square(gy))


def edge_map(x, threshold: float = 2.0):
    """The task input of "edges": +1 where the Sobel magnitude exceeds `threshold`, else −1.

    x: model-space images (B, H, W, C); returns the same shape (the edge map on
    every channel). A step of height s between flat regions has magnitude 4s,
    so the default threshold 2.0 marks steps of 0.5, a quarter of the [−1, 1] range
    (on Fashion-MNIST about a quarter of the pixels are then edges).
    """
    edges = jnp.where(sobel_magnitude(x) > threshold, 1.0, -1.0).astype(x.dtype)
    return jnp.broadcast_to(edges[..., None], x.shape)


def hole_mask(shape, rng, size: int = 14):
    """(B, H, W, 1) bool: a size x size square per example, its corner uniform over the image."""
    b, h, w = shape[0], shape[1], shape[2]
    if size > min(h, w):
        raise UserError(f"objective.hole_size={size} does not fit {h}x{w} images; set it to "
                         f"at most {min(h, w)}.")
    k_top, k_left = jax.random.split(rng)
    top = jax.random.randint(k_top, (b, 1, 1), 0, h - size + 1)
    left = jax.random.randint(k_left, (b, 1, 1), 0, w - size + 1)
    rows = jnp.arange(h)[None, :, None]
    cols = jnp.arange(w)[None, None, :]
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return inside[..., None]


def mask_image(x, rng, size: int = 14):
    """The task input of "inpaint": x with a size x size hole per example, filled with 0."""
    return jnp.where(hole_mask(x.shape, rng, size), jnp.zeros((), x.dtype), x)


def task_input(task: str, x, rng, *, edge_threshold: float = 2.0, hole_size: int = 14):
    """x_in for the target images x (model space) under `task`."""
    if task == "edges":
        return edge_map(x, edge_threshold)
    if task == "inpaint":
        return mask_image(x, rng, hole_size)
    raise UserError(f"objective.task must be one of {', '.join(TASKS)}, got {task!r}.")


def l1_per_example(a, b):
    """Mean |a − b| per pixel, per example: (B, ...) -> (B,)."""
    return jnp.mean(jnp.abs(a - b).reshape(a.shape[0], -1), -1)


# ------------------------------------------------------------------ objective
@dataclasses.dataclass(frozen=True)
class Translator:
    """pix2pix's networks and task: pure functions of the objective's params."""

    net: object
    task: str
    edge_threshold: float = 2.0
    hole_size: int = 14

    def task_input(self, x, rng):
        return task_input(self.task, x, rng, edge_threshold=self.edge_threshold,
                          hole_size=self.hole_size)

    def translate(self, params, x_in):
        return self.net.apply({"params": {"generator": params["generator"]}}, x_in,
                              method=self.net.translate)

    def discriminate(self, params, x_in, x_out):
        return self.net.apply({"params": {"discriminator": params["discriminator"]}}, x_in,
                              x_out, method=self.net.discriminate)


@dataclasses.dataclass(frozen=True)
class TranslationTools(FamilyTools):
    """A pix2pix run's task_input(y, rng) -> x_in, translate(params, x_in) -> G(x_in),
    discriminate(params, x_in, x_out) -> patch logits."""

    task: str
    task_input: Callable
    translate: Callable
    discriminate: Callable
    l1_weight: float
    provides: ClassVar[str] = "paired translator"
    needed_for: ClassVar[str] = "pix2pix runs (objective.name=pix2pix)"


def discriminator_loss(params, batch, rng, *, tr: Translator):
    y = batch["x"]
    x_in = tr.task_input(y, rng)
    fake = tr.translate(params, x_in)
    real_logits = tr.discriminate(params, x_in, y)
    fake_logits = tr.discriminate(params, x_in, fake)
    return d_loss_minimax(real_logits, fake_logits), {
        "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
        "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}


def generator_loss(params, batch, rng, *, tr: Translator, l1_weight: float,
                   adv_weight: float = 1.0):
    y = batch["x"]
    x_in = tr.task_input(y, rng)
    fake = tr.translate(params, x_in)
    logits = tr.discriminate(params, x_in, fake)
    adv, l1 = g_loss_nonsaturating(logits), jnp.mean(jnp.abs(y - fake))
    return adv_weight * adv + l1_weight * l1, {"adv": adv, "l1": l1,
                                  "d_fake": jnp.mean(jax.nn.sigmoid(logits))}


def running_mean(params, batch, rng):
    """update_state: the running mean of the training images (the "edges" baseline)."""
    del rng
    x = batch["x"]
    s = params["data_mean"]
    n = s["count"] + x.shape[0]
    mean = s["mean"] + (jnp.sum(x, 0) - x.shape[0] * s["mean"]) / n
    return {**params, "data_mean": {"mean": mean, "count": n}}


def l1_stats_batch(params, x, rng, *, tr: Translator):
    x_in = tr.task_input(x, rng)
    baseline = x_in if tr.task == "inpaint" else jnp.broadcast_to(
        params["data_mean"]["mean"], x.shape)
    return {"l1": l1_per_example(x, tr.translate(params, x_in)),
            "baseline_l1": l1_per_example(x, baseline)}


def l1_stats_reduce(arrays, *, task: str):
    return {"l1": float(np.mean(arrays["l1"])),
            "l1_stderr": float(np.std(arrays["l1"]) / np.sqrt(len(arrays["l1"]))),
            "baseline_l1": float(np.mean(arrays["baseline_l1"])),
            "baseline": ("the input (the image with its hole)" if task == "inpaint"
                         else "the mean training image"),
            "task": task}


def make(ctx: BuildContext, loss: dict | None = None) -> Objective:
    """pix2pix. `loss`: {player: replacement} for "discriminator" (called with tr) and/or
    "generator" (tr, l1_weight); the pictures and held-out stats stay the family's."""
    o, model, data = ctx.settings, ctx.model, ctx.data
    own = dict(loss or {})
    unknown = sorted(set(own) - {"generator", "discriminator"})
    if unknown:
        raise ValueError(f"loss: {unknown[0]!r} is not a player; the players: "
                         "discriminator, generator.")
    if not hasattr(model, "translate") or not hasattr(model, "discriminate"):
        raise UserError("objective.name=pix2pix needs a translation model: "
                         "set model.name=pix2pix_unet.")
    h, w = data.event_shape[:2]
    if o.task == "inpaint" and not 0 < o.hole_size <= min(h, w):
        raise UserError(f"objective.hole_size={o.hole_size} must be in [1, {min(h, w)}] for "
                         f"{h}x{w} images.")
    event_shape = tuple(data.event_shape)
    tr = Translator(model, o.task, float(o.edge_threshold), int(o.hole_size))

    def init(rng, batch):
        p = model.init(rng, jnp.zeros_like(batch["x"]))["params"]
        return {"generator": p["generator"], "discriminator": p["discriminator"],
                "data_mean": {"mean": jnp.zeros(event_shape, jnp.float32),
                              "count": jnp.zeros((), jnp.float32)}}

    l1_weight = float(o.l1_weight)
    if "generator" in own:
        if float(o.adv_weight) != 1.0:
            raise UserError("objective.adv_weight weighs the family's generator loss; a "
                             "replacement generator loss is called with tr and l1_weight "
                             "only, so leave objective.adv_weight at 1.")
        g_loss = functools.partial(own["generator"], tr=tr, l1_weight=l1_weight)
    else:
        # adv_weight only when set: the default call is the one a replacement loss gets
        weight = {} if float(o.adv_weight) == 1.0 else {"adv_weight": float(o.adv_weight)}
        g_loss = functools.partial(generator_loss, tr=tr, l1_weight=l1_weight, **weight)
    return Objective(
        name="pix2pix",
        players=(Player("discriminator", functools.partial(
                     own.get("discriminator", discriminator_loss), tr=tr)),
                 Player("generator", g_loss)),
        init=init,
        update_state=running_mean,
        dequantize=False,
        held_out_stats=HeldOutStats(functools.partial(l1_stats_batch, tr=tr),
                                    functools.partial(l1_stats_reduce, task=o.task)),
        pictures=translation_pictures.write_pix2pix,
        tools=TranslationTools(o.task, tr.task_input, tr.translate, tr.discriminate,
                               l1_weight),
    )
