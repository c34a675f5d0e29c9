"""Forms of the random effect: what Z accounts for in the fixed-effect data X.

The fixed code ``K`` is a mixed model's fixed effect only if it is identified *with the random
effect accounted for*. The forms below remove the random effect from X's principal scores
``S = X̃ E`` (n × r) before ``K`` is confined to their span, so ``K`` cannot carry it:

* ``"response"`` (the paper's form): Z enters the response only, through ``H``; X is used as it is,
  and ``K`` keeps whatever batch structure X has.
* ``"shift"`` (random intercepts and slopes, one per design column): ``S_c = S − D Γ`` with
  ``Γ = (DᵀD + λI)⁻¹ DᵀS``, the BLUP of the random coefficients when ``σ²_e/σ²_u = λ``
  (a level seen in ``m`` cells is shrunk by ``m/(m+λ)``). ``K ⊥ D`` up to that shrinkage.
* ``"states"`` (random slopes by cell state): the random effect may differ between cell states
  (a chemistry shifts monocytes differently from T cells). Cells get soft states (a spherical
  soft clustering of the corrected scores with Harmony's diversity penalty, so that states are not
  batches), and within each state ``c`` the random effect is a ridge regression of ``S`` on
  ``[1, D]`` weighted by the memberships ``R_c`` (intercept free and kept, the random columns
  shrunk by ``λ`` in soft cells); ``S_c = S − Σ_c R_c ⊙ (D W_c)``, alternated with the states for
  a few rounds. This is Harmony's mixture-of-experts correction written as a mixed model.

The design ``D`` is Z's raw columns (indicators as they are, continuous columns standardised) when
Z has few columns, else its principal scores.

Cost. The states (centroids, coefficients) are fitted on at most ``Settings.fit_cells`` cells when
the cells' content keys are given: those of the smallest keys (every cell tied at the boundary
too), a subsample that does not depend on the order of the cells; without keys, on every cell.
Every cell is then corrected as a new cell is (:meth:`Correction.apply`), in row blocks on the
fit's threads: its memberships are the kernel of its scores, less the states' mean effect, on
the centroids, and its effect is then ``Σ_j D_j ⊙ (Rᵀ W_{·j})`` (one product per design column,
over the cells where it is non-zero). One such correction per cell (``Settings.apply_rounds``):
alternating memberships and effect until they settle took 4.4 corrections per cell in the scale
set's fit at 10^5 cells and moved no summary score (batch, bio, overall) of
``benchmarks/integration.py`` by more than 0.003 (fits stored by earlier versions keep their 5
rounds, each cell stopped once its memberships move less than ``apply_tolerance``).
Each cell is computed on its own, so the result does not depend on the blocks, the threads or
the order of the cells. Memory: the corrected scores and a block's memberships, nothing
states × n beyond the fitted cells; nothing n × p. ``benchmarks/states_cost.py`` prints the
times and the memory at 10^4-10^6 cells.

New cells get the reference's correction for the levels it saw; a level never seen is estimated
from the query's own cells of that level as a BLUP (shrunk towards zero by ``λ_new``), and a cell
of a new level alone is left uncorrected.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from . import parallel
from .validation import DEFAULT_LABELS

MAX_DESIGN_COLUMNS = 64  # wider Z enters through its principal scores


@dataclass(frozen=True)
class Settings:
    """Tuning of the random-effect forms (defaults chosen by ``benchmarks/integration.py``)."""

    shrinkage: float = 0.1  # λ: σ²_e/σ²_u in units of (soft) cells
    new_level_shrinkage: float = 10.0  # λ_new for levels only a query has: a lone cell is barely moved
    diversity: float = 2.0  # θ, Harmony's diversity penalty
    width: float = 0.1  # σ of the soft states (cosine distance)
    rounds: int = 3  # states ↔ correction; 3 × 5 steps against 5 × 20: benchmarks/integration.py
    cluster_steps: int = 5  # a fixed count: a stopping test could flip with the order of the cells
    damping: float = 0.5  # simultaneous updates of every membership oscillate without it
    max_states: int = 100
    cells_per_state: int = 30
    tolerance: float = 1e-4  # a round's clustering stops when no membership moves more than this
    fit_cells: int = 10_000  # with keys, the states are fitted on the cells of the smallest keys
    apply_rounds: int = 1  # memberships → effect of each cell when applied (1 against 2 and 5: integration.py)
    apply_tolerance: float = 1e-4  # with more rounds: until no membership of the cell moves more than this


class RandomEffect(Protocol):
    """A form of the random effect (one class in :data:`RANDOM_EFFECTS`)."""

    name: str
    corrects_fixed: bool

    def correct(
        self, scores: np.ndarray, design: Design, settings: Settings, *, keys: np.ndarray | None = None, out=None
    ) -> Correction | None:
        """The correction fitted on the training cells' scores (``None``: X is used as it is).

        ``keys`` (uint64 per cell, order-free content hashes) may choose the cells the form is fitted on;
        the corrected scores go to ``out`` if given (``scores`` itself: corrected in place).
        """


@dataclass(frozen=True)
class Design:
    """The random effect's columns for the cells: ``values`` (n × q), which are indicators, observed rows."""

    values: np.ndarray
    indicators: np.ndarray  # bool per column: a level of a categorical covariate (diversity applies)
    observed: np.ndarray  # bool per cell
    center: np.ndarray  # the standardisation of the continuous columns (0 and 1 for indicators)
    scale: np.ndarray

    def rows(self, cells: np.ndarray | slice) -> Design:
        """The design of some of the cells."""
        return replace(self, values=self.values[cells], observed=self.observed[cells])


