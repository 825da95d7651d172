"""Generative adversarial networks: two players, each with its own pure loss.

The lecture's game (Goodfellow et al., 2014), D = σ(logit):

    min_G max_D V(G, D) = E_x[log D(x)] + E_z[log(1 − D(G(z)))].

The trainer updates the "discriminator" player (objective.n_critic times per
step) and then the "generator" player, each differentiating only its own loss
w.r.t. its own params, with its own optimizer (optim.players.<name>.*).
Losses (objective.loss), each written on logits l = D's pre-sigmoid output:

  "minimax"  D: −E log σ(l_real) − E log(1 − σ(l_fake)) = E softplus(−l_real) + E softplus(l_fake)
             G: E log(1 − σ(l_fake)) = −E softplus(l_fake)     (saturating: the game itself)
  "ns"       D as minimax; G: −E log σ(l_fake) = E softplus(−l_fake)   (the "trick")
  "wgan"     critic f (no sigmoid), Arjovsky et al. (2017):
             f: E f(G(z)) − E f(x), then every weight clipped to [−c, c]
             (objective.clip, a projection after each critic update);
             G: −E f(G(z))
  "wgan_gp"  Gulrajani et al. (2017), Algorithm 1:
             f: E f(G(z)) − E f(x) + λ E (‖∇_x̂ f(x̂)‖₂ − 1)², x̂ = ε x + (1 − ε) G(z),
             ε ~ U[0, 1] drawn per example, the norm taken per example
             (objective.gp_weight = λ = 10); G as wgan
  "hinge"    D: E relu(1 − l_real) + E relu(1 + l_fake); G: −E l_fake  (an extra)
  "lsgan"    least squares (Mao et al., 2017), raw scores s: D: ½E (s_real − 1)² + ½E s_fake²;
             G: ½E (s_fake − 1)²

The losses are the table `LOSSES`: name -> `GANLoss` (D's loss, G's loss, and whether D's
output is the logit of a probability, a Wasserstein critic's value or another score). A
new game is one `GANLoss` (`make(ctx, loss=GANLoss(...))`): the players, sampling and
pictures stay the family's.

With n_critic > 1 each critic update sees its own 1/n_critic of the batch
(Algorithm 1 samples fresh real data per critic iteration), so train.batch_size
= n_critic × m, and the generator's update draws m latents.

Conditional GAN (model.num_classes = C; Mirza & Osindero, 2014): G(z, y) and
D(x, y); fakes are drawn with the labels of the real batch.
CAN (objective.style_weight > 0, model.class_head; Elgammal et al., 2017): D
has a second, K-way class ("style") head D_c trained on the real labels,
D loss += class_weight · CE(D_c(x), y); G is pushed toward class ambiguity,
G loss += style_weight · E_z[−Σ_k (1/K log D_c(k|G(z)) + (1 − 1/K) log(1 − D_c(k|G(z))))],
the paper's style-ambiguity term (D_c(k|·) the softmax class posterior).
BigGAN (Brock et al., 2018; jaxgen.nn.biggan): objective.ortho_weight = β > 0 adds the
orthogonal regularisation β Σ_W ‖WᵀW ⊙ (1 − I)‖_F² over G's conv/dense kernels to G's loss
(metric `ortho_penalty`). A model with variable collections beyond "params"
(`state_collections`, e.g. spectral norm's power-iteration vectors) has them kept as
non-gradient state under params[name], refreshed after each step by its `refresh_state`.

Unrolled GAN (objective.unroll_steps = k > 0; Metz et al., 2017): G's loss is taken
against the discriminator θ_D^k(θ_G) reached by k plain gradient steps on D's loss,
θ_D^{i+1} = θ_D^i − η ∇_{θ_D} L_D(θ_G, θ_D^i) (η = objective.unroll_lr), on the same real
batch and the same fakes, and differentiated through those steps (jax.grad through the
unrolled loop), so G sees how D would answer its move. k = 0 is the plain game. The
trainer's own D update is unchanged (it does not keep the unrolled parameters). Metz et
al. unroll D's own optimiser (Adam with its moments); here the unrolled steps are plain
gradient steps, which need only D's parameters (G's loss does not see D's optimiser
state). Unrolling takes the game's D loss only (no gradient penalty, clipping or class
head).
PacGAN (objective.pack = m > 1; Lin et al., 2018): D scores packs of m samples, all real
or all fake, concatenated along the last axis ((B, ..., C) -> (B/m, ..., m·C), rows
j·m, ..., j·m + m − 1 forming pack j), in D's and G's losses alike; the batch size must be
a multiple of m. The tools' `discriminate(x)` (pictures, inversion) scores the pack of m
copies of each x.

Metrics (per player, prefixed by the trainer): discriminator: `d_real`,
`d_fake` (mean D on real / fake; for critics the mean critic value), for
critics `w_estimate` = E f(x) − E f(G(z)) (the critic's Wasserstein-1 estimate)
and `grad_penalty`, `grad_norm_interp`; CAN: `class_acc`, `class_loss`;
generator: `d_fake` and, for CAN, `style_entropy` (entropy of D_c(·|G(z)),
log K at full ambiguity).

No likelihood (GANs are implicit models): `jaxgen eval` reports sample
metrics (MMD, and for ring8/grid25 the mode metrics of `jaxgen.eval.modes`).
Sampling: z ~ N(0, T² I), or the truncation trick (sample.truncation = ψ > 0:
z from N(0, I) truncated to [−ψ, ψ]); conditional models take labels
(default: 0, 1, ..., C − 1 repeated).
Inversion and editing tools: `jaxgen.families.gan.tools`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.families.gan import pictures, tools
from jaxgen.kernel.contract import (
    BuildContext,
    FamilyTools,
    Objective,
    Player,
    RoundTrip,
    microbatch,
)
from jaxgen.kernel.errors import UserError
from jaxgen.nn.biggan import orthogonal_penalty


# ----------------------------------------------------------------- the losses
def d_loss_minimax(real_logits, fake_logits):
    """−E log D(x) − E log(1 − D(G(z))), D = σ(logit)."""
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def g_loss_saturating(fake_logits):
    """E log(1 − D(G(z))) (to minimise): the minimax game's own generator loss."""
    return -jnp.mean(jax.nn.softplus(fake_logits))


