"""GAN family: the losses against the lecture's closed forms (optimal discriminator,
C(G) = 2·JSD − log 4, gradient penalty of a linear critic, saturating vs non-saturating
gradients), weight clipping and n_critic inside the one trainer, mode metrics."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, read_metrics

from jaxgen.eval.evaluate import read_eval
from jaxgen.eval.modes import mode_metrics
from jaxgen.families.gan import gan
from jaxgen.kernel.contract import microbatch


def _experiment(config_name, overrides, info=None):
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    cfg = config_lib.load_config(ROOT / "configs" / "gan" / config_name, overrides)
    return Experiment(cfg, info or DatasetInfo("ring8", "points", (2,)))


TINY_2D = ["model.g_features=(32, 32)", "model.d_features=(32, 32)"]


# ------------------------------------------------------------------ the losses
def test_gradient_penalty_of_a_linear_critic_is_norm_w_minus_one_squared():
    rng = np.random.default_rng(0)
    for trial in range(5):
        d = int(rng.integers(2, 9))
        w = jnp.asarray(rng.normal(size=d) * rng.uniform(0.1, 3.0), jnp.float32)
        real = jnp.asarray(rng.normal(size=(16, d)), jnp.float32)
        fake = jnp.asarray(rng.normal(size=(16, d)) + 3.0, jnp.float32)
        pen, norms = gan.gradient_penalty(lambda x: x @ w + 0.7, real, fake,
                                          jax.random.key(trial))
        want = (float(jnp.linalg.norm(w)) - 1.0) ** 2
        np.testing.assert_allclose(pen, np.full(16, want), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(norms, np.full(16, float(jnp.linalg.norm(w))), rtol=1e-5)


def test_interpolation_draws_alpha_per_example_and_the_norm_is_per_example():
    real = jnp.zeros((64, 3, 2, 1))
    fake = jnp.ones((64, 3, 2, 1))
    x_hat, eps = gan.interpolate(real, fake, jax.random.key(0))
    assert eps.shape == (64,) and len(np.unique(np.asarray(eps))) == 64
    assert float(eps.min()) >= 0.0 and float(eps.max()) <= 1.0
    # x̂_i = ε_i x_i + (1 − ε_i) x̃_i: each example on its own segment, constant within it
    np.testing.assert_allclose(x_hat, jnp.broadcast_to((1.0 - eps)[:, None, None, None],
                                                       x_hat.shape), rtol=1e-6)
    # a critic whose slope differs per example: the penalty sees each example's own norm
    scale = jnp.arange(1.0, 65.0)
    pen, norms = gan.gradient_penalty(
        lambda x: scale * jnp.sum(x.reshape(64, -1), -1), real, fake, jax.random.key(1))
    np.testing.assert_allclose(norms, scale * math.sqrt(6.0), rtol=1e-5)
    np.testing.assert_allclose(pen, (scale * math.sqrt(6.0) - 1.0) ** 2, rtol=1e-5)


def test_saturating_and_non_saturating_generator_gradients_as_the_lecture_says():
    """d/dl of E log(1 − σ(l)) is −σ(l): it vanishes when D(G(z)) -> 0 (an early,
    bad generator); −log σ(l) has −(1 − σ(l)), largest exactly there."""
    logits = jnp.asarray(np.random.default_rng(0).normal(0, 6, 200), jnp.float32)
    g_sat = jax.vmap(jax.grad(lambda l: gan.g_loss_saturating(l[None])))(logits)
    g_ns = jax.vmap(jax.grad(lambda l: gan.g_loss_nonsaturating(l[None])))(logits)
    np.testing.assert_allclose(g_sat, -jax.nn.sigmoid(logits), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g_ns, -jax.nn.sigmoid(-logits), rtol=1e-5, atol=1e-7)
    assert np.all(g_sat < 0) and np.all(g_ns < 0)  # both push D(G(z)) up
    low = jnp.asarray([-12.0, -8.0])  # D(G(z)) ~ 6e-6, 3e-4
    sat = np.abs(jax.vmap(jax.grad(lambda l: gan.g_loss_saturating(l[None])))(low))
    ns = np.abs(jax.vmap(jax.grad(lambda l: gan.g_loss_nonsaturating(l[None])))(low))
    assert np.all(sat < 1e-3) and np.all(ns > 0.999)
    high = jnp.asarray([8.0])  # D(G(z)) -> 1: the roles swap
    assert abs(float(jax.grad(lambda l: gan.g_loss_saturating(l))(high)[0])) > 0.999
    assert abs(float(jax.grad(lambda l: gan.g_loss_nonsaturating(l))(high)[0])) < 1e-3


def test_style_ambiguity_is_smallest_at_the_uniform_class_posterior():
    k = 10
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(0, 2, (500, k)), jnp.float32)
    at_uniform = float(gan.style_ambiguity(jnp.zeros((1, k)))[0])
    want = -(math.log(1 / k) + (k - 1) * math.log(1 - 1 / k))  # K terms at p_k = 1/K
    assert at_uniform == pytest.approx(want, rel=1e-5)
    assert np.all(np.asarray(gan.style_ambiguity(logits)) > at_uniform)
    assert float(gan.entropy(jnp.zeros((1, k)))[0]) == pytest.approx(math.log(k), rel=1e-6)


# ---------------------------------------------- the optimal discriminator, C(G)
def _mixture_density(modes, std):
    def p(x):
        d2 = np.sum((x[:, None, :] - modes[None]) ** 2, -1)
        return np.mean(np.exp(-d2 / (2 * std**2)), 1) / (2 * np.pi * std**2)
    return p


def _gauss_density(mu, s):
    return lambda x: np.exp(-np.sum((x - mu) ** 2, -1) / (2 * s**2)) / (2 * np.pi * s**2)


def test_value_at_the_optimal_discriminator_is_2_jsd_minus_log_4():
    """V(G, D*) by Monte Carlo from both distributions' samples equals 2·JSD(p_data, p_g) −
    log 4 by quadrature on a grid: two independent computations of the lecture's identity."""
    angles = 2 * np.pi * np.arange(4) / 4
    modes = 1.5 * np.stack([np.cos(angles), np.sin(angles)], 1)
    p_data, p_g = _mixture_density(modes, 0.4), _gauss_density(np.array([0.5, 0.0]), 1.2)
    rng = np.random.default_rng(0)
    n = 400_000
    xd = modes[rng.integers(0, 4, n)] + 0.4 * rng.normal(size=(n, 2))
    xg = np.array([0.5, 0.0]) + 1.2 * rng.normal(size=(n, 2))
    d_star = lambda x: gan.optimal_discriminator(p_data(x), p_g(x))  # noqa: E731
    value_mc = np.mean(np.log(d_star(xd))) + np.mean(np.log1p(-d_star(xg)))
    g = np.linspace(-7, 7, 701)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    area = (g[1] - g[0]) ** 2
    pd, pg = p_data(grid) * area, p_g(grid) * area
    assert pd.sum() == pytest.approx(1.0, abs=1e-4) and pg.sum() == pytest.approx(1.0, abs=1e-4)
    jsd = float(gan.jsd(jnp.asarray(pd / pd.sum()), jnp.asarray(pg / pg.sum())))
    assert 0.05 < jsd < math.log(2)
    assert value_mc == pytest.approx(2 * jsd - math.log(4), abs=3e-3)
    # and the identity fails for another D: D = 1/2 gives exactly −log 4 < V(D*)
    assert value_mc > -math.log(4) + 0.1


