"""VQ-VAE-2 (jaxgen/families/vae/vqvae2.py) and its priors: the two code maps' shapes, each
level's terms against the formula, the bottom prior's likelihood against the chain rule,
its sampling and coding given the top."""

from __future__ import annotations

import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT

from jaxgen.families.vae import vqvae

TINY_VQ2 = ["model.channels=(4, 8)", "model.embed_dim=3", "model.num_res=0",
            "objective.num_codes=6"]


@functools.lru_cache(maxsize=None)
def _vq2(overrides: tuple = ()):
    """(objective, params, x) of a tiny VQ-VAE-2 on 28x28 images (7x7 and 14x14 maps)."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import registry
    from jaxgen.runner.experiment import DatasetInfo
    info = DatasetInfo("tiny", "images", (28, 28, 1))
    cfg = config_lib.load_config(ROOT / "configs" / "vae" / "vqvae2_fashion_mnist.py",
                                 TINY_VQ2 + list(overrides))
    obj = registry.build_objective(cfg, registry.build_model(cfg.model, info), info)
    raw = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1))
    x = jnp.asarray(2 * (raw + 0.5) / 256 - 1, jnp.float32)
    return obj, jax.jit(obj.init)(jax.random.key(0, impl="rbg"), {"x": x}), x


def test_two_level_shapes_and_per_level_commitment_terms_match_the_formula():
    """Gradient-trained codebooks (ema = False): the loss has both levels' codebook and
    commitment terms; the EMA case's loss is checked in the next test."""
    obj, params, x = _vq2(("objective.ema=false",))
    vm = obj.tools.encode_levels.__self__
    beta = 0.25

    m = vm.net

    @jax.jit
    def run(params):
        x_hat, terms, codes, z = vm.forward(params, x)
        loss, metrics = obj.players[0].loss(params, {"x": x}, None)
        net = {"params": params["model"]["net"]}
        h = m.apply(net, x, method=m.features)
        e_t = jax.random.normal(jax.random.key(1), (2, 4, 7, 7, 3))  # two tops
        e_b = jax.random.normal(jax.random.key(2), (4, 14, 14, 3))  # one bottom
        z_b = [m.apply(net, h, e, method=m.encode_bottom) for e in e_t]
        x_b = [m.apply(net, e, e_b, method=m.decode) for e in e_t]
        return (x_hat, terms, codes, z, loss, metrics, obj.tools.encode_codes(params, x),
                jnp.abs(z_b[0] - z_b[1]).max(), jnp.abs(x_b[0] - x_b[1]).max())

    x_hat, terms, codes, z, loss, metrics, seq, dz_b, dx = run(params)
    # another top moves the bottom map (same x) and the decoding (same bottom codes): the
    # bottom level is conditioned on the top
    assert float(dz_b) > 1e-4 and float(dx) > 1e-4
    assert codes["top"].shape == (4, 7, 7) and codes["bottom"].shape == (4, 14, 14)
    assert z["top"].shape == (4, 7, 7, 3) and z["bottom"].shape == (4, 14, 14, 3)
    assert x_hat.shape == x.shape and seq.shape == (4, 49 + 196)
    np.testing.assert_array_equal(seq[:, :49], codes["top"].reshape(4, -1))
    np.testing.assert_array_equal(seq[:, 49:], codes["bottom"].reshape(4, -1))
    expect = float(jnp.mean(jnp.square(x - x_hat)))
    for lv in ("top", "bottom"):
        cb = np.asarray(vm.codebook(params, lv))
        zl = np.asarray(z[lv]).reshape(-1, 3)
        d2 = ((zl[:, None] - cb[None]) ** 2).sum(-1)  # brute-force nearest codes
        np.testing.assert_array_equal(np.asarray(codes[lv]).reshape(-1), d2.argmin(-1))
        commit = np.mean((zl - cb[d2.argmin(-1)]) ** 2)
        np.testing.assert_allclose(float(metrics[f"commitment_{lv}"]), commit, rtol=1e-5)
        expect += (beta + 1.0) * commit  # commitment and codebook terms: equal values
        ppl, _ = vqvae.perplexity(codes[lv], 6)
        np.testing.assert_allclose(float(metrics[f"perplexity_{lv}"]), float(ppl), rtol=1e-6)
    np.testing.assert_allclose(float(loss), expect, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["mse"]), float(jnp.mean(jnp.square(x - x_hat))),
                               rtol=1e-6)
    # the Autoencoder's sequence decodes to the same images as the two maps
    np.testing.assert_allclose(obj.tools.decode_codes(params, seq), x_hat, atol=1e-5)


