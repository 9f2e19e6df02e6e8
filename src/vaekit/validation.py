"""Checks of the data given to the estimators, with one clear sentence for each mistake.

scikit-learn's own checks (``validate_data``) where they apply, so that the estimators pass
its estimator checks; vaekit's for what scikit-learn does not cover: images, memory maps,
structured and channels-last arrays.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array, validate_data

from .dataset import quote_names
from .datasets import non_finite_message
from .errors import DataError
from .rows import first_non_finite


def validate_input(est: Any, X: Any, *, reset: bool) -> np.ndarray:
    """Check X for ``est`` and return it as a float array of shape (n, *input_shape_).

    With ``reset`` (in ``fit``) X sets ``est``'s ``n_features_in_`` (and, for a table with
    column names, ``feature_names_in_``); without it X must match what ``est`` was fitted on.

    Images become float32. A table stays float64 when it is float64 or integer: a column
    such as timestamps (1.7e9 ± 10) has no variation left in float32, whose spacing there
    is 128; standardization (``_to_model_input``) then happens in float64.
    """
    if sp.issparse(X):
        raise DataError("X is a sparse matrix; vaekit trains on dense arrays: pass X.toarray().")
    if not hasattr(X, "shape"):  # lists and other array-likes: convert once, here
        try:
            X = np.asarray(X)
        except ValueError:  # ragged rows
            raise DataError(
                "X could not be read as an array (rows of different lengths?); pass a "
                "2-D array of numbers or an array of images."
            ) from None
    if getattr(getattr(X, "dtype", None), "names", None):
        raise DataError(
            f"X is a structured array with fields {', '.join(X.dtype.names)}; pass a plain "
            "numeric array (numpy.lib.recfunctions.structured_to_unstructured)."
        )
    if isinstance(X, np.memmap) and X.dtype == np.float32 and X.shape[0] > 0:
        # A float32 memory map is checked without being read into memory: shape and feature
        # count on its first row (scikit-learn's checks), then finiteness block by block.
        validate_input(est, np.asarray(X[:1]), reset=reset)
        found = first_non_finite(X)
        if found is not None:  # where it is: a file too large to open in an editor
            name = f"X ({Path(X.filename).name})" if getattr(X, "filename", None) else "X"
            raise DataError(non_finite_message(name, *found))
        return X if reset else _as_samples(est, X)
    if len(X.shape) <= 2:
        _refuse_columns_of_other_than_numbers(X)
        trained = None if reset else getattr(est, "feature_names_in_", None)
        given = _column_names(X) if trained is not None else None
        if given is not None:
            # scikit-learn says only "The feature names should match those that were passed
            # during fit" in the first line of its message; this says which and what to do.
            difference = column_difference(given, [str(n) for n in trained], "X")
            if difference:
                raise DataError(difference)
        # scikit-learn's own checks and messages (NaN, sparse, 1-D, feature-count mismatch).
        try:
            # errstate: scikit-learn's finiteness check sums X, which warns on its way to the
            # error below (inf - inf); that error is the one line a user should see.
            with np.errstate(invalid="ignore", over="ignore"):
                X = validate_data(est, X, reset=reset, dtype=(np.float64, np.float32))
        except ValueError as exc:
            raise _located(exc, X) from None
        except TypeError as exc:  # for column names of mixed types; an object cell stays one
            if not str(exc).startswith(_MIXED_NAMES):
                raise
            raise data_error(exc) from None
        return X if reset else _as_samples(est, X)
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # as for validate_data above
            X = check_array(X, allow_nd=True, dtype=np.float32)
    except ValueError as exc:
        raise _located(exc, X) from None
    if X.ndim > 4:
        raise DataError(
            f"Expected (n, d), (n, h, w) or (n, c, h, w) data, got an array of shape {X.shape}."
        )
    if math.prod(X.shape[1:]) == 0:
        raise DataError(f"X has samples of shape {tuple(X.shape[1:])}, with no values.")
    if reset:
        if X.ndim == 4 and X.shape[3] in (1, 3, 4) and X.shape[1] > 4:
            # (n, h, w, c) read as (n, c, h, w) would train on image rows as channels.
            raise DataError(
                f"X has images of shape {tuple(X.shape[1:])}, which looks channels-last "
                "(n, h, w, c); vaekit takes (n, c, h, w): pass X.transpose(0, 3, 1, 2)."
            )
        est.n_features_in_ = int(math.prod(X.shape[1:]))
        if hasattr(est, "feature_names_in_"):  # from an earlier fit on a table
            del est.feature_names_in_
    else:
        # A view; (n, 1, h, w) for an (h, w) model.
        X = conform_samples(X, tuple(est.input_shape_), "X", f"{type(est).__name__} was fitted on")
    return X


def conform_samples(
    X: np.ndarray, expected: tuple[int, ...], name: str, reference: str
) -> np.ndarray:
    """``X`` as samples of shape ``expected`` (a view), where they are the same samples read
    another way (:func:`same_samples`); a DataError naming both shapes where they are not.

    ``name`` names X and ``reference`` ends the clause that names ``expected``: "data.npy has
    samples of shape (8, 8), but {reference} samples of shape (16, 16); ...".
    """
    shape = tuple(X.shape[1:])
    if same_samples(shape, expected):
        return X if shape == expected else X.reshape(len(X), *expected)
    if math.prod(shape) == math.prod(expected) or (len(shape) > 1 and len(expected) > 1):
        # Images against images, or as many values laid out otherwise: the shapes say more.
        raise DataError(
            f"{name} has samples of shape {shape}, but {reference} samples of shape "
            f"{expected}; {shape_remedy(shape, expected)}."
        )
    raise DataError(
        f"{name} has {math.prod(shape)} features per sample, but {reference} "
        f"{math.prod(expected)}; pass data with the same features."
    )


def same_samples(shape: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Whether samples of ``shape`` are a model's samples of shape ``expected``, read another way.

    They are where the shapes are equal, where either is a flat row of as many values
    (digits' 64 columns for an 8x8 model, or 8x8 images for a model of their flattened rows),
    and where they differ only by a single channel axis ((1, h, w) against (h, w)). Not where
    the values merely number the same: channels-last images, or 8x32 images for a 16x16 model,
    reshaped into the model's shape would be scrambled pixels.
    """
    if len(shape) == 1 or len(expected) == 1:
        return math.prod(shape) == math.prod(expected)
    return _without_channel_axis(shape) == _without_channel_axis(expected)


