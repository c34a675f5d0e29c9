"""Section 3.1's neural form: an orthogonal LMF head for deep encoders (optional, needs torch).

Install with ``pip install torch==2.13.0`` (a CPU wheel) before ``pip install "lmf-omics[torch]"``.
``import lmf_omics`` never imports torch; only ``import lmf_omics.nn`` does.

- :class:`LMFHead`: ``K = f(X) β`` with the loss ``fit(Y, K) + λ · MSE(K, K βᵀβ)``
  (cross-entropy for classes, MSE for continuous ``Y``).
- :class:`LMFNet`: an encoder ``f`` and an :class:`LMFHead`; :class:`ConvEncoder`: a small one.
- :func:`train`: seeded, deterministic mini-batch training with progress and early stopping.
- :func:`histology_features`: per-spot H&E tile features supervised by expression codes,
  stored in ``obsm`` as a modality for :func:`lmf_omics.tl.lmf`.
"""

try:
    import torch  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "lmf_omics.nn needs PyTorch; install the CPU wheel with `python -m pip install torch==2.13.0` "
        '(then `pip install "lmf-omics[torch]"`)'
    ) from error

from ._encoders import ConvEncoder
from ._head import LMFHead, LMFNet, orthogonality_error
from ._histology import histology_features
from ._train import History, seeded, train

__all__ = [
    "ConvEncoder",
    "History",
    "LMFHead",
    "LMFNet",
    "histology_features",
    "orthogonality_error",
    "seeded",
    "train",
]
