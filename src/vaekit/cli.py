"""The ``vaekit`` command: a typer app whose commands each call one function of ``jobs``.

A user error (bad file, bad parameter, broken model directory) is printed as one sentence on
stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from . import __version__

app = typer.Typer(
    name="vaekit",
    help="Train autoencoders and VAEs, extract μ(x), compare, generate, detect anomalies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="Named datasets: list them, download them.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

out_console = Console()
err_console = Console(stderr=True)

DATA_HELP = (
    "Dataset name (digits, mnist, fashion-mnist, olivetti; add :train or :test) or a file: "
    ".npy, .npz, .csv, .parquet, IDX (.gz or raw) or a folder of images."
)
DataDir = typer.Option(None, "--data-dir", help="Folder of named datasets (default: $VAEKIT_DATA).")
LabelColumn = typer.Option(None, "--label-column", help="CSV/Parquet column holding labels.")
AsJson = typer.Option(False, "--json", help="Print the result as JSON instead of a table.")


def _call(job: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    """Run a job; turn the errors a user can cause into one line on stderr and exit code 2."""
    from .errors import VaekitError

    try:
        return job(*args, **kwargs)
    except VaekitError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    except FileNotFoundError as exc:
        err_console.print(f"[bold red]error:[/] {exc.filename}: no such file or directory.")
    except PermissionError as exc:
        err_console.print(f"[bold red]error:[/] {exc.filename}: permission denied.")
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]; nothing half-written was left behind.")
        raise typer.Exit(130) from None
    raise typer.Exit(2)


def _print_mapping(title: str, mapping: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    """Two-column table; nested dicts become ``parent.child`` rows."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()

    def add(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for sub, inner in value.items():
                add(f"{key}.{sub}", inner)
            return
        if isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, list):
            value = json.dumps(value)
        table.add_row(key, str(value))

    for key, value in mapping.items():
        if key not in skip:
            add(key, value)
    out_console.print(table)


def _emit(result: dict, as_json: bool, title: str, skip: tuple[str, ...] = ()) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_mapping(title, result, skip)


@app.command()
def demo(
    out: Path | None = typer.Option(None, "--out", help="Also write demo.json into this folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the model."),
    as_json: bool = AsJson,
) -> None:
    """The main job on the embedded digits data: train a VAE and compare μ(x) with PCA."""
    from .jobs import demo as demo_job

    if not as_json:
        out_console.print("[bold]vaekit demo[/]: digits (1797 8x8 images), VAE with latent size 8")
    result = _call(demo_job, out, seed=seed, verbose=not as_json and sys.stderr.isatty())
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    out_console.print(f"split: {result['split']}; classifier: {result['classifier']}")
    table = Table(title="Test accuracy", title_justify="left")
    for column in ("features", "dim", "test accuracy"):
        table.add_column(column)
    for row in result["rows"]:
        table.add_row(row["features"], str(row["dim"]), f"{row['accuracy']:.4f}")
    out_console.print(f"μ(x) of the test split: shape {tuple(result['mu_shape'])}")
    out_console.print(table)
    out_console.print(
        f"VAE: {result['vae_epochs']} epochs in {result['vae_fit_seconds']} s; "
        f"test negative ELBO {result['test_neg_elbo']} nats"
    )
    if "path" in result:
        out_console.print(f"written: {result['path']}")


@app.command()
def train(
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(..., "--out", help="Run directory to create."),
    model: str = typer.Option("vae", "--model", help="vae or ae (plain autoencoder)."),
    latent_dim: int = typer.Option(16, "--latent-dim", help="Size of the latent space."),
    beta: float = typer.Option(1.0, "--beta", help="Weight of the KL term (VAE)."),
    epochs: int = typer.Option(
        100, "--epochs", help="Maximum epochs (early stopping may end sooner)."
    ),
    batch_size: int = typer.Option(128, "--batch-size"),
    learning_rate: float = typer.Option(1e-3, "--learning-rate"),
    architecture: str = typer.Option("auto", "--architecture", help="auto, mlp or conv."),
    likelihood: str = typer.Option("auto", "--likelihood", help="auto, bernoulli or gaussian."),
    kl_warmup_epochs: float = typer.Option(0.0, "--kl-warmup-epochs", help="Linear KL warm-up."),
    free_bits: float = typer.Option(0.0, "--free-bits", help="Free nats per latent dimension."),
    validation_fraction: float = typer.Option(0.1, "--validation-fraction"),
    seed: int | None = typer.Option(0, "--seed", help="Random seed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1..."),
    data_dir: Path | None = DataDir,
    label_column: str | None = LabelColumn,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model already in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = AsJson,
) -> None:
    """Train a VAE (or AE) on DATA and save it to --out."""
    from .jobs import train_run

    params: dict[str, Any] = {
        "latent_dim": latent_dim,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "architecture": architecture,
        "likelihood": likelihood,
        "validation_fraction": validation_fraction,
        "random_state": seed,
        "device": device,
        "verbose": not quiet,
    }
    if model == "vae":
        params.update(beta=beta, kl_warmup_epochs=kl_warmup_epochs, free_bits=free_bits)
    result = _call(
        train_run,
        data,
        out,
        model=model,
        data_dir=data_dir,
        label_column=label_column,
        overwrite=overwrite,
        **params,
    )
    _emit(result, as_json, f"trained {result['model']} -> {result['path']}", skip=("versions",))


@app.command()
def embed(
    run: Path = typer.Argument(..., help="Run directory written by `vaekit train`."),
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(..., "--out", help="Output file: .npy, .csv or .parquet."),
    with_logvar: bool = typer.Option(False, "--with-logvar", help="Also write log σ² (VAE)."),
    data_dir: Path | None = DataDir,
    label_column: str | None = LabelColumn,
    as_json: bool = AsJson,
) -> None:
    """Write μ(x) of DATA under the model in RUN to --out, batch by batch."""
    from .jobs import embed_run

    result = _call(
        embed_run,
        run,
        data,
        out,
        with_logvar=with_logvar,
        data_dir=data_dir,
        label_column=label_column,
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        out_console.print(
            f"wrote {result['rows']} x {len(result['columns'])} ({result['format']}) to "
            f"{result['path']}"
        )


@app.command()
def info(
    run: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = AsJson,
) -> None:
    """Describe a saved model: parameters, data, versions, final losses."""
    from .jobs import run_info

    _emit(_call(run_info, run), as_json, f"model in {run}")


@datasets_app.command("list")
def datasets_list() -> None:
    """The named datasets and where they are read from."""
    from .datasets import DATASET_NAMES

    for name in DATASET_NAMES:
        where = "embedded (scikit-learn)" if name == "digits" else "--data-dir / $VAEKIT_DATA"
        out_console.print(f"{name:15s} {where}")


@datasets_app.command("download")
def datasets_download(
    name: str = typer.Argument(..., help="mnist or fashion-mnist."),
    data_dir: Path | None = DataDir,
    base_url: str | None = typer.Option(None, "--base-url", help="Mirror to fetch from."),
    as_json: bool = AsJson,
) -> None:
    """Fetch the official files of NAME into --data-dir, verifying their md5."""
    from .download import download_dataset

    result = _call(download_dataset, name, data_dir, base_url=base_url, progress=not as_json)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for f in result["files"]:
        out_console.print(f"{f['status']:10s} {f['name']}  md5 {f['md5']}")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"vaekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """vaekit: autoencoders and VAEs from the shell."""


def main() -> None:
    """Console-script entry point."""
    app()
