"""A progress bar over the named steps of a long job (a sweep, an evaluation), on stderr.

Training has its own per-epoch bar (:mod:`vaekit.training`); this one counts the coarser steps
around it, so that a job that runs for half an hour never sits silent.
"""

from __future__ import annotations

from typing import Any


class StepProgress:
    """A rich progress bar over ``total`` steps on stderr; does nothing when not verbose.

    Parameters
    ----------
    label : str
        Shown in bold before the bar, e.g. ``"sweep"``.
    total : int
        Number of steps.
    verbose : bool
        False: every method is a no-op (tests, ``--json``, output that is not a terminal).
    """

    def __init__(self, label: str, total: int, verbose: bool) -> None:
        self.bar = None
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

            self.bar = Progress(
                TextColumn(f"[bold]{escape(label)}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[step]}", markup=False),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True, emoji=False),
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
        if self.bar is not None:
            self.bar.update(self.task, advance=1, step=text)

    def print(self, text: str) -> None:
        """A line above the bar (printed as is: no markup, no highlighting)."""
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
