"""One checkpoint path for every family: Orbax, the whole TrainState + a JSON record, each
checkpoint verified by a manifest of checksums.

Saves are asynchronous; `close()` finishes them before exit. Restoring always passes the
abstract target (shapes, dtypes, shardings), so arrays come back sharded as the trainer
expects and the typed PRNG key comes back typed.

Integrity. Orbax writes a checkpoint into a temporary folder and renames it when complete,
so a kill during a write leaves no half checkpoint under its step; it does not notice a
file damaged afterwards (a truncated or overwritten data file restores as wrong numbers, or
fails deep inside TensorStore). Two records guard each checkpoint:

* a fingerprint of its arrays (`fingerprint`: per leaf, two wrapping uint32 sums of the
  raw bits, one of them position-weighted), computed on the devices before the save starts
  and written in the checkpoint's own `meta` item, so Orbax commits it with the arrays:
  every checkpoint jaxgen writes carries it, a kill at any moment included. A restore
  recomputes it from the arrays read back and refuses the checkpoint when they differ;
* `<step>/jaxgen_manifest.json`, the size and CRC-32 of every file, written once the save
  has finished: it names the damaged file before anything is read. Reading the checkpoint
  back for it costs the training thread nothing: it runs on a thread of its own, started
  when the next save starts (or at `close()`, which waits for it), while Orbax writes that
  next save; Orbax's commit of the next save waits for it (a `post_finalization_callback`),
  so it never races Orbax's removal of old steps (train.max_to_keep). A run killed in
  between leaves its newest checkpoint without a manifest, verified by its fingerprint
  alone (and said so).

Checkpoints written before fingerprints were recorded have only the manifest; one with
neither is restored only when it holds no NaN/inf, and said so.

`restore_newest_good` walks the steps from the newest: a checkpoint whose files fail the
manifest, or that Orbax cannot read, is skipped with one line saying which and why, and the
next older one is tried. `restore(step=N)` of one named checkpoint raises `CheckpointError`
instead. Neither ever prints a traceback for damaged files.

Several processes (hosts). Every process calls `save` at the same step (the training loop
saves at steps all processes agree on, `jaxgen.runner.stops`). Orbax writes each process's
own shards: a process writes the shards on its devices (one copy of a replicated array) to
its own `state/ocdbt.process_<i>/` files, so no process gathers the state; the primary
process (0) writes the metadata and the `meta` item, and once every process has finished
(a barrier) merges the per-process indexes and commits the step. This assumes one folder
every process sees (a shared filesystem or a bucket), as Orbax does. The fingerprint is
reduced on the devices (two sums per leaf, no gather). The manifest is written by process
0 alone, after Orbax committed the step, so after every process finished writing it.

Paths go through `etils.epath`: the checkpoint folder may be remote (`gs://...`) where Orbax
and epath support it. There the free-space check is skipped, a manifest is written whole
(an object store replaces an object at once) and `set_aside` needs epath's folder rename.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import time
import zlib
from pathlib import PurePosixPath
from typing import Callable

import jax
import orbax.checkpoint as ocp
from etils import epath

from jaxgen.kernel.errors import CheckpointError, MissingError

MANIFEST = "jaxgen_manifest.json"
FINGERPRINT = "fingerprint"  # the key of the arrays' fingerprint in a checkpoint's meta


# ------------------------------------------------------------------ paths
PathLike = str | os.PathLike


def is_local(path: PathLike) -> bool:
    """Whether `path` is on this machine's filesystem (no `scheme://`, e.g. gs://)."""
    return "://" not in os.fspath(path)


def _path(path: PathLike) -> epath.Path:
    return epath.Path(path)


def _size(path: epath.Path) -> int:
    return int(path.stat().length)


