"""train.compute_dtype=bfloat16 reaches every registered model: the share of the train
step's convolution and matmul FLOPs on bfloat16 operands, read from the lowered StableHLO
(`jaxgen.nn.precision.bf16_flop_share`; lowering only, nothing is compiled).

Each registered model runs through its family's real objective (the objective may
`clone` the model), tiny. A model whose step cannot reach MIN_SHARE declares it with the
class attribute `BF16_EXCEPTION = (lowest_share, "why")`, and the test holds it to that.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from conftest import ROOT

from jaxgen.kernel import config as config_lib
from jaxgen.kernel import registry
from jaxgen.nn.precision import MixedPrecisionModel, bf16_flop_share, with_compute_dtype
from jaxgen.runner.experiment import DatasetInfo, Experiment

MIN_SHARE = 0.95
IM = (8, 8, 1)
B8 = ["train.batch_size=8"]


def _classifier_config():
    """The feature classifier's own trainer config (model fmnist_cnn), tiny."""
    from jaxgen.eval import classifier
    return classifier._train_config(ROOT / "unused.npz", steps=1, batch_size=8, seed=0,
                                    lr=2e-3, arch={"widths": (4, 8), "feature_dim": 8},
                                    progress=False)


# model.name -> (config (a configs/ path or a builder of the resolved config), overrides,
# data kind, event shape, num_classes)
CASES = {
    "mlp": ("flow_matching/toy2d.py", ["train.batch_size=16", "model.features=(16, 16)",
                                       "model.time_dim=8"], "points", (2,), None),
    "unet": ("flow_matching/fashion_mnist.py", B8 + ["model.channels=(8, 16)",
             "model.time_dim=8", "model.groups=4"], "images", IM, None),
    "dit": ("flow_matching/dit_fashion_mnist.py", B8 + ["model.depth=2", "model.hidden=16",
            "model.num_heads=2", "model.patch=4"], "images", IM, None),
    "realnvp": ("flows/realnvp_fashion_mnist.py", B8 + ["model.hidden=8"], "images", IM, None),
    "glow": ("flows/glow_fashion_mnist.py", B8 + ["model.hidden=8", "model.steps=2"],
             "images", IM, None),
    "vae_mlp": ("vae/vae_toy2d.py", ["train.batch_size=16", "model.features=(16,)"],
                "points", (2,), None),
    "vae_conv": ("vae/vae_fashion_mnist.py", B8 + ["model.channels=(4, 8)", "model.hidden=16",
                 "model.latent_dim=4"], "images", IM, None),
    "vqvae_conv": ("vae/vqvae_fashion_mnist.py", B8 + ["model.channels=(4, 8)",
                   "model.embed_dim=3", "model.num_res=0", "objective.num_codes=6"],
                   "images", IM, None),
    "vqvae2_conv": ("vae/vqvae2_fashion_mnist.py", B8 + ["model.channels=(4, 8)",
                    "model.embed_dim=3", "model.num_res=0", "objective.num_codes=6"],
                    "images", IM, None),
    "gan_mlp": ("gan/ns_toy2d.py", ["train.batch_size=16", "model.g_features=(16, 16)",
                                    "model.d_features=(16, 16)"], "points", (2,), None),
    "dcgan": ("gan/dcgan_fashion_mnist.py", B8 + ["model.g_channels=8", "model.d_channels=8",
              "model.latent_dim=8"], "images", IM, None),
    "biggan": ("gan/biggan_fashion_mnist.py", B8 + ["model.g_channels=4",
               "model.d_channels=4", "model.latent_dim=8", "model.embed_dim=4"],
               "images", IM, 10),
    "sngan": ("gan/sngan_cifar10.py", B8 + ["objective.split_batch=false",
              "model.g_channels=8", "model.d_channels=8", "model.latent_dim=8"], "images",
              (32, 32, 3), None),
    "progan": ("gan/progan_fashion_mnist.py", B8 + ["model.g_channels=(8, 4)",
               "model.d_channels=(8, 4)", "model.latent_dim=8"], "images", IM, None),
    "pix2pix_unet": ("gan/pix2pix_fashion_mnist.py", B8 + ["model.g_channels=4",
                     "model.d_channels=4", "model.groups=2"], "images", IM, 3),
    "cyclegan": ("gan/cyclegan_fashion_mnist.py", B8 + ["model.g_channels=4",
                 "model.d_channels=4", "model.groups=2", "data.classes=()",
                 "objective.class_x=0", "objective.class_y=1"], "images", IM, 3),
    "ar_mlp": ("autoregressive/ar_toy.py", ["train.batch_size=16", "model.features=(16,)"],
               "points", (8,), None),
    "ar_rnn": ("autoregressive/rnn_fashion_mnist.py", B8 + ["model.hidden=8"], "images",
               (4, 4, 1), None),
    "wavenet": ("autoregressive/wavenet_fashion_mnist.py", B8 + ["model.channels=8",
                "model.skip_channels=8", "model.dilations=(1, 2)"], "images", (4, 4, 1), None),
    "pixelcnn": ("autoregressive/pixelcnn_fashion_mnist.py", B8 + ["model.channels=4",
                 "model.num_layers=1", "model.hidden=4"], "images", (4, 4, 1), None),
    "ar_transformer": ("autoregressive/transformer_fashion_mnist.py", B8 + ["model.d_model=8",
                       "model.num_heads=2", "model.num_layers=1"], "images", (4, 4, 1), None),
    "fmnist_cnn": (_classifier_config, [], "images", IM, 10),
}


