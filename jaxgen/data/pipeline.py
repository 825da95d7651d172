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
"""

from __future__ import annotations

import collections
import concurrent.futures
from typing import Iterator

import numpy as np

from jaxgen.kernel.errors import UserError


class BatchPipeline:
    def __init__(self, source, global_batch_size: int, seed: int, *, process_index: int = 0,
                 process_count: int = 1, steps_per_call: int = 1, prefetch: int = 2):
        n = len(source)
        if global_batch_size > n:
            raise UserError(
                f"train.batch_size={global_batch_size} is larger than the dataset ({n} examples). "
                "Lower train.batch_size.")
        if global_batch_size % process_count:
            raise UserError(
                f"train.batch_size={global_batch_size} must be divisible by the number of "
                f"processes ({process_count}).")
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
        self._order_cache: tuple[int, np.ndarray] | None = None

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

    def position(self, step: int) -> dict:
        epoch, i = divmod(int(step), self.steps_per_epoch)
        return {"seed": self.seed, "next_step": int(step), "epoch": epoch,
                "batch_in_epoch": i, "steps_per_epoch": self.steps_per_epoch,
                "examples_seen": int(step) * self.batch_size}

    def local_batch(self, step: int) -> dict[str, np.ndarray]:
        """This process's slice of the batches for steps [step, step + steps_per_call)."""
        parts = [self.source.get(self.local_indices(s))
                 for s in range(step, step + self.steps_per_call)]
        if self.steps_per_call == 1:
            return parts[0]
        return {k: np.stack([p[k] for p in parts]) for k in parts[0]}

    def iterate(self, start_step: int, end_step: int, place=None) -> Iterator[tuple[int, dict]]:
        """Yields (step, batch) for each device call, read ahead in a thread: `prefetch + 1`
        calls at most (bounded memory). `place(local batch)`, if given, also runs in that
        thread (e.g. the transfer to the devices), so the training thread only dispatches.
        The batches are the same whatever the read-ahead: a pure function of (seed, step)."""
        steps = range(start_step, end_step, self.steps_per_call)

        def read(s):
            local = self.local_batch(s)
            return local if place is None else place(local)

        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            queue = collections.deque()
            it = iter(steps)
            for s in it:
                queue.append((s, pool.submit(read, s)))
                if len(queue) > self.prefetch:
                    break
            while queue:
                s, fut = queue.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    queue.append((nxt, pool.submit(read, nxt)))
                yield s, fut.result()
