"""The dataset `data.name=codes`: a VQ-VAE's code maps, as `jaxgen codes` exports them
(.npz: "codes" (N, h, w) or one "codes_<level>" per level, "num_codes", "label", and the
VQ-VAE's workdir, which decodes a prior's samples back to images)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from jaxgen.data.datasets._common import CLASSES_DOC, keep_classes, split_path
from jaxgen.data.sources import ArraySource
from jaxgen.kernel.contract import Dataset
from jaxgen.kernel.errors import MissingError, UserError
from jaxgen.kernel.registry import DatasetSpec, register_dataset
from jaxgen.kernel.settings import setting


@dataclasses.dataclass(frozen=True)
class CodesSettings:
    path: str = setting("", "the training codes .npz (`jaxgen codes --split train`)")
    eval_path: str = setting("", "the held-out codes .npz (`jaxgen codes --split test`)")
    classes: tuple = setting((), CLASSES_DOC)
    decoder_workdir: str = setting("", "the VQ-VAE run that decodes samples ('': the one the "
                                       ".npz names)")
    levels: tuple = setting((), "codes of a multi-level VQ-VAE (VQ-VAE-2): the levels read, "
                                "e.g. ('top',), or ('top', 'bottom'): one sequence, the "
                                "first's codes first; (): the one-level file's codes")


def load_codes_file(path, levels: tuple = ()) -> tuple:
    """(ArraySource of int32 codes (N, h, w) [+ label], K, the VQ-VAE workdir or None).

    `levels` (a multi-level export's `codes_<level>` arrays, data.levels): one level keeps
    its (N, h, w) maps; several are flattened and concatenated, the first's first, into
    one (N, Σ h w) sequence (e.g. VQ-VAE-2's [top ; bottom], for a bottom prior that reads
    the top as a given prefix)."""
    path = os.path.expanduser(str(path))
    if not os.path.exists(path):
        raise MissingError(f"{path} does not exist; write it with `jaxgen codes "
                           "--workdir VQVAE_RUN --out FILE.npz`.")
    keys = [f"codes_{lv}" for lv in levels] or ["codes"]
    with np.load(path) as f:
        if any(k not in f.files for k in keys) or "num_codes" not in f.files:
            have = [str(v) for v in f["levels"]] if "levels" in f.files else []
            raise UserError(f"{path} holds {f.files}; data.name=codes reads {keys} and "
                            "'num_codes' (`jaxgen codes` writes them)"
                            + (f"; its levels: {have}, set data.levels" if have else "") + ".")
        maps = [np.asarray(f[k]) for k in keys]
        codes = maps[0] if len(maps) == 1 else np.concatenate(
            [m.reshape(len(m), -1) for m in maps], axis=1)
        k = int(f["num_codes"])
        label = np.asarray(f["label"]) if "label" in f.files else None
        decoder = str(f["vqvae_workdir"]) if "vqvae_workdir" in f.files else None
    if codes.ndim < 2 or not np.issubdtype(codes.dtype, np.integer):
        raise UserError(f"{path}: codes must be integer maps (N, h, w), got {codes.dtype} "
                        f"{codes.shape}.")
    if codes.min() < 0 or codes.max() >= k:
        raise UserError(f"{path}: codes lie in [{codes.min()}, {codes.max()}], outside "
                        f"[0, num_codes={k}).")
    return ArraySource(codes.astype(np.int32), label), k, decoder


def build(s: CodesSettings, split: str) -> Dataset:
    src, num_tokens, _ = load_codes_file(split_path(
        s, "codes", split, "FILE.npz", f"written by `jaxgen codes --workdir VQVAE_RUN --out "
        f"FILE.npz --split {split}`"), tuple(s.levels or ()))
    src = keep_classes(src, s.classes)
    return Dataset("codes", "tokens", src, src.event_shape, src.num_classes,
                   num_tokens=num_tokens)


def decoder(s: CodesSettings):
    from jaxgen.composed.decoding import run_decoder
    wd = s.decoder_workdir or (load_codes_file(s.path, tuple(s.levels or ()))[2]
                               if s.path else None)
    return run_decoder(wd, "grey code maps (no VQ-VAE run found to decode them: set "
                           "data.decoder_workdir)")


register_dataset(DatasetSpec("codes", build, CodesSettings,
                             "a VQ-VAE's code maps (`jaxgen codes` .npz)", kind="tokens",
                             held_out=lambda s: bool(s.eval_path), decoder=decoder))
