"""The training helper: seeded and deterministic, early stopping restores the best epoch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lmf_omics.nn import History, LMFHead, LMFNet, seeded, train
from lmf_omics.nn._train import evaluate


def _data(seed=0, n=96):
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((n, 5)), dtype=torch.float32)
    y = torch.tensor((rng.standard_normal(n) > 0).astype(np.int64))
    return x, y


def _net(seed=0):
    with seeded(seed):
        encoder = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Dropout(0.2))
        return LMFNet(encoder, LMFHead(8, 2))


def _run(seed=0, **options):
    x, y = _data()
    net = _net()
    options = {"epochs": 5, "batch_size": 16, "progress": False, "random_state": seed, **options}
    history = train(net, x, y, validation=_data(1, 32), **options)
    return net, history


def test_same_seed_gives_identical_weights_and_history():
    (net_a, history_a), (net_b, history_b) = _run(), _run()
    for a, b in zip(net_a.state_dict().values(), net_b.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert history_a == history_b
    _, history_c = _run(seed=1)  # another batch order and dropout
    assert history_c.train["loss"] != history_a.train["loss"]


def test_seeded_builds_identical_models_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b = _net(), _net()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    _run()
    assert torch.equal(torch.get_rng_state(), state)


def test_history_records_every_term_and_metric():
    _, history = _run(metrics={"error": lambda model: model.head.orthogonality_error()})
    assert isinstance(history, History) and history.n_epochs == 5
    assert set(history.train) == set(history.validation) == {"loss", "fit", "orthogonality"}
    assert len(history.metrics["error"]) == 5
    np.testing.assert_allclose(
        np.array(history.train["loss"]),
        np.array(history.train["fit"]) + np.array(history.train["orthogonality"]),
        rtol=1e-5,
    )
    stored = history.as_dict()
    assert stored["n_epochs"] == 5 and stored["validation_fit"].shape == (5,) and stored["metric_error"].dtype == float


def test_early_stopping_restores_the_best_epoch():
    # validation labels are the opposite of the training rule: its loss rises as training succeeds
    x = torch.linspace(-2, 2, 64)[:, None].repeat(1, 5)
    y = (x[:, 0] > 0).long()
    with seeded(0):
        net = LMFNet(torch.nn.Linear(5, 4), LMFHead(4, 2))
    history = train(net, x, y, validation=(x, 1 - y), epochs=50, batch_size=16, lr=0.05, patience=3, progress=False)
    assert history.stopped_early and history.n_epochs == history.best_epoch + 3 < 50
    best = history.validation["loss"][history.best_epoch - 1]
    assert best == min(history.validation["loss"])
    np.testing.assert_allclose(evaluate(net, x, 1 - y, loss=net.loss)["loss"], best, rtol=1e-6)
    assert not net.training


def test_without_validation_monitors_the_training_loss_and_accepts_plain_losses():
    x, _ = _data()
    target = x[:, :2] * 3
    with seeded(0):
        model = torch.nn.Linear(5, 2)
    history = train(
        model, x, target, loss=torch.nn.functional.mse_loss, epochs=40, lr=0.05, patience=None, progress=False
    )
    assert history.validation == {} and history.best_epoch == int(np.argmin(history.train["loss"])) + 1
    assert history.train["loss"][-1] < 0.01 * history.train["loss"][0]


@pytest.mark.parametrize(
    "options, match",
    [({"epochs": 0}, "epochs=0"), ({"batch_size": 2.5}, "batch_size"), ({"patience": 0}, "patience")],
)
def test_bad_budgets_raise_before_training(options, match):
    x, y = _data()
    net = _net()
    before = [p.clone() for p in net.parameters()]
    with pytest.raises(ValueError, match=match):
        train(net, x, y, progress=False, **options)
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters(), strict=True))


def test_mismatched_data_and_missing_loss_raise():
    x, y = _data()
    with pytest.raises(ValueError, match="same, non-zero length"):
        train(_net(), x, y[:10], progress=False)
    with pytest.raises(TypeError, match="pass loss="):
        train(torch.nn.Linear(5, 2), x, y, progress=False)


def test_diverging_training_raises_with_advice():
    x, y = _data()
    with pytest.raises(FloatingPointError, match="lower lr"):
        train(_net(), x * 1e30, y, epochs=3, lr=1e30, progress=False)
