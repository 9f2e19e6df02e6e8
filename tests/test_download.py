"""vaekit.download against a local HTTP server serving the offline copies of the official files."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from vaekit.datasets import IDX_FILES, load_dataset
from vaekit.download import DEFAULT_MIRRORS, OFFICIAL_FILES, download_dataset
from vaekit.errors import DataError

from _helpers import need

MNIST = OFFICIAL_FILES["mnist"]


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest output clean
        pass


@pytest.fixture
def serve():
    """serve(folder) -> base URL of a loopback HTTP server for ``folder``; all shut down after."""
    running = []

    def start(folder: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tables_agree_with_datasets():
    assert set(OFFICIAL_FILES) == set(DEFAULT_MIRRORS) == {"mnist", "fashion-mnist"}
    names = {f for pair in IDX_FILES.values() for f in pair}
    for files in OFFICIAL_FILES.values():
        assert set(files) == names
        assert all(len(m) == 32 and int(m, 16) >= 0 for m in files.values())
    assert DEFAULT_MIRRORS["mnist"][0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"


def test_download_mnist_then_present(serve, tmp_path):
    base = serve(need("mnist")) + "/mnist"
    result = download_dataset("mnist", tmp_path / "data", base_url=base, timeout=10)
    folder = tmp_path / "data" / "mnist"
    assert result["dataset"] == "mnist" and result["data_dir"] == str(tmp_path / "data")
    assert [f["status"] for f in result["files"]] == ["downloaded"] * 4
    assert sorted(os.listdir(folder)) == sorted(MNIST)  # no temp files left
    for entry in result["files"]:
        assert md5_of(folder / entry["name"]) == MNIST[entry["name"]] == entry["md5"]
        assert (folder / entry["name"]).stat().st_size == entry["bytes"] > 0
    mtimes = {f: (folder / f).stat().st_mtime_ns for f in MNIST}

    again = download_dataset("MNIST", tmp_path / "data", base_url=base, timeout=10)
    assert [f["status"] for f in again["files"]] == ["present"] * 4
    assert {f: (folder / f).stat().st_mtime_ns for f in MNIST} == mtimes
    ds = load_dataset("mnist:test", data_dir=tmp_path / "data")
    assert ds.X.shape == (10000, 28, 28) and ds.y[0] == 7


def test_download_fashion_with_progress_and_trailing_slash(serve, tmp_path, monkeypatch):
    base = serve(need("fashion-mnist")) + "/fashion-mnist/"
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    result = download_dataset("fashion-mnist", None, base_url=base, progress=True, timeout=10)
    folder = tmp_path / "fashion-mnist"
    assert result["folder"] == str(folder)
    assert sorted(os.listdir(folder)) == sorted(OFFICIAL_FILES["fashion-mnist"])
    for name, md5 in OFFICIAL_FILES["fashion-mnist"].items():
        assert md5_of(folder / name) == md5
    assert sum(f["bytes"] for f in result["files"]) == 26421880 + 29515 + 4422102 + 5148


def test_wrong_local_file_is_replaced(serve, tmp_path):
    root = need("mnist")
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in MNIST:
        shutil.copy(root / "mnist" / name, folder / name)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"stale")
    result = download_dataset("mnist", tmp_path, base_url=serve(root) + "/mnist", timeout=10)
    statuses = {f["name"]: f["status"] for f in result["files"]}
    assert statuses.pop("t10k-labels-idx1-ubyte.gz") == "downloaded"
    assert set(statuses.values()) == {"present"}
    assert md5_of(folder / "t10k-labels-idx1-ubyte.gz") == MNIST["t10k-labels-idx1-ubyte.gz"]


def test_corrupted_mirror_file_is_discarded(serve, tmp_path):
    root = need("mnist")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    bad = "t10k-images-idx3-ubyte.gz"  # third in order: the two before it download fine
    for name in MNIST:
        if name != bad:
            (mirror / name).symlink_to(root / "mnist" / name)
    data = bytearray((root / "mnist" / bad).read_bytes())
    data[1000] ^= 0xFF  # one flipped byte, same length
    (mirror / bad).write_bytes(bytes(data))
    target = tmp_path / "data"
    with pytest.raises(DataError, match=f"{bad} .* has md5 [0-9a-f]{{32}} but {MNIST[bad]}"):
        download_dataset("mnist", target, base_url=serve(mirror), timeout=10)
    # Only verified files are left: no temp file and no bad copy.
    assert sorted(os.listdir(target / "mnist")) == sorted(
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    )


def test_missing_file_on_server(serve, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"Could not download train-images-idx3-ubyte\.gz.*404"):
        download_dataset("mnist", tmp_path / "d", base_url=serve(tmp_path / "empty"), timeout=5)
    assert not (tmp_path / "d").exists()  # no empty folders left behind


def test_unreachable_server(tmp_path):
    base = f"http://127.0.0.1:{free_port()}/mnist"
    with pytest.raises(DataError, match=r"Could not download train-images.*--data-dir"):
        download_dataset("mnist", tmp_path, base_url=base, timeout=2)
    assert not (tmp_path / "mnist").exists() and tmp_path.is_dir()  # only what it created


def test_file_url_mirror(tmp_path):
    src = need("mnist") / "mnist"
    result = download_dataset("mnist", tmp_path, base_url=src.as_uri(), timeout=5)
    assert [f["status"] for f in result["files"]] == ["downloaded"] * 4
    assert np.array_equal(load_dataset("mnist:test", data_dir=tmp_path).y[:3], np.array([7, 2, 1]))


@pytest.mark.parametrize("name", ["olivetti", "digits", "cifar10"])
def test_unknown_names(tmp_path, name):
    with pytest.raises(DataError, match=r"digits is embedded.*olivetti/olivetti_faces\.npz"):
        download_dataset(name, tmp_path)
    assert os.listdir(tmp_path) == []


def test_no_data_dir(monkeypatch):
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    with pytest.raises(DataError, match="VAEKIT_DATA"):
        download_dataset("mnist", None)


def test_data_dir_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="Cannot create"):
        download_dataset("mnist", tmp_path / "f")


def test_a_folder_that_cannot_be_written_is_not_called_a_network_error(tmp_path, monkeypatch):
    import vaekit.download

    def refuse(path, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(vaekit.download, "open", refuse, raising=False)
    with pytest.raises(DataError, match=r"^Cannot write to .*mnist \(Permission denied\); pass a"):
        # No server at all: the folder is checked before any mirror is asked.
        download_dataset("mnist", tmp_path, base_url=f"http://127.0.0.1:{free_port()}/")


class FirstBytesHandler(SimpleHTTPRequestHandler):
    """Promises 1 MiB, sends 64 KiB, then either closes (``cut``) or stalls until closed."""

    stall = False

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        self.wfile.write(b"\0" * (1 << 16))
        self.wfile.flush()
        for _ in range(600 if self.stall else 0):  # at most 60 s; the client hangs up first
            time.sleep(0.1)
            try:
                self.wfile.write(b"\0")
                self.wfile.flush()
            except OSError:
                return


def start_first_bytes_server(stall: bool):
    handler = type("Handler", (FirstBytesHandler,), {"stall": stall})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_a_transfer_cut_short_is_a_network_error_not_a_bad_mirror(tmp_path):
    server, base = start_first_bytes_server(stall=False)
    try:
        with pytest.raises(DataError, match=r"ended after 65,536 of 1,048,576 bytes.*network"):
            download_dataset("mnist", tmp_path, base_url=base, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert not (tmp_path / "mnist").exists()


def test_sigterm_mid_download_leaves_no_temporary_file(tmp_path):
    """`timeout`, a CI cancel and systemd stop a command with SIGTERM: cleaned up like Ctrl-C."""
    server, base = start_first_bytes_server(stall=True)
    data = tmp_path / "data"
    data.mkdir()
    command = [sys.executable, "-m", "vaekit", "datasets", "download", "mnist"]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data), "--base-url", base],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list((data / "mnist").glob(".*.part")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list((data / "mnist").glob(".*.part")), "the download never started"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        server.shutdown()
        server.server_close()
    assert process.returncode == 143, stderr
    assert "terminated" in stderr and "Traceback" not in stderr
    assert os.listdir(data) == []  # no temporary file, and the folder it made is gone
