"""Peak memory of `vaekit train` and `vaekit embed` on .npy files of two sizes (out-of-core check).

    python benchmarks/embed_rss.py [--sizes-gb 1,4] [--workdir /tmp]

Writes two float32 .npy files of MNIST-shaped rows (784 features, values in [0, 1]) of the given
sizes, then for each file, in fresh processes, trains an MLP VAE on it for one epoch and embeds
it with a model trained on 5,000 rows, recording each process's peak resident memory
(ru_maxrss) and speed. If both stream, the peak does not grow with the file: the acceptance is
the largest within 10% of the smallest. Files are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import machine, markdown_table, write_results

FEATURES = 784
CHUNK_ROWS = 65_536

# Runs one command as a child and prints the child's peak RSS (Linux reports KiB).
_PEAK_RSS = """
import resource, subprocess, sys, time
tic = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
seconds = time.perf_counter() - tic
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, seconds)
"""


def write_npy(path: Path, n_rows: int, seed: int) -> None:
    """A float32 (n_rows, 784) .npy written chunk by chunk (this process never holds it)."""
    rng = np.random.default_rng(seed)
    with path.open("xb") as f:
        header = {"descr": "<f4", "fortran_order": False, "shape": (n_rows, FEATURES)}
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n_rows, CHUNK_ROWS):
            rows = min(CHUNK_ROWS, n_rows - start)
            f.write(rng.random((rows, FEATURES), dtype=np.float32).tobytes())


def peak_rss(command: list[str]) -> tuple[int, float]:
    """(peak RSS in KiB, seconds) of ``command`` run in a fresh process."""
    probe = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *command], check=True, capture_output=True, text=True
    )
    peak_kib, seconds = probe.stdout.split()
    return int(peak_kib), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-gb", default="1,4")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes_gb.split(",")]
    work = Path(tempfile.mkdtemp(prefix="vaekit-rss-", dir=args.workdir))
    vaekit = [sys.executable, "-m", "vaekit"]
    try:
        train_file = work / "train.npy"
        write_npy(train_file, 5000, seed=0)
        subprocess.run(
            [*vaekit, "train", str(train_file), "--out", str(work / "run"), "--epochs", "1",
             "--latent-dim", "16", "--quiet"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        rows = []
        for size in sizes:
            data = work / f"data-{size:g}gb.npy"
            n_rows = int(size * 2**30 // (FEATURES * 4))
            write_npy(data, n_rows, seed=1)
            out = work / f"mu-{size:g}gb.npy"
            train_peak_kib, train_seconds = peak_rss(
                [*vaekit, "train", str(data), "--out", str(work / f"run-{size:g}"), "--epochs",
                 "1", "--batch-size", "1024", "--latent-dim", "16", "--quiet"]
            )  # fmt: skip
            peak_kib, seconds = peak_rss(
                [*vaekit, "embed", str(work / "run"), str(data), "--out", str(out)]
            )
            mu = np.load(out, mmap_mode="r")
            assert mu.shape == (n_rows, 16), mu.shape
            rows.append(
                {
                    "file_gb": round(data.stat().st_size / 2**30, 3),
                    "rows": n_rows,
                    "train_peak_rss_mb": round(train_peak_kib / 1024, 1),
                    "train_seconds": round(train_seconds, 2),
                    "peak_rss_mb": round(peak_kib / 1024, 1),
                    "seconds": round(float(seconds), 2),
                    "rows_per_s": round(n_rows / float(seconds)),
                }
            )
            data.unlink()
            out.unlink()
            print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    train_ratio = rows[-1]["train_peak_rss_mb"] / rows[0]["train_peak_rss_mb"]
    table = markdown_table(
        ["file", "rows", "train: peak RSS (MB)", "train: s/epoch", "embed: peak RSS (MB)",
         "embed: s", "embed: rows/s"],
        [
            [f"{r['file_gb']} GB", r["rows"], r["train_peak_rss_mb"], r["train_seconds"],
             r["peak_rss_mb"], r["seconds"], r["rows_per_s"]]
            for r in rows
        ],
    )  # fmt: skip
    table += (
        f"\n\nPeak RSS, largest file over smallest: embed {ratio:.3f}, train {train_ratio:.3f} "
        "(target ≤ 1.10). A float32 .npy of 784 features, memory-mapped; a 784-512-256-16 MLP "
        "VAE; each command in a fresh process (`train`: one epoch, batch 1024, including "
        "start-up and saving).\n"
    )
    payload = {
        "rows": rows,
        "embed_peak_ratio": round(ratio, 4),
        "train_peak_ratio": round(train_ratio, 4),
        "machine": machine(),
    }
    print(table)
    for path in write_results("embed_rss", payload, table):
        print("written:", path)


if __name__ == "__main__":
    main()