def test_trained_discriminator_approaches_the_optimal_one_with_the_generator_held_fixed():
    """The one trainer, generator learning rate 0: D's minimax loss drives D(x) toward
    p_data / (p_data + p_g), checked where the two densities have their mass."""
    exp = _experiment("minimax_toy2d.py", [
        "model.g_features=()", "model.d_features=(64, 64, 64)",
        "optim.learning_rate=3e-3", "optim.b1=0.9", "optim.players.generator.learning_rate=0.0",
        "data.name=8gaussians", "train.steps=1500"])
    state = exp.init_state({"x": np.zeros((512, 2), np.float32)})
    mu, s = np.array([0.3, -0.2], np.float32), 2.0
    # a linear generator G(z) = s z + mu: p_g = N(mu, s² I), in closed form
    params = dict(state.params)
    params["generator"] = jax.tree.map(jnp.zeros_like, params["generator"])
    params["generator"]["out"] = {"kernel": s * jnp.eye(2), "bias": jnp.asarray(mu)}
    state = state.replace(params=params)
    step = exp.train_step()
    from jaxgen.data.toy2d import get_toy
    toy = get_toy("8gaussians")
    rng = np.random.default_rng(0)
    for _ in range(1500):
        state, m = step(state, {"x": toy.sample(rng, 512)})
    np.testing.assert_allclose(state.params["generator"]["out"]["kernel"], s * np.eye(2))
    xs = np.concatenate([toy.sample(rng, 4000), mu + s * rng.normal(size=(4000, 2))])
    p_data = np.exp(toy.log_prob(xs))
    p_g = _gauss_density(mu, s)(xs)
    d_star = p_data / (p_data + p_g)
    d = np.asarray(jax.nn.sigmoid(exp.objective.tools.discriminate(state.params, xs)[0]))
    err = np.abs(d - d_star)
    assert np.mean(err) < 0.04, np.mean(err)
    assert np.corrcoef(d, d_star)[0, 1] > 0.97
    # its value approaches max_D V = 2 JSD − log 4 from below
    v_star = np.mean(np.log(d_star[:4000])) + np.mean(np.log1p(-d_star[4000:]))
    v = np.mean(np.log(d[:4000])) + np.mean(np.log1p(-d[4000:]))
    assert v_star - 0.03 < v < v_star + 0.01, (v, v_star)


