"""Ctrl-C and SIGTERM: both end a command through the same cleanup, never mid-rename.

A command stopped by Ctrl-C raises KeyboardInterrupt, so every ``finally`` that removes a
temporary file or a half-made folder runs. SIGTERM (what ``timeout``, a CI cancel, systemd and
torchrun's own shutdown send) would end the process on the spot and leave those behind, so the
CLI turns it into :class:`Terminated`, a KeyboardInterrupt, for the same cleanup.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` instead of killing the process.

    Only where SIGTERM has its default action: a handler someone else installed stays.
    """
    if not _swappable(signal.SIGTERM) or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
