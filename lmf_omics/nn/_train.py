"""Seeded mini-batch training with progress, early stopping and the best weights restored."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._core.log import logger, progress_enabled

LossFn = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | dict[str, torch.Tensor]"]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, leaving the caller's RNG state untouched.

    Build a model inside it and its initial weights depend on ``seed`` alone.

    Parameters
    ----------
    seed
        Seed of torch's global generator inside the block.

    Yields
    ------
    Nothing; the block runs with the seeded generator.

    Examples
    --------
    >>> with seeded(0):
    ...     head = LMFHead(64, 10)
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass
class History:
    """Per-epoch records of a :func:`train` run.

    Parameters
    ----------
    train, validation
        Term → per-epoch mean of each loss term (``"loss"`` the total, plus e.g. ``"fit"`` and
        ``"orthogonality"``) on the training and validation data.
    metrics
        Metric name → its per-epoch values.
    best_epoch
        The epoch (1-based) whose weights were restored.
    stopped_early
        Whether ``patience`` stopped the run before ``epochs``.
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    validation: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    stopped_early: bool = False

    @property
    def n_epochs(self) -> int:
        """Epochs run."""
        return len(self.train.get("loss", []))

    def as_dict(self) -> dict:
        """The history as an h5ad-writable dict.

        Returns
        -------
        ``best_epoch``, ``n_epochs``, ``stopped_early`` and one float array per record, named
        ``train_<term>``, ``validation_<term>`` and ``metric_<name>``.
        """
        out = {"best_epoch": self.best_epoch, "n_epochs": self.n_epochs, "stopped_early": self.stopped_early}
        for prefix, records in (("train", self.train), ("validation", self.validation), ("metric", self.metrics)):
            out.update({f"{prefix}_{name}": np.asarray(values, dtype=float) for name, values in records.items()})
        return out


def train(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    loss: LossFn | None = None,
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int | None = 10,
    metrics: Mapping[str, Callable[[nn.Module], float]] | None = None,
    augment: Augment | None = None,
    random_state: int = 0,
    progress: bool | None = None,
    desc: str = "training",
) -> History:
    """Train ``model`` with Adam on ``(inputs, targets)``; return its :class:`History`.

    Parameters
    ----------
    model
        A module mapping a batch of inputs to outputs (e.g. an :class:`~lmf_omics.nn.LMFNet`).
    inputs, targets
        Training data, first dimension the samples.
    validation
        ``(inputs, targets)`` monitored for early stopping; without it the training loss is.
    loss
        ``loss(outputs, targets)`` returning a scalar or a dict of terms with the total under
        ``"loss"``; default ``model.loss``.
    epochs, batch_size, lr, weight_decay
        At most ``epochs`` passes over shuffled mini-batches; Adam's step size and L2 decay.
    patience
        Stop after this many epochs without a lower monitored loss (``None``: run all epochs).
        The weights of the best epoch are restored either way.
    metrics
        Name → ``metric(model)``, evaluated after each epoch in eval mode without gradients.
    augment
        ``augment(batch, generator)`` applied to each training batch (e.g. random flips).
    random_state
        Seeds batch order, augmentation and any randomness inside the model: on CPU the same
        seed and the same initial weights give identical results.
    progress
        Show a progress bar over epochs (``None``: when the package logs at info level, e.g. at
        ``scanpy.settings.verbosity = "info"``, and standard error is a terminal).
    desc
        Label of the progress bar and of the summary logged at the end.

    Returns
    -------
    The per-epoch losses and metrics, the best epoch and whether training stopped early.

    Raises
    ------
    TypeError
        If ``loss`` is not given and ``model`` has no ``loss`` method.
    ValueError
        If ``inputs`` and ``targets`` differ in length or are empty, or the budget is not positive integers.
    FloatingPointError
        If the training loss becomes NaN or infinite (lower ``lr``).
    """
    loss = loss if loss is not None else getattr(model, "loss", None)
    if loss is None:
        raise TypeError(f"{type(model).__name__} has no .loss(outputs, targets); pass loss=")
    if len(inputs) != len(targets) or len(inputs) == 0:
        raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) must have the same, non-zero length")
    check_budget(epochs, batch_size, patience)
    history = History()
    best_loss, best_state = math.inf, copy.deepcopy(model.state_dict())
    with seeded(random_state):
        generator = torch.Generator().manual_seed(random_state)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress_enabled(progress), leave=False)
        for epoch in bar:
            _append(
                history.train, _train_epoch(model, inputs, targets, loss, optimizer, batch_size, generator, augment)
            )
            if validation is not None:
                _append(history.validation, evaluate(model, *validation, loss=loss, batch_size=batch_size))
            model.eval()
            with torch.no_grad():
                _append(history.metrics, {name: float(metric(model)) for name, metric in (metrics or {}).items()})
            monitored = (history.validation or history.train)["loss"][-1]
            bar.set_postfix(loss=f"{history.train['loss'][-1]:.4g}", monitored=f"{monitored:.4g}")
            if monitored < best_loss:
                best_loss, best_state, history.best_epoch = monitored, copy.deepcopy(model.state_dict()), epoch
            elif patience is not None and epoch - history.best_epoch >= patience:
                history.stopped_early = True
                break
    model.load_state_dict(best_state)
    model.eval()
    logger.info(
        "%s: %d epochs%s, best epoch %d (loss %.4g)",
        desc,
        history.n_epochs,
        " (stopped early)" if history.stopped_early else "",
        history.best_epoch,
        best_loss,
    )
    return history


def evaluate(model: nn.Module, inputs, targets, *, loss: LossFn, batch_size: int = 256) -> dict[str, float]:
    """Sample-weighted mean of each loss term over ``(inputs, targets)``, in eval mode."""
    model.eval()
    sums: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            batch = slice(start, start + batch_size)
            _accumulate(sums, _terms(loss(model(inputs[batch]), targets[batch])), len(inputs[batch]))
    return {name: value / len(inputs) for name, value in sums.items()}


def _train_epoch(model, inputs, targets, loss, optimizer, batch_size, generator, augment) -> dict[str, float]:
    model.train()
    sums: dict[str, float] = {}
    for batch in torch.randperm(len(inputs), generator=generator).split(batch_size):
        x = inputs[batch] if augment is None else augment(inputs[batch], generator)
        terms = _terms(loss(model(x), targets[batch]))
        if not torch.isfinite(terms["loss"]):
            raise FloatingPointError(f"training loss became {terms['loss'].item()}; lower lr (now {_lr(optimizer)})")
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        _accumulate(sums, terms, len(batch))
    return {name: value / len(inputs) for name, value in sums.items()}


def _terms(value) -> dict[str, torch.Tensor]:
    return dict(value) if isinstance(value, Mapping) else {"loss": value}


def _accumulate(sums: dict[str, float], terms: dict[str, torch.Tensor], weight: int) -> None:
    for name, term in terms.items():
        sums[name] = sums.get(name, 0.0) + float(term.detach()) * weight


def _append(records: dict[str, list[float]], values: dict[str, float]) -> None:
    for name, value in values.items():
        records.setdefault(name, []).append(value)


def _lr(optimizer) -> float:
    return optimizer.param_groups[0]["lr"]


def check_budget(epochs: int, batch_size: int, patience: int | None) -> None:
    """Raise on a training budget that is not positive integers (``patience`` may be ``None``)."""
    for name, value in {"epochs": epochs, "batch_size": batch_size}.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value} must be a positive integer")
    if patience is not None and (int(patience) != patience or patience < 1):
        raise ValueError(f"patience={patience} must be a positive integer or None")
