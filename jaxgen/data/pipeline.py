"""Deterministic, resumable, sharded batches from any random-access source.

The batch of step s is a pure function of (seed, s):

    epoch  = s // steps_per_epoch,   steps_per_epoch = N // global_batch
    order  = permutation of range(N) drawn from np.random.default_rng([seed, epoch])
    batch  = order[(s % steps_per_epoch) * B : ... + B]      (global indices)

so every epoch is reshuffled, nothing depends on the number of devices, and a
resumed run only needs the step to see exactly the batches it would have seen
(the checkpoint also records the position for people to read). Each process
reads only its contiguous slice of the global batch; `jax.make_array_from_
process_local_data` assembles the global array across processes.

How the examples are read does not change which examples a batch holds; there are
three ways (`BatchPipeline.read_mode`):

* "memory": a dataset whose decoded arrays fit in `in_memory_mb` MiB is decoded once
  (all records, in order, into one contiguous array per key) and every batch is then
  gathered from those arrays with `np.take`. An `ArraySource` is arrays already and is
  gathered from directly, whatever the settings.
* "workers": `workers` processes (forkserver, else spawn) call `source.get` for this
  process's share of each step; results come back through a shared-memory block and
  are handed out in step order, with a bounded number of steps read ahead. An
  exception in a worker is raised here with its message and traceback.
* "thread": `source.get` in a reader thread of this process (`workers=0`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import math
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
import weakref
from multiprocessing import shared_memory
from typing import Iterator

import numpy as np

from jaxgen.kernel.errors import UserError

_ALIGN = 64  # byte alignment of each array in a shared-memory slot
_CHUNK_BYTES = 8 << 20  # records decoded per read when a dataset is decoded once
_POLL_S = 0.2  # how often a wait for a worker checks that it is still alive
_SAY_AFTER_S = 2.0  # decoding once says so in one line when it takes longer than this


class BatchPipeline:
    """Batches of (seed, step) from `source`, this process's slice of each.

    Args:
      source: a random-access source (`len`, `get(indices) -> dict of arrays`).
      global_batch_size: examples per step over all processes.
      seed: the data seed (the order of each epoch).
      process_index, process_count: this process and how many read the global batch.
      steps_per_call: steps per device call; their batches are stacked on a leading axis.
      prefetch: device calls read ahead by `iterate` beyond the one being consumed.
      workers: worker processes reading batches (0: a reader thread in this process).
      in_memory_mb: decode the whole dataset once and hold it in memory when its decoded
        arrays fit in this many MiB (0: never).
      mp_context: the multiprocessing start method of the workers (None: forkserver
        where the platform has it, else spawn; fork is not safe once jax runs threads).
      verbose: say (on process 0) when decoding once takes more than a few seconds.
    """

    def __init__(self, source, global_batch_size: int, seed: int, *, process_index: int = 0,
                 process_count: int = 1, steps_per_call: int = 1, prefetch: int = 2,
                 workers: int = 0, in_memory_mb: int = 0, mp_context: str | None = None,
                 verbose: bool = True):
        n = len(source)
        if global_batch_size > n:
            raise UserError(
                f"train.batch_size={global_batch_size} is larger than the dataset ({n} examples). "
                "Lower train.batch_size.")
        if global_batch_size % process_count:
            raise UserError(
                f"train.batch_size={global_batch_size} must be divisible by the number of "
                f"processes ({process_count}).")
        if workers < 0 or in_memory_mb < 0:
            raise UserError(f"workers={workers} and in_memory_mb={in_memory_mb} must be >= 0.")
        self.source = source
        self.num_examples = n
        self.batch_size = global_batch_size
        self.seed = int(seed)
        self.process_index = process_index
        self.process_count = process_count
        self.local_batch_size = global_batch_size // process_count
        self.steps_per_call = steps_per_call
        self.steps_per_epoch = n // global_batch_size
        self.prefetch = prefetch
        self.workers = int(workers)
        self.in_memory_mb = int(in_memory_mb)
        self.mp_context = mp_context
        self.verbose = verbose
        self._order_cache: tuple[int, np.ndarray] | None = None
        self._memory: dict[str, np.ndarray] | None = _held_arrays(source)
        self._payload: bytes | None = None
        self.decoded_mb: float | None = None
        if self._memory is not None:
            self.read_mode = "memory"
            self.decoded_mb = sum(a.nbytes for a in self._memory.values()) / 2**20
            return
        self._example_bytes = None
        if self.in_memory_mb or self.workers:
            self._example_bytes = _example_bytes(source)
            self.decoded_mb = self._example_bytes * n / 2**20
        if self.in_memory_mb and self.decoded_mb <= self.in_memory_mb:
            self.read_mode = "memory"
            if self.workers:  # the workers decode it once, if they can have the source
                try:
                    self._payload = _pickle_source(source, self.workers)
                except UserError:
                    self._payload = None
        elif self.workers:
            self.read_mode = "workers"
            self._payload = _pickle_source(source, self.workers)
        else:
            self.read_mode = "thread"

    # ------------------------------------------------------------------ which examples

    def _order(self, epoch: int) -> np.ndarray:
        if self._order_cache is None or self._order_cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order_cache = (epoch, rng.permutation(self.num_examples))
        return self._order_cache[1]

    def global_indices(self, step: int) -> np.ndarray:
        epoch, i = divmod(int(step), self.steps_per_epoch)
        return self._order(epoch)[i * self.batch_size:(i + 1) * self.batch_size]

    def local_indices(self, step: int) -> np.ndarray:
        lo = self.process_index * self.local_batch_size
        return self.global_indices(step)[lo:lo + self.local_batch_size]

    def _call_indices(self, step: int) -> list[np.ndarray]:
        return [self.local_indices(s) for s in range(step, step + self.steps_per_call)]

    def position(self, step: int) -> dict:
        epoch, i = divmod(int(step), self.steps_per_epoch)
        return {"seed": self.seed, "next_step": int(step), "epoch": epoch,
                "batch_in_epoch": i, "steps_per_epoch": self.steps_per_epoch,
                "examples_seen": int(step) * self.batch_size}

    # ------------------------------------------------------------------------ reading

    def local_batch(self, step: int) -> dict[str, np.ndarray]:
        """This process's slice of the batches for steps [step, step + steps_per_call)."""
        if self.read_mode == "memory":
            arrays = self.decode_once()
            parts = self._call_indices(step)
            idx = parts[0] if len(parts) == 1 else np.concatenate(parts)
            return _split_rows({k: np.take(a, idx, axis=0) for k, a in arrays.items()},
                               len(parts))
        return _assemble([self.source.get(idx) for idx in self._call_indices(step)])

    def decode_once(self) -> dict[str, np.ndarray]:
        """The whole dataset as arrays (read_mode "memory"), decoded on first use: records
        0..N-1 in order, in chunks, by the workers when there are some."""
        if self._memory is None:
            if self.read_mode != "memory":
                raise RuntimeError(f"decode_once: read_mode is {self.read_mode!r}")
            self._memory = _decode_all(self)
        return self._memory

    def iterate(self, start_step: int, end_step: int, place=None) -> Iterator[tuple[int, dict]]:
        """Yields (step, batch) for each device call, read ahead in a thread: `prefetch + 1`
        calls at most (bounded memory). `place(local batch)`, if given, also runs in that
        thread (e.g. the transfer to the devices), so the training thread only dispatches.
        With workers, at most max(prefetch + 1, 2 * workers) calls are being read by them
        at once. The batches are the same whatever the read-ahead and the way they are
        read: a pure function of (seed, step)."""
        steps = range(start_step, end_step, self.steps_per_call)
        if not steps:
            return
        reader = None
        if self.read_mode == "memory":
            self.decode_once()
        elif self.read_mode == "workers":
            reader = _WorkerReader(self, steps)

        def read(i, s):
            local = self.local_batch(s) if reader is None else reader.read(i)
            return local if place is None else place(local)

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        queue = collections.deque()
        try:
            it = iter(enumerate(steps))
            for i, s in it:
                queue.append((s, pool.submit(read, i, s)))
                if len(queue) > self.prefetch:
                    break
            while queue:
                s, fut = queue.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    queue.append((nxt[1], pool.submit(read, *nxt)))
                yield s, fut.result()
        finally:
            for _, fut in queue:
                fut.cancel()
            if reader is not None:
                reader.stop()  # a read waiting for a worker gives up
            pool.shutdown(wait=True)
            if reader is not None:
                reader.close()


