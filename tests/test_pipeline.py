"""The batch pipeline: deterministic, reshuffled per epoch, split across processes; read
in a thread, from memory after decoding once, or by worker processes, with the same
batches."""

import io
import multiprocessing
import time

import numpy as np
import pytest
from PIL import Image

from jaxgen.data.pipeline import BatchPipeline
from jaxgen.data.sources import ArraySource


class Source:
    def __init__(self, n):
        self.x = np.arange(n)

    def __len__(self):
        return len(self.x)

    def get(self, idx):
        return {"x": self.x[idx]}


def test_each_epoch_is_a_permutation_and_reshuffled():
    p = BatchPipeline(Source(100), 10, seed=3)
    assert p.steps_per_epoch == 10
    e0 = np.concatenate([p.global_indices(s) for s in range(10)])
    e1 = np.concatenate([p.global_indices(s) for s in range(10, 20)])
    assert sorted(e0) == list(range(100)) and sorted(e1) == list(range(100))
    assert not np.array_equal(e0, e1)


def test_remainder_is_dropped():
    p = BatchPipeline(Source(105), 10, seed=0)
    assert p.steps_per_epoch == 10
    assert len(set(np.concatenate([p.global_indices(s) for s in range(10)]))) == 100


def test_deterministic_and_seed_dependent():
    a = BatchPipeline(Source(50), 5, seed=1)
    b = BatchPipeline(Source(50), 5, seed=1)
    c = BatchPipeline(Source(50), 5, seed=2)
    for s in (0, 7, 23, 1000):
        np.testing.assert_array_equal(a.global_indices(s), b.global_indices(s))
    assert any(not np.array_equal(a.global_indices(s), c.global_indices(s)) for s in range(10))


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_process_slices_tile_the_global_batch(procs):
    ref = BatchPipeline(Source(64), 16, seed=0)
    parts = [BatchPipeline(Source(64), 16, seed=0, process_index=i, process_count=procs)
             for i in range(procs)]
    for s in range(9):
        joined = np.concatenate([p.local_batch(s)["x"] for p in parts])
        np.testing.assert_array_equal(joined, ref.local_batch(s)["x"])


def test_iterate_resumes_exactly_and_stacks_k_steps():
    p = BatchPipeline(Source(40), 4, seed=5)
    full = [b["x"] for _, b in p.iterate(0, 12)]
    resumed = [b["x"] for _, b in p.iterate(7, 12)]
    for a, b in zip(full[7:], resumed):
        np.testing.assert_array_equal(a, b)
    p2 = BatchPipeline(Source(40), 4, seed=5, steps_per_call=3)
    calls = list(p2.iterate(0, 12))
    assert [s for s, _ in calls] == [0, 3, 6, 9]
    np.testing.assert_array_equal(calls[1][1]["x"], np.stack(full[3:6]))
    assert p.position(13) == {"seed": 5, "next_step": 13, "epoch": 1, "batch_in_epoch": 3,
                              "steps_per_epoch": 10, "examples_seen": 52}


def test_errors():
    with pytest.raises(ValueError, match="larger than the dataset"):
        BatchPipeline(Source(10), 20, seed=0)
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        BatchPipeline(Source(100), 10, seed=0, process_count=3)


# ------------------------------------------------------- decoding sources, memory, workers


class PngSource:
    """Decodes one PNG per record on every read, like tfds's image features (module level:
    the workers unpickle it). `fail_at`: reading that record raises."""

    def __init__(self, n, shape=(6, 5, 3), fail_at=None):
        rng = np.random.default_rng(n)
        self.pngs = []
        for _ in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, shape, np.uint8).squeeze(-1)
                            if shape[-1] == 1 else rng.integers(0, 256, shape, np.uint8)
                            ).save(buf, format="PNG")
            self.pngs.append(buf.getvalue())
        self.shape, self.fail_at = shape, fail_at
        self.labels = (np.arange(n) * 7 % 10).astype(np.int32)

    def __len__(self):
        return len(self.pngs)

    def get(self, idx):
        idx = np.asarray(idx)
        if self.fail_at is not None and self.fail_at in idx:
            raise ValueError(f"record {self.fail_at} is damaged")
        x = np.stack([np.asarray(Image.open(io.BytesIO(self.pngs[i]))) for i in idx])
        return {"x": x.reshape(len(idx), *self.shape), "label": self.labels[idx]}


def assert_same_batches(got, want):
    assert [s for s, _ in got] == [s for s, _ in want]
    for (_, a), (_, b) in zip(got, want):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
            np.testing.assert_array_equal(a[k], b[k])


def test_decoded_once_equals_per_batch_reads_across_an_epoch():
    src = PngSource(90)
    ref = BatchPipeline(src, 16, seed=4, steps_per_call=2)  # 5 steps an epoch
    mem = BatchPipeline(src, 16, seed=4, steps_per_call=2, in_memory_mb=1)
    assert (ref.read_mode, mem.read_mode) == ("thread", "memory")
    whole = mem.decode_once()
    np.testing.assert_array_equal(whole["x"], src.get(np.arange(90))["x"])
    np.testing.assert_array_equal(whole["label"], src.labels)
    assert whole["x"].flags.c_contiguous
    assert_same_batches(list(mem.iterate(0, 14)), list(ref.iterate(0, 14)))  # epochs 0-2
    assert_same_batches(list(mem.iterate(7, 12)), list(ref.iterate(7, 12)))
    assert BatchPipeline(src, 16, seed=4, in_memory_mb=0).read_mode == "thread"
    assert BatchPipeline(Source(200_000), 16, seed=4, in_memory_mb=1).read_mode == "thread"
    # an ArraySource is arrays already: gathered from them directly, no copy
    arr = ArraySource(src.get(np.arange(90))["x"], src.labels)
    held = BatchPipeline(arr, 16, seed=4, steps_per_call=2, workers=2)
    assert held.read_mode == "memory" and held.decode_once()["x"] is arr.x
    assert_same_batches(list(held.iterate(0, 14)), list(ref.iterate(0, 14)))


