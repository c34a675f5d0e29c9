"""Cross-modal prediction benchmark: LMF against its peers, side by side, on real data.

Task A (CITE-seq, ``eccite_pbmc_500.h5ad``): predict the CLR protein of held-out cells from their
RNA (+ hashtag); 5 random 400/100 splits.
Task B (spatial, ``breast_st_3slices.h5ad``): predict a panel of 50 highly variable genes of a
held-out section from its other 2,000 highly variable genes; leave one section out (3 folds).

Metrics as Open Problems' predict-modality task: RMSE over all held-out entries and the mean
per-feature Pearson correlation across held-out cells; mean ± sd over splits. Every choice
(gene selection, ridge penalty, number of components) is made on the training cells only.

    python benchmarks/predict_modality.py                # full run, writes benchmarks/results/
    python benchmarks/predict_modality.py --quick        # one split per task, no MOFA+ (smoke test)

MOFA+ needs ``pip install mofapy2``; it is skipped (and says so) when missing.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.model_selection import KFold

from lmf_omics import LinearMixedForms, grid_search
from lmf_omics.datasets import breast_st_3slices, eccite_pbmc_500

RESULTS = Path(__file__).parent / "results"
logger = logging.getLogger("predict_modality")
ALPHAS = np.logspace(-2, 5, 29)
N_FACTORS = 10


@dataclass
class Split:
    """Training and held-out cells of one split: predictors X, covariates Z, response Y."""

    name: str
    X_train: sparse.csr_matrix
    X_test: sparse.csr_matrix
    Y_train: np.ndarray
    Y_test: np.ndarray
    Z_train: np.ndarray | None  # random-effect covariates (one-hot), None where unusable
    Z_test: np.ndarray | None


# ------------------------------------------------------------------------------------ tasks
def cite_seq_splits(n_splits: int) -> Iterator[Split]:
    """Protein (log1p counts centred per cell, i.e. CLR) from RNA and hashtag; 400/100 splits."""
    adata = eccite_pbmc_500()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    protein = np.log1p(adata.obsm["protein_counts"].to_numpy(dtype=float))
    protein -= protein.mean(axis=1, keepdims=True)
    hashtag = pd.get_dummies(adata.obs["hashtag"]).to_numpy(dtype=float)
    for seed in range(n_splits):
        order = np.random.default_rng(seed).permutation(adata.n_obs)
        train, test = order[:400], order[400:]
        genes = _top_genes(adata[train], 2000)
        X = adata.X[:, genes].tocsr()
        yield Split(f"split {seed}", X[train], X[test], protein[train], protein[test], hashtag[train], hashtag[test])


def spatial_splits(n_splits: int) -> Iterator[Split]:
    """A 50-gene panel of a held-out section from its other genes (leave one section out)."""
    adata = breast_st_3slices()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sections = adata.obs["slice"].astype(str).to_numpy()
    for held_out in sorted(set(sections))[:n_splits]:
        train, test = sections != held_out, sections == held_out
        genes = _top_genes(adata[train], 2050)
        panel, rest = genes[:50], genes[50:]
        Y, X = adata.X[:, panel].toarray(), adata.X[:, rest].tocsr()
        # the section is a random effect in training; the held-out section is a level never seen
        Z_train = pd.get_dummies(sections[train]).to_numpy(dtype=float)
        yield Split(f"held-out {held_out}", X[train], X[test], Y[train], Y[test], Z_train, None)


def _top_genes(adata, n: int) -> np.ndarray:
    """Indices of the ``n`` most dispersed genes of these (training) cells, most dispersed first."""
    stats = sc.pp.highly_variable_genes(adata, n_top_genes=n, inplace=False)
    return np.argsort(-stats["dispersions_norm"].fillna(-np.inf).to_numpy(), kind="stable")[:n]


TASKS = {
    "A: CITE-seq protein from RNA": (cite_seq_splits, 5),
    "B: spatial gene panel, new section": (spatial_splits, 3),
}


# ---------------------------------------------------------------------------------- methods
def with_covariates(split: Split, X, Z) -> np.ndarray:
    """Dense predictors, with the covariates appended where they exist for both sides."""
    X = X.toarray()
    return X if split.Z_test is None else np.hstack([X, Z])


def mean_baseline(split: Split) -> np.ndarray:
    return np.broadcast_to(split.Y_train.mean(axis=0), split.Y_test.shape)


def ridge(split: Split) -> np.ndarray:
    model = RidgeCV(alphas=ALPHAS).fit(with_covariates(split, split.X_train, split.Z_train), split.Y_train)
    return model.predict(with_covariates(split, split.X_test, split.Z_test))


def pca_regression(split: Split) -> np.ndarray:
    """PCA of the predictors, then least squares; the number of components by 5-fold CV."""
    X_train = with_covariates(split, split.X_train, split.Z_train)
    grid = [5, 10, 20, 30, 50]
    errors = np.zeros(len(grid))
    for fit_rows, check_rows in KFold(5, shuffle=True, random_state=0).split(X_train):
        pca = PCA(max(grid), random_state=0).fit(X_train[fit_rows])
        scores, held = pca.transform(X_train[fit_rows]), pca.transform(X_train[check_rows])
        for i, n in enumerate(grid):
            fitted = LinearRegression().fit(scores[:, :n], split.Y_train[fit_rows])
            errors[i] += np.sum((fitted.predict(held[:, :n]) - split.Y_train[check_rows]) ** 2)
    n = grid[int(np.argmin(errors))]
    pca = PCA(n, random_state=0).fit(X_train)
    fitted = LinearRegression().fit(pca.transform(X_train), split.Y_train)
    return fitted.predict(pca.transform(with_covariates(split, split.X_test, split.Z_test)))


def mofa_regression(split: Split) -> np.ndarray:
    """MOFA+ on [RNA of all cells, response of training cells] (held-out responses missing), then
    ridge of the response on the training cells' factors. Transductive: it sees the held-out X."""
    from mofapy2.run.entry_point import entry_point

    X = sparse.vstack([split.X_train, split.X_test]).toarray()
    Y = np.vstack([split.Y_train, np.full_like(split.Y_test, np.nan)])
    mofa = entry_point()
    mofa.set_data_options(scale_views=False)
    mofa.set_data_matrix([[X], [Y]], likelihoods=["gaussian", "gaussian"])
    mofa.set_model_options(factors=N_FACTORS)
    mofa.set_train_options(iter=1000, convergence_mode="fast", seed=0, verbose=False, quiet=True)
    mofa.build()
    mofa.run()
    factors = mofa.model.nodes["Z"].getExpectation()
    n = split.X_train.shape[0]
    head = RidgeCV(alphas=ALPHAS).fit(factors[:n], split.Y_train)
    return head.predict(factors[n:])


