"""Are the settings that meet issue 3's targets still above them on rows no choice saw?

Each setting (MNIST: conv VAE, latent 32, β 0.25, cosine learning rate, ``augment="affine"``,
20 epochs; Fashion-MNIST: latent 512, dense 2048, β 0.5, cosine, 19 epochs) was found by probes
scored on the official 10k test split, so its test scores are the best of several and flattered
by the choice. Here it is trained once more on 50,000 of the 60,000 training images and scored
on the other 10,000 (a seeded stratified split), which no probe ever looked at, with the same
functions and settings as ``vaekit evaluate``: a logistic regression fit on the 50k μ(x), and
(MNIST) k-means accuracy on the held-out μ(x).

    python benchmarks/selection_check.py                           # ~12 min of training
    python benchmarks/selection_check.py --dataset fashion-mnist   # ~21 min of training

Writes benchmarks/results/selection_check_<dataset>.json and .md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.model_selection import train_test_split

from vaekit import VAE
from vaekit.datasets import load_dataset
from vaekit.evaluation import classification_scores, clustering_scores

from _common import data_dir, machine, markdown_table, write_results

SETTINGS = {
    "mnist": {
        "architecture": "conv",
        "latent_dim": 32,
        "beta": 0.25,
        "lr_schedule": "cosine",
        "augment": "affine",
        "epochs": 20,
    },
    "fashion-mnist": {
        "architecture": "conv",
        "latent_dim": 512,
        "hidden_dims": (2048,),
        "beta": 0.5,
        "lr_schedule": "cosine",
        "epochs": 19,
    },
}
TARGETS = {
    "mnist": {"kmeans accuracy": 0.88, "logreg accuracy": 0.97},
    "fashion-mnist": {"logreg accuracy": 0.87},
}
HELD_OUT = 10_000


def scores(
    F_fit: np.ndarray, y_fit: np.ndarray, F: np.ndarray, y: np.ndarray, wanted: dict
) -> dict:
    """The ``wanted`` scores: logistic regression from μ(x) F_fit to F, k-means on F."""
    out = {}
    if "kmeans accuracy" in wanted:
        kmeans = clustering_scores(F, y, methods=("kmeans",), random_state=0)
        out["kmeans accuracy"] = kmeans["methods"]["kmeans"]["accuracy"]
    logreg = classification_scores(F_fit, y_fit, F, y, models=("logreg",), random_state=0)
    out["logreg accuracy"] = logreg["models"]["logreg"]["accuracy"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=sorted(SETTINGS))
    parser.add_argument("--seed", type=int, default=0, help="the VAE's random_state")
    parser.add_argument("--epochs", type=int, default=None, help="for a smoke test")
    parser.add_argument("--name", default=None, help="default: selection_check_<dataset>")
    args = parser.parse_args()
    setting, targets = SETTINGS[args.dataset], TARGETS[args.dataset]
    if args.epochs is not None:
        setting = {**setting, "epochs": args.epochs}
    name = args.name or f"selection_check_{args.dataset.replace('-', '_')}"

    train = load_dataset(f"{args.dataset}:train", data_dir=data_dir())
    test = load_dataset(f"{args.dataset}:test", data_dir=data_dir())
    X_fit, X_held, y_fit, y_held = train_test_split(
        train.X, train.y, test_size=HELD_OUT, stratify=train.y, random_state=0
    )
    tic = time.perf_counter()
    vae = VAE(**setting, random_state=args.seed).fit(X_fit)
    train_minutes = (time.perf_counter() - tic) / 60
    F_fit = vae.transform(X_fit)
    held = scores(F_fit, y_fit, vae.transform(X_held), y_held, targets)
    official = scores(F_fit, y_fit, vae.transform(test.X), test.y, targets)

    rows = [
        [metric, f"{held[metric]:.4f}", f"{official[metric]:.4f}", f">= {target}",
         "met" if held[metric] >= target else "**missed**"]
        for metric, target in targets.items()
    ]  # fmt: skip
    table = markdown_table(
        [
            "μ(x) score",
            f"held-out 10k of {args.dataset}:train",
            "official test split",
            "target",
            "held-out",
        ],
        rows,
    )
    protocol = (
        f"Setting {setting}, random_state={args.seed}, trained on {len(X_fit)} training images "
        f"({train_minutes:.1f} min, {vae.n_epochs_} epochs); held out: {HELD_OUT} training "
        "images, train_test_split stratified by class, random_state=0, which no probe saw. "
        + (
            "k-means: vaekit.evaluation.clustering_scores on the rows' μ(x), Hungarian-matched "
            "accuracy; "
            if "kmeans accuracy" in targets
            else ""
        )
        + "logistic regression: classification_scores, C by 3-fold CV on the 50k μ(x)."
    )
    payload = {
        "dataset": args.dataset,
        "setting": setting,
        "random_state": args.seed,
        "n_fit": len(X_fit),
        "held_out": held,
        "official_test": official,
        "targets": targets,
        "train_minutes": round(train_minutes, 2),
        "epochs_run": vae.n_epochs_,
        "machine": machine(),
        "protocol": protocol,
    }
    json_path, md_path = write_results(name, payload, f"{table}\n\n{protocol}")
    print(table)
    print(f"\nwrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
