"""Training and embedding speed: ``VAE.fit`` against a plain PyTorch loop and pythae, on MNIST 60k.

Models: the MLP VAE 784-400-20 of pytorch/examples vae/main.py, and vaekit's default conv VAE
at latent 20 (read from ``VAE()``'s defaults, so it follows them: today three levels of a 3x3
stride-2 conv and a 3x3 stride-1 conv, 1->32->64->128 channels down to 4x4, dense 256, and a
decoder of transposed convs back up). Both Bernoulli,
Adam lr 1e-3, no validation split, no early stopping, at batch 128 and 1024. The trainers:

* ``vaekit``: ``VAE.fit`` (and ``VAE.transform`` for the embedding); ``vaekit-bf16`` the same
  with ``precision="bfloat16"`` (mixed precision);
* ``plain``: the loop of pytorch/examples vae/main.py: a shuffling ``DataLoader`` over a
  ``TensorDataset``, default Adam, sigmoid decoder + sum-reduced BCE, ``loss.item()`` per step.
  The MLP is that example's model verbatim; the conv model is vaekit's (``vaekit.nn.build_module``)
  trained by the same loop; ``plain-bf16`` the same loop with its forward pass under
  ``torch.autocast(bfloat16)``; ``examples`` the same loop over uint8 images converted per item,
  as torchvision's ``ToTensor`` does;
* ``pythae``: ``pythae.pipelines.TrainingPipeline`` with ``pythae.models.VAE`` (BCE) around the
  same encoder/decoder (vaekit's modules wrapped in pythae's ``BaseEncoder`` / ``BaseDecoder``).
  pythae is not a vaekit dependency; install it into the benchmark environment only, e.g.
  ``pip install --no-deps pythae imageio`` (its other requirements are already there; its
  ``dataclasses`` requirement is a Python 3.6 backport the standard library provides). Without
  it, its rows say "not installed".

Each run (model, batch, trainer) is its own fresh Python process, and the repeats interleave the
trainers, so no trainer inherits another's warm caches or pays its start-up costs (measured: a
fit that follows the DataLoader loop in the same process ran ~25% slower). Throughput is
steady-state: rows x (epochs - 1) / (wall time from the end of epoch 1 to the end of the last),
each epoch's end stamped by the trainer's own per-epoch hook. The roofline is this machine's
float32 matrix multiply (``torch.mm`` on 2048 x 2048, same thread count), and for the
bfloat16 rows' training the same product in bfloat16.

The defaults are sized for about 15 minutes on 2 idle cores (an estimate: a conv epoch costs
~5x an MLP epoch in FLOPs and runs far below the matrix-multiply peak, so conv gets one warm-up
+ one timed epoch and one repeat); ``--conv-repeats 3`` gives conv a median too (~25 minutes).

    python benchmarks/speed.py [--epochs 3] [--conv-epochs 2] [--repeats 3] [--conv-repeats 1]
    python benchmarks/speed.py --quick        # smoke test (~1-2 min) on 2,048 rows
    python benchmarks/speed.py --device cuda  # the same on a GPU (float32, no TF32)

On a GPU every trainer runs there: vaekit with ``device="cuda"`` (the whole dataset moved to the
GPU once), the loops the way pytorch/examples does on CUDA (a DataLoader with one worker and
pinned memory, each batch copied with ``.to(device)``), pythae with ``no_cuda=False``. Timing
stamps synchronize the device first, and the roofline is ``torch.mm`` on 8192 x 8192 float32
there, with TF32 left off as PyTorch's default leaves it, so every trainer and the roofline do
the same full-precision arithmetic.

Writes benchmarks/results/speed.json and speed.md (``--name STEM``: STEM.json and STEM.md, e.g.
for a partial run with ``--models mlp`` that should not replace the full table).
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import importlib.util
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vaekit import VAE
from vaekit.datasets import load_dataset

# transform's batch sizes, named in the protocol text so that it follows them
from vaekit.estimator import _PREDICT_BATCH, _PREDICT_BATCH_CONV_CPU
from vaekit.nn import build_module, reparameterize

from _common import data_dir, machine, markdown_table, write_results

LATENT = 20
MLP_HIDDEN = (400,)
LR = 1e-3
MODELS = ("mlp", "conv")
BATCHES = (128, 1024)
TRAINERS = ("examples", "plain", "plain-bf16", "pythae", "vaekit", "vaekit-bf16")
TRAINER_NAMES = {
    "examples": "pytorch/examples loop (per-item ToTensor)",
    "plain": "plain PyTorch loop (TensorDataset)",
    "plain-bf16": "plain PyTorch loop, bfloat16 autocast",
    "pythae": "pythae TrainingPipeline",
    "vaekit": "vaekit VAE.fit",
    "vaekit-bf16": 'vaekit VAE.fit, precision="bfloat16"',
}
# The dtype of each trainer's matrix multiplies: its row's roofline is torch.mm in that dtype.
TRAINER_DTYPES = {"plain-bf16": "bfloat16", "vaekit-bf16": "bfloat16"}


def trainer_dtype(trainer: str) -> str:
    """The dtype of ``trainer``'s matrix multiplies: float32 unless it is a bfloat16 one."""
    return TRAINER_DTYPES.get(trainer, "float32")


