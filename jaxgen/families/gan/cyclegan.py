"""CycleGAN: unpaired image-to-image translation with cycle consistency (Zhu et al., 2017).

The lecture's objective, two GANs tied by the cycle:

    L(G, F, D_X, D_Y) = L_GAN(G, D_Y, X, Y) + L_GAN(F, D_X, Y, X) + λ L_cyc(G, F),
    L_cyc = E_x ‖F(G(x)) − x‖₁ + E_y ‖G(F(y)) − y‖₁.

The two domains are two classes of one labelled dataset, taken from the same
batches: X = the rows whose label is objective.class_x, Y = those of
objective.class_y (e.g. Fashion-MNIST 7 sneaker <-> 9 ankle boot, or
1 trouser <-> 3 dress); rows of other classes are ignored. Shapes stay fixed:
every network runs on the whole batch and each term is a mean weighted by the
0/1 mask of its domain (divided by max(count, 1), so a batch without an X or
a Y row contributes 0, not NaN). Nothing pairs an x with a y.

The GAN terms use the least-squares loss of Zhu et al. §4 (Mao et al.'s
LSGAN), on the PatchGAN outputs s (one score per patch, averaged over
patches per example):

  "discriminators" (D_X and D_Y, one player):
      E_y (D_Y(y) − 1)² + E_x D_Y(G(x))² + E_x (D_X(x) − 1)² + E_y D_X(F(y))²
  "generators" (G: X -> Y and F: Y -> X, one player):
      E_x (D_Y(G(x)) − 1)² + E_y (D_X(F(y)) − 1)²
      + λ_cyc (E_x |F(G(x)) − x| + E_y |G(F(y)) − y|)
      + λ_id (E_y |G(y) − y| + E_x |F(x) − x|)      (identity loss, only if λ_id > 0)

with the L1 terms the mean absolute error per pixel, λ_cyc =
objective.cycle_weight = 10 (the paper's) and λ_id = objective.identity_weight
(default 0; an absolute weight here, where the paper's code multiplies 0.5 by
λ_cyc). Zhu et al. halve D's objective (immaterial under Adam) and feed D from
a buffer of 50 past translations; here D sees the current ones.

Metrics: discriminators d_x_real, d_x_fake, d_y_real, d_y_fake (mean scores,
real -> 1, fake -> 0), n_x, n_y (rows of each domain in the batch);
generators adv_g, adv_f, cycle_x, cycle_y (and identity_x, identity_y).

No sampling (`Objective.sample` is None). End-of-run pictures:
translations.png (rows x, G(x), F(G(x)) and y, F(y), G(F(y)) for held-out
images of the two classes, see `jaxgen.families.gan.translation_pictures`).
`jaxgen eval` reports the held-out cycle L1 both ways, cycle_x_l1 (mean over
the test images of class_x of |F(G(x)) − x|) and cycle_y_l1 (over class_y, of
|G(F(y)) − y|), with their counts; `jaxgen eval` passes the labels
(`HeldOutStats.uses_labels`). Without labels every image would count both ways
(`cycle_images` says which).
Images reach the objective as 8-bit bin centres (no dequantisation noise).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, ClassVar

import jax.numpy as jnp
import numpy as np

from jaxgen.families.gan import translation_pictures
from jaxgen.kernel.contract import BuildContext, FamilyTools, HeldOutStats, Objective, Player
from jaxgen.kernel.errors import UserError
from jaxgen.nn.image2image import CycleGAN, network


# ------------------------------------------------------------------ the losses
def masked_mean(values, mask):
    """Σ_i m_i v_i / max(Σ_i m_i, 1) for per-example values (B,) and a 0/1 mask (B,).

    Rows outside the mask contribute exactly 0 whatever their value.
    """
    m = mask.astype(values.dtype)
    return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(jnp.sum(m), 1.0)


def per_example(a):
    """(B, ...) -> (B,): the mean over everything but the batch axis."""
    return jnp.mean(a.reshape(a.shape[0], -1), -1)


def l1_per_example(a, b):
    return per_example(jnp.abs(a - b))


def lsgan_d_terms(real_scores, fake_scores):
    """Per example: (s_real − 1)² and s_fake², each averaged over patches: (B,), (B,)."""
    return per_example(jnp.square(real_scores - 1.0)), per_example(jnp.square(fake_scores))


def lsgan_g_term(fake_scores):
    """Per example: (s_fake − 1)² averaged over patches: (B,)."""
    return per_example(jnp.square(fake_scores - 1.0))


def discriminator_loss(g: Callable, f: Callable, d_x: Callable, d_y: Callable, x,
                       mask_x, mask_y):
    """The "discriminators" player's LSGAN loss and metrics.

    g: X -> Y, f: Y -> X (images -> images), d_x, d_y (images -> patch scores),
    each on a whole batch; x: the batch (B, ...) holding both domains, whose
    rows mask_x / mask_y (bool (B,)) are the X / Y examples.
    """
    s_y_real, s_y_fake = d_y(x), d_y(g(x))  # real y on Y rows, G(x) on X rows
    s_x_real, s_x_fake = d_x(x), d_x(f(x))  # real x on X rows, F(y) on Y rows
    dy_real, dy_fake = lsgan_d_terms(s_y_real, s_y_fake)
    dx_real, dx_fake = lsgan_d_terms(s_x_real, s_x_fake)
    loss = (masked_mean(dy_real, mask_y) + masked_mean(dy_fake, mask_x)
            + masked_mean(dx_real, mask_x) + masked_mean(dx_fake, mask_y))
    return loss, {"d_y_real": masked_mean(per_example(s_y_real), mask_y),
                  "d_y_fake": masked_mean(per_example(s_y_fake), mask_x),
                  "d_x_real": masked_mean(per_example(s_x_real), mask_x),
                  "d_x_fake": masked_mean(per_example(s_x_fake), mask_y),
                  "n_x": jnp.sum(mask_x.astype(jnp.float32)),
                  "n_y": jnp.sum(mask_y.astype(jnp.float32))}


def generator_loss(g: Callable, f: Callable, d_x: Callable, d_y: Callable, x, mask_x, mask_y,
                   cycle_weight: float = 10.0, identity_weight: float = 0.0):
    """The "generators" player's loss and metrics (arguments as `discriminator_loss`):
    LSGAN terms + cycle_weight (cycle_x + cycle_y) [+ identity_weight (identity_x + identity_y)].
    """
    fake_y, fake_x = g(x), f(x)  # G(x) on X rows, F(y) on Y rows
    adv_g = masked_mean(lsgan_g_term(d_y(fake_y)), mask_x)
    adv_f = masked_mean(lsgan_g_term(d_x(fake_x)), mask_y)
    cycle_x = masked_mean(l1_per_example(f(fake_y), x), mask_x)  # |F(G(x)) − x|
    cycle_y = masked_mean(l1_per_example(g(fake_x), x), mask_y)  # |G(F(y)) − y|
    loss = adv_g + adv_f + cycle_weight * (cycle_x + cycle_y)
    m = {"adv_g": adv_g, "adv_f": adv_f, "cycle_x": cycle_x, "cycle_y": cycle_y}
    if identity_weight > 0:
        # G(y) ≈ y on Y rows (fake_y = G(batch) holds G(y) there), F(x) ≈ x on X rows.
        identity_y = masked_mean(l1_per_example(fake_y, x), mask_y)
        identity_x = masked_mean(l1_per_example(fake_x, x), mask_x)
        loss = loss + identity_weight * (identity_x + identity_y)
        m.update(identity_x=identity_x, identity_y=identity_y)
    return loss, m


def domain_masks(label, class_x: int, class_y: int):
    """Boolean (B,) masks of the X and Y rows of a batch."""
    return label == class_x, label == class_y


# ------------------------------------------------------------------ objective
@dataclasses.dataclass(frozen=True)
class CycleTools(FamilyTools):
    """A CycleGAN run's two generators g_xy (G: X -> Y), g_yx (F: Y -> X) and
    discriminators d_x, d_y, each `(params, images) -> images / patch scores`."""

    class_x: int
    class_y: int
    g_xy: Callable
    g_yx: Callable
    d_x: Callable
    d_y: Callable
    cycle_weight: float
    identity_weight: float
    provides: ClassVar[str] = "cycle translators"
    needed_for: ClassVar[str] = "CycleGAN runs (objective.name=cyclegan)"


def apply_network(model, name: str, player: str, params, x):
    """One of the four networks (`name`) with its player's params."""
    return model.apply({"params": {name: params[player][name]}}, x, method=network(name))


