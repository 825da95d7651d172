"""The batch pipeline: deterministic, reshuffled per epoch, split across processes."""

import numpy as np
import pytest

from jaxgen.data.pipeline import BatchPipeline


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