MODEL_NAMES = {"mlp": "MLP 784-400-20", "conv": "vaekit default conv, latent 20"}
SGEMM_N = {"cpu": 2048, "cuda": 8192}  # the GPU needs a bigger product to reach its peak


# ---------------------------------------------------------------------------- models
def vaekit_defaults() -> dict:
    """The conv architecture's defaults, read from the estimator (so this follows vaekit)."""
    params = VAE().get_params()
    return {"hidden_dims": params["hidden_dims"], "conv_channels": params["conv_channels"]}


def shared_module(model: str) -> nn.Module:
    """vaekit's encoder/decoder pair for ``model``, exactly as ``VAE.fit`` builds it."""
    if model == "mlp":
        return build_module((784,), LATENT, MLP_HIDDEN, (32,), "mlp", True, None)
    d = vaekit_defaults()
    return build_module(
        (1, 28, 28), LATENT, d["hidden_dims"], d["conv_channels"], "conv", True, None
    )


def vaekit_estimator(
    model: str, batch: int, epochs: int, seed: int, device: str, precision: str = "float32"
) -> VAE:
    common = {
        "latent_dim": LATENT,
        "likelihood": "bernoulli",
        "epochs": epochs,
        "batch_size": batch,
        "learning_rate": LR,
        "validation_fraction": 0.0,
        "patience": None,
        "random_state": seed,
        "device": device,
        "precision": precision,
    }
    if model == "mlp":
        return VAE(hidden_dims=MLP_HIDDEN, architecture="mlp", **common)
    return VAE(architecture="conv", **common)  # the default conv architecture


class ExamplesVAE(nn.Module):
    """pytorch/examples vae/main.py, verbatim in structure (plus ``logits`` for the evaluation)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def logits(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def decode(self, z):
        return torch.sigmoid(self.logits(z))

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class ExamplesConvVAE(nn.Module):
    """The same interface around vaekit's default conv encoder/decoder (same layers as VAE.fit)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = shared_module("conv")

    def encode(self, x):
        return self.net.encode(x)

    def logits(self, z):
        return self.net.decode(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return torch.sigmoid(self.logits(reparameterize(mu, logvar))), mu, logvar


def examples_loss(recon_x, x, mu, logvar):
    """pytorch/examples' loss: BCE on sigmoid outputs + KL, both summed over the batch."""
    n = x.shape[0]
    bce = F.binary_cross_entropy(recon_x.view(n, -1), x.view(n, -1), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


# pythae's custom-network API; the classes are built on first use so that this file imports
# (and reports "not installed") without pythae.
@functools.cache
def pythae_classes():
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self, net: nn.Module, flatten: bool) -> None:
            BaseEncoder.__init__(self)
            self.net, self.flatten = net, flatten

        def forward(self, x):
            mu, logvar = self.net(x.flatten(1) if self.flatten else x)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self, net: nn.Module) -> None:
            BaseDecoder.__init__(self)
            self.net = net

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    return Encoder, Decoder


# ---------------------------------------------------------------------------- measurements
def stamp() -> tuple[float, float]:
    """(wall clock, this process's CPU time over all its threads), in seconds.

    On a GPU the queued kernels are waited for first, so a stamp marks finished work.
    """
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter(), time.process_time()


