"""Checks that each PyTorch twin computes the same function as its jaxgen module.

    python benchmarks/check_equivalence.py

For each architecture: build the Flax module from its config (as jaxgen's
registry does), initialise it, copy its parameters into the twin (transposing
kernels to PyTorch's layouts), run both on the same small random input and
compare the outputs. Any difference in padding, normalisation, skip order,
upsampling or masking shows up as a large error. Forward passes only, batch 4:
a few seconds on a CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "mlp": "configs/flow_matching/toy2d.py",
    "unet": "configs/diffusion/ddpm_fashion_mnist.py",
    "dcgan": "configs/gan/dcgan_fashion_mnist.py",
    "pixelcnn": "configs/autoregressive/pixelcnn_fashion_mnist.py",
}
POINTS = dict(name="8gaussians", kind="points", event_shape=(2,), num_classes=None,
              num_tokens=None)
IMAGES = dict(name="fashion_mnist", kind="images", event_shape=(28, 28, 1), num_classes=10,
              num_tokens=None)


# ------------------------------------------- Flax params -> PyTorch tensors
def dense(p):
    """Dense {kernel (in, out), bias} -> Linear weight (out, in), bias."""
    return {"weight": np.asarray(p["kernel"]).T, "bias": np.asarray(p["bias"])}


def dense_as_conv1x1(p):
    d = dense(p)
    return {"weight": d["weight"][:, :, None, None], "bias": d["bias"]}


def conv(p):
    """Conv kernel (kh, kw, in, out) -> Conv2d weight (out, in, kh, kw)."""
    return {"weight": np.asarray(p["kernel"]).transpose(3, 2, 0, 1),
            "bias": np.asarray(p["bias"])}


def conv_transpose(p):
    """Flax ConvTranspose (transpose_kernel=False) correlates the dilated input with its
    kernel; PyTorch's ConvTranspose2d correlates with the spatially flipped weight, laid
    out (in, out, kh, kw)."""
    k = np.asarray(p["kernel"])[::-1, ::-1]
    return {"weight": k.transpose(2, 3, 0, 1), "bias": np.asarray(p["bias"])}


def norm(p):
    return {"weight": np.asarray(p["scale"]), "bias": np.asarray(p["bias"])}


def time_embedding(p):
    return {f"dense_{i}.{k}": v for i in (0, 1) for k, v in dense(p[f"dense_{i}"]).items()}


def prefixed(prefix: str, d: dict) -> dict:
    return {f"{prefix}.{k}": v for k, v in d.items()}


def mlp_state(p, n_layers: int) -> dict:
    s = prefixed("time_embedding", time_embedding(p["time_embedding"]))
    for i in range(n_layers):
        s.update(prefixed(f"dense.{i}", dense(p[f"dense_{i}"])))
    s.update(prefixed("out", dense(p["out"])))
    return s


def resblock(p) -> dict:
    s = {**prefixed("norm_0", norm(p["norm_0"])), **prefixed("conv_0", conv(p["conv_0"])),
         **prefixed("time_proj", dense(p["time_proj"])), **prefixed("norm_1", norm(p["norm_1"])),
         **prefixed("conv_1", conv(p["conv_1"]))}
    if "skip" in p:
        s.update(prefixed("skip", conv(p["skip"])))
    return s


def unet_state(p, levels: int, num_res_blocks: int) -> dict:
    s = {**prefixed("time_embedding", time_embedding(p["time_embedding"])),
         **prefixed("conv_in", conv(p["conv_in"])),
         **prefixed("norm_out", norm(p["norm_out"])), **prefixed("conv_out", conv(p["conv_out"]))}
    for level in range(levels):
        for i in range(num_res_blocks):
            s.update(prefixed(f"down.{level}.{i}", resblock(p[f"down_{level}_res_{i}"])))
        if level != levels - 1:
            s.update(prefixed(f"downsample.{level}.conv", conv(p[f"down_{level}_downsample"])))
    for i in range(2):
        s.update(prefixed(f"mid.{i}", resblock(p[f"mid_res_{i}"])))
    for j, level in enumerate(reversed(range(levels))):  # the twin's up lists run bottom-up
        for i in range(num_res_blocks):
            s.update(prefixed(f"up.{j}.{i}", resblock(p[f"up_{level}_res_{i}"])))
        if level != 0:
            s.update(prefixed(f"upsample.{j}", conv(p[f"up_{level}_upsample"])))
    return s


def dcgan_state(p) -> dict:
    """The twin run with channels_last=True reshapes/flattens in jaxgen's NHWC order, so
    the Dense weights copy over without a permutation."""
    g, d = p["generator"], p["discriminator"]
    s = {**prefixed("generator.project", dense(g["project"])),
         **prefixed("generator.norm_0", norm(g["norm_0"])),
         **prefixed("generator.up_0", conv_transpose(g["up_0"])),
         **prefixed("generator.norm_1", norm(g["norm_1"])),
         **prefixed("generator.up_1", conv_transpose(g["up_1"])),
         **prefixed("discriminator.conv_0", conv(d["conv_0"])),
         **prefixed("discriminator.conv_1", conv(d["conv_1"])),
         **prefixed("discriminator.logit", dense(d["head"]["logit"]))}
    return s


def pixelcnn_state(p, num_layers: int) -> dict:
    s = {**prefixed("conv_a", conv(p["conv_a"])),
         **prefixed("head1", dense_as_conv1x1(p["head1"])),
         **prefixed("head2", dense_as_conv1x1(p["head2"]))}
    for j in range(num_layers):
        s.update(prefixed(f"conv_b.{j}", conv(p[f"conv_b_{j}"])))
    return s


def load(module, state: dict):
    import torch
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("mask")]
    extra = [k for k in state if k not in own]
    if missing or extra:
        raise KeyError(f"state mismatch: missing {missing}, unexpected {extra}")
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise ValueError(f"{k}: torch {tuple(own[k].shape)}, from flax {v.shape}")
    module.load_state_dict({**{k: v for k, v in own.items() if k.endswith("mask")},
                            **{k: torch.from_numpy(np.array(v, np.float32)) for k, v in
                               state.items()}})


# ----------------------------------------------------------------- checks
def main() -> int:
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install torch  (it is only needed for "
              "benchmarks/, never by jaxgen itself)", file=sys.stderr)
        return 2
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch_models as tm

    from jaxgen.kernel.config import load_config
    from jaxgen.kernel.registry import build_model
    from jaxgen.runner.experiment import DatasetInfo

    rng = np.random.default_rng(0)
    key = jax.random.key(0)
    worst = {}

    def report(name, a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        err = float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12))
        worst[name] = max(err, worst.get(name, 0.0))
        print(f"  {name:<22} shape {str(a.shape):<18} max |jax - torch| / max |jax| = {err:.2e}")

    def nchw(x):
        return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))

    # 1. MLP
    cfg = load_config(ROOT / CONFIGS["mlp"])
    m = build_model(cfg.model, DatasetInfo(**POINTS))
    x = rng.normal(size=(4, 2)).astype(np.float32)
    t = rng.uniform(size=(4,)).astype(np.float32)
    p = m.init(key, x, t)["params"]
    tw = tm.TimeMLP(2, tuple(cfg.model.features), cfg.model.time_dim)
    load(tw, mlp_state(p, len(cfg.model.features)))
    print("mlp")
    report("mlp u(x, t)", m.apply({"params": p}, x, t),
           tw(torch.from_numpy(x), torch.from_numpy(t)).detach())

    # 2. U-Net (conv_out is zero at init: perturb every parameter so the output is not 0)
    cfg = load_config(ROOT / CONFIGS["unet"])
    c = cfg.model
    m = build_model(c, DatasetInfo(**IMAGES))
    x = rng.normal(size=(4, 28, 28, 1)).astype(np.float32)
    t = rng.uniform(size=(4,)).astype(np.float32)
    p = m.init(key, x, t)["params"]
    leaves, tree = jax.tree.flatten(p)
    p = jax.tree.unflatten(tree, [v + 0.05 * jax.random.normal(jax.random.fold_in(key, i),
                                                               v.shape)
                                  for i, v in enumerate(leaves)])
    print("unet")
    for cl in (False, True):
        tw = tm.UNet(1, tuple(c.channels), c.num_res_blocks, c.time_dim, c.groups)
        load(tw, unet_state(p, len(c.channels), c.num_res_blocks))
        xt = nchw(x)
        if cl:
            tw = tw.to(memory_format=torch.channels_last)
            xt = xt.contiguous(memory_format=torch.channels_last)
        out = tw(xt, torch.from_numpy(t)).detach().permute(0, 2, 3, 1)
        report(f"unet eps{' (CL)' if cl else ''}", m.apply({"params": p}, x, t), out)

    # 3. DCGAN
    cfg = load_config(ROOT / CONFIGS["dcgan"])
    c = cfg.model
    m = build_model(c, DatasetInfo(**IMAGES))
    z = rng.normal(size=(4, c.latent_dim)).astype(np.float32)
    x = rng.uniform(-1, 1, size=(4, 28, 28, 1)).astype(np.float32)
    p = m.init(key, jnp.asarray(z))["params"]
    tw = tm.DCGAN((28, 28, 1), c.latent_dim, c.g_channels, c.d_channels, channels_last=True)
    load(tw, dcgan_state(p))
    tw = tw.to(memory_format=torch.channels_last)
    print("dcgan")
    report("dcgan G(z)", m.apply({"params": p}, z, method=m.generate),
           tw.generator(torch.from_numpy(z)).detach().permute(0, 2, 3, 1))
    report("dcgan D(x)", m.apply({"params": p}, x, method=m.discriminate),
           tw.discriminator(nchw(x).contiguous(memory_format=torch.channels_last)).detach())

    # 4. PixelCNN (the objective clones the module with num_outputs = 256 bins)
    cfg = load_config(ROOT / CONFIGS["pixelcnn"])
    c = cfg.model
    m = build_model(c, DatasetInfo(**IMAGES)).clone(num_outputs=256)
    k = rng.integers(0, 256, size=(4, 28, 28, 1))
    x = (2.0 * (k + 0.5) / 256.0 - 1.0).astype(np.float32)
    p = m.init(key, x)["params"]
    tw = tm.PixelCNN(c.channels, c.num_layers, c.hidden, 256)
    load(tw, pixelcnn_state(p, c.num_layers))
    out = tw(nchw(x)).detach()  # (B, 256, H, W) -> (B, H*W, 256)
    print("pixelcnn")
    report("pixelcnn logits", m.apply({"params": p}, x),
           out.permute(0, 2, 3, 1).reshape(4, -1, 256))
    # causality of the twin: logits at pixel i must not depend on pixels >= i
    xs = nchw(x).requires_grad_(True)
    tw(xs)[0, :, 14, 14].sum().backward()
    g = xs.grad[0, 0].abs().reshape(-1)
    leak = float(g[14 * 28 + 14:].max())
    print(f"  pixelcnn causality: max |d logits(14,14) / d x_j|, j >= (14,14): {leak:.1e}")

    bad = {n: e for n, e in worst.items() if e > 1e-4}
    if bad or leak > 0:
        print(f"FAILED: {bad or ''} {'causality leak' if leak > 0 else ''}")
        return 1
    print("OK: every twin matches its jaxgen module (relative error <= 1e-4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
