"""The LMF head: equations against a numpy reference, the penalty's reach, training pulls β to I."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn import functional as F

from lmf_omics.nn import LMFHead, LMFNet, orthogonality_error, seeded, train


def _head(p=6, k=3, **options):
    """A seeded head, frozen: these tests read values, they do not train."""
    with seeded(0):
        return LMFHead(p, k, **options).requires_grad_(False)


def test_forward_is_features_times_beta():
    head = _head()
    features = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    assert [name for name, _ in head.named_parameters()] == ["beta"]
    np.testing.assert_allclose(
        head(features).detach().numpy(), features.numpy() @ head.beta.detach().numpy(), atol=1e-6
    )


def test_orthogonal_init_has_orthonormal_columns_and_uniform_init_does_not():
    assert _head(init="orthogonal").orthogonality_error() < 1e-5
    uniform = _head(init="uniform")
    assert uniform.orthogonality_error() > 0.5
    assert float(uniform.beta.abs().max()) <= 1 / np.sqrt(6)


def test_losses_match_a_numpy_reference():
    head = _head(init="uniform", ortho_weight=0.7)
    rng = np.random.default_rng(2)
    codes = torch.tensor(rng.standard_normal((8, 3)), dtype=torch.float32)
    beta = head.beta.detach().numpy().astype(float)
    k = codes.numpy().astype(float)
    penalty = np.mean((k @ (beta.T @ beta) - k) ** 2)  # ‖K(βᵀβ − I)‖² / (n k)
    labels = torch.tensor(rng.integers(0, 3, 8))
    terms = head.loss(codes, labels)
    np.testing.assert_allclose(float(terms["orthogonality"]), penalty, rtol=1e-5)
    np.testing.assert_allclose(float(terms["fit"]), float(F.cross_entropy(codes, labels)), rtol=1e-6)
    np.testing.assert_allclose(float(terms["loss"]), float(terms["fit"]) + 0.7 * penalty, rtol=1e-5)

    regression = _head(task="regression", ortho_weight=0.0)
    targets = torch.tensor(rng.standard_normal((8, 3)), dtype=torch.float32)
    terms = regression.loss(codes, targets)
    np.testing.assert_allclose(float(terms["fit"]), np.mean((k - targets.numpy()) ** 2), rtol=1e-5)
    assert float(terms["loss"]) == float(terms["fit"])


def test_penalty_only_sees_the_span_of_the_outputs():
    head = _head(p=3, k=2)
    with torch.no_grad():  # βᵀβ = diag(1, 4): identity on e1, not on e2
        head.beta.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
    np.testing.assert_allclose(head.orthogonality_error(), 3.0, rtol=1e-6)
    on_e1 = torch.tensor([[1.0, 0.0], [-2.5, 0.0]])
    assert float(head.penalty(on_e1)) == 0.0
    np.testing.assert_allclose(float(head.penalty(torch.tensor([[0.0, 1.0]]))), 9.0 / 2, rtol=1e-6)


def test_orthogonality_error_reference():
    beta = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # βᵀβ = [[1, 1], [1, 2]]
    np.testing.assert_allclose(orthogonality_error(beta), np.sqrt(3.0), rtol=1e-6)


@pytest.mark.parametrize(
    "options, match",
    [({"task": "ranking"}, "task"), ({"init": "zeros"}, "init"), ({"ortho_weight": -1}, "ortho_weight")],
)
def test_bad_options_raise(options, match):
    with pytest.raises(ValueError, match=match):
        LMFHead(6, 3, **options)


def test_more_outputs_than_features_cannot_be_orthonormal():
    with pytest.raises(ValueError, match="in_features >= out_features"):
        LMFHead(2, 3)


def _fit_linear(ortho_weight):
    """Regress Y = X β* (β* orthonormal) through an identity encoder from a non-orthogonal start."""
    rng = np.random.default_rng(3)
    beta_true = np.linalg.qr(rng.standard_normal((8, 3)))[0]
    x = torch.tensor(rng.standard_normal((256, 8)), dtype=torch.float32)
    y = x @ torch.tensor(beta_true, dtype=torch.float32)
    with seeded(0):
        net = LMFNet(torch.nn.Identity(), LMFHead(8, 3, task="regression", ortho_weight=ortho_weight, init="uniform"))
    history = train(net, x, y, epochs=60, batch_size=32, lr=0.02, patience=None, progress=False)
    return net, history, beta_true


def test_regression_recovers_an_orthonormal_beta():
    net, history, beta_true = _fit_linear(ortho_weight=1.0)
    assert history.train["fit"][-1] < 1e-3
    np.testing.assert_allclose(net.head.beta.detach().numpy(), beta_true, atol=1e-3)
    assert net.head.orthogonality_error() < 1e-3


def test_penalty_constrains_what_the_fit_leaves_free():
    # the 4th feature is always zero, so the fit never moves β's 4th row; βᵀβ = β₁..₃ᵀβ₁..₃ + β₄ᵀβ₄
    # still depends on it, and the penalty (K spans R², so it asks for βᵀβ = I) drives it to zero
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.standard_normal((256, 4)), dtype=torch.float32)
    x[:, 3] = 0.0
    y = x[:, :2].clone()
    errors, free_rows = {}, {}
    for weight in (0.0, 1.0):
        with seeded(0):
            net = LMFNet(torch.nn.Identity(), LMFHead(4, 2, task="regression", ortho_weight=weight, init="uniform"))
        start = net.head.beta.detach()[3].clone()
        history = train(net, x, y, epochs=60, batch_size=32, lr=0.02, patience=None, progress=False)
        assert history.train["fit"][-1] < 1e-3
        errors[weight], free_rows[weight] = net.head.orthogonality_error(), (start, net.head.beta.detach()[3])
    start, end = free_rows[0.0]
    torch.testing.assert_close(end, start)  # untouched by the fit alone
    beta_4 = start.numpy().astype(float)
    np.testing.assert_allclose(errors[0.0], np.linalg.norm(np.outer(beta_4, beta_4)), rtol=0.05, atol=2e-3)
    assert errors[1.0] < 0.02 < errors[0.0]