def g_loss_nonsaturating(fake_logits):
    """−E log D(G(z)): the non-saturating generator loss."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


class LossGradients(NamedTuple):
    """Per example x (B,): the logit l(x), D(x) = σ(l) (`d`), and the Euclidean norms
    w.r.t. x of the saturating generator loss log(1 − D(x)) (`saturating`), of the
    non-saturating −log D(x) (`nonsaturating`) and of the logit (`logit_grad`). By the
    chain rule saturating = σ(l) · logit_grad and nonsaturating = σ(−l) · logit_grad, so
    saturating / nonsaturating = D / (1 − D) = exp(l) exactly."""

    logit: jax.Array
    d: jax.Array
    saturating: jax.Array
    nonsaturating: jax.Array
    logit_grad: jax.Array


def generator_loss_gradients(discriminate: Callable, params, x) -> LossGradients:
    """`LossGradients` of each example of x (B, ...) through an unconditional GAN's
    discriminator (`tools.discriminate`, whose output is the logit of D), each by
    `jax.grad` of the family's own generator losses on that example alone."""

    def logit(xi):
        return jnp.reshape(discriminate(params, xi[None])[0], ())

    def one(xi):
        l_val, g_l = jax.value_and_grad(logit)(xi)
        g_sat = jax.grad(lambda v: g_loss_saturating(logit(v)[None]))(xi)
        g_ns = jax.grad(lambda v: g_loss_nonsaturating(logit(v)[None]))(xi)
        return (l_val, jax.nn.sigmoid(l_val), jnp.linalg.norm(g_sat.ravel()),
                jnp.linalg.norm(g_ns.ravel()), jnp.linalg.norm(g_l.ravel()))
    return LossGradients(*jax.vmap(one)(jnp.asarray(x, jnp.float32)))


