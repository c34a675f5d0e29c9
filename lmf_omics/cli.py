"""Command line: ``lmf-omics fit`` and ``lmf-omics demo``; the same ``tl`` functions as Python."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import get_args, get_type_hints

from ._core.log import logger
from ._core.options import NAMES, Options
from ._core.validation import ROLES
from ._io import Terminated, check_writable_target, signals_stop_writes
from ._keys import check_key_added

PROG = "lmf-omics"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line: ``lmf-omics fit``, ``predict`` or ``demo`` (``lmf-omics --help`` lists the options).

    Parameters
    ----------
    argv
        The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    The exit code: 0 success, 1 bad input or failure (one ``lmf-omics: error: ...`` line on standard
    error; ``--debug`` raises instead), 2 usage, 130/143 stopped by Ctrl-C/SIGTERM.

    Examples
    --------
    >>> from lmf_omics.cli import main
    >>> main(["fit", "in.h5ad", "-o", "out.h5ad", "--response", "obsm:protein", "--fixed", "X"])
    0
    """
    args = _parser().parse_args(argv)
    level = logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    try:
        with _package_logging(level), signals_stop_writes():
            return args.run(args)
    except (KeyboardInterrupt, Terminated) as stop:
        if args.debug:
            raise
        name, code = ("SIGTERM", 143) if isinstance(stop, Terminated) else ("interrupt", 130)
        print(f"{PROG}: error: stopped by {name}; no output was written", file=sys.stderr)
        return code
    except Exception as error:  # one line for the user; --debug shows the traceback
        if args.debug:
            raise
        lines = [line for line in str(error).splitlines() if line.strip()]
        print(f"{PROG}: error: {lines[0] if lines else type(error).__name__}", file=sys.stderr)
        return 1


@contextmanager
def _package_logging(level: int):
    """The command's level (``--quiet``: warnings) for the package logger, whatever scanpy's; restored after."""
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _fit(args: argparse.Namespace) -> int:
    from . import tl
    from ._io import read_h5ad, write_h5ad_atomic

    source, target = Path(args.input), Path(args.output)
    _check_paths(source, target, in_place=args.in_place)
    adata = read_h5ad(source)
    options = {name: getattr(args, name) for name in NAMES if name != "n_factors"}
    n_factors = args.n_factors[0] if len(args.n_factors) == 1 else tuple(args.n_factors)
    tl.lmf(
        adata,
        response=args.response,
        fixed=args.fixed,
        random=args.random,
        n_factors=n_factors,
        cv_folds=args.cv_folds,
        mask_var=args.mask_var,
        observed=args.observed,
        key_added=args.key_added,
        **options,
    )
    write_h5ad_atomic(adata, target)
    logger.info("wrote %s", target)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ._io import read_h5ad, write_h5ad_atomic
    from .tl._transfer import transform_and_predict

    source, target, reference_path = Path(args.input), Path(args.output), Path(args.reference)
    _check_paths(source, target, in_place=args.in_place)
    if target.resolve() == reference_path.resolve():
        raise ValueError(f"output {str(target)!r} is the reference file; write the predictions elsewhere")
    if args.layer is not None:
        check_key_added(args.layer, "--layer")
    reference = read_h5ad(reference_path, "reference file")
    query = read_h5ad(source)
    transform_and_predict(query, reference, key=args.key, layer=args.layer)  # the query read once
    write_h5ad_atomic(query, target)
    logger.info("wrote %s", target)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.outdir, n_factors=args.n_factors)
    return 0


def _check_paths(source: Path, target: Path, *, in_place: bool) -> None:
    """The output path is checked before the input is read (which checks that the input exists)."""
    if not target.parent.is_dir():
        raise FileNotFoundError(f"output directory {str(target.parent)!r} does not exist")
    check_writable_target(target)  # a directory, device or FIFO is never replaced
    if not os.access(target.parent, os.W_OK):
        raise PermissionError(f"output directory {str(target.parent)!r} is not writable")
    if target.resolve() == source.resolve() and not in_place:
        raise ValueError(f"output {str(target)!r} is the input file; pass --in-place to overwrite it")