# ------------------------------------------------------------------ manifests
def _crc32(path: PathLike) -> int:
    crc = 0
    with _path(path).open("rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _files(step_dir: PathLike) -> list[epath.Path]:
    """Every file under `step_dir` but the manifest (a walk: epath has no recursive glob)."""
    return sorted(folder / name for folder, _, names in _path(step_dir).walk()
                  for name in names if not name.startswith(MANIFEST))


def write_manifest(step_dir: PathLike) -> epath.Path:
    """Writes `step_dir/jaxgen_manifest.json` ({relative path: [size, crc32]}) whole: through
    a temporary file renamed on a local disk; at once on an object store."""
    step_dir = _path(step_dir)
    files = {p.relative_to(step_dir).as_posix(): [_size(p), _crc32(p)]
             for p in _files(step_dir)}
    text = json.dumps({"format": 1, "files": files}, indent=1)
    if not is_local(step_dir):
        (step_dir / MANIFEST).write_text(text)
        return step_dir / MANIFEST
    tmp = step_dir / (MANIFEST + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, step_dir / MANIFEST)
    return step_dir / MANIFEST


def verify(step_dir: PathLike) -> str | None:
    """What is wrong with the checkpoint in `step_dir` by its manifest, or None if every
    file is there with its size and checksum. A checkpoint without a manifest is "unverified"
    (see `has_manifest`), not wrong."""
    step_dir = _path(step_dir)
    path = step_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        files = json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return f"its manifest {MANIFEST} is unreadable"
    for rel, (size, crc) in files.items():
        p = step_dir / rel
        parts = PurePosixPath(rel).parts
        if len(parts) > 1 and not (step_dir / parts[0]).is_dir():
            return f"its folder {parts[0]}/ is missing"
        if not p.is_file():
            return f"{rel} is missing"
        got = _size(p)
        if got != size:
            return f"{rel} has {got} bytes, {size} were written (truncated or changed)"
        if _crc32(p) != crc:
            return f"{rel} fails its CRC-32 check (its bytes changed after the write)"
    return None


def has_manifest(step_dir: PathLike) -> bool:
    return (_path(step_dir) / MANIFEST).is_file()


def _all_finite(tree) -> bool:
    """Whether every float leaf is finite: the one check left for a checkpoint without a
    manifest (random bytes read as float32 hold a NaN/inf exponent about once in 256)."""
    import jax.numpy as jnp
    import numpy as np

    from jaxgen.runner.distributed import to_host
    leaves = [x for x in jax.tree.leaves(tree)
              if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)]
    return all(bool(np.all(np.isfinite(to_host(x)))) for x in leaves)


def _bits(x):
    """The raw bits of an array as uint32 (what a damaged byte changes)."""
    import jax.numpy as jnp
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32)
    width = x.dtype.itemsize
    if width == 4:
        return jax.lax.bitcast_convert_type(x, jnp.uint32)
    if width == 2:
        return jax.lax.bitcast_convert_type(x, jnp.uint16).astype(jnp.uint32)
    if width == 1:
        return jax.lax.bitcast_convert_type(x, jnp.uint8).astype(jnp.uint32)
    return jax.lax.bitcast_convert_type(x, jnp.uint32)  # 8 bytes: (..., 2) words


@jax.jit
def _sums(tree):
    import jax.numpy as jnp

    def one(x):
        u = _bits(x).reshape(-1)
        w = jnp.arange(1, u.size + 1, dtype=jnp.uint32) * jnp.uint32(2654435761)
        return jnp.stack([jnp.sum(u, dtype=jnp.uint32), jnp.sum(u * w, dtype=jnp.uint32)])
    return jax.tree.map(one, tree)


def fingerprint(tree) -> dict[str, list[int]]:
    """{leaf path: [sum, weighted sum]} of the raw bits of every array leaf (wrapping uint32
    arithmetic: exact, the same on any device count). A changed byte changes it, but for
    odds of about 2^-64."""
    from jaxgen.runner.distributed import to_host
    flat = jax.tree_util.tree_flatten_with_path(_sums(tree))[0]
    return {jax.tree_util.keystr(path): [int(v) for v in to_host(s)] for path, s in flat}


