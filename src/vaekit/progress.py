"""A progress bar over the named steps of a long job (a sweep, an evaluation), on stderr.

Training has its own per-epoch bar (:mod:`vaekit.training`); this one counts the coarser steps
around it, so that a job that runs for half an hour never sits silent.
"""

from __future__ import annotations

from typing import Any


def draws_bars() -> bool:
    """Whether stderr redraws a progress bar in place (a terminal, a notebook)."""
    from rich.console import Console

    console = Console(stderr=True)
    return console.is_terminal or console.is_jupyter


class StepProgress:
    """A rich progress bar over ``total`` steps on stderr; does nothing when not verbose.

    Where stderr is not a terminal (a log file, ``nohup``, CI) a bar cannot redraw itself:
    each step done is a line there instead, as training's epochs are.

    Parameters
    ----------
    label : str
        Shown in bold before the bar, e.g. ``"sweep"``.
    total : int
        Number of steps.
    verbose : bool
        False: every method is a no-op (tests, ``--json``, ``--quiet``).
    """

    def __init__(self, label: str, total: int, verbose: bool) -> None:
        self.bar = None
        self.lines = None  # the console of line mode
        self.label, self.total, self.done = label, total, 0
        if verbose:
            from rich.console import Console
            from rich.markup import escape
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            console = Console(stderr=True, emoji=False)
            if not draws_bars():
                self.lines = console
                return
            self.bar = Progress(
                TextColumn(f"[bold]{escape(label)}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[step]}", markup=False),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self.task = self.bar.add_task(label, total=total, step="")

    def __enter__(self) -> StepProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def status(self, text: str) -> None:
        """Say what the current step is doing."""
        if self.bar is not None:
            self.bar.update(self.task, step=text)

    def advance(self, text: str = "") -> None:
        """Count one step as done."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, step=text)
        elif self.lines is not None:
            self.print(f"{self.label} {self.done}/{self.total} {text}".rstrip())

    def print(self, text: str) -> None:
        """A line above the bar (printed as is: no markup, no highlighting)."""
        console = self.bar.console if self.bar is not None else self.lines
        if console is not None:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