class _RoleValues(argparse.Action):
    """``--weight role=value`` / ``--observed role=column``, repeatable, into a dict by role."""

    numbers = False

    def __call__(self, parser, namespace, value, option_string=None):
        role, sep, item = value.partition("=")
        if not sep or role not in ROLES or not item:
            parser.error(f"{option_string} takes ROLE=VALUE with ROLE one of {', '.join(ROLES)}, got {value!r}")
        if self.numbers:
            try:
                item = float(item)
            except ValueError:
                parser.error(f"{option_string} {role}= takes a number, got {item!r}")
        values = dict(getattr(namespace, self.dest) or {})
        values[role] = item
        setattr(namespace, self.dest, values)


class _RoleNumbers(_RoleValues):
    numbers = True


def _add_options(parser: argparse.ArgumentParser) -> None:
    """One argument per estimator option (:class:`lmf_omics.Options`), from its field."""
    hints = get_type_hints(Options)
    for option in fields(Options):
        if option.name == "n_factors":
            continue
        flag = option.metadata.get("cli", "--" + option.name.replace("_", "-"))
        flags = [flag] + (
            [f"--{option.name.replace('_', '-')}"] if flag != f"--{option.name.replace('_', '-')}" else []
        )
        kind = {t for t in get_args(hints[option.name]) if t is not type(None)} or {hints[option.name]}
        common = {"dest": option.name, "default": option.default, "help": option.metadata["help"]}
        if "choices" in option.metadata:
            parser.add_argument(*flags, choices=option.metadata["choices"], **common)
        elif kind == {bool}:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, **common)
        elif option.name == "weights":
            parser.add_argument(*flags, action=_RoleNumbers, metavar="ROLE=WEIGHT", **common)
        else:
            parser.add_argument(*flags, type=next(iter(kind)), **common)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Linear Mixed Forms for single-cell and spatial omics.")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="fit LMF on an .h5ad and write the result to another .h5ad")
    fit.add_argument("input", help="input .h5ad")
    fit.add_argument("-o", "--output", required=True, help="output .h5ad (written atomically)")
    fit.add_argument("--response", required=True, help="modality spec of Y, e.g. obsm:protein_counts")
    fit.add_argument("--fixed", required=True, help="modality spec of X, e.g. X or layer:counts")
    fit.add_argument("--random", default=None, help="modality spec of Z, e.g. obs:hashtag (optional)")
    fit.add_argument(
        "--n-factors", type=int, nargs="+", default=[10], help="number of factors k, or candidates chosen by CV"
    )
    fit.add_argument("--cv-folds", type=int, default=5, help="folds of the cross-validation over --n-factors")
    fit.add_argument("--mask-var", default=None, help="boolean var column restricting var-aligned modalities")
    fit.add_argument(
        "--observed",
        action=_RoleValues,
        default=None,
        metavar="ROLE=COLUMN",
        help="cells that have a role's modality: a boolean obs column (repeatable)",
    )
    _add_options(fit)
    fit.add_argument("--key-added", default="lmf")
    fit.add_argument("--in-place", action="store_true", help="allow the output to be the input file")
    fit.set_defaults(run=_fit)

    predict = commands.add_parser(
        "predict", help="encode new cells with a fit stored in a reference .h5ad and predict its response for them"
    )
    predict.add_argument("input", help="query .h5ad (cells to encode)")
    predict.add_argument("-r", "--reference", required=True, help=".h5ad holding the fit (from lmf-omics fit)")
    predict.add_argument("-o", "--output", required=True, help="output .h5ad (written atomically)")
    predict.add_argument("--key", default="lmf", help="key_added of the fit in the reference")
    predict.add_argument("--layer", default=None, help="write predictions to this layer (var-aligned response)")
    predict.add_argument("--in-place", action="store_true", help="allow the output to be the input file")
    predict.set_defaults(run=_predict)

    demo = commands.add_parser("demo", help="fit the bundled pbmc68k_reduced data and write an .h5ad and figures")
    demo.add_argument("--outdir", default="lmf_demo", help="folder for lmf_demo.h5ad and the PNG figures")
    demo.add_argument("--n-factors", type=int, default=15)
    demo.set_defaults(run=_demo)
    return parser


if __name__ == "__main__":
    sys.exit(main())
