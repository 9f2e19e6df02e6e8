"""Is the MNIST setting that meets issue 3's targets still above them on rows no choice saw?

That setting (conv VAE, latent 32, β 0.25, cosine learning rate, ``augment="affine"``, 20
epochs) was found by probes scored on the official 10k test split, so its test scores are the
best of several and flattered by the choice. Here it is trained once more on 50,000 of the
60,000 training images and scored on the other 10,000 (a seeded stratified split), which no
probe ever looked at: k-means accuracy on their μ(x), and a logistic regression fit on the 50k
μ(x) and scored on them, with the same functions and settings as ``vaekit evaluate``.

    python benchmarks/selection_check.py              # ~12 min of training on 2 cores

Writes benchmarks/results/selection_check_mnist.json and .md.
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

SETTING = {
    "architecture": "conv",
    "latent_dim": 32,
    "beta": 0.25,
    "lr_schedule": "cosine",
    "augment": "affine",
    "epochs": 20,
}
TARGETS = {"kmeans accuracy": 0.88, "logreg accuracy": 0.97}
HELD_OUT = 10_000


def scores(F_fit: np.ndarray, y_fit: np.ndarray, F: np.ndarray, y: np.ndarray) -> dict:
    """k-means accuracy on the rows' μ(x) F, and logistic regression from F_fit to F."""
    kmeans = clustering_scores(F, y, methods=("kmeans",), random_state=0)
    logreg = classification_scores(F_fit, y_fit, F, y, models=("logreg",), random_state=0)
    return {
        "kmeans accuracy": kmeans["methods"]["kmeans"]["accuracy"],
        "logreg accuracy": logreg["models"]["logreg"]["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the VAE's random_state")
    parser.add_argument("--epochs", type=int, default=SETTING["epochs"], help="for a smoke test")
    parser.add_argument("--name", default="selection_check_mnist")
    args = parser.parse_args()

    train = load_dataset("mnist:train", data_dir=data_dir())
    test = load_dataset("mnist:test", data_dir=data_dir())
    X_fit, X_held, y_fit, y_held = train_test_split(
        train.X, train.y, test_size=HELD_OUT, stratify=train.y, random_state=0
    )
    tic = time.perf_counter()
    setting = {**SETTING, "epochs": args.epochs}
    vae = VAE(**setting, random_state=args.seed).fit(X_fit)
    train_minutes = (time.perf_counter() - tic) / 60
    F_fit = vae.transform(X_fit)
    held = scores(F_fit, y_fit, vae.transform(X_held), y_held)
    official = scores(F_fit, y_fit, vae.transform(test.X), test.y)

    rows = [
        [metric, f"{held[metric]:.4f}", f"{official[metric]:.4f}", f">= {target}",
         "met" if held[metric] >= target else "**missed**"]
        for metric, target in TARGETS.items()
    ]  # fmt: skip
    table = markdown_table(
        ["μ(x) score", "held-out 10k of mnist:train", "official test split", "target", "held-out"],
        rows,
    )
    protocol = (
        f"Setting {setting}, random_state={args.seed}, trained on {len(X_fit)} training images "
        f"({train_minutes:.1f} min, {vae.n_epochs_} epochs); held out: {HELD_OUT} training "
        "images, train_test_split stratified by class, random_state=0, which no probe saw. "
        "k-means: vaekit.evaluation.clustering_scores on the rows' μ(x), Hungarian-matched "
        "accuracy; logistic regression: classification_scores, C by 3-fold CV on the 50k μ(x)."
    )
    payload = {
        "setting": setting,
        "random_state": args.seed,
        "n_fit": len(X_fit),
        "held_out": held,
        "official_test": official,
        "targets": TARGETS,
        "train_minutes": round(train_minutes, 2),
        "epochs_run": vae.n_epochs_,
        "machine": machine(),
        "protocol": protocol,
    }
    json_path, md_path = write_results(args.name, payload, f"{table}\n\n{protocol}")
    print(table)
    print(f"\nwrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
