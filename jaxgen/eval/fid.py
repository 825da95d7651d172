"""Inception FID and IS at paper scale, streamed: the numbers papers print.

FID (Heusel et al., 2017) is the Fréchet distance (`jaxgen.eval.frechet.frechet_distance`)
between Gaussians fitted to the 2048-d pool features of pytorch-fid's Inception-V3
(`jaxgen.eval.inception`) on N generated images and on the reference data. IS (Salimans et
al., 2016) is exp E_x KL(p(y|x) || p(y)) of its 1008-way logits, over 10 splits.

Nothing here holds N images. Samples are drawn `batch` at a time on the devices, split over
the mesh (`Experiment.sample_on_devices`); the feature network takes them where they are,
and only their features reach the host, where they are folded into running sums:

    GaussianAccumulator   sum (f - k) and sum (f - k)(f - k)^T in float64 (k: the first
                          batch's mean, a shift against cancellation) -> mu, sigma; equal to
                          the one-shot mean and unbiased covariance to float64 rounding
    ISAccumulator         per split: sum p(y|x) and sum sum_y p log p (exact)

so the host holds two 2048x2048 float64 matrices (32 MiB each at most) and one batch of
features, whatever N is.

Reproducibility. Sample batch i of seed set s is drawn with key fold_in(key(s), i); N, the
seeds, the batch, the reference statistics' file and SHA-256, the Inception weights'
SHA-256, the sampler and its NFE, and the run's global batch, device count and EMA rate
are recorded with the number (the usual reasons a published FID is not reproduced).
EDM's protocol (Karras et al., 2022, Sec. 5: the minimum of three FIDs of 50k samples with
different seeds) is eval.fid_seeds=3: each seed set's FID, their mean and their minimum.

Reference statistics are pytorch-fid's `.npz` (arrays `mu`, `sigma`), read with
allow_pickle=False, so the published files (pytorch-fid's, EDM's fid-refs) are used as
they are; `jaxgen fid-stats` writes them for any registered dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import resource
import time
from pathlib import Path

import jax
import numpy as np

from jaxgen.eval import inception
from jaxgen.eval.frechet import frechet_distance
from jaxgen.eval.inception import ISAccumulator, file_sha256
from jaxgen.kernel.errors import MissingError, UserError
from jaxgen.kernel.progress import progress_bar

__all__ = ["GaussianAccumulator", "read_stats", "write_stats", "file_sha256",
           "dataset_stats", "reference_stats", "sample_scores", "FeatureNet"]


class GaussianAccumulator:
    """Mean and unbiased covariance of feature rows fed in any chunks."""

    def __init__(self):
        self.n = 0
        self.shift = None
        self.s = None
        self.ss = None

    def add(self, features) -> None:
        f = np.asarray(features, np.float64)
        f = f.reshape(len(f), -1)
        if not len(f):
            return
        if self.shift is None:
            self.shift = f.mean(axis=0)
            self.s = np.zeros_like(self.shift)
            self.ss = np.zeros((f.shape[1], f.shape[1]))
        g = f - self.shift
        self.n += len(f)
        self.s += g.sum(axis=0)
        self.ss += g.T @ g

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise UserError(f"FID needs at least 2 images, got {self.n}.")
        m = self.s / self.n
        sigma = (self.ss - self.n * np.outer(m, m)) / (self.n - 1)
        return self.shift + m, (sigma + sigma.T) / 2


# ------------------------------------------------------------------ statistics files
def read_stats(path) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of a pytorch-fid statistics file (`.npz` with arrays mu and sigma)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingError(f"no reference statistics at {p} (eval.fid_ref). Use a published "
                           "file (pytorch-fid's or EDM's fid-refs .npz), or make one: "
                           "jaxgen fid-stats --config.data.name=NAME --out FILE.npz")
    try:
        with np.load(p, allow_pickle=False) as z:
            mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
    except (KeyError, ValueError, OSError) as e:
        raise UserError(f"{p} is not pytorch-fid statistics (an .npz of arrays 'mu' (d,) and "
                        f"'sigma' (d, d), no pickled objects): {e}") from e
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise UserError(f"{p}: mu {mu.shape} and sigma {sigma.shape} are not (d,) and (d, d).")
    return mu, sigma


def write_stats(path, mu, sigma, **meta) -> Path:
    """pytorch-fid's format (np.savez: mu, sigma), written whole or not at all; `meta`
    (strings) go into the same file as extra arrays, which pytorch-fid ignores."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".partial.npz")
    np.savez(tmp, mu=np.asarray(mu), sigma=np.asarray(sigma),
             **{k: np.asarray(str(v)) for k, v in meta.items()})
    os.replace(tmp, p)
    return p


# ------------------------------------------------------------------ the feature network
@dataclasses.dataclass
class FeatureNet:
    """The converted Inception-V3 and what identifies it."""

    fn: object  # uint8 images (N, H, W, C) -> (pool (N, 2048), logits (N, 1008))
    sha256: str
    path: str

    @classmethod
    def load(cls, path: str = "") -> FeatureNet:
        variables, sha = inception.load(path or None)
        where = Path(path).expanduser() if path else inception.default_path()
        return cls(inception.features_fn(variables), sha, str(where))


