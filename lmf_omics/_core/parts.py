"""The parts of a fit every piece of the core passes around: data, loadings, factors, moments.

Vocabulary (used in code and messages throughout the package):

* a **role** is ``"response"`` (Y), ``"fixed"`` (X) or ``"random"`` (Z);
* a **modality** is the matrix that plays a role (in the core: its centred, scaled, weighted
  :class:`~.operators.Operator`);
* a **spec** is the string that names a modality in an AnnData (``"obsm:protein"``; read in
  ``lmf_omics._modalities`` only);
* the **codes** are ``K`` (fixed) and ``H`` (random), n × k; their **form** is ``"encoded"``
  (linear encodings of their modality, stored as coefficients in a principal basis) or
  ``"free"`` (n × k parameters), see :mod:`.problems`;
* the **loadings** ``α``, ``β``, ``u`` relate the codes to the response, X and Z;
* a **solver** alternates loadings and codes (:mod:`.solvers`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .operators import Operator
from .validation import ROLES

LOADING_NAMES = dict(zip(ROLES, ("alpha", "beta", "u")))


@dataclass(frozen=True)
class Data:
    """The weighted operators of one fit (``random`` may be ``None``; at transform, any may be)."""

    response: Operator | None
    fixed: Operator | None
    random: Operator | None = None

    @property
    def has_random(self) -> bool:
        return self.random is not None

    def present(self) -> dict[str, Operator]:
        """The operators given, by role."""
        return {role: op for role, op in zip(ROLES, (self.response, self.fixed, self.random)) if op is not None}


@dataclass(frozen=True)
class Loadings:
    """``α`` (response), ``β`` (fixed), ``u`` (random; ``None`` without Z), p × k each.

    Over the features, or as coordinates in a problem's frame while an encoded fit iterates.
    """

    alpha: np.ndarray | None = None
    beta: np.ndarray | None = None
    u: np.ndarray | None = None

    @classmethod
    def from_roles(cls, by_role: dict[str, np.ndarray]) -> Loadings:
        return cls(**{LOADING_NAMES[role]: matrix for role, matrix in by_role.items()})

    def by_role(self) -> dict[str, np.ndarray]:
        """The loadings present, by role."""
        return {role: m for role, m in zip(ROLES, (self.alpha, self.beta, self.u)) if m is not None}

    def rotated(self, rotation: np.ndarray) -> Loadings:
        return Loadings(*(None if m is None else m @ rotation for m in (self.alpha, self.beta, self.u)))

    def scaled(self, scale: np.ndarray) -> Loadings:
        """Every loading column ``j`` × ``scale[j]``."""
        return Loadings(*(None if m is None else m * scale for m in (self.alpha, self.beta, self.u)))

    def arrays(self) -> list[np.ndarray]:
        return list(self.by_role().values())


@dataclass(frozen=True)
class Factors:
    """The codes ``K``, ``H`` (``None`` without Z) and the loadings of one iterate.

    Codes are n × k arrays for free codes, or r × k coefficients in an orthonormal basis for
    encoded ones (``K = U G``): either way ``‖K‖ = ‖G‖`` and a rotation acts on the right.
    """

    K: np.ndarray
    H: np.ndarray | None
    loadings: Loadings = Loadings()

    @property
    def combined(self) -> np.ndarray:
        return self.K if self.H is None else self.K + self.H

    def with_loadings(self, loadings: Loadings) -> Factors:
        return replace(self, loadings=loadings)

    def with_codes(self, K: np.ndarray, H: np.ndarray | None) -> Factors:
        return replace(self, K=K, H=H)

    def rotated(self, rotation: np.ndarray) -> Factors:
        """Apply an orthogonal rotation to every code and loading (the fit is unchanged)."""
        H = None if self.H is None else self.H @ rotation
        return Factors(self.K @ rotation, H, self.loadings.rotated(rotation))

    def scaled(self, scale: np.ndarray) -> Factors:
        """Codes × ``scale`` and loadings ÷ ``scale``, per factor (every fit unchanged)."""
        H = None if self.H is None else self.H * scale
        return Factors(self.K * scale, H, self.loadings.scaled(1.0 / scale))

    def arrays(self) -> list[np.ndarray]:
        """Every code and loading present (what the ridge penalises)."""
        return [m for m in (self.K, self.H) if m is not None] + self.loadings.arrays()


@dataclass(frozen=True)
class Moments:
    """Per role, ``cross = ÃᵀC`` (p × k) and ``gram = CᵀDC`` (k × k) of the role's code ``C``.

    ``codes_gram`` is the Gram matrix of ``K + H`` over all cells (for the canonical rotation).
    """

    cross: dict[str, np.ndarray]
    gram: dict[str, np.ndarray]
    codes_gram: np.ndarray

    def rotated(self, rotation: np.ndarray) -> Moments:
        """The moments of the rotated codes (``Ãᵀ(C R) = (ÃᵀC) R``)."""
        return Moments(
            cross={role: m @ rotation for role, m in self.cross.items()},
            gram={role: rotation.T @ m @ rotation for role, m in self.gram.items()},
            codes_gram=rotation.T @ self.codes_gram @ rotation,
        )


def gram(matrix: np.ndarray) -> np.ndarray:
    return matrix.T @ matrix


class NotFittedError(ValueError, AttributeError, RuntimeError):
    """A model used before :meth:`LinearMixedForms.fit` (scikit-learn's bases, and RuntimeError as before)."""


@dataclass(frozen=True)
class Codes:
    """Codes of some cells.

    Parameters
    ----------
    fixed
        ``K`` (cells × k): the fixed code, with the random effect accounted for.
    random
        ``H`` (cells × k), ``None`` for a fit without Z.
    """

    fixed: np.ndarray
    random: np.ndarray | None

    @property
    def combined(self) -> np.ndarray:
        """``K + H`` (``K`` without a random code)."""
        return self.fixed if self.random is None else self.fixed + self.random
