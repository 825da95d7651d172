"""Autoregressive models: exact likelihood by the chain rule (the lectures' first family).

The slide's factorisation

    p(x) = Π_{i=1}^{D} p(x_i | x_1, …, x_{i−1}) = Π_i p(x_i | x_<i)

is computed in one pass: the network (`jaxgen.nn.autoregressive`) maps x to D
per-position outputs, output i a function of x_<i only, and

    −log p(x) = −Σ_i log p(x_i | x_<i)              (nats, exact: no bound),
    L         = mean_x[ −log p(x) ] / D             (the loss, per dimension).

Conditionals p(x_i | x_<i) by data:
  8-bit images   a 256-way categorical over the pixel value k_i ∈ {0, …, 255}:
                 −log p(x_i | x_<i) = −log softmax(logits_i)[k_i]. Images reach the
                 objective as bin centres (`Objective.dequantize` False) and the
                 network reads them in model space [−1, 1]; the likelihood is
                 `discrete=True`: log P(x) of the 8-bit image itself, so bits/dim
                 = −log P(x) / (D ln 2) is directly comparable with every family's
                 (`jaxgen.eval.likelihood`). Uniform logits give exactly 8 bits/dim.
  binarised      objective.binarize = "threshold": b_i = [k_i > 127], a 2-way
                 categorical (Bernoulli); the network reads 2b − 1. The likelihood
                 is then that of the *binarised* image P(b), not comparable with
                 8-bit bits/dim: training logs `binarized_bits_per_dim` (bits per
                 binary pixel) instead of `bits_per_dim`, and `jaxgen eval`'s
                 bits_per_dim comes with the term `binarized_bpd` (the same number)
                 to say so.
  code maps      "tokens" data (a VQ-VAE's code maps, `data.name=codes`): a K-way
                 categorical over the code k_i ∈ {0, …, K−1}, K = the codebook size;
                 the network reads 2(k + ½)/K − 1. Bits/dim = bits per code.
  real sequences a Gaussian N(x_i; μ_i, s_i²) with (μ_i, log s_i) the network's two
                 outputs (log s ≥ −7); a density, `discrete=False` (e.g. the
                 Gaussian AR(2) toy, whose true log p eval reports beside it).

Metrics (batch means): `nll_nats` (−log p(x) per example), `bits_per_dim`
(8-bit images), `binarized_bits_per_dim` (binarised images) or
`nll_per_step_nats` (sequences: −log p(x)/D, to compare with the true
conditional entropy per step of a toy).

Sampling: x_1 ~ p(x_1), x_2 ~ p(x_2 | x_1), … one position at a time, as a
compiled loop (`lax.scan` / `lax.fori_loop`) over the D positions; the noise of
position i is drawn from fold_in(rng, i). Temperature T divides the logits
(T → 0: greedy argmax; T = 0 is taken as argmax) and multiplies a Gaussian's
scale. Samplers (sample.sampler, or `sampler=` to `sample`):
  "cached"     incremental decoding with the model's `step` (MLP: the window of
               the last k inputs; RNN: its carried state; WaveNet: a queue per
               dilated layer; PixelCNN: per-layer rings of the last image rows,
               each layer's activation at pixel i from a small patch; Transformer:
               the KV cache): O(1) work per position (Transformer: O(D), one query
               against the whole cache with the positions not yet drawn masked),
               D steps in all.
  "recompute"  the naive sampler, kept as the reference: at every position the whole
               network runs on the current prefix (the rest zeros, which causality
               makes irrelevant) and output i is read: D full forward passes, O(D²)
               work for a sequence model, D passes of the conv net for PixelCNN.
  "auto"       (default) "cached" where the model has it (every model here), else
               "recompute".
Both draw the same values for the same key (tests/test_autoregressive.py,
tests/test_pixelcnn_cached.py).
The models are unconditional: labels raise ValueError.

Order (objective.order): "raster" runs the chain rule row by row; "random" over one
fixed permutation π of the D positions (drawn from objective.order_seed, the same for
every example and every step), p(x) = Π_j p(x_π(j) | x_π(1), …, x_π(j−1)). The network
is unchanged and reads the permuted image, so a window of k (ar_mlp's context) holds
the last k pixels *in π's order*, wherever they lie in the image. The likelihood is
exact in either order; `conditionals`, `log_probs` and samples come back in raster
order; the coder codes in π's order.

Given prefix (objective.condition_prefix = P > 0): the first P positions are
conditioning, not modelled, e.g. VQ-VAE-2's top codes before its bottom codes
(data.levels=(top, bottom)). The network is the same causal one over the whole
sequence; the loss, the `exact` likelihood, `log_probs` (B, D − P) and the coder
count positions ≥ P only, so they are log p(x_{≥P} | x_{<P}) exactly (bits/dim in
the training log are per modelled position). Sampling takes the prefix from the
samples of the run sample.prefix_workdir names (the top prior: restored when the
objective is built, before any tracing, `jaxgen.composed.references`; its parameters
enter the compiled sampler as constants), feeds it through the KV
cache, then draws positions P … D−1; the coder codes positions ≥ P, the decoder
being handed the prefix (`jaxgen decompress --given`).

The objective's `tools` (an `ARTools`) has `conditionals`: `(params, x) -> (B, D, K)`
per-position outputs of model-space x (logits over K = 256 or 2 bins; for sequences
(μ, log s)), in raster order, and `log_probs` (B, D). `Objective.coder` is what the
arithmetic coder of `jaxgen.coding.codec` drives (discrete data only):

    state = coder.init(num)
    state, out_i = coder.step(params, state, prev, i)   # prev (num,) int: symbol i−1

the cached sampler's step (or, for a model without one, a full pass over the
prefix kept in the state), one position at a time; `coder.to_symbols(raw)` /
`coder.from_symbols(s)` map raw uint8 images (or int codes) to (N, D) int
symbols and back, `coder.num_bins` is K.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.distributions import categorical_log_prob
from jaxgen.distributions import gaussian_log_prob as _gaussian
from jaxgen.kernel import registry, transforms
from jaxgen.kernel.contract import BuildContext, FamilyTools, Likelihood, Objective, Player
from jaxgen.kernel.errors import UserError

MIN_LOG_SCALE = -7.0


# ------------------------------------------------------------- conditionals
def token_centre(k, num_bins: int):
    """A code k ∈ {0, …, K−1} -> what the network reads: 2(k + ½)/K − 1 ∈ (−1, 1)."""
    return 2.0 * (k + 0.5) / num_bins - 1.0


def pixel_values(x):
    """Model-space bin centres -> the 8-bit values k ∈ {0, …, 255} (int32)."""
    k = jnp.floor((x - transforms.IMAGE_SHIFT) / transforms.IMAGE_SCALE * 256.0)
    return jnp.clip(k, 0, 255).astype(jnp.int32)


def bin_centre(k):
    """The 8-bit value k -> its model-space bin centre 2(k + 0.5)/256 − 1."""
    return transforms.IMAGE_SCALE * (k + 0.5) / 256.0 + transforms.IMAGE_SHIFT


def gaussian_log_prob(x, out):
    """log N(x; μ, s²) per position from out (..., 2) = (μ, log s), log s ≥ −7."""
    return _gaussian(x, out[..., 0], jnp.maximum(out[..., 1], MIN_LOG_SCALE))


def ar_nll(params, batch, rng, *, log_probs, dim: int, metric: str | None):
    """−log p(x) = −Σ_i log p(x_i | x_<i) per example; loss = its batch mean / D."""
    del rng
    nll = -jnp.sum(log_probs(params, batch["x"]), axis=-1)
    loss = jnp.mean(nll) / dim
    metrics = {"nll_nats": jnp.mean(nll)}
    if metric == "nll_per_step_nats":
        metrics[metric] = loss
    elif metric is not None:  # bits_per_dim / binarized_bits_per_dim
        metrics[metric] = loss / math.log(2.0)
    return loss, metrics


# ----------------------------------------------------------------- samplers
def _draw(key, out, temperature: float, discrete: bool):
    """One value per row of out (B, K): a bin (int32) or a real number."""
    if discrete:
        if temperature == 0:
            return jnp.argmax(out, -1).astype(jnp.int32)
        return jax.random.categorical(key, out / temperature, axis=-1).astype(jnp.int32)
    mean, log_s = out[..., 0], jnp.maximum(out[..., 1], MIN_LOG_SCALE)
    return mean + temperature * jnp.exp(log_s) * jax.random.normal(key, mean.shape, mean.dtype)


def _keep_given(v, given, i):
    """v, except at positions i < P of a given prefix (num, P) ints: its value there."""
    if given is None:
        return v
    p = given.shape[1]
    return jnp.where(i < p, given[:, jnp.minimum(i, p - 1)].astype(v.dtype), v)


def sample_cached(model, variables, rng, num: int, event_shape, draw, to_input, to_output,
                  given=None):
    """D calls of `model.step` in a `lax.scan`, the model's state carried (see module doc);
    `given` (num, P): the first P values are these, not drawn."""
    length = math.prod(event_shape)

    def body(carry, i):
        state, prev = carry
        state, out = model.apply(variables, state, prev, i, method=model.step)
        v = _keep_given(draw(jax.random.fold_in(rng, i), out), given, i)
        return (state, to_input(v)), to_output(v)

    init = (model.initial_state(num, length, event_shape), jnp.zeros((num,), jnp.float32))
    _, xs = jax.lax.scan(body, init, jnp.arange(length))
    return jnp.swapaxes(xs, 0, 1)  # (num, D)


def sample_recompute(model, variables, rng, num: int, event_shape, draw, to_input, to_output,
                     given=None):
    """The naive sampler: a full forward pass per position in a `lax.fori_loop`."""
    length = math.prod(event_shape)

    def body(i, carry):
        x_in, x_out = carry
        out = model.apply(variables, x_in.reshape(num, *event_shape))
        v = _keep_given(draw(jax.random.fold_in(rng, i),
                             jax.lax.dynamic_index_in_dim(out, i, 1, False)), given, i)
        return x_in.at[:, i].set(to_input(v)), x_out.at[:, i].set(to_output(v))

    zeros = jnp.zeros((num, length), jnp.float32)
    _, x_out = jax.lax.fori_loop(0, length, body, (zeros, zeros))
    return x_out


# -------------------------------------------------------------------- coder
class Coder:
    """One position at a time, for an arithmetic coder (module doc, `jaxgen.coding.codec`).

    Encoder and decoder both call `step` with the same shapes and the same
    symbols, so they see bit-identical conditionals: exactly what a lossless
    round trip needs (the parallel pass of `conditionals` agrees only to
    float rounding).
    """

    def __init__(self, *, num_bins, event_shape, binarized, tokens, model, to_input, given=0,
                 perm=None):
        self.num_bins = int(num_bins)
        self.event_shape = tuple(event_shape)
        self.dim = math.prod(self.event_shape)
        self.given = int(given)  # the first `given` symbols are conditioning: not coded
        self.binarized = binarized
        self.tokens = tokens
        self._model = model
        self._to_input = to_input
        self._perm = None if perm is None else np.asarray(perm)  # symbol j is pixel perm[j]

    def init(self, num: int):
        if self._model.incremental:
            return self._model.initial_state(num, self.dim, self.event_shape)
        return jnp.zeros((num, self.dim), jnp.float32)  # the prefix read so far

    def step(self, params, state, prev, i):
        """(state, prev symbol (num,) int, position i) -> (state, (num, K) logits of x_i)."""
        variables = {"params": params["model"]}
        x_prev = self._to_input(prev)
        if self._model.incremental:
            return self._model.apply(variables, state, x_prev, i, method=self._model.step)
        buf = jnp.where(i > 0, state.at[:, jnp.maximum(i - 1, 0)].set(x_prev), state)
        out = self._model.apply(variables, buf.reshape(buf.shape[0], *self.event_shape))
        return buf, jax.lax.dynamic_index_in_dim(out, i, 1, False)

    # host side (numpy): raw arrays <-> symbols
    def to_symbols(self, raw):
        """Raw examples (N, *event_shape) -> (N, D) int64 symbols, or ValueError."""
        raw = np.asarray(raw)
        if tuple(raw.shape[1:]) != self.event_shape:
            raise UserError(f"examples of shape {tuple(raw.shape[1:])} do not match the model's "
                             f"{self.event_shape}.")
        if not np.issubdtype(raw.dtype, np.integer):
            raise UserError(f"lossless coding needs integer data (uint8 images or int codes), "
                             f"got {raw.dtype}.")
        s = raw.reshape(len(raw), -1).astype(np.int64)
        if self.binarized:
            if not np.all((s == 0) | (s == 255)):
                raise UserError("this model is binarised (objective.binarize=threshold): it "
                                 "codes images whose pixels are all 0 or 255 exactly; "
                                 "threshold yours first (x = 255 * (x > 127)).")
            s = s // 255
        elif s.min() < 0 or s.max() >= self.num_bins:
            raise UserError(f"symbols must lie in [0, {self.num_bins}), found "
                             f"[{s.min()}, {s.max()}].")
        return s if self._perm is None else s[:, self._perm]

    def from_symbols(self, s):
        """(N, D) symbols, in coding order -> raw examples: uint8 images or int32 codes."""
        s = np.asarray(s)
        if self._perm is not None:
            s = s[:, np.argsort(self._perm)]
        s = s.reshape(len(s), *self.event_shape)
        if self.tokens:
            return s.astype(np.int32)
        return (s * 255 if self.binarized else s).astype(np.uint8)


# -------------------------------------------------------------------- make
@dataclasses.dataclass(frozen=True)
class ARModel:
    """The network and what its conditionals are over (8-bit or binarised pixels, codes, or
    real values): pure functions of the objective's params."""

    net: object
    event_shape: tuple
    kind: str  # the data kind: "points" | "images" | "tokens"
    num_bins: int | None  # K of a categorical; None: Gaussian conditionals
    binarized: bool = False
    given: int = 0  # objective.condition_prefix: leading positions not modelled
    perm: tuple | None = None  # objective.order=random: model position j is pixel perm[j]

    def to_model_order(self, a):
        """(B, D, ...) in raster order -> the chain rule's order (a[:, perm])."""
        return a if self.perm is None else a[:, np.asarray(self.perm)]

    def to_raster_order(self, a):
        """(B, D, ...) in the chain rule's order -> raster order."""
        return a if self.perm is None else a[:, np.argsort(np.asarray(self.perm))]

    def _ordered(self, x):
        """(B, *event_shape) -> the same shape, its positions in the chain rule's order."""
        if self.perm is None:
            return x
        return self.to_model_order(x.reshape(x.shape[0], -1)).reshape(x.shape)

    @property
    def tokens(self) -> bool:
        return self.kind == "tokens"

    @property
    def image(self) -> bool:
        return self.kind == "images"

    @property
    def discrete(self) -> bool:
        return self.num_bins is not None

    def model_input(self, x):
        """Model-space x -> what the network reads (binarised images: 2b − 1)."""
        if self.binarized:
            x = 2.0 * (pixel_values(x) > 127).astype(jnp.float32) - 1.0
        elif self.tokens:
            x = token_centre(x, self.num_bins)
        return self._ordered(x)

    def targets(self, x):
        """(B, D) int targets, in the chain rule's order."""
        if self.tokens:
            k = jnp.round(x).astype(jnp.int32).reshape(x.shape[0], -1)
        else:
            k = pixel_values(x).reshape(x.shape[0], -1)
            k = (k > 127).astype(jnp.int32) if self.binarized else k
        return self.to_model_order(k)

    def _net_out(self, params, x):
        """The network's (B, D, K) outputs, in the chain rule's order."""
        return self.net.apply({"params": params["model"]}, self.model_input(x))

    def conditionals(self, params, x):
        """(B, D, K) logits (or (μ, log s)) of p(x_i | x_<i), position i in raster order
        (with objective.order=random, x_<i are the pixels before i in the permutation)."""
        return self.to_raster_order(self._net_out(params, x))

    def log_probs(self, params, x):
        """(B, D − given): log p(x_i | x_<i) of the modelled positions i ≥ given, in raster
        order."""
        out = self._net_out(params, x)
        if self.discrete:
            lp = categorical_log_prob(out, self.targets(x))
        else:
            lp = gaussian_log_prob(self.to_model_order(x.reshape(x.shape[0], -1)), out)
        return self.to_raster_order(lp[:, self.given:])

    def to_input(self, v):
        """A drawn value (bin, code or real) -> what the network reads."""
        if self.binarized:
            return 2.0 * v.astype(jnp.float32) - 1.0
        if self.tokens:
            return token_centre(v.astype(jnp.float32), self.num_bins)
        return bin_centre(v.astype(jnp.float32)) if self.image else v

    def to_output(self, v):
        """A drawn value -> model space."""
        if self.binarized:
            return bin_centre(255.0 * v.astype(jnp.float32))
        if self.tokens:
            return v.astype(jnp.float32)
        return bin_centre(v.astype(jnp.float32)) if self.image else v