def _rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ reference data
def dataset_stats(dataset, net: FeatureNet, batch: int = 250, num: int = 0,
                  progress: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """(mu, sigma, n) of the pool features of `dataset`'s images (the first `num`, 0 = all),
    read `batch` at a time."""
    src = dataset.source
    n = len(src) if not num else min(num, len(src))
    acc = GaussianAccumulator()
    bar = progress_bar(n, 0, progress, desc=f"reference statistics ({dataset.name})",
                       unit="image")
    try:
        for lo in range(0, n, batch):
            x = src.get(np.arange(lo, min(lo + batch, n)))["x"]
            pool, _ = net.fn(x)
            acc.add(jax.device_get(pool))
            bar.update(len(x))
    finally:
        bar.close()
    mu, sigma = acc.stats()
    return mu, sigma, n


def _cache_dir() -> Path:
    return Path(os.environ.get("JAXGEN_CACHE") or "~/.cache/jaxgen").expanduser() / "fid_stats"


def reference_stats(data_config, net: FeatureNet, split: str = "train", batch: int = 250,
                    progress: bool = True) -> Path:
    """The statistics file of a registered dataset's split, computed once and cached under
    $JAXGEN_CACHE/fid_stats, keyed by the data settings and the Inception weights."""
    from jaxgen.data import get_dataset
    cfg = {k: data_config[k] for k in sorted(data_config)} if hasattr(data_config, "keys") \
        else dict(data_config)
    key = hashlib.sha256(json.dumps([cfg, split, net.sha256], sort_keys=True,
                                    default=str).encode()).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(cfg.get("name")))
    path = _cache_dir() / f"{name}_{split}_{key}.npz"
    if path.is_file():
        return path
    mu, sigma, n = dataset_stats(get_dataset(data_config, split), net, batch, progress=progress)
    return write_stats(path, mu, sigma, data=json.dumps(cfg, default=str), split=split, n=n,
                       inception_sha256=net.sha256)


# ------------------------------------------------------------------ samples
def _one_seed_set(exp, params, net, seed, num, batch, splits, bar):
    acc, isc = GaussianAccumulator(), ISAccumulator(num, splits)
    key = jax.random.key(seed)

    def fold(features, keep):  # the last batch is drawn whole, its surplus dropped
        pool, logits = jax.device_get(features)
        acc.add(pool[:keep])
        isc.add(logits[:keep])
        bar.update(keep)

    pending = None
    for i, lo in enumerate(range(0, num, batch)):
        images = exp.sample_on_devices(params, jax.random.fold_in(key, i), batch)
        features = net.fn(images)  # dispatched: the devices work on while the host folds
        if pending is not None:  # the previous batch's features into the running sums
            fold(*pending)
        pending = (features, min(batch, num - lo))
    fold(*pending)
    return acc.stats(), isc.result()


def sample_scores(exp, params, net: FeatureNet, ref_path, *, num: int, batch: int,
                  seed: int = 0, seeds: int = 1, splits: int = 10,
                  progress: bool = True) -> dict:
    """FID against the statistics at `ref_path` and IS of `num` samples of the run, for each
    of `seeds` seed sets (seed, seed + 1, ...), streamed `batch` samples at a time."""
    devices = exp.mesh.size
    if batch % devices:
        raise UserError(f"eval.fid_batch={batch} must be a multiple of the device count "
                        f"({devices}).")
    mu_r, sigma_r = read_stats(ref_path)
    bar = progress_bar(num * seeds, 0, progress, desc="Inception FID/IS samples",
                       unit="sample")
    fids, scores = [], []
    t0 = time.perf_counter()
    try:
        for s in range(seed, seed + seeds):
            (mu, sigma), (is_mean, is_std) = _one_seed_set(exp, params, net, s, num, batch,
                                                           splits, bar)
            if mu.shape != mu_r.shape:
                raise UserError(f"{ref_path} holds {len(mu_r)}-d statistics, the Inception "
                                f"pool features are {len(mu)}-d.")
            fids.append(frechet_distance(mu, sigma, mu_r, sigma_r))
            scores.append((is_mean, is_std))
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    out = {"fid": fids[0] if seeds == 1 else float(np.mean(fids)),
           "is": scores[0][0], "is_std": scores[0][1], "fid_n": num,
           "fid_seeds": f"{seed}..{seed + seeds - 1}: batch i of seed s drawn with "
                        f"fold_in(key(s), i), {batch} samples per batch",
           "fid_ref": str(ref_path), "fid_ref_sha256": file_sha256(ref_path),
           "inception_sha256": net.sha256, "fid_eval_devices": devices,
           "fid_images_per_s": round(num * seeds / seconds, 2),
           "fid_peak_host_mib": round(_rss_mib(), 1)}
    if seeds > 1:  # EDM's protocol
        out.update({"fid_per_seed": [float(f) for f in fids], "fid_min": float(min(fids)),
                    "fid_mean": float(np.mean(fids)),
                    "is_per_seed": [float(m) for m, _ in scores]})
    return out
