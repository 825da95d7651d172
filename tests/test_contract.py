"""The objective contract (`jaxgen.kernel.contract`), checked on every registered objective.

Each objective runs, on the tiny shapes of the golden traces, through init -> one train
step -> sample -> every likelihood it offers -> its held-out statistics, autoencoder and
coder where it has them; every check is on a typed field of `Objective`. The declared
settings of every registered objective are frozen dataclasses whose every field has a
default and a one-line doc.
"""

from __future__ import annotations

import dataclasses
import re

import jax
import numpy as np
import pytest
from test_golden import CASES, ROOT, _batches, golden_run, group


def _classifier_config():
    """The feature classifier's own trainer config (jaxgen.eval.classifier), tiny."""
    from jaxgen.eval import classifier
    return classifier._train_config(ROOT / "unused.npz", steps=1, batch_size=8, seed=0,
                                    lr=2e-3, arch={"widths": (4,), "feature_dim": 8},
                                    progress=False)


# case -> (config, data kind, event shape, num_classes): the golden runs, and the objectives
# registered outside the families (the feature classifier)
def _cases() -> dict:
    from jaxgen.kernel import config as config_lib
    out = {name: (lambda c=c: config_lib.load_config(ROOT / "configs" / c[0], c[1]),
                  c[2], c[3], c[4]) for name, c in CASES.items()}
    out["classifier"] = (_classifier_config, "images", (8, 8, 1), 10)
    return out


CONTRACT_CASES = _cases()


def test_every_registered_objective_has_a_contract_case():
    from jaxgen.kernel import registry
    names = {make()["objective"]["name"] for make, *_ in CONTRACT_CASES.values()}
    assert set(registry.objective_names()) <= names


def test_declared_settings_are_frozen_with_a_default_and_a_doc():
    from jaxgen.kernel import registry, settings
    from jaxgen.kernel.config import GROUPS
    schemas = list(GROUPS.values())
    for spec in registry.objective_specs():
        schemas += [spec.settings, spec.sample, spec.eval]
    schemas += [spec.settings for spec in registry.dataset_specs()]
    for schema in schemas:
        assert dataclasses.is_dataclass(schema) and schema.__dataclass_params__.frozen, schema
        for name, default, _, doc in settings.describe(schema):
            assert default is not dataclasses.MISSING, (schema, name)
            assert doc and "\n" not in doc, (schema, name)
        schema()  # the defaults alone are valid


def test_every_numeric_setting_has_a_range_check():
    """Every int / float setting declares the values it may take (a check or choices), so a
    negative step count or a decay of 1.5 is one ConfigError, not a silent run."""
    import typing

    from jaxgen.kernel import registry, settings
    from jaxgen.kernel.config import GROUPS
    schemas = set(GROUPS.values())
    for spec in registry.objective_specs():
        schemas |= {spec.settings, spec.sample, spec.eval}
    schemas |= {spec.settings for spec in registry.dataset_specs()}
    unchecked = []
    for schema in schemas:
        hints = typing.get_type_hints(schema)
        for f in dataclasses.fields(schema):
            inner, _ = settings._optional(hints[f.name])
            if inner in (int, float) and not (f.metadata.get(settings._CHECK)
                                              or f.metadata.get(settings._CHOICES)):
                unchecked.append(f"{schema.__name__}.{f.name}")
    assert not unchecked, unchecked


@pytest.mark.parametrize("override, fragment", [
    ("model.features=(32, 0)", "model.features must hold widths >= 1"),
    ("model.time_dim=0", "model.time_dim must be >= 1"),
    ("data.seed=-1", "data.seed must be >= 0"),
])
def test_model_and_data_numbers_are_range_checked(override, fragment):
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel.errors import ConfigError
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        config_lib.load_config("flow_matching/toy2d", [override])


@pytest.mark.parametrize("case", [pytest.param(c, marks=group(c))
                                  for c in sorted(CONTRACT_CASES)])