@pytest.mark.heavy  # ~8 s more of conv compiles (the config's own EMA codebooks)
def test_ema_codebooks_loss_and_update_of_each_level():
    obj, params, x = _vq2()
    vm = obj.tools.encode_levels.__self__

    @jax.jit
    def run(params):  # one compile for the lot
        loss, metrics = obj.players[0].loss(params, {"x": x}, None)
        return (vm.forward(params, x), loss, metrics,
                obj.update_state(params, {"x": x}, jax.random.key(1)))

    (_, _, codes, z), loss, metrics, new = run(params)
    # EMA codebooks: the loss is mse + β (commitment_top + commitment_bottom), no codebook term
    np.testing.assert_allclose(float(loss), float(metrics["mse"]) + 0.25 * (
        float(metrics["commitment_top"]) + float(metrics["commitment_bottom"])), rtol=1e-5)
    assert "codebook_top" not in metrics
    # update_state: each level's EMA step equals vqvae.ema_update on that level's vectors
    for lv in ("top", "bottom"):
        want = vqvae.ema_update(params["vq"][lv], z[lv].reshape(-1, 3), codes[lv].reshape(-1),
                                6, 0.99, 1e-5)
        np.testing.assert_allclose(new["vq"][lv]["codebook"], want["codebook"], rtol=1e-5,
                                   atol=1e-6)


# ------------------------------------------------------- the bottom prior p(bottom | top)
K, P, D = 3, 2, 5  # a vocabulary of 3 codes; 2 given (the "top"), 3 modelled (the "bottom")


