"""Row-block products on threads: equal to plain products, and independent of the thread count."""

import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import pytest
from scipy import sparse

from lmf_omics import LinearMixedForms
from lmf_omics._core import parallel

from .simulate import simulate


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few dozen entries, so even small matrices are cut into many."""
    monkeypatch.setattr(parallel, "BLOCK_NNZ", 64)
    monkeypatch.setattr(parallel, "BLOCK_ENTRIES", 64)


FORMATS = {
    "dense": lambda a: a,
    "dense_float32": lambda a: a.astype(np.float32),
    "csr": sparse.csr_matrix,
    "csr_float32": lambda a: sparse.csr_matrix(a.astype(np.float32)),
    "csc": sparse.csc_matrix,
}


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("threads", [1, 3])
def test_products_equal_dense_products(fmt, threads):
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((57, 23)) * (rng.random((57, 23)) < 0.3)
    matrix = FORMATS[fmt](dense)
    reference = matrix.toarray() if sparse.issparse(matrix) else matrix
    reference = reference.astype(np.float64)
    B, C = rng.standard_normal((23, 4)), rng.standard_normal((57, 4))
    assert len(parallel.row_blocks(matrix if fmt.startswith("dense") else sparse.csr_matrix(matrix))) > 5
    with parallel.workers(threads):
        product, transposed = parallel.matmul(matrix, B), parallel.rmatmul(matrix, C)
    assert product.dtype == np.float64 and transposed.dtype == np.float64
    np.testing.assert_allclose(product, reference @ B, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(transposed, reference.T @ C, rtol=1e-12, atol=1e-12)


def test_row_blocks_cover_the_rows_and_depend_on_the_data_only():
    rng = np.random.default_rng(1)
    matrix = sparse.random(1000, 50, density=0.1, format="csr", random_state=rng)
    blocks = parallel.row_blocks(matrix, 500)
    assert blocks[0][0] == 0 and blocks[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in pairwise(blocks))
    sizes = [matrix.indptr[b] - matrix.indptr[a] for a, b in blocks]
    assert len(blocks) == 10 and max(sizes) < 600
    with parallel.workers(2):
        assert parallel.row_blocks(matrix, 500) == blocks
    assert parallel.row_blocks(sparse.csr_matrix((0, 5)), 10) == []


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "csc"])
def test_gram_product_is_both_products_from_one_read_on_any_threads(fmt):
    """``[Aᵀy, 1ᵀy, yᵀy]`` with ``y = (A B − offset)/d``, unobserved rows zero: a dense reference, and 1 = 3 threads."""
    rng = np.random.default_rng(1)
    dense = rng.standard_normal((57, 23)) * (rng.random((57, 23)) < 0.3)
    matrix = FORMATS[fmt](dense)
    B, offset, observed = rng.standard_normal((23, 4)), rng.standard_normal(4), rng.random(57) > 0.2
    y = (dense.astype(matrix.dtype).astype(np.float64) @ B - offset) / 2.0 * observed[:, None]
    results = []
    for threads in (1, 3):
        with parallel.workers(threads):
            out = np.empty((57, 4))
            results.append(parallel.gram_product(matrix, B, offset=offset, divisor=2.0, observed=observed, out=out))
        np.testing.assert_allclose(out, y, rtol=1e-12, atol=1e-12)
    back, totals, gram = results[0]
    reference = dense.astype(matrix.dtype).astype(np.float64)
    np.testing.assert_allclose(back, reference.T @ y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(totals, y.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gram, y.T @ y, rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(*results):
        assert np.array_equal(ours, theirs)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_fit_is_bit_identical_on_any_number_of_threads(codes):
    sim = simulate(n=150, p_x=60, seed=3)
    Y, X = sparse.csr_matrix(sim["Y"]), sparse.csc_matrix(np.where(np.abs(sim["X"]) > 1, sim["X"], 0))
    fits = [
        LinearMixedForms(3, codes=codes, max_iter=30, n_jobs=n, progress=False).fit(Y, X, sim["Z"]) for n in (1, 2, 4)
    ]
    for other in fits[1:]:
        assert np.array_equal(other.codes_, fits[0].codes_)
        assert np.array_equal(other.loadings_["fixed"], fits[0].loadings_["fixed"])
        assert np.array_equal(other.objective_history_, fits[0].objective_history_)


@pytest.mark.parametrize("ahead", [0, 1])
@pytest.mark.parametrize("threads", [2, 3])
def test_ordered_map_keeps_the_order_and_at_most_threads_plus_ahead_calls_alive(threads, ahead):
    """Results in the items' order, whatever finishes first; a full window, never more than threads + ahead."""
    rng = np.random.default_rng(threads)
    delays = rng.uniform(0, 0.004, 40)  # items finish out of order
    delays[0] = 0.05  # the first is slowest: the other threads go on while the caller waits for it
    lock, alive, most = threading.Lock(), [0], [0]

    def work(i):
        with lock:
            alive[0] += 1
            most[0] = max(most[0], alive[0])
        threading.Event().wait(delays[i])
        return i * i

    out = []
    with parallel.workers(threads):
        for value in parallel.ordered_map(work, list(range(40)), ahead=ahead):
            with lock:
                alive[0] -= 1  # taken by the caller
            out.append(value)
    assert out == [i * i for i in range(40)]
    assert most[0] == threads + ahead