def _networks(params, nets):
    return tuple(functools.partial(f, params) for f in nets)


def discriminators_loss(params, batch, rng, *, nets, class_x: int, class_y: int):
    del rng
    mx, my = domain_masks(batch["label"], class_x, class_y)
    return discriminator_loss(*_networks(params, nets), batch["x"], mx, my)


def generators_loss(params, batch, rng, *, nets, class_x: int, class_y: int,
                    cycle_weight: float, identity_weight: float):
    del rng
    mx, my = domain_masks(batch["label"], class_x, class_y)
    return generator_loss(*_networks(params, nets), batch["x"], mx, my, cycle_weight,
                          identity_weight)


def cycle_stats_batch(params, x, rng, label=None, *, g_xy, g_yx, class_x: int, class_y: int):
    """Per image: |F(G(x)) − x| taken as an x, |G(F(x)) − x| taken as a y.

    With `label`, is_x / is_y mark the rows of the two classes; without
    (what `jaxgen eval` passes), every image counts in both directions.
    """
    del rng
    ones = jnp.ones((x.shape[0],), jnp.float32)
    if label is None:
        is_x = is_y = ones
    else:
        mx, my = domain_masks(label, class_x, class_y)
        is_x, is_y = mx.astype(jnp.float32), my.astype(jnp.float32)
    return {"cycle_x": l1_per_example(g_yx(params, g_xy(params, x)), x),
            "cycle_y": l1_per_example(g_xy(params, g_yx(params, x)), x),
            "is_x": is_x, "is_y": is_y}