def throughput(rows: int, start: tuple[float, float], ends: list[tuple[float, float]]) -> dict:
    """Steady-state samples/s after the first (warm-up) epoch, from per-epoch end stamps.

    ``cpu_per_wall`` over the timed epochs is a load gauge: near the thread count when the
    trainer had the cores to itself and is compute-bound, lower when the machine was busy
    (or the trainer runs single-threaded Python).
    """
    epochs = len(ends)
    wall, cpu = ends[-1][0] - ends[0][0], ends[-1][1] - ends[0][1]
    walls = [start[0]] + [end[0] for end in ends]
    return {
        "samples_per_second": rows * (epochs - 1) / wall,
        "cpu_per_wall": cpu / wall,
        "warmup_epoch_seconds": ends[0][0] - start[0],
        "epoch_seconds": [b - a for a, b in itertools.pairwise(walls)],
    }


def loader(
    X: torch.Tensor | torch.utils.data.Dataset, batch: int, shuffle: bool, device: str = "cpu"
) -> torch.utils.data.DataLoader:
    """A DataLoader as pytorch/examples vae/main.py makes it: on CUDA, one worker, pinned memory."""
    data = torch.utils.data.TensorDataset(X) if isinstance(X, torch.Tensor) else X
    extra = {"num_workers": 1, "pin_memory": True} if device == "cuda" else {}
    return torch.utils.data.DataLoader(data, batch_size=batch, shuffle=shuffle, **extra)


class ToTensorMNIST(torch.utils.data.Dataset):
    """What vae/main.py trains on: torchvision's MNIST with ``transforms.ToTensor()``.

    The images are kept as uint8 and each item is converted on access to a (1, 28, 28) float in
    [0, 1], as torchvision's dataset does (minus its PIL round trip, so this is if anything a
    little faster than the real example).
    """

    def __init__(self, X: torch.Tensor) -> None:
        self.images = (X * 255).round().to(torch.uint8).reshape(len(X), 28, 28)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor]:
        return (self.images[i].unsqueeze(0).float().div(255),)


def train_plain(
    model: str,
    X: torch.Tensor,
    batch: int,
    epochs: int,
    seed: int,
    device: str,
    per_item: bool = False,
    precision: str = "float32",
) -> dict:
    """The pytorch/examples loop; with ``precision="bfloat16"`` its forward pass runs under
    ``torch.autocast`` (the network's outputs taken back to float32 for the loss), the way a
    user would add mixed precision to it."""
    torch.manual_seed(seed)
    net = (ExamplesVAE() if model == "mlp" else ExamplesConvVAE()).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    data = loader(ToTensorMNIST(X) if per_item else X, batch, shuffle=True, device=device)
    ends = []
    start = stamp()
    net.train()
    for _ in range(epochs):
        train_loss = 0.0
        for (x,) in data:
            x = x.to(device)
            optimizer.zero_grad()
            with torch.autocast(x.device.type, torch.bfloat16, enabled=precision != "float32"):
                recon_batch, mu, logvar = net(x)
            loss = examples_loss(recon_batch.float(), x, mu.float(), logvar.float())
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        ends.append(stamp())
    net.eval()
    return {
        **throughput(len(X), start, ends),
        "run_seconds": ends[-1][0] - start[0],
        "encode": net.encode,
        "logits": net.logits,
        "embed": lambda x: net.encode(x)[0],
    }


def train_vaekit(
    model: str,
    X: np.ndarray,
    batch: int,
    epochs: int,
    seed: int,
    device: str,
    precision: str = "float32",
) -> dict:
    import vaekit.estimator

    # Stamp the end of each epoch through training.train's own on_epoch_end hook.
    ends: list[tuple[float, float]] = []
    original = vaekit.estimator.train
    vaekit.estimator.train = functools.partial(
        original, on_epoch_end=lambda epoch, record: ends.append(stamp())
    )
    vae = vaekit_estimator(model, batch, epochs, seed, device, precision)
    try:
        start = stamp()
        vae.fit(X)
        run_seconds = time.perf_counter() - start[0]
    finally:
        vaekit.estimator.train = original
    assert len(ends) == epochs, "the epoch hook did not fire; vaekit.estimator changed?"
    # The first stamp is measured from fit's start, so the warm-up epoch also carries fit's
    # data preparation; it is not part of the throughput.
    return {
        **throughput(len(X), start, ends),
        "run_seconds": run_seconds,  # includes validation, scaling and the post-fit diagnostics
        "encode": vae.module_.encode,
        "logits": vae.module_.decode,
        "transform": vae.transform,
    }


