"""Lossless compression with an autoregressive model: `jaxgen compress` / `decompress`.

Encoding a batch of examples runs the model's `coder.step` (see
`jaxgen.families.autoregressive.objective`) over the D positions; at position i it
gives the conditionals p(x_i | x_<i) of every example in the batch, which
`quantized_cdf` turns into integer tables and the arithmetic coder uses to code
x_i. Decoding runs the same steps, feeding each decoded symbol back as the next
step's input, so both sides compute the same tables from the same compiled
function, shapes and inputs, bit for bit. The code length is then the model's
NLL in bits plus at most 2 bits for the whole stream, plus rounding of the
tables (about K/2^32 bits per symbol), plus the final byte's padding.

File layout (`.jgac`):

    b"JGAC" | version (u8) | header length (u32, little endian) | header (UTF-8 JSON)
    | payload (the arithmetic-coded stream)

The header records the examples' count, shape and dtype, the symbol alphabet,
the coder's batch size (which fixes the symbol order: batch, then position,
then example), the model (objective, model name, checkpoint step and a SHA-256
fingerprint of its parameters: decoding with other parameters would give
garbage, so it is refused) and the CRC-32 of the raw bytes, checked after
decoding.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import struct
import time
import zlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.coding.arithmetic import (
    PRECISION,
    TOTAL_BITS,
    ArithmeticDecoder,
    ArithmeticEncoder,
    quantized_cdf,
)
from jaxgen.kernel.errors import UserError

__all__ = ["Codec", "compress", "decompress", "read_header", "fingerprint", "baselines",
           "MAGIC", "FormatError"]

MAGIC = b"JGAC"
VERSION = 1


class FormatError(ValueError):
    """The file is not a jaxgen compressed file, or was made by another model."""


def fingerprint(params) -> str:
    """SHA-256 (hex, 16 chars) of the parameters' shapes, dtypes and bytes, in tree order."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        a = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


class Codec:
    """Arithmetic coding driven by an objective's `coder` (`jaxgen.kernel.contract.Coder`).

    Args:
      objective: an `Objective` with a `coder` (autoregressive on images or codes).
      params: the parameters to code with (the same on both sides).
      batch_size: examples coded side by side (one model call per position).
    """

    def __init__(self, objective, params, batch_size: int = 256):
        coder = objective.coder
        if coder is None:
            raise UserError(
                f"objective {objective.name!r} has no exact discrete conditionals to code with; "
                "lossless compression needs an autoregressive model of images or code maps "
                "(objective.name=autoregressive, not on real-valued sequences).")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.coder = coder
        self.params = params
        self.batch_size = int(batch_size)
        self.dim = coder.dim
        self.given = int(getattr(coder, "given", 0))
        self._init = jax.jit(coder.init, static_argnums=0)
        self._step = jax.jit(coder.step)

    # the shared loop: encoder and decoder differ only in where symbol i comes from
    def _run(self, n: int, choose, progress=None, given=None):
        """For each batch and position: tables of the real rows -> choose(b0, i, cdf) -> symbols.

        given (n, P): the coder's conditioning prefix (`coder.given` = P), fed, not coded."""
        out = np.zeros((n, self.dim), np.int64)
        bs = self.batch_size
        for b0 in range(0, n, bs):
            rows = min(bs, n - b0)
            state = self._init(bs)
            prev = jnp.zeros((bs,), jnp.int32)
            for i in range(self.dim):
                state, logits = self._step(self.params, state, prev, jnp.int32(i))
                if i < self.given:
                    sym = given[b0:b0 + rows, i]
                else:
                    sym = choose(b0, i, quantized_cdf(np.asarray(logits)[:rows]))
                out[b0:b0 + rows, i] = sym
                full = np.zeros((bs,), np.int32)
                full[:rows] = sym
                prev = jnp.asarray(full)
                if progress is not None:
                    progress.update(rows)
        return out

    def encode(self, symbols, progress=None) -> tuple[bytes, np.ndarray]:
        """(N, D) int symbols -> (payload, −log2 q per example under the coded tables)."""
        symbols = np.asarray(symbols, np.int64)
        enc = ArithmeticEncoder(PRECISION)
        ideal = np.zeros(len(symbols))

        def choose(b0, i, cdf):
            s = symbols[b0:b0 + len(cdf), i]
            for r in range(len(cdf)):
                enc.encode(cdf[r], s[r])
            rows = np.arange(len(cdf))
            ideal[b0:b0 + len(cdf)] -= np.log2(
                (cdf[rows, s + 1] - cdf[rows, s]) / cdf[rows, -1])
            return s

        self._run(len(symbols), choose, progress, given=symbols[:, :self.given])
        return enc.finish(), ideal

    def decode(self, payload: bytes, n: int, progress=None, given=None) -> np.ndarray:
        """The (n, D) symbols `encode` coded into `payload`; `given` (n, P) their first P
        (the coder's conditioning prefix, which the payload does not hold)."""
        dec = ArithmeticDecoder(payload, PRECISION)

        def choose(b0, i, cdf):
            return np.array([dec.decode(row) for row in cdf], np.int64)

        return self._run(n, choose, progress, given=given)


