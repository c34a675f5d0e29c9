"""Top loadings per factor for each modality: which features move with which factor."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from anndata import AnnData

from .. import get
from .._docs import FIT, NO_FIT, fill
from ._plots import ROLE_TITLES, finish, pick_factors

LABEL_LENGTH = 34


@fill(fit=FIT, no_fit=NO_FIT)
def loadings(
    adata: AnnData,
    key: str = "lmf",
    *,
    roles: str | Sequence[str] | None = None,
    factors: Sequence[int] | None = None,
    n_top: int = 10,
    show: bool = False,
    save: str | None = None,
) -> np.ndarray:
    """Bar charts of the ``n_top`` largest loadings (by magnitude) per factor, one row per modality.

    The bars are the rows of :func:`lmf_omics.get.top_features` with ``sign="abs"``.

    Bars are red for positive and blue for negative loadings; a feature with a large positive
    loading rises with the factor, a negative one falls. Read across a column to see which
    genes (fixed) go with which proteins (response) on the same factor.

    Parameters
    ----------
    {fit}
    roles
        Roles whose modalities to show (``"response"``, ``"fixed"``, ``"random"``); default every
        fitted one.
    factors
        1-based factor numbers (default the first three).
    n_top
        Features per panel.
    show, save
        Show the figure; write it to this path.

    Returns
    -------
    Axes as a 2-D array (roles × factors).

    Raises
    ------
    ValueError
        If ``roles`` names a role without a fitted modality, or ``factors`` or ``n_top`` is out of range.
    {no_fit}

    Examples
    --------
    >>> lmf.pl.loadings(adata, roles=["response", "fixed"], factors=[1, 2, 3], save="loadings.png")
    """
    fitted = list(get.results(adata, key)["modalities"])
    roles = fitted if roles is None else [roles] if isinstance(roles, str) else list(roles)
    unknown = [r for r in roles if r not in fitted]
    if unknown or not roles:
        raise ValueError(f"roles={roles!r}: {unknown} not fitted under {key!r}; use some of {fitted}")
    if isinstance(n_top, bool) or not isinstance(n_top, int | np.integer) or n_top < 1:
        raise ValueError(f"n_top={n_top!r} must be a positive integer")
    factors = pick_factors(factors, get.loadings(adata, key, role=roles[0]).shape[1], default=3)
    tables = {role: get.top_features(adata, key, role=role, factor=factors, n=n_top, sign="abs") for role in roles}
    height = 0.6 + 0.24 * max(table.groupby("factor").size().max() for table in tables.values())
    fig, axes = plt.subplots(len(roles), len(factors), figsize=(3.9 * len(factors), height * len(roles)), squeeze=False)
    for row, role in enumerate(roles):
        for col, factor in enumerate(factors):
            _bars(axes[row, col], tables[role][tables[role]["factor"] == factor])
            axes[row, col].set_title(f"Factor {factor} · {ROLE_TITLES.get(role, role)}", fontsize=10)
    finish(fig, show, save)
    return axes


def _bars(ax, top) -> None:
    """One bar per row of a :func:`lmf_omics.get.top_features` table, the first at the top."""
    top = top[::-1]
    values = top["loading"].to_numpy()
    ax.barh(np.arange(len(top)), values, color=np.where(values >= 0, "#c0392b", "#2471a3"))
    ax.set_yticks(np.arange(len(top)), [_short(name) for name in top["feature"]], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel("loading", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)


def _short(name: str) -> str:
    """Long names lose their middle, so names differing only at the end stay apart."""
    if len(name) <= LABEL_LENGTH:
        return name
    head = LABEL_LENGTH // 2 - 1
    return f"{name[:head]}…{name[-(LABEL_LENGTH - head - 1) :]}"
