"""Section 3.1's claim on real images: a conv encoder with the LMF head vs. linear layers with activations.

The paper: "Coupling the model with a convolutional layer in a deep learning system also gives
comparable results to a sequential layer of linear layers with activation functions." Data:
``sklearn.datasets.load_digits()`` (1,797 8×8 images, 10 classes, offline). Arms, same budget:

- conv + LMF head: ``CrossEntropy(Y, f(X)β) + MSE(f(X)β, f(X)β(βᵀβ))``, β orthonormal at the start;
- conv + LMF head, uniform init: the same loss from ``nn.Linear``'s init, as in the author's code;
- conv + linear head, λ = 0: the same bias-free ``f(X)β`` without the penalty (ablation);
- conv + MLP head: ``Linear → ReLU → Linear`` on the same encoder, parameter count matched to β
  (9 hidden units);
- conv + wide MLP head: the same with 64 hidden units (7× β's parameters; context, not matched);
- MLP alone: pixels → two ReLU hidden layers → classes, parameter count matched to the conv + LMF net.

Every seed draws a stratified 60/20/20 train/validation/test split and the initial weights; every
arm then trains for the same number of epochs (Adam, same lr and batches) and keeps the weights
of its epoch with the lowest validation loss. Writes, under ``--out``:
``digits_lmf_head_runs.csv`` (one row per arm and seed), ``digits_lmf_head.md`` (mean ± sd) and
``digits_lmf_head.png`` (learning curves and ‖βᵀβ − I‖ per epoch).

    python benchmarks/digits_lmf_head.py            # 5 seeds × 6 arms, about 3 minutes on 1 core
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's lmf_omics
from lmf_omics.nn import ConvEncoder, LMFHead, LMFNet, seeded, train

WIDTHS = (16, 32)  # 8×8 → 4×4 → 2×2: 32·2·2 = 128 features
N_CLASSES = 10
ARMS = {
    "lmf": "conv + LMF head (paper loss)",
    "lmf_uniform": "conv + LMF head, uniform init",
    "linear": "conv + linear head, λ = 0",
    "mlp_head": "conv + MLP head (matched)",
    "mlp_head_wide": "conv + MLP head, 64 hidden",
    "mlp": "MLP alone (matched)",
}
COLOURS = {"lmf": "C3", "lmf_uniform": "C1", "linear": "C7", "mlp_head": "C0", "mlp_head_wide": "C9", "mlp": "C2"}
WIDE_HEAD = 64


def load() -> tuple[torch.Tensor, torch.Tensor]:
    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    return images, torch.tensor(digits.target)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matched_width(target: int, count) -> int:
    """The hidden width whose parameter count ``count(width)`` is closest to ``target``."""
    return min(range(1, 1024), key=lambda width: abs(count(width) - target))


def build(arm: str) -> nn.Module:
    encoder = ConvEncoder(1, WIDTHS)
    n_features = encoder.n_features((1, 8, 8))
    if arm in ("lmf", "lmf_uniform", "linear"):
        init = "uniform" if arm == "lmf_uniform" else "orthogonal"
        return LMFNet(encoder, LMFHead(n_features, N_CLASSES, ortho_weight=0.0 if arm == "linear" else 1.0, init=init))
    head_params = n_features * N_CLASSES  # β
    if arm.startswith("mlp_head"):
        width = (
            WIDE_HEAD
            if arm == "mlp_head_wide"
            else matched_width(head_params, lambda h: (n_features + 1) * h + (h + 1) * N_CLASSES)
        )
        return nn.Sequential(encoder, nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, N_CLASSES))
    total = n_params(encoder) + head_params
    width = matched_width(total, lambda h: 65 * h + (h + 1) * h + (h + 1) * N_CLASSES)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, N_CLASSES)
    )


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    fit = F.cross_entropy(outputs, targets)
    return {"loss": fit, "fit": fit}


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def run(arm: str, seed: int, data, args) -> tuple[dict, dict]:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    with seeded(seed):
        model = build(arm)
    has_beta = isinstance(model, LMFNet)
    start_error = model.head.orthogonality_error() if has_beta else np.nan
    metrics = {"validation_accuracy": lambda m: accuracy(m, x_val, y_val)}
    if has_beta:
        metrics["orthogonality_error"] = lambda m: m.head.orthogonality_error()
    start = time.perf_counter()
    history = train(
        model,
        x_train,
        y_train,
        validation=(x_val, y_val),
        loss=model.loss if has_beta else cross_entropy,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=None,
        metrics=metrics,
        random_state=seed,
        progress=False,
        desc=f"{arm} seed {seed}",
    )
    seconds = time.perf_counter() - start
    row = {
        "arm": arm,
        "seed": seed,
        "params": n_params(model),
        "head_params": n_params(model.head if has_beta else model[1:] if arm.startswith("mlp_head") else model),
        "test_accuracy": accuracy(model, x_test, y_test),
        "best_epoch": history.best_epoch,
        "orthogonality_error": model.head.orthogonality_error() if has_beta else np.nan,
        "orthogonality_error_start": start_error,
        "seconds": seconds,
    }
    curves = {
        "validation_accuracy": history.metrics["validation_accuracy"],
        "validation_cross_entropy": history.validation["fit"],
        "orthogonality_error": history.metrics.get("orthogonality_error"),
    }
    return row, curves


def split(images, labels, seed: int):
    index = np.arange(len(labels))
    train_index, rest = train_test_split(index, test_size=0.4, stratify=labels, random_state=seed)
    val_index, test_index = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=seed)
    return tuple((images[i], labels[i]) for i in (train_index, val_index, test_index))


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    def mean_sd(values: pd.Series, digits: int, scale: float = 1.0) -> str:
        values = values.dropna() * scale
        return "—" if values.empty else f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"

    rows = []
    for arm, group in runs.groupby("arm", sort=False):
        rows.append(
            {
                "model": ARMS[arm],
                "parameters (head)": f"{group['params'].iloc[0]:,} ({group['head_params'].iloc[0]:,})",
                "test accuracy %": mean_sd(group["test_accuracy"], 2, 100),
                "‖βᵀβ − I‖_F at start": mean_sd(group["orthogonality_error_start"], 3),
                "‖βᵀβ − I‖_F at best epoch": mean_sd(group["orthogonality_error"], 3),
                "best epoch": mean_sd(group["best_epoch"], 1),
                "s / run": f"{group['seconds'].mean():.1f}",
            }
        )
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def paired_differences(runs: pd.DataFrame) -> list[str]:
    """Test accuracy of the LMF net minus each other arm, per seed (same split and budget)."""
    table = runs.pivot(index="seed", columns="arm", values="test_accuracy") * 100
    lines = []
    for arm in ("linear", "lmf_uniform", "mlp_head", "mlp_head_wide", "mlp"):
        diff = table["lmf"] - table[arm]
        lines.append(
            f"- LMF head − {ARMS[arm]}: {diff.mean():+.2f} ± {diff.std(ddof=1):.2f} points "
            f"(per seed: {', '.join(f'{d:+.2f}' for d in diff)})"
        )
    return lines


def plot(curves: dict[str, list[dict]], path: Path, epochs: int) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2), layout="constrained")
    x = np.arange(1, epochs + 1)
    panels = [
        ("validation_accuracy", "validation accuracy (%)", 100.0, False),
        ("validation_cross_entropy", "validation cross-entropy", 1.0, True),
        ("orthogonality_error", "‖βᵀβ − I‖_F", 1.0, True),
    ]
    for ax, (key, label, scale, log) in zip(axes, panels, strict=True):
        for arm, runs in curves.items():
            if runs[0][key] is None:
                continue
            values = np.array([r[key] for r in runs]) * scale
            ax.plot(x, values.mean(0), color=COLOURS[arm], label=ARMS[arm], lw=1.6)
            ax.fill_between(x, values.min(0), values.max(0), color=COLOURS[arm], alpha=0.15, lw=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(85, 100)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(curves), fontsize=9)
    axes[2].set_title("β (p × k) of the bias-free heads; orthogonal init starts at 0", fontsize=10)
    n_seeds = len(next(iter(curves.values())))
    fig.suptitle(f"sklearn digits: mean (line) and range (band) over {n_seeds} seeds, same budget per arm")
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    images, labels = load()
    rows, curves = [], {arm: [] for arm in ARMS}
    for seed in range(args.seeds):
        data = split(images, labels.numpy(), seed)
        data = tuple((x, torch.as_tensor(y)) for x, y in data)
        for arm, name in ARMS.items():
            row, curve = run(arm, seed, data, args)
            rows.append(row)
            curves[arm].append(curve)
            print(
                f"seed {seed} {name:32s} test accuracy {100 * row['test_accuracy']:.2f}%  "
                f"‖βᵀβ−I‖ {row['orthogonality_error']:.3f}  {row['seconds']:.1f}s",
                flush=True,
            )
    runs = pd.DataFrame(rows)
    runs.to_csv(args.out / "digits_lmf_head_runs.csv", index=False)
    summary = summarise(runs)
    sizes = [len(part[1]) for part in split(images, labels.numpy(), 0)]
    text = [
        "# Digits: conv encoder + LMF head vs. linear layers with activations",
        "",
        (
            f"`python benchmarks/digits_lmf_head.py` — sklearn `load_digits` (1,797 8×8 images), stratified "
            f"train/validation/test {sizes[0]}/{sizes[1]}/{sizes[2]} per seed, {args.seeds} seeds, "
            f"{args.epochs} epochs, Adam lr {args.lr:g}, batch {args.batch_size}, weights of the lowest "
            f"validation loss; torch {torch.__version__}, {args.threads} CPU thread(s)."
        ),
        "",
        markdown_table(summary),
        "",
        "Paired differences in test accuracy (same seed, split and budget):",
        "",
        *paired_differences(runs),
        "",
    ]
    (args.out / "digits_lmf_head.md").write_text("\n".join(text))
    plot(curves, args.out / "digits_lmf_head.png", args.epochs)
    print("\n".join(text))


if __name__ == "__main__":
    main()
