"""Simulated data with planted fixed and random codes."""

import numpy as np


def simulate(n=300, k=3, p_y=30, p_x=50, z_levels=None, p_z=8, noise=0.01, seed=0):
    """``Y = (K + H) αᵀ``, ``X = K βᵀ``, ``Z = H uᵀ`` (or one-hot groups driving H) plus noise."""
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((n, k))
    if z_levels is None:
        H = rng.standard_normal((n, k)) * 0.8
        Z = H @ rng.standard_normal((p_z, k)).T
    else:
        groups = rng.integers(0, z_levels, n)
        Z = np.eye(z_levels)[groups]
        H = Z @ rng.standard_normal((z_levels, k))
    Y = (K + H) @ rng.standard_normal((p_y, k)).T
    X = K @ rng.standard_normal((p_x, k)).T
    Y += noise * rng.standard_normal(Y.shape)
    X += noise * rng.standard_normal(X.shape)
    Z = Z + noise * rng.standard_normal(Z.shape) if z_levels is None else Z
    return {"Y": Y, "X": X, "Z": Z, "K": K, "H": H}


def canonical_correlations(A, B):
    qa, _ = np.linalg.qr(A - A.mean(0))
    qb, _ = np.linalg.qr(B - B.mean(0))
    return np.linalg.svd(qa.T @ qb, compute_uv=False)