# ------------------------------------------------------------------ files
def _pack(header: dict, payload: bytes) -> bytes:
    h = json.dumps(header, sort_keys=True).encode()
    return MAGIC + struct.pack("<BI", VERSION, len(h)) + h + payload


def read_header(data: bytes) -> tuple[dict, bytes]:
    """(header, payload) of a `.jgac` file's bytes, or FormatError."""
    if len(data) < 9 or data[:4] != MAGIC:
        raise FormatError("not a jaxgen compressed file (no JGAC magic); it was not written "
                          "by `jaxgen compress`.")
    version, hlen = struct.unpack("<BI", data[4:9])
    if version != VERSION:
        raise FormatError(f"file format version {version}; this jaxgen reads version {VERSION}.")
    if len(data) < 9 + hlen:
        raise FormatError("the file is truncated (its header is incomplete).")
    try:
        header = json.loads(data[9:9 + hlen].decode())
    except (UnicodeDecodeError, ValueError):
        raise FormatError("the file is damaged: its header is not readable.") from None
    payload = data[9 + hlen:]
    if "payload_crc32" in header:  # files written before it had no such check
        if len(payload) != header["payload_bytes"]:
            raise FormatError(f"the file is damaged: its payload has {len(payload)} bytes, "
                              f"{header['payload_bytes']} were written (truncated or "
                              "appended to). Nothing was written.")
        if zlib.crc32(payload) != header["payload_crc32"]:
            raise FormatError("the file is damaged: its payload fails its CRC-32 check (bytes "
                              "changed after it was written). Nothing was written.")
    return header, payload


def compress(objective, params, raw, *, batch_size: int = 256, model_meta: dict | None = None,
             progress=None) -> tuple[bytes, dict]:
    """Raw examples (uint8 images or int codes) -> (file bytes, stats).

    stats: n, dim, payload_bytes, file_bytes, bits_per_example (payload),
    ideal_bits_per_example (Σ −log2 q under the coded tables), seconds.
    """
    codec = Codec(objective, params, batch_size)
    raw = np.asarray(raw)
    symbols = codec.coder.to_symbols(raw)
    t0 = time.perf_counter()
    payload, ideal = codec.encode(symbols, progress)
    seconds = time.perf_counter() - t0
    back = codec.coder.from_symbols(symbols)
    header = {
        "n": int(len(raw)), "event_shape": list(raw.shape[1:]), "dtype": str(back.dtype),
        "num_bins": codec.coder.num_bins, "dim": codec.dim, "batch_size": codec.batch_size,
        "precision": PRECISION, "total_bits": TOTAL_BITS,
        "crc32": zlib.crc32(np.ascontiguousarray(back).tobytes()),
        "payload_bytes": len(payload), "payload_crc32": zlib.crc32(payload),
        "model": {**(model_meta or {}), "fingerprint": fingerprint(params)},
    }
    if codec.given:  # the prefix is not in the file: the decoder is handed it (and checks it)
        header["given"] = codec.given
        header["given_crc32"] = zlib.crc32(np.ascontiguousarray(symbols[:, :codec.given]))
    data = _pack(header, payload)
    n = len(raw)
    stats = {"n": n, "dim": codec.dim, "payload_bytes": len(payload), "file_bytes": len(data),
             "bits_per_example": 8.0 * len(payload) / n,
             "ideal_bits_per_example": float(np.mean(ideal)), "seconds": seconds}
    return data, stats


