"""Errors a user can cause, each carrying one sentence that says what to do.

They subclass ``ValueError`` (or ``OSError``) so scikit-learn and ordinary Python code that
catch those keep working; the CLI catches :class:`VaekitError` and prints only its message.
Warnings point at the user's line: :func:`user_stacklevel`.
"""

from __future__ import annotations

import sys


class VaekitError(Exception):
    """Base class for every error vaekit raises because of user input."""


class DataError(VaekitError, ValueError):
    """The data (a file, an array, a dataset name) cannot be used as given."""


class ConfigError(VaekitError, ValueError):
    """A parameter value is invalid (non-positive size, negative beta, unknown choice...)."""


class ModelFileError(VaekitError, ValueError):
    """A saved model directory is missing, truncated, tampered with or from another version."""


class TrainingError(VaekitError, RuntimeError):
    """Training could not continue (for example repeated non-finite losses)."""


class PosteriorCollapseWarning(UserWarning):
    """A fitted VAE's latent code carries (almost) no information about its input.

    Emitted by :meth:`VAE.fit` (checked on the validation split) and by
    :func:`vaekit.evaluation.posterior_collapse_check`; see the latter for the rule.
    """


# Packages whose frames a warning skips to reach the user's line: ours, and scikit-learn's
# (a Pipeline's or fit_transform's call of our method).
_LIBRARY_PACKAGES = ("vaekit", "sklearn")


def user_stacklevel() -> int:
    """``stacklevel`` for a warning issued by this function's caller that points at the first
    frame outside vaekit and scikit-learn: the user's call, however deep the warning is raised."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in (
        _LIBRARY_PACKAGES
    ):
        frame, level = frame.f_back, level + 1
    return level
