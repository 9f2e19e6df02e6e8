"""Ctrl-C and SIGTERM: both end a command through the same cleanup, never mid-rename.

A command stopped by Ctrl-C raises KeyboardInterrupt, so every ``finally`` that removes a
temporary file or a half-made folder runs. SIGTERM (what ``timeout``, a CI cancel, systemd and
torchrun's own shutdown send) would end the process on the spot and leave those behind, so the
CLI turns it into :class:`Terminated`, a KeyboardInterrupt, for the same cleanup.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

_STOPPING = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C is so that the same cleanup runs."""


def _swappable(signum: int) -> bool:
    # Only the main thread may swap handlers; a handler installed by C code (getsignal gives
    # None) could not be put back.
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signum) is not None
    )


# How long the main thread has to reach Python and clean up after SIGTERM before the process
# ends anyway (see _watch): a training step or a file write takes far less.
SIGTERM_GRACE_SECONDS = 10.0


@contextlib.contextmanager
def sigterm_as_interrupt(grace: float = SIGTERM_GRACE_SECONDS) -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` instead of killing the process.

    Only where SIGTERM has its default action: a handler someone else installed stays.
    Python runs a signal handler only between bytecodes, so a main thread blocked in native
    code (a rendezvous waiting for a peer that never comes, a stalled collective) would ignore
    SIGTERM for good; a watcher thread ends the process (exit code 143) when the main thread
    has not finished ``grace`` seconds after the signal.
    """
    if not _swappable(signal.SIGTERM) or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    # The C-level handler writes each signal's number to this pipe the moment it arrives,
    # whatever the main thread is doing.
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    finished = threading.Event()
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    previous = signal.signal(signal.SIGTERM, terminate)
    watcher = threading.Thread(
        target=_watch, args=(read_end, finished, grace), name="vaekit-sigterm", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        signal.signal(signal.SIGTERM, previous)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_end)  # the watcher reads end-of-file and returns
        watcher.join(timeout=1.0)
        os.close(read_end)


def _watch(read_end: int, finished: threading.Event, grace: float) -> None:
    """Wait for a SIGTERM byte on the wakeup pipe; give the main thread ``grace`` seconds."""
    while True:
        try:
            received = os.read(read_end, 64)
        except OSError:
            return
        if not received:  # the block ended: the pipe was closed
            return
        if signal.SIGTERM in received and not finished.wait(grace):
            os._exit(128 + signal.SIGTERM)  # as the default action would have: no cleanup ran


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM back until the block ends, then deliver them.

    By swapping the Python-level handlers, not by masking the signals: the OS may hand a
    process's signal to any of its threads (torch's workers too), while Python always runs the
    handler in the main thread, the only one allowed to swap it.
    """
    held = [signum for signum in _STOPPING if _swappable(signum)]
    caught: list[int] = []
    previous = {signum: signal.signal(signum, lambda s, frame: caught.append(s)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)  # now to the handler that was there before
