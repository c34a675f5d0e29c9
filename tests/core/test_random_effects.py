"""Forms of the random effect: the fixed code free of a batch effect that differs by cell state."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import KNeighborsClassifier

from lmf_omics import LinearMixedForms
from lmf_omics._core import parallel, random_effects
from lmf_omics._core.random_effects import (
    RANDOM_EFFECTS,
    Correction,
    Settings,
    States,
    design_of,
    fit_cells,
    fit_states,
)


def _batch_r2(codes: np.ndarray, batch: np.ndarray) -> float:
    """Mean R² of the centred batch indicators regressed on the codes (0: no linear batch left)."""
    D = (batch[:, None] == np.unique(batch)[None]).astype(float)
    D -= D.mean(0)
    E = codes - codes.mean(0)
    fitted = E @ np.linalg.lstsq(E, D, rcond=None)[0]
    return float(np.mean(1 - ((D - fitted) ** 2).sum(0) / (D**2).sum(0)))


def planted(n_per=60, seed=0):
    """Three cell states × three batches; each batch shifts each state differently (random slopes)."""
    rng = np.random.default_rng(seed)
    states, batches = np.repeat(np.arange(3), 3 * n_per), np.tile(np.repeat(np.arange(3), n_per), 3)
    centres = rng.normal(0, 3, (3, 40))
    shifts = rng.normal(0, 2, (3, 3, 40))  # batch × state × gene
    X = centres[states] + shifts[batches, states] + rng.normal(0, 1, (len(states), 40))
    Z = np.eye(3)[batches]
    return X, Z, states, batches


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.mark.parametrize("form", ["states", "shift", "response"])
def test_the_fixed_code_is_free_of_the_batch_as_the_form_says(data, form):
    X, Z, states, batches = data
    model = LinearMixedForms(3, random_effect=form, n_pcs=10, max_iter=200, progress=False).fit(X, X, Z)
    r2 = _batch_r2(model.fixed_codes_, batches)
    clusters = KNeighborsClassifier(5).fit(model.fixed_codes_, states).predict(model.fixed_codes_)
    if form == "response":
        assert r2 > 0.1  # the paper's form: K keeps the batch X carries (the corrected forms: < 0.05)
    else:
        assert r2 < 0.05
        assert adjusted_rand_score(states, clusters) > 0.95
    assert model.random_form_ == form


def test_states_remove_what_a_shift_cannot(data):
    X, Z, states, batches = data
    fits = {
        form: LinearMixedForms(3, random_effect=form, n_pcs=10, max_iter=200, progress=False).fit(X, X, Z)
        for form in ("states", "shift")
    }

    def mixing(codes):  # share of each cell's 10 nearest neighbours from another batch (2/3 if mixed)
        distances = ((codes[:, None] - codes[None]) ** 2).sum(-1)
        np.fill_diagonal(distances, np.inf)
        nearest = np.argsort(distances, axis=1)[:, :10]
        return float(np.mean(batches[nearest] != batches[:, None]))

    assert mixing(fits["states"].fixed_codes_) > 0.5 > mixing(fits["shift"].fixed_codes_) + 0.1


def test_shift_is_a_ridge_regression_with_a_free_intercept():
    rng = np.random.default_rng(1)
    scores, raw = rng.normal(size=(50, 6)), np.c_[np.eye(3)[rng.integers(0, 3, 50)], rng.normal(2, 3, 50)]
    design = design_of(raw, np.ones(50, bool))
    settings = Settings(shrinkage=0.7)
    corrected = RANDOM_EFFECTS["shift"].correct(scores, design, settings).corrected
    # independent reference: min ‖S − 1a − D̂W‖² + λ‖W‖² with D̂ the standardised design
    standardised = raw.copy()
    standardised[:, 3] = (raw[:, 3] - raw[:, 3].mean()) / raw[:, 3].std()
    full = np.c_[np.ones(50), standardised]
    penalty = np.sqrt(settings.shrinkage) * np.eye(5)[1:]
    coefficients = np.linalg.lstsq(np.r_[full, penalty], np.r_[scores, np.zeros((4, 6))], rcond=None)[0]
    np.testing.assert_allclose(corrected, scores - standardised @ coefficients[1:], atol=1e-10)
    assert design.indicators.tolist() == [True, True, True, False]


def test_states_do_not_depend_on_the_order_of_the_cells(data):
    X, Z, _, _ = data
    rng = np.random.default_rng(2)
    scores = X - X.mean(0)
    order = rng.permutation(len(X))
    form = RANDOM_EFFECTS["states"]
    first = form.correct(scores, design_of(Z, np.ones(len(X), bool)), Settings()).corrected
    again = form.correct(scores[order], design_of(Z[order], np.ones(len(X), bool)), Settings()).corrected
    np.testing.assert_allclose(again, first[order], atol=1e-8 * np.abs(first).max())


def test_new_cells_of_seen_levels_are_encoded_as_the_training_cells(data):
    X, Z, _, _ = data
    model = LinearMixedForms(3, n_pcs=10, max_iter=200, progress=False).fit(X, X, Z)
    again = model.transform(X=X, Z=Z).fixed
    np.testing.assert_allclose(again, model.fixed_codes_, atol=1e-9 * np.abs(model.fixed_codes_).max())
    rebuilt = LinearMixedForms.from_state(model.get_state())
    np.testing.assert_array_equal(rebuilt.transform(X=X, Z=Z).fixed, again)


def test_a_new_level_is_estimated_from_its_own_cells_and_a_lone_cell_barely(data):
    X, Z, states, batches = data
    train = batches != 2
    model = LinearMixedForms(3, n_pcs=10, max_iter=200, progress=False).fit(X[train], X[train], Z[train][:, :2])
    query = ~train
    reference = KNeighborsClassifier(5).fit(model.fixed_codes_, states[train])
    unseen = {"observed": {"random": np.zeros(query.sum(), bool)}}
    as_is = model.transform(X=X[query], Z=Z[query][:, :2], **unseen).fixed
    labels = np.zeros(query.sum(), int)
    mapped = model.transform(X=X[query], Z=Z[query][:, :2], **unseen, new_levels=labels).fixed
    accuracy = {
        name: np.mean(reference.predict(codes) == states[query])
        for name, codes in (("as_is", as_is), ("mapped", mapped))
    }
    assert accuracy["mapped"] >= accuracy["as_is"] and accuracy["mapped"] > 0.95
    lone = model.transform(X=X[query][:1], Z=Z[query][:1, :2], observed={"random": np.zeros(1, bool)}, new_levels=[0])
    moved = np.abs(lone.fixed - as_is[:1]).max()
    assert moved < 0.2 * np.abs(mapped[:1] - as_is[:1]).max()


def test_forms_that_correct_x_need_encoded_codes_and_few_random_columns(data):
    X, Z, _, _ = data
    with pytest.raises(ValueError, match=r"random_effect='states' needs encoded codes"):
        LinearMixedForms(3, codes="free", random_effect="states").fit(X, X, Z)
    wide = np.random.default_rng(0).normal(size=(len(X), 70))
    with pytest.raises(ValueError, match=r"at most 64 columns .* has 70; use random_effect='response'"):
        LinearMixedForms(3, random_effect="shift").fit(X, X, wide)
    assert LinearMixedForms(3, n_pcs=10, max_iter=5, progress=False).fit(X, X, wide).random_form_ == "response"


# ------------------------------------------------------------------- cost: fitted on a subsample
def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def larger():
    """The planted problem with 300 cells per state and batch (2,700 cells), its design and keys."""
    X, Z, states, batches = planted(n_per=300, seed=3)
    keys = np.random.default_rng(4).integers(0, 2**63, len(X), dtype=np.uint64)
    return X - X.mean(0), design_of(Z, np.ones(len(X), bool)), keys, states, batches


def test_the_fit_cells_are_the_smallest_keys_with_the_ties_at_the_boundary():
    keys = np.array([7, 3, 9, 3, 5, 3, 1], dtype=np.uint64)
    np.testing.assert_array_equal(fit_cells(keys, 2), [1, 3, 5, 6])  # 1, then every cell tied at 3
    np.testing.assert_array_equal(fit_cells(keys, 5), [1, 3, 4, 5, 6])
    assert fit_cells(keys, 7) is None and fit_cells(None, 2) is None  # all cells


def test_states_fitted_on_the_smallest_keys_agree_with_all_cells(larger, monkeypatch):
    scores, design, keys, states, batches = larger
    fitted_on = []

    def spy(scores, design, settings):
        fitted_on.append(scores.shape[0])
        return fit_states(scores, design, settings)

    monkeypatch.setattr(random_effects, "fit_states", spy)
    settings = Settings(fit_cells=900)
    sampled = States().correct(scores, design, settings, keys=keys).corrected
    full = States().correct(scores, design, settings).corrected
    assert fitted_on == [900, len(scores)]
    # batch R²: 0.95 uncorrected, 0.003 fitted on all cells, 0.028 on a third; they differ by 2.3 %
    assert _batch_r2(scores, batches) > 0.9
    assert _batch_r2(sampled, batches) < 0.05 and _batch_r2(full, batches) < 0.01
    assert np.linalg.norm(sampled - full) < 0.05 * np.linalg.norm(full)


def _permuted_correction(scores, design, keys, order, fit=300):
    again = replace(design, values=design.values[order], observed=design.observed[order])
    return States().correct(scores[order], again, Settings(fit_cells=fit), keys=None if keys is None else keys[order])


@settings(max_examples=8, deadline=None)
@given(order=st.permutations(range(540)), with_keys=st.booleans())
def test_permuting_the_cells_permutes_the_corrected_scores(order, with_keys):
    X, Z, _, _ = planted(seed=5)
    scores, design = X - X.mean(0), design_of(Z, np.ones(len(X), bool))
    keys = np.random.default_rng(6).integers(0, 2**63, len(X), dtype=np.uint64) if with_keys else None
    order = np.asarray(order)
    first = _permuted_correction(scores, design, keys, np.arange(len(X))).corrected
    again = _permuted_correction(scores, design, keys, order).corrected
    assert _relative(again, first[order]) <= 1e-10


def test_training_cells_applied_again_get_their_corrected_scores_exactly(larger):
    scores, design, keys, _, _ = larger
    correction = States().correct(scores, design, Settings(fit_cells=900), keys=keys)
    np.testing.assert_array_equal(correction.apply(scores, design), correction.corrected)
    stored = Correction.from_arrays(correction.arrays())
    np.testing.assert_array_equal(stored.apply(scores, design), correction.corrected)
    earlier = replace(correction, rounds=5, tolerance=1e-4)  # as a fit stored by an earlier version applies
    every_round = replace(earlier, tolerance=0.0).apply(scores, design)  # every cell all 5 rounds
    assert _relative(earlier.apply(scores, design), every_round) < 1e-6  # memberships settled to 1e-4


def test_a_cell_is_corrected_once_from_its_memberships_after_the_mean_effect(larger):
    scores, design, keys, _, _ = larger
    covariate = np.random.default_rng(7).normal(2.0, 3.0, len(scores))  # a continuous column too (standardised)
    design = design_of(np.column_stack([design.values, covariate]), design.observed)
    correction = States().correct(scores, design, Settings(fit_cells=900), keys=keys)
    assert correction.rounds == 1 and not design.indicators[-1]
    # independent reference: memberships of S − D W̄ on the centroids, then S − Σ_c R_c ⊙ (D W_c), all at once
    shifted = scores - design.values @ correction.start
    cosines = (shifted / np.linalg.norm(shifted, axis=1, keepdims=True)) @ correction.centroids.T
    weights = np.exp((cosines - cosines.max(axis=1, keepdims=True)) * 2 / correction.width)
    R = weights / weights.sum(axis=1, keepdims=True)  # cells × states
    effect = np.einsum("ic,ij,cjk->ik", R, design.values, correction.coefficients[:, 1:])
    assert _relative(correction.corrected, scores - effect) < 1e-12
    assert _relative(correction.corrected, scores) > 0.1  # the effect is no small part of the scores


def test_blocks_on_threads_give_the_same_correction_bit_for_bit(larger, monkeypatch):
    scores, design, keys, _, _ = larger
    monkeypatch.setattr(random_effects, "BLOCK_CELLS", 256)  # several blocks of the fitted and applied cells
    runs = []
    for jobs in (1, 2):
        with parallel.workers(jobs):
            runs.append(States().correct(scores, design, Settings(fit_cells=900), keys=keys).corrected)
    np.testing.assert_array_equal(runs[0], runs[1])
    order = np.random.default_rng(7).permutation(len(scores))
    with parallel.workers(2):
        again = _permuted_correction(scores, design, keys, order, fit=900).corrected
    assert _relative(again, runs[0][order]) <= 1e-10
