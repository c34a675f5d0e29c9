"""Variance-explained heatmap (like MOFA's) and the objective curve of a fit."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt  # the user's backend is left alone; without a display matplotlib uses Agg
import numpy as np
from anndata import AnnData

from .. import get
from .._checks import factor_numbers
from .._docs import FIT, NO_FIT, PLOT, fill

ROLE_TITLES = {"response": "response (Y)", "fixed": "fixed (X)", "random": "random (Z)"}


@fill(fit=FIT, plot=PLOT, no_fit=NO_FIT)
def variance_explained(adata: AnnData, key: str = "lmf", *, ax=None, show: bool = False, save: str | None = None):
    """Heatmap of R² per factor (rows) and role (columns), annotated with percentages.

    Parameters
    ----------
    {fit}
    {plot}

    Returns
    -------
    The matplotlib Axes.

    Raises
    ------
    {no_fit}

    Examples
    --------
    >>> lmf.pl.variance_explained(adata, save="figures/variance_explained.png")
    """
    table = get.variance_explained(adata, key)
    ax = ax or plt.subplots(figsize=(1.6 + 1.3 * table.shape[1], max(2.6, 0.9 + 0.32 * table.shape[0])))[1]
    image = ax.imshow(table.to_numpy() * 100, cmap="Blues", aspect="auto", vmin=0)
    for (row, col), value in np.ndenumerate(table.to_numpy() * 100):
        ax.text(
            col,
            row,
            f"{value:.1f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if value > 0.6 * image.get_clim()[1] else "black",
        )
    ax.set_xticks(range(table.shape[1]), [ROLE_TITLES.get(c, c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), table.index)
    ax.figure.colorbar(image, ax=ax, label="variance explained (%)")
    ax.set_title(f"LMF variance explained ({key})")
    return _finish(ax, show, save)


@fill(fit=FIT, plot=PLOT, no_fit=NO_FIT)
def convergence(adata: AnnData, key: str = "lmf", *, ax=None, show: bool = False, save: str | None = None):
    """Objective per iteration; the joint solver's curve never rises, the paper's may.

    Parameters
    ----------
    {fit}
    {plot}

    Returns
    -------
    The matplotlib Axes.

    Raises
    ------
    {no_fit}
    """
    stored = get.results(adata, key)
    history = np.asarray(stored["objective_history"])
    ax = ax or plt.subplots(figsize=(5, 3.2))[1]
    ax.plot(np.arange(1, history.size + 1), history, marker="." if history.size < 50 else None)
    ax.set_xlabel("iteration")
    ax.set_ylabel("objective")
    state = "converged" if stored["converged"] else "not converged"
    ax.set_title(f"LMF {stored['params']['solver']} solver: {history.size} iterations, {state}")
    return _finish(ax, show, save)


def _finish(ax, show: bool, save: str | None):
    finish(ax.figure, show, save)
    return ax


def finish(fig, show: bool, save: str | None) -> None:
    """Lay out (unless the figure has its own layout engine), write ``save``, show."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    if save:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, dpi=150)
    if show:
        plt.show()


def pick_factors(factors, n_factors: int, *, default: int) -> list[int]:
    """1-based factor numbers to plot: the given ones (checked) or the first ``default``."""
    if factors is None:
        return list(range(1, min(default, n_factors) + 1))
    return factor_numbers(factors, n_factors)
