"""The Gaussian rate-distortion reference every compression figure is held against.

For Gaussian weights, reaching cosine c between original and reconstruction needs at least
R(c) = ½·log2(1/(1−c²)) bits per weight, so no method can beat a ratio of 16 / R(c) against
fp16 at that cosine (≈ 5.66x at 0.99, ≈ 10.3x at 0.94). Real weights are close to Gaussian;
a claim above the bound needs structured data to explain it.
"""

from __future__ import annotations

import math

SOURCE_BITS = 16


def bound_bits(cos: float) -> float:
    """Fewest bits per weight that reach cosine `cos` for Gaussian weights (inf at |c| ≥ 1)."""
    c = abs(cos)
    if c >= 1.0:
        return math.inf
    return 0.5 * math.log2(1.0 / (1.0 - c * c))


def bound_ratio(cos: float, source_bits: int = SOURCE_BITS) -> float | None:
    """Largest ratio vs `source_bits` that can reach `cos`; None where no finite bound applies
    (c = 0 needs no bits; |c| ≥ 1 is lossless, outside a Gaussian-distortion reference)."""
    bits = bound_bits(cos)
    if bits == 0.0 or math.isinf(bits):
        return None
    return source_bits / bits
