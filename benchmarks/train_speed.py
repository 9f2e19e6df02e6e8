"""Training speed: ``VAE.fit`` against a plain PyTorch loop in the style of pytorch/examples.

The model is the one of pytorch/examples vae/main.py: MLP 784-400-20 (ReLU), Bernoulli decoder,
Adam(lr=1e-3), batch 128, MNIST 60k. The plain loop is written the way that example does it: a
``Dataset`` that turns one uint8 image into a float tensor per item (what ``ToTensor`` does), a
shuffling ``DataLoader``, default Adam, per-batch sum-reduced loss. Both train for the same
number of epochs; the two are interleaved and repeated, and the median samples/s is reported
together with each model's test negative ELBO (same evaluation code, same ε), so a speed-up can
never hide a worse model.

Every run is its own fresh Python process (measured: a fit that follows the DataLoader loop in
the same process runs ~25% slower, so sharing a process would bias whichever goes second).
Inside each process, one throw-away optimizer is built before the clock starts: the first
``torch.optim`` optimizer of a process imports torch._dynamo (~2 s here), a start-up cost that
both trainers would otherwise pay inside their timing.

    python benchmarks/train_speed.py [--epochs 3] [--repeats 3]

Writes benchmarks/results/train_speed.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vaekit import VAE
from vaekit.datasets import load_dataset

from _common import data_dir, machine, markdown_table, write_results


class ExamplesVAE(nn.Module):
    """pytorch/examples vae/main.py, verbatim in structure."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def examples_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


class UInt8Images(torch.utils.data.Dataset):
    """Per-item conversion, as torchvision's MNIST + ToTensor does (no torchvision here)."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return torch.tensor(self.images[i], dtype=torch.float32).div_(255).unsqueeze(0), 0


def train_plain(images: np.ndarray, epochs: int, seed: int) -> tuple[ExamplesVAE, float]:
    torch.manual_seed(seed)
    model = ExamplesVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(UInt8Images(images), batch_size=128, shuffle=True)
    tic = time.perf_counter()
    model.train()
    for _ in range(epochs):
        for data, _ in loader:
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = examples_loss(recon_batch, data, mu, logvar)
            loss.backward()
            optimizer.step()
    return model, time.perf_counter() - tic


def train_vaekit(X: np.ndarray, epochs: int, seed: int) -> tuple[VAE, float]:
    vae = VAE(
        latent_dim=20,
        hidden_dims=(400,),
        architecture="mlp",
        likelihood="bernoulli",
        epochs=epochs,
        batch_size=128,
        learning_rate=1e-3,
        validation_fraction=0.0,
        random_state=seed,
        device="cpu",
    )
    tic = time.perf_counter()
    vae.fit(X)
    return vae, time.perf_counter() - tic


@torch.no_grad()
def neg_elbo(encode, decode_logits, X: np.ndarray, seed: int = 0) -> float:
    """Mean -ELBO (nats) on X: BCE at one z ~ q(z|x) (fixed ε) + exact KL, same for both."""
    x = torch.from_numpy(X)
    mu, logvar = encode(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed))
    logits = decode_logits(mu + eps * torch.exp(0.5 * logvar))
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    return float((bce + kl).mean())


def worker(trainer: str, epochs: int, seed: int) -> dict:
    """One timed run in this (fresh) process: samples/s and test -ELBO."""
    root = data_dir()
    images = (load_dataset("mnist:train", data_dir=root).X * 255).round().astype(np.uint8)
    X_test = load_dataset("mnist:test", data_dir=root).X.reshape(-1, 784)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pay the one-time import here
    if trainer == "plain":
        model, seconds = train_plain(images, epochs, seed)
        model.eval()
        elbo = neg_elbo(model.encode, lambda z: model.fc4(F.relu(model.fc3(z))), X_test)
    else:
        X = images.reshape(len(images), 784).astype(np.float32) / 255
        vae, seconds = train_vaekit(X, epochs, seed)
        elbo = neg_elbo(vae.module_.encode, vae.module_.decode, X_test)
    return {"samples_per_second": len(images) * epochs / seconds, "test_neg_elbo": elbo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=["plain", "vaekit"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.epochs, args.seed)))
        return

    names = {"plain": "plain PyTorch loop", "vaekit": "vaekit VAE.fit"}
    runs: dict[str, list[float]] = {name: [] for name in names.values()}
    elbos: dict[str, list[float]] = {name: [] for name in names.values()}
    for repeat in range(args.repeats):
        for key, name in names.items():
            cmd = [sys.executable, __file__, "--worker", key, "--epochs", str(args.epochs)]
            out = subprocess.run([*cmd, "--seed", str(repeat)], check=True, capture_output=True)
            result = json.loads(out.stdout.decode().strip().splitlines()[-1])
            runs[name].append(result["samples_per_second"])
            elbos[name].append(result["test_neg_elbo"])
        print(f"repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in runs.items()))

    medians = {k: statistics.median(v) for k, v in runs.items()}
    base = medians["plain PyTorch loop"]
    rows = [
        [k, f"{medians[k]:,.0f}", f"{medians[k] / base:.2f}x", f"{statistics.median(elbos[k]):.2f}"]
        for k in runs
    ]
    table = markdown_table(
        ["trainer (MLP 784-400-20, batch 128)", "samples/s (median)", "vs plain", "test -ELBO"],
        rows,
    )
    table += (
        f"\n\n{args.epochs} epochs of MNIST 60k per run, median of {args.repeats} interleaved "
        f"runs, each in a fresh process, {machine()['torch_threads']} torch threads.\n"
    )
    payload = {
        "model": "MLP 784-400-20 VAE, Bernoulli, Adam lr 1e-3, batch 128",
        "epochs_per_run": args.epochs,
        "samples_per_second": runs,
        "median_samples_per_second": medians,
        "speedup_vs_plain": medians["vaekit VAE.fit"] / base,
        "test_neg_elbo": elbos,
        "machine": machine(),
    }
    paths = write_results("train_speed", payload, table)
    print(table)
    print("written:", *paths)


if __name__ == "__main__":
    main()
