"""GAN inversion and latent editing (jaxgen.families.gan.tools): inversion against the
least-squares and ridge closed forms of a linear generator, restarts, the logistic
hyperplane normal, moves along it, the pixel attribute classifier, and the
`jaxgen invert` / `jaxgen edit` / `jaxgen sample --truncation` commands."""

from __future__ import annotations

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, TINY_TOY, TOY_CONFIG

from jaxgen.families.gan import tools as gan_tools


def linear_generator(params, z, label=None):
    return z @ params["A"].T + params["b"]


def _linear_problem(seed=0, big_d=12, d=4, b=5):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(big_d, d)).astype(np.float32)
    assert np.linalg.matrix_rank(a) == d  # full column rank: a unique minimiser
    params = {"A": jnp.asarray(a), "b": jnp.asarray(rng.normal(size=big_d), jnp.float32)}
    x = rng.normal(size=(b, big_d)).astype(np.float32)  # not in G's range
    return params, x


_invert = jax.jit(functools.partial(gan_tools.invert, linear_generator, steps=1500, lr=0.05))


# ------------------------------------------------------------------ inversion
def test_inversion_of_a_linear_generator_is_least_squares():
    params, x = _linear_problem()
    a, b = np.asarray(params["A"]), np.asarray(params["b"])
    out = _invert(params, x, jnp.zeros((5, 4)))
    want = np.linalg.lstsq(a, (x - b).T, rcond=None)[0].T
    np.testing.assert_allclose(out.z, want, atol=2e-3)
    np.testing.assert_allclose(out.mse, np.mean((want @ a.T + b - x) ** 2, -1), rtol=1e-3)
    assert out.loss_history.shape == (1500, 5)
    assert np.all(out.loss_history[-1] < out.loss_history[0])
    # a target in the range is recovered exactly: z* = z_true, G(z*) = x
    z_true = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    out = _invert(params, z_true @ a.T + b, jnp.zeros((5, 4)))
    np.testing.assert_allclose(out.z, z_true, atol=2e-3)
    assert float(jnp.max(out.mse)) < 1e-6


def test_prior_weight_gives_the_ridge_closed_form():
    """mean_j (Az + b − x)_j² + λ‖z‖²/d is minimised by (AᵀA + λ D/d I)⁻¹ Aᵀ(x − b)."""
    params, x = _linear_problem(seed=2)
    a, b = np.asarray(params["A"]), np.asarray(params["b"])
    big_d, d = a.shape
    for lam in (0.3, 2.0):
        out = _invert(params, x, jnp.zeros((5, 4)), prior_weight=lam)
        want = np.linalg.solve(a.T @ a + lam * big_d / d * np.eye(d), a.T @ (x - b).T).T
        np.testing.assert_allclose(out.z, want, atol=2e-3)
        lsq = np.linalg.lstsq(a, (x - b).T, rcond=None)[0].T
        assert np.all(np.linalg.norm(want, axis=-1) < np.linalg.norm(lsq, axis=-1))  # shrunk