@dataclasses.dataclass(frozen=True)
class ARTools(FamilyTools):
    """An autoregressive run's conditionals(params, x) -> (B, D, K), log_probs(params, x)
    -> (B, D), and its network (`model`, with `incremental`)."""

    conditionals: Callable
    log_probs: Callable
    model: object
    num_bins: int | None
    binarized: bool
    provides: ClassVar[str] = "autoregressive conditionals"
    needed_for: ClassVar[str] = "autoregressive runs (objective.name=autoregressive)"


def exact_loglik(params, x, rng, *, am: ARModel):
    del rng
    lp = jnp.sum(am.log_probs(params, x), -1)
    return (lp, {"binarized": -lp}) if am.binarized else lp


def sample(params, rng, num, settings, labels=None, *, am: ARModel, prefix=None):
    """x_1 ~ p(x_1), x_2 ~ p(x_2 | x_1), ... (settings.sampler; module doc)."""
    if labels is not None:
        raise UserError("Autoregressive models here are unconditional; drop the labels.")
    model = am.net
    sampler = settings.sampler
    if sampler == "auto":
        sampler = "cached" if model.incremental else "recompute"
    if sampler == "cached" and not model.incremental:
        raise UserError(f"{type(model).__name__} has no incremental step; use "
                         "sample.sampler=recompute (or auto).")
    draw = functools.partial(_draw, temperature=float(settings.temperature),
                             discrete=am.discrete)
    variables = {"params": params["model"]}
    given = None
    if am.given:
        rng, k_prefix = jax.random.split(rng)
        given = sample_prefix(prefix, settings.prefix_workdir, k_prefix, num, am.given)
    run = sample_cached if sampler == "cached" else sample_recompute
    x = run(model, variables, rng, num, am.event_shape, draw, am.to_input, am.to_output,
            given=given)
    return am.to_raster_order(x).reshape(num, *am.event_shape)


