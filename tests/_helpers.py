"""Helpers shared by several test files (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest


def shared_data_dir() -> Path:
    """$VAEKIT_DATA, else ../shared/data beside the repository (as in CI)."""
    env = os.environ.get("VAEKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def need(name: str) -> Path:
    """The shared data directory, or skip when ``name``'s folder is not there."""
    root = shared_data_dir()
    if not (root / name).is_dir():
        pytest.skip(f"offline dataset {name!r} not found under {root}; set VAEKIT_DATA")
    return root


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="headless Chromium not installed (Debian: apt-get install chromium); CI installs it",
)

# Appended to a copy of the page (the report itself has no scripts, and its CSP forbids them; the
# copy's CSP allows exactly this one by nonce). It records page errors, including failed
# resources, and on load writes what it saw into the DOM that --dump-dom prints.
_CHECK = """<script nonce="vaekitcheck">
var vaekitErrors = [];
window.addEventListener("error", function (e) {
  var what = e.target && (e.target.src || e.target.href);
  vaekitErrors.push(e.message || ("failed to load " + what));
}, true);
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var out = document.createElement("pre");
  out.id = "vaekit-check";
  out.textContent = JSON.stringify({
    images: imgs.length,
    broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
      .map(function (i) { return i.alt; }),
    errors: vaekitErrors,
    scripts: document.scripts.length,
    title: document.title,
    h1: document.querySelector("h1").textContent,
    summaryRows: document.querySelectorAll("#summary tbody tr").length,
    sections: Array.from(document.querySelectorAll("section")).map(function (s) { return s.id; })
  });
  document.body.appendChild(out);
});
</script>"""


def probe_in_chromium(page: str, workdir: Path) -> dict:
    """Open a copy of ``page`` in headless Chromium with the probe script; return what it saw.

    Fails the test on any console message Chromium logs (errors, CSP violations, uncaught
    exceptions): the report and the probe log nothing.
    """
    assert "default-src 'none';" in page
    probe = page.replace(
        "default-src 'none';", "default-src 'none'; script-src 'nonce-vaekitcheck';"
    )
    head_end = probe.index("<meta name=")  # right after the CSP, before any content
    path = workdir / "probe.html"
    path.write_text(probe[:head_end] + _CHECK + probe[head_end:], encoding="utf-8")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={workdir / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--dump-dom",
        path.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [
        line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line
    ]
    assert not console, console
    found = re.search(r'<pre id="vaekit-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the page never finished loading:\n{proc.stdout[:2000]}"
    return json.loads(unescape(found.group(1)))


def forget_checkpoint_param(checkpoint: Path, key: str) -> None:
    """Rewrite ``checkpoint`` as a vaekit from before ``key`` was recorded wrote it: the same
    tensors, the parameter missing from its metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(checkpoint, "pt") as f:
        meta = f.metadata()
    saved = json.loads(meta["vaekit_checkpoint"])
    del saved["params"][key]
    save_file(
        load_file(checkpoint), checkpoint, metadata={**meta, "vaekit_checkpoint": json.dumps(saved)}
    )