# ---------------------------------------------------------------------------- helpers


def _held_arrays(source) -> dict[str, np.ndarray] | None:
    """The arrays of a source that is arrays already (`ArraySource`): gathered from as
    they are, no copy; `get` would index the same arrays."""
    from jaxgen.data.sources import ArraySource
    if type(source) is not ArraySource:
        return None
    out = {"x": source.x}
    if source.label is not None:
        out["label"] = source.label
    return out


def _example_bytes(source) -> int:
    """Bytes of one decoded example (all keys), from reading example 0."""
    probe = source.get(np.zeros((1,), np.int64))
    return sum(np.asarray(v).nbytes // max(1, len(v)) for v in probe.values())


def _pickle_source(source, workers: int) -> bytes:
    try:
        return pickle.dumps(source, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # PicklingError, TypeError (locks, files), AttributeError (local)
        raise UserError(
            f"train.data_workers={workers}: the dataset's source {type(source).__name__} "
            f"cannot be sent to worker processes ({type(e).__name__}: {e}). Set "
            "train.data_workers=0 (a reader thread), or make the source picklable (a "
            "class defined at module level holding file names and settings, not open "
            "handles, or a `__reduce__` that rebuilds it from them).") from e


def _assemble(parts: list[dict]) -> dict[str, np.ndarray]:
    """The batch of one call from the `get` of each of its steps (stacked when several)."""
    if len(parts) == 1:
        return parts[0]
    return {k: np.stack([p[k] for p in parts]) for k in parts[0]}


def _split_rows(arrays: dict, calls: int) -> dict[str, np.ndarray]:
    """Rows of `calls` equal steps, concatenated, as a (calls, B, ...) stack."""
    if calls == 1:
        return arrays
    return {k: v.reshape(calls, -1, *v.shape[1:]) for k, v in arrays.items()}


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _context(name: str | None):
    if name is None:
        name = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
            else "spawn"
    ctx = multiprocessing.get_context(name)
    if name == "forkserver":
        # the workers fork from a server that has imported this module (and with it jax):
        # a pool then starts in a fraction of a second instead of a fresh import each.
        from multiprocessing import forkserver
        mods = list(getattr(forkserver._forkserver, "_preload_modules", ["__main__"]))
        if __name__ not in mods:
            ctx.set_forkserver_preload([*mods, __name__])
    return ctx


def _decode_all(p: BatchPipeline) -> dict[str, np.ndarray]:
    """Records 0..N-1 of p.source into one array per key, in chunks of ~8 MiB; by the
    workers when p.workers and the source pickles. One line says so when it is slow."""
    n, src = p.num_examples, p.source
    chunk = int(max(1, min(n, _CHUNK_BYTES // max(1, p._example_bytes))))
    bounds = [(lo, min(n, lo + chunk)) for lo in range(0, n, chunk)]
    say = p.verbose and p.process_index == 0
    t0 = time.perf_counter()
    progress = _Progress(n, p.decoded_mb, say)
    pool = None
    if p.workers and p._payload is not None and len(bounds) > 1:
        slots = 2 * p.workers
        pool = _Pool(p._payload, p.workers, chunk * p._example_bytes, slots, p.mp_context)
    try:
        first = src.get(np.arange(*bounds[0]))
        out = {k: np.empty((n, *np.shape(v)[1:]), np.asarray(v).dtype) for k, v in first.items()}
        _store(out, first, *bounds[0])
        progress.update(bounds[0][1], time.perf_counter() - t0)
        rest = bounds[1:]
        if pool is None:
            for lo, hi in rest:
                _store(out, src.get(np.arange(lo, hi)), lo, hi)
                progress.update(hi, time.perf_counter() - t0)
        else:
            ahead = collections.deque()
            todo = iter(rest)
            for lo, hi in todo:
                ahead.append((pool.submit([np.arange(lo, hi)], f"examples {lo}..{hi - 1}"),
                              lo, hi))
                if len(ahead) >= pool.slots:
                    break
            while ahead:
                tid, lo, hi = ahead.popleft()
                got = pool.result(tid)
                _store(out, got[0] if isinstance(got, list) else got, lo, hi)
                progress.update(hi, time.perf_counter() - t0)
                nxt = next(todo, None)
                if nxt is not None:
                    ahead.append((pool.submit([np.arange(*nxt)],
                                              f"examples {nxt[0]}..{nxt[1] - 1}"), *nxt))
    finally:
        if pool is not None:
            pool.stop()
            pool.close()
    progress.done(time.perf_counter() - t0)
    return out


def _store(out: dict, got: dict, lo: int, hi: int) -> None:
    if set(got) != set(out):
        raise ValueError(f"source.get gave keys {sorted(got)} for examples {lo}..{hi - 1} "
                         f"but {sorted(out)} for example 0")
    for k, v in got.items():
        v = np.asarray(v)
        if v.shape[1:] != out[k].shape[1:] or len(v) != hi - lo:
            raise ValueError(
                f"source.get gave {k!r} of shape {v.shape} for examples {lo}..{hi - 1}; "
                f"expected {(hi - lo, *out[k].shape[1:])}: every example must have the "
                "same shape")
        out[k][lo:hi] = v


class _Progress:
    """One line: "jaxgen: decoding ... into memory ... 10% 20% ... done in T s", begun
    once the first chunk says the whole will take more than a couple of seconds."""

    def __init__(self, n: int, mb: float, enabled: bool):
        self.n, self.mb, self.enabled = n, mb, enabled
        self.started = False
        self.shown = 0

    def update(self, done: int, elapsed: float) -> None:
        if not self.enabled:
            return
        if not self.started:
            estimate = elapsed * self.n / max(1, done)
            if estimate < _SAY_AFTER_S or done >= self.n:
                self.enabled = False
                return
            print(f"jaxgen: decoding the {self.n:,} examples into memory once "
                  f"({self.mb:,.0f} MiB, ~{max(1, round(estimate))} s) ...", end="", flush=True)
            self.started = True
        pct = int(100 * done / self.n) // 10 * 10
        if pct > self.shown and pct < 100:
            self.shown = pct
            print(f" {pct}%", end="", flush=True)

    def done(self, elapsed: float) -> None:
        if self.started:
            print(f" done in {elapsed:.1f} s", flush=True)


# ---------------------------------------------------------------------------- workers


class _WorkerError(Exception):
    """The traceback of an exception raised in a data worker (its __cause__)."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return f"\n\"\"\"\n{self.tb}\"\"\""


class _Stopped(Exception):
    pass


class _Pool:
    """`workers` processes calling `source.get` on lists of index arrays (tasks), each
    task's result written into one slot of a shared-memory block; tasks go to the workers
    in turn and their results are taken in the order they were submitted, `slots` of them
    at most outstanding. Results that do not fit a slot (or keys of other shapes) come back
    pickled through the worker's pipe; so does everything when /dev/shm is too small."""

    def __init__(self, payload: bytes, workers: int, slot_bytes: int, slots: int,
                 context: str | None):
        self.workers = workers
        self.slots = slots
        self.slot_bytes = _round_up(int(slot_bytes) + 8 * _ALIGN, _ALIGN)
        self.procs: list = []
        self.conns: list = []
        self.pending: collections.deque = collections.deque()  # (task id, what)
        self.next_id = 0
        self.stopping = False
        self.shm = None
        if _shm_room() >= 2 * self.slot_bytes * slots:
            self.shm = shared_memory.SharedMemory(create=True, size=self.slot_bytes * slots)
        else:
            self.slot_bytes = 0
        self._finalizer = weakref.finalize(self, _shutdown, self.procs, self.conns, self.shm)
        ctx = _context(context)
        try:
            for k in range(workers):
                here, there = ctx.Pipe(duplex=True)
                proc = ctx.Process(target=_worker_main, name=f"jaxgen-data-{k}", daemon=True,
                                   args=(payload, self.shm.name if self.shm else None, there))
                proc.start()
                there.close()
                self.procs.append(proc)
                self.conns.append(here)
        except BaseException:
            self._finalizer()
            raise

    def submit(self, index_lists: list[np.ndarray], what: str) -> int:
        if len(self.pending) >= self.slots:
            raise RuntimeError("more data tasks in flight than shared-memory slots")
        tid = self.next_id
        self.next_id += 1
        slot = (tid % self.slots) * self.slot_bytes
        k = tid % self.workers
        try:
            self.conns[k].send((tid, slot, self.slot_bytes, index_lists))
        except (BrokenPipeError, ConnectionResetError, OSError):
            self._dead(k, what)
        self.pending.append((tid, what))
        return tid

    def _dead(self, k: int, what: str):
        proc = self.procs[k]
        proc.join(_POLL_S)
        code = proc.exitcode
        why = " (killed: out of memory?)" if code == -signal.SIGKILL else ""
        raise RuntimeError(f"data worker {k} (pid {proc.pid}) exited with code {code}{why} "
                           f"before reading {what}.")

    def result(self, tid: int):
        """Task `tid`'s result (the oldest outstanding): one dict of the index lists' rows
        concatenated, or the list of `get` results when they came back pickled."""
        first, what = self.pending[0]
        if first != tid:
            raise RuntimeError(f"data task {tid} asked for before task {first}")
        k = tid % self.workers
        conn, proc = self.conns[k], self.procs[k]
        while not conn.poll(_POLL_S):
            if self.stopping:
                raise _Stopped()
            if proc.exitcode is not None and not conn.poll(0):
                self._dead(k, what)
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            self._dead(k, what)
        self.pending.popleft()
        kind, got = msg[0], msg[1]
        if kind == "error":
            _reraise(msg, f"data worker {k}, reading {what}" if got is not None
                     else f"data worker {k}, loading the dataset's source")
        if got != tid:
            raise RuntimeError(f"data worker {k} answered task {got} for task {tid}")
        if kind == "parts":
            return msg[2]
        base = (tid % self.slots) * self.slot_bytes
        buf = self.shm.buf
        try:
            return {key: np.ndarray(shape, dtype, buffer=buf, offset=base + off).copy()
                    for key, dtype, shape, off in msg[2]}
        finally:
            del buf

    def stop(self) -> None:
        """Tells the workers to finish and waits (2 s, then kills them); a `result` waiting
        in another thread raises."""
        self.stopping = True
        _stop_procs(self.procs, self.conns)

    def close(self) -> None:
        self.stopping = True
        self._finalizer()


def _shm_room() -> int:
    try:
        st = os.statvfs("/dev/shm")
        return st.f_bavail * st.f_frsize
    except OSError:
        return 1 << 62  # no /dev/shm to measure (not Linux): shared memory lives elsewhere


def _stop_procs(procs, conns) -> None:
    for c in conns:
        try:
            c.send(None)
        except Exception:
            pass
    deadline = time.monotonic() + 2.0
    for p in procs:
        if p.pid is not None:
            p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.pid is not None and p.is_alive():
            p.kill()  # the workers ignore SIGTERM (see _worker_main)
            p.join(1.0)


def _shutdown(procs, conns, shm) -> None:
    _stop_procs(procs, conns)
    for c in conns:
        c.close()
    if shm is not None:
        try:
            shm.close()
        except BufferError:  # a view is still alive somewhere; the mapping goes with it
            pass
        try:
            shm.unlink()
        except FileNotFoundError:
            pass


def _reraise(msg, where: str):
    """Raises a worker's exception here: the same type and message where it pickles (else
    a RuntimeError naming its type), with the worker's traceback as its cause."""
    _, _, blob, type_name, text, tb = msg
    exc = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RuntimeError(f"{type_name}: {text}")
    exc.add_note(f"(raised in {where})")
    raise exc from _WorkerError(tb)


class _WorkerReader:
    """A pool reading the calls of `steps` in order, `ahead` calls at most in flight; its
    `read(i)` (call i's batch) runs in the pipeline's reader thread."""

    def __init__(self, p: BatchPipeline, steps: range):
        self.p, self.steps = p, steps
        self.ahead = max(p.prefetch + 1, 2 * p.workers)
        rows = p.local_batch_size * p.steps_per_call
        self.pool = _Pool(p._payload, p.workers, rows * p._example_bytes, self.ahead,
                          p.mp_context)
        self.submitted = 0
        try:
            self._fill(0)
        except BaseException:
            self.pool.stop()
            self.pool.close()
            raise

    def _fill(self, i: int) -> None:
        while self.submitted < min(len(self.steps), i + self.ahead):
            s = self.steps[self.submitted]
            k = self.p.steps_per_call
            what = f"step {s}" if k == 1 else f"steps {s}..{s + k - 1}"
            self.pool.submit(self.p._call_indices(s), what)
            self.submitted += 1

    def read(self, i: int) -> dict[str, np.ndarray]:
        self._fill(i)
        got = self.pool.result(i)
        if isinstance(got, list):
            return _assemble(got)
        return _split_rows(got, self.p.steps_per_call)

    def stop(self) -> None:
        self.pool.stop()

    def close(self) -> None:
        self.pool.close()


def _attach(name: str):
    """The shared-memory block `name`, opened without registering it with the resource
    tracker: the process that created it unlinks it (Python < 3.13 registers every open)."""
    try:
        return shared_memory.SharedMemory(name=name, track=False)
    except TypeError:
        pass
    from multiprocessing import resource_tracker
    register = resource_tracker.register
    resource_tracker.register = lambda *a, **k: None
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register


def _error_message(tid, e: BaseException) -> tuple:
    try:
        blob = pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(blob)
    except Exception:
        blob = None
    return ("error", tid, blob, type(e).__name__, str(e), traceback.format_exc())


def _write_slot(tid, parts, index_lists, buf, base: int, size: int) -> tuple:
    """("shm", tid, layout): the parts' rows written into the slot at `base`; or
    ("parts", tid, parts) when they do not fit or are not rows of one shape per key."""
    keys = list(parts[0])
    arrays = [{k: np.asarray(p[k]) for k in keys} if list(p) == keys else None for p in parts]
    fits = buf is not None and all(a is not None for a in arrays)
    layout, off = [], 0
    if fits:
        for k in keys:
            first = arrays[0][k]
            rows = 0
            for a, idx in zip(arrays, index_lists):
                v = a[k]
                if (v.ndim == 0 or len(v) != len(idx) or v.dtype != first.dtype
                        or v.dtype.hasobject or v.shape[1:] != first.shape[1:]):
                    fits = False
                rows += len(v) if v.ndim else 0
            if not fits:
                break
            off = _round_up(off, _ALIGN)
            layout.append((k, first.dtype, (rows, *first.shape[1:]), off))
            off += rows * math.prod(first.shape[1:]) * first.dtype.itemsize
        fits = fits and off <= size
    if not fits:
        return ("parts", tid, parts)
    for k, dtype, shape, o in layout:
        dst = np.ndarray(shape, dtype, buffer=buf, offset=base + o)
        np.concatenate([a[k] for a in arrays], axis=0, out=dst)
        del dst
    return ("shm", tid, layout)


def _worker_main(payload: bytes, shm_name: str | None, conn) -> None:
    """A data worker: loads the source, then answers (task id, slot offset, slot size,
    index lists) until it gets None or the pipe closes (the parent is gone)."""
    # The parent decides when the workers stop: Ctrl-C or a scheduler's SIGTERM sent to
    # the whole process group lets the training process save first, then close them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ["JAX_PLATFORMS"] = "cpu"  # a source that uses jax leaves the accelerator be
    if "jax" in sys.modules:
        try:
            sys.modules["jax"].config.update("jax_platforms", "cpu")
        except Exception:
            pass
    try:
        source = pickle.loads(payload)
        shm = _attach(shm_name) if shm_name else None
    except BaseException as e:
        try:
            conn.send(_error_message(None, e))
        finally:
            conn.close()
        return
    buf = shm.buf if shm is not None else None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        tid, base, size, index_lists = msg
        try:
            parts = [source.get(idx) for idx in index_lists]
            reply = _write_slot(tid, parts, index_lists, buf, base, size)
        except BaseException as e:
            reply = _error_message(tid, e)
        try:
            conn.send(reply)
        except (BrokenPipeError, ConnectionResetError, OSError):
            return
        except Exception as e:  # a "parts" reply that does not pickle
            try:
                conn.send(_error_message(tid, e))
            except Exception:
                return