def generator_param_gradients(generate: Callable, discriminate: Callable, params, z
                              ) -> tuple[jax.Array, jax.Array]:
    """(‖∇_θG E_z log(1 − D(G(z)))‖, ‖∇_θG E_z −log D(G(z))‖): the norms of the two
    generator losses' gradients w.r.t. all of G's parameters, over the latents z (B, d)."""

    def norm(loss):
        def f(g_params):
            p = {**params, "generator": g_params}
            return loss(jnp.reshape(discriminate(p, generate(p, z))[0], (-1,)))
        leaves = jax.tree.leaves(jax.grad(f)(params["generator"]))
        return jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in leaves))
    return norm(g_loss_saturating), norm(g_loss_nonsaturating)


def critic_loss_wgan(real_scores, fake_scores):
    """E f(G(z)) − E f(x): minus the critic's Wasserstein-1 estimate."""
    return jnp.mean(fake_scores) - jnp.mean(real_scores)


def g_loss_wgan(fake_scores):
    return -jnp.mean(fake_scores)


def d_loss_hinge(real_logits, fake_logits):
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def d_loss_least_squares(real_scores, fake_scores):
    """½E (s_real − 1)² + ½E s_fake² (LSGAN's a = 0, b = 1)."""
    return 0.5 * jnp.mean(jnp.square(real_scores - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_scores))


def g_loss_least_squares(fake_scores):
    """½E (s_fake − 1)² (LSGAN's c = 1)."""
    return 0.5 * jnp.mean(jnp.square(fake_scores - 1.0))


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """One game, written on D's raw outputs.

    d(real_out, fake_out) -> D's loss; g(real_out, fake_out) -> G's loss (real_out is None
    unless `g_needs_real`: then D also runs on the real batch in G's update).
    output: what D's output is: "logit" (of the probability D(x) = σ(l)), "critic" (a
    Wasserstein critic's value f(x)) or "score" (any other real score). It decides the
    d_real / d_fake metrics and what the pictures call D.
    clip: the critic's weights are clipped to [−c, c] after each update (WGAN).
    gradient_penalty: + gp_weight · E (‖∇ f(x̂)‖ − 1)² (WGAN-GP).
    name: what the pictures and tools call the game.
    """

    d: Callable
    g: Callable
    output: str = "logit"
    name: str = "custom"
    g_needs_real: bool = False
    clip: bool = False
    gradient_penalty: bool = False

    def __post_init__(self):
        if self.output not in ("logit", "critic", "score"):
            raise ValueError(f"GANLoss.output must be logit, critic or score, got "
                             f"{self.output!r}.")

    def show(self, out):
        """What the metrics and pictures show of D's output: σ(l) for logits, else as is."""
        return jax.nn.sigmoid(out) if self.output == "logit" else out

    @property
    def label(self) -> str:
        return {"logit": "D(x)", "critic": "critic f(x)", "score": "D score s(x)"}[self.output]


LOSSES = {
    "minimax": GANLoss(d_loss_minimax, lambda real, fake: g_loss_saturating(fake),
                       name="minimax"),
    "ns": GANLoss(d_loss_minimax, lambda real, fake: g_loss_nonsaturating(fake), name="ns"),
    "wgan": GANLoss(critic_loss_wgan, lambda real, fake: g_loss_wgan(fake), "critic",
                    name="wgan", clip=True),
    "wgan_gp": GANLoss(critic_loss_wgan, lambda real, fake: g_loss_wgan(fake), "critic",
                       name="wgan_gp", gradient_penalty=True),
    "hinge": GANLoss(d_loss_hinge, lambda real, fake: g_loss_wgan(fake), "score",
                     name="hinge"),
    "lsgan": GANLoss(d_loss_least_squares, lambda real, fake: g_loss_least_squares(fake),
                     "score", name="lsgan"),
}


def interpolate(real, fake, rng):
    """x̂ = ε x + (1 − ε) x̃ with ε ~ U[0, 1] drawn once per example; returns (x̂, ε (B,))."""
    eps = jax.random.uniform(rng, (real.shape[0],), real.dtype)
    e = eps.reshape(-1, *([1] * (real.ndim - 1)))
    return e * real + (1.0 - e) * fake, eps


