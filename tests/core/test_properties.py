"""Properties of the numeric core on random shapes, sparsity and ranks (hypothesis).

* the joint solver's objective never increases (encoded and free codes, cells without Y too);
* transform of the training data gives back the fitted codes: exactly for encoded codes (they are
  encoders applied to the data), to convergence tolerance for free codes (one more exact code step
  from the final loadings, so the gap shrinks like √tol);
* the fit does not depend on the order of the cells, nor on the order of the features.

What "the fit" means: the factors are reported in a canonical rotation (ordered by the response
variance each explains, signs fixed), and a near-tie in that order can swap two columns under a
rounding-level change. So the fits are compared where they are defined without that choice: the
reconstructions ``(K + H)αᵀ``, ``Kβᵀ``, ``Huᵀ`` and the objective.

Feature order and the randomised basis: encoded codes live in the leading ``n_pcs`` principal
subspace of X̃, exact for small X (``subspace.EXACT_ENTRIES``) and otherwise found by a randomised
range finder when X is wider than ``n_pcs + 10`` (forced below on small X too); free codes start
from a randomised SVD. Both sketches are keyed by the features' contents, not their
positions (``lmf_omics._core.keys``), so a permuted X meets the same sketch, permuted: the fits
agree to rounding (1e-8 relative is asserted) even where the leading subspace is not separated
from the rest (pure noise below), for any permutation of the cells and of every modality's features.
"""

import os
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import sparse

from lmf_omics import LinearMixedForms
from lmf_omics._core import subspace

FAST = settings(
    max_examples=int(os.environ.get("LMF_HYPOTHESIS_EXAMPLES", "20")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CODES = st.sampled_from(["encoded", "free"])


@st.composite
def problems(draw, max_cells=24, well_posed=False):
    """Random modalities with a planted latent signal: shapes, rank, noise, sparsity and format all drawn."""
    n = draw(st.integers(6, max_cells))
    rank = draw(st.integers(1, 4))
    widths = {"Y": draw(st.integers(1, 8)), "X": draw(st.integers(1, 10)), "Z": draw(st.integers(0, 5))}
    limit = min(4, n - 1, widths["Y"], widths["X"], *([rank] if well_posed else []))
    k = draw(st.integers(1, limit))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.3, 0.7, 1.0]))
    noise = draw(st.sampled_from([0.05, 0.3]))
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, rank))
    data = {}
    for name, width in widths.items():
        if width:
            data[name] = latent @ rng.standard_normal((rank, width)) + noise * rng.standard_normal((n, width))
    data["X"][rng.random(data["X"].shape) > density] = 0.0
    assume(np.ptp(data["X"], axis=0).max() > 0)  # an all-zero X is a clean error, tested elsewhere
    if draw(st.booleans()):
        data["X"] = sparse.csr_matrix(data["X"])
    return {"k": k, "data": data, "ridge": draw(st.sampled_from([1e-4, 1e-3, 1e-1]))}


def _fit(problem, codes, data=None, **options):
    data = data or problem["data"]
    model = LinearMixedForms(
        problem["k"], codes=codes, ridge=problem["ridge"], progress=False, **{"max_iter": 300, "tol": 1e-12, **options}
    )
    return model.fit(data["Y"], data["X"], data.get("Z"))


def _fits(model):
    """The reconstructions (rotation-free) of each modality, by role."""
    codes = {"response": model.codes_, "fixed": model.fixed_codes_, "random": model.random_codes_}
    return {role: codes[role] @ loading.T for role, loading in model.loadings_.items()}


def _assert_same_fit(first, second, rows=None, columns=None, rtol=1e-5):
    """Same objective and reconstructions (``second``'s rows/columns reordered by ``rows``/``columns``)."""
    np.testing.assert_allclose(second.objective_history_[-1], first.objective_history_[-1], rtol=rtol)
    for role, fit in _fits(first).items():
        other = _fits(second)[role]
        other = other if rows is None else other[rows]
        other = other if columns is None or role not in columns else other[:, columns[role]]
        np.testing.assert_allclose(other, fit, rtol=0, atol=rtol * max(np.abs(fit).max(), 1e-12), err_msg=role)


@FAST
@given(problem=problems(), codes=CODES, missing=st.integers(0, 3))
def test_joint_objective_never_increases(problem, codes, missing):
    data = dict(problem["data"])
    observed = None
    if missing:  # some cells without the response
        observed = {"response": np.arange(data["Y"].shape[0]) % (missing + 3) != 0}
    model = LinearMixedForms(
        problem["k"], codes=codes, ridge=problem["ridge"], max_iter=40, tol=1e-15, progress=False
    ).fit(data["Y"], data["X"], data.get("Z"), observed=observed)
    history = model.objective_history_
    assert np.all(np.isfinite(history)) and np.all(np.isfinite(model.codes_))
    assert np.all(np.diff(history) <= 1e-10 * history[0]), np.diff(history).max()