BLOCK_CELLS = 4096  # rows corrected at a time, on the fit's threads: a block's memberships only


@dataclass(frozen=True)
class Correction:
    """A fitted correction of the principal scores; ``corrected`` holds the training cells' ``S_c``.

    ``coefficients`` is ``(states, 1 + q, r)``: per state (one for ``"shift"``), the intercept row
    (kept) and the random coefficients (removed). ``centroids`` (states × r, unit rows) and
    ``means`` (states × r) place new cells in the states and estimate new levels. A cell's
    memberships and correction alternate for at most ``rounds``, from ``start`` (the states' mean
    coefficients), until its memberships move less than ``tolerance``.
    """

    form: str
    coefficients: np.ndarray
    centroids: np.ndarray
    means: np.ndarray
    width: float
    new_level_shrinkage: float
    design_center: np.ndarray
    design_scale: np.ndarray
    corrected: np.ndarray = field(repr=False)
    rounds: int = 5
    tolerance: float = 0.0
    start: np.ndarray | None = None  # q × r: the states' mean coefficients, a cell's first correction

    def design(self, raw: np.ndarray, observed: np.ndarray) -> Design:
        """New cells' design, standardised as the training cells' was."""
        return design_of(raw, observed, center=self.design_center, scale=self.design_scale)

    def apply(
        self, scores: np.ndarray, design: Design, new_levels: np.ndarray | None = None, *, out=None
    ) -> np.ndarray:
        """Corrected scores of (new) cells; ``new_levels`` labels cells of levels the fit never saw (-1: none).

        Each block of cells is corrected in float64 and stored in ``out`` (``scores`` itself may be
        ``out``: a cell's correction reads only its own row), else in a new array of ``scores``' dtype.
        """
        corrected = np.empty_like(scores) if out is None else out

        def fill(block: slice) -> None:
            corrected[block] = self._apply_rows(np.asarray(scores[block], dtype=np.float64), design.rows(block))

        for _ in parallel.ordered_map(fill, _cell_blocks(scores.shape[0])):
            pass
        if new_levels is not None and np.any(np.asarray(new_levels) >= 0):
            cells = np.flatnonzero(np.asarray(new_levels) >= 0)
            states = self.memberships(corrected[cells])
            corrected[cells] = self._new_levels(corrected[cells], states, np.asarray(new_levels)[cells])
        return corrected

    def memberships(self, corrected: np.ndarray) -> np.ndarray:
        """States × cells: the kernel of the cells' corrected scores on the centroids (no diversity)."""
        if self.form == "shift":
            return np.ones((1, corrected.shape[0]))
        return _kernel(self.centroids, cosine_rows(corrected), self.width)

    def _apply_rows(self, scores: np.ndarray, design: Design) -> np.ndarray:
        """A block of cells (each cell on its own: the result does not depend on the block).

        A cell's memberships and effect alternate until its memberships move less than
        ``tolerance`` (a cell whose memberships stay keeps its effect).
        """
        if self.form == "shift":
            return scores - _effect(design, self.memberships(scores), self.coefficients)
        effect = np.zeros_like(scores) if self.start is None else design.values @ self.start
        effect[~design.observed] = 0.0
        members = None  # cells × states, the last used: kept only for a next round to compare with
        active: np.ndarray | slice = slice(None)  # every cell, then those still moving
        for step in range(self.rounds):
            states = self.memberships(scores[active] - effect[active]).T
            if step:
                moved = np.abs(states - members[active]).max(axis=1) > self.tolerance
                active, states = active[moved], states[moved]
                if not active.size:
                    break
            effect[active] = _effect(design.rows(active), states.T, self.coefficients)
            if step + 1 == self.rounds:  # the last round (the only one by default): nothing to compare with
                break
            if members is None:
                members, active = np.empty((scores.shape[0], states.shape[1])), np.arange(scores.shape[0])
            members[active] = states
        return scores - effect

    def _new_levels(self, corrected: np.ndarray, states: np.ndarray, new_levels: np.ndarray) -> np.ndarray:
        """Each new level's effect per state as a BLUP from its own cells, removed."""
        out = corrected.copy()
        for level in np.unique(new_levels[new_levels >= 0]):
            cells = new_levels == level
            weights = states[:, cells]  # states × m
            counts = weights.sum(axis=1, keepdims=True)
            effect = (weights @ corrected[cells] - counts * self.means) / (counts + self.new_level_shrinkage)
            out[cells] -= weights.T @ effect
        return out

    def arrays(self) -> dict[str, np.ndarray | str | float]:
        """What a stored fit keeps (h5ad-writable)."""
        return {
            "form": self.form,
            "coefficients": self.coefficients,
            "centroids": self.centroids,
            "means": self.means,
            "width": self.width,
            "new_level_shrinkage": self.new_level_shrinkage,
            "design_center": self.design_center,
            "design_scale": self.design_scale,
            "rounds": self.rounds,
            "tolerance": self.tolerance,
            **({} if self.start is None else {"start": self.start}),
        }

    @classmethod
    def from_arrays(cls, stored: dict) -> Correction:
        return cls(
            form=str(stored["form"]),
            coefficients=np.asarray(stored["coefficients"], dtype=np.float64),
            centroids=np.asarray(stored["centroids"], dtype=np.float64),
            means=np.asarray(stored["means"], dtype=np.float64),
            width=float(stored["width"]),
            new_level_shrinkage=float(stored["new_level_shrinkage"]),
            design_center=np.asarray(stored["design_center"], dtype=np.float64),
            design_scale=np.asarray(stored["design_scale"], dtype=np.float64),
            corrected=np.zeros((0, 0)),
            rounds=int(stored.get("rounds", 5)),  # fits stored before these were kept: 5 rounds, all cells
            tolerance=float(stored.get("tolerance", 0.0)),
            start=None if stored.get("start") is None else np.asarray(stored["start"], dtype=np.float64),
        )