def gradient_penalty(critic, real, fake, rng):
    """Per-example (‖∇_x̂ f(x̂)‖₂ − 1)² and ‖∇_x̂ f(x̂)‖₂, each (B,).

    critic: x (B, ...) -> (B,) scores, each depending only on its own example
    (no batch statistics), so ∇ of Σ_i f(x̂_i) w.r.t. x̂ holds the per-example
    gradients row by row.
    """
    x_hat, _ = interpolate(real, fake, rng)
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), -1) + 1e-12)
    return jnp.square(norms - 1.0), norms


def pack(x, m: int):
    """PacGAN's packing: (B, ..., C) -> (B/m, ..., m·C), the rows j·m .. j·m + m − 1
    concatenated along the last axis into pack j (m = 1: x itself)."""
    if m == 1:
        return x
    b = x.shape[0]
    if b % m:
        raise UserError(f"objective.pack={m} needs a batch that is a multiple of {m}, got "
                        f"{b}; set train.batch_size (and eval sizes) to multiples of {m}.")
    y = jnp.moveaxis(x.reshape(b // m, m, *x.shape[1:]), 1, -2)  # (B/m, ..., m, C)
    return y.reshape(b // m, *x.shape[1:-1], m * x.shape[-1])


def unrolled_discriminator(params, real, fake, *, d_scores: Callable, game: GANLoss,
                           steps: int, lr: float):
    """params with params["discriminator"] replaced by θ_D^k: k steps
    θ_D^{i+1} = θ_D^i − lr ∇ game.d(D(real), D(fake)) from θ_D^0 = params["discriminator"],
    differentiable w.r.t. everything (fake may depend on G's params).
    d_scores(params, x) -> D's scores of x."""
    def d_loss(d):
        p = {**params, "discriminator": d}
        return game.d(d_scores(p, real), d_scores(p, fake))
    d = params["discriminator"]
    for _ in range(int(steps)):
        d = jax.tree.map(lambda w, g: w - lr * g, d, jax.grad(d_loss)(d))
    return {**params, "discriminator": d}


def clip_weights(params, c: float):
    """Every weight of the critic clipped to [−c, c] (WGAN's Lipschitz projection)."""
    return jax.tree.map(lambda w: jnp.clip(w, -c, c), params)


def style_ambiguity(class_logits):
    """CAN's generator term per example: −Σ_k [1/K log p_k + (1 − 1/K) log(1 − p_k)],
    p = softmax(class_logits); minimal (for each p_k alone) at p_k = 1/K."""
    k = class_logits.shape[-1]
    log_p = jax.nn.log_softmax(class_logits)
    log_not_p = jnp.log1p(-jnp.exp(log_p) + 1e-7)  # log(1 − p_k), safe as p_k -> 1
    return -jnp.sum(log_p / k + (1.0 - 1.0 / k) * log_not_p, -1)


def entropy(logits):
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p, -1)


# ------------------------------------------------- closed forms (the lecture's)
def optimal_discriminator(p_data, p_g):
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al., 2014, Prop. 1)."""
    return p_data / (p_data + p_g)


def jsd(p, q):
    """Jensen-Shannon divergence (nats) of two discrete distributions (arrays summing to 1)."""
    m = 0.5 * (p + q)

    def kl(a, b):
        return jnp.sum(jnp.where(a > 0, a * (jnp.log(jnp.where(a > 0, a, 1.0)) - jnp.log(b)),
                                 0.0))
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


# ------------------------------------------------------------------ objective
def _split_heads(out):
    return out if isinstance(out, tuple) else (out, None)


@dataclasses.dataclass(frozen=True)
class GANModel:
    """The generator / discriminator network: pure functions of the objective's params."""

    net: object
    latent_dim: int
    conditional: bool
    grows: bool = False  # the net's methods take `step` (params["growth"]["step"]; ProGAN)
    # the net's variable collections beyond "params" (e.g. spectral norm's power-iteration
    # vectors, jaxgen.nn.biggan): non-gradient state kept under params[name]
    state: tuple = ()

    def _variables(self, params, player: str) -> dict:
        return {"params": {player: params[player]}, **{k: params[k] for k in self.state}}

    def _step(self, params) -> dict:
        return {"step": params["growth"]["step"]} if self.grows else {}

    def generate(self, params, z, label=None):
        return self.net.apply(self._variables(params, "generator"), z,
                              label if self.conditional else None, method=self.net.generate,
                              **self._step(params))

    def discriminate(self, params, x, label=None):
        """(D's output, its class head's logits or None)."""
        return _split_heads(self.net.apply(
            self._variables(params, "discriminator"), x,
            label if self.conditional else None, method=self.net.discriminate,
            **self._step(params)))

    def draw_fakes(self, params, rng, n, label):
        z = jax.random.normal(rng, (n, self.latent_dim), jnp.float32)
        return self.generate(params, z, label)


@dataclasses.dataclass(frozen=True)
class GANTools(FamilyTools):
    """A GAN's pieces for inversion, editing and pictures.

    generate(params, z, label=None) -> model-space x; discriminate(params, x, label=None)
    -> (scores, class logits or None); latents(rng, num, temperature=1.0, truncation=0.0)
    -> z of the prior; loss: the game's name; game: its `GANLoss` (what D's output is).
    """

    generate: Callable
    discriminate: Callable
    latents: Callable
    latent_dim: int
    loss: str
    game: GANLoss
    conditional: bool
    class_head: bool
    provides: ClassVar[str] = "generator"
    needed_for: ClassVar[str] = "GAN runs (objective.name=gan)"


def scores(gm: GANModel, params, x, label=None, *, m: int = 1):
    """D's output on the packs of m rows of x ((B/m,) scores; `pack`), and its class
    head's logits or None."""
    return gm.discriminate(params, pack(x, m), label)


def discriminate_copies(params, x, label=None, *, gm: GANModel, m: int):
    """D's output on the pack of m copies of each x ((B,) scores): what the pictures and
    tools show of a packed D at a point (m = 1: D(x))."""
    return scores(gm, params, jnp.repeat(x, m, axis=0) if m > 1 else x, label, m=m)


def discriminator_loss(params, batch, rng, *, gm: GANModel, game: GANLoss, gp_weight: float,
                       class_head: bool, class_weight: float, pack_size: int = 1):
    """The discriminator's (or critic's) loss of the game (module doc); pack_size = m:
    D scores packs of m samples (PacGAN)."""
    kz, kg = jax.random.split(rng)
    x, label = batch["x"], batch.get("label")
    fake = gm.draw_fakes(params, kz, x.shape[0], label)
    real_out, real_cls = scores(gm, params, x, label, m=pack_size)
    fake_out, _ = scores(gm, params, fake, label, m=pack_size)
    loss = game.d(real_out, fake_out)
    m = {"d_real": jnp.mean(game.show(real_out)), "d_fake": jnp.mean(game.show(fake_out))}
    if game.output == "critic":
        m["w_estimate"] = jnp.mean(real_out) - jnp.mean(fake_out)
    if gm.grows:  # where the growth is: the current resolution and fade-in alpha
        stage, alpha = gm.net.schedule(params["growth"]["step"])
        m.update(resolution=gm.net.resolution(stage), alpha=alpha)
    if game.gradient_penalty:
        pen, norms = gradient_penalty(lambda xx: gm.discriminate(params, xx, label)[0],
                                      pack(x, pack_size), pack(fake, pack_size), kg)
        loss = loss + gp_weight * jnp.mean(pen)
        m.update(grad_penalty=jnp.mean(pen), grad_norm_interp=jnp.mean(norms))
    if class_head:
        ce = jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(real_cls),
                                           batch["label"][:, None], -1))
        loss = loss + class_weight * ce
        m.update(class_loss=ce, class_acc=jnp.mean(jnp.argmax(real_cls, -1) == batch["label"]))
    return loss, m


