"""The ``vaekit`` command: a typer app whose commands each call one library function.

``train``, ``embed`` and ``info`` call :mod:`vaekit.jobs`; ``demo``, ``evaluate``, ``visualize`` and
``report`` call :mod:`vaekit.showcase`; ``generate``, ``interpolate`` and ``traverse`` call
:mod:`vaekit.generation_jobs`; ``detect`` :mod:`vaekit.anomaly`, ``sweep`` :mod:`vaekit.sweep`,
``export`` :mod:`vaekit.export`. ``train`` also runs under ``torchrun`` (see
:mod:`vaekit.distributed`).

A user error (bad file, bad parameter, broken model directory) is printed as one sentence on
stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .errors import ConfigError

app = typer.Typer(
    name="vaekit",
    help="Train autoencoders and VAEs, extract μ(x), compare, generate, detect anomalies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="Named datasets: list them, download them.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

# emoji=False: rich would print "mnist:train:" (a dataset name in a caption) as "mnist🚋".
out_console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

DATA_HELP = (
    "Dataset name (digits, mnist, fashion-mnist, olivetti; add :train or :test) or a file: "
    ".npy, .npz, .csv, .parquet, IDX (.gz or raw) or a folder of images."
)
DataDir = typer.Option(None, "--data-dir", help="Folder of named datasets (default: $VAEKIT_DATA).")
Task = typer.Option(
    "auto",
    "--task",
    help="What the labels are: classification, regression, or auto (classes when they are "
    "text, or whole numbers with few distinct values or many rows each).",
)
LabelColumn = typer.Option(None, "--label-column", help="CSV/Parquet column holding labels.")
RunLabelColumn = typer.Option(
    None,
    "--label-column",
    help="CSV/Parquet column holding labels; default: the one RUN was trained with, where "
    "DATA has it.",
)
AsJson = typer.Option(False, "--json", help="Print the result as JSON instead of a table.")


# The library's messages name its parameters; here the user typed the flags.
_FLAGS = {
    "random_state": "--seed",
    "n_jobs": "--jobs",
    "label_column": "--label-column",
    **{
        name: "--" + name.replace("_", "-")
        for name in (
            "max_points", "augment", "latent_dim", "epochs", "batch_size", "learning_rate",
            "kl_warmup_epochs", "free_bits", "hidden_dims", "conv_channels", "patience", "beta",
            "validation_fraction", "device", "lr_schedule", "architecture", "likelihood",
            "contamination", "n_samples", "opset", "precision", "max_grad_norm",
            "dynamic_binarization", "model", "kl_schedule", "output_variance", "method",
            "format", "task",
        )
    },
}  # fmt: skip
_LEADING_PARAMETER = re.compile(r"^(\w+)(?= must | applies )")
# `name='value'` after a space or at the start, and `name=4` (or 1e-05) after a space or a
# bracket: a path such as runs/beta=4, or one that opens a message ("beta=4 is not a model
# directory"), stays as it is, and so does beta=4/x or beta=4.5/x.
_ASSIGNED_PARAMETER = re.compile(
    r"(?<![^\s(])(\w+)=(?=')|(?<=[\s(])(\w+)=(?=-?\d[\d.]*(?:e[+-]?\d+)?(?![\w/]|\.[\w/]))"
)
# A parameter named within a sentence, "(kl_warmup_epochs)": only names with an underscore,
# which prose does not use ("lower beta" stays), between spaces or brackets and punctuation.
_NAMED_PARAMETER = re.compile(r"(?<![^\s(])([a-z]+(?:_[a-z]+)+)(?=[\s),.;:]|$)")
# A switch as Python sets it, "dynamic_binarization=True": the flag alone.
_ENABLED_PARAMETER = re.compile(r"(?<![^\s(])(\w+)=True\b")
# What the Python API accepts besides what a flag can give.
_PYTHON_ONLY = {
    "must be None, an integer in [0, 2**32 - 1] or a numpy RandomState": (
        "must be an integer in [0, 2**32 - 1]"
    ),
    "must be a positive number or None": "must be a positive number",
    "must be None or one of": "must be one of",
    ", -1 for one per CPU core, or None;": " or -1 for one per CPU core;",
    " (resume=False)": "",
    "or drop augment.": "or drop --augment.",
    "resume it with Autoencoder.": "resume it with --model ae.",
    "resume it with VAE.": "resume it with --model vae.",
}


def _as_flags(message: str) -> str:
    """The parameters a message names, as flags: ``random_state must be...`` -> ``--seed must
    be...``, ``use likelihood='gaussian'`` -> ``use --likelihood 'gaussian'``."""

    def flag(match: re.Match[str], joint: str) -> str:
        name = next(group for group in match.groups() if group is not None)
        return _FLAGS[name] + joint if name in _FLAGS else match.group(0)

    for python, shell in _PYTHON_ONLY.items():
        message = message.replace(python, shell)
    message = _LEADING_PARAMETER.sub(lambda m: flag(m, ""), message)
    message = _ENABLED_PARAMETER.sub(lambda m: flag(m, ""), message)
    message = _NAMED_PARAMETER.sub(lambda m: flag(m, ""), message)
    return _ASSIGNED_PARAMETER.sub(lambda m: flag(m, " "), message)


def _show_warning(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    """A warning as one ``warning:`` line on stderr, not Python's file:line and source line.

    Under torchrun only rank 0 prints: every rank reads the same data and options, so the
    others would print the same lines again.
    """
    from .distributed import is_main_process
    from .errors import ConfigError

    try:
        if not is_main_process():
            return
    except ConfigError:  # a half-set torchrun environment: fails on its own, print meanwhile
        pass
    err_console.print(
        f"[bold yellow]warning:[/] {escape(_as_flags(str(message)))}",
        highlight=False,
        soft_wrap=True,
    )


def _call(
    job: Callable[..., dict],
    *args: Any,
    on_interrupt: str | Callable[[], str] = "",
    **kwargs: Any,
) -> dict:
    """Run a job; turn the errors a user can cause into one line on stderr and exit code 2.

    ``on_interrupt`` is added to the line printed after Ctrl-C (what to do next); a function
    is asked for it then.
    """
    from .errors import VaekitError
    from .interrupts import Terminated, sigterm_as_interrupt

    # `--out=~/run` reaches us with the ~ unexpanded (the shell expands it only after a space).
    args = tuple(a.expanduser() if isinstance(a, Path) else a for a in args)
    kwargs = {k: v.expanduser() if isinstance(v, Path) else v for k, v in kwargs.items()}
    try:
        with sigterm_as_interrupt(), warnings.catch_warnings():
            warnings.showwarning = _show_warning  # restored when the block ends
            # The commands read a table's columns into an array, having checked its names
            # against the model's themselves (jobs.check_columns): scikit-learn's warning that
            # the array has none would be noise, and wrong about the file.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return job(*args, **kwargs)
    except VaekitError as exc:
        _print_error(_as_flags(str(exc)))  # escaped: a path or column name may hold [brackets]
    except FileNotFoundError as exc:
        _print_error(f"{exc.filename}: no such file or directory.")
    except PermissionError as exc:
        _print_error(f"{exc.filename}: permission denied.")
    except OSError as exc:  # a folder where --out names a file, a full disk, ...
        # For a rename, filename is our temporary file and filename2 the user's path.
        where = exc.filename2 or exc.filename
        reason = exc.strerror or str(exc)
        _print_error(f"{where}: {reason.lower()}." if where else f"{reason}.")
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)  # SIGTERM: 128 + 15, as the shell reports it
        err_console.print(
            f"[bold red]{'terminated' if terminated else 'interrupted'}[/]; nothing "
            "half-written was left behind."
            + escape(on_interrupt() if callable(on_interrupt) else on_interrupt),
            highlight=False,
        )
        raise typer.Exit(143 if terminated else 130) from None
    raise typer.Exit(2)


def _print_error(message: str) -> None:
    """``error: message`` as one line on stderr, whatever the message holds and the width."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _print_mapping(title: str, mapping: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    """Two-column table; nested dicts become ``parent.child`` rows."""
    table = Table(title=escape(title), show_header=False, title_justify="left")
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
        table.add_row(escape(key), escape(str(value)))  # paths and names may hold [brackets]

    for key, value in mapping.items():
        if key not in skip:
            add(key, value)
    out_console.print(table)


def _emit(result: dict, as_json: bool, title: str, skip: tuple[str, ...] = ()) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_mapping(title, result, skip)


def _print_comparison(comparison: dict[str, Any]) -> None:
    """One table per task: a row per feature set, a column per model, headline metrics."""
    from .evaluation.compare import HEADLINE  # the summary's metrics; the report has them all

    rows = comparison["rows"]
    for task in dict.fromkeys(row["task"] for row in rows):
        metrics = HEADLINE[task]
        task_rows = [row for row in rows if row["task"] == task]
        models = list(dict.fromkeys(row["model"] for row in task_rows))
        table = Table(title=f"{task} ({' / '.join(metrics)}, test split)", title_justify="left")
        table.add_column("features")
        table.add_column("dim", justify="right")
        for model in models:
            table.add_column(model, justify="right")
        for features in dict.fromkeys(row["features"] for row in task_rows):
            cells = {r["model"]: r for r in task_rows if r["features"] == features}
            dim = next(iter(cells.values()))["dim"]
            shown = [
                " / ".join(f"{cells[m][k]:.3f}" for k in metrics) if m in cells else "-"
                for m in models
            ]
            table.add_row(escape(features), str(dim), *shown)
        out_console.print(table)
        chance = comparison["protocol"].get(task, {}).get("chance")
        if chance:  # matched accuracy and NMI are far from 0 for random clusters
            levels = " / ".join(f"{chance[k]:.3f}" for k in metrics)
            out_console.print(
                f"chance: {levels} (uniformly random cluster labels, mean of {chance['draws']} "
                "draws): scores near it are no better than guessing",
                highlight=False,
                markup=False,
            )


def _print_figures(result: dict[str, Any]) -> None:
    for name, meta in result.get("figures", {}).items():
        out_console.print(
            f"  {meta.get('file', name)}: {meta.get('caption', '')}", highlight=False, markup=False
        )


@app.command()
def demo(
    out: Path = typer.Option(
        Path("vaekit-demo"), "--out", help="Folder for report.html, results.json and figures/."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the models and the draws."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = AsJson,
) -> None:
    """The showcase on digits: train an AE and a VAE, compare μ(x) with raw / PCA / AE, report."""
    from .showcase import demo as demo_job

    if not as_json:
        out_console.print(
            "[bold]vaekit demo[/]: digits (1797 8x8 images), AE and VAE with latent size 8, "
            "compared with raw pixels and PCA(8)"
        )
    # Progress goes to stderr: a bar on a terminal, a line per step or epoch elsewhere.
    result = _call(demo_job, out, seed=seed, verbose=not (quiet or as_json))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    out_console.print(f"split: {result['split']}", highlight=False, markup=False)
    _print_comparison(result["comparison"])
    vae, ae = result["models"]["vae"], result["models"]["ae"]
    out_console.print(
        f"VAE: {vae['epochs_run']} epochs in {vae['fit_seconds']} s, test negative ELBO "
        f"{vae['test_neg_elbo']} nats, {vae['active_units']} of {result['latent_dim']} active "
        f"units; AE: {ae['epochs_run']} epochs in {ae['fit_seconds']} s",
        highlight=False,
        markup=False,
    )
    out_console.print(f"report: {result['report']}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="Run directory written by `vaekit train`."),
    data: str = typer.Argument(..., help="Labelled training data. " + DATA_HELP),
    test: str | None = typer.Option(
        None, "--test", help="Labelled test data (default: a 75/25 split of DATA with --seed)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for report.html, results.json, figures/ (default: RUN/evaluate).",
    ),
    data_dir: Path | None = DataDir,
    label_column: str | None = RunLabelColumn,
    seed: int = typer.Option(0, "--seed", help="Seed of the split, PCA, the AE and the models."),
    jobs: int = typer.Option(
        -1,
        "--jobs",
        "-j",
        help="Feature sets x tasks scored at once, in worker processes (-1: one per CPU core, "
        "1: one after the other); the scores do not depend on it.",
    ),
    task: str = Task,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = AsJson,
) -> None:
    """Compare μ(x) of RUN with raw inputs, PCA and a plain AE on DATA's labels."""
    from .showcase import evaluate_run

    result = _call(
        evaluate_run,
        run,
        data,
        test=test,
        out=out,
        data_dir=data_dir,
        label_column=label_column,
        random_state=seed,
        n_jobs=jobs,
        verbose=not (quiet or as_json),
        task=task,
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    out_console.print(
        f"split: {result['comparison']['protocol']['split']}", highlight=False, markup=False
    )
    _print_comparison(result["comparison"])
    note = result["comparison"]["protocol"].get("note")
    if note:
        out_console.print(f"[bold yellow]note:[/] {escape(note)}", highlight=False)
    out_console.print(f"report: {result['report']}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def visualize(
    run: Path = typer.Argument(..., help="Run directory written by `vaekit train`."),
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for report.html, results.json, figures/ (default: RUN/visualize).",
    ),
    method: str = typer.Option(
        "auto",
        "--method",
        help="Latent scatter: auto (direct if 2-D, else t-SNE), direct, tsne, umap or all.",
    ),
    max_points: int = typer.Option(5000, "--max-points", help="Rows used at most (seeded)."),
    data_dir: Path | None = DataDir,
    label_column: str | None = RunLabelColumn,
    seed: int = typer.Option(0, "--seed", help="Seed of the subsample and the embeddings."),
    as_json: bool = AsJson,
) -> None:
    """Latent scatter, reconstructions, loss curves and KL per dimension of RUN on DATA."""
    from .showcase import visualize_run

    result = _call(
        visualize_run,
        run,
        data,
        out=out,
        method=method,
        data_dir=data_dir,
        label_column=label_column,
        max_points=max_points,
        random_state=seed,
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print_mapping(result["title"], result["summary"], skip=("kl_per_dim",))
    _print_figures(result)
    out_console.print(f"report: {result['report']}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def sweep(
    data: str = typer.Argument(..., help="Training data. " + DATA_HELP),
    latent_dims: str = typer.Option(
        "2,8,16,32", "--latent-dims", help="Latent sizes to try, comma-separated."
    ),
    betas: str = typer.Option("0.5,1,4", "--betas", help="KL weights β >= 0, comma-separated."),
    out: Path = typer.Option(
        Path("vaekit-sweep"),
        "--out",
        help="Folder for results.json/.md/.csv, figures/ and report.html.",
    ),
    epochs: int = typer.Option(
        30, "--epochs", help="Maximum epochs per setting (early stopping may end sooner)."
    ),
    test: str | None = typer.Option(
        None, "--test", help="Test data (default: 25% of DATA, stratified by label, --seed)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, every VAE and the models."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1..."),
    precision: str = typer.Option(
        "float32", "--precision", help="float32, or bfloat16 (mixed precision; see train)."
    ),
    data_dir: Path | None = DataDir,
    label_column: str | None = LabelColumn,
    task: str = Task,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = AsJson,
) -> None:
    """Train one VAE per (latent size, β) on DATA; compare them on held-out data; suggest one."""
    from .sweep import sweep_run

    result = _call(
        sweep_run,
        data,
        out,
        latent_dims,
        betas,
        test=test,
        data_dir=data_dir,
        label_column=label_column,
        random_state=seed,
        verbose=not (quiet or as_json),
        task=task,
        epochs=epochs,
        device=device,
        precision=precision,
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print_sweep(result)
    suggestion = result["summary"]
    command = [
        "vaekit train", shlex.quote(data), "--latent-dim", str(suggestion["latent_dim"]),
        "--beta", f"{suggestion['beta']:g}", "--epochs", str(epochs), "--seed", str(seed),
    ]  # fmt: skip
    if precision != "float32":
        command += ["--precision", shlex.quote(precision)]
    if label_column is not None:
        command += ["--label-column", shlex.quote(label_column)]
    out_console.print(
        f"[bold]to train it on all of DATA:[/] {escape(' '.join(command))} --out RUN",
        highlight=False,
        soft_wrap=True,
    )


def _print_sweep(result: dict[str, Any]) -> None:
    """The sweep table (suggested row in bold), the suggestion and why, and the files."""
    summary, metric = result["summary"], result["downstream"]["metric"]
    read = "the CV and val columns" if metric else "the val column"  # no labels: no scores
    title = (
        f"{escape(result['title'])} (test split, but for {read}, which the suggestion reads; "
        "nats per sample)"
    )
    # No vertical rules and short score names: at 80 columns (a pipe, a CI log) rich would
    # cut the headers to "colla…", "accura…" and "accur…" otherwise.
    table = Table(box=box.SIMPLE_HEAD)
    short = {"accuracy": "acc", "r2": "R²"}.get(metric, metric)
    scores = (f"test {short}", f"CV {short}") if metric else ()
    names = ("k", "β", "recon NLL", "KL", "-ELBO", "active", "collapsed", *scores, "val -ELBO")
    for name in names:
        longest = max(len(word) for word in name.split())  # headers wrap between words only
        table.add_column(
            name, justify="left" if name == "collapsed" else "right", min_width=longest
        )
    for row in result["comparison"]["rows"]:
        score, cv_score = row["downstream_score"], row.get("cv_score")
        val = row.get("val_neg_elbo")
        score_cells = (
            []
            if not metric
            else ["-" if value is None else f"{value:.3f}" for value in (score, cv_score)]
        )
        table.add_row(
            str(row["latent_dim"]),
            f"{row['beta']:g}",
            f"{row['test_recon_nll']:.2f}",
            f"{row['test_kl']:.2f}",
            f"{row['test_neg_elbo']:.2f}",
            f"{row['active_units']}/{row['latent_dim']}",
            "yes" if row["collapsed"] else "no",
            *score_cells,
            "-" if val is None else f"{val:.2f}",
            style="bold green" if row["setting"] == summary["suggested"] else None,
        )
    # The title on its own line: as a table title, rich dropped a character at each wrap.
    out_console.print(title, highlight=False)
    out_console.print(table)
    note = result["downstream"].get("note")
    if note:
        out_console.print(f"[bold yellow]note:[/] {escape(note)}", highlight=False)
    out_console.print(f"[bold]suggested:[/] {escape(summary['reason'])}", highlight=False)
    out_console.print(f"[bold]rule:[/] {escape(summary['rule'])}", highlight=False)
    for path in (result["table_md"], result["table_csv"], result["report"]):
        out_console.print(f"wrote: {path}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def report(
    path: Path = typer.Argument(
        ...,
        help="Output folder of evaluate / visualize / sweep / demo, or a folder holding such "
        "(up to 3 levels down).",
    ),
    as_json: bool = AsJson,
) -> None:
    """Rebuild report.html from the saved results.json and figures; nothing is retrained.

    Under a folder of several outputs, each that can be rebuilt is, and the command then exits
    with code 2 if any could not (each one's error on stderr).
    """
    from .showcase import report_run

    result = _call(report_run, path)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for written in result["reports"]:
            out_console.print(f"rebuilt: {written}", highlight=False, markup=False, soft_wrap=True)
    for why in result["failed"].values():  # the others were rebuilt; these were not
        _print_error(_as_flags(why))
    if result["failed"]:
        raise typer.Exit(2)


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
    batch_size: int = typer.Option(
        128, "--batch-size", help="Rows per training step (per process under torchrun)."
    ),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", help="Adam's step size."),
    lr_schedule: str = typer.Option(
        "constant", "--lr-schedule", help="constant, or cosine: decay to 0 over --epochs."
    ),
    architecture: str = typer.Option("auto", "--architecture", help="auto, mlp or conv."),
    likelihood: str = typer.Option("auto", "--likelihood", help="auto, bernoulli or gaussian."),
    kl_warmup_epochs: float = typer.Option(
        0.0, "--kl-warmup-epochs", help="Length of the KL warm-up in epochs (VAE)."
    ),
    kl_schedule: str = typer.Option(
        "linear",
        "--kl-schedule",
        help="How β ramps up over --kl-warmup-epochs: linear, cyclical (the ramp repeated) or "
        "constant (VAE).",
    ),
    free_bits: float = typer.Option(
        0.0, "--free-bits", help="Free nats per latent dimension (VAE)."
    ),
    dynamic_binarization: bool = typer.Option(
        False,
        "--dynamic-binarization",
        help="Train on x ~ Bernoulli(x), redrawn every batch (VAE).",
    ),
    augment: str | None = typer.Option(
        None,
        "--augment",
        help="affine: train on images rotated by up to 10 degrees and shifted by up to 10%, "
        "drawn afresh every batch (images only).",
    ),
    output_variance: str = typer.Option(
        "learned",
        "--output-variance",
        help="Gaussian likelihood: the decoder's variance per feature, learned or a fixed "
        "number (in standardized units).",
    ),
    max_grad_norm: float | None = typer.Option(
        None, "--max-grad-norm", help="Clip the gradient norm to this (default: no clipping)."
    ),
    contamination: str = typer.Option(
        "auto",
        "--contamination",
        help="Share of outliers that sets the stored anomaly threshold for `vaekit detect` "
        "(0 < c <= 0.5); auto: 0.05.",
    ),
    validation_fraction: float = typer.Option(
        0.1,
        "--validation-fraction",
        help="Share of DATA held out for early stopping, the loss curves and the threshold.",
    ),
    patience: int = typer.Option(
        10, "--patience", help="Epochs without validation improvement before stopping; 0: never."
    ),
    hidden_dims: str | None = typer.Option(
        None,
        "--hidden-dims",
        help="MLP layer widths, comma-separated (default: 512,256); a conv model uses the last "
        "as its dense layer's width.",
    ),
    conv_channels: str | None = typer.Option(
        None,
        "--conv-channels",
        help="Conv channels per level, comma-separated (default: 32,64,128,256).",
    ),
    seed: int | None = typer.Option(0, "--seed", help="Random seed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1..."),
    precision: str = typer.Option(
        "float32",
        "--precision",
        help="float32, or bfloat16: mixed precision (bfloat16 matrix multiplies, float32 "
        "weights and losses), faster on CPUs with AVX512-BF16 or AMX and recent GPUs.",
    ),
    data_dir: Path | None = DataDir,
    label_column: str | None = LabelColumn,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model already in --out."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from its last checkpoint."
    ),
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
        "lr_schedule": lr_schedule,
        "architecture": architecture,
        "likelihood": likelihood,
        "augment": augment,
        "validation_fraction": validation_fraction,
        "max_grad_norm": max_grad_norm,
        "random_state": seed,
        "device": device,
        "precision": precision,
        "verbose": not (quiet or as_json),
    }
    vae_only = {
        "--beta": (beta, 1.0),
        "--kl-warmup-epochs": (kl_warmup_epochs, 0.0),
        "--kl-schedule": (kl_schedule, "linear"),
        "--free-bits": (free_bits, 0.0),
        "--dynamic-binarization": (dynamic_binarization, False),
    }
    if model == "vae":
        params.update(
            beta=beta,
            kl_warmup_epochs=kl_warmup_epochs,
            kl_schedule=kl_schedule,
            free_bits=free_bits,
            dynamic_binarization=dynamic_binarization,
        )

    def job() -> dict:  # the option parsing inside the job, so its errors are reported alike
        if model == "ae":  # an AE has no KL term: say so rather than silently drop the option
            given = [name for name, (value, default) in vae_only.items() if value != default]
            if given:
                raise ConfigError(
                    f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to "
                    f"--model vae; drop {'it' if len(given) == 1 else 'them'} or train a VAE."
                )
        params["patience"] = _patience(patience)
        params["output_variance"] = _word_or_number(output_variance, "--output-variance", "learned")
        params["contamination"] = _word_or_number(contamination, "--contamination", "auto")
        for name, text in (("hidden_dims", hidden_dims), ("conv_channels", conv_channels)):
            if text is not None:
                params[name] = _widths(text, "--" + name.replace("_", "-"))
        return train_run(
            data,
            out,
            model=model,
            data_dir=data_dir,
            label_column=label_column,
            overwrite=overwrite,
            resume=resume,
            **params,
        )

    from .checkpoint import CHECKPOINT_FILE

    checkpoint = out.expanduser() / CHECKPOINT_FILE

    def version() -> tuple[int, int] | None:
        """Which checkpoint file is there: each is written anew and renamed into place."""
        if not checkpoint.exists():
            return None
        status = checkpoint.stat()
        return status.st_ino, status.st_mtime_ns

    before = version()  # an earlier run's, which --overwrite would replace

    def after_interrupt() -> str:
        # Only a finished epoch writes a checkpoint; before one, a new run folder is removed.
        if version() not in (None, before) or (resume and before is not None):
            again = "with --resume instead of --overwrite" if overwrite else "with --resume"
            return f" To go on from the last finished epoch, run the same command {again}."
        return " No epoch had finished, so nothing was kept: the same command starts over."

    result = _call(job, on_interrupt=after_interrupt)
    from .distributed import is_main_process

    if is_main_process():  # under torchrun, one summary for the job, not one per rank
        _emit(result, as_json, f"trained {result['model']} -> {result['path']}", skip=("versions",))


def _patience(value: int) -> int | None:
    """--patience N: N >= 1 epochs, or 0 for no early stopping (the estimator's None)."""
    if value < 0:
        raise ConfigError(f"--patience must be 0 (never stop early) or more, got {value}.")
    return value or None


def _word_or_number(text: str, option: str, word: str) -> str | float:
    """An option that takes one keyword or a number: ``word`` itself, or the number's float;
    the estimator checks the number's range."""
    if text.strip().lower() == word:
        return word
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{option} must be {word} or a number; got {text!r}.") from None


def _widths(text: str, option: str) -> tuple[int, ...]:
    """'512,256' -> (512, 256); a clear error for anything but positive integers."""
    items = [item.strip() for item in text.split(",")]
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if not all(item.isdecimal() and int(item) > 0 for item in items):
        raise ConfigError(
            f"{option} must be comma-separated positive integers, e.g. 512,256; got {text!r}."
        )
    return tuple(int(item) for item in items)


@app.command()
def embed(
    run: Path = typer.Argument(..., help="Run directory written by `vaekit train`."),
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output file: .npy, .csv or .parquet (the last two also hold the labels, and for "
        "a folder of images each image's file).",
    ),
    with_logvar: bool = typer.Option(False, "--with-logvar", help="Also write log σ² (VAE)."),
    data_dir: Path | None = DataDir,
    label_column: str | None = RunLabelColumn,
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
            f"{result['path']}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@app.command()
def detect(
    run: Path = typer.Argument(..., help="Run directory written by `vaekit train`."),
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="CSV to write: index, score, is_anomaly (and label when known, file for a folder of "
        "images); default: RUN/anomaly_scores.csv.",
    ),
    score: str = typer.Option(
        "auto",
        "--score",
        help="elbo (-ELBO; VAE), recon (reconstruction error), nll (-log p(x), IWAE; VAE), "
        "excess (-ELBO minus the pixels' own entropy; images in [0, 1]), excess_per_ink "
        "(excess / total intensity) or auto (elbo for a VAE, recon for an AE). Higher = more "
        "anomalous.",
    ),
    contamination: float | None = typer.Option(
        None,
        "--contamination",
        help="Flag this share of DATA's rows, the top scores to the nearest row (rows tied "
        "across it: all or none, the nearer) (0 < c <= 0.5). Default: the threshold stored at fit "
        "(the least typical share of the validation rows given by train's --contamination, "
        "5% by default), for the model's own score only.",
    ),
    anomaly_label: str | None = typer.Option(
        None,
        "--anomaly-label",
        help="Label(s) of the truly anomalous rows (comma-separated): reports AUROC and AP.",
    ),
    k: int | None = typer.Option(
        None, "--k", help="Importance samples per row for --score nll (default 100)."
    ),
    data_dir: Path | None = DataDir,
    label_column: str | None = RunLabelColumn,
    as_json: bool = AsJson,
) -> None:
    """Score DATA's rows for anomalies with the model in RUN; write the scores to --out."""
    from .anomaly import detect_run

    result = _call(
        detect_run,
        run,
        data,
        out,
        score=score,
        contamination=contamination,
        anomaly_label=anomaly_label,
        k=k,
        data_dir=data_dir,
        label_column=label_column,
    )
    _emit(result, as_json, f"anomaly scores -> {result['path']}")


@app.command()
def info(
    run: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = AsJson,
) -> None:
    """Describe a saved model: parameters, data, versions, final losses."""
    from .jobs import run_info

    _emit(_call(run_info, run), as_json, f"model in {run}")


@app.command()
def export(
    run: Path = typer.Argument(..., help="Run directory written by `vaekit train`."),
    out: Path | None = typer.Option(
        None, "--out", help="Output file; its folder must exist (default: RUN/encoder.onnx)."
    ),
    fmt: str = typer.Option("onnx", "--format", help="Export format: onnx."),
    opset: int | None = typer.Option(None, "--opset", help="ONNX opset, 11 to 20 (default 17)."),
    as_json: bool = AsJson,
) -> None:
    """Export the μ-encoder of RUN (input scaling included, dynamic batch) for serving."""
    from .export import export_run

    result = _call(export_run, run, out, format=fmt, opset=opset)
    _emit(result, as_json, f"exported μ-encoder -> {result['path']}")


@datasets_app.command("list")
def datasets_list() -> None:
    """The named datasets and where they are read from."""
    from .datasets import DATASET_NAMES

    for name in DATASET_NAMES:
        where = "embedded (scikit-learn)" if name == "digits" else "--data-dir / $VAEKIT_DATA"
        out_console.print(f"{name:15s} {where}", highlight=False, markup=False)


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
        out_console.print(
            f"{f['status']:10s} {f['name']}  md5 {f['md5']}", highlight=False, markup=False
        )


def _generation_out(default: str) -> Any:
    """--out of generate / interpolate / traverse, whose default file is RUN/<default>."""
    return typer.Option(
        None,
        "--out",
        help="Output file: .png (an image grid; image models) or .npy (the array); default: "
        f"RUN/{default}.png for image models, else RUN/{default}.npy.",
    )


@app.command()
def generate(
    run: Path = typer.Argument(..., help="Run directory of a VAE, written by `vaekit train`."),
    n: int = typer.Option(64, "-n", "--n-samples", help="Number of samples."),
    out: Path | None = _generation_out("samples"),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws z ~ N(0, I)."),
    as_json: bool = AsJson,
) -> None:
    """Decode draws from the prior of the VAE in RUN to --out."""
    from .generation_jobs import generate_run

    result = _call(generate_run, run, n, out, seed=seed)
    _emit(result, as_json, f"prior samples -> {result['path']}")


@app.command()
def interpolate(
    run: Path = typer.Argument(..., help="Run directory written by `vaekit train`."),
    data: str = typer.Argument(..., help=DATA_HELP),
    i_from: int = typer.Option(..., "--from", help="Row of DATA the path starts at (0-based)."),
    i_to: int = typer.Option(..., "--to", help="Row of DATA the path ends at (0-based)."),
    steps: int = typer.Option(10, "--steps", help="Points on the path, endpoints included."),
    out: Path | None = _generation_out("interpolation"),
    method: str = typer.Option(
        "both", "--method", help="linear, spherical (slerp) or both (one grid row each)."
    ),
    data_dir: Path | None = DataDir,
    label_column: str | None = RunLabelColumn,
    as_json: bool = AsJson,
) -> None:
    """Decode the latent path between μ(x) of two rows of DATA to --out."""
    from .generation_jobs import interpolate_run

    result = _call(
        interpolate_run,
        run,
        data,
        i_from,
        i_to,
        steps,
        out=out,
        method=method,
        data_dir=data_dir,
        label_column=label_column,
    )
    _emit(result, as_json, f"interpolation -> {result['path']}")


@app.command()
def traverse(
    run: Path = typer.Argument(..., help="Run directory written by `vaekit train`."),
    data: str | None = typer.Argument(
        None, help="Optional, with --index: centre on μ(x) of that row. " + DATA_HELP
    ),
    out: Path | None = _generation_out("traversal"),
    index: int | None = typer.Option(None, "--index", help="Row of DATA to centre on."),
    dims: str | None = typer.Option(
        None, "--dims", help="Latent dimensions to vary, e.g. 0,1,2 (default: all)."
    ),
    limit: float = typer.Option(3.0, "--range", help="Each dimension runs from -R to R."),
    steps: int = typer.Option(9, "--steps", help="Values per dimension."),
    data_dir: Path | None = DataDir,
    label_column: str | None = RunLabelColumn,
    as_json: bool = AsJson,
) -> None:
    """Vary one latent dimension at a time (the others fixed) and decode, to --out."""
    from .generation_jobs import traverse_run

    result = _call(
        traverse_run,
        run,
        out,
        dims=dims,
        data=data,
        index=index,
        limit=limit,
        steps=steps,
        data_dir=data_dir,
        label_column=label_column,
    )
    _emit(result, as_json, f"traversal -> {result['path']}")


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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app on ``argv`` (default ``sys.argv[1:]``), exit.

    A command-line mistake (an unknown flag, ``--epochs abc``, a missing ``--out``) is one
    ``error:`` line on stderr with exit code 2, like every other user error, instead of
    typer's usage panel.
    """
    try:
        code = app(args=argv, prog_name="vaekit", standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors (typer's vendored click)
        # `vaekit` or `vaekit datasets` alone: typer has printed the help already.
        if type(exc).__name__ != "NoArgsIsHelpError":
            context = getattr(exc, "ctx", None)
            hint = f"; see `{context.command_path} --help`" if context is not None else ""
            _print_error(exc.format_message().rstrip(".") + hint + ".")
        sys.exit(exc.exit_code)
    except typer.Abort:  # end of input at a prompt
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