@dataclass(frozen=True)
class ResponseOnly:
    """The paper's form: Z explains the response only (through ``H``); X is not corrected."""

    name: str = "response"
    corrects_fixed: bool = False

    def correct(self, scores, design, settings, *, keys=None, out=None):
        return None


@dataclass(frozen=True)
class Shift:
    """Random coefficients of the design, the same in every cell state (see module doc)."""

    name: str = "shift"
    corrects_fixed: bool = True

    def correct(self, scores, design, settings, *, keys=None, out=None):
        states = np.ones((1, scores.shape[0])) * design.observed
        coefficients = _fit_coefficients(scores, design, states, settings.shrinkage)
        return _correction(self.name, coefficients, None, design, scores, design, states, settings, out)


@dataclass(frozen=True)
class States:
    """Random coefficients of the design within soft cell states (see module doc)."""

    name: str = "states"
    corrects_fixed: bool = True

    def correct(self, scores, design, settings, *, keys=None, out=None):
        fit = fit_cells(keys, settings.fit_cells)
        sample, sample_design = (scores, design) if fit is None else (scores[fit], design.rows(fit))
        sample = np.asarray(sample, dtype=np.float64)  # sums over cells in float64 (float32 scores at scale)
        R, coefficients, corrected = fit_states(sample, sample_design, settings)
        return _correction(self.name, coefficients, corrected, sample_design, scores, design, R, settings, out)


RANDOM_EFFECTS: dict[str, RandomEffect] = {form.name: form for form in (ResponseOnly(), Shift(), States())}


def fit_cells(keys: np.ndarray | None, limit: int) -> np.ndarray | None:
    """The cells a correction is fitted on (``None``: all of them).

    With keys, the cells of the ``limit`` smallest keys and every cell tied with the largest of
    them: a choice that does not depend on the order of the cells.
    """
    if keys is None or len(keys) <= limit:
        return None
    boundary = np.partition(keys, limit - 1)[limit - 1]
    return np.flatnonzero(keys <= boundary)