def generator_loss(params, batch, rng, *, gm: GANModel, game: GANLoss, split: bool,
                   n_critic: int, class_head: bool, style_weight: float,
                   ortho_weight: float = 0.0, unroll_steps: int = 0, unroll_lr: float = 0.0,
                   pack_size: int = 1):
    """The generator's loss of the game, plus CAN's style ambiguity and BigGAN's
    orthogonal regularisation (ortho_weight · Σ ‖WᵀW ⊙ (1 − I)‖_F² over G's kernels);
    unroll_steps = k > 0: against D after k unrolled steps (`unrolled_discriminator`);
    pack_size = m: D scores packs of m samples (PacGAN)."""
    if split:  # the generator draws m = B / n_critic latents, like each critic update
        batch = microbatch(batch, 0, n_critic)
    label = batch.get("label")
    fake = gm.draw_fakes(params, rng, batch["x"].shape[0], label)
    d_params = params
    if unroll_steps > 0:
        d_params = unrolled_discriminator(
            params, batch["x"], fake,
            d_scores=lambda p, x: scores(gm, p, x, label, m=pack_size)[0],
            game=game, steps=unroll_steps, lr=unroll_lr)
    out, cls = scores(gm, d_params, fake, label, m=pack_size)
    real = (scores(gm, d_params, batch["x"], label, m=pack_size)[0] if game.g_needs_real
            else None)
    loss = game.g(real, out)
    m = {"d_fake": jnp.mean(game.show(out))}
    if class_head:
        amb = jnp.mean(style_ambiguity(cls))
        if style_weight > 0:
            loss = loss + style_weight * amb
        m.update(style_ambiguity=amb, style_entropy=jnp.mean(entropy(cls)))
    if ortho_weight > 0:
        ortho = orthogonal_penalty(params["generator"])
        loss = loss + ortho_weight * ortho
        m["ortho_penalty"] = ortho
    return loss, m