def test_decoding_once_says_so_when_slow(capsys, monkeypatch):
    import jaxgen.data.pipeline as pipeline
    monkeypatch.setattr(pipeline, "_SAY_AFTER_S", 0.0)
    monkeypatch.setattr(pipeline, "_CHUNK_BYTES", 20 * (90 + 4))  # 20 examples a chunk
    BatchPipeline(PngSource(100), 10, seed=0, in_memory_mb=1).local_batch(3)
    out = capsys.readouterr().out
    assert out.startswith("jaxgen: decoding the 100 examples into memory once (0 MiB, ~")
    assert " 20% 40% 60% 80% done in " in out and len(out.splitlines()) == 1
    BatchPipeline(PngSource(100), 10, seed=0, in_memory_mb=1, verbose=False).local_batch(3)
    assert capsys.readouterr().out == ""


WORKERS = pytest.mark.xdist_group("data_workers")  # one forkserver for the worker tests


@WORKERS
def test_workers_give_the_thread_batches_in_order_and_resume(monkeypatch):
    src = PngSource(64)
    ref = BatchPipeline(src, 8, seed=2)
    wrk = BatchPipeline(src, 8, seed=2, workers=2, prefetch=1)
    assert wrk.read_mode == "workers"
    assert_same_batches(list(wrk.iterate(0, 11)), list(ref.iterate(0, 11)))  # an epoch is 8
    assert_same_batches(list(wrk.iterate(5, 11)), list(ref.iterate(5, 11)))  # resumed
    k3 = dict(steps_per_call=3)
    assert_same_batches(list(BatchPipeline(src, 8, seed=2, workers=2, **k3).iterate(3, 12)),
                        list(BatchPipeline(src, 8, seed=2, **k3).iterate(3, 12)))
    import jaxgen.data.pipeline as pipeline
    with monkeypatch.context() as m:  # no room in /dev/shm: results come through the pipes
        m.setattr(pipeline, "_shm_room", lambda: 0)
        assert_same_batches(list(wrk.iterate(6, 10)), list(ref.iterate(6, 10)))
    # with workers, a dataset that fits is decoded once by them, then gathered in memory
    both = BatchPipeline(src, 8, seed=2, workers=2, in_memory_mb=1)
    monkeypatch.setattr(pipeline, "_CHUNK_BYTES", 10 * (90 + 4))  # 7 chunks
    np.testing.assert_array_equal(both.decode_once()["x"], src.get(np.arange(64))["x"])
    assert_same_batches(list(both.iterate(0, 11)), list(ref.iterate(0, 11)))
    assert not multiprocessing.active_children()


@WORKERS
def test_a_worker_exception_is_raised_with_its_message_and_workers_stop():
    src = PngSource(40, fail_at=13)
    p = BatchPipeline(src, 4, seed=0, workers=2)
    bad = next(s for s in range(10) if 13 in p.local_indices(s))
    got = []
    with pytest.raises(ValueError, match="record 13 is damaged") as e:
        for s, _ in p.iterate(0, 10):
            got.append(s)
    assert got == list(range(bad))  # the steps before it arrived, in order
    assert f"data worker {bad % 2}, reading step {bad}" in "".join(e.value.__notes__)
    assert "in get" in str(e.value.__cause__)  # the worker's traceback
    assert not multiprocessing.active_children()

    def interrupted():  # Ctrl-C in the training loop: the workers are closed, none left
        for s, _ in BatchPipeline(PngSource(40), 4, seed=0, workers=2).iterate(0, 10):
            if s == 2:
                raise KeyboardInterrupt
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert not multiprocessing.active_children() and time.perf_counter() - t0 < 10


@WORKERS
def test_a_dead_worker_and_an_unpicklable_source_are_clear_errors():
    class Local(PngSource):  # defined in a function: cannot be pickled
        pass
    with pytest.raises(ValueError, match=r"data_workers=2: the dataset's source Local cannot be "
                                         r"sent to worker processes.*data_workers=0"):
        BatchPipeline(Local(8), 4, seed=0, workers=2)
    assert BatchPipeline(Local(8), 4, seed=0, workers=2, in_memory_mb=1).read_mode == "memory"
    it = BatchPipeline(PngSource(40), 4, seed=0, workers=1).iterate(0, 10)
    next(it)
    it.gi_frame.f_locals["reader"].pool.procs[0].kill()
    with pytest.raises(RuntimeError, match=r"data worker 0 \(pid \d+\) exited with code -9 "
                                           r"\(killed: out of memory\?\) before reading step"):
        for _ in it:
            pass
    assert not multiprocessing.active_children()


@WORKERS
@pytest.mark.parametrize("mode", ["memory", "workers"])
def test_process_slices_tile_the_global_batch_when_decoded_once_or_by_workers(mode):
    src = PngSource(48)
    kw = {"in_memory_mb": 1} if mode == "memory" else {"workers": 1}
    ref = BatchPipeline(src, 12, seed=9)
    parts = [BatchPipeline(src, 12, seed=9, process_index=i, process_count=2, **kw)
             for i in range(2)]
    assert {p.read_mode for p in parts} == {mode}
    got = [list(p.iterate(2, 7)) for p in parts]
    for (s, a), (t, b), (u, want) in zip(*got, ref.iterate(2, 7)):
        assert s == t == u
        for k in want:
            np.testing.assert_array_equal(np.concatenate([a[k], b[k]]), want[k])