@dataclasses.dataclass(frozen=True)
class PrefixRun:
    """The run that draws the given prefix (sample.prefix_workdir), resolved when the
    objective is built: its sampler, EMA params and sample settings."""

    workdir: str
    sample: Callable
    params: Any
    settings: Any


def prefix_run(workdir: str) -> PrefixRun | None:
    """The prefix's run, restored now (before any tracing), or None when sample.prefix_workdir
    names no run (sampling then says what to set)."""
    from jaxgen.composed import references
    if not workdir or not (Path(workdir) / "config.json").exists():
        return None
    exp, params = references.restore(workdir)
    return PrefixRun(str(workdir), exp.objective.sample, params, exp.sample_settings)


def sample_prefix(run: PrefixRun | None, workdir: str, rng, num: int, length: int):
    """(num, length) int32 prefixes drawn by the prefix's run (e.g. the top prior)."""
    if run is None or str(workdir) != run.workdir:
        raise UserError(f"objective.condition_prefix > 0: sampling needs the prefix's own "
                        f"model, sample.prefix_workdir=RUN (e.g. the top prior) set in the "
                        f"run's config; got {workdir!r}.")
    prefix = run.sample(run.params, rng, num, run.settings).reshape(num, -1)
    if prefix.shape[1] != length:
        raise UserError(f"sample.prefix_workdir={workdir} draws {prefix.shape[1]} values, "
                        f"objective.condition_prefix is {length}.")
    return jnp.round(prefix).astype(jnp.int32)


