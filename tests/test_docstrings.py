"""numpydoc on the public API: every public function, class and method has a summary, each of its
parameters (in order) and, when it returns or yields something, a Returns or Yields section.

Checked with ``numpydoc.validate`` (the codes below); the house style (scanpy's) gives types as
annotations, not in the docstring, so the type checks (PR04, RT03, ...) are not used.
"""

import importlib
import inspect

import pytest
from numpydoc.docscrape import get_doc_object
from numpydoc.validate import validate

CHECKS = {
    "GL08": "no docstring",
    "SS01": "no summary line",
    "PR01": "a parameter not documented",
    "PR02": "a documented parameter the signature lacks",
    "PR03": "parameters documented out of order",
    "RT01": "no Returns section",
    "YD01": "no Yields section",
}
PUBLIC_MODULES = (
    "lmf_omics",
    "lmf_omics.tl",
    "lmf_omics.pp",
    "lmf_omics.pl",
    "lmf_omics.get",
    "lmf_omics.datasets",
    "lmf_omics.demo",
    "lmf_omics.cli",
    "lmf_omics.nn",  # needs torch (installed by .ci/run)
)
# Known gaps, each to be closed (a strict xfail: the test fails once the docstring is fixed, so the
# entry is removed then). None is left.
KNOWN_GAPS: dict[str, str] = {}  # name -> the numpydoc errors a strict xfail expects


def _public_names(module_name: str):
    """``module.__all__`` (or its own public functions and classes), and the public methods of each class."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__ == module_name
        ]
    for name in names:
        value = getattr(module, name)
        if inspect.ismodule(value) or not callable(value):  # subpackages are listed in turn; __version__
            continue
        yield f"{module_name}.{name}"
        if inspect.isclass(value):
            for member, attribute in vars(value).items():
                if not member.startswith("_") and (callable(attribute) or isinstance(attribute, property)):
                    yield f"{module_name}.{name}.{member}"


def _public_api() -> list:
    params = []
    for module_name in PUBLIC_MODULES:
        try:
            names = list(_public_names(module_name))
        except ImportError as error:  # lmf_omics.nn without torch
            params.append(pytest.param(module_name, marks=pytest.mark.skip(reason=str(error))))
            continue
        for name in names:
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[name])] if name in KNOWN_GAPS else []
            params.append(pytest.param(name, marks=marks))
    return params


@pytest.mark.parametrize("name", _public_api())
def test_public_docstring_is_numpydoc(name):
    errors = [f"{code} ({CHECKS[code]}): {message}" for code, message in validate(name)["errors"] if code in CHECKS]
    assert not errors, f"{name}:\n" + "\n".join(errors)


def test_the_checks_cover_the_whole_public_api():
    names = {p.values[0] for p in _public_api()}
    assert {"lmf_omics.tl.lmf", "lmf_omics.pp.clr", "lmf_omics.get.loadings", "lmf_omics.cli.main"} <= names
    assert "lmf_omics.grid_search" in names and "lmf_omics.datasets.read_shared" in names
    assert set(KNOWN_GAPS) <= names  # a gap for a name that is gone is stale


def test_a_missing_parameter_is_caught():
    """The check itself: a function documenting one of its two parameters fails PR01."""

    def half_documented(a, b):
        """Add.

        Parameters
        ----------
        a
            A number.

        Returns
        -------
        The sum.
        """
        return a + b

    errors = {code for code, _ in validate(get_doc_object(half_documented))["errors"] if code in CHECKS}
    assert errors == {"PR01"}
