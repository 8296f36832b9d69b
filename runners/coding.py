"""Entropy coding of integer symbols with `constriction`'s ANS coder (stack, range-variant).

A `SymbolModel` is a categorical distribution over a contiguous alphabet [low, low+n) given by
integer frequencies; it is side information and is serialised into the header (every byte
counted). Encoder and decoder build the identical constriction `Categorical` model from the
same integer frequencies, so a stream decodes exactly. Several chunks of symbols, each with its
own model, share one ANS stream; they decode back in the order they were given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import constriction
import numpy as np

#: total that frequencies are scaled to (each symbol seen at least once keeps frequency >= 1)
FREQ_TOTAL = 1 << 16


# --------------------------------------------------------------------------- varints


def put_uvarint(out: bytearray, value: int) -> None:
    """Append an unsigned LEB128 integer."""
    if value < 0:
        raise ValueError("uvarint must be >= 0")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def put_svarint(out: bytearray, value: int) -> None:
    """Append a signed integer as zig-zag LEB128."""
    put_uvarint(out, (value << 1) if value >= 0 else ((-value << 1) - 1))


class Reader:
    """Sequential reader of a header's bytes (raises ValueError on truncation)."""

    def __init__(self, data: bytes):
        """Read from `data`, starting at offset 0."""
        self.data = data
        self.pos = 0

    def uvarint(self) -> int:
        """Next unsigned LEB128 integer."""
        shift = value = 0
        while True:
            if self.pos >= len(self.data):
                raise ValueError("truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def svarint(self) -> int:
        """Next zig-zag LEB128 integer."""
        z = self.uvarint()
        return (z >> 1) if not z & 1 else -((z + 1) >> 1)

    def take(self, n: int) -> bytes:
        """Next `n` raw bytes."""
        if self.pos + n > len(self.data):
            raise ValueError("truncated header")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def done(self) -> None:
        """Raise unless every byte was read."""
        if self.pos != len(self.data):
            raise ValueError(f"{len(self.data) - self.pos} unread header bytes")


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class SymbolModel:
    """Categorical model over [low, low + len(freqs)) with integer frequencies."""

    low: int
    freqs: tuple[int, ...]

    @classmethod
    def fit(cls, symbols: np.ndarray, total: int = FREQ_TOTAL) -> SymbolModel:
        """Frequencies from the symbols' histogram, scaled to about `total` (seen symbols >= 1)."""
        s = np.asarray(symbols).reshape(-1)
        if s.size == 0:
            return cls(0, (1,))
        low = int(s.min())
        counts = np.bincount(s - low).astype(np.float64)
        scaled = np.where(counts > 0, np.maximum(1, np.round(counts * total / counts.sum())), 0)
        return cls(low, tuple(int(v) for v in scaled))

    @property
    def size(self) -> int:
        """Alphabet size."""
        return len(self.freqs)

    def probabilities(self) -> np.ndarray:
        """float64 probabilities (absent symbols get 0; constriction gives them its minimum)."""
        f = np.asarray(self.freqs, dtype=np.float64)
        return f / f.sum()

    def constriction(self) -> constriction.stream.model.Categorical:
        """The constriction model both encoder and decoder use."""
        return constriction.stream.model.Categorical(self.probabilities(), perfect=False)

    def code_bits(self, symbols: np.ndarray) -> float:
        """Ideal code length of `symbols` under this model, in bits (for estimates only)."""
        p = self.probabilities()
        idx = np.asarray(symbols).reshape(-1) - self.low
        counts = np.bincount(idx, minlength=self.size)
        used = counts > 0
        return float(-(counts[used] * np.log2(p[used])).sum())

    def to_bytes(self, out: bytearray) -> None:
        """Serialise: low (zig-zag varint), size (varint), frequencies (varints)."""
        put_svarint(out, self.low)
        put_uvarint(out, self.size)
        for f in self.freqs:
            put_uvarint(out, f)

    @classmethod
    def read(cls, reader: Reader) -> SymbolModel:
        """Inverse of `to_bytes`."""
        low = reader.svarint()
        size = reader.uvarint()
        if not 1 <= size <= 1 << 20:
            raise ValueError(f"bad alphabet size {size}")
        freqs = tuple(reader.uvarint() for _ in range(size))
        if sum(freqs) == 0:
            raise ValueError("model has no nonzero frequency")
        return cls(low, freqs)


def bits_table(model: SymbolModel) -> np.ndarray:
    """-log2 p per symbol of the model's alphabet (absent symbols: 32 bits), float64."""
    p = model.probabilities()
    with np.errstate(divide="ignore"):
        bits = -np.log2(p)
    return np.where(np.isfinite(bits), bits, 32.0)


# --------------------------------------------------------------------------- streams


def encode_chunks(chunks: Sequence[tuple[np.ndarray, SymbolModel]]) -> bytes:
    """One ANS stream holding every chunk (symbols, model); decodes back in the given order."""
    coder = constriction.stream.stack.AnsCoder()
    for symbols, model in reversed(chunks):  # a stack: last in, first out
        s = np.asarray(symbols).reshape(-1)
        if s.size == 0:
            continue
        idx = s - model.low
        if idx.min() < 0 or idx.max() >= model.size:
            raise ValueError("symbol outside its model's alphabet")
        if np.any(np.asarray(model.freqs)[idx] == 0):
            raise ValueError("symbol with zero frequency in its model")
        coder.encode_reverse(idx.astype(np.int32), model.constriction())
    words = coder.get_compressed()
    return words.astype("<u4").tobytes()


def decode_chunks(data: bytes, specs: Sequence[tuple[int, SymbolModel]]) -> list[np.ndarray]:
    """Inverse of `encode_chunks` given each chunk's (count, model): the symbols, int64."""
    if len(data) % 4:
        raise ValueError("ANS stream length is not a whole number of 32-bit words")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    coder = constriction.stream.stack.AnsCoder(words)
    out = []
    for count, model in specs:
        if count == 0:
            out.append(np.zeros(0, dtype=np.int64))
            continue
        idx = coder.decode(model.constriction(), count)
        out.append(idx.astype(np.int64) + model.low)
    if not coder.is_empty():
        raise ValueError("ANS stream has data left after the last chunk")
    return out


def version() -> str:
    """constriction's version (from package metadata)."""
    from importlib.metadata import version as v

    return v("constriction")


def entropy_bits_of(counts: np.ndarray) -> float:
    """Total order-0 code length in bits of a histogram (sum of -n·log2(n/N))."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    if c.size == 0:
        return 0.0
    return float(-(c * np.log2(c / c.sum())).sum())


def header_bits_estimate(model: SymbolModel) -> int:
    """Bits the model takes in a header (exactly, by serialising it)."""
    out = bytearray()
    model.to_bytes(out)
    return 8 * len(out)