def lmf(**options) -> Callable[[Split], np.ndarray]:
    def run(split: Split) -> np.ndarray:
        model = LinearMixedForms(N_FACTORS, progress=False, **options).fit(split.Y_train, split.X_train, split.Z_train)
        return model.predict(X=split.X_test, Z=split.Z_test)

    return run


def lmf_grid_searched(split: Split) -> np.ndarray:
    """The default model with k chosen by 5-fold CV on the training cells (as PCA regression's)."""
    template = LinearMixedForms(progress=False)
    best, _ = grid_search(template, split.Y_train, split.X_train, split.Z_train, grid={"n_factors": [3, 5, 10, 20]})
    model = LinearMixedForms(**best, progress=False).fit(split.Y_train, split.X_train, split.Z_train)
    return model.predict(X=split.X_test, Z=split.Z_test)


METHODS: dict[str, Callable[[Split], np.ndarray]] = {
    "mean baseline": mean_baseline,
    "ridge (LOO-CV)": ridge,
    "PCA regression (5-fold CV)": pca_regression,
    "MOFA+ factors + ridge": mofa_regression,
    "LMF paper (Algorithm 1)": lmf(solver="paper"),
    "LMF joint, free codes": lmf(codes="free"),
    "LMF default (joint, encoded codes)": lmf(),
    "LMF default, k by 5-fold CV": lmf_grid_searched,
}


# ---------------------------------------------------------------------------------- scoring
def rmse(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((truth - predicted) ** 2)))


