"""jaxgen's public API, for notebooks and one-file prototypes (also importable from `jaxgen`).

    import jaxgen
    cfg = jaxgen.load_config("flow_matching/toy2d", ["train.steps=500"])
    run = jaxgen.train(cfg, "runs/fm")          # the one trainer; returns a Run
    run = jaxgen.load("runs/fm")                # any trained run, by its workdir
    x = run.sample(1000)                        # data space (uint8 images or float points)
    logp = run.log_prob(x)                      # nats per example (the default estimator)
    run.evaluate()                              # what `jaxgen eval` reports

Writing an objective (the contract: `jaxgen.kernel.contract`):

    @jaxgen.objective(settings=MySettings, sample=jaxgen.PriorTemperature)
    def make(ctx: jaxgen.BuildContext) -> jaxgen.Objective: ...

and point a config's objective.name at "path/to/file.py:make". The family builders take a
replacement loss, so a variant keeps the family's sampler, likelihoods and pictures;
`jaxgen.family(NAME)` gives a registered objective's builder and declared settings:

    fm = jaxgen.family("flow_matching")
    @jaxgen.objective(settings=fm.settings, sample=fm.sample, eval=fm.eval)
    def make(ctx):
        return fm.make(ctx, loss=my_loss)   # the family's loss arguments: fm.make's doc

A dataset of your own, the same way (`examples/banana_dataset.py`):

    @jaxgen.dataset(settings=MySettings, kind="points")
    def make(settings, split: str) -> jaxgen.Dataset: ...

and point data.name at "path/to/file.py:make".
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from jaxgen import distributions
from jaxgen.kernel import state
from jaxgen.kernel.config import base_config, load_config, load_config_file, resolve
from jaxgen.kernel.contract import (
    Autoencoder,
    BuildContext,
    Dataset,
    DatasetInfo,
    DataStats,
    FamilyTools,
    HeldOutStats,
    Likelihood,
    Objective,
    Player,
    RoundTrip,
    microbatch,
    require_tools,
    round_trip_of,
)
from jaxgen.kernel.errors import ConfigError, ContractError, JaxgenError, UserError
from jaxgen.kernel.registry import (
    DatasetSpec,
    ModelSpec,
    ObjectiveSpec,
    dataset,
    objective,
    register_dataset,
    register_model,
    register_objective,
)
from jaxgen.kernel.settings import NoSettings, setting
from jaxgen.processes import diffusion as diffusion_process
from jaxgen.processes.paths import AffinePath, CosinePath, OTPath, StraightPath, make_path
from jaxgen.samplers.ddpm import (
    ancestral,
    ddim,
    ddim_invert,
    dpm_solver_pp,
    probability_flow_velocity,
)
from jaxgen.samplers.langevin import annealed_langevin, langevin
from jaxgen.samplers.ode import log_likelihood as ode_log_likelihood
from jaxgen.samplers.ode import odeint
from jaxgen.samplers.settings import ODESolver, PriorTemperature

__all__ = [
    # contract
    "Objective", "Player", "Likelihood", "HeldOutStats", "Autoencoder", "FamilyTools",
    "BuildContext", "DatasetInfo", "DataStats", "Dataset", "microbatch", "require_tools",
    "with_loss", "state",
    "RoundTrip", "round_trip_of",
    # registration and settings
    "ObjectiveSpec", "ModelSpec", "DatasetSpec", "objective", "dataset", "register_objective",
    "register_model", "register_dataset",
    "setting", "NoSettings", "ODESolver", "PriorTemperature",
    # configs and runs
    "base_config", "load_config", "load_config_file", "resolve", "train", "load", "Run",
    "family", "Family",
    # mathematics
    "distributions", "diffusion_process", "AffinePath", "StraightPath", "OTPath",
    "CosinePath", "make_path", "odeint", "ode_log_likelihood", "ancestral", "ddim", "ddim_invert",
    "dpm_solver_pp",
    "probability_flow_velocity", "langevin", "annealed_langevin",
    # errors
    "JaxgenError", "UserError", "ConfigError", "ContractError",
]


@dataclasses.dataclass(frozen=True)
class Family:
    """A registered objective's builder and its declared settings, to build on: `make(ctx,
    loss=..., ...)` (the hooks its docstring lists), `settings` / `sample` / `eval` (the
    frozen dataclasses of its objective.*, sample.* and eval.* keys, to subclass)."""

    name: str
    make: object
    settings: type
    sample: type
    eval: type
    summary: str


def family(name: str) -> Family:
    """The builder and settings of the registered objective `name` (`jaxgen list`)."""
    from jaxgen.kernel import registry
    spec = registry.objective_spec(name)
    return Family(spec.name, registry.resolve(spec.build), spec.settings, spec.sample,
                  spec.eval, spec.summary)


def with_loss(obj: Objective, player: str, loss) -> Objective:
    """`obj` with player `player`'s loss replaced (its sampler, likelihoods, pictures and
    other players kept)."""
    names = [p.name for p in obj.players]
    if player not in names:
        raise UserError(f"objective {obj.name} has no player {player!r}; its players: "
                        f"{', '.join(names)}.")
    players = tuple(dataclasses.replace(p, loss=loss) if p.name == player else p
                    for p in obj.players)
    return dataclasses.replace(obj, players=players)


@dataclasses.dataclass
class Run:
    """A trained run: its workdir, Experiment, and the params of a checkpoint (EMA by default;
    `raw_params` the optimiser's)."""

    workdir: Path
    experiment: object
    params: object
    raw_params: object
    step: int

    def __repr__(self) -> str:
        """One line (the params are arrays: a notebook cell ending in `run` shows this)."""
        from jaxgen.runner.state import param_count
        info = getattr(self.experiment, "info", None)
        data = f"{info.name} {tuple(info.event_shape)}" if info is not None else "?"
        return (f"Run({str(self.workdir)!r}, step={self.step}, objective="
                f"{self.objective.name!r}, model={self.config.model.name!r}, data={data!r}, "
                f"params={param_count(self.params):,})")

    @property
    def config(self):
        return self.experiment.config

    @property
    def objective(self) -> Objective:
        return self.experiment.objective

    def sample(self, num: int, seed: int = 0, raw: bool = False, labels=None,
               **options) -> np.ndarray:
        """`num` samples in data space; `options` replace sample settings (e.g. steps=50)."""
        params = self.raw_params if raw else self.params
        return self.experiment.sample(params, jax.random.key(seed), num, labels=labels,
                                      **options)

    def log_prob(self, x, seed: int = 0, name: str | None = None) -> np.ndarray:
        """Per-example log-likelihood (nats, data units) of raw data x (uint8 images or
        float points), by the objective's default estimator or `name`."""
        return self.experiment.log_likelihood(self.params, np.asarray(x), jax.random.key(seed),
                                              name=name)

    def evaluate(self, split: str = "test", overrides=(), write: bool = False) -> dict:
        """What `jaxgen eval` reports (with `overrides` of eval.* / sample.*)."""
        from jaxgen.eval.evaluate import evaluate
        from jaxgen.kernel import config as config_lib
        cfg = config_lib.resolve(self.config.copy_and_resolve_references(), overrides)
        return evaluate(cfg, self.workdir, split=split, step=self.step, write=write,
                        progress=False, overrides=overrides)


def load(workdir, step: int | None = None, overrides=()) -> Run:
    """The run in `workdir` (its latest checkpoint, or `step`)."""
    from jaxgen.runner import runs
    from jaxgen.runner.experiment import Experiment, read_run_info
    exp = Experiment(runs.workdir_config(workdir, overrides), read_run_info(Path(workdir)))
    state, _ = exp.restore(workdir, step)
    return Run(Path(workdir).resolve(), exp, state.ema_params, state.params,
               int(jax.device_get(state.step)))


def train(config, workdir) -> Run:
    """Trains (or resumes) `config` in `workdir` with the one trainer; returns the Run."""
    from jaxgen.runner.loop import train_and_evaluate
    if isinstance(config, (str, Path)):
        config = load_config(config)
    train_and_evaluate(config, workdir)
    return load(workdir)
