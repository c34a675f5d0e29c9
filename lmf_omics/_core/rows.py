"""Row-wise least squares for free codes: each cell solves a small system given its loadings.

For cell ``i`` with observed flags ``y, x, z`` (response, fixed, random) the penalised loss is::

    y‖ỹᵢ − (kᵢ + hᵢ)αᵀ‖² + x‖x̃ᵢ − kᵢβᵀ‖² + z‖z̃ᵢ − hᵢuᵀ‖² + ρ(‖kᵢ‖² + ‖hᵢ‖²)

Its minimiser over the unknown codes (``k``, ``h`` or both; the others held fixed) solves::

    [kᵢ, hᵢ] [[yA + xB + ρI, yA        ],   = [r_K,i − (known h) yA,  r_H,i − (known k) yA]
              [yA,          yA + zC + ρI]]

with ``A = αᵀα``, ``B = βᵀβ``, ``C = uᵀu``, ``r_K = Ỹα + X̃β`` and ``r_H = Ỹα + Z̃u`` (unobserved rows
of an operator are zero rows, so the right-hand sides need no masking). Cells sharing a pattern of
observed modalities and unknowns share the system, so there are at most a few dozen solves.
"""

from __future__ import annotations

import numpy as np

from .linalg import solve_right


def solve_rows(
    grams: dict[str, np.ndarray],
    products: dict[str, np.ndarray],
    observed: dict[str, np.ndarray],
    ridge: float,
    *,
    K: np.ndarray,
    H: np.ndarray | None,
    unknown_K: np.ndarray,
    unknown_H: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """New ``(K, H)``: rows flagged unknown are solved, the others kept.

    The inputs are never written; a code without an unknown row is returned as it is.

    ``grams`` holds ``αᵀα``, ``βᵀβ``, ``uᵀu`` by role, ``products`` the n × k products ``Ãα`` by role
    and ``observed`` 0/1 row weights by role (absent roles are simply missing from the dicts).
    """
    n, k = K.shape
    zeros = np.zeros((n, k))
    flags = [observed.get(role, np.zeros(n)) > 0 for role in ("response", "fixed", "random")]
    unknown = [unknown_K, np.zeros(n, bool) if unknown_H is None else unknown_H]
    pattern = sum(flag.astype(np.int64) << bit for bit, flag in enumerate(flags + unknown))
    from_response = products.get("response", zeros)
    rhs_K = from_response + products.get("fixed", zeros)
    rhs_H = from_response + products.get("random", zeros)
    codes = np.unique(pattern)
    K, H = _writable(K, codes, 3), None if H is None else _writable(H, codes, 4)
    for code in codes:
        rows = slice(None) if len(codes) == 1 else pattern == code  # one pattern (the usual case): no copies
        y, x, z, solve_k, solve_h = ((code >> bit) & 1 for bit in range(5))
        shared = y * grams.get("response", np.zeros((k, k)))
        fixed_block = shared + x * grams.get("fixed", np.zeros((k, k)))
        random_block = shared + z * grams.get("random", np.zeros((k, k)))
        if solve_k and solve_h:
            system = np.block([[fixed_block, shared], [shared, random_block]])
            inverse = solve_right(np.eye(2 * k), system, ridge)  # 2k × 2k; then four n × k × k products
            rhs = (rhs_K[rows], rhs_H[rows])
            K[rows] = rhs[0] @ inverse[:k, :k] + rhs[1] @ inverse[k:, :k]
            H[rows] = rhs[0] @ inverse[:k, k:] + rhs[1] @ inverse[k:, k:]
        elif solve_k:
            known = 0.0 if H is None else H[rows] @ shared
            K[rows] = solve_right(rhs_K[rows] - known, fixed_block, ridge)
        elif solve_h:
            H[rows] = solve_right(rhs_H[rows] - K[rows] @ shared, random_block, ridge)
    return K, H


def _writable(code: np.ndarray, patterns: np.ndarray, unknown_bit: int) -> np.ndarray:
    """``code`` itself when no pattern solves it, a fresh array when every pattern does, else a copy."""
    solved = [(pattern >> unknown_bit) & 1 for pattern in patterns]
    if not any(solved):
        return code  # never written
    return np.empty_like(code) if all(solved) else code.copy()
