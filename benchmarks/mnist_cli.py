"""MNIST through the command line: conv VAE, latent 32, <= 10 epochs; μ(x) -> logistic regression.

Runs exactly what a user would type (``vaekit train``, ``vaekit embed``), then fits a logistic
regression on the embedded training set and scores the test set, next to raw pixels and PCA-32.

    python benchmarks/mnist_cli.py --batch-size 64 --kl-warmup-epochs 2 [--dataset mnist]

Writes benchmarks/results/<dataset>_cli.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vaekit import load
from vaekit.datasets import load_dataset

from _common import data_dir, machine, markdown_table, write_results

VAEKIT = [sys.executable, "-m", "vaekit"]


def logreg_accuracy(F_train, y_train, F_test, y_test) -> float:
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(clf.fit(F_train, y_train).score(F_test, y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--kl-warmup-epochs", type=float, default=0.0)
    parser.add_argument("--free-bits", type=float, default=0.0)
    args = parser.parse_args()
    root = str(data_dir())
    work = Path(tempfile.mkdtemp(prefix="vaekit-bench-"))
    run = work / "run"
    common = ["--data-dir", root]

    train_args = f"train {args.dataset}:train --latent-dim {args.latent_dim} --epochs {args.epochs}"
    train_args += f" --architecture conv --seed {args.seed} --batch-size {args.batch_size}"
    train_args += f" --kl-warmup-epochs {args.kl_warmup_epochs:g} --free-bits {args.free_bits:g}"
    tic = time.perf_counter()
    subprocess.run([*VAEKIT, *train_args.split(), "--out", str(run), *common], check=True)
    train_seconds = time.perf_counter() - tic
    for split in ("train", "test"):
        subprocess.run(
            [*VAEKIT, "embed", str(run), f"{args.dataset}:{split}", "--out",
             str(work / f"{split}.npy"), *common],
            check=True,
        )  # fmt: skip
    train = load_dataset(f"{args.dataset}:train", data_dir=root)
    test = load_dataset(f"{args.dataset}:test", data_dir=root)
    Z_train, Z_test = np.load(work / "train.npy"), np.load(work / "test.npy")

    flat_train = train.X.reshape(len(train.X), -1)
    flat_test = test.X.reshape(len(test.X), -1)
    pca = PCA(args.latent_dim, random_state=args.seed).fit(flat_train)
    model = load(run)
    rows = {
        "raw pixels": logreg_accuracy(flat_train, train.y, flat_test, test.y),
        f"PCA-{args.latent_dim}": logreg_accuracy(
            pca.transform(flat_train), train.y, pca.transform(flat_test), test.y
        ),
        f"VAE μ(x), latent {args.latent_dim}": logreg_accuracy(Z_train, train.y, Z_test, test.y),
    }
    neg_elbo = -float(np.mean(model.score_samples(test.X)))
    run_summary = json.loads((run / "run.json").read_text())
    payload = {
        "dataset": args.dataset,
        "protocol": "official 60k/10k split; StandardScaler + LogisticRegression(max_iter=2000)",
        "command": f"vaekit {train_args}",
        "epochs_run": run_summary["epochs_run"],
        "train_seconds_wall": round(train_seconds, 1),
        "logreg_accuracy": rows,
        "test_neg_elbo_nats": round(neg_elbo, 2),
        "machine": machine(),
    }
    table = markdown_table(
        ["features", "logistic regression test accuracy"],
        [[k, f"{v:.4f}"] for k, v in rows.items()],
    )
    table += (
        f"\n\nConv VAE, {run_summary['epochs_run']} epochs, {train_seconds:.0f} s wall on "
        f"{payload['machine']['cpu_count']} CPU cores; test negative ELBO {neg_elbo:.2f} nats.\n"
    )
    paths = write_results(f"{args.dataset}_cli", payload, table)
    print(table)
    print("written:", *paths)


if __name__ == "__main__":
    main()
