"""Wiring shared by train, sample, eval and bench: config -> model, objective, mesh, jitted fns.

Nothing here is specific to an objective: the registry builds the model and
the objective, `jaxgen.runner.step` builds the one step.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.kernel import registry, transforms
from jaxgen.kernel.contract import DatasetInfo
from jaxgen.kernel.errors import MissingError, NonFiniteResultError, UserError
from jaxgen.kernel.settings import names as setting_names
from jaxgen.nn.precision import matmul_precision, with_compute_dtype
from jaxgen.runner import augment, distributed, sharding
from jaxgen.runner import step as step_lib
from jaxgen.runner.checkpoint import Checkpointer, checkpoint_dir
from jaxgen.runner.optim import make_optimizer

__all__ = ["DatasetInfo", "Experiment", "read_run_info", "run_data_info", "write_run_info",
           "xla_options"]


def write_run_info(workdir: Path, info: DatasetInfo, extra: dict) -> None:
    (Path(workdir) / "run.json").write_text(
        json.dumps({"data": info.to_json(), **extra}, indent=2))


def read_run_info(workdir: Path) -> DatasetInfo:
    path = Path(workdir) / "run.json"
    if not path.exists():
        raise MissingError(
            f"{workdir} holds no jaxgen run (no run.json). Train first: "
            f"jaxgen train --config CFG.py --workdir {workdir}")
    return DatasetInfo.from_json(json.loads(path.read_text())["data"])


def run_data_info(dataset, workdir: Path, measure: bool = False) -> DatasetInfo:
    """The info of `dataset` with the statistics of the run in `workdir`: measured once,
    when the run is first trained (`measure`, given the training split), then read from
    its run.json, so a resumed, evaluated or sampled run builds the same objective."""
    info = DatasetInfo.of(dataset)
    if (Path(workdir) / "run.json").exists():
        stored = read_run_info(workdir).stats
        if stored is not None:
            return dataclasses.replace(info, stats=stored)
    return DatasetInfo.of(dataset, stats=True) if measure else info


# jaxgen's XLA options for the train step of image models on CPU: YNNPACK for reductions
# (GroupNorm statistics, bias gradients, softmax) and single dots, Eigen for the
# convolutions (YNNPACK's kernel-gradient convolutions were the slower here); vector data
# keep XLA's defaults. Against YNNPACK off: DCGAN 0.89x, PixelCNN 0.85x, U-Net 0.99x (one
# interleaved run each). The timings are in docs/scale.md ("Speed: jaxgen vs PyTorch");
# `jaxgen bench --config.train.xla_options=none` measures XLA's defaults again.
CPU_IMAGE_TRAIN_XLA_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type":
                               "LIBRARY_FUSION_TYPE_REDUCE,LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def xla_options(spec: str, backend: str | None = None, kind: str | None = None) -> dict:
    """train.xla_options -> `jax.jit(compiler_options=...)`: "" gives jaxgen's defaults
    (CPU_IMAGE_TRAIN_XLA_OPTIONS for image data on CPU, else none), "none" XLA's own,
    else "key=value,..." parsed (an item without "=" after the first continues the value
    before it: a list-valued option, "key=A,B")."""
    spec = "none" if spec is None else str(spec).strip()  # the override parser reads none as None
    if spec.lower() == "none":
        return {}
    if not spec:
        return dict(CPU_IMAGE_TRAIN_XLA_OPTIONS) if (backend, kind) == ("cpu", "images") else {}
    out, key = {}, None
    for item in filter(None, (i.strip() for i in str(spec).split(","))):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            key = name.strip()
            out[key] = value.strip()
        elif not sep and key is not None:
            out[key] += "," + item
        else:
            raise UserError(f"train.xla_options: {item!r} is not key=value "
                             "(e.g. xla_cpu_experimental_ynn_fusion_type=).")
    return out


def _traced_with(fn, context):
    """`fn` traced inside `context` (e.g. the matmul precision, read when a function is
    traced), whenever jit traces it."""
    @functools.wraps(fn)
    def inside(*args, **kwargs):
        with context:
            return fn(*args, **kwargs)
    return inside


def _with_remat(model, policy: str, name: str):
    """`train.remat`: the model's blocks rematerialised with that policy (its `remat` field,
    `jaxgen.nn.remat`); a model without blocks to remat says so."""
    if policy == "none":
        return model
    fields = {f.name for f in dataclasses.fields(model)} if dataclasses.is_dataclass(model) \
        else set()
    if "remat" not in fields:
        raise UserError(f"train.remat={policy}: model {name} has no blocks to rematerialise; "
                        f"the models that do: {', '.join(registry.models_with_field('remat'))}. "
                        "Use --config.train.remat=none.")
    return model.clone(remat=policy)


class Experiment:
    """Model + objective + mesh + optimizers for one config and one kind of data."""

    def __init__(self, config, info: DatasetInfo):
        self.config = config
        self.info = info
        self.restored = ""  # which checkpoint and params `runs.restore` read (for messages)
        self._compiled_samplers = {}
        self._compiled_likelihoods = {}
        registry.check_data_kind(registry.objective_spec(config.objective.name), info)
        augment.check(config.train.augment, info.kind)
        self.model = with_compute_dtype(_with_remat(registry.build_model(config.model, info),
                                                    config.train.remat, config.model.name),
                                        config.train.compute_dtype)
        self.objective = registry.build_objective(config, self.model, info)
        # the family's declared sample.* settings; `sample` may override them per call
        self.sample_settings = registry.sample_settings(config)
        t = config.train
        self.mesh = sharding.make_mesh(t.mesh, bool(t.shard_state))
        n = self.mesh.size
        if config.train.batch_size % n:
            raise UserError(
                f"train.batch_size={config.train.batch_size} must be divisible by the number of "
                f"devices ({n}).")
        self.txs = {p.name: make_optimizer(config.optim, p.name, config.train.steps)
                    for p in self.objective.players}
        self.replicated = distributed.replicated(self.mesh)
        self._init_fn = functools.partial(step_lib.init_state, self.objective, self.txs,
                                          int(config.seed))

    @functools.cached_property
    def _abstract(self):
        """(abstract params as the init gives them, annotations kept; abstract TrainState),
        from one trace of the init."""
        params = jax.eval_shape(self.objective.init, jax.random.key(0, impl="rbg"),
                                self.example_batch())
        state = jax.eval_shape(functools.partial(step_lib.state_from_params, self.objective,
                                                 self.txs, int(self.config.seed)), params)
        return params, state

    @functools.cached_property
    def state_sharding(self):
        """The TrainState's shardings on this mesh: replicated (one sharding for the whole
        tree), or split over its fsdp axis (`train.shard_state`, `jaxgen.runner.sharding`;
        a tree of them)."""
        t = self.config.train
        if not t.shard_state:
            return self.replicated
        params, state = self._abstract
        return sharding.state_shardings(state, params, self.txs, self.mesh,
                                        bool(t.shard_state), int(t.shard_min_size))

    # ------------------------------------------------------------------ state
    def example_batch(self) -> dict:
        b = {"x": jnp.zeros((1, *self.info.event_shape), jnp.float32)}
        if self.info.num_classes:
            b["label"] = jnp.zeros((1,), jnp.int32)
        return b

    def abstract_batch(self) -> dict:
        """The train step's global batch as shapes only (raw data: uint8 images, float
        points, int32 tokens), sharded as the trainer places it."""
        t, info = self.config.train, self.info
        lead = () if int(t.steps_per_call) == 1 else (int(t.steps_per_call),)
        dtype = {"images": jnp.uint8, "tokens": jnp.int32}.get(info.kind, jnp.float32)
        sharding = distributed.data_sharding(self.mesh, len(lead))
        batch = {"x": jax.ShapeDtypeStruct((*lead, int(t.batch_size), *info.event_shape),
                                           dtype, sharding=sharding)}
        if info.num_classes:
            batch["label"] = jax.ShapeDtypeStruct((*lead, int(t.batch_size)), jnp.int32,
                                                  sharding=sharding)
        return batch

    def init_state(self, raw_batch: dict | None = None):
        """A fresh TrainState, placed as `state_sharding` says.

        With `raw_batch` (the run's first global batch, as fed to the step),
        objectives see real model-space data at init: layers with
        data-dependent initialisation (ActNorm) use it. Without it, a zero
        example batch gives the shapes.
        """
        if raw_batch is None:
            return jax.jit(self._init_fn, out_shardings=self.state_sharding)(
                self.example_batch())
        kind, seed = self.info.kind, int(self.config.seed)

        def init_from_data(raw):
            batch = dict(raw)
            key = jax.random.fold_in(jax.random.key(seed), 2)
            batch["x"] = transforms.preprocess(kind, raw["x"], key, dequantize=self.dequantize)
            return self._init_fn(batch)

        return jax.jit(init_from_data, out_shardings=self.state_sharding)(raw_batch)

    def abstract_state(self):
        """The TrainState as shapes, dtypes and shardings (a restore's target)."""
        shapes, shardings = self._abstract[1], self.state_sharding
        if not isinstance(shardings, type(shapes)):  # one sharding for every leaf
            shardings = jax.tree.map(lambda _: self.state_sharding, shapes)
        return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                            shapes, shardings)

    def restore(self, workdir, step: int | None = None):
        ckpt = Checkpointer(checkpoint_dir(workdir, self.config), read_only=True)
        try:
            return ckpt.restore(self.abstract_state(), step)
        finally:
            ckpt.close()

    # ------------------------------------------------------------------- step
    def train_step(self, unroll: bool = False):
        """The jitted train call. `unroll`: every loop written out, for counting its FLOPs
        (`throughput.step_flops`); never the program that trains."""
        t = self.config.train
        one = step_lib.make_train_step(self.objective, self.txs, self.info.kind, t.ema_decay,
                                       dequantize=self.dequantize,
                                       grad_accum=int(t.grad_accum), augment=t.augment,
                                       unroll=unroll)
        fn = _traced_with(step_lib.make_multi_step(one, t.steps_per_call,
                                                   unroll=True if unroll else None),
                          matmul_precision(t.matmul_precision))
        lead = 0 if t.steps_per_call == 1 else 1
        data = distributed.data_sharding(self.mesh, lead)
        return jax.jit(fn, in_shardings=(self.state_sharding, data),
                       compiler_options=xla_options(t.xla_options,
                                                    jax.default_backend(),
                                                    self.info.kind) or None,
                       out_shardings=(self.state_sharding, self.replicated), donate_argnums=0)

    # --------------------------------------------------------------- sampling
    @property
    def dequantize(self) -> bool:
        """Whether images reach the objective dequantised (else as bin centres)."""
        return bool(self.objective.dequantize)

    def _sample_jit(self, settings, sharded: bool = False):
        """The sampler, jitted: its samples replicated on every device, or (`sharded`) in
        data space (uint8 images) and split over the mesh along the example axis, so each
        device draws its share."""
        if self.objective.sample is None:
            raise UserError(f"Objective '{self.objective.name}' cannot sample (it needs an "
                            "input to translate).")
        fn = functools.partial(self.objective.sample, settings=settings)
        if not sharded:
            return jax.jit(fn, static_argnums=2, out_shardings=self.replicated)
        kind = self.info.kind

        def in_data_space(params, rng, n, **kw):
            return transforms.postprocess(kind, fn(params, rng, n, **kw), xp=jnp)
        return jax.jit(in_data_space, static_argnums=2,
                       out_shardings=distributed.data_sharding(self.mesh))

    def _sampler(self, params, rng, n: int, settings, labels, sharded: bool = False):
        """The sampler compiled ahead of time for n samples (cached per shape and settings)."""
        key = (settings, n, labels is None, sharded)
        compiled = self._compiled_samplers.get(key)
        if compiled is None:
            kw = {} if labels is None else {"labels": labels}
            compiled = self._sample_jit(settings, sharded).lower(params, rng, n, **kw).compile()
            self._compiled_samplers[key] = compiled
        return compiled

    def sample_on_devices(self, params, rng, n: int, **options):
        """`n` samples in data space (uint8 images, float points) as one device array split
        over the mesh's devices along the example axis: each device draws n / devices of them,
        and they stay on the devices (a feature network can take them as they are). `n` must
        be a multiple of the device count. The same (rng, n) give the same samples on any
        mesh: the draw is one jitted function, its randomness partitionable."""
        if n % self.mesh.size:
            raise UserError(f"{n} samples cannot be split over {self.mesh.size} devices: use a "
                            f"multiple of {self.mesh.size}.")
        settings, _ = self._sample_args(n, None, options)
        return self._sampler(params, rng, n, settings, None, sharded=True)(params, rng)

    def settings_with(self, **options):
        """The run's sample settings with `options` replacing some (names checked)."""
        valid = setting_names(type(self.sample_settings))
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UserError(f"sample option {unknown[0]!r} is not a sample setting of "
                            f"objective {self.objective.name}; its settings: "
                            f"{', '.join(valid) or 'none'}.")
        from jaxgen.kernel.settings import validate_value
        schema = type(self.sample_settings)
        checked = {k: validate_value(schema, k, v, f"sample.{k}") for k, v in options.items()}
        return dataclasses.replace(self.sample_settings, **checked)

    def _sample_args(self, num, labels, options):
        if labels is not None:
            labels = np.asarray(labels, np.int32).reshape(-1)
            if labels.shape != (num,):
                raise UserError(f"labels must have shape ({num},), got {labels.shape}.")
            if not self.info.num_classes:
                raise UserError(f"{self.info.name} has no classes; drop the labels.")
        return self.settings_with(**options), labels

    def compile_sample(self, params, num: int, chunk: int = 1000, labels=None,
                       **options) -> float:
        """Compile `sample`'s functions for these shapes without drawing; returns seconds.

        A timed `sample` call that follows measures sampling alone.
        """
        t0 = time.perf_counter()
        settings, labels = self._sample_args(num, labels, options)
        rng = jax.random.key(0)
        for lo in sorted({min(chunk, num - lo) for lo in range(0, num, chunk)}):
            self._sampler(params, rng, lo, settings,
                          None if labels is None else jnp.asarray(labels[:lo]))
        return time.perf_counter() - t0

    def sample(self, params, rng, num: int, chunk: int = 1000, labels=None,
               finite: bool = False, **options) -> np.ndarray:
        """`num` samples in data space (uint8 images or float points), chunked.

        `labels` (num,) ints condition a class-conditional model. `options`
        replace some of the objective's declared sample settings for this call (e.g.
        sampler="ddim", steps=50, guidance=2.0, temperature=0.7); each distinct set is
        compiled once per chunk shape (`compile_sample` does it ahead of a timed call).
        `finite`: a NaN or inf in the model-space samples (which uint8 images would hide)
        raises `NonFiniteResultError` instead of being returned.
        """
        settings, labels = self._sample_args(num, labels, options)
        outs, bad = [], 0
        for i, lo in enumerate(range(0, num, chunk)):
            n = min(chunk, num - lo)
            lab = None if labels is None else jnp.asarray(labels[lo:lo + n])
            key = jax.random.fold_in(rng, i)
            fn = self._sampler(params, key, n, settings, lab)
            z = distributed.to_host(fn(params, key) if lab is None else
                                    fn(params, key, labels=lab))
            if finite:
                bad += int(np.sum(~np.all(np.isfinite(np.reshape(z, (n, -1))), axis=1)))
            outs.append(transforms.postprocess(self.info.kind, z))
        if bad:
            raise NonFiniteResultError(f"{bad} of {num} samples hold NaN or inf")
        return np.concatenate(outs)

    # ------------------------------------------------------------- likelihood
    def divergence_mode(self) -> str:
        mode = self.config.eval.divergence
        if mode == "auto":
            return "exact" if self.info.dim <= 64 else "hutchinson"
        return mode

    def likelihood_names(self) -> list[str]:
        """The estimators eval reports: eval.likelihood (comma list) or all the objective has."""
        have = list(self.objective.likelihoods)
        want = [n.strip() for n in str(self.config.eval.likelihood).split(",")
                if n.strip()]
        unknown = [n for n in want if n not in have]
        if unknown:
            raise UserError(
                f"eval.likelihood={unknown[0]!r}: objective '{self.objective.name}' offers "
                f"{', '.join(have) or 'no likelihood'}.")
        return want or have

    def _loglik_jit(self, name: str, steps: int, method: str, divergence: str):
        """The jitted estimator `name` with these ODE settings (cached per settings)."""
        key = (name, steps, method, divergence)
        if key not in self._compiled_likelihoods:
            self._compiled_likelihoods[key] = self._make_loglik(*key)
        return self._compiled_likelihoods[key]

    def _make_loglik(self, name: str, steps: int, method: str, divergence: str):
        if name not in self.objective.likelihoods:
            raise UserError(f"Objective '{self.objective.name}' has no likelihood {name!r}; "
                             f"it offers {', '.join(self.objective.likelihoods) or 'none'}.")
        lik = self.objective.likelihoods[name]
        fn = lik.fn
        if lik.ode:  # only ODE estimators take the solver settings (Likelihood.ode)
            fn = functools.partial(lik.fn, steps=steps, method=method, divergence=divergence)
        dequantize = not lik.discrete

        def loglik(params, x_raw, rng):
            kd, kl = jax.random.split(rng)
            x = transforms.preprocess(self.info.kind, x_raw, kd, dequantize=dequantize)
            out = fn(params, x, kl)
            return out if isinstance(out, tuple) else (out, {})

        return jax.jit(_traced_with(loglik, matmul_precision(self.config.eval.matmul_precision)),
                       out_shardings=self.replicated)

    def log_likelihood_terms(self, params, x_raw, rng, steps: int | None = None,
                             name: str | None = None) -> tuple[np.ndarray, dict]:
        """Per-example log-likelihood in *data units* (nats), see jaxgen.eval.likelihood,
        and the per-example terms of the bound (nats, model's own split; may be empty).

        `name` picks the estimator (default: the objective's first). ODE
        estimators use eval.ode_steps / eval.ode_method / eval.divergence
        (`steps` overrides the step count, e.g. for quick density pictures).
        """
        e = self.config.eval
        name = name or self.objective.default_likelihood
        if name is None:
            raise UserError(f"Objective '{self.objective.name}' has no likelihood.")
        fn = self._loglik_jit(name, int(steps or e.ode_steps), e.ode_method,
                              self.divergence_mode())
        x = np.asarray(x_raw)
        if jax.process_count() == 1 and x.shape[0] % self.mesh.size == 0:
            x = jax.device_put(x, distributed.data_sharding(self.mesh))
        logp_model, terms = distributed.to_host(fn(params, x, rng))
        shift = 0.0
        if not self.objective.likelihoods[name].discrete:
            shift = transforms.log_det_to_discrete(self.info.kind, self.info.event_shape)
        return logp_model + shift, terms

    def log_likelihood(self, params, x_raw, rng, steps: int | None = None,
                       name: str | None = None) -> np.ndarray:
        """Per-example log-likelihood in data units (nats); see `log_likelihood_terms`."""
        return self.log_likelihood_terms(params, x_raw, rng, steps, name)[0]

    @functools.cached_property
    def _stats_jit(self):
        stats = self.objective.held_out_stats

        def fn(params, x_raw, rng, label):
            kd, ks = jax.random.split(rng)
            x = transforms.preprocess(self.info.kind, x_raw, kd, dequantize=self.dequantize)
            if stats.uses_labels:
                return stats.batch(params, x, ks, label=label)
            return stats.batch(params, x, ks)

        return jax.jit(_traced_with(fn, matmul_precision(self.config.eval.matmul_precision)),
                       out_shardings=self.replicated)

    def held_out_stats_batch(self, params, x_raw, rng, label=None) -> dict:
        """The objective's `HeldOutStats.batch` on raw data (host arrays); see evaluate."""
        if self.objective.held_out_stats is None:
            raise UserError(f"Objective '{self.objective.name}' has no held-out statistics.")
        label = None if label is None else np.asarray(label, np.int32)
        return distributed.to_host(self._stats_jit(params, np.asarray(x_raw), rng, label))

    def log_prob_points(self, params, rng, steps: int | None = None, name: str | None = None):
        """A numpy `points -> log p` for 2-D density plots (model space = data space)."""
        def f(points):
            return self.log_likelihood(params, np.asarray(points, np.float32), rng, steps, name)
        return f
