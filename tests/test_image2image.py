"""Image-to-image translation: pix2pix's tasks and losses, CycleGAN's masks and cycle,
the players' separation in the trainer, and end-to-end CLI runs (tiny nets, 8x8 images)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    ROOT,
    cli_in_one_process,
    fast_compile,
    load_final_state,
    read_metrics,
)

from jaxgen.eval.evaluate import read_eval
from jaxgen.families.gan import cyclegan, pix2pix

PIX2PIX = ROOT / "configs" / "gan" / "pix2pix_fashion_mnist.py"
CYCLEGAN = ROOT / "configs" / "gan" / "cyclegan_fashion_mnist.py"
TINY = ["model.g_channels=4", "model.d_channels=4", "model.groups=2", "train.batch_size=8",
        "data.classes=()"]
SHAPE = (8, 8, 1)


def _info(num_classes=3, kind="images", shape=SHAPE):
    from jaxgen.runner.experiment import DatasetInfo
    return DatasetInfo("tiny", kind, shape, num_classes)


def _objective(path, overrides=(), info=None):
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import registry
    info = info or _info()
    cfg = config_lib.load_config(path, TINY + list(overrides))
    model = registry.build_model(cfg.model, info)
    return registry.build_objective(cfg, model, info)


def _images(n, seed=0):
    """Model-space bin centres of uniform random 8-bit 8x8 images."""
    x = np.random.default_rng(seed).integers(0, 256, (n, *SHAPE))
    return jnp.asarray(2 * (x + 0.5) / 256 - 1, jnp.float32)




@functools.lru_cache(maxsize=None)
def _init(path, overrides: tuple = ()):
    """(objective, params) with the trainer's "rbg" init key (quick to compile on CPU)."""
    obj = _objective(path, overrides)
    args = (jax.random.key(0, impl="rbg"), {"x": _images(8)})
    return obj, fast_compile(obj.init, *args)(*args)


# ---------------------------------------------------------------- pix2pix tasks
def test_edge_map_of_a_constant_image_has_no_edges_and_a_step_has_them_at_the_step():
    for value in (-1.0, 0.3, 1.0):  # border pixels are repeated: no frame at the border
        e = pix2pix.edge_map(jnp.full((2, 28, 28, 1), value))
        assert e.shape == (2, 28, 28, 1)
        np.testing.assert_array_equal(np.asarray(e), -1.0)
    x = jnp.where(jnp.arange(28)[None, None, :, None] < 14, -1.0, 1.0) * jnp.ones((1, 28, 1, 3))
    e = np.asarray(pix2pix.edge_map(x))  # a vertical step of 2 between columns 13 and 14
    assert e.shape == (1, 28, 28, 3) and set(np.unique(e)) == {-1.0, 1.0}
    assert np.all(e[:, :, 13:15] == 1.0) and np.all(e[:, :, :13] == -1.0)
    assert np.all(e[:, :, 15:] == -1.0)
    np.testing.assert_allclose(pix2pix.sobel_magnitude(x)[0, :, 13], 8.0)  # 4 x step height


def test_mask_image_zeroes_one_14x14_block_per_example_at_varying_places():
    x = jnp.full((16, 28, 28, 1), 0.5)
    out = np.asarray(pix2pix.mask_image(x, jax.random.key(3)))
    corners = set()
    for img in out[..., 0]:
        rows, cols = np.nonzero(img == 0.0)
        assert len(rows) == 14 * 14
        assert rows.max() - rows.min() == 13 and cols.max() - cols.min() == 13  # one square
        np.testing.assert_array_equal(img[img != 0.0], 0.5)  # the rest untouched
        corners.add((rows.min(), cols.min()))
    assert len(corners) > 8  # the position is drawn per example
    again = np.asarray(pix2pix.mask_image(x, jax.random.key(3)))
    np.testing.assert_array_equal(out, again)  # a pure function of (x, rng)
    with pytest.raises(ValueError, match="hole_size"):
        pix2pix.mask_image(jnp.zeros((1, 8, 8, 1)), jax.random.key(0))


