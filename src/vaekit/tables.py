"""Tables -> :class:`~vaekit.dataset.Dataset`: CSV (with or without a header row, pandas' row
index dropped) and Parquet (pandas' index columns dropped), numeric columns as float64 features
with missing cells as NaN, one optional label column."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vaekit.errors import DataError

from .dataset import Dataset, encode_labels, first_line, quote_names

if TYPE_CHECKING:
    import pyarrow as pa


# Schema metadata of a table read from a CSV file without a header row, whose column names
# (f0, f1, ...) pyarrow made up: they name columns for --label-column, not features for a model.
_HEADERLESS = b"vaekit.headerless"


def read_csv(path: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    convert = pcsv.ConvertOptions(strings_can_be_null=True)  # an empty label cell is missing
    # Named explicitly: pyarrow's own detection only knows the lower-case ".gz".
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            table = pcsv.read_csv(stream, convert_options=convert)
        index = _is_unnamed_index(table, convert.null_values)
        names = table.column_names
        if not index and _is_data_row(names, convert.null_values) and not _pandas_names(names):
            # No header row (numpy.savetxt writes none): the first row became the column names.
            options = pcsv.ReadOptions(autogenerate_column_names=True)
            with pa.input_stream(str(path), compression=compression) as stream:
                table = pcsv.read_csv(stream, read_options=options, convert_options=convert)
            table = table.replace_schema_metadata({_HEADERLESS: b"1"})
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"{path.name} could not be parsed as CSV ({first_line(exc)}); check that it is "
            "comma-separated with one header row."
        ) from None
    if index:
        warnings.warn(
            f"Dropped the unnamed first column of {path.name} as a row index (pandas' to_csv "
            "writes one unless index=False); name that column in the header if it is a feature.",
            UserWarning,
            stacklevel=4,  # at the caller of load_dataset
        )
        table = table.remove_column(0)
    _refuse_other_delimiters(table, path.name)
    return _without_trailing_empty_column(table)


def _pandas_names(names: list[str]) -> bool:
    """Whether a header is pandas' default column names ``0, 1, ..., d-1``.

    ``pd.DataFrame(X).to_csv(path, index=False)`` writes that header: it is names, not a first
    sample. From three columns on, a data row of exactly these values is not worth the guess.
    """
    return len(names) >= 3 and names == [str(j) for j in range(len(names))]


def _refuse_other_delimiters(table: pa.Table, source: str) -> None:
    """One text column whose name holds ';' or a tab: a file separated by something else."""
    import pyarrow as pa

    if table.num_columns != 1 or not pa.types.is_string(table.column(0).type):
        return
    for delimiter, called in ((";", "semicolons"), ("\t", "tabs")):
        if delimiter in table.column_names[0]:
            raise DataError(
                f"{source} seems to be separated by {called}, not commas; save it "
                "comma-separated (pandas: to_csv(path) without sep=)."
            )


def _without_trailing_empty_column(table: pa.Table) -> pa.Table:
    """Drop the nameless, all-empty last column a comma at the end of every line makes."""
    headerless = _HEADERLESS in (table.schema.metadata or {})
    if table.num_columns < 2 or table.num_rows == 0:
        return table
    last = table.column(table.num_columns - 1)
    nameless = headerless or table.column_names[-1] == ""
    if nameless and last.null_count == table.num_rows:
        return table.remove_column(table.num_columns - 1)
    return table


def _is_data_row(cells: list[str], missing: list[str]) -> bool:
    """Whether a first row read as column names holds values: every cell a number or a
    missing value as the data rows spell it ("", NA, null...: pandas writes "" for NaN, R NA)."""
    missing = set(missing)
    return bool(cells) and all(c in missing or _is_number(c) for c in cells)


def _is_unnamed_index(table: pa.Table, missing: list[str]) -> bool:
    """Whether the first column is a row index as pandas' ``to_csv`` (and R's ``write.csv``)
    write one by default: no name in the header, distinct integers below it.

    Where the other column names are numbers (or missing) too, they must be pandas' default
    names ``0, 1, ...`` (``DataFrame(X).to_csv()``); other numbers are a headerless file whose
    first row has a missing first cell.
    """
    import pyarrow as pa

    names = table.column_names
    if not names or names[0] != "" or table.num_rows == 0:
        return False
    column = table.column(0)
    if not pa.types.is_integer(column.type) or column.null_count:
        return False
    values = column.to_numpy()
    if len(np.unique(values)) != len(values):
        return False
    rest = names[1:]
    return not _is_data_row(rest, missing) or rest == [str(j) for j in range(len(rest))]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_parquet(path: Path, label_column: str | None) -> pa.Table:
    """The table without the index columns pandas' ``to_parquet`` stores beside the data
    (``__index_level_0__`` for an unnamed index), unless one is ``label_column``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        names = table.column_names  # decodes the names now, so bad UTF-8 is caught here
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"{path.name} is not a readable Parquet file ({first_line(exc)}); write it again."
        ) from None
    try:
        index = (table.schema.pandas_metadata or {}).get("index_columns")
    except (ValueError, AttributeError):  # metadata that is not pandas' JSON object
        return table
    if not isinstance(index, list):
        return table
    drop = {c for c in index if isinstance(c, str)} - {label_column}  # a RangeIndex is a dict
    keep = [j for j, n in enumerate(names) if n not in drop]
    return table if len(keep) == len(names) else table.select(keep)