def advance_growth(params, batch, rng):
    """update_state of a growing model (ProGAN): one more step on its clock."""
    del batch, rng
    return {**params, "growth": {"step": params["growth"]["step"] + 1}}


def refresh_model_state(params, batch, rng, *, net):
    """update_state of a model with state collections: `net.refresh_state(params)` (e.g.
    one power iteration of spectral norm on the updated kernels)."""
    del batch, rng
    return {**params, **net.refresh_state(params)}


def _chain(*updates):
    """The update_state running each given one (None: skipped) in turn; None if none."""
    updates = [u for u in updates if u is not None]
    if not updates:
        return None

    def update_state(params, batch, rng):
        for i, u in enumerate(updates):
            params = u(params, batch, jax.random.fold_in(rng, i))
        return params
    return update_state


def latents(rng, num, temperature=1.0, truncation=0.0, *, latent_dim: int):
    """z ~ N(0, T² I), or N(0, I) truncated to [−ψ, ψ] (the truncation trick, ψ > 0)."""
    psi = float(truncation or 0.0)
    if psi > 0:
        return jax.random.truncated_normal(rng, -psi, psi, (num, latent_dim), jnp.float32)
    return temperature * jax.random.normal(rng, (num, latent_dim), jnp.float32)


def sample(params, rng, num, settings, labels=None, *, gm: GANModel, num_classes):
    """G(z) for z of the prior (settings.temperature, settings.truncation); conditional
    models default to labels 0, 1, ..., C − 1 repeated."""
    if labels is not None and not gm.conditional:
        raise UserError("this GAN is unconditional; drop the labels (or set "
                         "model.num_classes for a conditional GAN).")
    if gm.conditional and labels is None:
        labels = jnp.arange(num) % int(num_classes)
    z = latents(rng, num, settings.temperature, settings.truncation, latent_dim=gm.latent_dim)
    return gm.generate(params, z, labels)


def inversion_round_trip(generate, latent_dim: int) -> RoundTrip:
    """x -> z by optimisation (`tools.invert_with_restarts` with its defaults, as
    `jaxgen invert`), z -> x = G(z)."""
    def encode(params, x, rng):
        return tools.invert_with_restarts(generate, params, x, rng, latent_dim).z

    return RoundTrip(encode, lambda params, z: generate(params, z, None),
                     "z = argmin_z |G(z) − x|², Adam from 4 random starts (`jaxgen invert`)")