def _without_channel_axis(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape[1:] if len(shape) == 3 and shape[0] == 1 else shape


def shape_remedy(shape: tuple[int, ...], expected: tuple[int, ...]) -> str:
    """What to do about samples of ``shape`` for a model of ``expected`` samples, the clause after
    a sentence naming both: the transpose where ``shape`` is ``expected`` (c, h, w) as (h, w, c)."""
    if len(expected) == 3 and tuple(shape) == (*expected[1:], expected[0]):
        return "they look channels-last (h, w, c): pass X.transpose(0, 3, 1, 2)"
    return "pass data of that shape"


def _as_samples(est: Any, X: np.ndarray) -> np.ndarray:
    """Rows of a fitted model's input, (n, d) -> (n, *input_shape_) (a view).

    An image model takes flattened rows too (their feature count is already checked):
    scaling and the network both need the sample shape.
    """
    return X.reshape(X.shape[0], *est.input_shape_)


# The start of scikit-learn's TypeError for a table whose column names mix strings and others.
_MIXED_NAMES = "Feature names are only supported if all input features"


def _located(exc: ValueError, X: Any) -> DataError:
    """:func:`data_error`, but for a NaN or infinity the row and feature where the first one
    is (scikit-learn names neither): looked for only once the check has failed."""
    message = str(exc)
    if "NaN" in message or "infinity" in message:
        try:
            found = first_non_finite(np.asarray(X, dtype=float))
        except (TypeError, ValueError):  # not numbers throughout: say it as scikit-learn does
            found = None
        if found is not None:
            return DataError(non_finite_message("X", *found))
    return data_error(exc)


def data_error(exc: Exception) -> DataError:
    """scikit-learn's validation message as one sentence (no array dump), plus what to do."""
    message = str(exc).strip()
    if message.startswith("Expected unique column names"):  # the names follow, one per line
        repeated = ", ".join(line.lstrip("- ") for line in message.splitlines()[1:])
        return DataError(f"X has repeated column names ({repeated}); rename them.")
    if message.startswith(_MIXED_NAMES):
        kinds = message.split("has ", 1)[-1].split(" as feature name", 1)[0]
        return DataError(
            f"X's column names are of several types ({kinds}); make them all strings, as "
            "X.columns = X.columns.astype(str) does."
        )
    first = message.splitlines()[0].rstrip(":").rstrip() if message else "Invalid input X"
    first = first.rstrip(".")  # one sentence: what to do follows after a semicolon
    if "NaN" in first:
        first += "; drop or impute the missing values first (e.g. sklearn.impute.SimpleImputer)"
    elif "infinity" in first:
        first += "; replace or drop the infinite values first"
    elif "Reshape your data" in message:
        # Capitalized as scikit-learn's own advice, which its estimator checks look for.
        first += (
            " (Reshape your data with X.reshape(-1, 1) if it has a single feature or "
            "X.reshape(1, -1) if it is a single sample)"
        )
    elif first.startswith("could not convert string to float"):  # text in an array
        first += "; X must hold numbers: encode text as numbers or drop it"
    elif "features, but" in first:  # fitted on d features, given another number
        first += "; pass data with the same features (columns) as the training data"
    return DataError(first + ".")


def column_difference(given: list[str], trained: list[str], name: str) -> str:
    """How the columns of table ``name`` differ from those the model was trained on, as one
    sentence with what to do; ``""`` where they are the same."""
    if given == trained:
        return ""
    if sorted(given) == sorted(trained):
        j = next(j for j, (a, b) in enumerate(zip(given, trained, strict=True)) if a != b)
        return (
            f"{name} has the training columns in another order (column {j} is {given[j]!r}, "
            f"in training {trained[j]!r}); put them in the training order: "
            f"{quote_names(trained)}."
        )
    missing = [column for column in trained if column not in given]
    extra = [column for column in given if column not in trained]
    differences = [
        f"missing {quote_names(missing)}" if missing else "",
        f"not in the training data: {quote_names(extra)}" if extra else "",
    ]
    difference = "; ".join(d for d in differences if d) or (  # the same names, repeated
        f"{len(given)} columns, {len(trained)} in training"
    )
    return (
        f"{name}'s columns differ from the training data's ({difference}); pass a table with "
        f"the columns {quote_names(trained)}."
    )


def _refuse_columns_of_other_than_numbers(X: Any) -> None:
    """A DataError naming a pandas DataFrame's columns of dates, text or categories, which
    scikit-learn's conversion would refuse with numpy's words, naming no column."""
    if not (type(X).__module__.startswith("pandas") and hasattr(X, "dtypes")):
        return
    dtypes = getattr(X.dtypes, "items", None)
    if dtypes is None:  # a Series: its one dtype
        return
    # pandas' own dtypes (Int64, boolean, Float64) have numpy's kind letters too. A numpy
    # object column may hold numbers: scikit-learn's conversion tries it.
    other = [
        (name, dtype)
        for name, dtype in dtypes()
        if getattr(dtype, "kind", "O") not in "biuf" and dtype != np.dtype(object)
    ]
    if other:
        listed = ", ".join(f"{name!r} ({dtype})" for name, dtype in other[:5])
        more = f" and {len(other) - 5} more" if len(other) > 5 else ""
        raise DataError(
            f"X has columns that are not numbers: {listed}{more}; convert them to numbers "
            "(one-hot encode categories, e.g. pandas.get_dummies; dates as numbers, e.g. "
            ".astype('int64')) or drop them."
        )


def _column_names(X: Any) -> list[str] | None:
    """A table's column names where they are all strings (a pandas DataFrame, a pyarrow
    Table), as scikit-learn reads them into ``feature_names_in_``; else None."""
    names = getattr(X, "column_names", None)  # first: a pyarrow Table's .columns are its data
    if names is None:
        names = getattr(X, "columns", None)
    if names is None:
        return None
    names = list(names)
    return names if names and all(isinstance(n, str) for n in names) else None