def table_dataset(table: pa.Table, name: str, label_column: str | None) -> Dataset:
    """Numeric columns -> X (n, d) float32 (nulls as NaN); ``label_column`` -> y."""
    names = list(table.column_names)
    label_index = None
    if label_column is not None:
        if label_column not in names:
            raise DataError(
                f"Label column {label_column!r} is not in {name}; its columns are "
                f"{quote_names(names)}."
            )
        label_index = names.index(label_column)
    if table.num_rows == 0:
        raise DataError(f"{name} has no data rows; pass a table with at least one row.")
    keep = [j for j in range(len(names)) if j != label_index]
    if not keep:
        besides = f" besides the label column {label_column!r}" if label_column else ""
        raise DataError(f"{name} has no feature columns{besides}; add numeric columns.")
    # float64, as pandas reads it: a large-offset column (a timestamp) keeps its variation.
    X = np.empty((table.num_rows, len(keep)), dtype=np.float64)
    for out, j in enumerate(keep):  # by index: column names may repeat
        X[:, out] = _numeric_column(table.column(j), names[j], name)
    y = classes = None
    if label_index is not None:
        y, classes = _table_labels(table.column(label_index), label_column, name)
        if classes is not None and label_column in classes:
            warnings.warn(
                f"The label column's name {label_column!r} is also one of its values: if "
                f"{name} has no header row, its first row was read as the column names and "
                "is not in the data; add a header row.",
                UserWarning,
                stacklevel=4,  # at the caller of load_dataset
            )
    headerless = _HEADERLESS in (table.schema.metadata or {})
    return Dataset(
        X,
        y,
        name,
        feature_names=[names[j] for j in keep],
        classes=classes,
        named_columns=not headerless,
    )


def _numeric_column(column: pa.ChunkedArray, column_name: str, source: str) -> np.ndarray:
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    numeric = (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)  # an all-empty column: NaN everywhere
    )
    if not numeric:
        raise DataError(
            f"Column {column_name!r} of {source} is not numeric ({kind}); drop it or pass it "
            "as the label column (--label-column)."
        )
    try:
        # Unsafe, so that integers beyond 2**53 (nanosecond timestamps, 64-bit ids) round to
        # the nearest float64 as numpy's astype does, instead of being refused.
        return column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)  # NaN
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(
            f"Column {column_name!r} of {source} cannot be read as numbers ({first_line(exc)})."
        ) from None


def _table_labels(
    column: pa.ChunkedArray, column_name: str, source: str
) -> tuple[np.ndarray, list[str] | None]:
    import pyarrow as pa

    where = f"column {column_name!r} of {source}"
    if column.null_count:
        raise DataError(
            f"Label {where} has {column.null_count} missing values; fill or drop those rows."
        )
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return encode_labels(column.to_numpy(zero_copy_only=False), where)
    try:  # anything else (text, dates) is a class name
        text = column.cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(f"Label {where} cannot be used as labels ({first_line(exc)}).") from None
    return encode_labels(text, where)