def fit_states(scores: np.ndarray, design: Design, settings: Settings):
    """Soft states and their coefficients, alternated for ``settings.rounds`` (memberships, coefficients, S_c)."""
    n = scores.shape[0]
    n_states = int(min(max(round(n / settings.cells_per_state), 1), settings.max_states, n))
    levels = design.values[:, design.indicators].T * design.observed  # B × n, the diversity's levels
    prior = levels.sum(axis=1) / max(levels.sum(), 1.0)
    unit = cosine_rows(scores)
    centroids = spherical_lloyd(unit, maximin_centroids(unit, n_states), steps=5)
    R, corrected = None, scores
    for _ in range(settings.rounds):
        R, centroids = soft_states(unit, centroids, levels, prior, settings, R)
        coefficients = _fit_coefficients(scores, design, R * design.observed, settings.shrinkage)
        corrected = _remove(scores, design, R, coefficients)
        unit = cosine_rows(corrected)
    return R, coefficients, corrected


def _correction(form, coefficients, fit_corrected, fit_design, scores, design, states, settings, out) -> Correction:
    """The fitted correction; every training cell's corrected scores are then those a new cell would get.

    (Centroids and means come from the cells it was fitted on; all cells' states are found again
    from the centroids, without the diversity penalty, as a new cell's are, so a training cell
    encoded again gets exactly its code.)
    """
    placeholder = fit_corrected is None  # "shift": every cell in one state, so apply needs no centroids
    centroids, means = (np.zeros((1, scores.shape[1])),) * 2 if placeholder else _centres(states, fit_corrected)
    sizes = states.sum(axis=1)
    fitted = Correction(
        form,
        coefficients,
        centroids,
        means,
        settings.width,
        settings.new_level_shrinkage,
        fit_design.center,
        fit_design.scale,
        corrected=np.zeros((0, 0)),
        rounds=settings.apply_rounds,
        tolerance=settings.apply_tolerance,
        start=np.einsum("c,cjk->jk", sizes / max(sizes.sum(), 1e-300), coefficients[:, 1:]),
    )
    corrected = fitted.apply(scores, design, out=out)
    if placeholder:  # centroid and mean of the corrected cells themselves
        centroids, means = _centres(states, corrected)
        fitted = replace(fitted, centroids=centroids, means=means)
    return replace(fitted, corrected=corrected)


