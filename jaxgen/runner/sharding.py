"""The device mesh and the shardings of the train state: replicated, or FSDP (ZeRO-3).

The mesh (`train.mesh`) has up to two axes, process-major over every device:

    data   the batch is split over it; the state is replicated along it
    fsdp   the batch is split over it too; with `train.shard_state` the params, the EMA
           params and the optimizer state are split along it as well

so 'data:2,fsdp:4' on 8 devices keeps two copies of the state, each split four ways, and
every device holds 1/8 of the batch. The loss is still written on the global batch: XLA
gathers a sharded weight where a layer uses it and reduce-scatters its gradient, and the
optimizer and EMA updates run on each device's shard.

Which dimension of an array is split is decided by declared rules, from the abstract state
(`jax.eval_shape` of the init), never by a family's name:

* a param a module annotated (`nn.with_logical_partitioning(init, ("embed", "mlp"))`) is
  split along its first logical axis that `LOGICAL_RULES` maps to `fsdp` and whose size the
  axis divides; one annotated with mesh axes (`nn.with_partitioning`) keeps them;
* any other array is split along its largest dimension that the fsdp axis divides (the
  last such one on a tie: the output features of a kernel); arrays smaller than
  `train.shard_min_size` elements, scalars and PRNG keys stay replicated;
* the optimizer's moments follow their params (`optax.tree_map_params`), so Adam's mu and
  nu are split like the weight they belong to.

A checkpoint stores whole arrays (Orbax writes each process's shards of them), so a run
saved on one mesh restores onto any other: the restore target carries the new shardings.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen.kernel.config import parse_mesh
from jaxgen.kernel.errors import UserError

DATA, FSDP = "data", "fsdp"

# Logical axis names (Flax's `with_logical_partitioning`) -> the mesh axis they may be split
# over, in order of preference. Names not listed stay whole.
LOGICAL_RULES = (("embed", FSDP), ("mlp", FSDP), ("heads", FSDP), ("vocab", FSDP),
                 ("conv_out", FSDP), ("conv_in", FSDP))


def make_mesh(spec: str = "", shard_state: bool = False, devices=None) -> Mesh:
    """The mesh `train.mesh` names over `devices` (default: every device of every process,
    process-major). '' is 'data' (or 'fsdp' with `shard_state`)."""
    devices = sorted(devices if devices is not None else jax.devices(),
                     key=lambda d: (d.process_index, d.id))
    n = len(devices)
    axes = parse_mesh(spec) if str(spec).strip() else [(FSDP if shard_state else DATA, -1)]
    where = f"train.mesh={spec!r}" if str(spec).strip() else "the default mesh"
    names = [a for a, _ in axes]
    if shard_state and FSDP not in names:
        raise UserError(f"train.shard_state splits the state over the mesh's fsdp axis; "
                        f"{where} has none. Use e.g. --config.train.mesh=fsdp (every device) or "
                        f"--config.train.mesh=data:2,fsdp:-1.")
    fixed = math.prod(s for _, s in axes if s != -1)
    if n % fixed:
        raise UserError(f"{where} needs a multiple of {fixed} devices; there are {n}. Change "
                        "train.mesh (one size may be -1: the remaining devices).")
    sizes = [s if s != -1 else n // fixed for _, s in axes]
    if math.prod(sizes) != n:
        raise UserError(f"{where} spans {math.prod(sizes)} devices; there are {n}. Make the "
                        "sizes multiply to the device count, or leave one at -1.")
    return Mesh(np.array(devices).reshape(sizes), tuple(names))


def describe(mesh) -> str:
    """'data:2,fsdp:4': the mesh's axes and sizes, as train.mesh writes them."""
    return ",".join(f"{a}:{n}" for a, n in mesh.shape.items())


def fits(spec: str, devices: int | None = None) -> bool:
    """Whether `train.mesh=spec` can be laid over `devices` (default: all there are)."""
    n = jax.device_count() if devices is None else devices
    if not str(spec).strip():
        return True
    sizes = [s for _, s in parse_mesh(spec)]
    fixed = math.prod(s for s in sizes if s != -1)
    return n % fixed == 0 if -1 in sizes else fixed == n


