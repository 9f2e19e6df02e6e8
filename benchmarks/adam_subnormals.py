"""Training speed with and without zeroing Adam's negligible moments (subnormal floats on a CPU).

    python benchmarks/adam_subnormals.py [--epochs 6] [--repeats 3] [--batch 128]

Trains the 784-400-20 MLP VAE on MNIST (60k, Bernoulli, Adam 1e-3) with vaekit's training loop,
once as shipped and once with the sweep of ``vaekit.training._zero_subnormal_moments`` turned
off, alternating the two within each repeat. Per epoch it records the wall time and how many of
Adam's moments are subnormal floats (nonzero and below float32's smallest normal, 1.2e-38), the
values x86 CPUs compute on through a slow microcode assist. The table gives the median seconds
per epoch over epochs 2..E (the first carries the warm-up) and the final training loss of each,
which must be the same: the sweep only zeroes moments too small to change an update.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

import vaekit.training as training
from vaekit.datasets import load_dataset
from vaekit.nn import build_module
from vaekit.training import Objective, TrainConfig, train

from _common import data_dir, machine, markdown_table, write_results


def subnormal_moments(optimizer_state: dict) -> int:
    tiny = torch.finfo(torch.float32).tiny
    return sum(
        int(((m != 0) & (m.abs() < tiny)).sum())
        for state in optimizer_state["state"].values()
        for m in (state["exp_avg"], state["exp_avg_sq"])
    )


def run(X: torch.Tensor, sweep: bool, epochs: int, batch: int, seed: int) -> dict:
    """One training run; per-epoch seconds and subnormal counts, and the final loss."""
    period = training.SUBNORMAL_SWEEP_STEPS
    training.SUBNORMAL_SWEEP_STEPS = period if sweep else 10**12  # never reached: no sweep
    torch.manual_seed(seed)
    module = build_module((784,), 20, (400,), (32,), "mlp", True, None)
    config = TrainConfig(epochs=epochs, batch_size=batch, learning_rate=1e-3, patience=None)
    stamps, subnormal = [time.perf_counter()], []
    try:
        history = train(
            module,
            Objective("bernoulli", stochastic=True),
            X,
            None,
            config,
            on_checkpoint=lambda state: subnormal.append(subnormal_moments(state.optimizer)),
            on_epoch_end=lambda epoch, record: stamps.append(time.perf_counter()),
        )
    finally:
        training.SUBNORMAL_SWEEP_STEPS = period
    # The checkpoint hook's count runs inside each epoch's stamp; it is small (one pass over
    # 1.3M floats) and the same with and without the sweep.
    seconds = [b - a for a, b in itertools.pairwise(stamps)]
    return {
        "sweep": sweep,
        "epoch_seconds": seconds,
        "subnormal_moments": subnormal,
        "train_loss": history[-1]["train_loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--name", default="adam_subnormals")
    args = parser.parse_args()

    X = torch.as_tensor(load_dataset("mnist:train", data_dir=data_dir()).X.reshape(-1, 784))
    runs = []
    for repeat in range(args.repeats):
        for sweep in (True, False) if repeat % 2 == 0 else (False, True):
            result = run(X, sweep, args.epochs, args.batch, seed=0)
            print(
                f"repeat {repeat} sweep={sweep}: "
                + " ".join(f"{s:.2f}" for s in result["epoch_seconds"])
                + f" s/epoch, subnormal moments {result['subnormal_moments']}",
                flush=True,
            )
            runs.append({"repeat": repeat, **result})

    def summary(sweep: bool) -> dict:
        mine = [r for r in runs if r["sweep"] == sweep]
        steady = [s for r in mine for s in r["epoch_seconds"][1:]]
        return {
            "median_epoch_seconds": statistics.median(steady),
            "samples_per_second": len(X) / statistics.median(steady),
            "max_subnormal_moments": max(max(r["subnormal_moments"]) for r in mine),
            "final_train_loss": [r["train_loss"] for r in mine],
        }

    on, off = summary(True), summary(False)
    rows = [
        [
            label,
            f"{s['median_epoch_seconds']:.2f}",
            f"{s['samples_per_second']:,.0f}",
            f"{s['max_subnormal_moments']:,}",
            f"{s['final_train_loss'][0]:.4f}",
        ]
        for label, s in (("zeroed every 100 steps (shipped)", on), ("not zeroed", off))
    ]
    table = markdown_table(
        [
            "Adam moments below 1e-30 / 1e-36",
            "s per epoch (median, epochs 2+)",
            "samples/s",
            "subnormal moments (max over epochs)",
            "final train loss",
        ],
        rows,
    )
    speedup = off["median_epoch_seconds"] / on["median_epoch_seconds"]
    table += (
        f"\n\nSpeed-up {speedup:.2f}x. MNIST train (60,000), MLP 784-400-20 VAE, Bernoulli, batch "
        f"{args.batch}, Adam 1e-3 (fused), {args.epochs} epochs, {args.repeats} repeat(s) of "
        f"each, alternating; {torch.get_num_threads()} torch threads, CPU. Out of 652,824 "
        "parameters, each with two moments."
    )
    payload = {"config": vars(args), "runs": runs, "sweep": on, "no_sweep": off}
    payload.update(speedup=speedup, machine=machine())
    for path in write_results(args.name, payload, table):
        print("written:", path)
    print(table)


if __name__ == "__main__":
    main()
