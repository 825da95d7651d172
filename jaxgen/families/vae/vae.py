"""The variational autoencoder (Kingma & Welling, 2014), β-VAE and the IWAE bound.

Model: p(z) = N(0, I), p_θ(x|z) a decoder distribution, q_φ(z|x) = N(μ(x),
diag σ²(x)) from the encoder (`jaxgen.nn.vae`). The lecture's bound:

    log p(x) = ELBO + KL(q(z|x) ‖ p(z|x)) ≥ ELBO,
    ELBO     = E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I)),
    KL       = ½ Σ_j (σ_j² + μ_j² − 1 − log σ_j²)          (analytic),

E_q estimated with the reparameterisation z = μ + σ·ε, ε ~ N(0, I) (one draw
per example in training). The loss is the negative β-ELBO per data dimension
(so the learning rate does not depend on resolution):

    L = mean_x[ −log p(x|z) + w_t·β·KL ] / D,

β = objective.beta (1: the VAE; > 1: the β-VAE of Higgins et al., 2017) and
w_t = min(1, t / objective.kl_warmup_steps) an optional linear KL warm-up
(0 = none). The loss is pure, so the step t is kept as non-gradient state,
params["state"]["step"] (float32, the number of updates so far: it equals the
trainer's step), advanced by `update_state` after every update. Without
warm-up there is no state.

objective.encoder="deterministic" makes the same networks a plain autoencoder:
z = μ(x) (no noise; the log-variance head is unused, so it gets no gradient), no
KL term, the same decoder likelihood, so L = mean_x[ −log p(x|μ(x)) ] / D: the
only differences from the VAE are the KL term and the noise. Its metric `recon`
is that NLL; it has no ELBO or IWAE bound (no posterior), only the prior
Monte-Carlo estimate below, and sampling decodes z ~ N(0, T² I) as the VAE's.

Decoders p(x|z) (objective.decoder):
  "bernoulli"         binarised images b ∈ {0, 1}: b = [x > 127] (objective.binarize=
                      "threshold", the default) or b ~ Bernoulli(x / 255)
                      ("stochastic", redrawn every step and at eval: dynamic
                      binarisation). The encoder sees 2b − 1. The bound is on
                      P(b), the binarised image — not comparable with 8-bit bits/dim.
  "gaussian"          N(x; μ(z), s²) with fixed s = objective.decoder_std.
  "gaussian_learned"  N(x; μ(z), s(z)²) with learned log s, per dimension
                      (objective.learned_std="pixel") or one per example
                      ("example": the mean of the log-s map). log s ≥ −7.
  "logistic"          the discretised logistic over the 256 bins of an 8-bit pixel
                      (Salimans et al., 2017; Kingma et al., 2016), bin width 2/256
                      in model space, edge bins extended to ±∞, log-scale ≥ −7; so
                      the bound is on log P(x) of the discrete image.
The two discrete decoders get images as bin centres (`Objective.dequantize` False)
and their likelihoods are `discrete=True`; the Gaussians model dequantised
model space (a density, `discrete=False`: eval adds the shared Jacobian term).

Training metrics (batch means, nats per example): `elbo` (the β = 1 bound,
whatever β), `recon` = −log p(x|z), `kl`, `kl_active_dims` and, with warm-up,
`kl_weight` = w_t·β; for images also `bits_per_dim`, the −ELBO in bits per
8-bit pixel under the shared convention (`jaxgen.eval.likelihood`).
Posterior collapse is watched through the per-dimension KL: `kl_active_dims`
counts the latent dimensions whose batch-mean KL exceeds 0.01 nats;
`active_units` computes Burda et al.'s A_u = Cov_x(E_q[z_u]) > 0.01 over
held-out posterior means (a test-set statistic).

Likelihoods (per example, nats):
  "iwae"  (default) L_k = E log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q
          (Burda et al., 2016), k = eval.iwae_k, evaluated in chunks of
          eval.iwae_chunk samples with a `lax.scan` that carries a running
          logsumexp, so memory does not grow with k. L_1 = ELBO ≤ L_k ≤ L_{k+1}
          ≤ log p(x) (in expectation). Sample i's noise depends only on i, so
          the result does not depend on the chunk size.
  "elbo"  the ELBO with eval.elbo_samples draws and the analytic KL, with its
          terms `recon` (−E log p(x|z)) and `kl`.
The lecture's Monte-Carlo estimate with z from the prior, log (1/k) Σ_i p(x|z_i),
z_i ~ p(z) = N(0, I) (`prior_mc_bound`), is the IWAE bound with q = p(z) (the
weights reduce to p(x|z_i)): also a lower bound in expectation that rises with
k, but few prior draws land where p(x|z) is large, so it converges slowly. Not an
eval estimator; `LatentTools.log_px` gives either at any k.

Sampling: z ~ N(0, T² I) (T = temperature), decoded to the decoder's *mean*
image (sample.mode="mean", the default: the Bernoulli probabilities shown as
grey levels, the logistic/Gaussian location μ(z)), or a draw x ~ p(x|z)
(sample.mode="draw", what the 2-D toy uses: a sample of the model itself).
VAE models are unconditional: labels raise ValueError.

Latent tools (pure, the objective's `tools`, a `LatentTools`):
encode (posterior mean), decode (mean image), interpolate (a strip from α = 0
to 1 between two encoded images), manifold_grid (latent_dim = 2: decoded
Gaussian quantiles, as Kingma & Welling's figure), traversals (one latent
dimension swept at a time, for the β-VAE). The module-level
`interpolate_latents`, `manifold_latents` and `traversal_latents` build the
latent codes they decode.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from jaxgen.distributions import (
    bernoulli_log_prob,
    discretized_logistic_log_prob,
    gaussian_log_prob,
    kl_standard_normal,
    standard_normal_log_prob,
    sum_event,
)
from jaxgen.families.vae import pictures
from jaxgen.kernel import transforms
from jaxgen.kernel.contract import (
    Autoencoder,
    BuildContext,
    FamilyTools,
    HeldOutStats,
    Likelihood,
    Objective,
    Player,
)
from jaxgen.kernel.errors import UserError

DECODERS = ("bernoulli", "gaussian", "gaussian_learned", "logistic")
NUM_OUTPUTS = {"bernoulli": 1, "gaussian": 1, "gaussian_learned": 2, "logistic": 2}
MIN_LOG_SCALE = -7.0


# ------------------------------------------------------------------- bounds
def _noise(rng, idx, shape):
    """(n, *shape) standard normals; sample i depends only on (rng, i)."""
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(rng, i), shape))(idx)


def reparameterize(mean, log_var, eps):
    """(z, log q(z|x)) for z = μ + σ ε ~ N(μ, σ²): eps (n, B, L) -> (n, B, L), (n, B)."""
    z = mean + jnp.exp(0.5 * log_var) * eps
    return z, jnp.sum(standard_normal_log_prob(eps) - 0.5 * log_var, -1)


def _log_weights(log_lik, mean, log_var, eps):
    """log p(x|z) + log p(z) − log q(z|x) for z = μ + σ ε; eps (n, B, L) -> (n, B)."""
    z, log_q = reparameterize(mean, log_var, eps)
    return log_lik(z) + jnp.sum(standard_normal_log_prob(z), -1) - log_q


def iwae_bound(log_lik: Callable, mean, log_var, rng, k: int, chunk: int | None = None):
    """Burda et al.'s L_k per example: log (1/k) Σ_i w_i, chunked over i.

    log_lik: z (n, B, L) -> log p(x|z) (n, B). The k samples are drawn `chunk`
    at a time inside a `lax.scan` whose carry is the running logsumexp (B,),
    so memory is that of one chunk whatever k; a last partial chunk is masked.
    """
    k = int(k)
    chunk = max(1, min(int(chunk or k), k))
    n_chunks = -(-k // chunk)

    def body(acc, c):
        idx = c * chunk + jnp.arange(chunk)
        logw = _log_weights(log_lik, mean, log_var, _noise(rng, idx, mean.shape))
        logw = jnp.where((idx < k)[:, None], logw, -jnp.inf)
        return jnp.logaddexp(acc, jax.nn.logsumexp(logw, axis=0)), None

    acc0 = jnp.full(mean.shape[:1], -jnp.inf, mean.dtype)
    acc, _ = jax.lax.scan(body, acc0, jnp.arange(n_chunks))
    return acc - math.log(k)


def prior_mc_bound(log_lik: Callable, batch: int, latent_dim: int, rng, k: int,
                   chunk: int | None = None, dtype=jnp.float32):
    """log (1/k) Σ_i p(x|z_i), z_i ~ N(0, I), per example: `iwae_bound` with the prior as
    the proposal (μ = 0, log σ² = 0), where log p(z_i) − log q(z_i) = 0."""
    zeros = jnp.zeros((batch, latent_dim), dtype)
    return iwae_bound(log_lik, zeros, zeros, rng, k, chunk)


def elbo_terms(log_lik: Callable, mean, log_var, rng, num_samples: int = 1):
    """(recon, kl) per example: recon = −(1/S) Σ_s log p(x|z_s), kl analytic (nats)."""
    eps = _noise(rng, jnp.arange(num_samples), mean.shape)
    z = mean + jnp.exp(0.5 * log_var) * eps
    recon = -jnp.mean(log_lik(z), axis=0)
    return recon, jnp.sum(kl_standard_normal(mean, log_var), -1)


def active_units(means, threshold: float = 0.01):
    """Burda et al. (2016): A_u = Cov_x(E_q[z_u]); unit u is active if A_u > threshold.

    means: (N, L) posterior means over held-out examples. Returns (count, A) with
    A (L,) the per-dimension variances of the means.
    """
    a = jnp.var(jnp.asarray(means), axis=0)
    return jnp.sum(a > threshold), a


def posterior_collapse_stats(arrays: dict, threshold: float = 0.01) -> dict:
    """Held-out collapse diagnostics from posterior means/log-variances (N, L).

    active_units: Burda et al.'s count of A_u = Cov_x(E_q[z_u]) > threshold;
    kl_per_dim_nats: the mean KL(q(z_d|x) ‖ N(0, 1)) of each dimension d, and
    kl_active_dims: how many exceed `threshold` nats (a collapsed dimension has
    q(z_d|x) = p(z_d) for every x: KL 0 and A_u 0).
    """
    count, a = active_units(arrays["mean"], threshold)
    kl = np.mean(np.asarray(kl_standard_normal(jnp.asarray(arrays["mean"]),
                                               jnp.asarray(arrays["log_var"]))), 0)
    return {"active_units": int(count), "latent_dim": int(a.shape[0]),
            "kl_active_dims": int(np.sum(kl > threshold)), "kl_nats": float(np.sum(kl)),
            "kl_per_dim_nats": [round(float(v), 4) for v in kl],
            "active_unit_variance": [round(float(v), 4) for v in np.asarray(a)]}


# ------------------------------------------------------------- latent tools
def interpolate_latents(z0, z1, n: int):
    """(n, *z.shape): (1 − α) z0 + α z1 for α = 0 … 1 (linear, as the lecture's strip)."""
    alpha = jnp.linspace(0.0, 1.0, n).reshape(n, *([1] * jnp.ndim(z0)))
    return (1.0 - alpha) * z0 + alpha * z1


def manifold_latents(n: int):
    """(n, n, 2): the Gaussian quantiles Φ⁻¹((i + ½)/n) on both axes (Kingma & Welling,
    fig. 4); row i has z_2 decreasing so the picture reads like a plot."""
    q = ndtri((jnp.arange(n) + 0.5) / n)
    z1, z2 = jnp.meshgrid(q, q[::-1])
    return jnp.stack([z1, z2], -1)


def traversal_latents(z, dims, n: int, span: float = 3.0):
    """(len(dims), n, L): z with dimension d swept over linspace(−span, span, n)."""
    values = jnp.linspace(-span, span, n)
    rows = []
    for d in dims:
        zz = jnp.broadcast_to(z, (n, z.shape[-1]))
        rows.append(zz.at[:, d].set(values))
    return jnp.stack(rows)


@dataclasses.dataclass(frozen=True)
class LatentTools(FamilyTools):
    """Pure latent-space functions of a trained VAE; `params` is the objective's dict.

    encode(params, x) -> (B, L) posterior means of model-space x.
    decode(params, z) -> (B, *event_shape) mean images (model space).
    interpolate(params, x0, x1, n) -> (B, n, *event_shape) strips, α = 0 … 1.
    manifold_grid(params, n) -> (n, n, *event_shape) (latent_dim = 2 only).
    traversals(params, x, dims=None, n=9, span=3.0) -> (len(dims), n, *event_shape)
      for one example x (*event_shape); dims default: all, by decreasing KL (that
      ordering reads values, so under jit pass dims as a static tuple).
    log_px(params, x, rng, k, proposal="posterior", chunk=None) -> (B,) per-example
      estimates of log p(x) (nats; x as the likelihoods see it: bin centres for the
      discrete decoders) from k importance samples: proposal "posterior" is the IWAE
      bound L_k, "prior" the Monte-Carlo estimate log (1/k) Σ p(x|z_i), z_i ~ N(0, I)
      (`prior_mc_bound`); k, proposal and chunk are static under jit. A deterministic
      encoder has only "prior".
    """

    encode: Callable
    decode: Callable
    interpolate: Callable
    manifold_grid: Callable
    traversals: Callable
    latent_dim: int
    log_px: Callable | None = None
    provides: ClassVar[str] = "latent space"
    needed_for: ClassVar[str] = "VAE runs (objective.name=vae)"


# ----------------------------------------------------------------- decoders
@dataclasses.dataclass(frozen=True)
class Decoder:
    """p(x|z) from the decoder's parameter maps `out` (B, *event_shape, P)."""

    kind: str
    std: float = 0.1
    learned_std: str = "pixel"

    def _log_std(self, out):
        if self.kind == "gaussian":
            return jnp.full(out.shape[:-1], math.log(self.std), out.dtype)
        log_s = out[..., 1]
        if self.learned_std == "example":
            log_s = jnp.broadcast_to(
                jnp.mean(log_s.reshape(log_s.shape[0], -1), -1).reshape(
                    (-1,) + (1,) * (log_s.ndim - 1)), log_s.shape)
        return jnp.maximum(log_s, MIN_LOG_SCALE)

    def log_prob(self, x, out):
        """Per-example log p(x|z) (nats), summed over the event."""
        loc = out[..., 0]
        if self.kind == "bernoulli":
            lp = bernoulli_log_prob(x, loc)
        elif self.kind == "logistic":
            lp = discretized_logistic_log_prob(
                x, loc, jnp.maximum(out[..., 1], MIN_LOG_SCALE),
                bin_width=transforms.IMAGE_SCALE / 256.0, lo=transforms.IMAGE_SHIFT,
                hi=transforms.IMAGE_SHIFT + transforms.IMAGE_SCALE)
        else:
            lp = gaussian_log_prob(x, loc, self._log_std(out))
        return sum_event(lp)

    def mean(self, out):
        """The mean image in model space (Bernoulli: 2p − 1; logistic: μ clipped to [−1, 1])."""
        loc = out[..., 0]
        if self.kind == "bernoulli":
            return 2.0 * jax.nn.sigmoid(loc) - 1.0
        if self.kind == "logistic":
            return jnp.clip(loc, -1.0, 1.0)
        return loc

    def draw(self, rng, out):
        """x ~ p(x|z) in model space."""
        loc = out[..., 0]
        if self.kind == "bernoulli":
            b = jax.random.bernoulli(rng, jax.nn.sigmoid(loc)).astype(loc.dtype)
            return 2.0 * b - 1.0
        if self.kind == "logistic":
            u = jax.random.uniform(rng, loc.shape, loc.dtype, 1e-6, 1.0 - 1e-6)
            s = jnp.exp(jnp.maximum(out[..., 1], MIN_LOG_SCALE))
            return jnp.clip(loc + s * (jnp.log(u) - jnp.log1p(-u)), -1.0, 1.0)
        return loc + jnp.exp(self._log_std(out)) * jax.random.normal(rng, loc.shape, loc.dtype)


def binarize(x, rng, mode: str):
    """Model-space bin centres -> {0, 1}: x > 127 ("threshold") or ~ Bernoulli(x/255)."""
    pixel = (x - transforms.IMAGE_SHIFT) / transforms.IMAGE_SCALE * 256.0 - 0.5
    if mode == "threshold":
        return (pixel > 127.0).astype(jnp.float32)
    return jax.random.bernoulli(rng, jnp.clip(pixel / 255.0, 0.0, 1.0)).astype(jnp.float32)


# ------------------------------------------------------------------ the loss
def vae_loss(params, batch, rng, *, model, decoder: Decoder, prepare, beta, warmup_steps: int,
             dim: int, shift: float | None, regularizer=None):
    """−β-ELBO per dimension, one reparameterised draw per example; see the module doc.

    `regularizer(z, mean, log_var, rng) -> (R, metrics)` replaces the KL term: the loss is
    then (mean reconstruction NLL + β R) / dim, R in nats per example (a batch-level term
    such as an MMD between the codes and the prior may be one number for the batch). The
    ELBO and KL are still logged; the regulariser's metrics are logged beside them."""
    kb, kz = jax.random.split(rng)
    x_in, target = prepare(batch["x"], kb)
    net = {"params": params["model"]}
    mean, log_var = model.apply(net, x_in, method=model.encode)
    z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(kz, mean.shape, mean.dtype)
    recon = -decoder.log_prob(target, model.apply(net, z, method=model.decode))
    kl_dims = kl_standard_normal(mean, log_var)
    kl = jnp.sum(kl_dims, -1)
    weight = beta
    if warmup_steps:
        weight = beta * jnp.minimum(1.0, params["state"]["step"] / warmup_steps)
    extra = {}
    if regularizer is None:
        loss = jnp.mean(recon + weight * kl) / dim
    else:
        reg, extra = regularizer(z, mean, log_var, jax.random.fold_in(rng, 2))
        loss = (jnp.mean(recon) + weight * reg) / dim
        extra = {**extra, "regularizer": reg}
    elbo = -(recon + kl)
    metrics = {"elbo": jnp.mean(elbo), "recon": jnp.mean(recon), "kl": jnp.mean(kl),
               "kl_active_dims": jnp.sum(jnp.mean(kl_dims, 0) > 0.01).astype(jnp.float32),
               **extra}
    if warmup_steps:
        metrics["kl_weight"] = weight
    if shift is not None:  # images: the −ELBO in bits/dim of the 8-bit data
        metrics["bits_per_dim"] = -(jnp.mean(elbo) + shift) / (dim * math.log(2.0))
    return loss, metrics


def ae_loss(params, batch, rng, *, model, decoder: Decoder, prepare, beta, warmup_steps: int,
            dim: int, shift: float | None):
    """The deterministic autoencoder's loss: −log p(x|z) at z = μ(x) per dimension, no KL
    and no noise (beta and warmup_steps, `vae_loss`'s, are unused)."""
    del beta, warmup_steps, shift
    x_in, target = prepare(batch["x"], rng)
    net = {"params": params["model"]}
    mean, _ = model.apply(net, x_in, method=model.encode)
    recon = -decoder.log_prob(target, model.apply(net, mean, method=model.decode))
    return jnp.mean(recon) / dim, {"recon": jnp.mean(recon)}


@dataclasses.dataclass(frozen=True)
class VAEModel:
    """The encoder / decoder network with its decoder distribution: pure functions of the
    objective's params (shared by the loss, the bounds, sampling and the latent tools)."""

    net: object  # the Flax module (encode / decode methods)
    decoder: Decoder
    binarize: str = "threshold"

    def prepare(self, x, rng):
        """Model-space x -> (encoder input, what p(x|z) scores)."""
        if self.decoder.kind == "bernoulli":
            b = binarize(x, rng, self.binarize)
            return 2.0 * b - 1.0, b
        return x, x

    def encoder_input(self, x):
        """Deterministic encoder input (Bernoulli models see the thresholded image)."""
        if self.decoder.kind == "bernoulli":
            return 2.0 * binarize(x, None, "threshold") - 1.0
        return x

    def encode(self, params, x):
        return self.net.apply({"params": params["model"]}, x, method=self.net.encode)

    def decode_out(self, params, z):
        return self.net.apply({"params": params["model"]}, z, method=self.net.decode)

    def posterior(self, params, x, rng):
        """(mean, log_var, log_lik, rng): q(z|x) and z (n, B, L) -> log p(x|z) (n, B)."""
        kb, kz = jax.random.split(rng)
        x_in, target = self.prepare(x, kb)
        mean, log_var = self.encode(params, x_in)

        def log_lik(z):
            n, b = z.shape[:2]
            out = self.decode_out(params, z.reshape(n * b, -1))
            tgt = jnp.broadcast_to(target, (n, *target.shape)).reshape(n * b, *target.shape[1:])
            return self.decoder.log_prob(tgt, out).reshape(n, b)

        return mean, log_var, log_lik, kz

    def posterior_draw(self, params, x, rng):
        """(z, log q(z|x), log p(x|z)) of one draw z ~ q(z|x) per example (the first
        draw of the IWAE and ELBO estimators with the same rng)."""
        mean, log_var, log_lik, kz = self.posterior(params, x, rng)
        z, log_q = reparameterize(mean, log_var, _noise(kz, jnp.arange(1), mean.shape))
        return z[0], log_q[0], log_lik(z)[0]

    def mean_image(self, params, z):
        return self.decoder.mean(self.decode_out(params, z))

    def posterior_mean(self, params, x):
        return self.encode(params, self.encoder_input(x))[0]


def iwae_loglik(params, x, rng, *, vm: VAEModel, k: int, chunk: int):
    mean, log_var, log_lik, kz = vm.posterior(params, x, rng)
    return iwae_bound(log_lik, mean, log_var, kz, k, chunk)


def elbo_loglik(params, x, rng, *, vm: VAEModel, num_samples: int):
    mean, log_var, log_lik, kz = vm.posterior(params, x, rng)
    recon, kl = elbo_terms(log_lik, mean, log_var, kz, num_samples)
    return -(recon + kl), {"recon": recon, "kl": kl}


def sample(params, rng, num, settings, labels=None, *, vm: VAEModel, latent_dim: int):
    """z ~ N(0, T² I), decoded to the mean image or a draw x ~ p(x|z) (settings.mode)."""
    if labels is not None:
        raise UserError("VAE models are unconditional; drop the labels.")
    kz, kx = jax.random.split(rng)
    z = settings.temperature * jax.random.normal(kz, (num, latent_dim), jnp.float32)
    out = vm.decode_out(params, z)
    return vm.decoder.mean(out) if settings.mode == "mean" else vm.decoder.draw(kx, out)


def latent_tools(vm: VAEModel, latent_dim: int, event_shape,
                 deterministic: bool = False) -> LatentTools:
    """The `LatentTools` of a VAE (deterministic: Bernoulli models see the thresholded
    image)."""
    def log_px(params, x, rng, k: int, proposal: str = "posterior", chunk: int | None = None):
        if proposal == "prior":
            mean, _, log_lik, kz = vm.posterior(params, x, rng)
            return prior_mc_bound(log_lik, x.shape[0], latent_dim, kz, k, chunk, mean.dtype)
        if proposal != "posterior" or deterministic:
            raise UserError(f"log_px: proposal {proposal!r} is not one of "
                            f"{('prior',) if deterministic else ('posterior', 'prior')}.")
        return iwae_loglik(params, x, rng, vm=vm, k=k, chunk=chunk)

    def interpolate(params, x0, x1, n: int = 8):
        z0, z1 = vm.posterior_mean(params, x0), vm.posterior_mean(params, x1)
        zs = interpolate_latents(z0, z1, n)  # (n, B, L)
        imgs = vm.mean_image(params, zs.reshape(-1, latent_dim)).reshape(n, z0.shape[0],
                                                                         *event_shape)
        return jnp.swapaxes(imgs, 0, 1)

    def manifold_grid(params, n: int = 20):
        if latent_dim != 2:
            raise UserError(f"The latent manifold needs model.latent_dim=2, got {latent_dim}.")
        return vm.mean_image(params, manifold_latents(n).reshape(-1, 2)).reshape(
            n, n, *event_shape)

    def traversals(params, x, dims=None, n: int = 9, span: float = 3.0):
        mean, log_var = vm.encode(params, vm.encoder_input(x[None]))
        if dims is None:
            kl = np.asarray(kl_standard_normal(mean, log_var))[0]
            dims = [int(d) for d in np.argsort(-kl)]
        zs = traversal_latents(mean[0], dims, n, span)
        return vm.mean_image(params, zs.reshape(-1, latent_dim)).reshape(len(dims), n,
                                                                         *event_shape)

    return LatentTools(vm.posterior_mean, vm.mean_image, interpolate, manifold_grid,
                       traversals, latent_dim, log_px)


def posterior_stats_batch(params, x, rng, *, vm: VAEModel):
    del rng
    mean, log_var = vm.encode(params, vm.encoder_input(x))
    return {"mean": mean, "log_var": log_var}


def code_stats_batch(params, x, rng, *, vm: VAEModel):
    """The autoencoder's held-out codes z = μ(x) (it has no posterior variance)."""
    del rng
    return {"mean": vm.posterior_mean(params, x)}


def code_stats(arrays: dict, threshold: float = 0.01) -> dict:
    """The autoencoder's `active_units` (Var_x(z_u) > threshold) and its codes' spread."""
    count, a = active_units(arrays["mean"], threshold)
    m = np.asarray(arrays["mean"], np.float64)
    return {"active_units": int(count), "latent_dim": int(a.shape[0]),
            "code_mean": [round(float(v), 4) for v in m.mean(0)],
            "active_unit_variance": [round(float(v), 4) for v in np.asarray(a)]}


def advance_step(params, batch, rng):
    """update_state of the KL warm-up: the step counter params["state"]["step"] += 1."""
    del batch, rng
    return {**params, "state": {"step": params["state"]["step"] + 1.0}}


def make(ctx: BuildContext, loss=None, regularizer=None) -> Objective:
    """The VAE objective. `loss`: a replacement for `vae_loss`, called with the same keyword
    arguments (model, decoder, prepare, beta, warmup_steps, dim, shift, and regularizer when
    one is given); `regularizer(z, mean, log_var, rng) -> (R, metrics)`: a replacement for
    the KL term alone (`vae_loss`'s doc), e.g. an MMD to the prior. The sampler,
    likelihoods (IWAE and the ELBO, bounds on log p(x) for any encoder) and pictures stay
    the family's."""
    o, data = ctx.settings, ctx.data
    image = data.kind == "images"
    kind = o.decoder or ("logistic" if image else "gaussian_learned")
    if kind in ("bernoulli", "logistic") and not image:
        raise UserError(f"objective.decoder={kind} models 8-bit images; {data.name} holds "
                         "points. Use gaussian or gaussian_learned.")
    if not hasattr(ctx.model, "decoder_outputs") or not hasattr(ctx.model, "latent_dim"):
        raise UserError("objective.name=vae needs a VAE model: model.name=vae_mlp or vae_conv.")
    model = ctx.model.clone(decoder_outputs=NUM_OUTPUTS[kind])
    decoder = Decoder(kind, float(o.decoder_std), o.learned_std)
    vm = VAEModel(model, decoder, o.binarize)
    deterministic = o.encoder == "deterministic"
    if deterministic and (o.kl_warmup_steps or o.beta != 1.0):
        raise UserError("objective.encoder=deterministic has no KL term: leave objective.beta "
                        "and objective.kl_warmup_steps at their defaults.")
    warmup = int(o.kl_warmup_steps)
    discrete = kind in ("bernoulli", "logistic")
    event_shape = tuple(data.event_shape)
    dim = math.prod(event_shape)
    latent_dim = int(model.latent_dim)
    shift = None
    if image:
        shift = 0.0 if discrete else transforms.log_det_to_discrete("images", event_shape)

    def init(rng, batch):
        p = {"model": model.init(rng, batch["x"])["params"]}
        if warmup:
            p["state"] = {"step": jnp.zeros((), jnp.float32)}
        return p

    if regularizer is not None and deterministic:
        raise UserError("objective.encoder=deterministic has no regulariser term to replace; "
                        "use the stochastic encoder (objective.encoder=gaussian) with a "
                        "regularizer.")
    loss = functools.partial(loss or (ae_loss if deterministic else vae_loss), model=model,
                             decoder=decoder, prepare=vm.prepare, beta=float(o.beta),
                             warmup_steps=warmup, dim=dim, shift=shift,
                             **({"regularizer": regularizer} if regularizer else {}))
    e = ctx.eval
    tools = latent_tools(vm, latent_dim, event_shape, deterministic)
    if deterministic:  # no posterior: neither the ELBO nor IWAE, nor a posterior draw
        likelihoods = {}
        stats = HeldOutStats(functools.partial(code_stats_batch, vm=vm), code_stats)
    else:
        likelihoods = {
            "iwae": Likelihood(functools.partial(iwae_loglik, vm=vm, k=int(e.iwae_k),
                                                 chunk=int(e.iwae_chunk)),
                               "bound", discrete=discrete),
            "elbo": Likelihood(functools.partial(elbo_loglik, vm=vm,
                                                 num_samples=int(e.elbo_samples)),
                               "bound", discrete=discrete)}
        stats = HeldOutStats(functools.partial(posterior_stats_batch, vm=vm),
                             posterior_collapse_stats)
    return Objective(
        name="vae",
        players=(Player("model", loss),),
        init=init,
        update_state=advance_step if warmup else None,
        sample=functools.partial(sample, vm=vm, latent_dim=latent_dim),
        likelihoods=likelihoods,
        dequantize=not discrete,
        held_out_stats=stats,
        pictures=pictures.write_vae,
        autoencoder=Autoencoder(vm.posterior_mean, vm.mean_image, (latent_dim,),
                                posterior_draw=None if deterministic else vm.posterior_draw,
                                discrete=discrete),
        representation="yes: encoder x -> z and decoder z -> x (latent interpolation of "
                       "real images)",
        tools=tools,
    )
