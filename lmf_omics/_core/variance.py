"""Variance explained (R²) per factor and per modality, as in MOFA's table, from cached products."""

from __future__ import annotations

import numpy as np

from .solvers import Factors, Products, modality_terms, residual_norm


def variance_explained(
    factors: Factors, products: Products, norms: dict[str, float]
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """R² of each modality by each factor alone, and by all factors together.

    ``R²_m,j = 1 − ‖Ã_m − c_j l_jᵀ‖² / ‖Ã_m‖²`` with ``c`` the modality's code
    (``K + H`` for the response, ``K`` for X, ``H`` for Z) and ``l`` its loadings. Per-factor
    values need not add up to the total when loadings are correlated (as in MOFA).
    """
    per_factor, total = {}, {}
    for role, code, loading in modality_terms(factors):
        product = getattr(products, role)
        norm = norms[role]
        per_factor[role] = np.array(
            [1.0 - residual_norm(norm, product[:, [j]], code[:, [j]], loading[:, [j]]) / norm
             for j in range(code.shape[1])]
        )
        total[role] = 1.0 - residual_norm(norm, product, code, loading) / norm
    return per_factor, total


def response_split(
    factors: Factors, response_on_fixed: np.ndarray, products: Products, norm: float
) -> dict[str, float]:
    """R² of the response by the fixed code alone (``Kαᵀ``) and the random code alone (``Hαᵀ``).

    ``response_on_fixed`` is ``ỸᵀK``; ``ỸᵀH`` follows as ``Ỹᵀ(K+H) − ỸᵀK``.
    """
    split = {"response_fixed_code": residual_norm(norm, response_on_fixed, factors.K, factors.alpha)}
    if factors.H is not None:
        on_random = products.response - response_on_fixed
        split["response_random_code"] = residual_norm(norm, on_random, factors.H, factors.alpha)
    return {key: 1.0 - value / norm for key, value in split.items()}
