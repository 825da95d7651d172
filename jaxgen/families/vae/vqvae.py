"""VQ-VAE (van den Oord et al., 2017): a codebook of K vectors and the lecture's loss.

The encoder maps x to a (h, w, D) map z_e = E(x) (h, w = H/4, W/4; 7x7 for
Fashion-MNIST). Each vector is replaced by its nearest code, k = argmin_j
‖z_e − e_j‖², and the decoder sees z_q = e_k. The lecture's loss,

    L = ‖x − D(e_k)‖² + ‖sg[E(x)] − e_k‖² + β ‖E(x) − sg[e_k]‖²,
         reconstruction    codebook ("VQ")    commitment

is written term by term with `jax.lax.stop_gradient` (= sg). The decoder's
input is the straight-through z_q = z_e + sg[e_k − z_e]: its value is e_k and
its gradient is copied to the encoder, so the reconstruction term trains the
encoder and decoder but not the codebook, the codebook term moves only the
codebook and the commitment term only the encoder. Each term is averaged over
its elements (pixels; latent positions × D), β = objective.beta (0.25).

Codebook (objective.num_codes = K, D = model.embed_dim), initialised at
randomly chosen encoder outputs of the first batch (plus a little noise):
  * objective.ema = False: the codebook is trained by the gradient of the
    codebook term, as part of the "model" player: params["model"]["codebook"].
  * objective.ema = True (van den Oord et al., appendix A.1): the codebook is
    non-gradient state, params["vq"], updated in `update_state` after each
    gradient step, with decay γ = objective.ema_decay and Laplace smoothing
    ε = objective.ema_epsilon:
        N_j ← γ N_j + (1 − γ) n_j,        n_j = #{vectors of the batch assigned to j}
        m_j ← γ m_j + (1 − γ) Σ_{i: k_i = j} z_e,i
        Ñ_j = (N_j + ε) / (Σ_l N_l + K ε) · Σ_l N_l,     e_j = m_j / Ñ_j
    and the codebook term is dropped from the loss. The assignments use the
    encoder after this step's update (update_state re-encodes the batch).
    N starts at 1 and m at the initial codebook.
Dead-code restarts (objective.restart_after = R > 0): a code that no vector of
the last R batches was assigned to is reset to a random encoder output of the
current batch (update_state, with its rng; in EMA mode N_j = 1, m_j = e_j).
The gradient-mode codebook is a player's parameter, which update_state must
not change, so there a restart writes a non-gradient offset instead: the codebook
in use is params["model"]["codebook"] + params["vq"]["shift"].

Metrics: `mse` (the reconstruction term, model space [−1, 1]), `codebook`
(gradient mode), `commitment`, `usage` (fraction of the K codes used in the
batch), `perplexity` = exp(H(p̄)), p̄ the batch-average one-hot assignment
(K when all codes are used equally, 1 when one is), `dead_codes` (codes idle
for ≥ R batches; restarts on).

Likelihood "elbo": with a uniform prior over the K^{hw} code maps and the
deterministic q(k|x) (KL = hw·log K), log p(x) ≥ log N(x; D(e_k), s² I) − hw·log K,
a density on dequantised model space (s = objective.decoder_std, used only
here: the training loss does not depend on it). A crude bound: a learned prior
over the codes (a later issue) replaces hw·log K by its cross-entropy.

Sampling: there is no learned prior yet, so `sample` decodes code maps drawn
*uniformly* at random (each position independently), which shows what the
codes decode to, not samples of the data distribution; temperature is ignored.
Reconstructions are the meaningful pictures: `tools.reconstruct`.

Exports (the objective's `tools`, a `CodeTools`): `encode_codes(params, x) -> (B, h, w)
int32` code maps (to train an autoregressive prior on), `decode_codes(params, codes) ->
images`, `stats(params, x) -> {mse, perplexity, usage}` for held-out data; the same
encode / decode pair is the objective's `autoencoder`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.distributions import gaussian_log_prob, sum_event
from jaxgen.families.vae import pictures
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

sg = jax.lax.stop_gradient


def nearest_codes(z, codebook):
    """Indices (…,) of the nearest codebook rows to vectors z (…, D), squared Euclidean."""
    d2 = (jnp.sum(jnp.square(z), -1, keepdims=True) - 2.0 * z @ codebook.T
          + jnp.sum(jnp.square(codebook), -1))
    return jnp.argmin(d2, axis=-1).astype(jnp.int32)


def perplexity(codes, num_codes: int):
    """exp(H(p̄)), p̄ the average one-hot assignment of `codes`; and the fraction used."""
    p = jnp.mean(jax.nn.one_hot(codes.reshape(-1), num_codes), axis=0)
    h = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.exp(h), jnp.mean(p > 0)


def quantize(z_e, codebook):
    """One level's quantiser: (z_q, codes, {"codebook", "commitment"}).

    codes = argmin_j ‖z_e − e_j‖², z_q the straight-through z_e + sg[e_k − z_e] (value
    e_k, gradient to z_e); the codebook term ‖sg[z_e] − e_k‖² and the commitment term
    ‖z_e − sg[e_k]‖², each a mean over its elements.
    """
    codes = nearest_codes(sg(z_e), sg(codebook))
    e_k = codebook[codes]
    z_q = z_e + sg(e_k - z_e)  # straight-through: value e_k, gradient to z_e
    return z_q, codes, {"codebook": jnp.mean(jnp.square(sg(z_e) - e_k)),
                        "commitment": jnp.mean(jnp.square(z_e - sg(e_k)))}


def vq_terms(z_e, codebook, decode, x):
    """The lecture's three terms (each a mean over its elements) and the codes.

    decode: z_q (B, h, w, D) -> x̂. Returns ({"recon", "codebook", "commitment"}, codes).
    """
    z_q, codes, terms = quantize(z_e, codebook)
    return {"recon": jnp.mean(jnp.square(x - decode(z_q))), **terms}, codes


def level_metrics(terms, codes, vq, *, num_codes: int, ema: bool, restart_after: int,
                  suffix: str = "") -> dict:
    """One level's logged metrics: commitment, perplexity, usage (+ codebook without EMA,
    dead_codes with restarts), each name + suffix (e.g. "_top")."""
    ppl, usage = perplexity(codes, num_codes)
    m = {"commitment": terms["commitment"], "perplexity": ppl, "usage": usage}
    if not ema:
        m["codebook"] = terms["codebook"]
    if restart_after:
        m["dead_codes"] = jnp.sum(vq["idle"] >= restart_after).astype(jnp.float32)
    return {k + suffix: v for k, v in m.items()}


def held_out_code_stats(arrays: dict, num_codes: int) -> dict:
    """Held-out `mse` (model space, per pixel), code `perplexity` and `usage` over all
    the code maps of the set (not per batch), and the number of codes used."""
    codes = np.asarray(arrays["codes"]).reshape(-1)
    p = np.bincount(codes, minlength=num_codes) / codes.size
    nz = p[p > 0]
    return {"mse": float(np.mean(arrays["sq_err"])),
            "perplexity": float(np.exp(-np.sum(nz * np.log(nz)))),
            "usage": float(np.mean(p > 0)), "codes_used": int(np.sum(p > 0)),
            "num_codes": num_codes}


def ema_update(vq: dict, flat, codes, num_codes: int, decay: float, epsilon: float) -> dict:
    """One EMA codebook step (module doc) from vectors flat (N, D) assigned to codes (N,)."""
    onehot = jax.nn.one_hot(codes, num_codes, dtype=flat.dtype)
    n = jnp.sum(onehot, 0)
    cluster = decay * vq["cluster_size"] + (1.0 - decay) * n
    embed_sum = decay * vq["embed_sum"] + (1.0 - decay) * onehot.T @ flat
    total = jnp.sum(cluster)
    smoothed = (cluster + epsilon) / (total + num_codes * epsilon) * total
    return {**vq, "cluster_size": cluster, "embed_sum": embed_sum,
            "codebook": embed_sum / smoothed[:, None]}


def init_codebook(k_pick, k_noise, flat, num_codes: int, ema: bool) -> tuple:
    """One level's codebook, drawn near the vectors flat (N, D) (module doc):
    (the gradient-trained codebook or None under EMA, its non-gradient state "vq")."""
    K, D = num_codes, flat.shape[-1]
    pick = jax.random.randint(k_pick, (K,), 0, flat.shape[0])
    scale = 0.1 * jnp.std(flat) + 1e-3
    codebook = flat[pick] + scale * jax.random.normal(k_noise, (K, D), flat.dtype)
    idle = jnp.zeros((K,), jnp.float32)
    if ema:
        return None, {"codebook": codebook, "cluster_size": jnp.ones((K,), jnp.float32),
                      "embed_sum": codebook, "idle": idle}
    return codebook, {"shift": jnp.zeros((K, D), jnp.float32), "idle": idle}


def codebook_in_use(vq: dict, learned=None):
    """The codebook a level quantises with: the EMA one, or the learned one + its restart
    offsets (`learned` None: EMA)."""
    return vq["codebook"] if learned is None else learned + vq["shift"]


def refresh_codebook(vq: dict, flat, codes, learned, rng, *, num_codes: int, decay: float,
                     epsilon: float, restart_after: int) -> dict:
    """One level's update_state from vectors flat (N, D) assigned to codes (N,): the EMA
    step (`learned` None), idle counters and dead-code restarts (module doc)."""
    K = num_codes
    ema = learned is None
    vq = dict(vq)
    if ema:
        vq = ema_update(vq, flat, codes, K, decay, epsilon)
    used = jnp.zeros((K,), bool).at[codes].set(True)
    idle = jnp.where(used, 0.0, vq["idle"] + 1.0)
    if restart_after:
        dead = idle >= restart_after
        new = flat[jax.random.randint(rng, (K,), 0, flat.shape[0])]
        if ema:
            vq["codebook"] = jnp.where(dead[:, None], new, vq["codebook"])
            vq["embed_sum"] = jnp.where(dead[:, None], new, vq["embed_sum"])
            vq["cluster_size"] = jnp.where(dead, 1.0, vq["cluster_size"])
        else:
            vq["shift"] = jnp.where(dead[:, None], new - learned, vq["shift"])
        idle = jnp.where(dead, 0.0, idle)
    vq["idle"] = idle
    return vq


def vq_loss(params, batch, rng, *, model, codebook_of, beta: float, ema: bool,
            num_codes: int, restart_after: int):
    del rng
    x = batch["x"]
    net = {"params": params["model"]["net"]}
    z_e = model.apply(net, x, method=model.encode)
    terms, codes = vq_terms(z_e, codebook_of(params),
                            lambda z: model.apply(net, z, method=model.decode), x)
    loss = terms["recon"] + beta * terms["commitment"]
    if not ema:
        loss = loss + terms["codebook"]
    metrics = {"mse": terms["recon"],
               **level_metrics(terms, codes, params["vq"], num_codes=num_codes, ema=ema,
                               restart_after=restart_after)}
    return loss, metrics


@dataclasses.dataclass(frozen=True)
class CodeTools(FamilyTools):
    """A trained VQ-VAE's codes: pure functions of the objective's params.

    encode_codes(params, x) -> (B, h, w) int32; decode_codes(params, codes) -> images;
    reconstruct(params, x); stats(params, x) -> {mse, perplexity, usage};
    codebook(params) -> (K, D) the codebook in use. A multi-level model (VQ-VAE-2) also
    has encode_levels(params, x) -> {level: (B, h_l, w_l)} and decode_levels(params, that
    dict); its encode_codes / decode_codes then use the levels as one token sequence.
    """

    encode_codes: Callable
    decode_codes: Callable
    reconstruct: Callable
    stats: Callable
    codebook: Callable
    num_codes: int
    code_shape: tuple
    encode_levels: Callable | None = None
    decode_levels: Callable | None = None
    provides: ClassVar[str] = "discrete codes"
    needed_for: ClassVar[str] = "VQ-VAE runs (objective.name=vqvae or vqvae2)"


@dataclasses.dataclass(frozen=True)
class VQModel:
    """The encoder / decoder network and its codebook: pure functions of the params."""

    net: object
    num_codes: int
    embed_dim: int
    ema: bool

    def codebook(self, params):
        return codebook_in_use(params["vq"], None if self.ema else params["model"]["codebook"])

    def encode(self, params, x):
        return self.net.apply({"params": params["model"]["net"]}, x, method=self.net.encode)

    def decode(self, params, z_q):
        return self.net.apply({"params": params["model"]["net"]}, z_q, method=self.net.decode)

    def encode_codes(self, params, x):
        """(B, h, w) int32 code maps of model-space images x."""
        return nearest_codes(self.encode(params, x), self.codebook(params))

    def decode_codes(self, params, codes):
        return self.decode(params, self.codebook(params)[codes])

    def decode_nearest(self, params, z_e):
        """Decode continuous maps (B, h, w, D) quantised to their nearest codes."""
        return self.decode_codes(params, nearest_codes(z_e, self.codebook(params)))

    def reconstruct(self, params, x):
        return self.decode_codes(params, self.encode_codes(params, x))

    def stats(self, params, x):
        codes = self.encode_codes(params, x)
        ppl, usage = perplexity(codes, self.num_codes)
        return {"mse": jnp.mean(jnp.square(x - self.decode_codes(params, codes))),
                "perplexity": ppl, "usage": usage}

    def init(self, rng, batch):
        """Net params, and the codebook drawn near encoder outputs of the first batch."""
        k_net, k_pick, k_noise = jax.random.split(rng, 3)
        x = batch["x"]
        net = self.net.init(k_net, x)["params"]
        flat = self.net.apply({"params": net}, x, method=self.net.encode).reshape(
            -1, self.embed_dim)
        learned, vq = init_codebook(k_pick, k_noise, flat, self.num_codes, self.ema)
        model = {"net": net} if learned is None else {"net": net, "codebook": learned}
        return {"model": model, "vq": vq}


def update_codebook(params, batch, rng, *, vm: VQModel, decay: float, epsilon: float,
                    restart_after: int):
    """update_state: the EMA codebook step, idle counters and dead-code restarts."""
    flat = vm.encode(params, batch["x"]).reshape(-1, vm.embed_dim)
    codes = nearest_codes(flat, vm.codebook(params))
    vq = refresh_codebook(params["vq"], flat, codes,
                          None if vm.ema else params["model"]["codebook"], rng,
                          num_codes=vm.num_codes, decay=decay, epsilon=epsilon,
                          restart_after=restart_after)
    return {**params, "vq": vq}


def code_stats_batch(params, x, rng, *, vm: VQModel):
    del rng
    codes = vm.encode_codes(params, x)
    err = jnp.square(x - vm.decode_codes(params, codes)).reshape(x.shape[0], -1)
    return {"sq_err": jnp.mean(err, -1), "codes": codes}


def elbo_loglik(params, x, rng, *, vm: VQModel, std: float, code_shape):
    """log N(x; D(e_k), s² I) − hw·log K: the uniform-prior bound (module doc)."""
    del rng
    recon = -sum_event(gaussian_log_prob(x, vm.reconstruct(params, x), math.log(std)))
    prior = jnp.full((x.shape[0],), math.prod(code_shape) * math.log(vm.num_codes),
                     jnp.float32)
    return -(recon + prior), {"recon": recon, "prior": prior}


def sample(params, rng, num, settings, labels=None, *, vm: VQModel, code_shape):
    """Decodes uniformly random code maps (there is no learned prior here)."""
    del settings
    if labels is not None:
        raise UserError("VQ-VAE models are unconditional; drop the labels.")
    codes = jax.random.randint(rng, (num, *code_shape), 0, vm.num_codes)
    return vm.decode_codes(params, codes)


def make(ctx: BuildContext, loss=None) -> Objective:
    """The VQ-VAE objective. `loss`: a replacement for `vq_loss`, called with the
    same keyword arguments; the sampler, likelihoods and pictures stay the family's."""
    from jaxgen.nn.vae import latent_shape
    o, model = ctx.settings, ctx.model
    if not hasattr(model, "embed_dim"):
        raise UserError("objective.name=vqvae needs model.name=vqvae_conv.")
    K = int(o.num_codes)
    h, w, D = latent_shape(model)
    vm = VQModel(model, K, D, bool(o.ema))
    restart_after = int(o.restart_after)
    loss = functools.partial(loss or vq_loss, model=model, codebook_of=vm.codebook,
                             beta=float(o.beta), ema=vm.ema, num_codes=K,
                             restart_after=restart_after)
    needs_state = vm.ema or restart_after > 0
    return Objective(
        name="vqvae",
        players=(Player("model", loss),),
        init=vm.init,
        update_state=(functools.partial(update_codebook, vm=vm, decay=float(o.ema_decay),
                                        epsilon=float(o.ema_epsilon),
                                        restart_after=restart_after)
                      if needs_state else None),
        sample=functools.partial(sample, vm=vm, code_shape=(h, w)),
        likelihoods={"elbo": Likelihood(functools.partial(
            elbo_loglik, vm=vm, std=float(o.decoder_std), code_shape=(h, w)),
            "bound", discrete=False)},
        held_out_stats=HeldOutStats(functools.partial(code_stats_batch, vm=vm),
                                    functools.partial(held_out_code_stats, num_codes=K)),
        pictures=pictures.write_vqvae,
        autoencoder=Autoencoder(vm.encode_codes, vm.decode_codes, (h, w), num_codes=K,
                                continuous=Autoencoder(vm.encode, vm.decode_nearest,
                                                       (h, w, D))),
        representation="yes: encoder x -> code map and decoder code map -> x (discrete)",
        tools=CodeTools(vm.encode_codes, vm.decode_codes, vm.reconstruct, vm.stats,
                        vm.codebook, K, (h, w)),
    )
