"""VQ-VAE-2 (Razavi et al., 2019): a top and a bottom code map, each with its own codebook.

The network (`jaxgen.nn.vae.VQVAE2Conv`, model.name=vqvae2_conv) gives bottom
features h = E_b(x) (14x14 for 28x28 images) and the top map z_t = E_t(h) (7x7).
The top is quantised first, e_t = Q_t(z_t); its decoding is concatenated with h
to give the bottom map z_b = E_b'([h, D_t(e_t)]), quantised by the bottom's own
codebook, e_b = Q_b(z_b); the decoder takes both, x̂ = D(e_t, e_b). Each level is
the one-level VQ-VAE's quantiser (`vqvae.quantize`: nearest code, straight-through
gradient) with its own codebook and terms, so the loss is the lecture's with one
codebook and one commitment term per level:

    L = ‖x − D(e_t, e_b)‖² + Σ_{l ∈ top, bottom} ( ‖sg[z_l] − e_l‖² + β ‖z_l − sg[e_l]‖² )

(the codebook terms only with objective.ema = False). Codebooks, their EMA updates
and dead-code restarts are the one-level VQ-VAE's (`vqvae.init_codebook`,
`refresh_codebook`), one per level: params["vq"]["top"], params["vq"]["bottom"]
(non-gradient state, update_state), and under ema = False the learned codebooks
params["model"]["codebooks"][level]. Both levels have objective.num_codes codes.

Metrics: `mse` and per level `commitment_top`, `perplexity_top`, `usage_top`
(`_bottom` alike; `codebook_*` without EMA, `dead_codes_*` with restarts).

Codes: `tools.encode_levels(params, x) -> {"top": (B, 7, 7), "bottom": (B, 14, 14)}`
(what `jaxgen codes` exports, one array per level) and `decode_levels`. The
`autoencoder` and `tools.encode_codes` / `decode_codes` use the two maps as one token
sequence (B, 49 + 196): the top in raster order, then the bottom; the order a
bottom prior conditioned on the top reads them (configs/autoregressive/vqvae2_*).
The `elbo` likelihood and the uniform-code samples are the one-level VQ-VAE's over
that sequence (the bound pays (49 + 196)·log K).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from jaxgen.families.vae import pictures
from jaxgen.families.vae.vqvae import (
    CodeTools,
    codebook_in_use,
    elbo_loglik,
    held_out_code_stats,
    init_codebook,
    level_metrics,
    nearest_codes,
    perplexity,
    quantize,
    refresh_codebook,
    sample,
)
from jaxgen.kernel.contract import (
    Autoencoder,
    BuildContext,
    HeldOutStats,
    Likelihood,
    Objective,
    Player,
)
from jaxgen.kernel.errors import UserError

LEVELS = ("top", "bottom")


@dataclasses.dataclass(frozen=True)
class VQ2Model:
    """The two-level network and its codebooks: pure functions of the params."""

    net: object
    num_codes: int
    embed_dim: int
    ema: bool
    shapes: tuple  # ((h_t, w_t), (h_b, w_b))

    def _apply(self, params, method, *args):
        return self.net.apply({"params": params["model"]["net"]}, *args,
                              method=getattr(self.net, method))

    def codebook(self, params, level: str):
        learned = None if self.ema else params["model"]["codebooks"][level]
        return codebook_in_use(params["vq"][level], learned)

    def forward(self, params, x):
        """x -> (x̂, {level: quantiser terms}, {level: codes}, {level: z_e})."""
        h = self._apply(params, "features", x)
        z = {"top": self._apply(params, "encode_top", h)}
        zq_t, codes_t, terms_t = quantize(z["top"], self.codebook(params, "top"))
        z["bottom"] = self._apply(params, "encode_bottom", h, zq_t)
        zq_b, codes_b, terms_b = quantize(z["bottom"], self.codebook(params, "bottom"))
        x_hat = self._apply(params, "decode", zq_t, zq_b)
        return (x_hat, {"top": terms_t, "bottom": terms_b},
                {"top": codes_t, "bottom": codes_b}, z)

    def encode_levels(self, params, x):
        """{"top": (B, h_t, w_t), "bottom": (B, h_b, w_b)} int32 code maps."""
        return self.forward(params, x)[2]

    def decode_levels(self, params, codes: dict):
        return self._apply(params, "decode", self.codebook(params, "top")[codes["top"]],
                           self.codebook(params, "bottom")[codes["bottom"]])

    def encode_codes(self, params, x):
        """(B, h_t w_t + h_b w_b): the top map then the bottom map, raster order."""
        c = self.encode_levels(params, x)
        return jnp.concatenate([c[lv].reshape(x.shape[0], -1) for lv in LEVELS], axis=1)

    def decode_codes(self, params, seq):
        """The inverse of encode_codes' layout: (B, h_t w_t + h_b w_b) -> images."""
        seq = jnp.asarray(seq).reshape(seq.shape[0], -1)
        n_t = math.prod(self.shapes[0])
        return self.decode_levels(params, {
            "top": seq[:, :n_t].reshape(-1, *self.shapes[0]),
            "bottom": seq[:, n_t:].reshape(-1, *self.shapes[1])})

    def reconstruct(self, params, x):
        return self.forward(params, x)[0]

    def stats(self, params, x):
        x_hat, _, codes, _ = self.forward(params, x)
        out = {"mse": jnp.mean(jnp.square(x - x_hat))}
        for lv in LEVELS:
            out[f"perplexity_{lv}"], out[f"usage_{lv}"] = perplexity(codes[lv], self.num_codes)
        return out

    def init(self, rng, batch):
        """Net params; each level's codebook drawn near its encoder outputs of the first
        batch (the bottom's given the quantised top)."""
        K, D = self.num_codes, self.embed_dim
        k_net, k_t1, k_t2, k_b1, k_b2 = jax.random.split(rng, 5)
        x = batch["x"]
        params = {"model": {"net": self.net.init(k_net, x)["params"]}}
        h = self._apply(params, "features", x)
        z_t = self._apply(params, "encode_top", h)
        learned_t, vq_t = init_codebook(k_t1, k_t2, z_t.reshape(-1, D), K, self.ema)
        e_t = codebook_in_use(vq_t, learned_t)[nearest_codes(z_t, codebook_in_use(
            vq_t, learned_t))]
        z_b = self._apply(params, "encode_bottom", h, e_t)
        learned_b, vq_b = init_codebook(k_b1, k_b2, z_b.reshape(-1, D), K, self.ema)
        params["vq"] = {"top": vq_t, "bottom": vq_b}
        if not self.ema:
            params["model"]["codebooks"] = {"top": learned_t, "bottom": learned_b}
        return params


