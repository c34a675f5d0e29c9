r"""The LMF head of section 3.1: ``K = f(X) β`` with a soft orthogonality penalty on ``β``.

LMF writes the fixed-effect data as ``X ≈ K βᵀ``. When ``β`` (p × k) has orthonormal columns,
``βᵀβ = I`` gives ``K = K βᵀβ = X β`` — the code is a plain projection, no inverse needed — and the
identity ``Xβ = Xβ(βᵀβ) = Xβ(βᵀβ)(βᵀβ) = …``. The paper turns that identity into a loss for a
network whose encoder ``f`` replaces ``X``::

    classification:  CrossEntropy(Y, f(X)β) + λ · MSE(f(X)β, f(X)β(βᵀβ))
    regression:      MSE(Y, f(X)β)          + λ · MSE(f(X)β, f(X)β(βᵀβ))

(``λ = 1`` as printed). With ``K = f(X)β`` (n × k), the penalty is ``‖K(βᵀβ − I)‖²_F / (n k)``.
It is zero exactly when every row of ``K`` is a fixed point of ``βᵀβ``: it pushes ``βᵀβ`` to act
as the identity *on the span of the outputs*, weighted by how large they are. Directions the
outputs never take are not constrained, and the encoder can also lower the penalty by shrinking
``K``; so it is a soft, data-weighted pull, not the constraint ``βᵀβ = I``. How close ``β`` gets
is measured by :func:`orthogonality_error`, ``‖βᵀβ − I‖_F``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

TASKS = ("classification", "regression")
INITS = ("orthogonal", "uniform")


def orthogonality_error(beta: torch.Tensor) -> float:
    """``‖βᵀβ − I‖_F`` for loadings ``β`` (p × k): 0 when the columns are orthonormal.

    Parameters
    ----------
    beta
        Loadings, p × k.

    Returns
    -------
    The Frobenius norm of ``βᵀβ − I``.
    """
    with torch.no_grad():
        gram = beta.T @ beta
        return float(torch.linalg.matrix_norm(gram - torch.eye(gram.shape[0], dtype=gram.dtype)))


class LMFHead(nn.Module):
    """``K = F β`` for features ``F = f(X)`` (n × p), loadings ``β`` (p × k) a parameter.

    Parameters
    ----------
    in_features
        ``p``, the encoder's feature count; at least ``out_features`` (orthonormal columns).
    out_features
        ``k``: classes (classification) or target columns (regression).
    task
        ``"classification"`` (cross-entropy on the logits ``K``, targets are class indices) or
        ``"regression"`` (mean squared error, targets are n × k).
    ortho_weight
        ``λ``, the weight of the orthogonality penalty (1 in the paper; 0 makes a plain
        bias-free linear layer).
    init
        ``"orthogonal"`` (orthonormal columns, ``βᵀβ = I`` at the start) or ``"uniform"``
        (PyTorch's default for ``nn.Linear``, as in the paper author's code).

    Raises
    ------
    ValueError
        If ``task`` or ``init`` is unknown, ``out_features`` is not between 1 and ``in_features``,
        or ``ortho_weight`` is negative.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        task: str = "classification",
        ortho_weight: float = 1.0,
        init: str = "orthogonal",
    ):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task={task!r} is not one of {TASKS}")
        if init not in INITS:
            raise ValueError(f"init={init!r} is not one of {INITS}")
        if not 0 < out_features <= in_features:
            raise ValueError(
                f"out_features={out_features} must be between 1 and in_features={in_features}: "
                "β (in × out) can only have orthonormal columns when in_features >= out_features"
            )
        if ortho_weight < 0:
            raise ValueError(f"ortho_weight={ortho_weight} must be >= 0")
        self.task, self.ortho_weight, self.init = task, float(ortho_weight), init
        self.beta = nn.Parameter(torch.empty(in_features, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw ``β`` afresh as ``init`` says (orthonormal columns, or ``nn.Linear``'s uniform)."""
        if self.init == "orthogonal":
            nn.init.orthogonal_(self.beta)
        else:  # nn.Linear's weight init (kaiming-uniform, a=√5), on the transposed weight
            bound = 1 / self.beta.shape[0] ** 0.5
            nn.init.uniform_(self.beta, -bound, bound)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The codes ``K = F β``.

        Parameters
        ----------
        features
            ``F = f(X)``, n × p.

        Returns
        -------
        ``K``, n × k (the logits, for classification).
        """
        return features @ self.beta

    def penalty(self, codes: torch.Tensor) -> torch.Tensor:
        """``MSE(K, K βᵀβ)``: zero when ``βᵀβ`` acts as the identity on the rows of ``K``.

        Parameters
        ----------
        codes
            ``K``, n × k (the head's output).

        Returns
        -------
        The penalty, a scalar tensor.
        """
        return F.mse_loss(codes @ (self.beta.T @ self.beta), codes)

    def fit_loss(self, codes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The data term: cross-entropy (classification) or mean squared error (regression).

        Parameters
        ----------
        codes
            ``K``, n × k.
        targets
            Class indices (n) or target values (n × k).

        Returns
        -------
        The mean loss, a scalar tensor.
        """
        if self.task == "classification":
            return F.cross_entropy(codes, targets)
        return F.mse_loss(codes, targets)

    def loss(self, codes: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss": fit + λ·penalty, "fit": …, "orthogonality": penalty}`` for a batch.

        Parameters
        ----------
        codes
            ``K``, n × k (the head's output).
        targets
            Class indices (n) or target values (n × k).

        Returns
        -------
        The total under ``"loss"`` (what :func:`~lmf_omics.nn.train` minimises) and its two terms.
        """
        fit, penalty = self.fit_loss(codes, targets), self.penalty(codes)
        return {"loss": fit + self.ortho_weight * penalty, "fit": fit, "orthogonality": penalty}

    def orthogonality_error(self) -> float:
        """``‖βᵀβ − I‖_F`` of this head's loadings.

        Returns
        -------
        0 when the columns of ``β`` are orthonormal.
        """
        return orthogonality_error(self.beta)

    def extra_repr(self) -> str:
        """The head's shape and options, shown in ``repr(model)``.

        Returns
        -------
        ``"in_features=…, out_features=…, task=…, ortho_weight=…"``.
        """
        p, k = self.beta.shape
        return f"in_features={p}, out_features={k}, task={self.task!r}, ortho_weight={self.ortho_weight}"


class LMFNet(nn.Module):
    """An encoder ``f`` followed by an :class:`LMFHead`: ``forward(x) = f(x) β``.

    ``features(x)`` returns ``f(x)``, the learnt representation; ``loss`` is the head's.

    Parameters
    ----------
    encoder
        ``f``: a module from a batch of inputs to ``(batch, head.in_features)`` features.
    head
        The :class:`LMFHead` on those features.

    Examples
    --------
    >>> encoder = ConvEncoder(1, (16, 32))
    >>> net = LMFNet(encoder, LMFHead(encoder.n_features((1, 8, 8)), 10))
    >>> history = train(net, images, labels, epochs=20)
    """

    def __init__(self, encoder: nn.Module, head: LMFHead):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The codes ``f(x) β``.

        Parameters
        ----------
        x
            A batch of inputs of the encoder.

        Returns
        -------
        ``K``, ``(batch, k)``.
        """
        return self.head(self.encoder(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The learnt representation ``f(x)``.

        Parameters
        ----------
        x
            A batch of inputs of the encoder.

        Returns
        -------
        ``(batch, p)`` features.
        """
        return self.encoder(x)

    def loss(self, codes: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """The head's loss (:meth:`LMFHead.loss`).

        Parameters
        ----------
        codes
            The network's output on a batch.
        targets
            Class indices or target values of the batch.

        Returns
        -------
        ``{"loss": …, "fit": …, "orthogonality": …}``.
        """
        return self.head.loss(codes, targets)