def test_objective_contract(case):
    from jaxgen.kernel import transforms
    from jaxgen.kernel.contract import Autoencoder, FamilyTools, Likelihood, Objective
    from jaxgen.kernel.errors import UserError
    from jaxgen.runner import distributed
    from jaxgen.runner.experiment import DatasetInfo, Experiment

    make, kind, shape, num_classes = CONTRACT_CASES[case]
    raw = _batches(kind, shape, num_classes, make()["train"]["batch_size"], 1)[0]
    if case in CASES:  # the golden run (its init and steps), continued here
        exp, before, state, metrics = golden_run(case)
        metrics = metrics[-1]
    else:
        exp = Experiment(make(), DatasetInfo("array", kind, tuple(shape), num_classes))
        bs = exp.config.train.batch_size
        state = exp.init_state(distributed.to_global(raw, exp.mesh, bs))
        before = jax.tree.map(np.asarray, state.params)
        state, metrics = exp.train_step()(state, distributed.to_global(raw, exp.mesh, bs))
        metrics = distributed.to_host(metrics)
    obj = exp.objective
    assert isinstance(obj, Objective) and obj.players
    assert obj.tools is None or isinstance(obj.tools, FamilyTools)
    bs = exp.config.train.batch_size
    # init -> train steps: finite scalar metrics, and every player's params move
    assert all(np.ndim(v) == 0 and np.isfinite(v) for v in metrics.values()), metrics
    for p in obj.players:
        moved = jax.tree.map(lambda a, b: np.any(a != np.asarray(b)), before[p.name],
                             state.params[p.name])
        assert any(jax.tree.leaves(moved)), p.name
    params = state.ema_params
    key = jax.random.key(3)

    # sampling: data-space samples of the data's shape, or a clear error
    if obj.sample is not None:
        x = exp.sample(params, key, 8)
        assert x.shape == (8, *shape)
        assert x.dtype == (np.uint8 if kind == "images" else np.float32)
    else:
        with pytest.raises(UserError, match="cannot sample"):
            exp.sample(params, key, 4)

    # every likelihood: per-example finite log p in nats
    for name, lik in obj.likelihoods.items():
        assert isinstance(lik, Likelihood)
        logp = exp.log_likelihood(params, raw["x"][:4], key, steps=2, name=name)
        assert logp.shape == (4,) and np.all(np.isfinite(logp)), (name, logp)

    # held-out statistics: per-example arrays, reduced on the host
    if obj.held_out_stats is not None:
        got = exp.held_out_stats_batch(params, raw["x"], key, raw.get("label"))
        assert all(np.shape(v)[0] == bs for v in got.values())
        assert isinstance(obj.held_out_stats.reduce(got), dict)

    x_model = transforms.preprocess(kind, raw["x"], None, dequantize=False)
    if obj.autoencoder is not None:  # x -> z -> x keeps the data's shape
        ae = obj.autoencoder
        assert isinstance(ae, Autoencoder)
        z = jax.jit(ae.encode)(params, x_model)
        assert z.shape == (bs, *ae.latent_shape)
        assert jax.jit(ae.decode)(params, z).shape == x_model.shape

    if obj.coder is not None:  # one coding step gives a distribution over the K symbols
        coder = obj.coder
        s = coder.to_symbols(raw["x"])
        assert s.shape == (bs, coder.dim)
        np.testing.assert_array_equal(coder.from_symbols(s), raw["x"])
        state0 = coder.init(2)
        _, logits = coder.step(params, state0, jax.numpy.zeros((2,), jax.numpy.int32), 0)
        assert logits.shape == (2, coder.num_bins)


# each family's builder takes a replacement loss: the loss changes, nothing else does
REPLACEABLE = {"flow_matching": "model", "flow_nll": "model", "ddpm": "model", "ncsn": "model",
               "vae": "model", "vqvae": "model", "vqvae2": "model", "autoregressive": "model",
               "pixelcnn": "model", "pix2pix": "generator", "cyclegan": "generators"}


@pytest.mark.parametrize("case", sorted(REPLACEABLE))
def test_a_replacement_loss_keeps_the_familys_sampler_and_likelihoods(case):
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import registry
    from jaxgen.runner.experiment import DatasetInfo
    config, overrides, kind, shape, num_classes, _ = CASES[case]
    cfg = config_lib.load_config(ROOT / "configs" / config, overrides)
    info = DatasetInfo("array", kind, tuple(shape), num_classes)
    model = registry.build_model(cfg.model, info)
    stock = registry.build_objective(cfg, model, info)
    player = REPLACEABLE[case]
    index = [p.name for p in stock.players].index(player)
    default = stock.players[index].loss.func  # the family's module-level loss

    def doubled(params, batch, rng, **kw):
        loss, metrics = default(params, batch, rng, **kw)
        return 2.0 * loss, {**metrics, "doubled": 2.0 * loss}

    hook = {player: doubled} if len(stock.players) > 1 else doubled
    new = registry.build_objective(cfg, model, info, loss=hook)
    replaced = new.players[index].loss
    assert replaced.func is doubled and replaced.keywords.keys() == \
        stock.players[index].loss.keywords.keys()  # called with the family's own pieces
    if kind == "points":  # the value, where it is cheap (MLPs, run op by op)
        from jaxgen.kernel import transforms
        raw = _batches(kind, shape, num_classes, cfg.train.batch_size, 1)[0]
        batch = {**raw, "x": transforms.preprocess(kind, raw["x"], jax.random.key(0),
                                                   dequantize=stock.dequantize)}
        params = stock.init(jax.random.key(1, impl="rbg"), batch)
        a, _ = stock.players[index].loss(params, batch, jax.random.key(2))
        b, m = replaced(params, batch, jax.random.key(2))
        np.testing.assert_allclose(b, 2.0 * a, rtol=1e-5)
        assert float(m["doubled"]) == pytest.approx(float(b))
    others = [i for i in range(len(stock.players)) if i != index]
    assert all(new.players[i].loss.func is stock.players[i].loss.func for i in others)
    assert list(new.likelihoods) == list(stock.likelihoods)
    for name, lik in new.likelihoods.items():
        assert lik.fn.func is stock.likelihoods[name].fn.func
    assert (new.sample is None) == (stock.sample is None)
    if new.sample is not None:
        assert new.sample.func is stock.sample.func
    assert new.pictures is stock.pictures and type(new.tools) is type(stock.tools)