def cycle_stats_reduce(arrays, *, class_x: int, class_y: int):
    is_x, is_y = np.asarray(arrays["is_x"]), np.asarray(arrays["is_y"])
    labelled = not (np.all(is_x == 1) and np.all(is_y == 1))
    out = {}
    for key, w in (("cycle_x", is_x), ("cycle_y", is_y)):
        out[f"{key}_l1"] = float(np.sum(w * arrays[key]) / max(np.sum(w), 1.0))
        out[f"{key}_count"] = int(np.sum(w))
    out["cycle_images"] = (f"x: class {class_x}, y: class {class_y}" if labelled else
                           "every held-out image, as an x and as a y (no labels given)")
    return out


def make(ctx: BuildContext, loss: dict | None = None) -> Objective:
    """CycleGAN. `loss`: {player: replacement} for "discriminators" and/or "generators",
    called with the keyword arguments of `discriminators_loss` / `generators_loss`."""
    o, model, data = ctx.settings, ctx.model, ctx.data
    own = dict(loss or {})
    unknown = sorted(set(own) - {"discriminators", "generators"})
    if unknown:
        raise ValueError(f"loss: {unknown[0]!r} is not a player; the players: "
                         "discriminators, generators.")
    if not isinstance(model, CycleGAN):
        raise UserError("objective.name=cyclegan needs a CycleGAN model: set "
                         "model.name=cyclegan.")
    if not data.num_classes:
        raise UserError(f"objective.name=cyclegan takes its two domains from the labels; "
                         f"{data.name} has none: use labelled data (fashion_mnist, or an "
                         f".npz with a 'label' array).")
    class_x, class_y = int(o.class_x), int(o.class_y)
    c = int(data.num_classes)
    for key, v in (("class_x", class_x), ("class_y", class_y)):
        if not 0 <= v < c:
            raise UserError(f"objective.{key}={v} is not a class of {data.name}; set it to "
                             f"one of 0 ... {c - 1}.")
    if class_x == class_y:
        raise UserError(f"objective.class_x and objective.class_y are both {class_x}; set "
                         "them to two different classes.")
    kept = tuple(int(k) for k in (ctx.config.data.get("classes", ()) or ()))
    if kept and not {class_x, class_y} <= set(kept):
        raise UserError(f"data.classes={kept} leaves out class {class_x} or {class_y} of "
                         f"objective.class_x / class_y; set --config.data.classes="
                         f"\"({class_x}, {class_y})\" (or () for every class).")
    g_xy = functools.partial(apply_network, model, "g_xy", "generators")
    g_yx = functools.partial(apply_network, model, "g_yx", "generators")
    d_x = functools.partial(apply_network, model, "d_x", "discriminators")
    d_y = functools.partial(apply_network, model, "d_y", "discriminators")
    nets = (g_xy, g_yx, d_x, d_y)

    def init(rng, batch):
        x = jnp.zeros_like(batch["x"])
        p = model.init(rng, x, x)["params"]
        return {"generators": {"g_xy": p["g_xy"], "g_yx": p["g_yx"]},
                "discriminators": {"d_x": p["d_x"], "d_y": p["d_y"]}}

    classes = {"class_x": class_x, "class_y": class_y}
    return Objective(
        name="cyclegan",
        players=(Player("discriminators", functools.partial(
                     own.get("discriminators", discriminators_loss), nets=nets,
                                                            **classes)),
                 Player("generators", functools.partial(
                     own.get("generators", generators_loss), nets=nets,
                     cycle_weight=float(o.cycle_weight),
                     identity_weight=float(o.identity_weight), **classes))),
        init=init,
        dequantize=False,
        held_out_stats=HeldOutStats(
            functools.partial(cycle_stats_batch, g_xy=g_xy, g_yx=g_yx, **classes),
            functools.partial(cycle_stats_reduce, **classes), uses_labels=True),
        pictures=translation_pictures.write_cyclegan,
        tools=CycleTools(class_x, class_y, g_xy, g_yx, d_x, d_y, float(o.cycle_weight),
                         float(o.identity_weight)),
    )