def make(ctx: BuildContext, loss=None) -> Objective:
    """The autoregressive objective. `loss`: a replacement for `ar_nll`, called with the
    same keyword arguments; the sampler, likelihoods and pictures stay the family's."""
    o, model, data = ctx.settings, ctx.model, ctx.data
    tokens = data.kind == "tokens"
    image = data.kind == "images"
    binarized = o.binarize == "threshold"
    if binarized and not image:
        raise UserError(f"objective.binarize=threshold binarises 8-bit images; {data.name} "
                         "holds real-valued points.")
    if not (hasattr(model, "num_outputs") and hasattr(model, "incremental")):
        raise UserError("objective.name=autoregressive needs an autoregressive model: "
                         "model.name=ar_mlp, ar_rnn, wavenet, pixelcnn or ar_transformer.")
    if tokens:
        num_bins = int(data.num_tokens or 0)
        if num_bins < 2:
            raise UserError(f"{data.name}: token data needs num_tokens >= 2, got {num_bins}.")
    else:
        num_bins = (2 if binarized else 256) if image else None
    discrete = num_bins is not None
    model = model.clone(num_outputs=num_bins or 2)
    event_shape = tuple(data.event_shape)
    dim = math.prod(event_shape)
    given = int(o.condition_prefix)
    if given >= dim:
        raise UserError(f"objective.condition_prefix={given} leaves nothing to model in "
                         f"{dim} positions.")
    perm = None
    if o.order == "random":
        if given:
            raise UserError("objective.order=random permutes every position, so it cannot keep "
                             f"a given prefix (objective.condition_prefix={given}); use "
                             "objective.order=raster for a conditional prior.")
        perm = tuple(int(i) for i in np.random.default_rng(o.order_seed).permutation(dim))
    am = ARModel(model, event_shape, data.kind, num_bins, binarized, given, perm)
    # the run that draws a given prefix: another run, resolved here, before any tracing
    prefix = prefix_run(registry.sample_settings(ctx.config).prefix_workdir) if given else None
    metric = ("binarized_bits_per_dim" if binarized else "bits_per_dim") if discrete \
        else "nll_per_step_nats"

    def init(rng, batch):
        return {"model": model.init(rng, am.model_input(batch["x"]))["params"]}

    coder = None
    if discrete:
        coder = Coder(num_bins=num_bins, event_shape=event_shape, binarized=binarized,
                      tokens=tokens, model=model, to_input=am.to_input, given=given, perm=perm)
    loss = functools.partial(loss or ar_nll, log_probs=am.log_probs, dim=dim - given,
                             metric=metric)
    return Objective(
        name="autoregressive",
        players=(Player("model", loss),),
        init=init,
        sample=functools.partial(sample, am=am, prefix=prefix),
        likelihoods={"exact": Likelihood(functools.partial(exact_loglik, am=am), "exact",
                                         discrete=discrete, dims=dim - given)},
        dequantize=not discrete,
        coder=coder,
        representation="no encoder: p(x) factorises over pixels, no latent",
        tools=ARTools(am.conditionals, am.log_probs, model, num_bins, binarized),
    )