def mean_pearson(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over features of the Pearson correlation across cells (constant columns score 0)."""
    t, p = truth - truth.mean(axis=0), predicted - predicted.mean(axis=0)
    denominator = np.sqrt((t**2).sum(axis=0) * (p**2).sum(axis=0))
    correlation = np.divide((t * p).sum(axis=0), denominator, out=np.zeros(t.shape[1]), where=denominator > 0)
    return float(correlation.mean())


def run(quick: bool) -> pd.DataFrame:
    rows = []
    methods = {name: f for name, f in METHODS.items() if not (quick and name.startswith("MOFA"))}
    if not quick and not _has_mofapy2():
        logger.warning("mofapy2 is not installed: MOFA+ skipped (pip install mofapy2)")
        methods.pop("MOFA+ factors + ridge")
    for task, (splits, n_splits) in TASKS.items():
        for split in splits(1 if quick else n_splits):
            for name, method in methods.items():
                start = time.perf_counter()
                predicted = np.asarray(method(split))
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "task": task,
                        "split": split.name,
                        "method": name,
                        "seconds": seconds,
                        "rmse": rmse(split.Y_test, predicted),
                        "pearson": mean_pearson(split.Y_test, predicted),
                    }
                )
                logger.info(
                    "%s | %s | %s: RMSE %.4f, Pearson %.4f (%.1f s)",
                    task,
                    split.name,
                    name,
                    rows[-1]["rmse"],
                    rows[-1]["pearson"],
                    seconds,
                )
    return pd.DataFrame(rows)


def _has_mofapy2() -> bool:
    try:
        import mofapy2  # noqa: F401
    except ImportError:
        return False
    return True


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd over splits, per task and method, in the order of METHODS."""
    grouped = results.groupby(["task", "method"], sort=False)
    table = grouped[["rmse", "pearson", "seconds"]].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table["splits"] = grouped.size()
    return table.reset_index()


def paired_differences(results: pd.DataFrame, method: str) -> pd.DataFrame:
    """``method`` minus every other method on the same split: mean ± sd over splits, per task."""
    wide = results.pivot_table(index=["task", "split"], columns="method", values=["rmse", "pearson"])
    rows = []
    for task, block in wide.groupby(level="task", sort=False):
        for other in results.method.unique():
            if other == method:
                continue
            row = {"task": task, "method": method, "versus": other}
            for metric in ("rmse", "pearson"):
                difference = block[(metric, method)] - block[(metric, other)]
                row[f"{metric}_mean"], row[f"{metric}_std"] = difference.mean(), difference.std()
            rows.append(row)
    return pd.DataFrame(rows)


def markdown(summary: pd.DataFrame) -> str:
    lines = [
        "| task | method | RMSE (lower is better) | mean Pearson (higher is better) | seconds per fit |",
        "|---|---|---|---|---|",
    ]
    for _, row in summary.iterrows():
        best = summary[summary.task == row.task]
        rmse_mark = " **best**" if row.rmse_mean == best.rmse_mean.min() else ""
        pearson_mark = " **best**" if row.pearson_mean == best.pearson_mean.max() else ""
        lines.append(
            f"| {row.task} | {row.method} | {row.rmse_mean:.4f} ± {row.rmse_std:.4f}{rmse_mark} "
            f"| {row.pearson_mean:.4f} ± {row.pearson_std:.4f}{pearson_mark} | {row.seconds_mean:.2f} |"
        )
    return "\n".join(lines) + "\n"


def markdown_paired(paired: pd.DataFrame) -> str:
    lines = [
        "Paired differences on the same splits (negative RMSE and positive Pearson favour the LMF row):",
        "",
        "| task | LMF | versus | Δ RMSE | Δ Pearson |",
        "|---|---|---|---|---|",
    ]
    for _, row in paired.iterrows():
        lines.append(
            f"| {row.task} | {row.method} | {row.versus} | {row.rmse_mean:+.4f} ± {row.rmse_std:.4f} "
            f"| {row.pearson_mean:+.4f} ± {row.pearson_std:.4f} |"
        )
    return "\n".join(lines) + "\n"


def figure(summary: pd.DataFrame, path: Path) -> None:
    """Dot plots (mean ± sd over splits) per task and metric; methods off the scale are named at the edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(summary.task))
    fig, axes = plt.subplots(2, len(tasks), figsize=(6.5 * len(tasks), 7.5), squeeze=False)
    for column, task in enumerate(tasks):
        rows = summary[summary.task == task].reset_index(drop=True)
        for row, (metric, label) in enumerate(
            (("rmse", "RMSE (lower is better)"), ("pearson", "mean per-feature Pearson (higher is better)"))
        ):
            _dot_panel(axes[row, column], rows, metric, label)
            if row == 0:
                axes[row, column].set_title(task)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _dot_panel(ax, rows: pd.DataFrame, metric: str, label: str) -> None:
    mean, sd = rows[f"{metric}_mean"].to_numpy(), rows[f"{metric}_std"].fillna(0).to_numpy()
    baseline = mean[rows.method == "mean baseline"][0]
    shown = mean <= baseline * 1.02 if metric == "rmse" else mean >= baseline - 1e-12
    low, high = (mean - sd)[shown].min(), (mean + sd)[shown].max()
    margin = 0.08 * (high - low)
    ax.set_xlim(low - margin, high + margin)
    positions = np.arange(len(rows))
    colours = np.where(rows.method.str.startswith("LMF default"), "tab:orange", "tab:gray")
    for y, m, s, colour, inside in zip(positions, mean, sd, colours, shown):
        if inside:
            ax.errorbar(m, y, xerr=s, fmt="o", color=colour, capsize=3)
        else:  # e.g. the paper's diverging cycle: name its value at the edge instead of squashing the rest
            edge = high + margin if metric == "rmse" else low - margin
            ax.annotate(
                f"off scale: {m:.2f}",
                (edge, y),
                ha="right" if metric == "rmse" else "left",
                va="center",
                fontsize=8,
                color="tab:red",
            )
    ax.set_yticks(positions, rows.method, fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one split per task, no MOFA+")
    parser.add_argument("--replot", action="store_true", help="redraw the table and figure from the saved runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the table and figure")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)
    stem = "predict_modality" + ("_quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        results = pd.read_csv(args.out / f"{stem}_runs.csv")
    else:
        results = run(args.quick)
        results.to_csv(args.out / f"{stem}_runs.csv", index=False)
    summary = summarise(results)
    paired = pd.concat([paired_differences(results, m) for m in METHODS if m.startswith("LMF default")])
    (args.out / f"{stem}.md").write_text(markdown(summary) + "\n" + markdown_paired(paired))
    figure(summary, args.out / f"{stem}.png")
    print(markdown(summary))


if __name__ == "__main__":
    main()