@functools.lru_cache(maxsize=None)
def _prior_objective(prefix: int = P):
    """A tiny causal transformer over D tokens, the first `prefix` given (the same network
    and parameters whatever the prefix)."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import registry
    from jaxgen.runner.experiment import DatasetInfo
    info = DatasetInfo("codes", "tokens", (D,), num_tokens=K)
    cfg = config_lib.load_config(
        ROOT / "configs" / "autoregressive" / "vqvae2_bottom_prior.py",
        ["model.d_model=16", "model.num_heads=2", "model.num_layers=2",
         f"objective.condition_prefix={prefix}", "data.path=", "data.eval_path="])
    return registry.build_objective(cfg, registry.build_model(cfg.model, info), info)


@functools.lru_cache(maxsize=None)
def _prior():
    """(the conditional objective, its params)."""
    obj = _prior_objective()
    return obj, jax.jit(obj.init)(jax.random.key(3, impl="rbg"),
                                  {"x": jnp.zeros((2, D), jnp.float32)})


def _all_sequences(prefix):
    rest = np.stack(np.meshgrid(*[np.arange(K)] * (D - P), indexing="ij"), -1).reshape(-1, D - P)
    return np.concatenate([np.tile(prefix, (len(rest), 1)), rest], 1)


def test_bottom_prior_likelihood_is_the_joint_minus_the_top_and_sums_to_one_over_bottoms():
    cond, params = _prior()
    joint = _prior_objective(0)
    x = jnp.asarray(_all_sequences([2, 0]), jnp.float32)  # all 27 bottoms after top (2, 0)

    @jax.jit
    def run(params):
        return (cond.likelihoods["exact"].fn(params, x, None), joint.tools.log_probs(params, x),
                cond.tools.log_probs(params, x), cond.players[0].loss(params, {"x": x}, None)[0])

    lp_cond, lp_joint, lp_bottom, loss = run(params)
    lp_cond, lp_joint = np.asarray(lp_cond, np.float64), np.asarray(lp_joint, np.float64)
    assert lp_bottom.shape == (27, D - P) and lp_joint.shape == (27, D)
    # log p(bottom | top) = log p(top, bottom) − log p(top), the chain rule's tail
    np.testing.assert_allclose(lp_cond, lp_joint.sum(1) - lp_joint[:, :P].sum(1), atol=1e-5)
    # a normalised distribution over the K^3 bottoms given the top (the top's own
    # probability would make it sum to p(top) < 1)
    np.testing.assert_allclose(np.exp(lp_cond).sum(), 1.0, rtol=1e-5)
    assert np.exp(lp_joint.sum(1)).sum() < 0.9
    # the loss is the mean −log p(bottom | top) per modelled position
    np.testing.assert_allclose(float(loss), -lp_cond.mean() / (D - P), rtol=1e-5)
    # and eval's bits/dim divides by the modelled positions only
    assert (cond.likelihoods["exact"].dims, joint.likelihoods["exact"].dims) == (D - P, D)


def test_bottom_conditionals_depend_on_the_top_and_only_on_earlier_positions():
    cond, params = _prior()
    lp = jax.jit(cond.tools.log_probs)
    x = jnp.asarray([[0, 1, 2, 0, 1]], jnp.float32)
    base = np.asarray(lp(params, x))[0]
    top = np.asarray(lp(params, x.at[0, 0].set(2)))[0]
    assert np.abs(top - base).min() > 1e-6  # every bottom conditional reads the top
    for j in range(P, D):  # a later bottom code moves no earlier conditional
        moved = np.asarray(lp(params, x.at[0, j].set((x[0, j] + 1) % K)))[0]
        np.testing.assert_allclose(moved[:j - P], base[:j - P], atol=1e-6)
        assert np.abs(moved[j - P] - base[j - P]).max() > 1e-6  # its own term changes


def test_sampling_given_the_top_keeps_it_and_cached_equals_recompute():
    from jaxgen.families.autoregressive import objective as ar
    cond, params = _prior()
    am = cond.sample.keywords["am"]
    draw = functools.partial(ar._draw, temperature=1.0, discrete=True)
    variables = {"params": params["model"]}
    top_a = jnp.asarray([[2, 0]] * 64, jnp.int32)
    top_b = jnp.asarray([[0, 1]] * 64, jnp.int32)

    @functools.partial(jax.jit, static_argnums=0)
    def draw_given(run, given):
        return run(am.net, variables, jax.random.key(7), 64, (D,), draw, am.to_input,
                   am.to_output, given=given)

    a = np.asarray(draw_given(ar.sample_cached, top_a))
    np.testing.assert_array_equal(a[:, :P], top_a)
    np.testing.assert_array_equal(a, draw_given(ar.sample_recompute, top_a))
    b = np.asarray(draw_given(ar.sample_cached, top_b))
    np.testing.assert_array_equal(b[:, :P], top_b)
    # the bottom's distribution moves with the top: same noise, other draws
    assert (a[:, P:] != b[:, P:]).any()


def test_the_prefix_run_is_resolved_when_the_objective_is_built_never_while_tracing(
        tmp_path, monkeypatch):
    """sample.prefix_workdir names another run: the builder restores it, once, before any
    tracing (`jaxgen.composed.references`); the sampler, traced under jit, reads no run and
    keeps the prefix that run draws. Another prefix_workdir at sampling time is one error."""
    from types import SimpleNamespace

    from jaxgen.composed import references
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import registry
    from jaxgen.kernel.errors import UserError
    from jaxgen.runner.experiment import DatasetInfo
    top = jnp.asarray([2, 0], jnp.float32)
    run = SimpleNamespace(objective=SimpleNamespace(
        sample=lambda params, rng, num, settings: jnp.tile(top, (num, 1))),
        sample_settings=None)
    restored = []
    monkeypatch.setattr(references, "restore",
                        lambda workdir, check=None: restored.append(workdir) or (run, {}))
    (tmp_path / "config.json").write_text("{}")
    info = DatasetInfo("codes", "tokens", (D,), num_tokens=K)
    cfg = config_lib.load_config(
        ROOT / "configs" / "autoregressive" / "vqvae2_bottom_prior.py",
        ["model.d_model=16", "model.num_heads=2", "model.num_layers=2",
         f"objective.condition_prefix={P}", "data.path=", "data.eval_path=",
         f"sample.prefix_workdir={tmp_path}"])
    obj = registry.build_objective(cfg, registry.build_model(cfg.model, info), info)
    assert restored == [str(tmp_path)]
    monkeypatch.setattr(references, "restore", lambda *a, **k: pytest.fail("restored in jit"))
    params = _prior()[1]
    settings = registry.sample_settings(cfg)
    x = jax.jit(lambda p, k: obj.sample(p, k, 4, settings))(params, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(x)[:, :P], np.tile([2, 0], (4, 1)))
    other = dataclasses.replace(settings, prefix_workdir=str(tmp_path / "elsewhere"))
    with pytest.raises(UserError, match="sample.prefix_workdir=RUN"):
        obj.sample(params, jax.random.key(0), 4, other)


def test_compress_codes_only_the_bottom_given_the_top_round_trip_exact():
    from jaxgen.coding import codec
    from jaxgen.kernel.errors import UserError
    cond, params = _prior()
    raw = np.random.default_rng(0).integers(0, K, (7, D)).astype(np.int32)
    data, st = codec.compress(cond, params, raw, batch_size=4)
    back, header = codec.decompress(cond, params, data, given=raw[:, :P])
    np.testing.assert_array_equal(back, raw)
    assert header["given"] == P
    nll = -np.asarray(cond.likelihoods["exact"].fn(params, jnp.asarray(raw, jnp.float32), None))
    bits = nll.mean() / np.log(2)
    np.testing.assert_allclose(st["ideal_bits_per_example"], bits, rtol=1e-4)
    assert abs(st["bits_per_example"] - bits) < 8 * 4 / 7 + 1  # ≤ 2 bits + padding, per 7
    with pytest.raises(UserError, match="given"):
        codec.decompress(cond, params, data)
    with pytest.raises(codec.FormatError, match="prefix"):
        codec.decompress(cond, params, data, given=(raw[:, :P] + 1) % K)


# ------------------------------------------------------------------ the CLI, end to end
def _train(cli, config, wd, extra):
    args = ["train", "--config", str(ROOT / "configs" / config), "--workdir", str(wd),
            "--config.train.steps=2", "--config.train.batch_size=8",
            "--config.train.log_every=1", "--config.train.checkpoint_every=2",
            "--config.train.progress=false", "--config.eval.num_examples=8",
            "--config.eval.batch_size=8", *[f"--config.{o}" for o in extra]]
    assert cli.main(args) == 0


@pytest.mark.heavy
def test_cli_two_level_codes_priors_samples_and_lossless_coding(tmp_path, capsys):
    """VQ-VAE-2 -> `jaxgen codes` (both maps) -> top prior and bottom prior | top through the
    one trainer -> samples decoded through both levels -> compress / decompress, exact."""
    from jaxgen import cli
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("test", 8)):
        np.save(tmp_path / f"{split}.npy", rng.integers(0, 256, (n, 28, 28, 1), np.uint8))
    vq = tmp_path / "vq2"
    _train(cli, "vae/vqvae2_fashion_mnist.py", vq, TINY_VQ2 + [
        "data.name=array", f"data.path={tmp_path / 'train.npy'}",
        f"data.eval_path={tmp_path / 'test.npy'}"])
    assert (vq / "samples" / "code_usage_bottom.png").exists()
    for split in ("train", "test"):
        assert cli.main(["codes", "--workdir", str(vq), "--split", split,
                         "--out", str(tmp_path / f"codes_{split}.npz")]) == 0
    with np.load(tmp_path / "codes_test.npz") as f:
        assert f["codes_top"].shape == (8, 7, 7) and f["codes_bottom"].shape == (8, 14, 14)
        top_codes, bottom_codes = f["codes_top"], f["codes_bottom"]
    data = [f"data.path={tmp_path / 'codes_train.npz'}",
            f"data.eval_path={tmp_path / 'codes_test.npz'}", "model.d_model=16",
            "model.num_heads=2", "model.num_layers=1"]
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    _train(cli, "autoregressive/vqvae2_top_prior.py", top, data)
    _train(cli, "autoregressive/vqvae2_bottom_prior.py", bottom,
           data + [f"sample.prefix_workdir={top}"])
    capsys.readouterr()
    # eval: bits per code of the 196 bottom codes given the 49 top ones
    assert cli.main(["eval", "--workdir", str(bottom), "--out", str(tmp_path / "e.json")]) == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    ev = ev.get("results", ev)
    np.testing.assert_allclose(ev["bits_per_dim"], ev["nll_nats"] / (196 * np.log(2)),
                               rtol=1e-6)
    # samples: top ~ the top prior, bottom ~ p(bottom | top), decoded by the VQ-VAE-2
    assert cli.main(["sample", "--workdir", str(bottom), "--num", "3",
                     "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["x"].shape == (3, 245) and f["images"].shape == (3, 28, 28, 1)
    # lossless: the top with the top prior, the bottom given it; each decodes exactly
    assert cli.main(["compress", "--workdir", str(top), "--out", str(tmp_path / "t.jgac")]) == 0
    assert cli.main(["compress", "--workdir", str(bottom),
                     "--out", str(tmp_path / "b.jgac")]) == 0
    assert cli.main(["decompress", "--workdir", str(top), "--in", str(tmp_path / "t.jgac"),
                     "--out", str(tmp_path / "t.npz"), "--verify"]) == 0
    assert cli.main(["decompress", "--workdir", str(bottom), "--in", str(tmp_path / "b.jgac"),
                     "--out", str(tmp_path / "b.npz"), "--given", str(tmp_path / "t.npz"),
                     "--verify"]) == 0
    with np.load(tmp_path / "b.npz") as f:
        np.testing.assert_array_equal(f["x"][:, :49], top_codes.reshape(8, -1))
        np.testing.assert_array_equal(f["x"][:, 49:], bottom_codes.reshape(8, -1))