def train_pythae(
    model: str, X: torch.Tensor, batch: int, epochs: int, seed: int, device: str
) -> dict:
    from pythae.models import VAE as PythaeVAE
    from pythae.models import VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    Encoder, Decoder = pythae_classes()

    class Stamps(TrainingCallback):
        """on_log is the last thing of each epoch in pythae's BaseTrainer.train."""

        def __init__(self) -> None:
            self.start, self.ends = stamp(), []

        def on_train_begin(self, training_config, **kwargs):
            self.start = stamp()

        def on_log(self, training_config, logs, **kwargs):
            self.ends.append(stamp())

    torch.manual_seed(seed)
    net = shared_module(model)
    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
    vae = PythaeVAE(
        config, encoder=Encoder(net.encoder, model == "mlp"), decoder=Decoder(net.decoder)
    )
    stamps = Stamps()
    with tempfile.TemporaryDirectory() as out:
        training_config = BaseTrainerConfig(
            output_dir=out,
            num_epochs=epochs,
            per_device_train_batch_size=batch,
            learning_rate=LR,
            no_cuda=device != "cuda",
            seed=seed,
        )
        pipeline = TrainingPipeline(model=vae, training_config=training_config)
        start = time.perf_counter()
        pipeline(train_data=X, eval_data=None, callbacks=[stamps])
        run_seconds = time.perf_counter() - start
    # The pipeline trains ``vae`` in place (and also keeps a deep copy of the best epoch, which
    # with loss still falling is the last one).
    vae.eval()
    return {
        **throughput(len(X), stamps.start, stamps.ends),
        "run_seconds": run_seconds,
        "encode": lambda x: _pair(vae.encoder(x)),
        "logits": net.decoder,
        "embed": lambda x: vae.encoder(x).embedding,
    }


def _pair(output) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, log σ²) out of a pythae encoder's ModelOutput."""
    return output.embedding, output.log_covariance


@torch.no_grad()
def neg_elbo(
    encode, logits_of, X: torch.Tensor, device: str, seed: int = 0, batch: int = 1000
) -> float:
    """Mean -ELBO (nats) on X: BCE at one z ~ q(z|x) (ε seeded, same for all) + exact KL."""
    total = 0.0
    eps = torch.randn(len(X), LATENT, generator=torch.Generator().manual_seed(seed)).to(device)
    for start in range(0, len(X), batch):
        x = X[start : start + batch].to(device)
        mu, logvar = encode(x)
        logits = logits_of(mu + eps[start : start + batch] * torch.exp(0.5 * logvar))
        n = x.shape[0]
        bce = F.binary_cross_entropy_with_logits(
            logits.reshape(n, -1), x.reshape(n, -1), reduction="none"
        )
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        total += float((bce.sum(1) + kl).sum())
    return total / len(X)


def embed_rate(embed, n: int, warm_up) -> float:
    """Samples/s of one full embedding pass over n rows, after a warm-up call on a few rows."""
    warm_up()
    tic = time.perf_counter()
    Z = embed()
    seconds = time.perf_counter() - tic
    assert Z.shape == (n, LATENT), Z.shape
    return n / seconds


@torch.no_grad()
def embed_loop(embed, X: torch.Tensor, batch: int, device: str) -> torch.Tensor:
    """The plain way: a DataLoader over the rows at the training batch size, μ per batch."""
    data = loader(X, batch, shuffle=False, device=device)
    return torch.cat([embed(x.to(device)).cpu() for (x,) in data])