@FAST
@given(problem=problems())
def test_transform_of_training_data_reproduces_encoded_codes_exactly(problem):
    model = _fit(problem, "encoded", max_iter=50)
    data = problem["data"]
    codes = model.transform(Y=data["Y"], X=data["X"], Z=data.get("Z"))
    scale = np.abs(model.codes_).max()
    np.testing.assert_allclose(codes.fixed, model.fixed_codes_, rtol=0, atol=1e-10 * scale)
    if "Z" in data:
        np.testing.assert_allclose(codes.random, model.random_codes_, rtol=0, atol=1e-10 * scale)


@FAST
@given(problem=problems(well_posed=True))
def test_transform_of_training_data_reproduces_free_codes_to_convergence(problem):
    tol = 1e-12
    model = _fit(problem, "free", max_iter=3000, tol=tol)
    assume(model.converged_)
    data = problem["data"]
    codes = model.transform(Y=data["Y"], X=data["X"], Z=data.get("Z"))
    scale = np.abs(model.codes_).max()
    np.testing.assert_allclose(codes.combined, model.codes_, rtol=0, atol=100 * np.sqrt(tol) * scale)


@FAST
@given(problem=problems(), codes=CODES, order=st.randoms(use_true_random=False))
def test_fit_does_not_depend_on_the_order_of_cells(problem, codes, order):
    n = problem["data"]["Y"].shape[0]
    permutation = np.array(order.sample(range(n), n))
    permuted = {name: matrix[permutation] for name, matrix in problem["data"].items()}
    _assert_same_fit(_fit(problem, codes), _fit(problem, codes, permuted), rows=np.argsort(permutation))


@FAST
@given(problem=problems(), codes=CODES, order=st.randoms(use_true_random=False))
def test_fit_does_not_depend_on_the_order_of_features(problem, codes, order):
    data = problem["data"]
    permutations = {name: np.array(order.sample(range(m.shape[1]), m.shape[1])) for name, m in data.items()}
    permuted = {name: matrix[:, permutations[name]] for name, matrix in data.items()}
    roles = {"response": "Y", "fixed": "X", "random": "Z"}
    back = {role: np.argsort(permutations[name]) for role, name in roles.items() if name in data}
    _assert_same_fit(_fit(problem, codes), _fit(problem, codes, permuted), columns=back)


@settings(max_examples=10, deadline=None, derandomize=bool(os.environ.get("CI")))
@given(
    seed=st.integers(0, 2**32 - 1),
    n_pcs=st.integers(2, 6),
    codes=CODES,
    sparse_input=st.booleans(),
    order=st.randoms(use_true_random=False),
    exact=st.booleans(),
)
def test_wide_data_in_any_order_give_the_same_fit_to_rounding(seed, n_pcs, codes, sparse_input, order, exact):
    """Y and X wider than any sketch, no gap between the leading directions and the rest (noise
    with a weak signal): every permutation of cells and features gives the same fit to 1e-8,
    with X's basis exact (its default at this size) or randomised."""
    rng = np.random.default_rng(seed)
    n, k = 60, 2
    latent = rng.standard_normal((n, k))
    X = latent @ rng.standard_normal((k, 70)) * 0.3 + rng.standard_normal((n, 70))
    Y = latent @ rng.standard_normal((k, 40)) * 0.3 + rng.standard_normal((n, 40))
    Z = np.eye(3)[rng.integers(0, 3, n)]
    X[rng.random(X.shape) < 0.5] = 0.0
    data = {"Y": Y, "X": sparse.csr_matrix(X) if sparse_input else X, "Z": Z}
    assert X.shape[1] > n_pcs + 10 and Y.shape[1] + X.shape[1] > k + 10  # the sketched paths (unless exact)
    cells = np.array(order.sample(range(n), n))
    features = {name: np.array(order.sample(range(m.shape[1]), m.shape[1])) for name, m in data.items()}
    permuted = {name: m[cells][:, features[name]] for name, m in data.items()}
    options = {"codes": codes, "n_pcs": n_pcs, "max_iter": 300, "tol": 1e-12, "progress": False}
    with mock.patch.object(subspace, "EXACT_ENTRIES", subspace.EXACT_ENTRIES if exact else 0):
        first = LinearMixedForms(k, **options).fit(data["Y"], data["X"], data["Z"])
        second = LinearMixedForms(k, **options).fit(permuted["Y"], permuted["X"], permuted["Z"])
    back = {role: np.argsort(features[name]) for role, name in (("response", "Y"), ("fixed", "X"), ("random", "Z"))}
    _assert_same_fit(first, second, rows=np.argsort(cells), columns=back, rtol=1e-8)
