"""MNIST / Fashion-MNIST: is μ(x) worth more than raw pixels, PCA-32 or a plain AE-32?

Runs exactly what a user would type, then renders the comparison table with the targets:

    vaekit train DATASET:train --architecture conv --latent-dim 32 --epochs E --out RUN
    vaekit evaluate RUN DATASET:train --test DATASET:test --out REPORT

``vaekit evaluate`` fits PCA(32) and an ``Autoencoder(32)`` with the VAE's architecture and
training budget on the 60,000 training images only, then runs classification (logistic
regression, linear SVM, kNN, random forest; hyper-parameters by cross-validation on the training
split) and clustering (k-means on all test rows; Ward and HDBSCAN on a subsample) on raw pixels,
PCA, AE, VAE μ(x) and one draw of z. The protocol is printed under the table.

    python benchmarks/compare.py --dataset mnist --epochs 20
    python benchmarks/compare.py --dataset fashion-mnist --epochs 20

Writes benchmarks/results/compare_<dataset>.json and .md (``--name STEM``: STEM.json and STEM.md,
for a variant that should not replace the main table); the HTML report stays in --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vaekit.evaluation import format_table

from _common import data_dir, machine, write_results

VAEKIT = [sys.executable, "-m", "vaekit"]
# The acceptance, per dataset: minimum test scores of the VAE μ(x) row.
TARGETS = {
    "mnist": {"vae_mu": {"logreg accuracy": 0.97, "kmeans accuracy": 0.88}},
    "fashion-mnist": {"vae_mu": {"logreg accuracy": 0.87}},
}
TRAINING_BUDGET_MINUTES = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=sorted(TARGETS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--architecture", default="conv", choices=["conv", "mlp"])
    parser.add_argument(
        "--hidden-dims",
        default=None,
        help="MLP widths, e.g. 1024,512; conv: the last is the dense width",
    )
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--kl-warmup-epochs", type=float, default=0.0)
    parser.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"])
    parser.add_argument("--augment", default=None, choices=["affine"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: temp)")
    parser.add_argument(
        "--run",
        type=Path,
        default=None,
        help="evaluate this saved model instead of training one (training flags then only "
        "describe it; its training time is the sum of its epochs' recorded seconds)",
    )
    parser.add_argument(
        "--name", default=None, help="results file stem (default: compare_<dataset>)"
    )
    args = parser.parse_args()
    common = ["--data-dir", str(data_dir())]
    work = Path(tempfile.mkdtemp(prefix="vaekit-compare-"))
    run, report = work / "run", args.out or work / "report"

    # Training options away from their defaults, for the command line shown with the table.
    tuning = [
        *(["--beta", f"{args.beta:g}"] if args.beta != 1.0 else []),
        *(["--kl-warmup-epochs", f"{args.kl_warmup_epochs:g}"] if args.kl_warmup_epochs else []),
        *(["--lr-schedule", args.lr_schedule] if args.lr_schedule != "constant" else []),
        *(["--hidden-dims", args.hidden_dims] if args.hidden_dims else []),
        *(["--augment", args.augment] if args.augment else []),
    ]
    train = [
        "train", f"{args.dataset}:train", "--architecture", args.architecture,
        "--latent-dim", str(args.latent_dim), "--epochs", str(args.epochs), *tuning,
        "--seed", str(args.seed), "--out", str(run),
    ]  # fmt: skip
    if args.run is None:
        tic = time.perf_counter()
        subprocess.run([*VAEKIT, *train, *common], check=True)
        train_seconds = time.perf_counter() - tic
    else:
        run = args.run
        history = json.loads((run / "history.json").read_text())
        train_seconds = sum(record["seconds"] for record in history)
    evaluate = [
        "evaluate", str(run), f"{args.dataset}:train", "--test", f"{args.dataset}:test",
        "--out", str(report), "--seed", str(args.seed),
    ]  # fmt: skip
    tic = time.perf_counter()
    subprocess.run([*VAEKIT, *evaluate, *common], check=True)
    evaluate_seconds = time.perf_counter() - tic

    results = json.loads((report / "results.json").read_text())
    comparison = {"summary": results["summary"], **results["comparison"]}
    table = format_table(comparison, targets=TARGETS[args.dataset])
    minutes = train_seconds / 60
    budget = "within" if minutes <= TRAINING_BUDGET_MINUTES else "OVER"
    settings = (
        (f"widths {args.hidden_dims}, " if args.hidden_dims else "")
        + f"β = {args.beta:g}, {args.epochs} epochs"
        + (f", KL warm-up {args.kl_warmup_epochs:g} epochs" if args.kl_warmup_epochs else "")
        + (f", {args.lr_schedule} learning rate" if args.lr_schedule != "constant" else "")
        + (f", {args.augment} augmentation" if args.augment else "")
    )
    header = (
        f"{args.dataset}, 60,000 / 10,000, latent {args.latent_dim}: {args.architecture} VAE "
        f"({settings}) "
        f"trained in {minutes:.1f} min, {budget} the "
        f"{TRAINING_BUDGET_MINUTES:g}-minute budget; `vaekit evaluate` (AE baseline training "
        f"included) took {evaluate_seconds / 60:.1f} min.\n\n"
        f"    python benchmarks/compare.py --dataset {args.dataset} --epochs {args.epochs}"
        + "".join(f" {flag}" for flag in tuning)
        + (f" --latent-dim {args.latent_dim}" if args.latent_dim != 32 else "")
        + (f" --architecture {args.architecture}" if args.architecture != "conv" else "")
        + (f" --run {args.run}" if args.run else "")
        + (f" --name {args.name}" if args.name else "")
        + "\n\n"
    )
    print(header + table)
    payload = {
        "dataset": args.dataset,
        "commands": [
            f"(not run: --run {args.run})" if args.run else " ".join(["vaekit", *train]),
            " ".join(["vaekit", *evaluate]),
        ],
        "train_minutes": round(minutes, 2),
        "evaluate_minutes": round(evaluate_seconds / 60, 2),
        "targets": TARGETS[args.dataset],
        "summary": results["summary"],
        "rows": results["comparison"]["rows"],
        "protocol": results["comparison"]["protocol"],
        "timings": results.get("timings"),
        "report": str(report / "report.html"),
        "machine": machine(),
    }
    name = args.name or f"compare_{args.dataset.replace('-', '_')}"
    write_results(name, payload, header + table)


if __name__ == "__main__":
    main()