def worker(
    trainer: str,
    model: str,
    batch: int,
    epochs: int,
    seed: int,
    rows: int,
    test_rows: int,
    device: str,
) -> dict:
    """One timed run in this (fresh) process."""
    root = data_dir()
    images = load_dataset("mnist:train", data_dir=root).X[:rows]  # (n, 28, 28) in [0, 1]
    test = load_dataset("mnist:test", data_dir=root).X[:test_rows]
    # What each trainer sees: vaekit the array a user has ((n, 784) for the MLP, (n, 28, 28)
    # images for conv); the torch loops the (n, 1, 28, 28) tensor torchvision's ToTensor makes.
    X_np = images.reshape(len(images), 784) if model == "mlp" else images
    X_t = torch.from_numpy(images).unsqueeze(1)
    test_t = torch.from_numpy(test.reshape(len(test), 784) if model == "mlp" else test[:, None])
    # The first torch.optim optimizer of a process imports torch._dynamo (~2 s): pay it here.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    # The machine's matmul speed right now, next to this run: shared cores drift by 2x.
    probe = sgemm(device, trainer_dtype(trainer))
    if trainer.startswith("vaekit"):
        run = train_vaekit(model, X_np, batch, epochs, seed, device, trainer_dtype(trainer))
        embed = embed_rate(
            lambda: run["transform"](X_np), len(X_np), lambda: run["transform"](X_np[:2048])
        )
    else:
        train = {
            "examples": functools.partial(train_plain, per_item=True),
            "plain": train_plain,
            "plain-bf16": functools.partial(train_plain, precision="bfloat16"),
            "pythae": train_pythae,
        }[trainer]
        run = train(model, X_t, batch, epochs, seed, device)
        embed = embed_rate(
            lambda: embed_loop(run["embed"], X_t, batch, device),
            len(X_t),
            lambda: embed_loop(run["embed"], X_t[: 2 * batch], batch, device),
        )
    result = {k: v for k, v in run.items() if not callable(v)}
    result["embed_samples_per_second"] = embed
    result["test_neg_elbo"] = neg_elbo(run["encode"], run["logits"], test_t, device)
    result["torch_threads"] = torch.get_num_threads()
    result["sgemm_gflops"] = probe["gflops_median"]
    return result


def sgemm(device: str = "cpu", dtype: str = "float32", repeats: int = 15) -> dict:
    """Matrix-multiply GFLOP/s (torch.mm, n x n, n from SGEMM_N) in ``dtype``, median of repeats.

    bfloat16 products accumulate in float32 inside the kernel and are rounded to bfloat16.
    """
    n = SGEMM_N[device]
    kind = getattr(torch, dtype)
    a = torch.randn(n, n, device=device, dtype=kind)
    b = torch.randn(n, n, device=device, dtype=kind)
    c = torch.empty(n, n, device=device, dtype=kind)
    for _ in range(3):
        torch.mm(a, b, out=c)
    times = []
    for _ in range(repeats):
        tic = stamp()[0]
        torch.mm(a, b, out=c)
        times.append(stamp()[0] - tic)
    flops = 2 * n**3
    return {
        "gflops_median": flops / statistics.median(times) / 1e9,
        "gflops_best": flops / min(times) / 1e9,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "dtype": dtype,
        "n": n,
    }


def forward_flops(model: str, part: str = "all") -> int:
    """Multiply-add FLOPs (2 per MAC) of one sample's forward pass, from the layer shapes.

    Linear: 2·fan_in·fan_out; Conv2d: 2·C_in·C_out·k_h·k_w per output pixel; ConvTranspose2d:
    2·C_in·C_out·k_h·k_w per input pixel. Bias adds and activations are left out (as is usual
    for a roofline: they are O(activations), not O(weights x activations)).
    """
    net = shared_module(model)
    total = 0

    def hook(layer, inputs, output):
        nonlocal total
        if isinstance(layer, nn.Linear):
            total += 2 * layer.in_features * layer.out_features
        elif isinstance(layer, nn.Conv2d):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * layer.in_channels * layer.out_channels * k * output[0].shape[-2:].numel()
        elif isinstance(layer, nn.ConvTranspose2d):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * layer.in_channels * layer.out_channels * k * inputs[0].shape[-2:].numel()

    for layer in net.modules():
        layer.register_forward_hook(hook)
    x = torch.zeros(1, 784) if model == "mlp" else torch.zeros(1, 1, 28, 28)
    with torch.no_grad():
        mu, _ = net.encode(x)
        if part == "all":
            net.decode(mu)
    return total