def test_workers_hold_blas_to_one_thread_and_restore_it():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]

    before = blas_threads()
    with parallel.workers(2) as threads:
        assert threads == 2
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before


def test_blas_stays_at_one_thread_until_the_last_concurrent_fit_ends():
    """The BLAS limit is process-wide and threadpoolctl lets one thread set it: a fit in a thread is limited
    too, and one ending does not lift the limit under another still running."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    libraries = [lib for lib in threadpoolctl.ThreadpoolController().lib_controllers if lib.user_api == "blas"]

    def blas_threads():
        return {lib.num_threads for lib in libraries}  # read live from each library

    before = blas_threads()
    if not libraries or before == {1}:
        pytest.skip("no BLAS library with more than one thread to limit")
    first_in, second_in, first_out, seen = threading.Event(), threading.Event(), threading.Event(), {}

    def first():
        with parallel.workers(1):
            seen["in a thread"] = blas_threads()
            first_in.set()
            second_in.wait(30)
        first_out.set()

    def second():
        first_in.wait(30)
        with parallel.workers(1):
            second_in.set()
            first_out.wait(30)
            seen["after the first fit ended"] = blas_threads()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert seen == {"in a thread": {1}, "after the first fit ended": {1}}
    assert blas_threads() == before  # restored once both ended


def test_two_fits_in_two_threads_equal_the_same_fits_one_after_the_other():
    sim = simulate(n=400, p_x=80, seed=5)
    data = [(sim["Y"], sim["X"], sim["Z"]), (sim["Y"][::-1].copy(), sim["X"][::-1].copy(), sim["Z"][::-1].copy())]

    def fit(arguments):
        return LinearMixedForms(3, max_iter=40, progress=False).fit(*arguments)

    one_after_the_other = [fit(arguments) for arguments in data]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(fit, data))
    for alone, concurrent in zip(one_after_the_other, together):
        assert np.array_equal(alone.codes_, concurrent.codes_)
        assert np.array_equal(alone.objective_history_, concurrent.objective_history_)


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, "2"])
def test_bad_n_jobs(n_jobs):
    sim = simulate(n=30, seed=1)
    with pytest.raises(ValueError, match=f"n_jobs must be a positive integer, -1 or None .*got {n_jobs!r}"):
        LinearMixedForms(2, n_jobs=n_jobs).fit(sim["Y"], sim["X"])


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("n", [5, 203])
def test_tall_skinny_qr_is_an_orthonormal_basis_of_the_same_span(n):
    from lmf_omics._core.subspace import orthonormalised

    rng = np.random.default_rng(6)
    matrix = rng.standard_normal((n, 4)) @ np.diag([1.0, 1e2, 1e4, 1e6])
    reference, _ = np.linalg.qr(matrix)
    with parallel.workers(2):
        q = orthonormalised(matrix.copy())
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-13)
    np.testing.assert_allclose(q @ (q.T @ reference), reference, atol=1e-13)  # same column span
    np.testing.assert_allclose(np.abs(q), np.abs(reference), atol=1e-12)  # and the same columns up to sign
