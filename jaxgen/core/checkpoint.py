"""One checkpoint path for every family: Orbax, the whole TrainState + a JSON record.

Saves are asynchronous; `close()` (or `wait()`) finishes them before exit.
Restoring always passes the abstract target (shapes, dtypes, shardings), so
arrays come back sharded as the trainer expects and the typed PRNG key comes
back typed.
"""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp

from jaxgen.core.errors import MissingError


class Checkpointer:
    def __init__(self, directory: str | Path, max_to_keep: int = 3, read_only: bool = False):
        self.directory = Path(directory).resolve()
        # Readers open the manager with create=False and never call save(); Orbax's
        # own read_only mode only adds log noise.
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state, meta: dict, force: bool = True) -> bool:
        return self.manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                    meta=ocp.args.JsonSave(meta)),
            force=force)

    def restore(self, abstract_state, step: int | None = None):
        """Returns (state, meta) at `step` (default: the latest)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise MissingError(f"No checkpoint in {self.directory}.")
        out = self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                          meta=ocp.args.JsonRestore()))
        return out["state"], out["meta"]

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_like(tree, sharding):
    """ShapeDtypeStructs of `tree` (from `jax.eval_shape`) placed on `sharding`."""
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), tree)


def has_checkpoint(workdir: str | Path) -> bool:
    d = Path(workdir) / "checkpoints"
    if not d.is_dir():
        return False
    return any(p.is_dir() and p.name.isdigit() for p in d.iterdir())
