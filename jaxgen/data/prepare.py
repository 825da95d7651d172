"""Datasets the user downloads (CIFAR-10, ImageNet 32x32 and 64x64), and `jaxgen prepare`,
which turns a download into the form that is fastest to train from.

Such a dataset (`Downloaded`) has one setting, `data.source`, and reads what it names:

* the download itself, read by the dataset's own reader (CIFAR-10's binary archive,
  ImageNet's `.npz` files);
* `tfds:DATA_DIR` (`tfds:` alone: tfds's default data_dir): tfds's copy of the same data,
  prepared as array_record, read with `tfds.data_source` (no TensorFlow);
* a folder `jaxgen prepare` wrote ("prepared"): per split, one uint8 `(N, H, W, C)` `.npy`
  of images and one int32 `(N,)` `.npy` of labels, read memory-mapped (`NpySource`), and
  the manifest `jaxgen-prepared.json` that makes the folder whole.

A prepared folder is also found by itself: `jaxgen prepare NAME --source S` writes
`jaxgen-NAME` next to the download (inside S when S is a folder, beside it when S is a
file, inside DATA_DIR for `tfds:DATA_DIR`), and `data.source=S` then reads that folder
instead of the download. If a download it was made from is still there but has another
size or modification time, reading it is one error asking to prepare again.

Writing is atomic: `prepare` fills `OUT.incomplete-PID` (marked as such) and renames it to
OUT once every file and the manifest are written, so an interrupted prepare leaves no
folder that is later read as whole (and the next prepare removes what it left). OUT is
replaced only when it is a folder `prepare` wrote (its manifest says so) or empty; the
same sources prepared again are left as they are (`--force` rewrites them).

No dataset is downloaded, ever: a missing file is one `MissingError` from the dataset's
reader naming the file, where to fetch it and where to put it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from jaxgen.data.sources import NpySource
from jaxgen.kernel.contract import Dataset
from jaxgen.kernel.errors import UsageError, UserError, choices_error
from jaxgen.kernel.progress import progress_bar
from jaxgen.kernel.registry import Command, DatasetSpec, register_command, register_dataset

MANIFEST = "jaxgen-prepared.json"
FORMAT = "jaxgen-prepared"  # the manifest's "format": what tells our folders from others
VERSION = 1
INCOMPLETE = ".incomplete-"  # OUT.incomplete-PID: a prepare still writing (or killed)
REPLACED = ".replaced-"  # OUT.replaced-PID: our older folder, removed once OUT is in place
MARKER = "jaxgen-prepare-incomplete"  # inside an incomplete folder
TFDS = "tfds:"
CHUNK_BYTES = 32 << 20  # images written per step of prepare
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclasses.dataclass(frozen=True)
class Downloaded:
    """A dataset read from files the user downloads.

    name: its data.name.
    event_shape / num_classes / class_names: what every split holds, whatever it is
      read from.
    read: `(path, split, whole) -> (source, files)`: the split read from the download at
      `path` ("train" or "test"), and the files it reads (recorded in the manifest).
      `whole=True` (prepare reads each file once, in order) may read a file whole where
      random access to it is not possible. It raises `MissingError` naming what to fetch.
    tfds_name / tfds_splits: tfds's name of the same data and its split for each of
      jaxgen's.
    """

    name: str
    event_shape: tuple
    num_classes: int
    read: Callable
    tfds_name: str
    tfds_splits: dict = dataclasses.field(
        default_factory=lambda: {"train": "train", "test": "test"})
    class_names: tuple = ()


_DOWNLOADED: dict[str, Downloaded] = {}


def register(d: Downloaded, settings: type, summary: str) -> Downloaded:
    """Registers `d` as a dataset (data.name=d.name; `settings` declares data.source and
    data.classes) and as one `jaxgen prepare` knows."""
    _DOWNLOADED[d.name] = d
    register_dataset(DatasetSpec(d.name, functools.partial(build, d), settings, summary,
                                 kind="images", class_names=d.class_names))
    return d


def downloaded(name: str) -> Downloaded:
    from jaxgen.kernel import registry
    registry.dataset_names()  # loads the built-in datasets, which register themselves
    if name not in _DOWNLOADED:
        raise choices_error("dataset to prepare", name, _DOWNLOADED)
    return _DOWNLOADED[name]


def build(d: Downloaded, s, split: str) -> Dataset:
    """A split of `d` from `s.source` (the download, tfds, or a prepared folder), keeping
    `s.classes`."""
    from jaxgen.data.datasets._common import keep_classes, users
    src = users(keep_classes, split_source(d, s.source, split), s.classes)
    return Dataset(d.name, "images", src, d.event_shape, d.num_classes,
                   class_names=d.class_names)


# ------------------------------------------------------------------------ reading


def prepared_dir(source: str, name: str) -> Path:
    """Where `jaxgen prepare NAME --source SOURCE` writes by default, and where
    data.source=SOURCE looks for it."""
    if source.startswith(TFDS):
        base = Path(source[len(TFDS):] or "~/tensorflow_datasets").expanduser()
    else:
        base = Path(source).expanduser()
        if not base.is_dir():
            base = base.parent
    return base / f"jaxgen-{name}"


def split_source(d: Downloaded, source: str, split: str):
    """The source of `split` that data.source=`source` names (module docstring)."""
    source = str(source)
    folders = [prepared_dir(source, d.name)]
    if not source.startswith(TFDS):
        path = Path(source).expanduser()
        if _SCHEME.match(source) and not path.exists():
            raise UserError(f"data.source={source}: {source.split(':')[0]}: is no source "
                            f"jaxgen reads; data.source is a path (the download, or a folder "
                            f"`jaxgen prepare {d.name}` wrote) or tfds:DATA_DIR.")
        folders.insert(0, path)
    for folder in folders:
        manifest = read_manifest(folder)
        if manifest is not None:
            return open_prepared(d, folder, manifest, split)
    return raw_source(d, source, split)[0]


def raw_source(d: Downloaded, source: str, split: str, whole: bool = False):
    """(source, files) of `split` read from the download or from tfds, never from a
    prepared folder."""
    if not source.startswith(TFDS):
        return d.read(os.fspath(Path(source).expanduser()), split, whole)
    from jaxgen.data.datasets._common import users
    from jaxgen.data.sources import tfds_source
    data_dir = source[len(TFDS):] or None
    src = users(tfds_source, d.tfds_name, d.tfds_splits[split], data_dir)
    if src.event_shape != tuple(d.event_shape) or src.num_classes != d.num_classes:
        raise UserError(f"tfds {d.tfds_name} in {data_dir or 'the default data_dir'} holds "
                        f"{src.event_shape} images of {src.num_classes} classes; {d.name} is "
                        f"{tuple(d.event_shape)}, {d.num_classes} classes.")
    folder = Path(src.data_source.dataset_info.data_dir)
    return src, sorted(p for p in folder.iterdir() if p.is_file())


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a folder `jaxgen prepare` wrote; None when there is none."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} cannot be read ({e}); delete {folder} and run jaxgen "
                        "prepare again.") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a manifest jaxgen prepare wrote; point data.source "
                        "elsewhere.")
    return manifest


def _again(d: Downloaded, folder: Path, manifest: dict) -> str:
    return (f"run `jaxgen prepare {d.name} --source {manifest.get('source', 'SOURCE')} --out "
            f"{folder} --force` again")


def open_prepared(d: Downloaded, folder: Path, manifest: dict, split: str) -> NpySource:
    """The `NpySource` of `split` in a prepared folder, after checking that it holds `d`,
    that its files have the sizes the manifest gives, and that no download it was made
    from has changed since."""
    if manifest.get("dataset") != d.name or manifest.get("version") != VERSION:
        raise UserError(f"{folder} holds {manifest.get('dataset')} prepared by jaxgen "
                        f"(format version {manifest.get('version')}), not {d.name} (version "
                        f"{VERSION}); point data.source at {d.name}'s download or prepared "
                        "folder.")
    changed = changed_sources(manifest)
    if changed:
        raise UserError(f"{folder} was prepared from {changed[0]}, which has changed since "
                        f"(size or modification time); {_again(d, folder, manifest)}.")
    entry = (manifest.get("splits") or {}).get(split)
    if not isinstance(entry, dict) or not {"images", "labels", "bytes", "count"} <= set(entry):
        raise UserError(f"{folder / MANIFEST} lists no whole {split} split; "
                        f"{_again(d, folder, manifest)}.")
    for key in ("images", "labels"):
        path = folder / entry[key]
        size = path.stat().st_size if path.is_file() else None
        if size != entry["bytes"][key]:
            raise UserError(f"{path} is {'missing' if size is None else f'{size} bytes'}, "
                            f"the manifest says {entry['bytes'][key]}: the prepared folder is "
                            f"damaged; {_again(d, folder, manifest)}.")
    from jaxgen.data.datasets._common import users
    src = users(NpySource, folder / entry["images"], folder / entry["labels"], d.num_classes)
    if src.event_shape != tuple(d.event_shape) or len(src) != entry["count"]:
        raise UserError(f"{folder}: {split} holds {len(src)} images {src.event_shape}, the "
                        f"manifest says {entry['count']} {tuple(d.event_shape)}; "
                        f"{_again(d, folder, manifest)}.")
    return src


def _stamp(path) -> dict:
    st = os.stat(path)
    return {"path": os.fspath(Path(path).resolve()), "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns}


def changed_sources(manifest: dict) -> list[str]:
    """The recorded sources that are still there with another size or modification time
    (one that is gone is no change: the download may be deleted once prepared)."""
    out = []
    for rec in manifest.get("sources", ()):
        path = rec.get("path", "")
        if os.path.isfile(path):
            now = _stamp(path)
            if (now["bytes"], now["mtime_ns"]) != (rec.get("bytes"), rec.get("mtime_ns")):
                out.append(path)
    return out


# ------------------------------------------------------------------------ writing


def _ours(folder: Path) -> bool:
    try:
        return read_manifest(folder) is not None
    except UserError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(out: Path, log) -> None:
    """Folders an earlier prepare of `out` left when it was killed: an incomplete one (our
    marker inside) or a replaced one (our manifest inside), whose process is gone."""
    for tag, mine in ((INCOMPLETE, lambda p: (p / MARKER).is_file()), (REPLACED, _ours)):
        for p in out.parent.glob(f"{out.name}{tag}*"):
            pid = p.name[len(out.name) + len(tag):]
            if p.is_dir() and pid.isdigit() and not _alive(int(pid)) and mine(p):
                log(f"jaxgen: removing {p}, left by an earlier prepare that did not finish")
                shutil.rmtree(p)


def _up_to_date(manifest: dict, d: Downloaded, files: list) -> bool:
    if manifest.get("dataset") != d.name or manifest.get("version") != VERSION:
        return False
    have = sorted((r["path"], r["bytes"], r["mtime_ns"]) for r in manifest.get("sources", ()))
    now = sorted((r["path"], r["bytes"], r["mtime_ns"]) for r in map(_stamp, files))
    return have == now


def prepare(name: str, source: str | None = None, out: str | os.PathLike | None = None,
            force: bool = False, log: Callable = print, every: float = 10.0) -> Path:
    """Writes the prepared form of dataset `name` read from `source` (its download, or
    `tfds:DATA_DIR`; default: data.source's default) into `out` (default: `prepared_dir`,
    where data.source=`source` finds it) and returns `out`.

    Nothing is written when `out` already holds these sources prepared (unless `force`).
    `out` is replaced only when it is a folder this function wrote, or empty.

    Raises:
      MissingError: a file of the download is missing (the message says where to get it).
      UserError: `out` is someone else's, too little free space, or the download is
        damaged.
    """
    d = downloaded(name)
    if source is None:
        from jaxgen.kernel.registry import dataset_spec
        from jaxgen.kernel.settings import defaults
        source = defaults(dataset_spec(name).settings)["source"]
    source = str(source)
    out = Path(out).expanduser() if out else prepared_dir(source, d.name)
    out = out.parent.resolve() / out.name
    if not source.startswith(TFDS) and read_manifest(Path(source).expanduser()) is not None:
        raise UserError(f"{source} is a folder jaxgen prepare wrote already; --source is the "
                        "download (or tfds:DATA_DIR).")
    splits = {split: raw_source(d, source, split, whole=True) for split in ("train", "test")}
    files = sorted({os.fspath(f) for _, fs in splits.values() for f in fs})
    if out.exists() or out.is_symlink():
        manifest = read_manifest(out) if out.is_dir() else None
        if manifest is None and not (out.is_dir() and not any(out.iterdir())):
            raise UserError(f"{out} exists and is not a folder jaxgen prepare wrote; it is "
                            "left as it is: pass another --out, or move it away.")
        if manifest is not None and not force and _up_to_date(manifest, d, files):
            log(f"jaxgen: {d.name} is prepared in {out} from these files already (--force "
                "writes it again)")
            return out
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out, log)
    per_image = math.prod(d.event_shape) + 4
    total = sum(len(src) for src, _ in splits.values())
    need = total * per_image + (1 << 20)
    free = shutil.disk_usage(out.parent).free
    if free < need:
        raise UserError(f"{out.parent} has {_bytes(free)} free; prepared {d.name} needs "
                        f"{_bytes(need)}. Free some space or pass --out elsewhere.")
    tmp = out.parent / f"{out.name}{INCOMPLETE}{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    (tmp / MARKER).write_text("written by jaxgen prepare; removed when it finishes\n")
    log(f"jaxgen: preparing {d.name} from {source} into {out} ({total:,} images, "
        f"{_bytes(total * per_image)}) ...")
    t0 = time.perf_counter()
    try:
        with progress_bar(total, 0, True, desc=f"jaxgen: prepare {d.name}", unit="image",
                          every=every) as progress:
            entries = {split: _write_split(tmp, split, src, d, progress)
                       for split, (src, _) in splits.items()}
        manifest = {"format": FORMAT, "version": VERSION, "dataset": d.name,
                    "event_shape": list(d.event_shape), "num_classes": d.num_classes,
                    "splits": entries, "sources": [_stamp(f) for f in files],
                    "source": source, "seconds": round(time.perf_counter() - t0, 3)}
        _write_atomic(tmp / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        (tmp / MARKER).unlink()
        _fsync_dir(tmp)
        replaced = None
        if out.is_dir() and _ours(out):
            replaced = out.parent / f"{out.name}{REPLACED}{os.getpid()}"
            os.rename(out, replaced)
        elif out.is_dir():
            out.rmdir()  # empty (checked above)
        os.rename(tmp, out)
        _fsync_dir(out.parent)
        if replaced is not None:
            shutil.rmtree(replaced)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    log(f"jaxgen: prepared {d.name} in {out}: "
        + ", ".join(f"{s} {e['count']:,}" for s, e in entries.items())
        + f" images in {seconds:.1f} s ({total / max(seconds, 1e-9):,.0f} images/s); train "
        f"with --config.data.source={source if out == prepared_dir(source, d.name) else out}")
    return out


def _bytes(n: float) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def _write_split(folder: Path, split: str, src, d: Downloaded, progress) -> dict:
    """`src` read in order into folder/SPLIT_images.npy and SPLIT_labels.npy."""
    n, shape = len(src), tuple(d.event_shape)
    names = {"images": f"{split}_images.npy", "labels": f"{split}_labels.npy"}
    images = np.lib.format.open_memmap(folder / names["images"], "w+", np.uint8, (n, *shape))
    labels = np.lib.format.open_memmap(folder / names["labels"], "w+", np.int32, (n,))
    step = max(1, CHUNK_BYTES // math.prod(shape))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        got = src.get(np.arange(lo, hi))
        x, y = np.asarray(got["x"]), np.asarray(got["label"])
        if x.shape[1:] != shape or x.dtype != np.uint8:
            raise UserError(f"{d.name} {split}: images {lo}..{hi - 1} are {x.dtype} "
                            f"{x.shape[1:]}, not uint8 {shape}.")
        if y.min() < 0 or y.max() >= d.num_classes:
            raise UserError(f"{d.name} {split}: labels of images {lo}..{hi - 1} lie in "
                            f"[{y.min()}, {y.max()}], outside 0..{d.num_classes - 1}.")
        images[lo:hi] = x
        labels[lo:hi] = y
        progress.update(hi - lo)
    for a in (images, labels):
        a.flush()
    del images, labels
    for name in names.values():
        _fsync(folder / name)
    return {**names, "count": n,
            "bytes": {k: (folder / v).stat().st_size for k, v in names.items()}}


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------------ command


def configure(p) -> None:
    p.add_argument("name", help="the dataset (its data.name), e.g. imagenet64")
    p.add_argument("--source", default=None,
                   help="the download: a file or folder, or tfds:DATA_DIR (default: "
                        "data.source's default)")
    p.add_argument("--out", default=None,
                   help="the folder to write (default: jaxgen-NAME next to the download, "
                        "where data.source=SOURCE finds it)")
    p.add_argument("--force", action="store_true",
                   help="write it again even when it holds these files prepared already")


def run(args, overrides) -> None:
    if overrides:
        raise UsageError("jaxgen prepare takes no --config overrides; name the download "
                         "with --source.")
    prepare(args.name, args.source, args.out, args.force)


register_command(Command("prepare", "turn a downloaded dataset into the form fastest to "
                                    "train from (memory-mapped .npy)", configure,
                         "jaxgen.data.prepare:run"))
