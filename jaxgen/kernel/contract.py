"""The objective contract: what a family must and may hand to the one trainer.

This module is the whole contract. A family registers a builder
(`jaxgen.kernel.registry.register_objective`) that receives a `BuildContext` (the
model, what is known of the data, and the family's own declared settings) and
returns an `Objective`.

Must provide
------------
players
    One `Player` per set of parameters, each with a pure *loss*
    `loss(params, batch, rng) -> (scalar, metrics)`. `params` is a dict keyed by
    player name (`{"model": ...}` for single-player objectives, `{"discriminator":
    ..., "generator": ...}` for a GAN); it may also hold non-gradient state under keys
    that belong to no player (e.g. a VQ codebook kept by EMA). Each player's loss sees
    the whole dict, but the trainer differentiates it only with respect to
    `params[player.name]`, and only that player's optimizer moves it. `metrics` is a
    flat dict of scalars: the terms of the bound (reconstruction, KL, VLB terms, D and
    G losses), which are what gets logged. `batch["x"]` is model-space data
    (`jaxgen.kernel.transforms.preprocess`), `batch["label"]` the labels if the data
    have them.
init
    `(rng, batch) -> params`, one entry per player (+ non-gradient state). `batch` is
    a model-space example batch (the run's first batch at the start of training, so
    data-dependent initialisation such as ActNorm sees real data).

May provide
-----------
update_state
    `(params, batch, rng) -> params` for non-gradient state, run after the gradient
    updates of a step; it must leave the players' entries unchanged.
sample
    `(params, rng, num, settings, labels=None) -> x` in model space. `settings` is the
    family's own declared sample settings (a frozen dataclass, `sample.*` of the
    config, possibly with per-call overrides); it is static under `jax.jit`. `labels`
    (num,) ints for class-conditional models.
likelihoods
    name -> `Likelihood`, the first being the default. Empty: the family has none.
dequantize
    False: images reach the objective as bin centres, without dequantisation noise
    (families with a discrete decoder or no likelihood).
held_out_stats
    A `HeldOutStats`: the family's own diagnostics over held-out data (`jaxgen eval`).
pictures
    `(exp, params, rng, dataset, folder, main) -> [paths]`: end-of-run pictures
    beyond the sample grid (also `jaxgen pictures`).
autoencoder
    An `Autoencoder` when the model maps x to a latent z and back (VAE, VQ-VAE).
coder
    A `Coder` when the model's exact discrete conditionals can drive an arithmetic
    coder (`jaxgen.coding.codec`: lossless compression).
representation
    One line saying what latent representation x <-> z the model offers, if any
    (e.g. "an exact bijection x <-> z"); reports quote it.
round_trip
    A `RoundTrip` when x -> z -> x can be run and measured (a flow's bijection, an
    ODE's inversion, a GAN's inversion by optimisation); `round_trip_of(objective)`
    also gives one for an `autoencoder`.
tools
    The family's typed capabilities: an instance of a `FamilyTools` subclass defined in
    the family's folder (e.g. a GAN's generate / discriminate / latent prior). Only
    the family's own code (pictures, commands) reads it, by `isinstance`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar, Mapping, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.kernel import transforms
from jaxgen.kernel.errors import UsageError

Params = dict
Batch = Mapping[str, jax.Array]
LossFn = Callable[[Params, Batch, jax.Array], tuple[jax.Array, dict]]


@dataclasses.dataclass(frozen=True)
class DataStats:
    """Statistics of the training data in model space, measured once when a run is first
    built and kept in its run.json (so a resumed, evaluated or sampled run builds its
    objective from the same numbers): the mean and standard deviation over all dimensions
    of `num_examples` examples spread evenly over the training split, images as bin centres
    (no dequantisation noise)."""

    mean: float
    std: float
    num_examples: int

    #: how many training examples `measure` reads (evenly spaced over the split)
    NUM: ClassVar[int] = 2048

    @classmethod
    def measure(cls, dataset, num: int | None = None) -> DataStats:
        n = min(len(dataset.source), num or cls.NUM)
        idx = np.unique(np.linspace(0, len(dataset.source) - 1, n).round().astype(np.int64))
        x = np.asarray(transforms.preprocess(dataset.kind, dataset.source.get(idx)["x"],
                                             dequantize=False), np.float64)
        return cls(float(x.mean()), float(x.std()), int(len(idx)))


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What models and objectives know of the data (no examples).

    kind: "points" (float vectors), "images" (8-bit NHWC) or "tokens" (int code maps).
    stats: `DataStats` of the training split, or None where they were not measured (a run
      trained before they were kept, or an Experiment built from shapes alone).
    """

    name: str
    kind: str  # "points" | "images" | "tokens"
    event_shape: tuple
    num_classes: int | None = None
    num_tokens: int | None = None  # "tokens": the vocabulary size K
    stats: DataStats | None = None

    @classmethod
    def of(cls, dataset, stats: bool = False) -> DatasetInfo:
        """The info of `dataset`; `stats`: also measure its `DataStats` (pass the training
        split)."""
        return cls(dataset.name, dataset.kind, tuple(dataset.event_shape), dataset.num_classes,
                   getattr(dataset, "num_tokens", None),
                   DataStats.measure(dataset) if stats else None)

    def to_json(self) -> dict:
        d = {"name": self.name, "kind": self.kind, "event_shape": list(self.event_shape),
             "num_classes": self.num_classes}
        if self.num_tokens is not None:
            d["num_tokens"] = self.num_tokens
        if self.stats is not None:
            d["stats"] = dataclasses.asdict(self.stats)
        return d

    @classmethod
    def from_json(cls, d: dict) -> DatasetInfo:
        return cls(d["name"], d["kind"], tuple(d["event_shape"]), d.get("num_classes"),
                   d.get("num_tokens"), DataStats(**d["stats"]) if d.get("stats") else None)

    def require_stats(self, what: str) -> DataStats:
        """The data statistics, or one error naming `what` needs them."""
        if self.stats is None:
            raise UsageError(
                f"{what} needs the training data's statistics, and this run has none: it "
                "was built from shapes alone, or trained before jaxgen kept them in run.json. "
                "Set the value explicitly instead, or train the run again.")
        return self.stats

    @property
    def dim(self) -> int:
        return math.prod(self.event_shape)


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a family's builder receives.

    model: the Flax module built from `model.*` (with `train.compute_dtype` applied).
    data: what is known of the data; `data.stats` the training data's statistics where
      measured (`data.require_stats(what)` for a builder that needs them).
    settings: the family's declared `objective.*` settings (its frozen dataclass).
    eval: its declared `eval.*` settings beyond the generic ones (e.g. IWAE's k).
    config: the whole resolved config, for the rare builder that needs another group
      (read it, do not change it).
    """

    model: Any
    data: DatasetInfo
    settings: Any
    eval: Any
    config: Any


@dataclasses.dataclass(frozen=True)
class Player:
    """One set of parameters with its own loss, optimizer and update count.

    `updates_per_step` is e.g. n_critic for a WGAN critic: the trainer runs
    that many updates of this player, each with fresh randomness, per step.
    `split_batch`: update j sees only the j-th of `updates_per_step` equal,
    strided parts of the batch (`microbatch`), so every update has its own real
    examples, as in WGAN-GP's Algorithm 1 (the global batch size must then be
    a multiple of `updates_per_step`).
    `project`: an optional `params -> params` applied after every update of
    this player (projected gradient descent), e.g. WGAN's weight clipping.
    """

    name: str
    loss: LossFn
    updates_per_step: int = 1
    split_batch: bool = False
    project: Callable[[Params], Params] | None = None


def microbatch(batch: Mapping, j, n: int) -> dict:
    """The j-th of n strided parts of every array of `batch`: rows j, j + n, j + 2n, ...

    Strided (reshape (B, ...) -> (B/n, n, ...), take [:, j]) rather than
    contiguous, so a batch sharded along its first axis stays where it is.
    `j` may be traced (a `lax.scan` counter).
    """
    def part(v):
        v = jnp.asarray(v)
        if v.shape[0] % n:
            raise UsageError(f"a batch of {v.shape[0]} cannot be split into {n} equal parts; "
                             f"make train.batch_size a multiple of {n}.")
        return jnp.take(v.reshape(v.shape[0] // n, n, *v.shape[1:]), j, axis=1)
    return {k: part(v) for k, v in batch.items()}


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """One way an objective scores held-out data.

    `fn(params, x, rng, **options)` returns per-example log-likelihoods (nats)
    of model-space `x`, or `(logp, terms)` with `terms` a dict of per-example
    parts of the bound (e.g. diffusion's L_T, L_0, Σ L_{t-1}), which eval
    reports in bits/dim beside the total.

    kind: "exact" (log p itself, up to solver error) or "bound" (a lower bound).
    discrete: for 8-bit images, True means `fn` is given the bin centres
      (no dequantisation noise) and returns log P(x) of the discrete image
      itself (e.g. a discretised Gaussian decoder); False means `fn` is a
      density on dequantised model space and the shared convention of
      `jaxgen.eval.likelihood` turns it into a bound on log P(x).
    ode: the estimator integrates an ODE: it is called with the options
      `steps`, `method` and `divergence` (from eval.ode_steps / ode_method /
      divergence); other estimators get no options (their settings are the
      family's declared eval.* settings, bound when the objective is built).
    dims: the number of dimensions it scores, when not all of the example's (e.g. an
      autoregressive model given its first P positions scores D − P): bits/dim divide
      by it; None: all.
    """

    fn: Callable[..., Any]
    kind: str = "exact"
    discrete: bool = False
    ode: bool = False
    dims: int | None = None

    def __post_init__(self):
        if self.kind not in ("exact", "bound"):
            raise ValueError(f"Likelihood.kind must be 'exact' or 'bound', got {self.kind!r}.")


@dataclasses.dataclass(frozen=True)
class HeldOutStats:
    """Statistics of a trained model over held-out data, reported by `jaxgen eval`.

    batch: `(params, x, rng) -> {name: array with a leading batch axis}`, run
      (jitted) on each eval batch of model-space x; padding rows are dropped.
      With `uses_labels`, it is called as `batch(params, x, rng, label=label)`
      with the batch's labels (None when the data have none).
    reduce: `{name: the arrays of all batches, concatenated} -> {metric: float
      or list}`, on the host.
    E.g. the VAE's active units (posterior means over the whole set) or the
    VQ-VAE's held-out reconstruction error and code perplexity.
    """

    batch: Callable[..., Any]
    reduce: Callable[[dict], dict]
    uses_labels: bool = False


@dataclasses.dataclass(frozen=True)
class Autoencoder:
    """x -> z -> x of a trained model (pure functions of the objective's params).

    encode: `(params, x) -> z` for model-space x: posterior means (continuous) or
      int32 code maps (discrete, `num_codes` set).
    decode: `(params, z) -> x` in model space (the decoder's mean image).
    latent_shape: the shape of one z.
    num_codes: the codebook size K of discrete codes (z in [0, K)); None if continuous.
    posterior_draw: optional, for the bound of a learned prior p_θ(z) in this latent space
      (`jaxgen.composed.bound`): `(params, x, rng) -> (z, log_q, log_px)`, one draw
      z ~ q(z|x) (B, *latent_shape) with log q(z|x) and log p(x|z) per example (nats).
    discrete: how `posterior_draw` sees images (as `Likelihood.discrete`): True, x are
      bin centres and log_px is log P(x|z) of the discrete image; False, x are
      dequantised and log_px a density on model space.
    continuous: optional, for discrete codes: the continuous view of the same latent space
      (an `Autoencoder` without codes): encode = the encoder's output before quantisation,
      decode = quantise to the nearest code, then decode (a VQ-VAE's pre-quantised maps).
    """

    encode: Callable[[Params, jax.Array], jax.Array]
    decode: Callable[[Params, jax.Array], jax.Array]
    latent_shape: tuple
    num_codes: int | None = None
    posterior_draw: Callable[[Params, jax.Array, jax.Array], tuple] | None = None
    discrete: bool = False
    continuous: Autoencoder | None = None


@dataclasses.dataclass(frozen=True)
class RoundTrip:
    """x -> z -> x of a trained model, to measure the representation it offers.

    encode: `(params, x, rng) -> z` for model-space x (rng: for encoders that search,
      e.g. a GAN's inversion from random starts; others ignore it).
    decode: `(params, z) -> x` in model space.
    how: what z is and how it is reached, in a few words (reports quote it).
    exact: True when decode(encode(x)) = x up to float rounding by construction (a
      bijection); False when the encoder approximates (amortised, discretised, searched).
    """

    encode: Callable[[Params, jax.Array, jax.Array], jax.Array]
    decode: Callable[[Params, jax.Array], jax.Array]
    how: str
    exact: bool = False


def round_trip_of(objective) -> RoundTrip | None:
    """The objective's `round_trip`, else its `autoencoder`'s encoder (posterior means or
    codes) and decoder, else None (no x -> z)."""
    if objective.round_trip is not None:
        return objective.round_trip
    ae = objective.autoencoder
    if ae is None:
        return None
    return RoundTrip(lambda params, x, rng: ae.encode(params, x), ae.decode,
                     "the encoder's code (posterior mean) and the decoder's mean")


class Coder(Protocol):
    """Exact discrete conditionals, one position at a time, for an arithmetic coder.

        state = coder.init(num)
        state, logits_i = coder.step(params, state, prev, i)   # prev (num,) int: symbol i-1

    Encoder and decoder call `step` with the same shapes and the same symbols, so they
    see bit-identical conditionals. `to_symbols(raw)` / `from_symbols(s)` map raw
    examples (uint8 images or int codes) to (N, D) int symbols and back; `num_bins` is
    the alphabet size K, `dim` = D.
    """

    num_bins: int
    dim: int
    event_shape: tuple

    def init(self, num: int) -> Any: ...
    def step(self, params, state, prev, i) -> tuple[Any, jax.Array]: ...
    def to_symbols(self, raw) -> Any: ...
    def from_symbols(self, s) -> Any: ...


class FamilyTools:
    """Base class of a family's typed capabilities (`Objective.tools`).

    Subclasses are frozen dataclasses in the family's folder. `provides` (what they give,
    e.g. "generator") and `needed_for` (the runs they come with) word `require_tools`'
    error message.
    """

    provides: ClassVar[str] = "tools of this family"
    needed_for: ClassVar[str] = "runs of this family"


def require_tools(objective, cls: type, command: str):
    """`objective.tools` if it is a `cls`, else a UsageError naming `command`."""
    if not isinstance(objective.tools, cls):
        raise UsageError(f"objective {objective.name} has no {cls.provides}; {command} works "
                         f"on {cls.needed_for}.")
    return objective.tools


@dataclasses.dataclass(frozen=True)
class Objective:
    """An objective family instantiated for one model and dataset (see the module doc)."""

    name: str
    players: tuple[Player, ...]
    init: Callable[[jax.Array, Batch], Params]
    update_state: Callable[[Params, Batch, jax.Array], Params] | None = None
    sample: Callable[..., jax.Array] | None = None
    likelihoods: Mapping[str, Likelihood] = dataclasses.field(default_factory=dict)
    dequantize: bool = True
    held_out_stats: HeldOutStats | None = None
    pictures: Callable[..., list] | None = None
    autoencoder: Autoencoder | None = None
    coder: Coder | None = None
    representation: str = ""
    round_trip: RoundTrip | None = None
    tools: FamilyTools | None = None

    def __post_init__(self):
        names = [p.name for p in self.players]
        if len(set(names)) != len(names):
            raise ValueError(f"Objective {self.name}: player names must be unique, got {names}.")
        if not names:
            raise ValueError(f"Objective {self.name} has no players.")
        if self.tools is not None and not isinstance(self.tools, FamilyTools):
            raise TypeError(f"Objective {self.name}: tools must be a FamilyTools, got "
                            f"{type(self.tools).__name__}.")

    @property
    def likelihood_kind(self) -> str:
        """"exact", "bound" or "none": how the default likelihood relates to log p(x)."""
        return next(iter(self.likelihoods.values())).kind if self.likelihoods else "none"

    @property
    def default_likelihood(self) -> str | None:
        return next(iter(self.likelihoods), None)


# ------------------------------------------------------------------------ datasets
SPLITS = ("train", "test", "eval")  # "eval" means "test"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One split of a dataset, as a dataset's builder returns it
    (`jaxgen.kernel.registry.DatasetSpec`).

    name: the config's data.name (e.g. "8gaussians", "fashion_mnist", "tfds:mnist", or a
      plugin reference "path/my_data.py:make").
    kind: "points" (float32 vectors), "images" (uint8 NHWC) or "tokens" (int32 code maps
      with values in [0, num_tokens)).
    source: a random-access source: `len(source)`, `source.get(indices) -> {"x": ...,
      "label": ...}` ("label" only with labels), `source.event_shape`,
      `source.num_classes` (`jaxgen.data.sources`).
    event_shape: the shape of one example.
    num_classes: the number of label classes, or None without labels.
    toy: a known density, for metrics against the truth: `log_prob(x)` (exact
      log-density, or None), and for Gaussian mixtures `modes`, `std`, `weights`,
      `covs` (`jaxgen.data.toy2d.Toy2D`, `jaxgen.data.toy_sequences.ToySequence`);
      None for data without one.
    num_tokens: "tokens": the vocabulary size K.
    class_names: readable label names (picture rows), () when there are none.
    features: "module:attribute" of the feature space its Fréchet distance and
      precision/recall are computed in ('' none: those metrics are skipped).
    """

    name: str
    kind: str
    source: Any
    event_shape: tuple
    num_classes: int | None
    toy: Any = None
    num_tokens: int | None = None
    class_names: tuple = ()
    features: str = ""


@dataclasses.dataclass(frozen=True)
class Decoder:
    """Turns a model's samples into pictures when the data are another run's latents or
    codes (a prior on a VAE's latents, on a VQ-VAE's code maps).

    decode: `samples -> uint8 images`, or None when they cannot be decoded (the
      autoencoder run is not found, or the samples are not a whole latent of it).
    missing: what the pictures show instead when `decode` gives None, in a few words
      naming the setting that would find the decoder.
    """

    decode: Callable[[Any], Any]
    missing: str = ""