def _centres(states: np.ndarray, corrected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per state, the unit centroid of the cells' directions and the mean corrected scores (by blocks, in float64)."""

    def sums(block):
        rows = np.asarray(corrected[block], dtype=np.float64)
        return np.hstack([states[:, block] @ cosine_rows(rows), states[:, block] @ rows])

    total = parallel.ordered_sum(sums, _cell_blocks(corrected.shape[0]))
    r = corrected.shape[1]
    sizes = states.sum(axis=1)
    return cosine_rows(total[:, :r]), total[:, r:] / np.maximum(sizes[:, None], 1e-300)


def _nonzero_columns(matrix: np.ndarray):
    """Each column with the rows where it is non-zero (``slice(None)``: most rows)."""
    for j, column in enumerate(matrix.T):
        rows = np.flatnonzero(column)
        if len(rows) > len(column) // 2:
            yield j, slice(None), column[:, None]
        elif len(rows):
            yield j, rows, column[rows, None]


def _fit_coefficients(scores: np.ndarray, design: Design, states: np.ndarray, shrinkage: float) -> np.ndarray:
    """Per state, the ridge of ``scores`` on ``[1, D]`` weighted by the memberships (intercept unpenalised).

    The normal equations of all states at once: one product per design column, over its non-zero
    rows, in blocks of cells on the fit's threads (added in block order).
    """
    n_states, p, r = states.shape[0], 1 + design.values.shape[1], scores.shape[1]

    def normal_equations(block):  # states × p × (p + r): [Σ w f fᵀ, Σ w f sᵀ] over the block's cells
        members = np.ascontiguousarray(states[:, block].T)  # cells × states: a cell's memberships are one row
        full = np.hstack([np.ones((members.shape[0], 1)), design.values[block]])
        part = np.zeros((n_states, p, p + r))
        for j, rows, column in _nonzero_columns(full):
            weighted = (members[rows] * column).T
            part[:, j, :p] = weighted @ full[rows]
            part[:, j, p:] = weighted @ scores[block][rows]
        return part

    total = parallel.ordered_sum(normal_equations, _cell_blocks(scores.shape[0]))
    gram, cross = total[:, :, :p] + np.diag(np.r_[0.0, np.full(p - 1, shrinkage)]), total[:, :, p:]
    try:
        return np.linalg.solve(gram, cross)
    except np.linalg.LinAlgError:  # a state without (observed) cells
        return np.stack([np.linalg.lstsq(system, right, rcond=None)[0] for system, right in zip(gram, cross)])


def _remove(scores: np.ndarray, design: Design, states: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``S − Σ_c R_c ⊙ (D W_c)``: the random coefficients' part, intercepts kept; unobserved cells untouched."""
    corrected = np.empty_like(scores)

    def fill(block):
        corrected[block] = scores[block] - _effect(design.rows(block), states[:, block], coefficients)

    for _ in parallel.ordered_map(fill, _cell_blocks(scores.shape[0])):
        pass
    return corrected


def _cell_blocks(n: int) -> list[slice]:
    """Row blocks of ``BLOCK_CELLS`` cells (the threads' share of the work; sums added in this order)."""
    return [slice(start, start + BLOCK_CELLS) for start in range(0, n, BLOCK_CELLS)]


def _effect(design: Design, states: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``Σ_c R_c ⊙ (D W_c)`` as ``Σ_j D_j ⊙ (Rᵀ W_{·j})``: one product per design column, over its non-zero rows."""
    members = np.ascontiguousarray(states.T)  # no copy when the states are a transposed cells × states
    effect = np.zeros((members.shape[0], coefficients.shape[2]), coefficients.dtype)
    for j, rows, column in _nonzero_columns(design.values):
        part = members[rows] @ coefficients[:, 1 + j]
        if not (design.indicators[j] and isinstance(rows, np.ndarray)):  # else the column's 1s
            part *= column
        effect[rows] += part
    effect[~design.observed] = 0.0
    return effect


# ----------------------------------------------------------------------- soft states
def cosine_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = _row_norms(matrix)[:, None]
    return matrix / np.where(norms > 0, norms, 1.0)


def _row_norms(matrix: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", matrix, matrix))


def maximin_centroids(unit: np.ndarray, n_states: int) -> np.ndarray:
    """Farthest-point centroids: independent of the order of the cells (exact ties broken by value)."""
    mean = unit.mean(axis=0)
    mean /= max(np.linalg.norm(mean), 1e-300)
    chosen = [_argmax_by_value(1 - _dot_rows(unit, mean), unit)]
    nearest = 1 - _dot_rows(unit, unit[chosen[0]])
    for _ in range(1, n_states):
        chosen.append(_argmax_by_value(nearest, unit))
        np.minimum(nearest, 1 - _dot_rows(unit, unit[chosen[-1]]), out=nearest)
    return unit[chosen].copy()


def _dot_rows(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` in one thread (a threaded BLAS matrix-vector product costs more than it saves here)."""
    return np.einsum("ij,j->i", matrix, vector, optimize=False)


def _argmax_by_value(values: np.ndarray, rows: np.ndarray) -> int:
    best = np.flatnonzero(values == values.max())
    if len(best) == 1:
        return int(best[0])
    return int(best[np.lexsort(rows[best].T[::-1])[0]])


def spherical_lloyd(unit: np.ndarray, centroids: np.ndarray, *, steps: int) -> np.ndarray:
    """Lloyd steps of spherical k-means; a state left empty keeps its centroid."""
    states = np.arange(len(centroids))[:, None]
    for _ in range(steps):
        members = (np.argmax(unit @ centroids.T, axis=1)[None, :] == states).astype(unit.dtype)
        filled = members.any(axis=1)
        centroids[filled] = cosine_rows(members[filled] @ unit)
    return centroids


def soft_states(unit, centroids, levels, prior, settings: Settings, R=None):
    """Memberships (states × n) with Harmony's diversity penalty, all cells at once, damped.

    Stops when no membership moves more than ``settings.tolerance`` in a step. Blocks of cells on
    the fit's threads; the sums over the cells are added in block order.
    """
    R = np.array(_kernel(centroids, unit, settings.width) if R is None else R, order="C")  # updated in place
    blocks, r, keep = _cell_blocks(unit.shape[0]), unit.shape[1], 1 - settings.damping

    def sums(block):  # states × (r + B + 1): Σ R unit, Σ R levels, Σ R over the block's cells
        part = R[:, block]
        return np.hstack([part @ unit[block], part @ levels[:, block].T, part.sum(axis=1, keepdims=True)])

    def step(block, centroids, penalty):  # the block's damped update; its largest move
        logits = _logits(centroids, unit[block], settings.width)
        if penalty is not None:
            logits += penalty @ levels[:, block]
        move = _softmax(logits)
        move -= R[:, block]
        move *= keep
        R[:, block] += move
        return np.abs(move).max()

    for _ in range(settings.cluster_steps):
        total = parallel.ordered_sum(sums, blocks)
        centroids, penalty = cosine_rows(total[:, :r]), None
        if levels.shape[0]:
            observed, expected = total[:, r:-1], total[:, -1:] * prior[None, :]
            penalty = settings.diversity * np.log((expected + 1) / (observed + 1))
        change = max(parallel.ordered_map(lambda block: step(block, centroids, penalty), blocks))  # noqa: B023
        if change < settings.tolerance:
            break
    return R, centroids


def _logits(left: np.ndarray, right: np.ndarray, width: float) -> np.ndarray:
    """``−2 (1 − cos) / σ`` between unit rows (centroids and cells, either way round), less ``−2/σ``.

    (The softmax over the states cancels the constant.)
    """
    logits = left @ right.T
    logits *= 2 / width
    return logits


def _kernel(centroids: np.ndarray, unit: np.ndarray, width: float) -> np.ndarray:
    """Memberships (states × cells) without the diversity penalty: the transpose of a cells × states array.

    The logits of unit rows are at most ``2/σ``, the shift that keeps every exponential ≤ 1 (when
    no state could underflow, i.e. ``4/σ`` below exp's range; else the softmax's own shift).
    """
    if 4 / width > 700:
        return _softmax(_logits(unit, centroids, width), axis=1).T
    weights = unit @ (centroids.T * (2 / width))
    weights -= 2 / width
    np.exp(weights, out=weights)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.T


def _softmax(logits: np.ndarray, axis: int = 0) -> np.ndarray:
    """Softmax over the states (``axis``), in place."""
    logits -= logits.max(axis=axis, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=axis, keepdims=True)
    return logits


def design_of(raw: np.ndarray, observed: np.ndarray, *, center=None, scale=None, copy: bool = True) -> Design:
    """Z's raw columns as a design: 0/1 columns are levels, the others standardised.

    The training cells' standardisation (over their observed cells) is ``center``/``scale`` for
    new cells; unobserved cells get zero rows. Column by column, in place (over a copy of ``raw``
    unless ``copy=False``): the temporaries are one column's, not n × q.
    """
    values = np.array(raw, dtype=np.float64) if copy else np.asarray(raw, dtype=np.float64)  # NumPy 1.x: no copy=None
    q, everyone = values.shape[1], bool(np.all(observed))
    binary = np.zeros(q, bool)
    stats = np.zeros((2, q))
    for j in range(q):
        seen = values[:, j] if everyone else values[observed, j]
        binary[j] = seen.size > 0 and bool(np.all((seen == 0) | (seen == 1)))
        if seen.size:
            stats[:, j] = seen.mean(), seen.std()
    if center is None:
        center = np.where(binary, 0.0, stats[0])
        scale = np.where(binary | (stats[1] == 0), 1.0, stats[1])
    indicators = (center == 0) & (scale == 1) & binary
    for j in range(q):
        values[:, j] -= center[j]
        values[:, j] /= scale[j]
    values[~observed] = 0.0
    return Design(values=values, indicators=indicators, observed=observed, center=center, scale=scale)


def random_design(operator) -> Design:
    """The random modality's raw columns (``Z``, not ``Z̃``) as a design, from its operator (any rows)."""
    raw = operator.raw_columns()  # exact: 0/1 columns stay 0/1 whatever the order of the cells
    observed = np.ones(operator.shape[0], bool) if operator.observed is None else operator.observed
    return design_of(raw, observed, copy=False)  # raw: a fresh array


def check_random_form(form: str, random, labels) -> None:
    """A random effect that corrects X needs a Z of few columns (its design), before any work."""
    columns = None if random is None else random.shape[1]
    if RANDOM_EFFECTS[form].corrects_fixed and columns is not None and columns > MAX_DESIGN_COLUMNS:
        label = (labels or DEFAULT_LABELS).get("random", "Z")
        raise ValueError(
            f"random_effect={form!r} needs a random-effect modality of at most {MAX_DESIGN_COLUMNS} columns "
            f"(covariates, levels), but {label} has {columns}; use random_effect='response'"
        )
