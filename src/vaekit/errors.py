"""Errors a user can cause, each carrying one sentence that says what to do.

They subclass ``ValueError`` (or ``OSError``) so scikit-learn and ordinary Python code that
catch those keep working; the CLI catches :class:`VaekitError` and prints only its message.
"""

from __future__ import annotations


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