def make(ctx: BuildContext, loss: GANLoss | None = None) -> Objective:
    """The GAN objective; `loss`: a `GANLoss` to play instead of objective.loss's."""
    o, model, data = ctx.settings, ctx.model, ctx.data
    if loss is None and not hasattr(o, "loss"):
        raise ValueError("gan.make: the settings name no game (objective.loss); pass loss=")
    game = LOSSES[o.loss] if loss is None else loss
    kind = game.name
    if not hasattr(model, "generate") or not hasattr(model, "discriminate"):
        raise UserError("objective.name=gan needs a GAN model: model.name=gan_mlp, dcgan or "
                        "progan.")
    n_critic = int(o.n_critic)
    split = bool(o.split_batch) and n_critic > 1
    clip = float(o.clip)
    latent_dim = int(model.latent_dim)
    conditional = getattr(model, "num_classes", None) is not None
    two_heads = bool(getattr(model, "class_head", False))
    grows = bool(getattr(model, "grows", False))
    state = tuple(getattr(model, "state_collections", ()))
    m = int(o.pack)
    if m > 1 and (conditional or two_heads or state or grows):
        raise UserError("objective.pack > 1 (PacGAN) takes an unconditional GAN without a "
                         "class head, state collections or growth (e.g. gan_mlp, dcgan).")
    unroll = int(o.unroll_steps)
    if unroll > 0 and (game.gradient_penalty or game.clip or two_heads):
        raise UserError("objective.unroll_steps > 0 unrolls the game's plain D loss; it "
                         "takes no gradient penalty (wgan_gp), clipping (wgan) or class head.")
    if o.style_weight > 0 and not two_heads:
        raise UserError("objective.style_weight > 0 (CAN) needs a discriminator class head: "
                         "set model.class_head=True and model.num_styles to the class count.")
    if (conditional or two_heads) and not data.num_classes:
        raise UserError(f"{'model.num_classes' if conditional else 'model.class_head'} needs "
                         f"labelled data; {data.name} has no labels.")
    if two_heads and int(model.num_styles) != data.num_classes:
        raise UserError(f"model.num_styles={model.num_styles} but {data.name} has "
                         f"{data.num_classes} classes; set model.num_styles="
                         f"{data.num_classes}.")
    if conditional and int(model.num_classes) != data.num_classes:
        raise UserError(f"model.num_classes={model.num_classes} but {data.name} has "
                         f"{data.num_classes} classes.")
    gm = GANModel(model, latent_dim, conditional, grows, state=state)

    def init(rng, batch):
        x = batch["x"]
        label = batch.get("label") if conditional else None
        z = jnp.zeros((x.shape[0], latent_dim), jnp.float32)
        variables = model.init(rng, z, label)
        p = variables["params"]
        d = p["discriminator"]
        if m > 1:  # D's input is a pack of m samples
            packed = pack(jnp.zeros((m, *x.shape[1:]), x.dtype), m)  # one pack
            d = model.init(rng, packed, None, method=model.discriminate)["params"][
                "discriminator"]
        params = {"generator": p["generator"],
                  "discriminator": clip_weights(d, clip) if game.clip else d}
        if grows:  # a growing model's clock: non-gradient state, checkpointed with the params
            params["growth"] = {"step": jnp.zeros((), jnp.int32)}
        params.update({k: variables[k] for k in state})  # non-gradient state
        return params

    d_loss = functools.partial(discriminator_loss, gm=gm, game=game,
                               gp_weight=float(o.gp_weight), class_head=two_heads,
                               class_weight=float(o.class_weight), pack_size=m)
    g_loss = functools.partial(generator_loss, gm=gm, game=game, split=split,
                               n_critic=n_critic, class_head=two_heads,
                               style_weight=float(o.style_weight),
                               ortho_weight=float(o.ortho_weight), unroll_steps=unroll,
                               unroll_lr=float(o.unroll_lr), pack_size=m)
    players = (Player("discriminator", d_loss, updates_per_step=n_critic, split_batch=split,
                      project=functools.partial(clip_weights, c=clip) if game.clip else None),
               Player("generator", g_loss))
    return Objective(
        name="gan",
        players=players,
        init=init,
        update_state=_chain(advance_growth if grows else None,
                            functools.partial(refresh_model_state, net=model) if state else None),
        sample=functools.partial(sample, gm=gm, num_classes=getattr(model, "num_classes", None)),
        pictures=pictures.write_all,
        representation="z -> x only; x -> z by optimisation (`jaxgen invert`)",
        round_trip=None if conditional else inversion_round_trip(gm.generate, latent_dim),
        tools=GANTools(gm.generate, functools.partial(discriminate_copies, gm=gm, m=m),
                       functools.partial(latents, latent_dim=latent_dim), latent_dim, kind,
                       game, conditional, two_heads),
    )