def bf16_experiment(name: str, dtype: str = "bfloat16"):
    """(Experiment, abstract batch) of model `name`'s tiny case, in compute dtype `dtype`."""
    config, overrides, kind, shape, num_classes = CASES[name]
    if callable(config):
        cfg = config()
        cfg.train.compute_dtype = dtype
    else:
        cfg = config_lib.load_config(ROOT / "configs" / config,
                                     overrides + [f"train.compute_dtype={dtype}"])
    assert cfg.model.name == name
    exp = Experiment(cfg, DatasetInfo("array", kind, tuple(shape), num_classes))
    bs = cfg.train.batch_size
    batch = {"x": jax.ShapeDtypeStruct((bs, *shape), jnp.uint8 if kind == "images"
                                       else jnp.float32)}
    if num_classes:
        batch["label"] = jax.ShapeDtypeStruct((bs,), jnp.int32)
    return exp, batch


def train_step_share(name: str, dtype: str = "bfloat16"):
    """bf16_flop_share of model `name`'s whole train step (every player's loss gradient and
    update), and the experiment."""
    exp, batch = bf16_experiment(name, dtype)
    state = exp.abstract_state()
    lowered = exp.train_step().lower(state, batch)
    return bf16_flop_share(lowered.as_text()), exp, state


def test_every_registered_model_has_a_case():
    assert set(CASES) == set(registry.model_names())


@pytest.mark.parametrize("name", sorted(CASES))
def test_bf16_reaches_the_model(name):
    (share, details), exp, state = train_step_share(name)
    assert isinstance(exp.model, MixedPrecisionModel)
    exception = getattr(type(exp.model.module), "BF16_EXCEPTION", None)
    floor = MIN_SHARE if exception is None else exception[0]
    print(f"{name}: bf16 share {share:.4f}", details["flops_by_operands"])
    assert details["total_flops"] > 0
    assert share >= floor, (name, share, details["flops_by_operands"])
    # the master copy stays float32: params, optimizer state, EMA
    floats = {v.dtype for v in jax.tree.leaves(state) if jnp.issubdtype(v.dtype, jnp.floating)}
    assert floats == {jnp.dtype(jnp.float32)}, floats
    if getattr(exp.model, "incremental", False):  # the sampler's own path (`step`) traces
        sampler = exp._sample_jit(exp.sample_settings).lower(state.params, jax.random.key(0), 2)
        print(f"{name}: sampler's bf16 share {bf16_flop_share(sampler.as_text())[0]:.4f}")


def test_float32_has_no_bf16():
    (share, details), exp, _ = train_step_share("pixelcnn", "float32")
    assert share == 0.0 and not isinstance(exp.model, MixedPrecisionModel)
    assert set(details["flops_by_operands"]) == {"f32"}