def _short(e: Exception) -> str:
    """The first line of an Orbax / TensorStore error, trimmed: enough to say why."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    text = text.split(" See full TensorStore details")[0]
    return f"{type(e).__name__}: {text[:200]}"


# ----------------------------------------------------------------- checkpointer
def _listing(list_steps, tries: int = 10):
    """`list_steps()` (Orbax listing a run's checkpoints), again when a step folder vanished
    between its listing and its reading: a run training in the folder rotated it away."""
    for attempt in range(tries):
        try:
            return list_steps()
        except FileNotFoundError:
            if attempt == tries - 1:
                raise
            time.sleep(0.05)


class Checkpointer:
    def __init__(self, directory: PathLike, max_to_keep: int = 3, read_only: bool = False):
        directory = _path(directory)
        self.directory = directory.resolve() if is_local(directory) else directory
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}")
        self.read_only = read_only
        self._unverified: list[int] = []  # saved steps whose manifest is not written yet
        self._manifests: threading.Thread | None = None  # writing manifests, if running
        self._manifest_error: BaseException | None = None
        # Readers open the manager with create=False and never call save(); Orbax's
        # own read_only mode only adds log noise. Orbax calls the post-finalization callback
        # on process 0 before it commits a save and removes old steps: the manifests being
        # written then are finished first.
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=not read_only,
            async_options=ocp.AsyncOptions(post_finalization_callback=self._join_manifests))
        self.manager = _listing(lambda: ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta")))

    def step_dir(self, step: int) -> epath.Path:
        return self.directory / str(int(step))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def reload(self) -> None:
        """Lists the steps again (a run training there may have saved or rotated one)."""
        _listing(self.manager.reload)

    # ---------------------------------------------------------------- writing
    def _start_manifests(self) -> None:
        """Starts writing the manifests of the finished saves on a thread of their own (call
        after `wait_until_finished`: Orbax has committed them, on every process). Process 0
        writes them; the others have none to write."""
        steps, self._unverified = self._unverified, []
        if not steps or jax.process_index() != 0:
            return
        self._join_manifests()

        def write():
            try:
                for step in steps:
                    if self.step_dir(step).is_dir():  # max_to_keep may have removed it
                        write_manifest(self.step_dir(step))
            except BaseException as e:  # noqa: BLE001 - raised on the training thread
                self._manifest_error = e

        self._manifests = threading.Thread(target=write, name="jaxgen-manifests", daemon=True)
        self._manifests.start()

    def _join_manifests(self) -> None:
        """Waits for the manifests being written (on the training thread, or on Orbax's
        thread just before it commits the next save and removes old steps)."""
        thread = self._manifests
        if thread is not None:
            thread.join()

    def _raise_manifest_error(self) -> None:
        error, self._manifest_error = self._manifest_error, None
        if error is not None:
            raise error

    def save(self, step: int, state, meta: dict, force: bool = True) -> bool:
        """Starts an asynchronous save of `state` and `meta` at `step`. On this (the
        training) thread: waiting for the previous save (as Orbax's own save() does first),
        the fingerprint, and Orbax's start (a copy of the arrays); reading the previous save
        back for its manifest happens on a thread of its own meanwhile."""
        self.manager.wait_until_finished()  # what Orbax's save() does first anyway
        self._raise_manifest_error()
        self._check_space(state)
        meta = {**meta, FINGERPRINT: fingerprint(state)}  # committed with the arrays
        self._start_manifests()  # after the fingerprint: on a CPU both would share the cores
        saved = self.manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                    meta=ocp.args.JsonSave(meta)),
            force=force)
        if saved:
            self._unverified.append(int(step))
        return saved

    def _check_space(self, state) -> None:
        """A full disk is found before Orbax starts writing (its threads' failure mid-write is
        reported once, but only after a burst of asyncio tracebacks): the checkpoint needs
        about the state's bytes, plus a margin for metadata."""
        if not is_local(self.directory):
            return  # a bucket: no free space to ask for
        need = sum(int(x.nbytes) for x in jax.tree.leaves(state) if hasattr(x, "nbytes"))
        need = int(need * 1.05) + (1 << 20)
        free = shutil.disk_usage(self.directory).free
        if free < need:
            raise OSError(errno.ENOSPC, f"{free / 2**20:.1f} MiB free, a checkpoint needs about "
                          f"{need / 2**20:.1f} MiB", str(self.directory))

    def close(self) -> None:
        """Finishes the saves and writes their manifests (waiting for both)."""
        self.manager.wait_until_finished()
        self._start_manifests()
        self._join_manifests()
        self._raise_manifest_error()
        self.manager.close()

    # ---------------------------------------------------------------- reading
    def _restore_one(self, abstract_state, step: int):
        out = self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                          meta=ocp.args.JsonRestore()))
        if not isinstance(out["meta"], dict) or "data" not in out["meta"]:
            raise CheckpointError("its meta record is empty or unreadable")
        return out["state"], out["meta"]

    def problem(self, abstract_state, step: int) -> tuple[str | None, tuple | None]:
        """(what is wrong, None) or (None, (state, meta)) for checkpoint `step`."""
        bad = verify(self.step_dir(step))
        if bad:
            return bad, None
        try:
            restored = self._restore_one(abstract_state, step)
            state, meta = restored
            if not has_manifest(self.step_dir(step)) and not _all_finite(state):
                return ("it has no manifest and holds non-finite values (damaged bytes read "
                        "as NaN/inf)"), None
            recorded = meta.get(FINGERPRINT)
            if recorded is not None and fingerprint(state) != recorded:
                return ("its arrays differ from the fingerprint recorded when it was saved "
                        "(bytes changed after the write)"), None
            return None, restored
        except CheckpointError as e:
            return str(e), None
        except Exception as e:  # noqa: BLE001 - any failure to read is "damaged", said in one line
            return f"Orbax cannot read it ({_short(e)})", None

    def restore(self, abstract_state, step: int | None = None):
        """Returns (state, meta) at `step`, or of the newest good checkpoint when `step` is
        None (skipped ones are named on stdout)."""
        if step is None:
            state, meta, _, _ = self.restore_newest_good(abstract_state)
            return state, meta
        if int(step) not in self.all_steps():
            raise MissingError(f"No checkpoint {step} in {self.directory} (it holds "
                               f"{', '.join(map(str, sorted(self.all_steps()))) or 'none'}).")
        bad, restored = self.problem(abstract_state, int(step))
        if bad:
            raise CheckpointError(f"Checkpoint {self.step_dir(step)} is damaged: {bad}. "
                                  "Use another --step, or omit --step for the newest good one.")
        return restored

    def restore_newest_good(self, abstract_state,
                            say: Callable[[str], None] | None = print, rotations: int = 5):
        """(state, meta, step, skipped): the newest checkpoint that passes its checks and
        restores; `skipped` lists (step, reason) of the newer ones that did not.

        A checkpoint that fails while a newer one appears, or that vanishes while it is
        read, was rotated away by a run still training (train.max_to_keep): the steps are
        listed again and the newest one is read instead, up to `rotations` times; that is
        not damage, and not said as such."""
        skipped, tried = [], set()
        for _ in range(rotations + 1):
            self.reload()
            steps = sorted((s for s in self.all_steps() if s not in tried), reverse=True)
            if not steps and not tried:
                raise MissingError(f"No checkpoint in {self.directory}.")
            rotated = False
            for step in steps:
                tried.add(step)
                bad, restored = self.problem(abstract_state, step)
                if bad is None:
                    if say and not has_manifest(self.step_dir(step)):
                        how = ("its arrays match the fingerprint saved with them"
                               if FINGERPRINT in restored[1] else
                               "written before fingerprints were recorded: restored on "
                               "Orbax's own checks and a finite check")
                        say(f"Note: checkpoint {step} has no manifest (the run stopped before "
                            f"it was written); {how}.")
                    return (*restored, step, skipped)
                self.reload()
                if not self.step_dir(step).is_dir() or max(self.all_steps(), default=-1) > step:
                    rotated = True  # a run training there moved on and rotated it away
                    break
                skipped.append((step, bad))
                if say:
                    older = [s for s in steps if s < step]
                    say(f"Skipped checkpoint {self.step_dir(step)}: {bad}"
                        + (f"; trying {older[0]}." if older else "."))
            if not rotated:
                break
        if not skipped:
            raise CheckpointError(
                f"Every checkpoint of {self.directory} was rotated away while it was read (a "
                "run training there keeps train.max_to_keep of them): run the command again.")
        raise CheckpointError(
            f"No usable checkpoint in {self.directory}: "
            + "; ".join(f"{s}: {why}" for s, why in skipped)
            + ". Train again in a new --workdir (the damaged files are kept).")

    def set_aside(self, step: int) -> epath.Path:
        """Moves a damaged checkpoint out of Orbax's folder (to checkpoints_damaged/), so a
        resumed run can save that step again; nothing is deleted."""
        target = self.directory.parent / "checkpoints_damaged" / str(step)
        n = 1
        while target.exists():
            target = target.with_name(f"{step}.{n}")
            n += 1
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_local(target):
            os.replace(self.step_dir(step), target)
        else:
            self.step_dir(step).rename(target)
        self.manager.reload()
        return target


def checkpoint_dir(workdir: PathLike, config=None) -> epath.Path:
    """Where a run's checkpoints are: `train.checkpoint_dir` of its config (any etils.epath
    path: a local folder, gs://...), else WORKDIR/checkpoints."""
    where = str(config.train.get("checkpoint_dir", "") or "") if config is not None else ""
    return _path(where) if where else _path(workdir) / "checkpoints"


def checkpoint_steps(workdir: PathLike, config=None) -> list[int]:
    """The step folders of a run's checkpoints (`checkpoint_dir`; no Orbax needed)."""
    d = checkpoint_dir(workdir, config)
    if not d.is_dir():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit())


def has_checkpoint(workdir: PathLike, config=None) -> bool:
    return bool(checkpoint_steps(workdir, config))
