"""API rules as tests (after scanpy's test_package_structure)."""

import ast
import inspect
from pathlib import Path

import pytest

import lmf_omics
from lmf_omics import get, pl, pp, tl

PACKAGE = Path(lmf_omics.__file__).parent
CORE_ALLOWED = {
    "numpy",
    "scipy",
    "tqdm",
    "logging",
    "dataclasses",
    "collections",
    "numbers",
    "typing",
    "itertools",
    "__future__",
    "os",
    "concurrent",
    "contextlib",
    "contextvars",
    "sys",
    "warnings",
    "inspect",  # the options' derived signatures
    "textwrap",
    "threading",  # the BLAS limit's owner thread
}
# optional: imported inside the functions that need them (dask backend, BLAS thread limit), never at import
CORE_OPTIONAL = {"dask", "threadpoolctl", "sklearn"}  # imported inside the functions that need them


@pytest.mark.parametrize("path", sorted((PACKAGE / "_core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_numeric_libraries(path):
    tree = ast.parse(path.read_text())
    lazy = {id(node) for func in ast.walk(tree) if isinstance(func, ast.FunctionDef) for node in ast.walk(func)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        allowed = CORE_ALLOWED | (CORE_OPTIONAL if id(node) in lazy else set())
        for name in names:
            assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


PREPROCESSING = [pp.normalize_rna, pp.clr, pp.covariates, pp.spatial_context, pp.image_features]
PLOTS = [pl.variance_explained, pl.convergence, pl.loadings, pl.factors_spatial]
TOOLS = [tl.lmf, tl.transform, tl.predict]
PUBLIC_ADATA_FUNCTIONS = [*TOOLS, *PLOTS, *PREPROCESSING, get.model, get.variance_explained, get.loadings]


@pytest.mark.parametrize("func", PUBLIC_ADATA_FUNCTIONS, ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_adata_first_and_documented(func):
    params = list(inspect.signature(func).parameters.values())
    assert params[0].name == "adata"
    assert func.__doc__ and len(func.__doc__.strip()) > 40


@pytest.mark.parametrize("func", PLOTS, ids=lambda f: f.__name__)
def test_plots_follow_scanpy_show_save(func):
    params = inspect.signature(func).parameters
    assert params["show"].default is False and params["save"].default is None
    assert params["key"].default == "lmf"


def test_public_names():
    assert set(lmf_omics.__all__) >= {"LinearMixedForms", "tl", "pl", "pp", "get", "datasets", "__version__"}
