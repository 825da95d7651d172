"""Devices, the data mesh, multi-process setup and host transfers."""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


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


def make_mesh() -> Mesh:
    """A 1-D mesh over every device of every process, process-major."""
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    return Mesh(np.array(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def data_sharding(mesh: Mesh, leading_unsharded: int = 0) -> NamedSharding:
    return NamedSharding(mesh, P(*([None] * leading_unsharded), DATA_AXIS))


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
