"""Codes of (new) cells from whichever modalities they have, given a fitted model's loadings.

Encoded codes are their encoders applied to their own modality (``K = X̃ E_K``, ``H = Z̃ E_H``),
exactly as for the training cells. What is not determined that way is solved by row-wise least
squares from the modalities the cell has (:mod:`.rows`): free codes always, and an encoded fixed
code of a cell without X (from its response). A random code without Z is zero, as a mixed model
predicts a group it has not seen.
"""

from __future__ import annotations

import numpy as np

from .parts import Data, Loadings, gram
from .random_effects import Correction, random_design
from .rows import solve_rows


def encode(
    data: Data,
    loadings: Loadings,
    encoders: dict[str, np.ndarray],
    ridge: float,
    *,
    has_random: bool,
    scale: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(K, H)`` for the cells of ``data`` (weighted operators, any of them ``None``).

    ``scale`` is the fit's :attr:`code_scale_`: rows are solved where the fit's ridge applies (codes
    ÷ scale, loadings × scale) and returned × scale, so a training cell gets its own code back.
    """
    operators = data.present()
    n = next(iter(operators.values())).shape[0]
    k = loadings.beta.shape[1]
    K, H = np.zeros((n, k)), np.zeros((n, k)) if has_random else None
    unknown_K, unknown_H = np.ones(n, bool), np.ones(n, bool) if has_random else None
    for role, code, unknown in (("fixed", K, unknown_K), ("random", H, unknown_H)):
        if unknown is None:
            continue
        operator = operators.get(role)
        has = np.zeros(n, bool) if operator is None else operator.row_mask != 0
        if role in encoders and operator is not None:
            code[:] = operator.matmul(encoders[role])
            unknown &= ~has
        if role == "random":
            unknown &= has  # no Z, no random code: it stays zero
    if not unknown_K.any() and (unknown_H is None or not unknown_H.any()):
        return K, H  # every code encoded: no row to solve
    scale = np.ones(k) if scale is None else np.asarray(scale, dtype=np.float64)
    loadings_by_role = loadings.scaled(scale).by_role()
    grams = {role: gram(loadings_by_role[role]) for role in operators}
    products = {role: op.matmul(loadings_by_role[role]) for role, op in operators.items()}
    observed = {role: op.row_mask for role, op in operators.items()}
    K, H = K / scale, None if H is None else H / scale
    K, H = solve_rows(grams, products, observed, ridge, K=K, H=H, unknown_K=unknown_K, unknown_H=unknown_H)
    return K * scale, None if H is None else H * scale


def corrected_codes(state: dict, K: np.ndarray, operators: dict, new_levels) -> np.ndarray:
    """The fixed code of cells with X, the random effect removed as in the fit (:mod:`.random_effects`).

    ``state`` is the fit's stored correction (``scores_encoder`` on the data's own scale, ``code_map``),
    ``operators`` the cells' unweighted operators by role; cells without X keep their ``K``.
    """
    correction = Correction.from_arrays(state)
    fixed = operators["fixed"]
    n = fixed.shape[0]
    scores = fixed.matmul(np.asarray(state["scores_encoder"], dtype=np.float64))
    if "random" in operators:
        raw = random_design(operators["random"])
        design = correction.design(raw.values * raw.scale + raw.center, raw.observed)
    else:
        design = correction.design(np.zeros((n, len(correction.design_center))), np.zeros(n, bool))
    levels = None if new_levels is None else np.asarray(new_levels)
    corrected = correction.apply(scores, design, levels) @ np.asarray(state["code_map"], dtype=np.float64)
    has_x = np.ones(n, bool) if fixed.observed is None else fixed.observed
    K = K.copy()
    K[has_x] = corrected[has_x]
    return K
