"""Content keys: hashes of each feature and each cell that do not depend on the order of either.

A randomised sketch ``Ã Ω`` with ``Ω`` drawn row by row in the features' positions depends on
the order of the features: permute them and the sketch, hence the approximate principal basis,
changes. Here every row of ``Ω`` is drawn from a counter-based generator keyed by its feature's
*content*: the exact sum of a 20-bit hash of each of its stored values.
Integer-valued float64 sums below 2⁵³ are exact in any order, so a feature's key is the same
whatever the order of the cells, and it travels with the feature when the features are
permuted: ``Ã P`` is sketched by ``Pᵀ Ω``, and ``(Ã P)(Pᵀ Ω) = Ã Ω`` whatever the sketch's
accuracy. A cell's key is the same hash summed over its row (the cell's multiset of values).

Zeros hash to zero (stored or not, so dense and sparse copies of the data agree); a value's
hash reads its float32 bits without the sign. Two features with the same key (all-zero
columns, duplicates, or a 2⁻⁶⁴ accident) get the same row of ``Ω``, which costs the sketch
nothing it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

_MULTIPLIER = np.uint32(0x9E3779B1)  # Knuth's multiplicative hash (2³² / golden ratio, odd)
_SHIFT = np.uint32(12)  # keep the top 20 bits: sums of 2²⁰-bounded integers are exact up to 2³³ terms
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


@dataclass(frozen=True)
class Keys:
    """Order-free content keys of a matrix's features (``p``) and cells (``n``), uint64."""

    features: np.ndarray
    cells: np.ndarray


def value_hashes(values: np.ndarray) -> np.ndarray:
    """A 20-bit hash of each value as float64 integers (0 for 0, the same for ``v`` and ``-v``)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32) & np.uint32(0x7FFFFFFF)
    return ((bits * _MULTIPLIER) >> _SHIFT).astype(np.float64)


def block_sums(block, observed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per column and per row of a block of rows, the exact sums of the values' hashes (p and m floats).

    ``block`` is dense, CSR or CSC; unobserved rows count as zero rows (as the operator sees them).
    """
    m, p = block.shape
    if not sparse.issparse(block):
        hashes = value_hashes(block)
        if observed is not None:
            hashes[~np.asarray(observed, bool)] = 0.0
        return hashes.sum(axis=0), hashes.sum(axis=1)
    if block.format != "csc":
        block = sparse.csr_matrix(block)
    hashed = type(block)((value_hashes(block.data), block.indices, block.indptr), shape=block.shape, copy=False)
    rows = np.ones(m) if observed is None else np.asarray(observed, np.float64)
    return hashed.T @ rows, hashed @ np.ones(p) * rows  # scipy's products: exact sums of integers below 2⁵³


def finish(column_sums: np.ndarray, row_sums: np.ndarray) -> Keys:
    """Keys from the exact sums of :func:`block_sums` (added over row blocks in any order)."""
    return Keys(features=_key_of(column_sums), cells=_key_of(row_sums))


def _key_of(sums: np.ndarray) -> np.ndarray:
    return mix(np.asarray(sums).astype(np.uint64))


def mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, elementwise on uint64 (a bijection that scatters nearby inputs)."""
    z = np.asarray(values, dtype=np.uint64) + _MIX[0]
    z = (z ^ (z >> np.uint64(30))) * _MIX[1]
    z = (z ^ (z >> np.uint64(27))) * _MIX[2]
    return z ^ (z >> np.uint64(31))


def keyed_gaussian(keys: np.ndarray, width: int, seed: int, *, block: int = 1 << 14) -> np.ndarray:
    """A ``len(keys) × width`` standard normal matrix whose row ``j`` depends only on ``keys[j]`` and ``seed``.

    Counter-based: uniforms from :func:`mix` of (key, seed, column), then Box–Muller; made
    ``block`` rows at a time (the temporaries are a few blocks, whatever the number of features).
    """
    keys = np.asarray(keys, np.uint64)
    salt = mix(np.array([seed % 2**64], dtype=np.uint64))  # arrays: numpy scalars warn on wrap-around
    counters = np.arange(1, 2 * width + 1, dtype=np.uint64)[None, :] * _MIX[1]
    out = np.empty((len(keys), width))
    for start in range(0, len(keys), block):
        base = mix(keys[start : start + block] ^ salt)[:, None]
        bits = mix(base + counters) >> np.uint64(11)  # 53 random bits each
        uniform = (bits.astype(np.float64) + 0.5) * 2.0**-53  # in (0, 1)
        out[start : start + block] = np.sqrt(-2.0 * np.log(uniform[:, :width])) * np.cos(
            2.0 * np.pi * uniform[:, width:]
        )
    return out
