"""The column space of a low-rank random-effect modality, to which the random code is confined."""

from __future__ import annotations

import numpy as np

from .operators import Operator

MAX_CHECKED_FEATURES = 1024


def low_rank_basis(operator: Operator, n_factors: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(Q, W)`` with ``Q = Z̃ W`` an orthonormal basis of ``col(Z̃)`` when ``rank(Z̃) < n_factors``.

    A Z of lower rank than the number of factors (four hashtags, three sections) cannot
    determine ``H``: left free, ``H`` would fit the response's noise in the directions Z does
    not see. Confining ``H`` to ``col(Z̃)`` makes it an encoding of Z, ``H = Z̃ W G``. Only
    checked for Z with at most ``MAX_CHECKED_FEATURES`` features (one p_z × p_z Gram matrix);
    otherwise, or at full rank, returns ``None`` and ``H`` is free as in the paper.
    """
    p = operator.shape[1]
    if p > MAX_CHECKED_FEATURES:
        return None
    gram = operator.rmatmul(operator.matmul(np.eye(p)))
    values, vectors = np.linalg.eigh((gram + gram.T) / 2)
    keep = values > values[-1] * p * 1e-10
    if keep.sum() >= n_factors:
        return None
    encoder = vectors[:, keep] / np.sqrt(values[keep])
    return operator.matmul(encoder), encoder