def test_pix2pix_generator_gradient_is_adversarial_plus_lambda_times_l1():
    obj0, params = _init(PIX2PIX, ("objective.l1_weight=0.0",))
    obj5 = _objective(PIX2PIX, ["objective.l1_weight=5.0"])  # same model, other lambda
    l1_only = _objective(PIX2PIX, ["objective.l1_weight=5.0", "objective.adv_weight=0.0"])
    batch, rng = {"x": _images(8, seed=1)}, jax.random.key(1)
    g0, g5, g_l1 = (obj.players[1] for obj in (obj0, obj5, l1_only))
    assert g0.name == "generator" and obj0.players[0].name == "discriminator"

    translate, discriminate = obj0.tools.translate, obj0.tools.discriminate
    y = batch["x"]

    def losses(pg):  # [player loss at lambda 0, at lambda 5, adversarial term, L1 term]
        p = {**params, "generator": pg}
        x_in = pix2pix.edge_map(y)  # the "edges" task
        fake = translate(p, x_in)
        adv = jnp.mean(jax.nn.softplus(-discriminate(p, x_in, fake)))  # -E log D(x, G(x))
        l1 = jnp.mean(jnp.abs(y - fake))
        (l0, _), (l5, m5) = g0.loss(p, batch, rng), g5.loss(p, batch, rng)
        values = jnp.stack([l0, l5, adv, l1, g_l1.loss(p, batch, rng)[0]])
        return values, (values, m5)

    # the four gradients in one compiled reverse pass (a conv net compiles slowly on CPU)
    grads, (values, m5) = fast_compile(jax.jacrev(losses, has_aux=True),
                                   params["generator"])(params["generator"])
    flat = lambda i: np.concatenate([np.ravel(v[i]) for v in jax.tree.leaves(grads)])  # noqa: E731
    grad_0, grad_5, grad_adv, grad_l1, grad_l1_only = (flat(i) for i in range(5))
    np.testing.assert_allclose(grad_0, grad_adv, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grad_5 - grad_0, 5.0 * grad_l1, rtol=1e-4, atol=1e-6)
    # objective.adv_weight = 0: the L1 term alone (the ablation's "L1" row)
    np.testing.assert_allclose(grad_l1_only, 5.0 * grad_l1, rtol=1e-5, atol=1e-7)
    assert np.abs(grad_l1).max() > 0 and np.abs(grad_adv).max() > 0
    # the values too, and the reported terms are the NS adversarial loss and the L1
    l0, l5, adv, l1, l1_only = np.asarray(values)
    np.testing.assert_allclose([l0, l5, m5["adv"], m5["l1"], l1_only],
                               [adv, adv + 5 * l1, adv, l1, 5 * l1], rtol=1e-5)


def test_bad_pix2pix_and_cyclegan_configs_say_what_to_set():
    with pytest.raises(ValueError, match="objective.task must be one of edges, inpaint"):
        _objective(PIX2PIX, ["objective.task=colour"])
    with pytest.raises(ValueError, match=r"hole_size=14 must be in \[1, 8\]"):
        _objective(PIX2PIX, ["objective.task=inpaint"])
    with pytest.raises(ValueError, match="set them to two different classes"):
        _objective(CYCLEGAN, ["objective.class_x=1", "objective.class_y=1"])
    with pytest.raises(ValueError, match=r"leaves out class 0 or 1 .*\(0, 1\)"):
        _objective(CYCLEGAN, ["objective.class_x=0", "objective.class_y=1",
                              "data.classes=(1, 2)"])
    with pytest.raises(ValueError, match=r"objective.class_y=9 is not a class .* 0 \.\.\. 2"):
        _objective(CYCLEGAN, ["objective.class_x=0"])
    with pytest.raises(ValueError, match="has none: use labelled data"):
        _objective(CYCLEGAN, ["objective.class_x=0", "objective.class_y=1"],
                   info=_info(num_classes=None))
    with pytest.raises(ValueError, match="model.name=cyclegan"):
        _objective(CYCLEGAN, ["model.name=pix2pix_unet", "objective.class_x=0",
                              "objective.class_y=1"])
    with pytest.raises(ValueError, match="translates images"):
        _objective(PIX2PIX, [], info=_info(kind="points", shape=(2,)))


# ------------------------------------------------------------------- CycleGAN
def test_cycle_loss_is_zero_when_the_generators_invert_each_other():
    x = _images(6)
    mx, my = cyclegan.domain_masks(jnp.array([0, 1, 2, 0, 1, 2]), 0, 1)
    d = lambda v: jnp.mean(v, -1)[:, ::2, ::2]  # noqa: E731 - any patch "discriminator"
    ident = lambda v: v  # noqa: E731
    for g, f in ((ident, ident), (jnp.negative, jnp.negative)):  # F(G(x)) = x exactly
        loss, m = cyclegan.generator_loss(g, f, d, d, x, mx, my, cycle_weight=10.0)
        assert float(m["cycle_x"]) == 0.0 and float(m["cycle_y"]) == 0.0
        np.testing.assert_allclose(loss, m["adv_g"] + m["adv_f"], rtol=1e-6)
    # G shifts by 0.25, F is the identity: both cycles are off by exactly 0.25 per pixel;
    # the identity loss sees |G(y) - y| = 0.25 and |F(x) - x| = 0.
    loss, m = cyclegan.generator_loss(lambda v: v + 0.25, ident, d, d, x, mx, my,
                                      cycle_weight=10.0, identity_weight=2.0)
    np.testing.assert_allclose([m["cycle_x"], m["cycle_y"], m["identity_y"], m["identity_x"]],
                               [0.25, 0.25, 0.25, 0.0], atol=1e-6)
    np.testing.assert_allclose(loss, m["adv_g"] + m["adv_f"] + 10.0 * 0.5 + 2.0 * 0.25,
                               rtol=1e-5)
    # no row of either class: every term is 0, not NaN
    none = jnp.zeros((6,), bool)
    _, m = cyclegan.generator_loss(lambda v: v + 0.25, ident, d, d, x, none, none)
    assert all(float(v) == 0.0 for v in m.values())


