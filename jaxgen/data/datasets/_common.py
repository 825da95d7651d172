"""What several datasets share: their common settings and the helpers that read the
user's files."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxgen.kernel.errors import MissingError, UserError
from jaxgen.kernel.settings import non_negative, setting


def positive_int(v):
    return None if v >= 1 else "must be a positive integer"


@dataclasses.dataclass(frozen=True)
class DrawnSettings:
    """A dataset drawn from a known distribution: a fixed training set and an independent
    held-out set, both a function of data.seed."""

    num_train: int = setting(200_000, "toy data: size of the (fixed) training set",
                             check=positive_int)
    num_eval: int = setting(20_000, "toy data: size of the held-out set", check=positive_int)
    seed: int = setting(0, "which toy sample is drawn (independent of seed)",
                        check=non_negative)


def draw(toy, s: DrawnSettings, split: str) -> np.ndarray:
    """num_train ("train") or num_eval ("test") points of `toy`, from
    `np.random.default_rng([seed, 0])` resp. `[seed, 1]`: the held-out set is independent
    of the training set and both are deterministic."""
    train = split == "train"
    return toy.sample(np.random.default_rng([s.seed, 0 if train else 1]),
                      s.num_train if train else s.num_eval)


CLASSES_DOC = "labelled data: keep only these labels, e.g. (7, 9); () = all"


def keep_classes(src, classes):
    """data.classes (non-empty): only the examples of those labels (both splits)."""
    if not classes:
        return src
    from jaxgen.data.sources import SubsetSource
    return SubsetSource(src, classes)


def users(read, *args):
    """read(*args) of the user's files or prepared data; what is wrong with them (the
    sources' ValueError / FileNotFoundError, and numpy's on a damaged file) is the user's
    to fix: a UserError / MissingError with the same message."""
    try:
        return read(*args)
    except FileNotFoundError as e:
        raise MissingError(str(e)) from e
    except ValueError as e:
        raise UserError(str(e)) from e


def split_path(s, name: str, split: str, what: str, hint: str) -> str:
    """data.path ("train") or data.eval_path ("test") of a file-backed dataset, or one
    error."""
    key = "path" if split == "train" else "eval_path"
    path = getattr(s, key) or ""
    if not path:
        raise UserError(f"data.name={name} needs data.{key}={what} for split {split!r}; "
                        f"{hint}.")
    return path


def kind_of(source) -> str:
    return "points" if len(source.event_shape) == 1 else "images"
