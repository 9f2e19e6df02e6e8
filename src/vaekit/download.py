"""Download the official MNIST and Fashion-MNIST files, md5-verified, never half-written.

Each file streams into a temporary file in the target folder and is moved into place with
``os.replace`` only after its md5 matches, so the folder only ever holds complete, verified files
(the temporary file is removed on an error, Ctrl-C, and, through the CLI, SIGTERM; only a
``kill -9`` can leave one behind).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import secrets
import urllib.request
from pathlib import Path

from vaekit.datasets import resolve_data_dir
from vaekit.errors import DataError
from vaekit.persistence import remove_new_folders

__all__ = ["DEFAULT_MIRRORS", "OFFICIAL_FILES", "download_dataset"]

# md5s of the official files (shared/data/README.md; the same as the publishers' lists).
OFFICIAL_FILES: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
DEFAULT_MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
_CHUNK = 1 << 20
# URLError, timeouts and refused connections are OSErrors, as is a transfer that ends short of
# its Content-Length (_TransferCutShort); a malformed base URL raises ValueError.
_FETCH_ERRORS = (OSError, http.client.HTTPException, ValueError)


class _Md5Mismatch(DataError):
    """A mirror served other bytes than the official file: another mirror may be fine."""


class _TransferCutShort(OSError):
    """The connection ended before Content-Length bytes came (``read`` then returns b"")."""


def download_dataset(
    name: str,
    data_dir: str | os.PathLike | None,
    *,
    base_url: str | None = None,
    progress: bool = False,
    timeout: float = 60.0,
) -> dict:
    """Fetch the four official files of ``mnist`` or ``fashion-mnist`` into ``data_dir/name``.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    data_dir : path-like or None
        Root data directory (created if needed); None means ``$VAEKIT_DATA``.
    base_url : str, optional
        Fetch ``base_url + "/" + file`` instead of trying :data:`DEFAULT_MIRRORS` in order
        (``file://`` URLs work too).
    progress : bool
        Show a rich progress bar on stderr.
    timeout : float
        Seconds to wait on each network operation.

    Returns
    -------
    dict
        ``{"dataset", "data_dir", "folder", "files": [{"name", "md5", "bytes", "status"}]}``
        with status ``"downloaded"`` or ``"present"`` (already there with the right md5).

    Raises
    ------
    DataError
        Unknown name, every mirror failing for a file, or an md5 mismatch.
    """
    key = name.strip().lower()
    if key not in OFFICIAL_FILES:
        where = Path(data_dir) if data_dir is not None else Path("DATA_DIR")
        raise DataError(
            f"vaekit downloads only {' and '.join(OFFICIAL_FILES)}, not '{name}'; digits is "
            "embedded in scikit-learn and needs no download, and olivetti must be placed by hand "
            f"at {where / 'olivetti' / 'olivetti_faces.npz'}."
        )
    root = resolve_data_dir(data_dir)
    folder = root / key
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"Cannot create {folder} ({exc.strerror or exc}); pass a writable --data-dir."
        ) from None
    mirrors = [base_url] if base_url else DEFAULT_MIRRORS[key]
    try:
        with _progress_bar(progress) as bar:
            files = [
                _ensure_file(folder, file, md5, mirrors, timeout, bar)
                for file, md5 in OFFICIAL_FILES[key].items()
            ]
    except BaseException:
        remove_new_folders(created)  # a failed download leaves no empty folders behind
        raise
    return {"dataset": key, "data_dir": str(root), "folder": str(folder), "files": files}


def _ensure_file(
    folder: Path, file: str, md5: str, mirrors: list[str], timeout: float, bar
) -> dict:
    """Skip ``file`` if present with the right md5, else fetch it from the first good mirror."""
    dest = folder / file
    if dest.is_file() and _md5_of(dest) == md5:
        return {"name": file, "md5": md5, "bytes": dest.stat().st_size, "status": "present"}
    # A present file with the wrong md5 stays until a verified copy replaces it.
    mismatch: DataError | None = None
    last_error: BaseException | None = None
    for base in mirrors:
        url = base.rstrip("/") + "/" + file
        try:
            size = _fetch_verified(url, dest, md5, timeout, bar)
        except _Md5Mismatch as exc:  # this mirror is bad, another may be fine
            mismatch = exc
        except DataError:  # the folder cannot be written: no mirror can help (a ValueError too)
            raise
        except _FETCH_ERRORS as exc:
            last_error = exc
        else:
            return {"name": file, "md5": md5, "bytes": size, "status": "downloaded"}
    if mismatch is not None:
        raise mismatch
    raise DataError(
        f"Could not download {file} from {' or '.join(mirrors)} (last error: {last_error}); "
        f"check the network, or copy the official files by hand into {folder} and pass "
        f"--data-dir {folder.parent}."
    )


def _fetch_verified(url: str, dest: Path, md5: str, timeout: float, bar) -> int:
    """Stream ``url`` into a temp file beside ``dest``; move it into place if the md5 matches."""
    # Not tempfile.mkstemp: its 0600 mode would stick to the final file; "xb" honours the umask.
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        out = open(tmp, "xb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:  # before any mirror is asked: no mirror can help with this
        raise DataError(
            f"Cannot write to {dest.parent} ({exc.strerror or exc}); pass a writable --data-dir."
        ) from None
    try:
        with out, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            task = _add_task(bar, dest.name, length)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if task is not None:
                    bar.advance(task, len(chunk))
            if length and length.isdigit() and size < int(length):
                expected = int(length)
                raise _TransferCutShort(f"the transfer ended after {size:,} of {expected:,} bytes")
            out.flush()
            os.fsync(out.fileno())  # the bytes are on disk before the name points at them
        if digest.hexdigest() != md5:
            raise _Md5Mismatch(
                f"{dest.name} from {url} has md5 {digest.hexdigest()} but {md5} was expected, so "
                "it was discarded; try another --base-url or copy the official file by hand."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)  # a no-op after os.replace
    return size


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_bar(enabled: bool):
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True, emoji=False),
    )


def _add_task(bar, description: str, length: str | None):
    if bar is None:
        return None
    total = int(length) if length and length.isdigit() else None
    return bar.add_task(description, total=total)