# ---------------------------------------------------------------------------- driver
def subprocess_json(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {out.returncode}: {tail}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def pythae_status() -> str | None:
    """None when pythae imports here, else why not."""
    if importlib.util.find_spec("pythae") is None:
        return "not installed (pip install --no-deps pythae imageio)"
    probe = subprocess.run(
        [sys.executable, "-c", "import pythae.pipelines"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return "not importable: " + (probe.stderr.strip().splitlines() or ["?"])[-1]
    return None


def fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def summarize(
    runs: list[dict], flops: dict, gflops: dict[str, float]
) -> tuple[list[dict], list[list[str]]]:
    """Median per (model, batch, trainer), its ratios and roofline fractions; the table rows.

    ``gflops`` maps a dtype to its roofline; each row is measured against its trainer's dtype.
    "vs plain" compares with the plain loop at the same precision (bfloat16 rows with the
    autocast loop), "vs examples" and "vs pythae" with those float32 trainers.
    """
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["model"], run["batch"], run["trainer"]), []).append(run)
    summary = []
    for (model, batch, trainer), group in groups.items():
        ok = [r for r in group if "error" not in r]
        row = {"model": model, "batch": batch, "trainer": trainer, "runs": len(ok)}
        if not ok:
            row["error"] = group[0]["error"]
        else:
            for key in (
                "samples_per_second",
                "cpu_per_wall",
                "embed_samples_per_second",
                "test_neg_elbo",
            ):
                row[key] = statistics.median(r[key] for r in ok)
            row["run_seconds"] = statistics.median(r["run_seconds"] for r in ok)
            peak = gflops[trainer_dtype(trainer)] * 1e9
            train_flops = 3 * flops[model]["forward"]  # forward + backward (≈ 2x forward)
            row["train_roofline_fraction"] = row["samples_per_second"] * train_flops / peak
            # Every trainer embeds in float32, whatever it trained in.
            row["embed_roofline_fraction"] = (
                row["embed_samples_per_second"] * flops[model]["encoder"] / gflops["float32"] / 1e9
            )
        summary.append(row)
    rate = {(r["model"], r["batch"], r["trainer"]): r.get("samples_per_second") for r in summary}
    table = []
    for row in sorted(
        summary, key=lambda r: (MODELS.index(r["model"]), r["batch"], TRAINERS.index(r["trainer"]))
    ):
        key = (row["model"], row["batch"])
        plain = "plain-bf16" if row["trainer"] in TRAINER_DTYPES else "plain"
        for base, against in (("examples", "examples"), ("plain", plain), ("pythae", "pythae")):
            ours, theirs = row.get("samples_per_second"), rate.get((*key, against))
            row[f"vs_{base}"] = ours / theirs if ours and theirs else None
        cells = [TRAINER_NAMES[row["trainer"]], MODEL_NAMES[row["model"]], str(row["batch"])]
        if "error" in row:
            cells += [row["error"].replace("|", "/"), "–", "–", "–", "–", "–", "–", "–"]
        else:
            cells += [
                f"{row['samples_per_second']:,.0f}",
                fmt(row["vs_examples"], ".2f") + ("x" if row["vs_examples"] else ""),
                fmt(row["vs_plain"], ".2f") + ("x" if row["vs_plain"] else ""),
                fmt(row["vs_pythae"], ".2f") + ("x" if row["vs_pythae"] else ""),
                f"{row['embed_samples_per_second']:,.0f}",
                f"{100 * row['train_roofline_fraction']:.1f}%",
                f"{100 * row['embed_roofline_fraction']:.1f}%",
                f"{row['test_neg_elbo']:.2f}",
            ]
        table.append(cells)
    return summary, table


def protocol(args: argparse.Namespace, threads: int, gflops: dict[str, float], flops: dict) -> str:
    """The paragraph under the table: how every number in it was measured."""
    n = SGEMM_N[args.device]
    mflops = ", ".join(f"{m} {f['forward'] / 1e6:.2f} MFLOP" for m, f in flops.items())
    text = (
        f"Protocol. MNIST train, {args.rows:,} rows (flattened to 784 for the MLP, 28x28 "
        "images for conv); latent 20, Bernoulli likelihood, Adam lr 1e-3, no validation split, "
        "no early stopping. Each (model, batch, trainer) run is a fresh Python process; the "
        "trainers are interleaved within each repeat and the median over repeats is shown "
        f"({args.repeats} repeat(s) for the MLP, {args.conv_repeats} for conv), "
        f"{threads} torch threads. A run trains {args.epochs} epochs (MLP) or "
        f"{args.conv_epochs} (conv) and the first is a warm-up: train samples/s = rows x "
        "(epochs - 1) / wall time from the end of epoch 1 to the end of the last, stamped by "
        "each trainer's own per-epoch hook (vaekit: `training.train(on_epoch_end=...)`, pythae: "
        "`TrainingCallback.on_log`, plain: after each pass over the DataLoader), so one-off "
        "costs outside the epochs (vaekit's input checks and post-fit diagnostics, pythae's "
        "data checks and model saving) are not in it; the JSON has each run's whole wall time "
        "(`run_seconds`) and a load gauge (`cpu_per_wall`: process CPU time / wall time over the "
        "timed epochs, near the thread count on idle cores for a compute-bound trainer). "
        "Examples loop: pytorch/examples vae/main.py as written, its DataLoader over uint8 "
        "MNIST images converted per item (torchvision's ToTensor); plain loop: the same loop "
        "over a TensorDataset of ready float tensors, a stronger baseline. Both (default "
        "Adam, sigmoid + summed BCE, `loss.item()` per step; that "
        "example's own 784-400-20 MLP, vaekit's layers for conv). pythae "
        f"{_pythae_version()}: `TrainingPipeline` + `pythae.models.VAE` (BCE) around vaekit's "
        "encoder and decoder modules. Embed samples/s: one pass over the training rows after a "
        f"warm-up call: `VAE.transform` for vaekit ({_PREDICT_BATCH:,}-row batches inside, "
        f"{_PREDICT_BATCH_CONV_CPU:,} for a conv model on a CPU), the encoder's μ under "
        "`no_grad` over a DataLoader at the training batch size for the other two. "
        f"Device: {args.device}. Roofline: `torch.mm` on {n}x{n} float32 on it, the median of "
        "15, probed before and after all runs and at the start of every run; the best probe "
        "is the roofline "
        f"({gflops['float32']:.1f} GFLOP/s), so a probe slowed by a noisy neighbour cannot "
        "inflate a fraction. "
        + (
            "bfloat16 rows: mixed precision (matrix multiplies on bfloat16 operands, weights, "
            "Adam and the loss in float32); their training fraction is of `torch.mm` in "
            f"bfloat16, probed the same way ({gflops['bfloat16']:.1f} GFLOP/s), their "
            "embedding (float32 for every trainer) of the float32 roofline, and their 'vs "
            "plain' is against the plain loop under `torch.autocast(bfloat16)`. pythae 0.1.2 "
            "has mixed precision on CUDA only (`amp`, float16). "
            if "bfloat16" in gflops
            else ""
        )
        + "Training FLOPs per sample = 3 x forward (backward "
        "≈ 2x forward), forward = 2 x the multiply-adds of the Linear and conv layers "
        f"({mflops}). Test -ELBO: mean over {args.test_rows:,} MNIST test rows of the BCE at "
        "one z = μ + σ·ε (ε seeded, the same for every trainer) plus the closed-form KL, by "
        "the same function on each trained network, after the same number of epochs."
    )
    return textwrap.fill(text, width=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="MLP epochs per run, incl. 1 warm-up")
    parser.add_argument(
        "--conv-epochs", type=int, default=2, help="conv epochs per run, incl. 1 warm-up"
    )
    parser.add_argument("--repeats", type=int, default=3, help="MLP runs per configuration")
    parser.add_argument("--conv-repeats", type=int, default=1, help="conv runs per configuration")
    parser.add_argument("--rows", type=int, default=60_000, help="training rows (MNIST train)")
    parser.add_argument(
        "--test-rows", type=int, default=10_000, help="rows of MNIST test for -ELBO"
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--trainers", nargs="+", choices=TRAINERS, default=list(TRAINERS))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 2,048 rows, 2 epochs, 1 repeat (1-2 min idle)",
    )
    parser.add_argument(
        "--name", default="speed", help="results file stem under benchmarks/results/"
    )
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)  # TRAINER MODEL BATCH
    parser.add_argument(
        "--device", choices=tuple(SGEMM_N), default="cpu", help="where every trainer runs"
    )
    parser.add_argument("--sgemm", metavar="DTYPE", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.conv_epochs, args.repeats, args.conv_repeats = 2, 2, 1, 1
        args.rows, args.test_rows = 2_048, 1_000
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    if args.sgemm:
        print(json.dumps(sgemm(args.device, args.sgemm)))
        return
    if args.worker:
        trainer, model, batch = args.worker
        epochs = args.epochs if model == "mlp" else args.conv_epochs
        result = worker(
            trainer, model, int(batch), epochs, args.seed, args.rows, args.test_rows, args.device
        )
        print(json.dumps(result))
        return
    if min(args.epochs, args.conv_epochs) < 2:
        parser.error("--epochs and --conv-epochs must be at least 2 (one warm-up epoch + timed)")

    flops = {
        m: {"forward": forward_flops(m), "encoder": forward_flops(m, "encoder")}
        for m in args.models
    }
    if "mlp" in flops:  # the hand count of the issue: 784->400, 400->20 (x2), 20->400->784
        assert flops["mlp"]["forward"] == 2 * (784 * 400 + 2 * 400 * 20 + 20 * 400 + 400 * 784)
    pythae_missing = pythae_status() if "pythae" in args.trainers else None
    dtypes = sorted({"float32", *map(trainer_dtype, args.trainers)})

    def probe_all() -> list[dict]:
        return [subprocess_json(["--sgemm", dtype, "--device", args.device]) for dtype in dtypes]

    roofline = probe_all()
    for probe in roofline:
        print(f"{probe['dtype']} mm: {probe['gflops_median']:.1f} GFLOP/s", flush=True)

    runs = []
    common = ["--epochs", str(args.epochs), "--conv-epochs", str(args.conv_epochs)]
    common += ["--rows", str(args.rows), "--test-rows", str(args.test_rows)]
    common += ["--device", args.device]
    for repeat in range(max(args.repeats, args.conv_repeats)):
        for model, batch, trainer in itertools.product(args.models, args.batches, args.trainers):
            if repeat >= (args.repeats if model == "mlp" else args.conv_repeats):
                continue
            config = {"model": model, "batch": batch, "trainer": trainer, "repeat": repeat}
            if trainer == "pythae" and pythae_missing:
                runs.append({**config, "error": pythae_missing})
                continue
            result = subprocess_json(
                ["--worker", trainer, model, str(batch), "--seed", str(repeat), *common]
            )
            runs.append({**config, **result})
            shown = result.get("error") or (
                f"{result['samples_per_second']:,.0f} samples/s, "
                f"embed {result['embed_samples_per_second']:,.0f}/s, "
                f"-ELBO {result['test_neg_elbo']:.2f}"
            )
            print(f"repeat {repeat} {model} batch {batch} {trainer}: {shown}", flush=True)
    roofline += probe_all()
    # The roofline is the best the machine showed (each probe a median of 15 matmuls), so the
    # fractions are conservative: a probe slowed by a neighbour cannot make a trainer look good.
    gflops = {
        dtype: max(
            [r["gflops_median"] for r in roofline if r["dtype"] == dtype]
            + [
                r["sgemm_gflops"]
                for r in runs
                if "sgemm_gflops" in r and trainer_dtype(r["trainer"]) == dtype
            ]
        )
        for dtype in dtypes
    }

    summary, rows = summarize(runs, flops, gflops)
    threads = machine()["torch_threads"]
    table = markdown_table(
        [
            "trainer",
            "model",
            "batch",
            "train samples/s (median)",
            "vs examples",
            "vs plain (same precision)",
            "vs pythae",
            "embed samples/s",
            "train % of roofline",
            "embed % of roofline",
            "test -ELBO",
        ],
        rows,
    )
    table += "\n\n" + protocol(args, threads, gflops, flops) + "\n"
    payload = {
        "config": {
            k: v for k, v in vars(args).items() if k not in ("worker", "sgemm", "seed", "name")
        },
        "models": MODEL_NAMES,
        "flops_per_sample": flops,
        "sgemm": roofline,
        "sgemm_gflops": gflops,
        "pythae": _pythae_version(),
        "summary": summary,
        "runs": runs,
        "machine": machine(),
    }
    paths = write_results(args.name, payload, table)
    print(table)
    print("written:", *paths)


def _pythae_version() -> str:
    try:
        return importlib.metadata.version("pythae")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    main()
