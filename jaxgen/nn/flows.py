"""Normalizing-flow models built from `jaxgen.bijectors`: RealNVP and Glow.

Each model is itself a bijector (`forward_and_log_det`: data -> latent,
`inverse_and_log_det`: latent -> data) whose layers are laid out from the
input's shape on the first call, so one class serves 2-D vectors and images.

* `RealNVP` (Dinh et al., 2017):
  - vectors: `num_layers` × [ActNorm] → affine coupling (MLP conditioner),
    the halves alternating;
  - images: logit pre-processing, then per scale 3 checkerboard couplings →
    squeeze → 3 channel couplings → split (half the channels factored out),
    and 4 checkerboard couplings at the last scale (their Sec. 4.1).
  - `coupling="spline"`: the same layout with rational-quadratic spline couplings
    (neural spline flows; Durkan et al., 2019) in place of the affine ones, `num_bins`
    bins on [−tail_bound, tail_bound] and the identity outside
    (`jaxgen.bijectors.spline`); configs/flows/nsf_*.py.
  - the layout of RealNVP's released code (tensorflow/models, research/real_nvp), chosen
    field by field: `conditioner="dinh"` (its s/t ResNet, `DinhResNet`), `widen` (the width
    doubles at every scale and the channel couplings are twice as wide),
    `channel_coupling="halves"` (channel couplings on channel halves, `HalfCoupling`
    "tanh"), `coupling_norm` (an ActNorm after every coupling where the paper normalises
    the coupling outputs with batch norm); configs/flows/realnvp_cifar10.py.
* `Glow` (Kingma & Dhariwal, 2018): per scale squeeze → `steps` ×
  (ActNorm → invertible 1×1 conv (LU) → affine coupling) → split with a
  learned prior, as in their Fig. 2; for vectors, the same step without the
  squeezes and splits. openai/glow's own layers, field by field: `coupling="affine"` /
  `"additive"` (couplings on channel halves, `HalfCoupling`), `conditioner="glow"` (its
  coupling network and split prior, `GlowConditioner`, `ZeroConv`), `lu=False` (the dense
  1×1 convolution its code uses), `learned_top` (its `--learntop`, `LearnedPrior`);
  configs/flows/glow_cifar10.py.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax

from jaxgen.bijectors import (
    ActNorm,
    AffineCoupling,
    Bijector,
    Chain,
    Conv1x1,
    Conv1x1LU,
    HalfCoupling,
    LearnedPrior,
    LogitTransform,
    RQSplineCoupling,
    Squeeze,
    multi_scale,
)
from jaxgen.bijectors.conditioners import (
    ConvConditioner,
    DinhResNet,
    GlowConditioner,
    MLPConditioner,
    ZeroConv,
)
from jaxgen.kernel.errors import UserError

__all__ = ["RealNVP", "Glow", "COUPLINGS", "GLOW_COUPLINGS", "CONDITIONERS"]

COUPLINGS = ("affine", "spline")  # RealNVP's model.coupling
GLOW_COUPLINGS = ("masked", "affine", "additive")  # Glow's model.coupling
CONDITIONERS = {"realnvp": ("resnet", "dinh"), "glow": ("resnet", "glow")}  # model.conditioner


def _choice(field: str, value: str, choices) -> None:
    if value not in choices:
        raise UserError(f"model.{field}={value!r}: expected one of {tuple(choices)}.")


def _coupling(conditioner: Callable[[int], nn.Module], c: int, mask: str, parity: int,
              spline: tuple[int, float] | None) -> Bijector:
    """An affine coupling of ``c`` channels, or with ``spline = (K, B)`` a rational-quadratic
    spline coupling; ``conditioner(n)`` builds its conditioner with ``n`` outputs."""
    if spline is None:
        return AffineCoupling(conditioner(2 * c), mask_type=mask, parity=parity)
    bins, bound = spline
    return RQSplineCoupling(conditioner(RQSplineCoupling.params_per_entry(bins) * c),
                            mask_type=mask, parity=parity, num_bins=bins, tail_bound=bound)


def _vector_coupling(d: int, hidden: Sequence[int], parity: int,
                     spline: tuple[int, float] | None = None) -> Bijector:
    return _coupling(lambda n: MLPConditioner(n, hidden=tuple(hidden)), d, "half", parity,
                     spline)


class RealNVP(Bijector):
    """RealNVP for vectors (B, D) or images (B, H, W, C); with ``coupling="spline"`` a
    neural spline flow (RQ-NSF (C) of Durkan et al., 2019) in RealNVP's layout.

    Attributes:
      num_layers: vectors: number of couplings.
      hidden: vectors: MLP conditioner widths; images: conv conditioner width.
      num_scales: images: number of squeeze/split scales (H and W must be
        divisible by 2**num_scales).
      num_blocks: images: residual blocks per conv conditioner.
      actnorm: vectors: an ActNorm before every coupling.
      logit_alpha: images: RealNVP's logit pre-processing with this α; 0 skips it.
      coupling: "affine" (RealNVP) or "spline" (rational-quadratic spline couplings).
      num_bins: coupling="spline": bins K of each spline (3K − 1 conditioner outputs per entry).
      tail_bound: coupling="spline": B, each spline maps [−B, B] onto itself, identity outside.
      conditioner: images: "resnet" (`ConvConditioner`) or "dinh" (`DinhResNet`, the s/t
        network of RealNVP's code).
      widen: images: the width is hidden·2^s at scale s, and the channel couplings of a
        scale are twice as wide as its checkerboard ones (RealNVP's code).
      channel_coupling: images: "masked" (a channel mask over all channels) or "halves"
        (`HalfCoupling` "tanh": the conditioner reads only the kept half; affine only).
      coupling_norm: images: an ActNorm after every coupling (where the paper has batch
        normalisation of the coupling outputs).
    """

    num_layers: int = 8
    hidden: Sequence[int] | int = (128, 128)
    num_scales: int = 2
    num_blocks: int = 2
    actnorm: bool = True
    logit_alpha: float = 0.05
    coupling: str = "affine"
    num_bins: int = 8
    tail_bound: float = 4.0
    conditioner: str = "resnet"
    widen: bool = False
    channel_coupling: str = "masked"
    coupling_norm: bool = False

    def _spline(self) -> tuple[int, float] | None:
        """(num_bins, tail_bound) for spline couplings, None for affine ones."""
        if self.coupling not in COUPLINGS:
            raise UserError(f"model.coupling={self.coupling!r}: expected one of {COUPLINGS}.")
        if self.coupling == "affine":
            return None
        if self.num_bins < 1 or not self.tail_bound > 0:
            raise UserError(f"A spline coupling needs model.num_bins >= 1 and model.tail_bound "
                            f"> 0; got {self.num_bins} and {self.tail_bound}.")
        return self.num_bins, float(self.tail_bound)

    def _layers(self, shape) -> list:
        spline = self._spline()
        if len(shape) == 2:
            d = shape[-1]
            layers = []
            for i in range(self.num_layers):
                if self.actnorm:
                    layers.append(ActNorm())
                layers.append(_vector_coupling(d, self.hidden, i % 2, spline))
            return layers
        hidden = self.hidden if isinstance(self.hidden, int) else int(self.hidden[0])
        _choice("conditioner", self.conditioner, CONDITIONERS["realnvp"])
        _choice("channel_coupling", self.channel_coupling, ("masked", "halves"))
        if self.channel_coupling == "halves" and spline is not None:
            raise UserError("model.channel_coupling=halves is an affine coupling; use "
                            "model.channel_coupling=masked with model.coupling=spline.")
        c = shape[-1]
        levels = []

        def net(width: int, mask: str, parity: int):
            if self.conditioner == "dinh":
                return lambda n: DinhResNet(n, hidden=width, num_blocks=self.num_blocks,
                                            mask="checkerboard" if mask == "checkerboard"
                                            else "", parity=parity)
            return lambda n: ConvConditioner(n, hidden=width, num_blocks=self.num_blocks)

        def couplings(c, mask, n, width):
            out = []
            for i in range(n):
                if mask == "channel" and self.channel_coupling == "halves":
                    layer = HalfCoupling(net(width, mask, i % 2)(2 * (c - c // 2)), "tanh",
                                         parity=i % 2)
                else:
                    layer = _coupling(net(width, mask, i % 2), c, mask, i % 2, spline)
                out += [layer, ActNorm()] if self.coupling_norm else [layer]
            return out

        for s in range(self.num_scales):
            width = hidden * 2 ** s if self.widen else hidden
            levels.append(couplings(c, "checkerboard", 3, width) + [Squeeze()]
                          + couplings(4 * c, "channel", 3, 2 * width if self.widen else width))
            c = 4 * c // 2
        width = hidden * 2 ** self.num_scales if self.widen else hidden
        levels.append(couplings(c, "checkerboard", 4, width))
        pre = [LogitTransform(alpha=self.logit_alpha)] if self.logit_alpha > 0 else []
        return pre + [multi_scale(levels)]

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False):
        _check_shape(type(self).__name__, x.shape, self.num_scales)
        return Chain(self._layers(x.shape), name="flow")(x, inverse=inverse)


class Glow(Bijector):
    """Glow for images (multi-scale) or vectors (single scale).

    Attributes:
      steps: flow steps (ActNorm → 1×1 conv → coupling) per scale.
      num_scales: images: squeeze/split scales.
      hidden: conditioner width (conv channels for images; MLP width for vectors).
      num_blocks: images: residual blocks per conv conditioner.
      learned_prior: images: Glow's learned conditional prior at each split.
      logit_alpha: images: optional logit pre-processing (Glow itself uses none).
      coupling: images: "masked" (an affine coupling with a channel mask, the kept half
        alternating), "affine" or "additive" (openai/glow's couplings on channel halves,
        the first half kept: `HalfCoupling` "sigmoid" / "additive").
      conditioner: images: "resnet" (`ConvConditioner`; split priors a `ConvConditioner`
        without blocks, tanh-bounded log σ) or "glow" (`GlowConditioner`; split priors a
        `ZeroConv` with a free log σ, as openai/glow).
      lu: the 1×1 convolutions LU-parameterised (`Conv1x1LU`); False: a dense W
        (`Conv1x1`, the path openai/glow's code runs).
      learned_top: images: a learned prior N(μ, σ²) per position for the last scale's
        latent (openai/glow's --learntop, `LearnedPrior`).
    """

    steps: int = 8
    num_scales: int = 2
    hidden: int = 64
    num_blocks: int = 1
    learned_prior: bool = True
    logit_alpha: float = 0.0
    coupling: str = "masked"
    conditioner: str = "resnet"
    lu: bool = True
    learned_top: bool = False

    def _step(self, c: int, image: bool, i: int) -> list:
        mix = Conv1x1LU() if self.lu else Conv1x1()
        if not image:
            return [ActNorm(), mix, _vector_coupling(c, (self.hidden, self.hidden), i % 2)]
        if self.conditioner == "glow":
            def net(n):
                return GlowConditioner(n, hidden=self.hidden)
        else:
            def net(n):
                return ConvConditioner(n, hidden=self.hidden, num_blocks=self.num_blocks)
        if self.coupling == "masked":
            coupling = _coupling(net, c, "channel", i % 2, None)
        else:
            kind = "sigmoid" if self.coupling == "affine" else "additive"
            coupling = HalfCoupling(net((1 if kind == "additive" else 2) * (c - c // 2)), kind)
        return [ActNorm(), mix, coupling]

    def _prior(self, n: int) -> nn.Module:
        """A split's learned prior: (B, h, w, c) -> (B, h, w, 2n), mean and log σ."""
        if self.conditioner == "glow":
            return ZeroConv(2 * n)
        return ConvConditioner(2 * n, hidden=self.hidden, num_blocks=0)

    def _layers(self, shape) -> list:
        _choice("coupling", self.coupling, GLOW_COUPLINGS)
        _choice("conditioner", self.conditioner, CONDITIONERS["glow"])
        if len(shape) == 2:
            return [layer for i in range(self.steps) for layer in self._step(shape[-1], False, i)]
        c = shape[-1]
        levels, priors = [], []
        for s in range(self.num_scales):
            c = 4 * c
            level = [Squeeze()]
            for i in range(self.steps):
                level += self._step(c, True, i)
            levels.append(level)
            if s < self.num_scales - 1:
                keep = c // 2
                priors.append(self._prior(c - keep) if self.learned_prior else None)
                c = keep
        if self.learned_top:
            levels[-1].append(LearnedPrior(ZeroConv(2 * c)))
        # multi_scale nests a Split after every level but the last.
        pre = [LogitTransform(alpha=self.logit_alpha)] if self.logit_alpha > 0 else []
        return pre + [multi_scale(levels, priors if self.learned_prior else None,
                                  bounded=self.conditioner != "glow")]

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False):
        _check_shape(type(self).__name__, x.shape, self.num_scales)
        return Chain(self._layers(x.shape), name="flow")(x, inverse=inverse)


def _check_shape(name: str, shape, num_scales: int) -> None:
    if len(shape) == 4:
        h, w = shape[1:3]
        f = 2 ** num_scales
        if h % f or w % f:
            raise UserError(f"{name}: images of {h}×{w} cannot be squeezed {num_scales} times "
                             f"(needs H and W divisible by {f}); lower model.num_scales.")
    elif len(shape) != 2:
        raise UserError(f"{name} takes vectors (B, D) or images (B, H, W, C); got {shape}.")
