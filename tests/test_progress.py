"""The step progress bar of long jobs (sweep, evaluate): it counts, prints as is, or stays quiet."""

from __future__ import annotations

from vaekit.progress import StepProgress


def test_step_progress_counts_steps_and_prints_text_as_is(capsys, monkeypatch):
    import rich.console

    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))
    with StepProgress("sweep", 2, verbose=True) as progress:
        progress.status("training [bold]k=2[/bold]")
        progress.print("k=2, β=1: -ELBO [1.5]")
        progress.advance("done k=2")
        assert progress.bar.tasks[0].completed == 1
        assert progress.bar.tasks[0].fields["step"] == "done k=2"
    err = capsys.readouterr().err
    assert "k=2, β=1: -ELBO [1.5]" in err  # brackets are text, not rich markup


def test_step_progress_is_a_line_per_step_where_stderr_is_not_a_terminal(capsys):
    """A log file, nohup or CI: a bar cannot redraw there, and a sweep must not sit silent."""
    with StepProgress("sweep", 2, verbose=True) as progress:
        progress.status("training k=2")  # a bar's transient text: not a line
        progress.advance("k=2, β=1 done")
        progress.print("a [note]")
        progress.advance()
    assert capsys.readouterr().err.splitlines() == [
        "sweep 1/2 k=2, β=1 done",
        "a [note]",
        "sweep 2/2",
    ]


def test_quiet_step_progress_writes_nothing(capsys):
    with StepProgress("evaluate", 3, verbose=False) as progress:
        progress.status("raw: classification")
        progress.print("a line")
        progress.advance("raw: classification")
    assert capsys.readouterr() == ("", "")