def decompress(objective, params, data: bytes, progress=None,
               given=None) -> tuple[np.ndarray, dict]:
    """File bytes -> (raw examples, header); FormatError if the model or checksum differs.

    given: for a file of a model with a conditioning prefix (header "given" = P), the
    examples' first P symbols (N, ≥ P) ints, e.g. the top codes decoded from their file."""
    header, payload = read_header(data)
    fp = fingerprint(params)
    if header["model"]["fingerprint"] != fp:
        m = header["model"]
        raise FormatError(
            f"this file was compressed by other parameters (fingerprint "
            f"{m['fingerprint']}, {m.get('workdir', '?')} step {m.get('step', '?')}; this model's "
            f"is {fp}). Decompress with the same run, checkpoint step and EMA/raw choice.")
    codec = Codec(objective, params, header["batch_size"])
    if codec.coder.num_bins != header["num_bins"] or codec.dim != header["dim"]:
        raise FormatError("the model's alphabet or dimension differs from the file's.")
    if header.get("given", 0) != codec.given:
        raise FormatError("the model's conditioning prefix differs from the file's.")
    if codec.given:
        if given is None:
            raise UserError(f"this file codes positions {codec.given}.. of each example given "
                            f"the first {codec.given} (e.g. the top codes): pass them "
                            "(`jaxgen decompress --given FILE`).")
        given = np.asarray(given).reshape(len(given), -1)[:, :codec.given].astype(np.int64)
        if (len(given) != header["n"] or given.shape[1] != codec.given
                or zlib.crc32(np.ascontiguousarray(given)) != header["given_crc32"]):
            raise FormatError("the given prefix is not the one the file was coded with.")
    symbols = codec.decode(payload, header["n"], progress, given=given)
    raw = codec.coder.from_symbols(symbols)
    if zlib.crc32(np.ascontiguousarray(raw).tobytes()) != header["crc32"]:
        cause = ("the file's bytes passed their own check, so the model's conditionals "
                 "differ from the encoder's (another machine or jax version computing the "
                 "model differently?)" if "payload_crc32" in header else
                 "the file is damaged, or the model's conditionals differ from the encoder's "
                 "(this file predates the payload check, which would tell them apart)")
        raise FormatError(f"the decoded examples fail the CRC-32 check: {cause}. Nothing was "
                          "written.")
    return raw, header


# -------------------------------------------------------------- baselines
def baselines(raw) -> dict:
    """Bits per example of general-purpose codecs on the same raw bytes.

    png: each example its own PNG (Pillow, optimize=True, level 9; 8-bit
    grey, so only for values < 256); gzip_each: each example gzipped alone (-9);
    gzip_all: the whole array as one gzip stream (-9), its best case.
    """
    raw = np.asarray(raw)
    n = len(raw)
    d = math.prod(raw.shape[1:])
    bits = 8 if raw.dtype == np.uint8 else max(1, math.ceil(math.log2(int(raw.max()) + 1)))
    out = {"raw": float(d * bits)}  # 8 bits a pixel; ⌈log2(max + 1)⌉ bits a code
    u8 = raw.astype(np.uint8) if raw.min() >= 0 and raw.max() < 256 else None
    if u8 is not None and u8.ndim in (3, 4) and (u8.ndim == 3 or u8.shape[-1] in (1, 3)):
        from PIL import Image
        total = 0
        for img in u8:
            buf = io.BytesIO()
            Image.fromarray(img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img).save(
                buf, format="PNG", optimize=True, compress_level=9)
            total += len(buf.getvalue())
        out["png"] = 8.0 * total / n
    b = u8 if u8 is not None else raw
    out["gzip_each"] = 8.0 * sum(len(gzip.compress(x.tobytes(), 9, mtime=0)) for x in b) / n
    out["gzip_all"] = 8.0 * len(gzip.compress(np.ascontiguousarray(b).tobytes(), 9, mtime=0)) / n
    return out
