"""Rematerialisation (gradient checkpointing) of a network's repeated blocks.

The image networks whose forward pass is a stack of blocks (the U-Net's ResBlocks and
attention blocks, the VQ-VAEs' residual convolutions, the image-to-image U-Net
generator's down/up steps) have a field ``remat: str = "none"``, set from
``train.remat``. Any other value names a `jax.checkpoint_policies` policy: each block is
then run under `flax.linen.remat` with that policy, so the backward pass keeps only what
the policy saves inside a block (plus the block's inputs) and recomputes the rest. The
policies, from least to most memory:

* ``nothing_saveable``: keep only the blocks' inputs, recompute everything inside;
* ``dots_with_no_batch_dims_saveable``: also keep matmul outputs without batch
  dimensions (the Dense layers; convolutions are recomputed);
* ``dots_saveable``: also keep every matmul and convolution output;
* ``everything_saveable``: keep everything (the block is still a `checkpoint` in the
  program, but nothing is recomputed; for comparison).

The parameter tree is the same with or without remat (checkpoints restore either way),
provided every wrapped block is given an explicit ``name`` (or is a `setup` attribute):
`flax.linen.remat` names the wrapped class ``Checkpoint<Class>``, so auto-named
instances would be called ``Checkpoint<Class>_0`` instead of ``<Class>_0``.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax

from jaxgen.kernel.errors import UserError

__all__ = ["POLICIES", "block", "check_policy"]

# The values of a `remat` field (and of train.remat): "none" (off) or a policy's name.
POLICIES = ("none", "nothing_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable",
            "everything_saveable")


def check_policy(policy_name: str) -> str:
    """`policy_name` if it is one of `POLICIES`, else a UserError listing them."""
    if policy_name not in POLICIES:
        raise UserError(f"remat={policy_name!r} is not a remat policy; expected one of "
                        f"{', '.join(POLICIES)}.")
    return policy_name


@functools.lru_cache(maxsize=None)
def block(target, policy_name: str, static_argnums: tuple[int, ...] = ()):
    """`target` itself for ``policy_name="none"``, else `target` under `flax.linen.remat`.

    Args:
      target: a Module class (the block), or a function ``fn(module, *args)`` that
        creates and calls submodules of ``module`` (``parent=module``, explicit names):
        its parameters then stay where they were, directly under ``module``.
      policy_name: one of `POLICIES`; any other name is a UserError.
      static_argnums: positions of the non-array arguments of the block's ``__call__``
        (a ``train`` flag, a width, a name), counted as Flax does: ``self`` (or the
        module argument of a function) is position 0, so the first argument after it
        is 1.

    Returns:
      A class (or function) used exactly as `target`. The same arguments give the same
      object (cached), so tracing a model twice does not create new classes.
    """
    if check_policy(policy_name) == "none":
        return target
    return nn.remat(target, policy=getattr(jax.checkpoint_policies, policy_name),
                    static_argnums=tuple(static_argnums))
