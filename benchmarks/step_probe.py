"""Where a training step of the MLP VAE goes: arithmetic, op dispatch, and ``torch.compile``.

    python benchmarks/step_probe.py [--precision bfloat16] [--blocks 12] [--steps 40]
    python benchmarks/step_probe.py --no-compile      # skip the compiled variant (~25 s cold)

One process, four step functions of vaekit's training loop (batch gather, the hand-derived
loss-and-gradient pass of ``vaekit.mlp_step``, the direct fused Adam update), timed in
alternating blocks of ``--steps`` steps so that the host's drift hits each alike:

* ``784-400-20``: the MNIST model of the speed benchmark, as ``VAE.fit`` runs it;
* ``8-8-2``: the same ops on tiny tensors: what issuing them costs, without the arithmetic;
* ``784-400-20 compiled``: the same step through ``torch.compile`` (Inductor's C++ kernels fuse
  the element-wise work and the casts; the matrix multiplies stay library calls), with its
  compilation time;
* ``Adam only``: the update alone.

The table gives each one's median milliseconds per step over the blocks, and for the compiled
step the median of its per-block ratio to the eager one. It explains the speed benchmark; it
is not a target. Writes ``results/step_probe.json`` and ``.md`` (``--name STEM`` to change).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vaekit.datasets import load_dataset
from vaekit.mlp_step import MLPVAEStep
from vaekit.nn import build_module
from vaekit.training import PRECISIONS, _AdamStep, _make_optimizer, _rows

from _common import data_dir, machine, markdown_table, write_results

BATCH = 128


def make_step(X: torch.Tensor, hidden: int, latent: int, precision: str, compiled: bool):
    """A function of the step index running one training step, as ``train`` does."""
    torch.manual_seed(0)
    module = build_module((X.shape[1],), latent, (hidden,), (), "mlp", True, None)
    step = MLPVAEStep.build(module, "bernoulli", True, 0.0, PRECISIONS[precision])
    loss_and_grads = torch.compile(step.__call__, dynamic=False) if compiled else step
    update = _AdamStep(_make_optimizer(module, 1e-3))
    perm = torch.randperm(X.shape[0])
    batches = X.shape[0] // BATCH  # whole batches only: one shape, one compilation

    def one(s: int, adam_only: bool = False) -> None:
        if not adam_only:
            x = _rows(X, perm[(s % batches) * BATCH : (s % batches + 1) * BATCH])
            loss_and_grads(x, 1.0)
        update()

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", default="bfloat16", choices=list(PRECISIONS))
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--steps", type=int, default=40, help="steps per block")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--name", default="step_probe")
    args = parser.parse_args()

    mnist = load_dataset("mnist:train", data_dir=data_dir()).X
    X = torch.as_tensor(mnist.reshape(len(mnist), -1), dtype=torch.float32).contiguous()
    tiny = torch.rand(4096, 8)
    variants = {
        "784-400-20": make_step(X, 400, 20, args.precision, compiled=False),
        "8-8-2": make_step(tiny, 8, 2, args.precision, compiled=False),
    }
    compile_seconds = None
    if not args.no_compile:
        tic = time.perf_counter()
        compiled = make_step(X, 400, 20, args.precision, compiled=True)
        compiled(0)
        compile_seconds = time.perf_counter() - tic
        variants["784-400-20 compiled"] = compiled
    full = variants["784-400-20"]
    variants["Adam only (784-400-20)"] = lambda s: full(s, adam_only=True)
    for one in variants.values():  # warm-up: Adam's state, caches, the allocator
        for s in range(30):
            one(s)

    ms: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.blocks):
        for name, one in variants.items():
            tic = time.perf_counter()
            for s in range(args.steps):
                one(s)
            ms[name].append((time.perf_counter() - tic) / args.steps * 1e3)

    eager = ms["784-400-20"]
    rows, results = [], {}
    for name, blocks in ms.items():
        ratio = statistics.median(e / b for e, b in zip(eager, blocks, strict=True))
        results[name] = {"ms_per_step_blocks": blocks, "median_ms": statistics.median(blocks)}
        rows.append(
            [name, f"{statistics.median(blocks):.3f}", f"{min(blocks):.3f}", f"{ratio:.2f}x"]
        )
    if compile_seconds is not None:
        results["784-400-20 compiled"]["compile_seconds"] = compile_seconds
    table = markdown_table(
        ["step", "median ms/step", "best block", "eager 784-400-20 / this (per block)"], rows
    )
    protocol = (
        f"\n\n{args.precision}, batch {BATCH}, {args.blocks} alternating blocks of "
        f"{args.steps} steps, {torch.get_num_threads()} threads."
    )
    if compile_seconds is not None:
        protocol += f" Compilation of the compiled step: {compile_seconds:.1f} s."
    write_results(
        args.name,
        {"machine": machine(), "args": vars(args), "results": results},
        table + protocol,
    )
    print(table + protocol)


if __name__ == "__main__":
    main()