def test_flop_count_of_a_convolution_and_a_dot():
    def f(x, w, a, b):
        y = jax.lax.conv_general_dilated(x, w, (2, 2), "SAME", feature_group_count=2,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y, jnp.einsum("bij,bjk->bik", a, b)
    x = jax.ShapeDtypeStruct((2, 8, 8, 4), jnp.bfloat16)
    w = jax.ShapeDtypeStruct((3, 3, 2, 6), jnp.bfloat16)  # 2 groups of 2 in-features
    a, b = jax.ShapeDtypeStruct((3, 4, 5), jnp.float32), jax.ShapeDtypeStruct((3, 5, 7),
                                                                             jnp.float32)
    share, d = bf16_flop_share(jax.jit(f).lower(x, w, a, b).as_text())
    conv, dot = 2 * (2 * 4 * 4 * 6) * (3 * 3 * 2), 2 * (3 * 4 * 7) * 5
    assert d["flops_by_operands"] == {"bf16": conv, "f32": dot}
    assert share == pytest.approx(conv / (conv + dot))
    assert [o["op"] for o in d["ops"]] == ["convolution", "dot_general"]


def _dots(jaxpr) -> list[str]:
    return [ln for ln in str(jaxpr).splitlines()
            if "dot_general[" in ln or "conv_general_dilated[" in ln]


def test_clone_copy_and_bind_stay_mixed():
    """(Traced, not run.)"""
    from jaxgen.nn.autoregressive import CausalTransformer
    model = CausalTransformer(d_model=8, num_heads=2, num_layers=1, num_outputs=3, max_len=6)
    mixed = with_compute_dtype(model, "bfloat16")
    for other in (mixed.clone(num_outputs=5), mixed.copy(num_outputs=5)):
        assert type(other) is MixedPrecisionModel and other.compute_dtype == jnp.bfloat16
        assert isinstance(other, CausalTransformer)
        assert other.num_outputs == 5 and mixed.num_outputs == 3
    clone = mixed.clone(num_outputs=5)
    x = jnp.zeros((2, 6))
    params = jax.eval_shape(clone.init, jax.random.key(0), x)
    assert {v.dtype for v in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    dots = _dots(jax.make_jaxpr(lambda p: clone.apply(p, x))(params))
    assert dots and all("bf16" in ln for ln in dots)
    out = jax.eval_shape(lambda p: clone.apply(p, x), params)
    assert out.dtype == jnp.float32 and out.shape == (2, 6, 5)

    def step(p):  # a bound module's methods run in bf16 too; KV cache kept in float32
        bound = clone.bind(p)
        state, y = bound.step(bound.initial_state(2, 6), jnp.zeros((2,)), 0)
        return state, y, bound(x)
    dots = _dots(jax.make_jaxpr(step)(params))
    assert dots and all("bf16" in ln for ln in dots)
    state, y, full = jax.eval_shape(step, params)
    assert y.dtype == full.dtype == jnp.float32 and y.shape == (2, 5)
    assert {v.dtype for v in jax.tree.leaves(state)} == {jnp.dtype(jnp.float32)}


def test_hand_written_layers_compute_in_bf16_with_float32_params_and_grads():
    """ProGAN's equalised-LR layers, BigGAN's spectral-normalised ones and PixelCNN's
    masked convolution: bf16 operands under the wrapper, float32 params and gradients, the
    same function up to bf16 rounding; without it, float32 throughout."""
    import flax.linen as nn

    from jaxgen.nn.autoregressive import MaskedConv2D
    from jaxgen.nn.biggan import SNConv, SNDense
    from jaxgen.nn.progan import EqualizedConv, EqualizedDense

    class Stack(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.relu(EqualizedConv(6)(x))
            h = nn.relu(SNConv(6)(h))
            h = nn.relu(MaskedConv2D(6, (3, 3), "B")(h))
            h = nn.relu(EqualizedDense(8)(h.reshape(h.shape[0], -1)))
            return SNDense(4)(h)

    model = Stack()
    mixed = with_compute_dtype(model, "bfloat16")
    x = jax.random.normal(jax.random.key(0), (4, 6, 6, 3))
    variables = model.init(jax.random.key(1, impl="rbg"), x)
    assert {v.dtype for v in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    for m, dtype in ((model, "f32"), (mixed, "bf16")):
        dots = _dots(jax.make_jaxpr(lambda p, m=m: m.apply(p, x))(variables))
        layers = [ln for ln in dots if "[4," in ln]  # on the batch; else σ̂'s matvecs
        assert len(layers) == 5 and all(f"{dtype}[4," in ln for ln in layers), dots
        assert all("f32[" in ln for ln in dots if ln not in layers)  # σ̂ in float32

    def loss(params, m):
        return jnp.mean(m.apply({**variables, "params": params}, x) ** 2)
    grad = jax.jit(jax.grad(loss), static_argnums=1)
    g32, g16 = grad(variables["params"], model), grad(variables["params"], mixed)
    assert {v.dtype for v in jax.tree.leaves(g16)} == {jnp.dtype(jnp.float32)}
    a = jnp.concatenate([v.ravel() for v in jax.tree.leaves(g32)])
    b = jnp.concatenate([v.ravel() for v in jax.tree.leaves(g16)])
    assert float(a @ b / jnp.linalg.norm(a) / jnp.linalg.norm(b)) > 0.99
    assert float(jnp.max(jnp.abs(a - b))) > 0  # bf16 did change the arithmetic