# ---------------------------------------------------------- inside the trainer
def test_weight_clipping_bounds_every_critic_weight_after_every_update():
    exp = _experiment("wgan_toy2d.py", TINY_2D + ["objective.clip=0.05",
                                                  "optim.learning_rate=0.05"])
    state = exp.init_state({"x": np.zeros((320, 2), np.float32)})
    step = exp.train_step()
    rng = np.random.default_rng(0)
    for _ in range(3):
        leaves = jax.tree.leaves(state.params["discriminator"])
        assert all(float(jnp.max(jnp.abs(w))) <= 0.05 + 1e-7 for w in leaves)
        state, m = step(state, {"x": rng.normal(size=(320, 2)).astype(np.float32) + 2})
    leaves = jax.tree.leaves(state.params["discriminator"])
    assert all(float(jnp.max(jnp.abs(w))) <= 0.05 + 1e-7 for w in leaves)
    assert sum(int(jnp.sum(jnp.abs(w) >= 0.05 - 1e-7)) for w in leaves) > 20  # it binds
    assert any(float(jnp.max(jnp.abs(w))) > 0.05 for w in
               jax.tree.leaves(state.params["generator"]))  # only the critic is clipped


def test_n_critic_updates_each_on_its_own_part_of_the_batch():
    exp = _experiment("wgan_gp_toy2d.py", TINY_2D)
    assert [(p.name, p.updates_per_step, p.split_batch) for p in exp.objective.players] == [
        ("discriminator", 5, True), ("generator", 1, False)]
    batch = {"x": jnp.arange(20.0).reshape(10, 2), "label": jnp.arange(10)}
    parts = [microbatch(batch, j, 5) for j in range(5)]
    np.testing.assert_array_equal(np.sort(np.concatenate([p["label"] for p in parts])),
                                  np.arange(10))
    np.testing.assert_array_equal(parts[1]["label"], [1, 6])
    np.testing.assert_array_equal(parts[1]["x"], [[2, 3], [12, 13]])
    with pytest.raises(ValueError, match="multiple of 5"):
        microbatch({"x": jnp.zeros((7, 2))}, 0, 5)
    state = exp.init_state({"x": np.zeros((320, 2), np.float32)})
    state, m = exp.train_step()(state, {"x": np.random.default_rng(0).normal(
        size=(320, 2)).astype(np.float32)})
    # Adam's step counters: 5 critic updates, 1 generator update
    counts = {k: [int(c) for c in jax.tree.leaves(v) if jnp.ndim(c) == 0 and
                  jnp.issubdtype(c.dtype, jnp.integer)] for k, v in state.opt_state.items()}
    assert set(counts["discriminator"]) == {5} and set(counts["generator"]) == {1}
    assert {"discriminator/grad_penalty", "discriminator/w_estimate",
            "generator/d_fake"} <= set(m)


