"""The estimator's options, written once: every door (estimator, ``tl.lmf``, CLI, R) is derived from them.

:class:`Options` is a frozen dataclass. Each field carries its default and, in its metadata, the
text of its documentation (``help``) and, where the values are a fixed set, its ``choices``
(derived from the registries :data:`.solvers.SOLVERS` and :data:`.problems.FORMS`). A new
option is one field here; ``tests/test_options.py`` fails when a door does not take it.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Literal, get_type_hints

import numpy as np

from .problems import FORMS
from .random_effects import MAX_DESIGN_COLUMNS, RANDOM_EFFECTS
from .solvers import SOLVERS
from .validation import ROLES, check_weights, is_int, is_real

SolverName = Literal[tuple(SOLVERS)]
FormName = Literal[tuple(FORMS)]
RandomEffectName = Literal[tuple(RANDOM_EFFECTS)]
LARGEST_COUNT = 2**31 - 1  # iterations, factors, components, threads: an int32 (R's integers)
LARGEST_SEED = 2**63 - 1  # an int64: h5ad-writable


def _option(default, help: str, **metadata):
    return field(default=default, metadata={"help": " ".join(help.split()), **metadata})


@dataclass(frozen=True)
class Options:
    """Options of :class:`~lmf_omics.LinearMixedForms` (see its documentation for the model).

    Parameters
    ----------
    {options}
    """

    n_factors: int = _option(
        10,
        """Number of factors ``k``; at most the cells (minus one) and the features of Y and X. Z may have
        fewer features or a lower rank (e.g. a few one-hot batches).""",
    )
    solver: SolverName = _option(
        "joint",
        """``"joint"`` (exact block-coordinate descent) or ``"paper"`` (Algorithm 1 as printed, with the
        missing inverses restored; free codes, no ridge, not a descent method).""",
        choices=tuple(SOLVERS),
    )
    codes: FormName | None = _option(
        None,
        """Form of the codes: ``"encoded"`` (linear encodings of their modality) or ``"free"`` (the
        paper's); ``None`` picks the solver's default (encoded for the joint solver, free for the paper's).""",
        choices=tuple(FORMS),
    )
    n_pcs: int | None = _option(
        None,
        """Leading principal components of X̃ (and Z̃) that encoded codes live in; ``None`` means
        ``max(50, 2 · n_factors)``. Fewer components regularise more; ignored for free codes.""",
    )
    random_effect: RandomEffectName | None = _option(
        None,
        f"""What the random effect accounts for: ``"states"`` (removed from X's principal scores within soft cell
        states, so the fixed code K is free of it even where it differs between cell types), ``"shift"`` (removed
        the same way in every cell) or ``"response"`` (the paper's form: Z explains the response only, through H;
        K keeps whatever batch structure X has). ``None``: ``"states"`` for encoded codes and a random modality of
        at most {MAX_DESIGN_COLUMNS} columns, else ``"response"``.""",
        choices=tuple(RANDOM_EFFECTS),
    )
    center: bool = _option(True, "Centre each feature (recommended).")
    scale: bool = _option(
        False,
        """Scale each feature to unit variance. Constant features are centred to zero and keep a divisor of 1.""",
    )
    weights: Mapping[str, float] | None = _option(
        None,
        """Relative weight of each role's modality, keys ``"response"``, ``"fixed"``, ``"random"`` (default 1
        each: every modality counts as much as any other).""",
        cli="--weight",
    )
    ridge: float = _option(
        1e-3,
        """Penalty ``ρ`` on codes and loadings (on the weighted scale, where the data have unit norm); keeps
        every system well posed, including a low-rank Z. ``solver="paper"`` ignores it.""",
    )
    max_iter: int = _option(500, "Stop after this many iterations (not converging logs a warning).")
    tol: float = _option(1e-6, "Stop when the relative change of the objective falls below ``tol``.")
    random_state: int = _option(
        0,
        """Seed of the randomised parts (principal bases, initialisation); the same seed gives identical
        results.""",
        cli="--seed",
    )
    progress: bool | None = _option(None, "Show a progress bar (``None``: at info level, on a terminal).")
    n_jobs: int | None = _option(
        None,
        """Threads for the products with the data (``-1``: every core this process may use; ``None``: every
        core for the estimator, ``sc.settings.n_jobs`` in ``tl``). Results do not depend on it.""",
    )

    def validate(self) -> Options:
        """Raise a ``ValueError`` naming the first invalid option and what it may be.

        Returns
        -------
        Options
            ``self``, when every option is valid.
        """
        _check_count("n_factors", self.n_factors, minimum=1)
        _check_choice("solver", self.solver, tuple(SOLVERS))
        if self.codes is not None:
            _check_choice("codes", self.codes, tuple(FORMS), none=True)
            solver = SOLVERS[self.solver]
            if self.codes not in solver.forms:
                raise ValueError(
                    f"solver={solver.name!r} ({solver.title}) fits {' or '.join(solver.forms)} codes, not "
                    f"codes={self.codes!r}; use codes={solver.forms[0]!r} or another solver"
                )
        if self.random_effect is not None:
            _check_choice("random_effect", self.random_effect, tuple(RANDOM_EFFECTS), none=True)
            if RANDOM_EFFECTS[self.random_effect].corrects_fixed and self.form != "encoded":
                raise ValueError(
                    f"random_effect={self.random_effect!r} needs encoded codes (the fixed code is confined to the "
                    f"corrected principal scores of X); use codes='encoded' or random_effect='response'"
                )
        if self.n_pcs is not None:
            _check_count(
                "n_pcs", self.n_pcs, minimum=self.n_factors, what=f"an integer >= n_factors ({self.n_factors})"
            )
        _check_number("ridge", self.ridge, minimum=0.0, strict=False)
        _check_count("max_iter", self.max_iter, minimum=1)
        _check_number("tol", self.tol, minimum=0.0, strict=True)
        for name in ("center", "scale"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.progress is not None and not isinstance(self.progress, bool | np.bool_):
            raise ValueError(f"progress must be True, False or None, got {self.progress!r}")
        seed = self.random_state
        if seed is not None and (not is_int(seed) or seed < 0):
            raise ValueError(f"random_state must be a non-negative integer seed (or None), got {seed!r}")
        if seed is not None and seed > LARGEST_SEED:
            raise ValueError(f"random_state must be at most 2**63 - 1 (an int64, h5ad-writable), got {seed!r}")
        jobs = self.n_jobs
        if jobs is not None and (not is_int(jobs) or not (1 <= jobs <= LARGEST_COUNT or jobs == -1)):
            raise ValueError(f"n_jobs must be a positive integer, -1 or None (every core), got {jobs!r}")
        check_weights(self.weights if self.weights is not None else {})
        return self

    @property
    def form(self) -> str:
        """The form of the codes this fit uses: ``codes``, or the solver's default."""
        return self.codes if self.codes is not None else SOLVERS[self.solver].forms[0]

    @property
    def components(self) -> int:
        """``n_pcs``, or its default ``max(50, 2 · n_factors)``."""
        return self.n_pcs or max(50, 2 * self.n_factors)

    def random_form(self, random_columns: int | None) -> str:
        """The form of the random effect a fit uses.

        Parameters
        ----------
        random_columns
            The number of columns of the fit's Z (``None``: no Z).

        Returns
        -------
        str
            ``random_effect``, or its default for such a Z.
        """
        if self.random_effect is not None:
            return self.random_effect
        if random_columns is None or self.form != "encoded" or random_columns > MAX_DESIGN_COLUMNS:
            return "response"
        return "states"

    def role_weights(self) -> dict[str, float]:
        """The weight of every role.

        Returns
        -------
        dict
            Role to weight, 1 where ``weights`` gives none.
        """
        return {role: 1.0 for role in ROLES} | dict(self.weights or {})

    @classmethod
    def from_mapping(cls, values: Mapping, *, where: str) -> Options:
        """Options from a mapping of names (an unknown name is a ``TypeError`` listing the valid ones)."""
        unknown = sorted(set(values) - set(NAMES))
        if unknown:
            raise TypeError(f"{where} got unknown option(s) {unknown}; the options are {list(NAMES)}")
        return cls(**values)

    def as_dict(self) -> dict:
        """The options by name.

        Returns
        -------
        dict
            Option name to value (a copy).
        """
        return asdict(self)


NAMES: tuple[str, ...] = tuple(f.name for f in fields(Options))
DEFAULTS: dict = {f.name: f.default for f in fields(Options) if f.default is not MISSING}


def signature_parameters() -> list[inspect.Parameter]:
    """The options as keyword-only parameters with their defaults (for derived signatures)."""
    hints = get_type_hints(Options)
    return [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
        for f in fields(Options)
    ]


def numpydoc_parameters(indent: int = 4, skip: tuple[str, ...] = ()) -> str:
    """The options' documentation as numpydoc ``Parameters`` entries, names ``indent`` spaces in, text 4 more."""
    pad, body_pad = " " * indent, " " * (indent + 4)
    entries = []
    for f in fields(Options):
        if f.name in skip:
            continue
        body = textwrap.fill(f.metadata["help"], width=100, initial_indent=body_pad, subsequent_indent=body_pad)
        entries.append(f"{pad}{f.name}\n{body}")
    return "\n".join(entries)


def fill_options(doc: str, skip: tuple[str, ...] = ()) -> str:
    """``doc`` with its line ``{options}`` replaced by :func:`numpydoc_parameters`, indented as that line.

    The indentation is read, not assumed: Python 3.13 strips a docstring's common indentation when it
    compiles it (3.11 and 3.12 keep it), so the line is ``    {options}`` on one and ``{options}`` on the other.
    """
    lines = doc.splitlines()
    placeholders = [i for i, line in enumerate(lines) if line.strip() == "{options}"]
    if len(placeholders) != 1:
        raise ValueError(f"a docstring to fill needs one line {{options}}, found {len(placeholders)}")
    line = lines[placeholders[0]]
    lines[placeholders[0]] = numpydoc_parameters(len(line) - len(line.lstrip()), skip)
    return "\n".join(lines)


def _check_count(name: str, value, *, minimum: int, what: str = "a positive integer") -> None:
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if value > LARGEST_COUNT:
        raise ValueError(f"{name} must be at most 2**31 - 1, got {value!r}")


def _check_number(name: str, value, *, minimum: float, strict: bool) -> None:
    if not is_real(value) or not np.isfinite(value) or (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value!r}")


def _check_choice(name: str, value, choices: tuple[str, ...], *, none: bool = False) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}{' or None' if none else ''}, got {value!r}")


Options.__doc__ = fill_options(Options.__doc__)