def vq2_loss(params, batch, rng, *, vm: VQ2Model, beta: float, restart_after: int):
    del rng
    x = batch["x"]
    x_hat, terms, codes, _ = vm.forward(params, x)
    recon = jnp.mean(jnp.square(x - x_hat))
    loss, metrics = recon, {"mse": recon}
    for lv in LEVELS:
        loss = loss + beta * terms[lv]["commitment"]
        if not vm.ema:
            loss = loss + terms[lv]["codebook"]
        metrics.update(level_metrics(terms[lv], codes[lv], params["vq"][lv],
                                     num_codes=vm.num_codes, ema=vm.ema,
                                     restart_after=restart_after, suffix=f"_{lv}"))
    return loss, metrics


def update_codebooks(params, batch, rng, *, vm: VQ2Model, decay: float, epsilon: float,
                     restart_after: int):
    """update_state: each level's EMA step, idle counters and restarts, on the vectors the
    encoder (after this step's update) gives it."""
    _, _, codes, z = vm.forward(params, batch["x"])
    vq = dict(params["vq"])
    for lv, key in zip(LEVELS, jax.random.split(rng, len(LEVELS))):
        learned = None if vm.ema else params["model"]["codebooks"][lv]
        vq[lv] = refresh_codebook(params["vq"][lv], z[lv].reshape(-1, vm.embed_dim),
                                  codes[lv].reshape(-1), learned, key, num_codes=vm.num_codes,
                                  decay=decay, epsilon=epsilon, restart_after=restart_after)
    return {**params, "vq": vq}


def level_stats_batch(params, x, rng, *, vm: VQ2Model):
    del rng
    x_hat, _, codes, _ = vm.forward(params, x)
    err = jnp.square(x - x_hat).reshape(x.shape[0], -1)
    return {"sq_err": jnp.mean(err, -1), **{f"codes_{lv}": codes[lv] for lv in LEVELS}}


def level_stats(arrays: dict, num_codes: int) -> dict:
    """Held-out mse and each level's perplexity / usage / codes used (`held_out_code_stats`)."""
    out = {}
    for lv in LEVELS:
        s = held_out_code_stats({"codes": arrays[f"codes_{lv}"], "sq_err": arrays["sq_err"]},
                                num_codes)
        out["mse"] = s.pop("mse")
        out.update({k if k == "num_codes" else f"{k}_{lv}": v for k, v in s.items()})
    return out


def make(ctx: BuildContext, loss=None) -> Objective:
    """The VQ-VAE-2 objective (module doc); objective.* are the VQ-VAE's settings. `loss`:
    a replacement for `vq2_loss`, called with the same keyword arguments."""
    o, model = ctx.settings, ctx.model
    if not hasattr(model, "encode_bottom"):
        raise UserError("objective.name=vqvae2 needs model.name=vqvae2_conv.")
    K, D = int(o.num_codes), int(model.embed_dim)
    h, w, _ = model.event_shape
    shapes = ((h // 4, w // 4), (h // 2, w // 2))
    vm = VQ2Model(model, K, D, bool(o.ema), shapes)
    restart_after = int(o.restart_after)
    seq = (sum(math.prod(s) for s in shapes),)
    needs_state = vm.ema or restart_after > 0
    return Objective(
        name="vqvae2",
        players=(Player("model", functools.partial(loss or vq2_loss, vm=vm, beta=float(o.beta),
                                                   restart_after=restart_after)),),
        init=vm.init,
        update_state=(functools.partial(update_codebooks, vm=vm, decay=float(o.ema_decay),
                                        epsilon=float(o.ema_epsilon),
                                        restart_after=restart_after)
                      if needs_state else None),
        sample=functools.partial(sample, vm=vm, code_shape=seq),
        likelihoods={"elbo": Likelihood(functools.partial(
            elbo_loglik, vm=vm, std=float(o.decoder_std), code_shape=seq),
            "bound", discrete=False)},
        held_out_stats=HeldOutStats(functools.partial(level_stats_batch, vm=vm),
                                    functools.partial(level_stats, num_codes=K)),
        pictures=pictures.write_vqvae,
        autoencoder=Autoencoder(vm.encode_codes, vm.decode_codes, seq, num_codes=K),
        representation="yes: encoder x -> top and bottom code maps, decoder both -> x",
        tools=CodeTools(vm.encode_codes, vm.decode_codes, vm.reconstruct, vm.stats,
                        functools.partial(vm.codebook, level="top"), K, seq,
                        encode_levels=vm.encode_levels, decode_levels=vm.decode_levels),
    )