def test_cyclegan_held_out_stats_with_labels_use_each_class_for_its_own_direction():
    obj = _objective(CYCLEGAN, ["objective.class_x=0", "objective.class_y=1"])
    out = obj.held_out_stats.reduce({
        "cycle_x": np.array([1.0, 2.0, 3.0]), "cycle_y": np.array([4.0, 5.0, 6.0]),
        "is_x": np.array([1.0, 0, 0]), "is_y": np.array([0, 1.0, 1.0])})
    assert out["cycle_x_l1"] == 1.0 and out["cycle_y_l1"] == 5.5
    assert out["cycle_x_count"] == 1 and out["cycle_y_count"] == 2
    assert out["cycle_images"] == "x: class 0, y: class 1"


def test_cyclegan_players_move_only_their_own_params_and_ignore_other_classes():
    """One trainer step of each player alone (the objective's loss, the trainer's
    per-player differentiation): it moves its own params and no other's, and rows of
    classes other than class_x / class_y change neither its loss nor its update."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner import step as step_lib
    from jaxgen.runner.experiment import Experiment
    cfg = config_lib.load_config(CYCLEGAN, TINY + ["objective.class_x=0", "objective.class_y=1"])
    exp = Experiment(cfg, _info())
    rng = np.random.default_rng(0)
    label = np.array([0, 1, 2, 2, 0, 1, 2, 1], np.int32)
    x = rng.integers(0, 256, (8, *SHAPE), dtype=np.uint8)
    other_x = rng.integers(0, 256, (8, *SHAPE), dtype=np.uint8)
    batches = {"data": x,
               "other classes perturbed": np.where((label == 2)[:, None, None, None], other_x, x),
               "class_x perturbed": np.where((label == 0)[:, None, None, None], other_x, x)}
    first = {"x": jnp.asarray(2 * (x + 0.5) / 256 - 1, jnp.float32), "label": label}
    init = functools.partial(step_lib.init_state, exp.objective, exp.txs, 0)
    state = fast_compile(init, first)(first)
    before = jax.device_get(state.params)
    names = [p.name for p in exp.objective.players]
    assert names == ["discriminators", "generators"]
    for player in exp.objective.players:
        obj = dataclasses.replace(exp.objective, players=(player,))
        one = fast_compile(step_lib.make_train_step(obj, exp.txs, "images", 0.0, dequantize=False),
                       state, {"x": x, "label": label})
        out = {k: jax.device_get(one(state, {"x": v, "label": label}))
               for k, v in batches.items()}
        new, m = out["data"]
        for name in names:
            moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before[name]),
                                                              jax.tree.leaves(new.params[name]))]
            if name == player.name:
                assert any(moved), (player.name, "did not move its own params")
            else:
                assert not any(moved), (player.name, "moved", name)
        new2, m2 = out["other classes perturbed"]
        assert {k: float(v) for k, v in m.items()} == {k: float(v) for k, v in m2.items()}
        for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(new2.params)):
            np.testing.assert_array_equal(a, b)  # the same update, bit for bit
        assert float(out["class_x perturbed"][1]["loss"]) != float(m["loss"])
        if player.name == "discriminators":
            assert float(m["n_x"]) == 2 and float(m["n_y"]) == 3


# ---------------------------------------------------------------- end to end
def _arrays(tmp_path, n_train=48, n_test=16):
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        np.savez(tmp_path / f"{name}.npz", x=rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8),
                 label=np.arange(n) % 3)


def _train_args(tmp_path, config, wd, *extra):
    return ["train", "--config", str(config), "--workdir", str(wd),
            "--config.data.name=array", f"--config.data.path={tmp_path / 'train.npz'}",
            f"--config.data.eval_path={tmp_path / 'test.npz'}", "--config.train.steps=3",
            "--config.train.batch_size=16", "--config.train.log_every=1",
            "--config.train.checkpoint_every=3", "--config.train.progress=false",
            "--config.eval.num_examples=16", "--config.eval.batch_size=16",
            "--config.model.g_channels=4", "--config.model.d_channels=4",
            "--config.model.groups=2", *extra]


# The CLI runs in one fresh process per test (one JAX start-up for all its commands) whose
def _jaxgen(*commands) -> tuple[list[int], str]:
    """Runs `jaxgen` commands one after another in one process: (return codes, stderr)."""
    codes, proc = cli_in_one_process(commands)
    return codes, proc.stderr


# minutes of CPU; the objective's contract and its players' updates run by default
@pytest.mark.heavy
def test_cli_pix2pix_trains_evaluates_and_draws_translations(tmp_path):
    from jaxgen.data import load_array_file
    _arrays(tmp_path)
    wd = tmp_path / "run"
    codes, err = _jaxgen(_train_args(tmp_path, PIX2PIX, wd), ["eval", "--workdir", wd])
    assert codes == [0, 0], err
    m = read_metrics(wd)
    assert [r["step"] for r in m] == [1, 2, 3]
    for r in m:
        assert 0 < r["discriminator/d_real"] < 1 and 0 < r["generator/d_fake"] < 1
        np.testing.assert_allclose(r["generator/loss"],
                                   r["generator/adv"] + 100.0 * r["generator/l1"], rtol=1e-4)
    assert not (wd / "samples" / "step_0000003.png").exists()  # no sample grid: cannot sample
    assert (wd / "samples" / "translations.png").stat().st_size > 0
    # 3 steps of 16 = one epoch of the 48 training images: the running mean is their mean
    state, _ = load_final_state(wd)
    train = load_array_file(tmp_path / "train.npz").x.astype(np.float32)
    train = 2 * (train + 0.5) / 256 - 1
    np.testing.assert_allclose(state.params["data_mean"]["mean"], train.mean(0), atol=1e-5)
    assert float(state.params["data_mean"]["count"]) == 48
    ev = read_eval(wd)
    test = load_array_file(tmp_path / "test.npz").x.astype(np.float32)
    test = 2 * (test + 0.5) / 256 - 1
    np.testing.assert_allclose(ev["baseline_l1"], np.mean(np.abs(test - train.mean(0))),
                               rtol=1e-5)
    assert 0 < ev["l1"] < 2 and ev["baseline"] == "the mean training image"
    assert ev["task"] == "edges" and ev["likelihood"] == "none"


# minutes of CPU; the objective's contract and its players' updates run by default
@pytest.mark.heavy
def test_cli_cyclegan_trains_evaluates_and_draws_translations(tmp_path):
    _arrays(tmp_path)
    wd = tmp_path / "run"
    codes, err = _jaxgen(
        _train_args(tmp_path, CYCLEGAN, wd, "--config.objective.class_x=0",
                    "--config.objective.class_y=2", "--config.data.classes=(0, 2)"),
        ["eval", "--workdir", wd],
        ["sample", "--workdir", wd, "--num", "4", "--out", tmp_path / "s.png"])
    assert codes == [0, 0, 2], err  # a translation model has no sampler: a clear error
    assert "cannot sample" in err
    m = read_metrics(wd)
    assert [r["step"] for r in m] == [1, 2, 3]
    for r in m:
        assert 1 <= r["discriminators/n_x"] and 1 <= r["discriminators/n_y"]
        assert r["discriminators/n_x"] + r["discriminators/n_y"] <= 16
        assert r["generators/cycle_x"] > 0 and r["generators/cycle_y"] > 0
        np.testing.assert_allclose(
            r["generators/loss"], r["generators/adv_g"] + r["generators/adv_f"]
            + 10.0 * (r["generators/cycle_x"] + r["generators/cycle_y"]), rtol=1e-4)
    assert (wd / "samples" / "translations.png").stat().st_size > 0
    ev = read_eval(wd)
    assert 0 < ev["cycle_x_l1"] < 2 and 0 < ev["cycle_y_l1"] < 2
    # eval passes the labels: test labels are i % 3, so 6 images of class 0 and 5 of class 2
    assert (ev["cycle_x_count"], ev["cycle_y_count"]) == (6, 5)
    assert ev["cycle_images"] == "x: class 0, y: class 2"


def test_the_run_summary_counts_the_players_params_not_the_state_beside_them():
    from jaxgen.runner.state import param_count
    obj, params = _init(PIX2PIX)
    state = params["data_mean"]["mean"].size + params["data_mean"]["count"].size
    assert state == 8 * 8 * 1 + 1
    assert param_count(params, obj.players) == param_count(params) - state
    assert param_count(params, obj.players) == sum(param_count(params[p.name])
                                                   for p in obj.players)
