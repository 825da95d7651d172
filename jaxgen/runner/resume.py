"""What a resumed run may change: the runner's resume policy.

`jaxgen train` on a workdir that holds checkpoints compares the run's config.json with
the new config (`jaxgen.runner.loop`); only the keys below may differ, so a resumed run
computes what the uninterrupted run would have computed.
"""

from __future__ import annotations

from jaxgen.kernel import registry

# Keys that may change between a run and its resumption (they do not change what is
# computed at each step; the mesh, the state's sharding, remat and the matmul precision
# change it only by float rounding).
RESUMABLE_CHANGES = ("train.steps", "train.log_every", "train.checkpoint_every",
                     "train.sample_every", "train.progress", "train.max_to_keep",
                     "train.xla_options", "train.pictures", "train.mesh", "train.shard_state",
                     "train.shard_min_size", "train.remat", "train.matmul_precision",
                     "train.data_workers", "train.data_in_memory_mb", "train.profile_steps",
                     "train.compilation_cache", "train.peak_tflops", "train.checkpoint_dir")
# Settings a resumed run may change, each change printed as a note: the advice of the
# non-finite-loss message (a lower learning rate, gradient clipping) must be followable in
# the same workdir. The optimizer state does not depend on them (`make_optimizer`).
ADJUSTABLE = ("optim.learning_rate", "optim.grad_clip")


def _adjustable(name: str) -> bool:
    """optim.learning_rate / grad_clip, also per player (optim.players.<p>.learning_rate)."""
    return name.startswith("optim.") and name.rsplit(".", 1)[-1] in (
        "learning_rate", "grad_clip")


# A plugin reference re-pointed to a moved file (same file name and attribute, another
# folder: `registry.repointed`) may change too, with a note.
REPOINTABLE = ("data.name", "objective.name", "model.name")


def _repointed(name: str, a, b) -> bool:
    return (name in REPOINTABLE and isinstance(a, str) and isinstance(b, str)
            and registry.repointed(a, b))


def config_differences(old: dict, new: dict, prefix: str = "",
                       allowed: tuple | None = None) -> list[str]:
    """"key: old -> new" of the keys that differ. Default: those a resumed run may not change
    (not in RESUMABLE_CHANGES, not adjustable, not sample.* / eval.*, not a re-pointed
    plugin file); with `allowed` (e.g. ADJUSTABLE): only the adjustable and re-pointed
    ones."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, dict) or isinstance(b, dict):  # a group (absent on one side: empty)
            a = a if isinstance(a, dict) else ({} if a == "<missing>" else a)
            b = b if isinstance(b, dict) else ({} if b == "<missing>" else b)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs.extend(config_differences(a, b, name + ".", allowed))
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
                             and list(a) == list(b)):
            if allowed is not None:
                if _adjustable(name):
                    diffs.append(f"{name} set to {b!r}" if a == "<missing>" else
                                 f"{name} unset (was {a!r})" if b == "<missing>" else
                                 f"{name} changed {a!r} -> {b!r}")
                elif _repointed(name, a, b):
                    diffs.append(f"{name} changed {a!r} -> {b!r} (the plugin file, moved)")
            elif not (name in RESUMABLE_CHANGES or _adjustable(name) or _repointed(name, a, b)
                      or name.startswith(("sample.", "eval."))):
                files = name in REPOINTABLE and all(
                    isinstance(v, str) and v.rpartition(":")[0].endswith(".py") for v in (a, b))
                diffs.append(f"{name}: {a!r} -> {b!r}" + (
                    " (a moved plugin file may change its folder, not its file name or "
                    "attribute)" if files else ""))
    return diffs