def test_examples_are_inverted_independently():
    params, x = _linear_problem(seed=3)
    z0 = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)
    inv = jax.jit(functools.partial(gan_tools.invert, linear_generator, steps=50, lr=0.05))
    together = inv(params, x, z0)
    alone = inv(params, x[2:3], z0[2:3])
    np.testing.assert_allclose(together.z[2:3], alone.z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(together.loss_history[:, 2:3], alone.loss_history, rtol=1e-5)


def wavy_generator(params, z, label=None):
    """Non-convex: many z give local minima of the reconstruction error."""
    return jnp.sin(3.0 * z @ params["A"].T) + 0.1 * z @ params["A"].T


def test_restarts_never_do_worse_than_a_single_start():
    rng = np.random.default_rng(0)
    params = {"A": jnp.asarray(rng.normal(size=(10, 3)), jnp.float32)}
    x = wavy_generator(params, jnp.asarray(rng.normal(size=(16, 3)) * 1.5, jnp.float32))
    z0 = jnp.asarray(rng.normal(size=(4, 16, 3)), jnp.float32)
    kw = dict(steps=60, lr=0.05)
    restarts = jax.jit(functools.partial(gan_tools.invert_with_restarts, wavy_generator,
                                         latent_dim=3, **kw))
    single = jax.jit(functools.partial(gan_tools.invert, wavy_generator, **kw))
    best = restarts(params, x, None, z0=z0)
    singles = np.stack([np.asarray(single(params, x, z0[r]).mse) for r in range(4)])
    np.testing.assert_allclose(best.restart_mse, singles, rtol=1e-4, atol=1e-7)
    assert np.all(np.asarray(best.mse) <= singles.min(0) + 1e-7)
    np.testing.assert_array_equal(best.best_restart, singles.argmin(0))
    assert np.any(singles.max(0) > 2 * singles.min(0))  # restarts matter here
    np.testing.assert_allclose(best.mse, gan_tools.per_example_mse(
        wavy_generator(params, best.z), x), rtol=1e-5)
    assert best.loss_history.shape == (60, 16)
    # random starts drawn inside
    out = restarts(params, x, jax.random.key(0))
    assert out.z.shape == (16, 3) and out.restart_mse.shape == (4, 16)
    assert np.all(np.asarray(out.mse) == np.asarray(out.restart_mse).min(0))


# ---------------------------------------------------------------- the direction
def test_logistic_normal_separates_blobs_along_the_true_direction():
    rng = np.random.default_rng(0)
    d = 6
    n_true = rng.normal(size=d)
    n_true /= np.linalg.norm(n_true)
    y = np.arange(400) % 2
    f = rng.normal(0, 0.5, (400, d)) + np.where(y[:, None] == 1, 2.0, -2.0) * n_true + 0.7
    assert np.all(((f - 0.7) @ n_true > 0) == (y == 1))  # separable by the true hyperplane
    fit = gan_tools.fit_linear_direction(f, y, steps=500, lr=0.05, l2=1e-3)
    assert float(fit.accuracy) == 1.0
    assert float(fit.normal @ n_true) > 0.95
    assert float(jnp.linalg.norm(fit.normal)) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(fit.prob(f), jax.nn.sigmoid(f @ fit.w + fit.b), rtol=1e-5)


def test_edit_latents_moves_exactly_along_the_normal():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 5)).astype(np.float32)
    n = rng.normal(size=5).astype(np.float32)
    n /= np.linalg.norm(n)
    ts = np.linspace(0.0, 4.0, 9)
    zs = np.asarray(gan_tools.edit_latents(z, n, ts))
    assert zs.shape == (3, 9, 5)
    np.testing.assert_allclose(zs, z[:, None] + ts[None, :, None] * n, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose((zs - z[:, None]) @ n, np.broadcast_to(ts, (3, 9)), atol=1e-5)
    ortho = (zs - z[:, None]) - ((zs - z[:, None]) @ n)[..., None] * n
    np.testing.assert_allclose(ortho, 0.0, atol=1e-5)
    # z + t n lands on the hyperplane at t = hyperplane_crossing
    fit = gan_tools.LinearFit(jnp.asarray(3.0 * n), jnp.asarray(0.4), jnp.asarray(1.0))
    t0 = gan_tools.hyperplane_crossing(fit, z)
    on = z + np.asarray(t0)[:, None] * n
    np.testing.assert_allclose(fit.logits(on), 0.0, atol=1e-5)


def _striped(n, rng):
    """8x8 images, labels 0..9: footwear (5, 7, 9) bright at the bottom, the rest on top."""
    y = np.arange(n) % 10
    x = rng.integers(0, 80, (n, 8, 8, 1))
    foot = np.isin(y, gan_tools.ATTRIBUTES["footwear"])
    x[foot, 4:] += 150
    x[~foot, :4] += 150
    return x.astype(np.uint8), y


def test_pixel_attribute_classifier_on_labelled_images():
    from jaxgen.kernel import transforms
    rng = np.random.default_rng(0)
    (xtr, ytr), (xte, yte) = _striped(200, rng), _striped(100, rng)
    pre = functools.partial(transforms.preprocess, "images", rng=None, dequantize=False)
    clf = gan_tools.attribute_classifier(pre(xtr), ytr, pre(xte), yte)
    assert clf.positive == (5, 7, 9) and clf.test_accuracy == 1.0 and clf.train_accuracy == 1.0
    p = np.asarray(clf.prob(pre(xte)))
    assert np.all((p > 0.5) == np.isin(yte, (5, 7, 9)))
    with pytest.raises(ValueError, match="no examples"):
        gan_tools.attribute_classifier(pre(xtr), ytr, pre(xte), yte, positive=(12,))
    assert gan_tools.attribute_classes("9, 5,7") == (5, 7, 9)
    with pytest.raises(ValueError, match="unknown attribute"):
        gan_tools.attribute_classes("shoes")


# ------------------------------------------------------------------- the CLI
def test_cli_inverts_and_edits_a_tiny_dcgan(tmp_path, capsys):
    from jaxgen import cli
    rng = np.random.default_rng(0)
    for name, n in (("train", 64), ("test", 32)):
        x, y = _striped(n, rng)
        np.savez(tmp_path / f"{name}.npz", x=x, label=y)
    wd = tmp_path / "run"
    assert cli.main([
        "train", "--config", str(ROOT / "configs" / "gan" / "dcgan_fashion_mnist.py"),
        "--workdir", str(wd), "--config.data.name=array",
        f"--config.data.path={tmp_path / 'train.npz'}",
        f"--config.data.eval_path={tmp_path / 'test.npz'}", "--config.train.steps=2",
        "--config.train.batch_size=16", "--config.train.log_every=1",
        "--config.train.checkpoint_every=2", "--config.train.progress=false",
        "--config.train.sample_every=0", "--config.train.pictures=false",
        "--config.model.g_channels=8",
        "--config.model.d_channels=8", "--config.model.latent_dim=4",
        "--config.eval.num_examples=16", "--config.eval.batch_size=16"]) == 0, \
        capsys.readouterr().err
    capsys.readouterr()

    # invert
    inv = ["invert", "--workdir", str(wd), "--num", "4", "--steps", "20", "--restarts", "2"]
    assert cli.main(inv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "real: nearest of 1000 samples mse" in out
    r = json.loads((wd / "inversion" / "inversion.json").read_text())
    g, real = r["generated"], r["real"]
    nums = [g["reconstruction_mse"], g["latent_error"], g["mse_vs_noise_free"],
            real["reconstruction_mse"], real["nearest_sample_mse"]]
    assert all(math.isfinite(v) and v >= 0 for v in nums), r
    assert len(g["reconstruction_mse_per_example"]) == 4 and len(real["test_indices"]) == 4
    assert 0 <= real["beats_nearest_fraction"] <= 1 and r["latent_dim"] == 4
    for p in ("inversion_generated.png", "inversion_real.png"):
        assert (wd / "inversion" / p).stat().st_size > 0
    assert cli.main(inv) == 2 and "exists" in capsys.readouterr().err  # no overwrite

    # edit: the pixel classifier learns the stripes; the strip's probability rises
    assert cli.main(["edit", "--workdir", str(wd), "--num", "3", "--n-latents", "200"]) == 0, \
        capsys.readouterr().err
    out = capsys.readouterr().out
    assert "pixel classifier for footwear" in out and "t = 0" in out
    e = json.loads((wd / "edit" / "edit.json").read_text())
    assert e["classes"] == [5, 7, 9] and e["classifier_test_accuracy"] == 1.0
    assert len(e["t"]) == 9 and e["t"][0] == 0 and e["rows"] == 3
    assert e["t_max"] == pytest.approx(2 * max(e["crossing_t_rows"]))
    assert all(0 <= p <= 1 for p in e["mean_prob_rows"] + e["mean_prob_all"])
    assert e["mean_prob_all"][-1] > e["mean_prob_all"][0]
    assert (wd / "edit" / "edit.png").stat().st_size > 0

    # the truncation trick through jaxgen sample
    assert cli.main(["sample", "--workdir", str(wd), "--num", "8", "--truncation", "0.5",
                     "--out", str(tmp_path / "t.npz")]) == 0
    assert np.load(tmp_path / "t.npz")["x"].shape == (8, 8, 8, 1)
    capsys.readouterr()


def test_cli_invert_and_edit_refuse_a_run_without_a_generator(tmp_path, capsys):
    from jaxgen import cli
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo, write_run_info
    wd = tmp_path / "fm"
    wd.mkdir()
    (wd / "config.json").write_text(config_lib.to_json(config_lib.load_config(TOY_CONFIG,
                                                                              TINY_TOY)))
    write_run_info(wd, DatasetInfo("8gaussians", "points", (2,)), {})
    for cmd in ("invert", "edit"):
        assert cli.main([cmd, "--workdir", str(wd)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("jaxgen: error: objective flow_matching has no generator; "
                              f"jaxgen {cmd} works on GAN runs (objective.name=gan)"), err
