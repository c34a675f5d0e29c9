"""Bad and odd inputs to the command line (``lmf-omics fit`` / ``predict``, in-process): the catalogue.

A failing command must print one line ``lmf-omics: error: ...`` and exit 1, leaving the input, an
existing output and the folder as they were (no temporary file left behind).
"""

import contextlib
import io
import os
import socket
import stat
from functools import partial

import anndata as ad
import h5py
import numpy as np

from lmf_omics.cli import main

from .reliability import Case, counts_adata

FIT = ["--response", "obsm:protein", "--fixed", "X", "--random", "obs:batch", "--n-factors", "3", "--max-iter", "20"]


class CliError(Exception):
    """A command that exited non-zero; the message is what it printed."""


def _run(argv):
    """Run the CLI in-process: a non-zero exit becomes :class:`CliError` (after checking it printed one line)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(["--quiet", *argv])
    printed = [line for line in stderr.getvalue().splitlines() if line.startswith("lmf-omics: error:")]
    if code == 0:
        return code
    assert code == 1 and len(printed) == 1, f"exit {code}, printed {stderr.getvalue()!r}"
    raise CliError(printed[0])


def _files(tmp, edit=None, old_output=True, write=None):
    """An input file, an existing output (an earlier result that must survive a failure) and, optionally, more."""
    adata = counts_adata()
    if edit is not None:
        edit(adata)
    source, output = tmp / "cells.h5ad", tmp / "out.h5ad"
    if write is None:
        adata.write_h5ad(source)
    else:
        write(source, adata)
    if old_output:
        counts_adata(n=5).write_h5ad(output)
    return {"input": source, "output": output}


def _fit_command(inputs, *extra, options=FIT, output=None):
    return _run(["fit", str(inputs["input"]), "-o", str(output or inputs["output"]), *options, *extra])


def _fit_case(category, name, *, options=FIT, output=None, error=True, match=None, check=None, **files):
    """A ``lmf-omics fit`` case; ``files`` go to :func:`_files`, ``output`` names another output path."""
    return Case(
        "lmf-omics fit",
        category,
        name,
        partial(_files, **files),
        lambda i: _fit_command(i, options=options, output=output and output(i)),
        error=CliError if error else None,
        match=match if error else None,
        writes=() if error else ("file/output",),
        check=check,
    )


def _replace(option, value):
    options = list(FIT)
    options[options.index(option) + 1] = value
    return options


def _protein_nan(row, column=slice(None)):
    def edit(adata):
        protein = adata.obsm["protein"].astype(np.float64)
        protein.iloc[row, column] = np.nan
        adata.obsm["protein"] = protein

    return edit


def _junk(content):
    def write(path, adata):
        path.write_bytes(content)

    return write


def _truncated(path, adata):
    adata.write_h5ad(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _plain_hdf5(path, adata):
    with h5py.File(path, "w") as handle:
        handle["x"] = np.arange(3)


def _fitted_output(inputs, result):
    fitted = ad.read_h5ad(inputs["output"])
    assert fitted.obsm["X_lmf"].shape == (40, 3) and np.all(np.isfinite(fitted.obsm["X_lmf"]))


def _predict_files(tmp, reference_fit=True, output_is_reference=False):
    inputs = _files(tmp)
    reference = tmp / "reference.h5ad"
    fitted = counts_adata(seed=1)
    if reference_fit:
        from lmf_omics import tl

        tl.lmf(fitted, response="obsm:protein", fixed="X", random="obs:batch", n_factors=3, max_iter=20, progress=False)
    fitted.write_h5ad(reference)
    inputs["reference"] = reference
    if output_is_reference:
        inputs["output"] = reference
    return inputs


def _predict_command(inputs, *extra):
    return _run(["predict", str(inputs["input"]), "-r", str(inputs["reference"]), "-o", str(inputs["output"]), *extra])


ERROR = r"^lmf-omics: error: "
CASES = [
    _fit_case(
        "missing key",
        "an obsm key that is not there",
        options=_replace("--response", "obsm:adt"),
        match=ERROR + r"response='obsm:adt': 'adt' not found in adata.obsm; available: \['protein', 'spatial'\]$",
    ),
    _fit_case(
        "missing key",
        "a mask_var column that is not there",
        options=[*FIT, "--mask-var", "hvg"],
        match=ERROR + r".*'hvg' not found in adata.var; available: \['highly_variable'\]$",
    ),
    _fit_case(
        "n_factors",
        "--n-factors 0",
        options=_replace("--n-factors", "0"),
        match=ERROR + r"n_factors must be a positive integer, got 0$",
    ),
    _fit_case(
        "n_factors",
        "more factors than proteins",
        options=_replace("--n-factors", "9"),
        match=ERROR + r"n_factors=9 is larger than the features of response='obsm:protein' \(6\)",
    ),
    _fit_case(
        "options",
        "--ridge nan",
        options=[*FIT, "--ridge", "nan"],
        match=ERROR + r"ridge must be a finite number >= 0, got nan$",
    ),
    _fit_case(
        "options",
        "--key-added with '/'",
        options=[*FIT, "--key-added", "a/b"],
        match=ERROR + r"key_added='a/b' contains '/'",
    ),
    _fit_case(
        "NaN/inf in a modality",
        "NaN in one protein value",
        edit=_protein_nan(2, 3),
        match=ERROR + r"response='obsm:protein' contains 1 NaN or infinite value\(s\) \(first at row 2",
    ),
    _fit_case(
        "NaN/inf in a modality",
        "a cell without protein (a row of NaN)",
        edit=_protein_nan(2),
        error=False,
        check=_fitted_output,
    ),
    _fit_case("files", "the output replaces an earlier one", error=False, check=_fitted_output),
    _fit_case("files", "no earlier output", old_output=False, error=False, check=_fitted_output),
    _fit_case(
        "files",
        "input: not an HDF5 file",
        write=_junk(b"not an hdf5 file"),
        match=ERROR + r"cannot read input file '.*cells.h5ad' as an .h5ad file \(.*signature",
    ),
    _fit_case(
        "files",
        "input: an empty file",
        write=_junk(b""),
        match=ERROR + r"cannot read input file '.*cells.h5ad' as an .h5ad file",
    ),
    _fit_case(
        "files",
        "input: a truncated h5ad",
        write=_truncated,
        match=ERROR + r"cannot read input file '.*cells.h5ad' as an .h5ad file \(.*truncated file",
    ),
    _fit_case(
        "files",
        "input: HDF5 but not AnnData",
        write=_plain_hdf5,
        match=ERROR + r"cannot read input file '.*cells.h5ad' as an .h5ad file",
    ),
    _fit_case(
        "files",
        "input: a directory",
        write=lambda path, adata: path.mkdir(),
        match=ERROR + r"input file '.*cells.h5ad' is a directory; give the path of an .h5ad file$",
    ),
    _fit_case(
        "files",
        "input: missing",
        write=lambda path, adata: None,
        match=ERROR + r"input file '.*cells.h5ad' does not exist$",
    ),
    _fit_case(
        "files",
        "output: a directory",
        output=lambda i: i["input"].parent,
        match=ERROR + r"output '.*' is a directory; give a file name",
    ),
    _fit_case(
        "files",
        "output: in a missing directory",
        output=lambda i: i["input"].parent / "no" / "out.h5ad",
        match=ERROR + r"output directory '.*no' does not exist$",
    ),
    _fit_case(
        "files",
        "output: the input itself",
        output=lambda i: i["input"],
        match=ERROR + r"output '.*cells.h5ad' is the input file; pass --in-place to overwrite it$",
    ),
    Case(
        "lmf-omics predict",
        "files",
        "output: the reference itself",
        partial(_predict_files, output_is_reference=True),
        _predict_command,
        error=CliError,
        match=ERROR + r"output '.*reference.h5ad' is the reference file",
    ),
    Case(
        "lmf-omics predict",
        "missing key",
        "a reference without a fit",
        partial(_predict_files, reference_fit=False),
        _predict_command,
        error=CliError,
        match=ERROR + r"no LMF fit under uns\['lmf'\]; fits present: \[\]",
    ),
    Case(
        "lmf-omics predict",
        "missing key",
        "a reference without the key",
        _predict_files,
        lambda i: _predict_command(i, "--key", "prot"),
        error=CliError,
        match=ERROR + r"no LMF fit under uns\['prot'\]; fits present: \['lmf'\]",
    ),
    Case(
        "lmf-omics predict",
        "options",
        "--layer with '/' (refused before any work)",
        _predict_files,
        lambda i: _predict_command(i, "--layer", "a/b"),
        error=CliError,
        match=ERROR + r"--layer='a/b' contains '/', which an h5ad file cannot store in a key",
    ),
    Case(
        "lmf-omics predict",
        "options",
        "--layer for a response that is not var-aligned (before any work)",
        _predict_files,
        lambda i: _predict_command(i, "--layer", "predicted"),
        error=CliError,
        match=ERROR + r"layer='predicted' needs a var-aligned response \('X' or 'layer:<name>'\), but it is "
        r"'obsm:protein'",
    ),
    Case(
        "lmf-omics predict",
        "files",
        "predictions for new cells",
        _predict_files,
        _predict_command,
        writes=("file/output",),
        check=lambda i, r: np.testing.assert_equal(ad.read_h5ad(i["output"]).obsm["lmf_predicted"].shape, (40, 6)),
    ),
]


# second round: corrupt files, outputs that are not regular files, keys
def _edited_on_disk(name, position, value):
    def write(path, adata):
        adata.write_h5ad(path)
        with h5py.File(path, "r+") as handle:
            handle[name][position] = value

    return write


def _special(kind):
    """An output path that exists and is not a regular file (made in the case's folder)."""

    def output(inputs):
        path = inputs["output"].with_name(f"special.{kind}")
        if not path.exists():
            if kind == "fifo":
                os.mkfifo(path)
            elif kind == "socket":
                server = socket.socket(socket.AF_UNIX)
                server.bind(str(path))
                server.close()
            else:
                os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a copy of /dev/null
        return path

    return output


def _fifo_input(tmp):
    inputs = _files(tmp)
    inputs["input"].unlink()
    os.mkfifo(inputs["input"])
    return inputs


def _spatial_scalefactors(adata):
    adata.uns["spatial"] = {"section": {"scalefactors": {"spot_diameter_fullres": 9.0}}}


CASES += [
    _fit_case(
        "sparse format",
        "an h5ad whose X/indices were edited (segfaulted)",
        write=_edited_on_disk("X/indices", 3, 10**6),
        match=ERROR + r"fixed='X' is a corrupt CSR matrix: column index 1000000 of row 0 is outside 0\.\.29",
    ),
    _fit_case(
        "sparse format",
        "an h5ad whose X/indptr decreases (exited 0)",
        write=_edited_on_disk("X/indptr", 3, 0),
        match=ERROR + r"fixed='X' is a corrupt CSR matrix: indptr decreases after row 2",
    ),
    *[
        _fit_case(
            "files",
            f"-o naming an existing {what}",
            output=_special(kind),
            match=ERROR + rf"output '.*special\.{kind}' exists and is not a regular file \({what}\); name a file",
        )
        for kind, what in (("fifo", "a FIFO"), ("socket", "a socket"))
        + ((("chardev", "a character device"),) if os.geteuid() == 0 else ())
    ],
    Case(
        "lmf-omics fit",
        "files",
        "a FIFO as the input",
        _fifo_input,
        lambda i: _fit_command(i),
        error=CliError,
        match=ERROR + r"input file '.*cells.h5ad' is a FIFO, not an .h5ad file",
    ),
    _fit_case(
        "keys",
        "--key-added spatial over uns['spatial']",
        options=[*FIT, "--key-added", "spatial"],
        edit=_spatial_scalefactors,
        match=ERROR + r"key_added='spatial' would overwrite uns\['spatial'\], which LMF did not write",
    ),
    _fit_case(
        "keys",
        "--key-added '.'",
        options=[*FIT, "--key-added", "."],
        match=ERROR + r"key_added='\.' names the group itself in an h5ad file",
    ),
]
