"""Multi-process setup, the batch's sharding and host transfers (the mesh and the state's
shardings: `jaxgen.runner.sharding`)."""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def initialize_from_env() -> bool:
    """Starts `jax.distributed` when the launcher set JAXGEN_* variables.

    JAXGEN_COORDINATOR (host:port), JAXGEN_NUM_PROCESSES, JAXGEN_PROCESS_ID.
    On CPU the processes exchange gradients through gloo collectives. On
    SLURM or a Cloud TPU VM, JAXGEN_AUTO_DISTRIBUTED=1 lets JAX detect them.
    Must run before anything touches a device. Returns whether it initialised.
    """
    auto = os.environ.get("JAXGEN_AUTO_DISTRIBUTED") == "1"
    addr = os.environ.get("JAXGEN_COORDINATOR")
    if not (auto or addr):
        return False
    if os.environ.get("JAX_PLATFORMS", "").startswith("cpu") or os.environ.get("JAXGEN_CPU") == "1":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if auto:  # SLURM (srun) or a Cloud TPU VM: JAX reads the cluster from the environment
        jax.distributed.initialize()
        return True
    n = int(os.environ["JAXGEN_NUM_PROCESSES"])
    pid = int(os.environ["JAXGEN_PROCESS_ID"])
    jax.distributed.initialize(coordinator_address=addr, num_processes=n, process_id=pid)
    return True


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def data_sharding(mesh: Mesh, leading_unsharded: int = 0) -> NamedSharding:
    """The batch's sharding: its example axis split over every mesh axis."""
    return NamedSharding(mesh, P(*([None] * leading_unsharded), tuple(mesh.axis_names)))


def is_main() -> bool:
    return jax.process_index() == 0


def to_global(batch: dict, mesh: Mesh, global_batch_size: int, steps_per_call: int = 1) -> dict:
    """This process's numpy slice -> global arrays sharded over the data axis."""
    lead = 0 if steps_per_call == 1 else 1
    sharding = data_sharding(mesh, lead)
    out = {}
    for k, v in batch.items():
        v = np.asarray(v)
        gshape = list(v.shape)
        gshape[lead] = global_batch_size
        out[k] = jax.make_array_from_process_local_data(sharding, v, tuple(gshape))
    return out


def to_host(tree):
    """Device arrays -> numpy on every process (replicated or sharded)."""
    def get(x):
        if not isinstance(x, jax.Array):
            return np.asarray(x)
        if x.is_fully_addressable:
            return np.asarray(jax.device_get(x))
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return jax.tree.map(get, tree)


def sync(name: str) -> None:
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


#: Compiles shorter than this are not written to the persistent cache (JAX's default is 1 s;
#: JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS overrides it).
CACHE_MIN_COMPILE_SECS = 0.5


def use_compilation_cache(path: str) -> None:
    """XLA's persistent compilation cache in folder `path` (train.compilation_cache): a rerun
    or a resumed run loads its compiled programs instead of compiling them again. '' leaves
    JAX as it is (JAX_COMPILATION_CACHE_DIR, if set, still works). JAX writes entries from
    process 0 only; every process reads them, so with several hosts use a folder they share
    (a local folder on each host works, but only host 0's is filled). Takes effect even after
    something was compiled (the cache is opened again on the new folder)."""
    if not path:
        return
    from jax.experimental.compilation_cache import compilation_cache
    path = os.path.abspath(os.path.expanduser(path)) if "://" not in path else path
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECS)
    if jax.config.jax_compilation_cache_dir != path:
        compilation_cache.set_cache_dir(path)
        compilation_cache.reset_cache()  # opened on the next compile, in the new folder