def test_bad_gan_configs_say_what_to_set():
    with pytest.raises(ValueError, match="objective.loss must be one of"):
        _experiment("ns_toy2d.py", ["objective.loss=wgan-gp"])
    with pytest.raises(ValueError, match="class_head"):
        _experiment("ns_toy2d.py", ["objective.style_weight=1.0"])
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    cfg = config_lib.load_config(ROOT / "configs" / "gan" / "ns_toy2d.py", [])
    with cfg.model.unlocked():
        cfg.model.num_classes = 3
    with pytest.raises(ValueError, match="labelled data"):
        Experiment(cfg, DatasetInfo("ring8", "points", (2,)))


# ------------------------------------------------------------------- modes
def test_mode_metrics_on_hand_made_sample_sets():
    modes = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    perfect = np.repeat(modes, 25, 0) + 0.01 * np.random.default_rng(0).normal(size=(100, 2))
    m = mode_metrics(perfect, modes, std=0.05)
    assert (m["modes_covered"], m["high_quality_pct"]) == (4, 100.0)
    assert m["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    collapsed = np.zeros((50, 2))
    m = mode_metrics(collapsed, modes, std=0.05)
    assert m["modes_covered"] == 1 and m["reverse_kl"] == pytest.approx(math.log(4))
    # half the samples between modes (1.0 away: > 3σ): half high quality, two modes
    mixed = np.concatenate([np.repeat(modes[:2], 10, 0), np.full((20, 2), 1.0)])
    m = mode_metrics(mixed, modes, std=0.05)
    assert m["high_quality_pct"] == 50.0 and m["modes_covered"] == 2
    assert m["reverse_kl"] == pytest.approx(math.log(2))  # p̂ = (1/2, 1/2, 0, 0) vs 1/4
    m = mode_metrics(np.full((5, 2), np.nan), modes, std=0.05)
    assert m["modes_covered"] == 0 and m["high_quality_pct"] == 0.0


# ------------------------------------------------------------------- the CLI
# the WGAN-GP config only (n_critic, penalty): the minimax game runs through the trainer in
# the D* test above, and ns_toy2d.py is loaded by the bad-config cases below
@pytest.mark.parametrize("config", ["wgan_gp_toy2d.py"])
def test_cli_trains_a_2d_gan_and_eval_reports_mode_metrics(tmp_path, capsys, config):
    from jaxgen import cli
    wd = tmp_path / "run"
    args = ["train", "--config", str(ROOT / "configs" / "gan" / config), "--workdir", str(wd),
            "--config.train.steps=4", "--config.train.log_every=2", "--config.train.batch_size=20",
            "--config.train.checkpoint_every=4", "--config.train.progress=false",
            "--config.data.num_train=400", "--config.data.num_eval=200",
            "--config.eval.mmd_num=200", "--config.eval.mode_samples=300",
            *[f"--config.{o}" for o in TINY_2D]]
    assert cli.main(args) == 0, capsys.readouterr().err
    m = read_metrics(wd)
    assert [r["step"] for r in m] == [2, 4]
    assert all(np.isfinite(r["discriminator/loss"]) and np.isfinite(r["generator/loss"])
               for r in m)
    assert (wd / "samples" / "discriminator.png").stat().st_size > 0
    assert cli.main(["eval", "--workdir", str(wd)]) == 0
    ev = read_eval(wd)
    assert ev["likelihood"] == "none" and ev["num_modes"] == 8 and ev["mode_samples"] == 300
    assert 0 <= ev["modes_covered"] <= 8 and 0 <= ev["high_quality_pct"] <= 100


def test_class_entropy_judge_separates_blobs_and_measures_ambiguity():
    from jaxgen.eval import class_entropy as ce
    rng = np.random.default_rng(0)
    centers = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    y = rng.integers(0, 3, 600)
    x = centers[y] + 0.5 * rng.normal(size=(600, 2))
    judge = ce.fit_softmax_regression(x, y, 3, steps=300, lr=0.1)
    acc = np.mean(np.argmax(np.asarray(ce.log_posterior(judge, x)), -1) == y)
    assert acc > 0.99
    confident = ce.ambiguity(judge, centers)
    between = ce.ambiguity(judge, np.zeros((5, 2)) + [0.0, 0.9])  # between the three blobs
    assert confident["entropy_nats"] < 0.2 and confident["ambiguous_pct"] == 0.0
    assert between["entropy_nats"] > 0.6


def test_mode_table_averages_seeds_and_prints_the_published_row(tmp_path):
    from jaxgen.reproduce.mode_collapse import summarize
    def record(cov, hq, **kw):
        return json.dumps({"modes_covered": cov, "num_modes": 8, "high_quality_pct": hq,
                           "reverse_kl": 0.1, **kw})

    for seed, (cov, hq) in enumerate([(8, 90.0), (6, 80.0)]):
        d = tmp_path / "ring8" / "ns" / f"seed{seed}"
        (d / "eval").mkdir(parents=True)
        # each run's newest test evaluation counts: not the train split, not an earlier step
        (d / "eval" / "test_step0000100.json").write_text(record(cov, hq, split="test", step=100))
        (d / "eval" / "test_step0000050.json").write_text(record(0, 0.0, split="test", step=50))
        (d / "eval" / "train_step0000100.json").write_text(record(0, 0.0, split="train", step=100))
    legacy = tmp_path / "ring8" / "ns" / "seed2"  # a run from before eval/: its eval.json
    legacy.mkdir()
    (legacy / "eval.json").write_text(record(7, 85.0, split="test", step=100))
    (tmp_path / "ring8" / "ns" / "seed3").mkdir()  # not evaluated yet: left out
    table = summarize(tmp_path)
    assert "| ring8 | ns | 3 | 7.00 ± 0.58 / 8 | 85.00 ± 2.89 | 0.10 ± 0.00 |" in table
    assert "6.3 (published)" in table


# --------------------------------------------------------------- the loss table
def test_the_loss_table_names_every_game_and_lsgan_reads_like_the_paper():
    from jaxgen.families.gan.config import LOSS_NAMES
    assert tuple(gan.LOSSES) == LOSS_NAMES
    assert {n: g.output for n, g in gan.LOSSES.items()} == {
        "minimax": "logit", "ns": "logit", "wgan": "critic", "wgan_gp": "critic",
        "hinge": "score", "lsgan": "score"}
    ls = gan.LOSSES["lsgan"]
    real, fake = jnp.asarray([0.3, 1.7]), jnp.asarray([-0.4, 0.9])
    np.testing.assert_allclose(ls.d(real, fake),
                               0.5 * np.mean((np.asarray(real) - 1) ** 2)
                               + 0.5 * np.mean(np.asarray(fake) ** 2), rtol=1e-6)
    np.testing.assert_allclose(ls.g(None, fake), 0.5 * np.mean((np.asarray(fake) - 1) ** 2),
                               rtol=1e-6)
    # LSGAN's optimal D for densities p (real), q (fake) is p / (p + q) (Mao et al., eq. 4
    # with a = 0, b = 1): the pointwise minimiser of p (D − 1)² + q D²
    p, q = jnp.asarray(0.7), jnp.asarray(0.2)
    grid = jnp.linspace(-1, 2, 30001)
    best = grid[jnp.argmin(p * (grid - 1) ** 2 + q * grid**2)]
    np.testing.assert_allclose(best, p / (p + q), atol=1e-4)


def test_an_lsgan_step_trains_and_reports_raw_scores():
    exp = _experiment("ns_toy2d.py", TINY_2D + ["objective.loss=lsgan", "train.batch_size=32"])
    obj = exp.objective
    assert obj.tools.game is gan.LOSSES["lsgan"] and obj.tools.game.label == "D score s(x)"
    x = jax.random.normal(jax.random.key(0), (32, 2))
    params = obj.init(jax.random.key(1), {"x": x})
    loss, m = obj.players[0].loss(params, {"x": x}, jax.random.key(2))
    out_real, _ = obj.tools.discriminate(params, x)
    assert np.isfinite(float(loss)) and float(m["d_real"]) == pytest.approx(
        float(jnp.mean(out_real)), rel=1e-6)  # raw scores, no sigmoid