def _is_box(x) -> bool:
    return isinstance(x, nn.meta.AxisMetadata)


def _shape_rule(shape, fsdp: int, min_size: int) -> P:
    """The largest dimension the fsdp axis divides (the last on a tie), or replicated."""
    if fsdp == 1 or not shape or math.prod(shape) < max(min_size, 1):
        return P()
    dims = sorted(range(len(shape)), key=lambda i: (shape[i], i), reverse=True)
    for i in dims:
        if shape[i] % fsdp == 0:
            return P(*[FSDP if j == i else None for j in range(len(shape))])
    return P()


def _box_rule(box, fsdp: int, min_size: int) -> P:
    """A param annotated by its module: mesh axes kept; logical names through LOGICAL_RULES."""
    shape, names = tuple(box.value.shape), tuple(box.names)
    if isinstance(box, nn.LogicallyPartitioned):
        if fsdp == 1 or math.prod(shape) < max(min_size, 1):
            return P()
        for logical, axis in LOGICAL_RULES:
            if axis == FSDP and logical in names:
                i = names.index(logical)
                if shape[i] % fsdp == 0:
                    return P(*[FSDP if j == i else None for j in range(len(shape))])
        return P()
    return P(*names)


def param_specs(abstract_params, mesh: Mesh, min_size: int):
    """PartitionSpecs of a (possibly annotated) abstract param tree, unboxed."""
    fsdp = mesh.shape.get(FSDP, 1)

    def spec(x):
        if _is_box(x):
            return _box_rule(x, fsdp, min_size)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return P()
        return _shape_rule(tuple(x.shape), fsdp, min_size)

    return jax.tree.map(spec, abstract_params, is_leaf=_is_box)


def state_shardings(abstract_state, abstract_params, txs: dict, mesh: Mesh, shard: bool,
                    min_size: int):
    """NamedShardings of every leaf of the TrainState (`abstract_state`, unboxed);
    `abstract_params` is the init's own output (it may hold annotations)."""
    rep = NamedSharding(mesh, P())
    if not shard:
        return jax.tree.map(lambda _: rep, abstract_state)
    named = jax.tree.map(lambda s: NamedSharding(mesh, s), param_specs(abstract_params, mesh,
                                                                        min_size),
                         is_leaf=lambda x: isinstance(x, P))
    fsdp = mesh.shape.get(FSDP, 1)

    def by_shape(x):
        if not hasattr(x, "shape") or jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return rep
        return NamedSharding(mesh, _shape_rule(tuple(x.shape), fsdp, min_size))

    opt = {}
    for name, tx in txs.items():
        opt[name] = optax.tree_map_params(
            tx, lambda _, s: s, abstract_state.opt_state[name], named[name],
            transform_non_params=by_shape,
            is_leaf=lambda x: isinstance(x, jax.ShapeDtypeStruct))
    # non-gradient state (e.g. a codebook kept by EMA) is in params too, not in txs
    return abstract_state.replace(step=rep, rng=rep, params=named, ema_params=named,
                                  opt_state=opt)


def unbox(tree):
    """A param tree without its sharding annotations (the values)."""
    return nn.meta.unbox(tree)


def bytes_per_device(tree) -> int:
    """Bytes of `tree`'s arrays held on its first device (a sharded leaf counts its shard)."""
    total = 0
    for x in jax.tree.leaves(tree):
        if isinstance(x, jax.Array):
            total += x.addressable_shards[0].data.nbytes
    return total


def abstract_bytes_per_device(abstract) -> int:
    """The same from an abstract tree alone (ShapeDtypeStructs with their shardings): what a
    state would need, nothing allocated."""
    total = 0
    for x in jax.tree.leaves(abstract):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            continue
        shard = x.sharding.shard_shape(tuple(x.shape))
        total += math.prod(shard) * np.dtype(x.dtype).itemsize
    return total
