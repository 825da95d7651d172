"""Arithmetic coding with integer arithmetic (Witten, Neal & Cleary, 1987).

A message s_1 … s_n whose symbols have model probabilities q_i(s_i) is coded as
one binary fraction inside the nested interval Π_i q_i(s_i); its length is

    L ≤ Σ_i −log2 q_i(s_i) + 2 bits (+ the final byte's padding),

so a model with exact likelihood compresses to its NLL in bits (the lecture's
"lossless compression" row). Both sides keep the interval [low, high] as
`precision`-bit integers (Python ints: exact, no overflow). When the interval
falls in one half the leading bit is settled and shifted out; when it straddles
the middle inside [¼, ¾) the coder defers the bit ("pending", the E3 case), so
the interval always spans more than a quarter of the 2^precision range and any
frequency table with total ≤ 2^(precision−2) keeps every symbol's sub-interval
non-empty.

Probabilities reach the coder as integer cumulative frequencies
(`quantized_cdf`): every symbol gets at least 1 of `2^total_bits`, so a symbol
the model thought impossible still codes (expensively) instead of failing, and
encoder and decoder derive the same integers from the same floating-point
logits. The rounding costs about K / 2^total_bits bits per symbol (K bins):
1e-7 bits at the defaults.

Pure Python + numpy, no jax: `jaxgen.coding.codec` drives it with a model.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ArithmeticEncoder", "ArithmeticDecoder", "quantized_cdf", "ideal_bits",
           "PRECISION", "TOTAL_BITS"]

PRECISION = 64  # bits of the coder's interval
TOTAL_BITS = 32  # the frequency tables sum to at most 2^TOTAL_BITS ≤ 2^(PRECISION − 2)


def quantized_cdf(logits, total_bits: int = TOTAL_BITS) -> np.ndarray:
    """Integer cumulative frequencies of softmax(logits) per row.

    Args:
      logits: (..., K) floats (any float dtype; computed in float64 here).
      total_bits: the tables sum to at most 2^total_bits.

    Returns:
      (..., K + 1) int64 with cdf[..., 0] = 0, cdf[..., k+1] − cdf[..., k] =
      ⌊p_k (2^total_bits − K)⌋ + 1 ≥ 1, cdf[..., K] = the row's total.
    """
    z = np.asarray(logits, np.float64)
    if z.ndim == 0 or z.shape[-1] < 2:
        raise ValueError(f"quantized_cdf needs logits (..., K) with K >= 2, got shape {z.shape}.")
    if not np.all(np.isfinite(z)):
        raise ValueError("quantized_cdf: the logits hold inf or NaN; the model is broken "
                         "(check the checkpoint with `jaxgen eval`).")
    k = z.shape[-1]
    if not 2 * k <= 2 ** total_bits <= 2 ** 62:
        raise ValueError(f"total_bits={total_bits} cannot hold {k} bins.")
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    freq = np.floor(p * float(2 ** total_bits - k)).astype(np.int64) + 1
    cdf = np.zeros(z.shape[:-1] + (k + 1,), np.int64)
    np.cumsum(freq, axis=-1, out=cdf[..., 1:])
    return cdf


def ideal_bits(cdf, symbols) -> np.ndarray:
    """−log2 q(s) of each symbol under its quantised table: what an ideal coder spends."""
    cdf = np.asarray(cdf)
    s = np.asarray(symbols)[..., None]
    freq = np.take_along_axis(cdf, s + 1, -1) - np.take_along_axis(cdf, s, -1)
    return -np.log2(freq[..., 0] / cdf[..., -1])


class ArithmeticEncoder:
    """Encode symbols one at a time: `encode(cdf_row, s)`; `finish()` returns the bytes."""

    def __init__(self, precision: int = PRECISION):
        if precision < 16:
            raise ValueError(f"precision must be >= 16 bits, got {precision}.")
        self.precision = precision
        self._half = 1 << (precision - 1)
        self._quarter = 1 << (precision - 2)
        self.low, self.high = 0, (1 << precision) - 1
        self.pending = 0
        self.bits: list[int] = []
        self.count = 0  # symbols encoded
        self._done = False

    def _emit(self, bit: int):
        self.bits.append(bit)
        if self.pending:
            self.bits.extend([1 - bit] * self.pending)
            self.pending = 0

    def encode(self, cdf_row, symbol: int):
        """Narrow the interval to symbol's share [cdf[s], cdf[s+1]) of cdf[-1]."""
        if self._done:
            raise RuntimeError("encode() after finish().")
        c_lo, c_hi, total = int(cdf_row[symbol]), int(cdf_row[symbol + 1]), int(cdf_row[-1])
        if not 0 <= c_lo < c_hi <= total <= self._quarter:
            raise ValueError(f"symbol {symbol}: bad frequencies [{c_lo}, {c_hi}) of {total}.")
        low, high, half, quarter = self.low, self.high, self._half, self._quarter
        span = high - low + 1
        high = low + span * c_hi // total - 1
        low = low + span * c_lo // total
        while True:
            if high < half:
                self._emit(0)
            elif low >= half:
                self._emit(1)
                low -= half
                high -= half
            elif low >= quarter and high < half + quarter:
                self.pending += 1
                low -= quarter
                high -= quarter
            else:
                break
            low = 2 * low
            high = 2 * high + 1
        self.low, self.high = low, high
        self.count += 1

    def finish(self) -> bytes:
        """Two more bits pin a number inside [low, high]; pad to whole bytes."""
        if not self._done:
            self.pending += 1
            self._emit(0 if self.low < self._quarter else 1)
            self._done = True
        return np.packbits(np.asarray(self.bits, np.uint8)).tobytes()


class ArithmeticDecoder:
    """Decode what `ArithmeticEncoder` wrote, given the same tables in the same order."""

    def __init__(self, data: bytes, precision: int = PRECISION):
        self.precision = precision
        self._half = 1 << (precision - 1)
        self._quarter = 1 << (precision - 2)
        bits = np.unpackbits(np.frombuffer(bytes(data), np.uint8))
        self._bits = bits.tolist()
        self._pos = 0
        self.low, self.high = 0, (1 << precision) - 1
        value = 0
        for _ in range(precision):
            value = 2 * value + self._next_bit()
        self.value = value

    def _next_bit(self) -> int:
        pos = self._pos
        self._pos = pos + 1
        return self._bits[pos] if pos < len(self._bits) else 0  # zeros past the end

    def decode(self, cdf_row) -> int:
        """The symbol whose share of the interval holds the code value."""
        total = int(cdf_row[-1])
        low, high, value = self.low, self.high, self.value
        span = high - low + 1
        target = ((value - low + 1) * total - 1) // span
        symbol = int(np.searchsorted(cdf_row, target, side="right")) - 1
        symbol = min(max(symbol, 0), len(cdf_row) - 2)
        c_lo, c_hi = int(cdf_row[symbol]), int(cdf_row[symbol + 1])
        high = low + span * c_hi // total - 1
        low = low + span * c_lo // total
        half, quarter = self._half, self._quarter
        while True:
            if high < half:
                pass
            elif low >= half:
                low -= half
                high -= half
                value -= half
            elif low >= quarter and high < half + quarter:
                low -= quarter
                high -= quarter
                value -= quarter
            else:
                break
            low = 2 * low
            high = 2 * high + 1
            value = 2 * value + self._next_bit()
        self.low, self.high, self.value = low, high, value
        return symbol
